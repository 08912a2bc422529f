use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use tokio::sync::mpsc;

/// A request body as the store consumes it. Errors are the client's
/// (disconnects, malformed chunked encoding), reported as `StoreError::Body`.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

const READ_CHUNK: u64 = 1 << 20;

/// `len` bytes of `file` from `offset`, read on one blocking thread in 1 MiB
/// `pread`s, two chunks ahead (small `tokio::fs` reads cost a thread hop
/// each). Stops reading when the consumer goes away. For paths that cannot
/// use `sendfile`: HTTP/2 responses, copies between stores.
pub fn file_stream(file: File, offset: u64, len: u64) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let (mut pos, end) = (offset, offset + len);
        while pos < end {
            let n = (end - pos).min(READ_CHUNK) as usize;
            let mut buf = vec![0u8; n];
            let chunk = file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf));
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
            pos += n as u64;
        }
    });
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) }))
}
