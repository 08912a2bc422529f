//! Response bodies streamed from files. Reads happen on a blocking thread
//! in 1 MiB `pread`s (small `tokio::fs` reads cost a thread hop each);
//! `sendfile` for plain HTTP/1.1 is planned with the benchmark work.

use axum::body::Body;
use bytes::Bytes;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use tokio::sync::mpsc;

const READ_CHUNK: u64 = 1 << 20;

pub fn file_body(file: File, offset: u64, len: u64) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let (mut pos, end) = (offset, offset + len);
        while pos < end {
            let n = (end - pos).min(READ_CHUNK) as usize;
            let mut buf = vec![0u8; n];
            let chunk = match file.read_exact_at(&mut buf, pos) {
                Ok(()) => Ok(Bytes::from(buf)),
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            // A closed channel means the client went away: stop reading.
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
            pos += n as u64;
        }
    });
    Body::from_stream(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
    ))
}
