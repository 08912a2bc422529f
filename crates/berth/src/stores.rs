//! Opens the configured backends: blobs on the filesystem or in S3,
//! metadata in SQLite or PostgreSQL.

use anyhow::Context;
use berth_blob::s3::{S3BlobStore, S3Config};
use berth_blob::{BlobStore, FsBlobStore};
use berth_config::Config;
use berth_meta::postgres::{PostgresOptions, PostgresStore};
use berth_meta::sqlite::SqliteStore;
use berth_meta::MetaStore;
use std::sync::Arc;

/// Where things live, for the start-up log line.
pub struct Opened {
    pub blobs: Arc<dyn BlobStore>,
    pub meta: Arc<dyn MetaStore>,
    pub blobs_at: String,
    pub meta_at: String,
}

pub async fn open(config: &Config) -> anyhow::Result<Opened> {
    let (blobs, blobs_at) = open_blobs(config, !config.storage.redirect.disable).await?;
    let (meta, meta_at) = open_meta(config).await?;
    Ok(Opened { blobs, meta, blobs_at, meta_at })
}

/// The configured blob store. `redirect`: whether S3 reads may answer with
/// a presigned URL (tools that need the bytes themselves pass false).
pub async fn open_blobs(config: &Config, redirect: bool) -> anyhow::Result<(Arc<dyn BlobStore>, String)> {
    Ok(match &config.storage.s3 {
        Some(s3) => {
            let cfg = S3Config { redirect, ..s3_config(config, s3) };
            let store = S3BlobStore::new(&cfg).map_err(|e| anyhow::anyhow!("storage.s3: {}", e.0))?;
            store.check().await.context("storage.s3: the bucket is not reachable")?;
            (Arc::new(store), format!("s3://{}/{}", cfg.bucket, cfg.rootdirectory.trim_start_matches('/')))
        }
        None => {
            let root = &config.storage.filesystem.rootdirectory;
            let store =
                FsBlobStore::open(root).with_context(|| format!("opening blob storage at {}", root.display()))?;
            (Arc::new(store), root.display().to_string())
        }
    })
}

/// The configured metadata store.
pub async fn open_meta(config: &Config) -> anyhow::Result<(Arc<dyn MetaStore>, String)> {
    Ok(match &config.berth.database.url {
        Some(url) => {
            let mut opts = PostgresOptions::new(url.expose());
            if let Some(n) = config.berth.database.poolsize {
                opts.pool_size = n.max(1);
            }
            let store = PostgresStore::connect(&opts).await.context("berth.database.url")?;
            (Arc::new(store), "postgresql".to_owned())
        }
        None => {
            let db = config.database_path();
            let store =
                SqliteStore::open(&db).with_context(|| format!("opening metadata database {}", db.display()))?;
            (Arc::new(store), db.display().to_string())
        }
    })
}

fn s3_config(config: &Config, s3: &berth_config::S3) -> S3Config {
    S3Config {
        accesskey: s3.accesskey.as_ref().map(|s| s.expose().to_owned()).unwrap_or_default(),
        secretkey: s3.secretkey.as_ref().map(|s| s.expose().to_owned()).unwrap_or_default(),
        region: s3.region.clone(),
        regionendpoint: s3.regionendpoint.clone(),
        bucket: s3.bucket.clone(),
        rootdirectory: s3.rootdirectory.clone(),
        forcepathstyle: s3.forcepathstyle,
        chunksize: s3.chunksize,
        secure: s3.secure,
        skipverify: s3.skipverify,
        // Distribution redirects blob GETs to presigned URLs unless told not to.
        redirect: !config.storage.redirect.disable,
        ..S3Config::default()
    }
}
