//! No server serves what garbage collection removed: an untagged manifest
//! fetched by digest (so it sits in the server's manifest cache) is 404 on
//! the next GET once a collection removed it, whether the collection ran
//! inside the server (scheduled), as a separate `berth gc` process beside a
//! server on the same SQLite file, or as `berth gc` beside two nodes sharing
//! PostgreSQL.

mod support;

use berth_testkit::{BerthOptions, BerthServer, Postgres};
use reqwest::blocking::Client;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{image_manifest, sha256, BlobRef, ManifestFormat, OCI_MANIFEST};

fn push_blob(c: &Client, base: &str, repo: &str, data: &[u8]) {
    let url = format!("{base}/v2/{repo}/blobs/uploads/?digest={}", sha256(data));
    let r = c.post(url).header("content-type", "application/octet-stream").body(data.to_vec()).send().unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
}

/// Pushes an image by digest only (untagged); returns its digest.
fn push_untagged(c: &Client, base: &str, repo: &str, seed: u8) -> String {
    let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":{seed}}}").into_bytes();
    let layer = vec![seed; 2048];
    push_blob(c, base, repo, &config);
    push_blob(c, base, repo, &layer);
    let m = image_manifest(ManifestFormat::Oci, &BlobRef::of(&config), &[BlobRef::of(&layer)]);
    let digest = sha256(&m);
    let r = c.put(format!("{base}/v2/{repo}/manifests/{digest}")).header("content-type", OCI_MANIFEST).body(m).send();
    assert_eq!(r.unwrap().status(), 201);
    digest
}

fn get(c: &Client, base: &str, repo: &str, digest: &str) -> u16 {
    let r = c.get(format!("{base}/v2/{repo}/manifests/{digest}")).header("accept", OCI_MANIFEST).send().unwrap();
    r.status().as_u16()
}

fn berth_gc(envs: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["gc", "--grace", "0s", "--untagged", ".*"])
        .env_remove("REGISTRY_CONFIGURATION_PATH")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn separate_gc_beside_a_server_on_sqlite() {
    let server = BerthServer::start(BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth"))).unwrap();
    let (c, base) = (Client::new(), server.url());
    let digest = push_untagged(&c, &base, "app", 1);
    std::thread::sleep(Duration::from_millis(400)); // the cache watch has answered once
    assert_eq!(get(&c, &base, "app", &digest), 200);
    assert_eq!(get(&c, &base, "app", &digest), 200, "now served from the cache");
    let out = berth_gc(&[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", &server.data_dir().display().to_string())]);
    assert!(out.contains("removed: 1 untagged manifests"), "{out}");
    assert_eq!(get(&c, &base, "app", &digest), 404, "served from a stale cache");
}

#[test]
fn scheduled_gc_inside_the_server() {
    // The schedule fires at minute boundaries: push early in a minute, so the
    // manifest is cached before the run that removes it.
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() % 60;
    if secs > 45 {
        std::thread::sleep(Duration::from_secs(62 - secs));
    }
    let server = BerthServer::start(
        BerthOptions::default()
            .bin(env!("CARGO_BIN_EXE_berth"))
            .env("REGISTRY_BERTH_GC_SCHEDULE", "* * * * *")
            .env("REGISTRY_BERTH_GC_GRACE", "0s")
            .env("REGISTRY_BERTH_GC_UNTAGGED", ".*"),
    )
    .unwrap();
    let (c, base) = (Client::new(), server.url());
    let digest = push_untagged(&c, &base, "app", 2);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(get(&c, &base, "app", &digest), 200);
    assert_eq!(get(&c, &base, "app", &digest), 200);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !server.log().contains("removed 1 manifests") {
        assert!(Instant::now() < deadline, "no scheduled collection:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(&c, &base, "app", &digest), 404, "served from a stale cache");
}

fn node(pg: &Postgres, root: &Path) -> BerthServer {
    BerthServer::start(
        BerthOptions::default()
            .bin(env!("CARGO_BIN_EXE_berth"))
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", root.display().to_string())
            .env("REGISTRY_BERTH_DATABASE_URL", pg.url("postgres")),
    )
    .unwrap()
}

#[test]
fn separate_gc_beside_two_nodes_on_postgres() {
    let pg = Postgres::start().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let (a, b) = (node(&pg, shared.path()), node(&pg, shared.path()));
    let c = Client::new();
    let digest = push_untagged(&c, &a.url(), "app", 3);
    std::thread::sleep(Duration::from_millis(1500)); // both nodes' heartbeats make their caches usable
    for n in [&a, &b] {
        assert_eq!(get(&c, &n.url(), "app", &digest), 200);
        assert_eq!(get(&c, &n.url(), "app", &digest), 200);
    }
    let root = shared.path().display().to_string();
    let url = pg.url("postgres");
    let out = berth_gc(&[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", &root), ("REGISTRY_BERTH_DATABASE_URL", &url)]);
    assert!(out.contains("removed: 1 untagged manifests"), "{out}");
    for n in [&a, &b] {
        assert_eq!(get(&c, &n.url(), "app", &digest), 404, "node {} served from a stale cache", n.url());
    }
}
