//! The planner against Harbor's documented behaviour ("Create Tag Retention
//! Rules", goharbor.io/docs/latest/working-with-projects/working-with-images/
//! create-tag-retention-rules/): its Examples 1 and 2 exactly, and the
//! filters and OR as that page describes them.

use super::plan::{plan, Decision, Role};
use super::policy::{five_field_cron, Policy, PolicyError};
use berth_meta::RetentionArtifact;
use berth_oci::{Algorithm, Digest};

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_000 * DAY;

fn d(s: &str) -> Digest {
    Digest::compute(Algorithm::Sha256, s.as_bytes())
}

fn art(repo: &str, name: &str, tags: &[&str], pushed: i64, pulled: i64) -> RetentionArtifact {
    RetentionArtifact {
        repository: repo.into(),
        digest: d(&format!("{repo}/{name}")),
        media_type: berth_oci::media_type::OCI_MANIFEST.into(),
        subject: None,
        pushed_ms: pushed,
        last_pulled_ms: pulled,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        children: vec![],
    }
}

/// One rule in Harbor's JSON.
fn rule(template: &str, n: Option<u64>, repos: &str, tags: &str, untagged: bool) -> String {
    let params = n.map(|n| format!(r#"{{"{template}": {n}}}"#)).unwrap_or_else(|| "{}".into());
    format!(
        r#"{{"disabled": false, "action": "retain", "template": "{template}", "params": {params},
            "tag_selectors": [{{"kind": "doublestar", "decoration": "matches", "pattern": "{tags}",
                               "extras": "{{\"untagged\":{untagged}}}"}}],
            "scope_selectors": {{"repository": [{{"kind": "doublestar", "decoration": "repoMatches",
                                                 "pattern": "{repos}"}}]}}}}"#
    )
}

fn run(rules: &[String], arts: &[RetentionArtifact]) -> Vec<Decision> {
    let json = format!(
        r#"{{"algorithm": "or", "rules": [{}], "trigger": {{"kind": "Schedule", "settings": {{"cron": ""}}}}}}"#,
        rules.join(",")
    );
    let rules = Policy::parse(&json).unwrap().compile().unwrap();
    plan("proj", &rules, arts, NOW, &|_, _| false)
}

fn kept_in(ds: &[Decision], repo: &str) -> usize {
    ds.iter().filter(|x| x.retained && x.repository == repo).count()
}

fn retained(ds: &[Decision], a: &RetentionArtifact) -> bool {
    ds.iter().find(|x| x.digest == a.digest && x.repository == a.repository).unwrap().retained
}

/// Harbor's Example 1 and 2: repository A has 100 artifacts, all pulled in
/// the last week; B to E have 6 each, none pulled in the last month.
fn examples_project() -> Vec<RetentionArtifact> {
    let mut arts = Vec::new();
    for i in 0..100 {
        arts.push(art("proj/a", &i.to_string(), &[&format!("t{i}")], i, NOW - 6 * DAY + i * 1000));
    }
    for repo in ["proj/b", "proj/c", "proj/d", "proj/e"] {
        for i in 0..6 {
            arts.push(art(repo, &i.to_string(), &[&format!("t{i}")], i, NOW - 40 * DAY + i));
        }
    }
    arts
}

#[test]
fn example_1_most_recently_pulled_counts_per_repository() {
    // "retain the 10 most recently pulled images in each repository": 10 in
    // A and all 6 in each of B to E, 34 in all — not one pool of 10.
    let ds = run(&[rule("latestPulledN", Some(10), "**", "**", false)], &examples_project());
    assert_eq!(ds.iter().filter(|x| x.retained).count(), 34);
    assert_eq!(kept_in(&ds, "proj/a"), 10);
    for r in ["proj/b", "proj/c", "proj/d", "proj/e"] {
        assert_eq!(kept_in(&ds, r), 6);
    }
    // The 10 are A's most recently pulled (t90..t99).
    let a: Vec<&str> =
        ds.iter().filter(|x| x.retained && x.repository == "proj/a").map(|x| x.tags[0].as_str()).collect();
    assert!(a.iter().all(|t| t[1..].parse::<u32>().unwrap() >= 90), "{a:?}");
}

#[test]
fn example_2_pulled_in_the_last_7_days() {
    // All 100 of A are retained, none of B to E.
    let ds = run(&[rule("nDaysSinceLastPull", Some(7), "**", "**", false)], &examples_project());
    assert_eq!(ds.iter().filter(|x| x.retained).count(), 100);
    assert_eq!(kept_in(&ds, "proj/a"), 100);
    assert_eq!(kept_in(&ds, "proj/b"), 0);
}

#[test]
fn rules_combine_with_or() {
    let old_release = art("proj/app", "r1", &["1.0"], 1, 0);
    let fresh_dev = art("proj/app", "dev", &["dev-9"], NOW - DAY, 0);
    let old_dev = art("proj/app", "old", &["dev-1"], NOW - 30 * DAY, 0);
    let ds = run(
        &[rule("always", None, "**", "{1,2}.*", false), rule("nDaysSinceLastPush", Some(7), "**", "**", false)],
        &[old_release.clone(), fresh_dev.clone(), old_dev.clone()],
    );
    assert!(retained(&ds, &old_release) && retained(&ds, &fresh_dev));
    assert!(!retained(&ds, &old_dev));
    let why = |a: &RetentionArtifact| ds.iter().find(|x| x.digest == a.digest).unwrap().reason.clone();
    assert_eq!(why(&old_release), "rule 1 (always)");
    assert_eq!(why(&fresh_dev), "rule 2 (nDaysSinceLastPush 7)");
    assert_eq!(why(&old_dev), "no rule retains it");
}

#[test]
fn most_recently_pushed_with_a_tag_filter_and_untagged() {
    // Tags matching `v*`: the 2 most recently pushed stay; an artifact the
    // tag filter does not select is not retained by that rule, so goes.
    let v: Vec<_> = (1..=4).map(|i| art("proj/app", &format!("v{i}"), &[&format!("v{i}")], i, 0)).collect();
    let other = art("proj/app", "latest", &["latest"], 10, 0);
    let untagged = art("proj/app", "u", &[], 20, 0);
    let mut all = v.clone();
    all.extend([other.clone(), untagged.clone()]);
    let ds = run(&[rule("latestPushedK", Some(2), "**", "v*", false)], &all);
    assert_eq!(v.iter().map(|a| retained(&ds, a)).collect::<Vec<_>>(), [false, false, true, true]);
    assert!(!retained(&ds, &other));
    assert!(!retained(&ds, &untagged), "untagged are not selected unless the rule says so");
    // With "untagged artifacts" checked they compete like the rest.
    let ds = run(&[rule("latestPushedK", Some(2), "**", "v*", true)], &all);
    assert!(retained(&ds, &untagged) && retained(&ds, &v[3]) && !retained(&ds, &v[2]));
}

#[test]
fn repositories_no_rule_selects_are_left_alone() {
    // "No action is taken on the nonspecified repositories."
    let web = art("proj/web", "1", &["old"], 1, 0);
    let api = art("proj/team/api", "1", &["old"], 1, 0);
    let app = art("proj/app", "1", &["old"], 1, 0);
    let ds = run(
        &[rule("nDaysSinceLastPush", Some(1), "{app,team/**}", "**", false)],
        &[web.clone(), api.clone(), app.clone()],
    );
    assert!(retained(&ds, &web), "web is matched by no rule");
    assert!(!retained(&ds, &api) && !retained(&ds, &app), "selected by name within the project");
}

#[test]
fn index_children_and_referrers_go_with_their_artifact() {
    let child_a = art("proj/app", "ca", &[], 1, 0);
    let child_b = art("proj/app", "cb", &[], 1, 0);
    let mut old_index = art("proj/app", "old", &["v1"], 1, 0);
    old_index.children = vec![child_a.digest.clone(), child_b.digest.clone()];
    old_index.media_type = berth_oci::media_type::OCI_INDEX.into();
    let mut new_index = art("proj/app", "new", &["v2"], 5, 0);
    new_index.children = vec![child_b.digest.clone()];
    let mut sig_old = art("proj/app", "sig-old", &[], 2, 0);
    sig_old.subject = Some(old_index.digest.clone());
    let mut sig_new = art("proj/app", "sig-new", &[], 6, 0);
    sig_new.subject = Some(new_index.digest.clone());
    let all =
        [child_a.clone(), child_b.clone(), old_index.clone(), new_index.clone(), sig_old.clone(), sig_new.clone()];
    // Untagged selected too: children and referrers must still not be judged alone.
    let ds = run(&[rule("latestPushedK", Some(1), "**", "**", true)], &all);
    let got = |a: &RetentionArtifact| ds.iter().find(|x| x.digest == a.digest).unwrap();
    assert!(got(&new_index).retained && got(&child_b).retained && got(&sig_new).retained);
    assert!(!got(&old_index).retained && !got(&child_a).retained && !got(&sig_old).retained);
    assert_eq!(
        (got(&child_a).role, got(&sig_old).role, got(&old_index).role),
        (Role::Child, Role::Referrer, Role::Artifact)
    );
    assert_eq!(got(&child_b).reason, format!("child of retained {}", new_index.digest));
    assert_eq!(got(&sig_old).reason, "its subject is removed");
}

#[test]
fn immutable_tags_are_never_removed() {
    let a = art("proj/app", "1", &["1.0", "x"], 1, 0);
    let b = art("proj/app", "2", &["2.0"], 2, 0);
    let rules = Policy::parse(&format!(r#"{{"rules": [{}]}}"#, rule("latestPushedK", Some(0), "**", "**", false)))
        .unwrap()
        .compile()
        .unwrap();
    let ds = plan("proj", &rules, &[a.clone(), b.clone()], NOW, &|repo, tag| repo == "proj/app" && tag == "1.0");
    assert!(ds[0].retained && ds[0].reason == "immutable tag 1.0" && !ds[1].retained);
}

#[test]
fn library_repositories_are_named_without_a_project() {
    let bb = art("busybox", "1", &["old"], 1, 0);
    let lib = art("library/alpine", "1", &["old"], 1, 0);
    let rules = Policy::parse(&format!(r#"{{"rules": [{}]}}"#, rule("always", None, "busybox", "**", false)))
        .unwrap()
        .compile()
        .unwrap();
    let ds = plan("library", &rules, &[bb.clone(), lib.clone()], NOW, &|_, _| false);
    assert!(ds.iter().all(|x| x.retained), "busybox by rule, alpine by no selection: {ds:?}");
}

#[test]
fn harbor_policies_parse_and_bad_ones_say_why() {
    let json = r#"{"algorithm":"or","rules":[{"disabled":false,"action":"retain","params":{"latestPushedK":10},
        "tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"**","extras":"{\"untagged\":true}"}],
        "scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]},
        "template":"latestPushedK"}],"trigger":{"kind":"Schedule","references":{},"settings":{"cron":"0 0 0 * * *"}},
        "scope":{"level":"project","ref":3}}"#;
    let p = Policy::parse(json).unwrap();
    assert_eq!(p.cron(), Some("0 0 0 * * *"));
    assert_eq!(five_field_cron(p.cron().unwrap()), "0 0 * * *");
    let rules = p.compile().unwrap();
    assert!(rules[0].untagged && rules[0].template == super::Template::LatestPushed(10));
    let too_many = format!(r#"{{"rules": [{}]}}"#, vec![rule("always", None, "**", "**", false); 16].join(","));
    assert!(matches!(Policy::parse(&too_many).unwrap().compile(), Err(PolicyError::TooManyRules(16))));
    for bad in [
        rule("latestPushedK", None, "**", "**", false),
        rule("nothing", None, "**", "**", false),
        rule("always", None, "[", "**", false),
    ] {
        assert!(Policy::parse(&format!(r#"{{"rules": [{bad}]}}"#)).unwrap().compile().is_err(), "{bad}");
    }
    let disabled = rule("nothing", None, "**", "**", false).replace(r#""disabled": false"#, r#""disabled": true"#);
    assert!(Policy::parse(&format!(r#"{{"rules": [{disabled}]}}"#)).unwrap().compile().unwrap().is_empty());
}
