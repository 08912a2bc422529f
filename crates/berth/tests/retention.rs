//! Tag retention end to end (real binary, SQLite + filesystem): push four
//! tags, pull one (GET) and look at another (HEAD), set a Harbor-shaped
//! policy in the database, then `berth retention run --dry-run` and a real
//! run beside the running server. The real run removes exactly what the
//! dry run listed, and the server serves what remains and nothing else.

mod support;

use berth_testkit::{BerthOptions, BerthServer};
use reqwest::blocking::Client;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::{image_manifest, sha256, BlobRef, ManifestFormat, OCI_MANIFEST};

fn push_image(c: &Client, base: &str, repo: &str, tag: &str, config: &[u8]) -> String {
    let url = format!("{base}/v2/{repo}/blobs/uploads/?digest={}", sha256(config));
    let r = c.post(url).header("content-type", "application/octet-stream").body(config.to_vec()).send().unwrap();
    assert_eq!(r.status(), 201);
    let m = image_manifest(ManifestFormat::Oci, &BlobRef::of(config), &[]);
    let r = c.put(format!("{base}/v2/{repo}/manifests/{tag}")).header("content-type", OCI_MANIFEST).body(m.clone());
    assert_eq!(r.send().unwrap().status(), 201);
    sha256(&m)
}

fn manifest_status(c: &Client, base: &str, repo: &str, reference: &str) -> u16 {
    let r = c.get(format!("{base}/v2/{repo}/manifests/{reference}")).header("accept", OCI_MANIFEST).send().unwrap();
    r.status().as_u16()
}

/// Harbor's JSON: keep the most recently pushed artifact of `app` and the
/// most recently pulled one; other repositories are not selected.
const POLICY: &str = r#"{"algorithm": "or", "rules": [
  {"action": "retain", "template": "latestPushedK", "params": {"latestPushedK": 1},
   "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": "{\"untagged\":true}"}],
   "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "app"}]}},
  {"action": "retain", "template": "latestPulledN", "params": {"latestPulledN": 1},
   "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
   "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "app"}]}}],
 "trigger": {"kind": "Schedule", "settings": {"cron": ""}}}"#;

#[test]
fn dry_run_then_apply_beside_a_running_server() {
    let server = BerthServer::start(BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth"))).unwrap();
    let (c, base) = (Client::new(), server.url());
    let mut digests = Vec::new();
    for i in 1..=4 {
        digests.push(push_image(&c, &base, "team/app", &format!("v{i}"), format!("{{\"n\":{i}}}").as_bytes()));
        std::thread::sleep(Duration::from_millis(5)); // distinct push times
    }
    let keep = push_image(&c, &base, "team/keep", "old", b"{\"keep\":1}");
    // A GET is a pull; a HEAD afterwards is not (Harbor counts GETs).
    assert_eq!(manifest_status(&c, &base, "team/app", "v1"), 200);
    std::thread::sleep(Duration::from_millis(5));
    let r = c.head(format!("{base}/v2/team/app/manifests/v2")).header("accept", OCI_MANIFEST).send().unwrap();
    assert_eq!(r.status(), 200);

    let db = rusqlite::Connection::open(server.data_dir().join("berth/metadata.sqlite")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    // The pull reaches the database within the flush interval (1 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    let pulled = |d: &str| -> i64 {
        db.query_row("SELECT last_pulled_ms FROM manifests WHERE digest = ?1", [d], |r| r.get(0)).unwrap()
    };
    while pulled(&digests[0]) == 0 {
        assert!(Instant::now() < deadline, "the GET was never recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(pulled(&digests[1]), 0, "a HEAD is not a pull");
    db.execute(
        "INSERT INTO retention_policies (project, policy, cron, updated_ms) VALUES ('team', ?1, NULL, 0)",
        [POLICY],
    )
    .unwrap();

    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["retention", "run", "--project", "team"])
            .args(args)
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", server.data_dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = |out: &str, verb: &str| -> BTreeSet<String> {
        out.lines()
            .filter_map(|l| l.strip_prefix(&format!("{verb}\t")))
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect()
    };
    let at = |i: usize| format!("team/app@{}", digests[i]);

    let dry = run(&["--dry-run"]);
    let would = listed(&dry, "would remove");
    assert_eq!(would, BTreeSet::from([at(1), at(2)]), "v2 and v3 go; v4 newest, v1 pulled:\n{dry}");
    assert!(listed(&dry, "retain").contains(&format!("team/keep@{keep}")), "{dry}");
    assert_eq!(manifest_status(&c, &base, "team/app", "v2"), 200, "a dry run removes nothing");

    let applied = run(&[]);
    assert_eq!(listed(&applied, "remove"), would, "the run removes what the dry run listed:\n{applied}");
    for (tag, status) in [("v1", 200), ("v2", 404), ("v3", 404), ("v4", 200)] {
        assert_eq!(manifest_status(&c, &base, "team/app", tag), status, "{tag}");
    }
    assert_eq!(manifest_status(&c, &base, "team/app", &digests[1]), 404);
    assert_eq!(manifest_status(&c, &base, "team/keep", "old"), 200);
    let tags: serde_json::Value = c.get(format!("{base}/v2/team/app/tags/list")).send().unwrap().json().unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1", "v4"]));
    let runs: Vec<(bool, String)> = db
        .prepare("SELECT dry_run, status FROM retention_runs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(runs, [(true, "succeeded".to_owned()), (false, "succeeded".to_owned())]);
}
