//! The [`crate::QuotaStore`] and [`crate::ImmutabilityStore`] part of the
//! shared backend suite (see [`crate::metastore_test_suite!`]). Expected
//! usage follows Harbor's counting: each blob referenced by a manifest of
//! the project, and each manifest, once per project; nothing only linked.

use crate::selectors::Decoration;
use crate::test_suite::{digest, image, repo};
use crate::{MetaError, MetaStore, NewImmutableRule, NewManifest, ProjectStorage, QuotaCheck, RulePattern, Usage};
use berth_oci::{Digest, Tag};

/// Commits `blobs` (content, size) into `r` and pushes a manifest of them.
async fn push(s: &dyn MetaStore, r: &str, body: &str, blobs: &[(&str, u64)]) -> NewManifest {
    let r = repo(r);
    let digests: Vec<Digest> = blobs.iter().map(|(c, _)| digest(c)).collect();
    for ((_, size), d) in blobs.iter().zip(&digests) {
        s.commit_blob(&r, d, *size, None, 1).await.unwrap();
    }
    let m = image(body, &digests.iter().collect::<Vec<_>>());
    s.put_manifest(&r, &m, &[Tag::parse("v1").unwrap()], 2).await.unwrap();
    m
}

fn usage(total: u64, shared: u64, blob_count: u64) -> Usage {
    Usage { total, shared, exclusive: total - shared, blob_count }
}

pub async fn quota_counts_each_blob_once_per_project(s: &dyn MetaStore) {
    let (m1, m2) = ("manifest-of-x", "manifest-of-y-longer");
    push(s, "team-a/x", m1, &[("layer", 1_000), ("config-x", 10)]).await;
    push(s, "team-a/deep/y", m2, &[("layer", 1_000), ("config-y", 20)]).await;
    // Linked but referenced by no manifest: an orphan awaiting GC.
    s.commit_blob(&repo("team-a/x"), &digest("orphan"), 5_000, None, 3).await.unwrap();
    // Outside the project, though its name starts alike.
    push(s, "team-ab/z", "manifest-of-z", &[("other", 7)]).await;
    let expected = 1_000 + 10 + 20 + (m1.len() + m2.len()) as u64;
    assert_eq!(s.project_usage("team-a").await.unwrap(), usage(expected, 0, 5));
    assert_eq!(s.project_usage("empty").await.unwrap(), Usage::default());
}

pub async fn quota_reports_shared_and_exclusive_bytes(s: &dyn MetaStore) {
    let (ma, mb) = ("manifest-a", "manifest-bb");
    push(s, "team-a/app", ma, &[("base", 1_000), ("only-a", 100)]).await;
    push(s, "team-b/app", mb, &[("base", 1_000), ("only-b", 200)]).await;
    assert_eq!(s.project_usage("team-a").await.unwrap(), usage(1_100 + ma.len() as u64, 1_000, 3));
    assert_eq!(s.project_usage("team-b").await.unwrap(), usage(1_200 + mb.len() as u64, 1_000, 3));
    // library: one-component names and `library/...`, sharing `base` too.
    let (mc, md) = ("manifest-busybox", "manifest-nginx");
    push(s, "busybox", mc, &[("base", 1_000)]).await;
    push(s, "library/nginx", md, &[("nginx", 50)]).await;
    let lib = s.project_usage("library").await.unwrap();
    assert_eq!(lib, usage(1_050 + (mc.len() + md.len()) as u64, 1_000, 4));
}

pub async fn quota_stops_counting_a_deleted_manifest(s: &dyn MetaStore) {
    let m = push(s, "team-a/app", "manifest-gone", &[("layer-gone", 300)]).await;
    assert_eq!(s.project_usage("team-a").await.unwrap().total, 300 + "manifest-gone".len() as u64);
    assert!(s.delete_manifest(&repo("team-a/app"), &m.digest).await.unwrap().is_some());
    // The layer stays linked (an orphan until GC) but no longer counts.
    assert_eq!(s.project_usage("team-a").await.unwrap(), Usage::default());
}

pub async fn quota_check_counts_only_what_is_new(s: &dyn MetaStore) {
    assert!(!s.set_project_quota("team-q", Some(10)).await.unwrap(), "no such project");
    assert_eq!(s.project_quota("team-q").await.unwrap(), None);
    s.create_project("team-q", false, None, 1).await.unwrap();
    assert_eq!(s.project_quota("team-q").await.unwrap(), Some(None));
    let (known, new) = (digest("known"), digest("new"));
    let items = [(known.clone(), 1_000), (new.clone(), 300), (new.clone(), 300)];
    // Without a quota nothing is computed and nothing is exceeded.
    assert_eq!(s.quota_check("team-q", &items).await.unwrap(), QuotaCheck::default());
    let body = "manifest-q";
    push(s, "team-q/app", body, &[("known", 1_000)]).await;
    let used = 1_000 + body.len() as u64;
    assert!(s.set_project_quota("team-q", Some(1_200)).await.unwrap());
    assert_eq!(s.project_quota("team-q").await.unwrap(), Some(Some(1_200)));
    let check = s.quota_check("team-q", &items).await.unwrap();
    assert_eq!(check, QuotaCheck { limit: Some(1_200), used, adding: 300 });
    assert!(check.exceeded());
    // The manifest itself counts by digest: pushing it again adds nothing.
    let again = s.quota_check("team-q", &[(digest(body), body.len() as u64), (known, 1_000)]).await.unwrap();
    assert_eq!(again.adding, 0);
    // A stored blob counts at its stored size, whatever the push declares.
    push(s, "team-other/app", "manifest-other", &[("stored", 500)]).await;
    assert_eq!(s.quota_check("team-q", &[(digest("stored"), 1)]).await.unwrap().adding, 500);
    // Counted in another project does not count here.
    assert_eq!(s.quota_check("team-q", &[(digest("elsewhere"), 9)]).await.unwrap().adding, 9);
    assert!(s.set_project_quota("team-q", None).await.unwrap());
    assert_eq!(s.project_quota("team-q").await.unwrap(), Some(None));
}

pub async fn quota_usage_of_every_project_at_once(s: &dyn MetaStore) {
    for p in ["team-a", "team-b"] {
        s.create_project(p, false, None, 1).await.unwrap();
    }
    push(s, "team-a/x", "manifest-x", &[("layer", 1_000), ("config-x", 10)]).await;
    push(s, "team-a/deep/y", "manifest-yy", &[("layer", 1_000)]).await;
    // Names alike but no such project: not listed.
    push(s, "team-ab/z", "manifest-z", &[("other", 7)]).await;
    push(s, "busybox", "manifest-busybox", &[("layer", 1_000)]).await;
    push(s, "library/nginx", "manifest-nginx", &[("nginx", 50)]).await;
    assert!(s.set_project_quota("team-a", Some(5_000)).await.unwrap());

    let all = s.all_project_storage().await.unwrap();
    let row = |project: &str, limit| ProjectStorage { project: project.into(), used: 0, limit };
    let names: Vec<_> = all.iter().map(|p| p.project.as_str()).collect();
    assert_eq!(names, ["library", "team-a", "team-b"], "every project, by name");
    for (got, want) in all.iter().zip([row("library", None), row("team-a", Some(5_000)), row("team-b", None)]) {
        // Each total is what the per-project query counts.
        let used = s.project_usage(&want.project).await.unwrap().total;
        assert_eq!(*got, ProjectStorage { used, ..want });
    }
    assert_eq!(all[1].used, 1_010 + ("manifest-x".len() + "manifest-yy".len()) as u64, "shared layer once");
    assert_eq!(all[2].used, 0);
}

fn rule(repo: &str, tag: (Decoration, &str), disabled: bool) -> NewImmutableRule {
    NewImmutableRule {
        repository: RulePattern::new(Decoration::Matches, repo),
        tag: RulePattern::new(tag.0, tag.1),
        disabled,
    }
}

pub async fn immutable_rules_per_project(s: &dyn MetaStore) {
    s.create_project("team-i", false, None, 1).await.unwrap();
    let r1 = rule("**", (Decoration::Matches, "v*"), false);
    let r2 = rule("app", (Decoration::Excludes, "latest"), true);
    assert_eq!(s.create_immutable_rule("nope", &r1).await.unwrap(), None);
    let err = s.create_immutable_rule("team-i", &rule("{a,b", (Decoration::Matches, "x"), false)).await.unwrap_err();
    assert!(matches!(err, MetaError::Invalid(_)), "{err}");
    let a = s.create_immutable_rule("team-i", &r1).await.unwrap().unwrap();
    let b = s.create_immutable_rule("team-i", &r2).await.unwrap().unwrap();
    assert_eq!((a.project.as_str(), &a.rule), ("team-i", &r1));
    let listed = s.immutable_rules("team-i").await.unwrap();
    assert_eq!(listed, vec![a.clone(), b.clone()]);
    assert!(s.immutable_rules("library").await.unwrap().is_empty());
    let r3 = rule("api/**", (Decoration::Matches, "v{1,2}.*"), false);
    assert!(s.update_immutable_rule("team-i", b.id, &r3).await.unwrap());
    assert!(!s.update_immutable_rule("library", b.id, &r3).await.unwrap(), "another project's rule");
    assert_eq!(s.immutable_rules("team-i").await.unwrap()[1].rule, r3);
    assert!(!s.delete_immutable_rule("library", a.id).await.unwrap());
    assert!(s.delete_immutable_rule("team-i", a.id).await.unwrap());
    assert!(!s.delete_immutable_rule("team-i", a.id).await.unwrap());
    assert!(s.delete_project("team-i").await.unwrap());
    s.create_project("team-i", false, None, 2).await.unwrap();
    assert!(s.immutable_rules("team-i").await.unwrap().is_empty(), "rules go with their project");
}

pub async fn manifest_tags_lists_a_digests_tags(s: &dyn MetaStore) {
    let r = repo("team-t/app");
    let m = push(s, "team-t/app", "manifest-t", &[("t-layer", 5)]).await;
    let tags = [Tag::parse("stable").unwrap(), Tag::parse("a1").unwrap()];
    s.put_manifest(&r, &m, &tags, 3).await.unwrap();
    assert_eq!(s.manifest_tags(&r, &m.digest).await.unwrap(), ["a1", "stable", "v1"]);
    assert!(s.manifest_tags(&r, &digest("none")).await.unwrap().is_empty());
}
