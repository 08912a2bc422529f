//! `berth gc` against the data dir of a running `berth serve` (SQLite +
//! filesystem): push two images sharing a layer, delete one, collect with
//! `--grace 0s`; the deleted image's own blobs are gone, the server still
//! serves the other image whole.

mod support;

use berth_testkit::{BerthOptions, BerthServer};
use reqwest::blocking::Client;
use support::{image_manifest, sha256, BlobRef, ManifestFormat, OCI_MANIFEST};

fn push_blob(c: &Client, base: &str, repo: &str, data: &[u8]) {
    let url = format!("{base}/v2/{repo}/blobs/uploads/?digest={}", sha256(data));
    let r = c.post(url).header("content-type", "application/octet-stream").body(data.to_vec()).send().unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
}

fn push_image(c: &Client, base: &str, repo: &str, tag: &str, blobs: &[&[u8]]) -> String {
    for b in blobs {
        push_blob(c, base, repo, b);
    }
    let layers: Vec<BlobRef> = blobs[1..].iter().map(|b| BlobRef::of(b)).collect();
    let m = image_manifest(ManifestFormat::Oci, &BlobRef::of(blobs[0]), &layers);
    let r =
        c.put(format!("{base}/v2/{repo}/manifests/{tag}")).header("content-type", OCI_MANIFEST).body(m.clone()).send();
    assert_eq!(r.unwrap().status(), 201);
    sha256(&m)
}

fn blob_file(root: &std::path::Path, data: &[u8]) -> std::path::PathBuf {
    let hex = sha256(data)[7..].to_owned();
    root.join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
}

#[test]
fn gc_while_the_server_runs() {
    let server =
        BerthServer::start(BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth")).delete_enabled(true)).unwrap();
    let (c, base) = (Client::new(), server.url());
    let config: &[u8] = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}";
    let (shared, only_old, only_new) = (vec![1u8; 4096], vec![2u8; 8192], vec![3u8; 1024]);
    let old = push_image(&c, &base, "app", "old", &[config, &shared, &only_old]);
    push_image(&c, &base, "app", "new", &[config, &shared, &only_new]);
    let r = c.delete(format!("{base}/v2/app/manifests/{old}")).send().unwrap();
    assert_eq!(r.status(), 202);

    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("gc")
            .args(args)
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", server.data_dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let dry = run(&["--dry-run", "--grace", "0s"]);
    assert!(dry.contains("would remove") && dry.contains(&sha256(&only_old)), "{dry}");
    assert!(blob_file(server.data_dir(), &only_old).exists(), "a dry run removes nothing");
    let out = run(&["--grace", "0s"]);
    assert!(out.contains("1 blobs (8192 bytes freed)"), "{out}");
    assert!(!blob_file(server.data_dir(), &only_old).exists());
    for b in [config, &shared[..], &only_new[..]] {
        assert!(blob_file(server.data_dir(), b).exists());
        let r = c.get(format!("{base}/v2/app/blobs/{}", sha256(b))).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().unwrap(), b);
    }
    let r = c.get(format!("{base}/v2/app/blobs/{}", sha256(&only_old))).send().unwrap();
    assert_eq!(r.status(), 404, "no server serves what gc removed");
    let r = c.get(format!("{base}/v2/app/manifests/new")).header("accept", OCI_MANIFEST).send().unwrap();
    assert_eq!(r.status(), 200);
    // Usage after collection.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["usage", "--repo", "app"])
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", server.data_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("app"), "{text}");
}
