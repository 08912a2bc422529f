//! [`AuditStore`]: the tamper-evident audit log (docs/audit-log.md).
//!
//! Entries form one hash chain: each carries the hash of the one before
//! ([`GENESIS`] for the first) and its own hash over a canonical encoding
//! ([`entry_hash`]). Ids are assigned by the store, contiguous from 1, in
//! the transaction that appends, which reads and moves the chain head (one
//! row; on PostgreSQL locked `FOR UPDATE`, so appenders on several nodes
//! take turns and the chain stays linear). Retention deletes from the oldest
//! and keeps the id and hash of the last deleted entry as the anchor, so
//! [`verify_chain`] still proves what remains.

use crate::{LeaseStore, MetaError};
use async_trait::async_trait;
use berth_oci::{Algorithm, Digest};

/// The `prev_hash` of the first entry ever appended.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Well-known actions. Any other string may be recorded (the admin API's
/// `user.create`, `project.delete`, … go through the same [`AuditStore`]).
pub mod action {
    /// A manifest PUT.
    pub const PUSH: &str = "push";
    /// A manifest GET or HEAD (blob reads are not recorded).
    pub const PULL: &str = "pull";
    /// A manifest DELETE, by digest or tag.
    pub const DELETE: &str = "delete";
    /// A blob DELETE.
    pub const DELETE_BLOB: &str = "delete_blob";
    /// A password login (the token service or Basic credentials on the API).
    pub const LOGIN: &str = "login";
}

/// Who did what, to what, from where, and how it went: one entry before
/// the store numbers and chains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened, Unix milliseconds (the recording node's clock).
    pub time_ms: i64,
    /// The account name, or `anonymous`.
    pub actor: String,
    /// The client's address.
    pub source: String,
    pub action: String,
    /// `repository[:tag][@digest]`, a user or project name, …
    pub resource: String,
    pub success: bool,
    /// The HTTP status answered.
    pub status: u16,
}

/// An appended event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub event: AuditEvent,
    /// Lowercase hex SHA-256 of the previous entry ([`GENESIS`] for id 1).
    pub prev_hash: String,
    /// Lowercase hex SHA-256 of [`entry_bytes`].
    pub hash: String,
}

/// The chain's ends as the store records them: the last entry appended
/// (`head`) and the last one retention deleted (`anchor`); both `(0,
/// GENESIS)` before there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditChain {
    pub head_id: i64,
    pub head_hash: String,
    pub anchor_id: i64,
    pub anchor_hash: String,
}

#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends `events` in order, in one transaction that reads the chain
    /// head, numbers and hashes them, and moves the head. Returns them.
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditEntry>, MetaError>;
    /// Entries with an id above `after`, in id order, at most `limit`.
    async fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, MetaError>;
    async fn audit_chain(&self) -> Result<AuditChain, MetaError>;
    /// Deletes entries older than `before_ms` from the oldest on, stopping
    /// at the first that is not (so what remains is contiguous), at most
    /// `limit`, and makes the last deleted the anchor. Returns how many.
    async fn prune_audit(&self, before_ms: i64, limit: usize) -> Result<u64, MetaError>;
}

/// The canonical encoding an entry's hash covers: each field as a 4-byte
/// big-endian length and its bytes — `prev_hash` (64 hex characters), `id`
/// and `time_ms` (decimal), `actor`, `source`, `action`, `resource` (UTF-8),
/// `success` or `failure`, the status (decimal).
pub fn entry_bytes(prev_hash: &str, id: i64, e: &AuditEvent) -> Vec<u8> {
    let (id, time, status) = (id.to_string(), e.time_ms.to_string(), e.status.to_string());
    let outcome = if e.success { "success" } else { "failure" };
    let fields =
        [prev_hash, &id, &time, &e.actor, &e.source, &e.action, &e.resource, outcome, &status].map(str::as_bytes);
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Lowercase hex SHA-256 of [`entry_bytes`].
pub fn entry_hash(prev_hash: &str, id: i64, e: &AuditEvent) -> String {
    Digest::compute(Algorithm::Sha256, &entry_bytes(prev_hash, id, e)).hex().to_owned()
}

/// Numbers and chains `events` after `(head_id, head_hash)`: what both
/// backends do inside their append transaction.
pub(crate) fn chain(head_id: i64, head_hash: &str, events: &[AuditEvent]) -> Vec<AuditEntry> {
    let mut prev = head_hash.to_owned();
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let id = head_id + 1 + i as i64;
            let hash = entry_hash(&prev, id, e);
            AuditEntry { id, event: e.clone(), prev_hash: std::mem::replace(&mut prev, hash.clone()), hash }
        })
        .collect()
}

/// The lease retention runs under, so one node of a cluster prunes.
pub const RETENTION_JOB: &str = "audit-retention";
const RETENTION_LEASE: std::time::Duration = std::time::Duration::from_secs(300);
/// Entries deleted per transaction.
const RETENTION_BATCH: usize = 10_000;

/// Deletes entries older than `retention` before `now()`, oldest first, in
/// batches, under the [`RETENTION_JOB`] lease (renewed per batch) taken as
/// `holder`. `None` if another holder has the lease; else how many.
/// `now` is Unix milliseconds (an injected clock in tests).
pub async fn apply_retention<S: LeaseStore + AuditStore + ?Sized>(
    store: &S,
    holder: &str,
    retention: std::time::Duration,
    now: impl Fn() -> i64 + Send + Sync,
) -> Result<Option<u64>, MetaError> {
    let now_ms = now();
    if !store.try_acquire_lease(RETENTION_JOB, holder, RETENTION_LEASE, now_ms).await? {
        return Ok(None);
    }
    let before = now_ms.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let mut total = 0;
    let result = loop {
        match store.prune_audit(before, RETENTION_BATCH).await {
            Ok(0) => break Ok(Some(total)),
            Ok(n) => total += n,
            Err(e) => break Err(e),
        }
        // A batch took long enough for the lease to lapse: stop, the next run continues.
        if !store.renew_lease(RETENTION_JOB, holder, RETENTION_LEASE, now()).await? {
            break Ok(Some(total));
        }
    };
    store.release_lease(RETENTION_JOB, holder).await?;
    result
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry from the anchor to the head links and hashes correctly.
    Intact { entries: u64, head_id: i64, head_hash: String, anchor_id: i64 },
    /// The first entry (by id) that does not; `id` may name a missing one.
    Broken { id: i64, reason: String },
}

/// Walks the chain in id order, `page` entries per read, from the anchor
/// (or [`GENESIS`]) to the recorded head, recomputing every hash.
pub async fn verify_chain(store: &dyn AuditStore, page: usize) -> Result<Verdict, MetaError> {
    let chain = store.audit_chain().await?;
    let (mut prev_id, mut prev_hash) = (chain.anchor_id, chain.anchor_hash.clone());
    let mut entries = 0u64;
    let broken = |id: i64, reason: String| Ok(Verdict::Broken { id, reason });
    loop {
        let batch = store.audit_entries(prev_id, page.max(1)).await?;
        let Some(last) = batch.last().map(|e| e.id) else { break };
        for e in batch {
            let want = prev_id + 1;
            if e.id != want {
                return broken(want, format!("entry {want} is missing (entry {prev_id} is followed by {})", e.id));
            }
            if e.prev_hash != prev_hash {
                return broken(
                    e.id,
                    format!("prev_hash {} is not the hash of entry {prev_id} ({prev_hash})", e.prev_hash),
                );
            }
            let hash = entry_hash(&prev_hash, e.id, &e.event);
            if e.hash != hash {
                return broken(e.id, format!("stored hash {} does not match its contents (computed {hash})", e.hash));
            }
            (prev_id, prev_hash) = (e.id, e.hash);
            entries += 1;
        }
        debug_assert_eq!(prev_id, last);
    }
    if prev_id < chain.head_id {
        let id = prev_id + 1;
        return broken(
            id,
            format!("entries {id}..={} are missing (the chain head is {})", chain.head_id, chain.head_id),
        );
    }
    if prev_id != chain.head_id || prev_hash != chain.head_hash {
        return broken(
            prev_id,
            format!(
                "the recorded chain head ({}, {}) is not the last entry ({prev_id}, {prev_hash})",
                chain.head_id, chain.head_hash
            ),
        );
    }
    Ok(Verdict::Intact { entries, head_id: prev_id, head_hash: prev_hash, anchor_id: chain.anchor_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent {
            time_ms: 1_700_000_000_123,
            actor: "alice".into(),
            source: "192.0.2.7".into(),
            action: "push".into(),
            resource: "team/app:v1@sha256:ab".into(),
            success: true,
            status: 201,
        }
    }

    /// Expected values computed independently with Python over the
    /// documented encoding (docs/audit-log.md):
    /// `b"".join(struct.pack(">I", len(f)) + f for f in fields)`, then
    /// `hashlib.sha256(...).hexdigest()`.
    #[test]
    fn hashes_match_an_independent_computation() {
        let e = event();
        let first = entry_hash(GENESIS, 1, &e);
        assert_eq!(first, "34199d34068d0af6124398ad7f4e69792eb5f708ce7a4eaab871d7d426b5ecdc");
        let second = AuditEvent { actor: "anonymous".into(), action: "pull".into(), success: false, status: 404, ..e };
        assert_eq!(entry_hash(&first, 2, &second), "4601bb9ff5617d0ed1d89553e3472b0a167aff4949c27dcf334e0ca4046d28aa");
    }

    #[test]
    fn encoding_is_unambiguous() {
        // Moving a byte from one field to the next changes the encoding.
        let a = AuditEvent { actor: "ab".into(), source: "c".into(), ..event() };
        let b = AuditEvent { actor: "a".into(), source: "bc".into(), ..event() };
        assert_ne!(entry_bytes(GENESIS, 1, &a), entry_bytes(GENESIS, 1, &b));
    }

    #[test]
    fn chain_links_each_entry_to_the_previous() {
        let entries = chain(4, "h4", &[event(), event()]);
        assert_eq!((entries[0].id, entries[0].prev_hash.as_str()), (5, "h4"));
        assert_eq!((entries[1].id, &entries[1].prev_hash), (6, &entries[0].hash));
        assert_eq!(entries[1].hash, entry_hash(&entries[0].hash, 6, &event()));
    }
}
