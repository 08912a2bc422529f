//! Scrub: every blob row checked against storage (present, the recorded
//! size, and bytes that hash to its digest), and every manifest reference
//! against the blob rows. Reports; with `quarantine`, moves corrupt bytes
//! to `berth/quarantine/` and forgets the blob, so a client pushing it
//! again uploads it anew instead of being told it exists.

use berth_blob::{BlobReader, BlobStore};
use berth_meta::{DanglingRef, MetaStore};
use berth_oci::{Digest, Hasher};
use futures_util::StreamExt;
use std::io::Read;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob row without bytes in storage.
    Missing { digest: Digest },
    /// Stored bytes of another size than recorded.
    WrongSize { digest: Digest, recorded: u64, stored: u64 },
    /// Stored bytes that do not hash to the digest.
    Corrupt { digest: Digest, actual: Digest },
    /// A manifest referencing a blob with no row.
    Dangling(DanglingRef),
}

#[derive(Debug, Default)]
pub struct ScrubReport {
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    pub problems: Vec<Problem>,
    pub quarantined: u64,
}

async fn hash(blobs: &dyn BlobStore, digest: &Digest) -> Result<(Digest, u64), berth_blob::StoreError> {
    let mut hasher = Hasher::new(digest.algorithm());
    let mut n = 0u64;
    match blobs.open(digest, None).await? {
        BlobReader::File { file, offset, len, .. } => {
            let (h, read) = tokio::task::spawn_blocking(move || -> std::io::Result<(Hasher, u64)> {
                use std::io::{Seek, SeekFrom};
                let mut file = file;
                file.seek(SeekFrom::Start(offset))?;
                let mut take = file.take(len);
                let mut buf = vec![0; 1 << 20];
                let mut total = 0;
                loop {
                    let k = take.read(&mut buf)?;
                    if k == 0 {
                        return Ok((hasher, total));
                    }
                    hasher.update(&buf[..k]);
                    total += k as u64;
                }
            })
            .await
            .map_err(|e| berth_blob::StoreError::Io(std::io::Error::other(e)))??;
            return Ok((h.finish(), read));
        }
        BlobReader::Stream { mut body, .. } => {
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                n += chunk.len() as u64;
                hasher.update(&chunk);
            }
        }
        BlobReader::Redirect { .. } => {
            return Err(berth_blob::StoreError::Io(std::io::Error::other("scrub needs a store without redirects")))
        }
    }
    Ok((hasher.finish(), n))
}

/// Checks everything; `on_progress` gets blobs checked so far.
pub async fn scrub(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    quarantine: bool,
    on_progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<ScrubReport, Box<dyn std::error::Error + Send + Sync>> {
    let mut report = ScrubReport::default();
    let mut after: Option<String> = None;
    loop {
        let page = meta.list_blobs(after.as_deref(), 500).await?;
        let checks = futures_util::stream::iter(page.clone())
            .map(|b| async move {
                let problem = match blobs.stat(&b.digest).await {
                    Ok(None) => Some(Problem::Missing { digest: b.digest.clone() }),
                    Ok(Some(stored)) if stored != b.size => {
                        Some(Problem::WrongSize { digest: b.digest.clone(), recorded: b.size, stored })
                    }
                    Ok(Some(_)) => match hash(blobs, &b.digest).await {
                        Ok((actual, _)) if actual != b.digest => {
                            Some(Problem::Corrupt { digest: b.digest.clone(), actual })
                        }
                        Ok(_) => None,
                        Err(berth_blob::StoreError::BlobNotFound(_)) => {
                            Some(Problem::Missing { digest: b.digest.clone() })
                        }
                        Err(e) => return Err(e),
                    },
                    Err(e) => return Err(e),
                };
                Ok((b, problem))
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        for c in checks {
            let (b, problem) = c?;
            report.blobs_checked += 1;
            report.bytes_checked += b.size;
            let Some(problem) = problem else { continue };
            tracing::warn!(?problem, "scrub found a problem");
            if quarantine && !matches!(problem, Problem::Missing { .. }) {
                blobs.quarantine(&b.digest).await?;
            }
            if quarantine {
                meta.forget_blob(&b.digest).await?;
                report.quarantined += 1;
            }
            report.problems.push(problem);
        }
        on_progress(report.blobs_checked);
        match page.last() {
            Some(b) if page.len() == 500 => after = Some(b.digest.to_string()),
            _ => break,
        }
    }
    for d in meta.dangling_references(10_000).await? {
        report.problems.push(Problem::Dangling(d));
    }
    Ok(report)
}
