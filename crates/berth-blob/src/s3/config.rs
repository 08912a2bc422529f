//! [`S3Config`]: Distribution's `storage.s3` keys (and the redirect
//! decision of `storage.redirect.disable`), as the S3 store uses them. The
//! binary maps its config file onto this; tests build it in code.

use std::fmt;
use std::time::Duration;

/// S3's minimum part size (every part but the last).
pub const MIN_CHUNK_SIZE: u64 = 5 << 20;
/// S3's maximum part size.
pub const MAX_CHUNK_SIZE: u64 = 5 << 30;
/// Distribution's default `chunksize`.
pub const DEFAULT_CHUNK_SIZE: u64 = 10 << 20;
/// How long a presigned blob URL stays valid (Distribution: 20 minutes).
pub const DEFAULT_REDIRECT_EXPIRY: Duration = Duration::from_secs(20 * 60);

/// Where and how to reach the bucket. Credentials come only from here:
/// never from the environment, instance metadata or profile files.
#[derive(Clone)]
pub struct S3Config {
    /// `accesskey`.
    pub accesskey: String,
    /// `secretkey` (never printed by `Debug`).
    pub secretkey: String,
    /// `region` (SigV4 signing region; Garage's `s3_region`).
    pub region: String,
    /// `regionendpoint`: a URL (`http://127.0.0.1:3900`) or a host, to
    /// which `secure` chooses the scheme. `None`: AWS's endpoint for `region`.
    pub regionendpoint: Option<String>,
    /// `bucket`.
    pub bucket: String,
    /// `rootdirectory`: a key prefix for everything the store writes.
    pub rootdirectory: String,
    /// `forcepathstyle`: `endpoint/bucket/key` instead of `bucket.endpoint/key`.
    pub forcepathstyle: bool,
    /// `chunksize`: the multipart part size, at least 5 MiB. An append holds
    /// at most two parts in memory (one filling, one uploading).
    pub chunksize: u64,
    /// `secure`: HTTPS for an endpoint given without a scheme.
    pub secure: bool,
    /// `skipverify`: accept any TLS certificate from the endpoint.
    pub skipverify: bool,
    /// Answer blob GETs with a redirect to a presigned URL: true unless
    /// `storage.redirect.disable` is set (Distribution redirects by default).
    pub redirect: bool,
    /// Lifetime of a presigned URL; it must outlive the slowest pull.
    pub redirect_expiry: Duration,
    /// Attempts per S3 request, the first included: throttling (`SlowDown`,
    /// 503), 5xx answers, timeouts and broken connections are retried with
    /// exponential backoff and jitter.
    pub max_attempts: u32,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            accesskey: String::new(),
            secretkey: String::new(),
            region: String::new(),
            regionendpoint: None,
            bucket: String::new(),
            rootdirectory: String::new(),
            forcepathstyle: false,
            chunksize: DEFAULT_CHUNK_SIZE,
            secure: true,
            skipverify: false,
            redirect: true,
            redirect_expiry: DEFAULT_REDIRECT_EXPIRY,
            max_attempts: 6,
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("accesskey", &self.accesskey)
            .field("secretkey", &"<redacted>")
            .field("region", &self.region)
            .field("regionendpoint", &self.regionendpoint)
            .field("bucket", &self.bucket)
            .field("rootdirectory", &self.rootdirectory)
            .field("forcepathstyle", &self.forcepathstyle)
            .field("chunksize", &self.chunksize)
            .field("secure", &self.secure)
            .field("skipverify", &self.skipverify)
            .field("redirect", &self.redirect)
            .field("redirect_expiry", &self.redirect_expiry)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// A configuration the S3 store cannot work with.
#[derive(Debug, thiserror::Error)]
#[error("storage.s3: {0}")]
pub struct S3ConfigError(pub String);

impl S3Config {
    pub(super) fn validate(&self) -> Result<(), S3ConfigError> {
        let err = |m: &str| Err(S3ConfigError(m.to_owned()));
        if self.bucket.is_empty() {
            return err("bucket is required");
        }
        if self.region.is_empty() {
            return err("region is required");
        }
        if self.accesskey.is_empty() || self.secretkey.is_empty() {
            return err("accesskey and secretkey are required (credentials are never taken from the environment)");
        }
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunksize) {
            return Err(S3ConfigError(format!(
                "chunksize {} is outside S3's part sizes ({MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE})",
                self.chunksize
            )));
        }
        if self.max_attempts == 0 {
            return err("max_attempts must be at least 1");
        }
        if self.redirect
            && !(Duration::from_secs(1)..=Duration::from_secs(7 * 24 * 3600)).contains(&self.redirect_expiry)
        {
            return err("redirect expiry must be between 1 second and 7 days (SigV4's limit)");
        }
        Ok(())
    }

    /// The endpoint URL to give the SDK, if not AWS's own.
    pub(super) fn endpoint_url(&self) -> Option<String> {
        let scheme = if self.secure { "https" } else { "http" };
        match self.regionendpoint.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) if e.contains("://") => Some(e.trim_end_matches('/').to_owned()),
            Some(e) => Some(format!("{scheme}://{}", e.trim_end_matches('/'))),
            None if !self.secure => Some(format!("http://s3.{}.amazonaws.com", self.region)),
            None => None,
        }
    }

    /// `rootdirectory` as a key prefix: empty, or `a/b/`.
    pub(super) fn key_prefix(&self) -> String {
        let root = self.rootdirectory.trim_matches('/');
        if root.is_empty() {
            String::new()
        } else {
            format!("{root}/")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> S3Config {
        S3Config {
            accesskey: "a".into(),
            secretkey: "s".into(),
            region: "garage".into(),
            bucket: "b".into(),
            ..S3Config::default()
        }
    }

    #[test]
    fn validation_and_derived_values() {
        assert!(valid().validate().is_ok());
        assert!(S3Config { chunksize: MIN_CHUNK_SIZE - 1, ..valid() }.validate().is_err());
        assert!(S3Config { secretkey: String::new(), ..valid() }.validate().is_err());
        assert!(S3Config { bucket: String::new(), ..valid() }.validate().is_err());
        assert_eq!(valid().endpoint_url(), None);
        let local = S3Config { regionendpoint: Some("127.0.0.1:3900".into()), secure: false, ..valid() };
        assert_eq!(local.endpoint_url().as_deref(), Some("http://127.0.0.1:3900"));
        let url = S3Config { regionendpoint: Some("https://s3.example/".into()), ..valid() };
        assert_eq!(url.endpoint_url().as_deref(), Some("https://s3.example"));
        assert_eq!(S3Config { rootdirectory: "/reg/x/".into(), ..valid() }.key_prefix(), "reg/x/");
        assert_eq!(valid().key_prefix(), "");
        assert!(!format!("{:?}", valid()).contains("\"s\""));
    }
}
