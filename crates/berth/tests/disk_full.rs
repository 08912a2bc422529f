//! A full disk fails the request cleanly (507, the spec's error body) and
//! leaves nothing partial: what was stored before stays intact, the failed
//! blob is unknown, its staged bytes are gone, and smaller pushes still work.
//! The data directory is a 24 MiB tmpfs mounted by the test (CI runs as root).

use berth_oci::{Algorithm, Digest};
use berth_testkit::{BerthOptions, BerthServer};
use reqwest::blocking::Client;
use std::path::Path;
use std::process::Command;

struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(out.status.success(), "mounting a tmpfs needs root: {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn push(http: &Client, base: &str, repo: &str, data: &[u8]) -> reqwest::blocking::Response {
    let digest = Digest::compute(Algorithm::Sha256, data);
    http.post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}")).body(data.to_vec()).send().unwrap()
}

fn staged_bytes(root: &Path) -> u64 {
    std::fs::read_dir(root.join("berth/uploads"))
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[test]
fn full_disk_fails_cleanly_and_keeps_what_was_stored() {
    let fs = Tmpfs::mount("24m");
    let s = BerthServer::start(
        BerthOptions::default()
            .bin(env!("CARGO_BIN_EXE_berth"))
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", fs.path().to_str().unwrap()),
    )
    .unwrap();
    let http = Client::new();
    let base = s.url();

    let kept = bytes(4 << 20, 1);
    assert_eq!(push(&http, &base, "full/a", &kept).status(), 201);

    // Far more than is left: the monolithic push must fail, not half-succeed.
    let big = bytes(40 << 20, 2);
    let resp = push(&http, &base, "full/a", &big);
    assert_eq!(resp.status(), 507, "a full disk is reported as such");
    let body: serde_json::Value = resp.json().unwrap();
    assert!(body["errors"][0]["code"].is_string(), "{body}");
    let big_digest = Digest::compute(Algorithm::Sha256, &big);
    assert_eq!(http.head(format!("{base}/v2/full/a/blobs/{big_digest}")).send().unwrap().status(), 404);
    assert_eq!(staged_bytes(fs.path()), 0, "no partial upload left behind");

    // A chunked upload that runs out of space keeps its acknowledged bytes.
    let loc = http.post(format!("{base}/v2/full/a/blobs/uploads/")).send().unwrap();
    let loc = format!("{base}{}", loc.headers()["location"].to_str().unwrap());
    let first = bytes(1 << 20, 3);
    let r =
        http.patch(&loc).header("content-range", format!("0-{}", first.len() - 1)).body(first.clone()).send().unwrap();
    assert_eq!(r.status(), 202);
    let loc = format!("{base}{}", r.headers()["location"].to_str().unwrap());
    let r = http.patch(&loc).body(big.clone()).send().unwrap();
    assert_eq!(r.status(), 507);
    let status = http.get(&loc).send().unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], format!("0-{}", first.len() - 1), "acknowledged bytes survive");
    assert_eq!(http.delete(&loc).send().unwrap().status(), 204);

    // What was stored is intact; small pushes still work.
    let digest = Digest::compute(Algorithm::Sha256, &kept);
    let got = http.get(format!("{base}/v2/full/a/blobs/{digest}")).send().unwrap().bytes().unwrap();
    assert!(got[..] == kept[..], "stored blob intact");
    assert_eq!(push(&http, &base, "full/b", &bytes(64 << 10, 4)).status(), 201);
}
