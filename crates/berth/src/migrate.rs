//! `berth migrate-storage`: copies every blob the metadata knows from the
//! configured store to the store of another configuration (filesystem → S3
//! or back). Each blob is re-hashed on the way and committed only if its
//! digest matches; blobs already present at the destination with the right
//! size are skipped, so an interrupted run simply runs again. The metadata
//! database itself is not copied: it stays where it is and works with either
//! store (point `berth.database.*` of the new configuration at it).

use anyhow::{bail, Context};
use berth_blob::{BlobReader, BlobStore};
use berth_oci::{Digest, Hasher};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

const PAGE: usize = 1000;

pub fn run(source: berth_config::Loaded, destination: PathBuf) -> anyhow::Result<()> {
    let env = std::env::vars().filter(|(k, _)| !k.starts_with("REGISTRY_"));
    let dest = berth_config::load(Some(&destination), env).with_context(|| format!("{}", destination.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (meta, meta_at) = crate::stores::open_meta(&source.config).await?;
        let (from, from_at) = crate::stores::open_blobs(&source.config, false).await?;
        let (to, to_at) = crate::stores::open_blobs(&dest.config, false).await?;
        if from_at == to_at {
            bail!("source and destination are the same store ({from_at})");
        }
        eprintln!("copying blobs listed in {meta_at}\n  from {from_at}\n  to   {to_at}");
        let started = Instant::now();
        let (mut copied, mut skipped, mut bytes) = (0u64, 0u64, 0u64);
        let mut after: Option<String> = None;
        let tty = std::io::stderr().is_terminal();
        loop {
            let page = meta.list_blobs(after.as_deref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.digest.to_string());
            for blob in &page {
                if to.stat(&blob.digest).await? == Some(blob.size) {
                    skipped += 1;
                    continue;
                }
                copy_blob(&*from, &*to, &blob.digest, blob.size)
                    .await
                    .with_context(|| format!("copying {}", blob.digest))?;
                copied += 1;
                bytes += blob.size;
                if tty {
                    eprint!("\r{copied} copied, {skipped} already there, {} MiB", bytes >> 20);
                    let _ = std::io::stderr().flush();
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{}done: {copied} blobs copied ({:.1} MiB, {:.1} MiB/s), {skipped} already present, every digest verified",
            if tty { "\n" } else { "" },
            bytes as f64 / 1048576.0,
            bytes as f64 / 1048576.0 / secs.max(0.001)
        );
        Ok(())
    })
}

/// Streams one blob into the destination as an upload, verifying its digest.
async fn copy_blob(from: &dyn BlobStore, to: &dyn BlobStore, digest: &Digest, size: u64) -> anyhow::Result<()> {
    let body = match from.open(digest, None).await? {
        BlobReader::File { file, offset, len, .. } => berth_blob::file_stream(file, offset, len),
        BlobReader::Stream { body, .. } => body,
        BlobReader::Redirect { .. } => bail!("the source store answered with a redirect"),
    };
    let upload = format!("migrate-{}", &digest.hex()[..32]);
    to.delete_upload(&upload).await?;
    to.create_upload(&upload).await?;
    let result = async {
        let appended = to.append(&upload, 0, &[], Hasher::new(digest.algorithm()), body, Some(size)).await?;
        let actual = appended.hasher.finish();
        if appended.len != size || actual != *digest {
            bail!("source content is corrupt: {} bytes with digest {actual}", appended.len);
        }
        to.commit_upload(&upload, appended.len, &appended.store_state, digest).await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = to.delete_upload(&upload).await;
    }
    result
}
