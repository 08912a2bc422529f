//! Distribution's `auth.htpasswd`: an htpasswd file of `user:bcrypt-hash`
//! lines. As in Distribution, a missing file is created with a user
//! `docker` and a random password, which is logged once.
//!
//! bcrypt costs ~60 ms at cost 10 and clients send the same credentials on
//! every request of a pull, so successes are cached, keyed by a SHA-256 of
//! user, password and the hash line they matched (a changed password or a
//! removed user misses the cache). The file is re-read when its size or
//! modification time changes, checked at most once a second.

use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    #[error("htpasswd file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("htpasswd file {path} line {line}: expected user:bcrypt-hash")]
    Syntax { path: PathBuf, line: usize },
}

#[derive(Default)]
struct Users {
    stamp: Option<(SystemTime, u64)>,
    hashes: HashMap<String, String>,
    checked: Option<Instant>,
}

pub struct Htpasswd {
    path: PathBuf,
    realm: String,
    users: Mutex<Users>,
    verified: Cache<[u8; 32], ()>,
}

const RECHECK_EVERY: Duration = Duration::from_secs(1);

fn parse(path: &Path, text: &str) -> Result<HashMap<String, String>, HtpasswdError> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (user, hash) = line.split_once(':').ok_or(HtpasswdError::Syntax { path: path.to_owned(), line: i + 1 })?;
        users.insert(user.to_owned(), hash.to_owned());
    }
    Ok(users)
}

/// A bcrypt hash at the default cost, to spend the same time on unknown users.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| bcrypt::hash("berth-dummy-password", bcrypt::DEFAULT_COST).unwrap_or_default())
}

/// Where a generated password is written: `<htpasswd>.password`.
pub fn password_file(htpasswd: &Path) -> PathBuf {
    let mut name = htpasswd.as_os_str().to_owned();
    name.push(".password");
    PathBuf::from(name)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

impl Htpasswd {
    /// Opens the file, creating it with a generated `docker` user if missing.
    pub fn open(path: &Path, realm: &str) -> Result<Arc<Self>, HtpasswdError> {
        let io = |source| HtpasswdError::Io { path: path.to_owned(), source };
        if !path.exists() {
            let password: String = {
                use rand::distr::{Alphanumeric, SampleString};
                Alphanumeric.sample_string(&mut rand::rng(), 32)
            };
            let hash = bcrypt::hash(&password, bcrypt::DEFAULT_COST).map_err(|e| io(std::io::Error::other(e)))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            std::fs::write(path, format!("docker:{hash}\n")).map_err(io)?;
            // Distribution logs the generated password; Berth keeps secrets
            // out of logs and writes it beside the file, readable by its owner only.
            let secret = password_file(path);
            write_private(&secret, &format!("{password}\n"))
                .map_err(|source| HtpasswdError::Io { path: secret.clone(), source })?;
            tracing::warn!(
                path = %path.display(),
                user = "docker",
                password_file = %secret.display(),
                "htpasswd file was missing: created it with a generated user whose password is in password_file; change it"
            );
        }
        let h = Arc::new(Htpasswd {
            path: path.to_owned(),
            realm: realm.to_owned(),
            users: Mutex::new(Users::default()),
            verified: Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(600)).build(),
        });
        // Like Distribution, start even if the file cannot be read (Debian's
        // stock config names a directory): every credential is then refused.
        if let Err(e) = h.refresh(true) {
            tracing::error!(error = %e, "htpasswd file unreadable; all credentials will be refused until it is fixed");
        }
        Ok(h)
    }

    /// The `WWW-Authenticate` challenge.
    pub fn challenge(&self) -> String {
        format!("Basic realm=\"{}\"", self.realm.replace('"', ""))
    }

    /// Re-reads the file if it changed (or `force`). Returns the hash for
    /// nothing; errors keep the previous users.
    fn refresh(&self, force: bool) -> Result<(), HtpasswdError> {
        let io = |source| HtpasswdError::Io { path: self.path.clone(), source };
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if !force && users.checked.is_some_and(|t| t.elapsed() < RECHECK_EVERY) {
            return Ok(());
        }
        users.checked = Some(Instant::now());
        let meta = std::fs::metadata(&self.path).map_err(io)?;
        let stamp = (meta.modified().map_err(io)?, meta.len());
        if users.stamp == Some(stamp) && !force {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.path).map_err(io)?;
        users.hashes = parse(&self.path, &text)?;
        users.stamp = Some(stamp);
        Ok(())
    }

    /// Whether `user`/`password` match the file. Runs bcrypt on a blocking
    /// thread on a cache miss.
    pub async fn verify(self: &Arc<Self>, user: &str, password: &str) -> bool {
        if let Err(e) = self.refresh(false) {
            tracing::error!(error = %e, "cannot read htpasswd file; refusing all credentials");
            self.users.lock().unwrap_or_else(|p| p.into_inner()).hashes.clear();
            return false;
        }
        let Some(hash) = self.users.lock().unwrap_or_else(|p| p.into_inner()).hashes.get(user).cloned() else {
            // As Distribution does: an unknown user costs a bcrypt check too,
            // so response times do not tell which users exist.
            let password = password.to_owned();
            let _ = tokio::task::spawn_blocking(move || bcrypt::verify(password, dummy_hash())).await;
            return false;
        };
        let key: [u8; 32] = {
            let mut h = Sha256::new();
            for part in [user, password, &hash] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
            h.finalize().into()
        };
        if self.verified.contains_key(&key) {
            return true;
        }
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok {
            self.verified.insert(key, ());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_bcrypt_lines_and_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        // Generated with `htpasswd -nbB alice wonderland` (Apache's tool, an independent source).
        std::fs::write(&path, "alice:$2y$05$nKYozfQrMSDSI.DKzYiA9upiuzxe1Vte9VgAk8BrVakZmrCRmeTXu\n").unwrap();
        let h = Htpasswd::open(&path, "basic-realm").unwrap();
        assert_eq!(h.challenge(), "Basic realm=\"basic-realm\"");
        assert!(h.verify("alice", "wonderland").await);
        assert!(h.verify("alice", "wonderland").await, "cached");
        assert!(!h.verify("alice", "wrong").await);
        assert!(!h.verify("bob", "wonderland").await);
        // A removed user loses access once the file is re-read.
        std::fs::write(&path, "# nobody\n").unwrap();
        h.users.lock().unwrap().checked = None;
        assert!(!h.verify("alice", "wonderland").await);
    }

    #[tokio::test]
    async fn missing_file_is_created_with_a_docker_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth/htpasswd");
        let _h = Htpasswd::open(&path, "r").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("docker:$2"), "{text}");
    }
}
