//! The [`crate::LeaseStore`] and [`crate::GcStore`] part of the shared
//! backend suite (see [`crate::metastore_test_suite!`]): job leases with
//! durable progress, and the metadata side of garbage collection.

use crate::test_suite::{digest, image, repo, tag, ROUNDS};
use crate::{ChildRef, MetaError, MetaStore, NewManifest};
use berth_oci::Digest;
use std::time::Duration;

// ---- job leases ---------------------------------------------------------------

const TTL: Duration = Duration::from_secs(30);
const TTL_MS: i64 = 30_000;

pub async fn leases_exclude_other_holders_until_expiry(s: &dyn MetaStore) {
    let t0 = 1_000_000;
    assert!(s.try_acquire_lease("gc", "node-a", TTL, t0).await.unwrap());
    assert!(!s.try_acquire_lease("gc", "node-b", TTL, t0 + 1).await.unwrap(), "held by a");
    assert!(s.try_acquire_lease("other-job", "node-b", TTL, t0 + 1).await.unwrap(), "leases are per job");
    assert!(!s.renew_lease("gc", "node-b", TTL, t0 + 2).await.unwrap(), "a non-holder cannot renew");
    assert!(!s.release_lease("gc", "node-b").await.unwrap(), "nor release");
    assert!(s.try_acquire_lease("gc", "node-a", TTL, t0 + 3).await.unwrap(), "the holder may re-acquire");
    // Renewal moves expiry: b still cannot take it when the first TTL is over.
    assert!(s.renew_lease("gc", "node-a", TTL, t0 + 20_000).await.unwrap());
    assert!(!s.try_acquire_lease("gc", "node-b", TTL, t0 + TTL_MS + 1).await.unwrap(), "renewed");
    // Expiry is `now >= renewed + ttl`: then the lease is lost, even unclaimed.
    let expiry = t0 + 20_000 + TTL_MS;
    assert!(!s.renew_lease("gc", "node-a", TTL, expiry).await.unwrap(), "an expired lease cannot be renewed");
    assert!(s.try_acquire_lease("gc", "node-b", TTL, expiry).await.unwrap(), "expired: b takes over");
    assert!(!s.renew_lease("gc", "node-a", TTL, expiry + 1).await.unwrap());
    assert!(!s.release_lease("gc", "node-a").await.unwrap(), "a no longer holds it");
    assert!(s.release_lease("gc", "node-b").await.unwrap());
    assert!(s.try_acquire_lease("gc", "node-a", TTL, expiry + 2).await.unwrap(), "released: free at once");
}

pub async fn held_leases_lists_only_unexpired_ones(s: &dyn MetaStore) {
    let t0 = 5_000_000;
    assert!(s.held_leases(t0).await.unwrap().is_empty());
    assert!(s.try_acquire_lease("retention:b", "node-b", TTL, t0).await.unwrap());
    assert!(s.try_acquire_lease("gc", "node-a", TTL, t0 + 10).await.unwrap());
    let held = s.held_leases(t0 + 20).await.unwrap();
    let seen: Vec<(&str, &str, i64)> = held.iter().map(|l| (l.job.as_str(), l.holder.as_str(), l.expires_ms)).collect();
    assert_eq!(seen, [("gc", "node-a", t0 + 10 + TTL_MS), ("retention:b", "node-b", t0 + TTL_MS)]);
    // The first expires at t0 + TTL: gone from the list then, though its row stays.
    let later = s.held_leases(t0 + TTL_MS).await.unwrap();
    assert_eq!(later.iter().map(|l| l.job.as_str()).collect::<Vec<_>>(), ["gc"]);
    assert!(s.release_lease("gc", "node-a").await.unwrap());
    assert!(s.held_leases(t0 + 20).await.unwrap().iter().all(|l| l.job != "gc"));
}

pub async fn pool_status_counts_connections(s: &dyn MetaStore) {
    // Use the pool, then look: something is open, nothing waits, idle ≤ open.
    s.held_leases(0).await.unwrap();
    assert!(s.try_acquire_lease("pool-check", "n", TTL, 0).await.unwrap());
    let p = s.pool_status();
    assert!(p.open >= 1, "{p:?}");
    assert!(p.idle <= p.open && p.idle >= 1, "connections are back in the pool: {p:?}");
    assert_eq!(p.waiting, 0, "{p:?}");
    if let Some(max) = p.max {
        assert!(p.open <= max, "{p:?}");
    }
}

pub async fn concurrent_acquires_have_one_winner(s: &dyn MetaStore) {
    for round in 0..ROUNDS as i64 {
        let job = format!("job-{round}");
        let now = 1_000 + round;
        let (a, b, c, d) = tokio::join!(
            s.try_acquire_lease(&job, "a", TTL, now),
            s.try_acquire_lease(&job, "b", TTL, now),
            s.try_acquire_lease(&job, "c", TTL, now),
            s.try_acquire_lease(&job, "d", TTL, now),
        );
        let winners = [a, b, c, d].into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(winners, 1, "round {round}");
    }
}

/// The test job: handles items `0..JOB_ITEMS` in order, saving how many are
/// done after each (a little-endian u32) and renewing its lease. A step
/// must be idempotent in a real job: a holder that dies between doing an
/// item and saving progress leaves it to be done again.
const JOB_ITEMS: u32 = 10;

enum JobRun {
    NotLeased,
    /// The holder stopped (died) after this many items in total.
    Died(u32),
    Finished,
}

async fn run_test_job(
    s: &dyn MetaStore,
    holder: &str,
    now: i64,
    die_after: Option<u32>,
    log: &mut Vec<(String, u32)>,
) -> JobRun {
    const JOB: &str = "test-job";
    if !s.try_acquire_lease(JOB, holder, TTL, now).await.unwrap() {
        return JobRun::NotLeased;
    }
    let state = s.job_state(JOB).await.unwrap();
    let mut done = state.map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes of progress")));
    while done < JOB_ITEMS {
        if die_after == Some(done) {
            return JobRun::Died(done);
        }
        log.push((holder.to_owned(), done));
        done += 1;
        assert!(s.save_job_state(JOB, holder, &done.to_le_bytes(), now).await.unwrap());
        assert!(s.renew_lease(JOB, holder, TTL, now).await.unwrap());
    }
    assert!(s.finish_job(JOB, holder, now).await.unwrap());
    JobRun::Finished
}

pub async fn leased_job_resumes_after_its_holder_dies(s: &dyn MetaStore) {
    let mut log = Vec::new();
    let t0 = 5_000_000;
    assert!(matches!(run_test_job(s, "node-a", t0, Some(4), &mut log).await, JobRun::Died(4)));
    assert_eq!(s.job_state("test-job").await.unwrap(), Some(4u32.to_le_bytes().to_vec()));
    // While a's lease runs, nobody else may work on the job.
    assert!(matches!(run_test_job(s, "node-b", t0 + TTL_MS - 1, None, &mut log).await, JobRun::NotLeased));
    // a is dead: its lease expires; b takes over and continues at item 4.
    assert!(matches!(run_test_job(s, "node-b", t0 + TTL_MS, None, &mut log).await, JobRun::Finished));
    let expected: Vec<(String, u32)> =
        (0..JOB_ITEMS).map(|i| (if i < 4 { "node-a" } else { "node-b" }.to_owned(), i)).collect();
    assert_eq!(log, expected, "every item once, resumed where a stopped");
    assert_eq!(s.job_state("test-job").await.unwrap(), None, "finishing clears progress");
    // a comes back from its pause: it can neither save nor finish.
    assert!(!s.save_job_state("test-job", "node-a", &[9, 9, 9, 9], t0 + TTL_MS + 1).await.unwrap());
    assert!(!s.finish_job("test-job", "node-a", t0 + TTL_MS + 1).await.unwrap());
    assert_eq!(s.job_state("test-job").await.unwrap(), None);
    // Finished means released: the next run starts from scratch at once.
    assert!(matches!(run_test_job(s, "node-c", t0 + TTL_MS + 2, Some(0), &mut log).await, JobRun::Died(0)));
}

// ---- garbage collection (docs/garbage-collection.md) -------------------------

fn names(links: &[crate::GcLink]) -> Vec<(String, Digest)> {
    links.iter().map(|l| (l.repository.clone(), l.digest.clone())).collect()
}

pub async fn gc_removes_only_old_unreferenced_links(s: &dyn MetaStore) {
    let r = repo("gc/links");
    let (used, loose, young) = (digest("used"), digest("loose"), digest("young"));
    s.commit_blob(&r, &used, 4, None, 10).await.unwrap();
    s.commit_blob(&r, &loose, 5, None, 10).await.unwrap();
    s.commit_blob(&r, &young, 5, None, 100).await.unwrap();
    s.put_manifest(&r, &image("m", &[&used]), &[], 11).await.unwrap();
    let listed = s.unreferenced_links(50, None, 10).await.unwrap();
    assert_eq!(names(&listed), vec![("gc/links".to_owned(), loose.clone())]);
    assert_eq!(listed[0].size, 5);
    // A commit (or mount) refreshes the link's age: it is young again.
    s.commit_blob(&r, &loose, 5, None, 60).await.unwrap();
    assert!(s.remove_unreferenced_links(50, 10).await.unwrap().is_empty());
    let gone = s.remove_unreferenced_links(61, 10).await.unwrap();
    assert_eq!(names(&gone), vec![("gc/links".to_owned(), loose.clone())]);
    assert_eq!(s.repo_blob(&r, &loose).await.unwrap(), None);
    assert_eq!(s.repo_blob(&r, &used).await.unwrap(), Some(4), "referenced by a manifest");
    assert_eq!(s.repo_blob(&r, &young).await.unwrap(), Some(5), "younger than the cutoff");
    // Deleting the manifest leaves its link unreferenced.
    s.delete_manifest(&r, &digest("m")).await.unwrap();
    assert_eq!(names(&s.remove_unreferenced_links(61, 10).await.unwrap()), vec![("gc/links".to_owned(), used)]);
}

pub async fn gc_deletes_blobs_a_grace_period_after_marking(s: &dyn MetaStore) {
    let r = repo("gc/blobs");
    let (a, b) = (digest("a"), digest("b"));
    s.commit_blob(&r, &a, 1, None, 10).await.unwrap();
    s.commit_blob(&r, &b, 2, None, 10).await.unwrap();
    assert!(s.unlink_blob(&r, &a).await.unwrap());
    let listed = s.collectable_blobs(11, None, 10).await.unwrap();
    let mut expected = vec![&a, &b];
    expected.sort_by_key(|d| d.as_str());
    assert_eq!(listed.iter().map(|b| &b.digest).collect::<Vec<_>>(), expected, "b's link is unreferenced");
    assert_eq!(s.mark_unlinked_blobs(1_000).await.unwrap(), 1, "only a has no link");
    assert_eq!(s.mark_unlinked_blobs(1_500).await.unwrap(), 1, "marking again keeps the first mark");
    assert!(s.begin_blob_deletion(999, 10).await.unwrap().is_empty(), "marked after the cutoff");
    let chosen = s.begin_blob_deletion(1_000, 10).await.unwrap();
    assert_eq!(chosen, vec![crate::GcBlob { digest: a.clone(), size: 1 }]);
    assert!(s.begin_blob_deletion(1_000, 10).await.unwrap().is_empty(), "already deleting");
    // While deleting, a commit of the same digest is refused, not recorded.
    assert!(!s.touch_blob(&a, 1_001).await.unwrap());
    assert!(matches!(s.commit_blob(&r, &a, 1, None, 1_001).await, Err(MetaError::BlobBusy(_))));
    assert_eq!(s.repo_blob(&r, &a).await.unwrap(), None);
    // A collector killed here finds its work again.
    assert_eq!(s.blobs_being_deleted(None, 10).await.unwrap(), chosen);
    assert_eq!(s.finish_blob_deletion(&[a.clone(), b.clone()]).await.unwrap(), 1, "b is not deleting");
    assert!(s.blobs_being_deleted(None, 10).await.unwrap().is_empty());
    assert_eq!(s.list_blobs(None, 10).await.unwrap().len(), 1);
    // Gone: it can be pushed anew.
    assert!(s.touch_blob(&a, 2_000).await.unwrap());
    s.commit_blob(&r, &a, 1, None, 2_000).await.unwrap();
    assert_eq!(s.repo_blob(&r, &a).await.unwrap(), Some(1));
}

pub async fn gc_spares_a_blob_touched_after_marking(s: &dyn MetaStore) {
    let r = repo("gc/touch");
    let (a, b) = (digest("ta"), digest("tb"));
    for d in [&a, &b] {
        s.commit_blob(&r, d, 1, None, 10).await.unwrap();
        s.unlink_blob(&r, d).await.unwrap();
    }
    assert_eq!(s.mark_unlinked_blobs(100).await.unwrap(), 2);
    // A push of a is about to write its bytes; b is committed (and linked) again.
    assert!(s.touch_blob(&a, 150).await.unwrap());
    s.commit_blob(&repo("gc/other"), &b, 1, None, 150).await.unwrap();
    assert!(s.begin_blob_deletion(10_000, 10).await.unwrap().is_empty(), "both spared");
    // a's push never finished: a is marked again, and collected a grace later.
    assert_eq!(s.mark_unlinked_blobs(200).await.unwrap(), 1);
    assert!(s.begin_blob_deletion(199, 10).await.unwrap().is_empty());
    assert_eq!(s.begin_blob_deletion(200, 10).await.unwrap().len(), 1);
}

pub async fn gc_untagged_spares_children_and_referrers(s: &dyn MetaStore) {
    let r = repo("gc/untagged");
    let child = image("child", &[]);
    let orphan = image("orphan", &[]);
    let tagged = image("tagged", &[]);
    s.put_manifest(&r, &child, &[], 1).await.unwrap();
    s.put_manifest(&r, &orphan, &[], 1).await.unwrap();
    s.put_manifest(&r, &tagged, &[tag("v1")], 1).await.unwrap();
    let index = NewManifest {
        media_type: berth_oci::media_type::OCI_INDEX.into(),
        children: vec![ChildRef { digest: child.digest.clone(), is_manifest: true, required: true }],
        ..image("index", &[])
    };
    s.put_manifest(&r, &index, &[tag("multi")], 2).await.unwrap();
    let sig = NewManifest { subject: Some(tagged.digest.clone()), ..image("sig", &[]) };
    let stray = NewManifest { subject: Some(digest("absent")), ..image("stray", &[]) };
    s.put_manifest(&r, &sig, &[], 2).await.unwrap();
    s.put_manifest(&r, &stray, &[], 2).await.unwrap();
    let found: Vec<Digest> = s.untagged_manifests(100, None, 10).await.unwrap().into_iter().map(|m| m.digest).collect();
    let mut expected = vec![orphan.digest.clone(), stray.digest.clone()];
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(found, expected);
    assert!(s.untagged_manifests(2, None, 10).await.unwrap().iter().all(|m| m.digest == orphan.digest), "by age");
    for d in [&child.digest, &sig.digest, &tagged.digest] {
        assert!(!s.delete_untagged_manifest("gc/untagged", d, 100).await.unwrap(), "re-checked: {d}");
    }
    assert!(s.delete_untagged_manifest("gc/untagged", &orphan.digest, 100).await.unwrap());
    assert_eq!(s.get_manifest(&r, &orphan.digest).await.unwrap(), None);
    // Untagging the index frees its child next.
    s.delete_tag(&r, &tag("multi")).await.unwrap();
    assert!(s.delete_untagged_manifest("gc/untagged", &index.digest, 100).await.unwrap());
    assert!(s.delete_untagged_manifest("gc/untagged", &child.digest, 100).await.unwrap());
}

/// A push committing a digest races a collector switching its mark to
/// deleting: exactly one of them wins, never both.
pub async fn gc_concurrent_commit_and_deletion_agree(s: &dyn MetaStore) {
    let r = repo("gc/race");
    for round in 0..ROUNDS as i64 {
        let d = digest(&format!("race-{round}"));
        s.commit_blob(&r, &d, 1, None, 1).await.unwrap();
        s.unlink_blob(&r, &d).await.unwrap();
        s.mark_unlinked_blobs(round).await.unwrap();
        let push = async {
            if !s.touch_blob(&d, 2).await.unwrap() {
                return false;
            }
            match s.commit_blob(&r, &d, 1, None, 2).await {
                Ok(()) => true,
                Err(MetaError::BlobBusy(_)) => false,
                Err(e) => panic!("{e}"),
            }
        };
        let (pushed, chosen) = tokio::join!(push, s.begin_blob_deletion(i64::MAX, 1000));
        let deleting = chosen.unwrap().iter().any(|b| b.digest == d);
        assert!(pushed != deleting, "round {round}: pushed {pushed}, deleting {deleting}");
        if deleting {
            s.finish_blob_deletion(std::slice::from_ref(&d)).await.unwrap();
        } else {
            assert_eq!(s.repo_blob(&r, &d).await.unwrap(), Some(1));
        }
    }
}

pub async fn gc_usage_counts_shared_bytes(s: &dyn MetaStore) {
    let (a, b) = (repo("gc/use-a"), repo("gc/use-b"));
    let (only, both) = (digest("only"), digest("both"));
    s.commit_blob(&a, &only, 100, None, 1).await.unwrap();
    s.commit_blob(&a, &both, 1_000, None, 1).await.unwrap();
    s.mount_blob(&b, &both, Some(&a), 2).await.unwrap();
    s.put_manifest(&a, &image("usage", &[&only, &both]), &[tag("v")], 3).await.unwrap();
    let all = s.repository_usage(None).await.unwrap();
    let ua = all.iter().find(|u| u.repository == "gc/use-a").unwrap();
    assert_eq!((ua.blobs, ua.logical_bytes, ua.shared_bytes, ua.exclusive_bytes), (2, 1_100, 1_000, 100));
    assert_eq!((ua.manifests, ua.manifest_bytes), (1, 5));
    let ub = s.repository_usage(Some("gc/use-b")).await.unwrap();
    assert_eq!(ub.len(), 1);
    assert_eq!((ub[0].logical_bytes, ub[0].shared_bytes, ub[0].exclusive_bytes), (1_000, 1_000, 0));
}
