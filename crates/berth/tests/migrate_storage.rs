//! `berth migrate-storage`: a filesystem store copied to S3 (a real Garage)
//! and back, every blob verified, re-runs resuming, and a server on the new
//! store serving the same images byte-exact from the same metadata.

use berth_oci::{Algorithm, Digest};
use berth_testkit::{BerthOptions, BerthServer, Garage};
use reqwest::blocking::Client;
use std::path::Path;
use std::process::Command;

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| ((i * 7919) as u8) ^ seed).collect()
}

fn write(path: &Path, text: &str) -> std::path::PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

fn fs_config(dir: &Path, name: &str, root: &Path, db: &Path) -> std::path::PathBuf {
    write(
        &dir.join(name),
        &format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nberth:\n  database:\n    path: {}\n",
            root.display(),
            db.display()
        ),
    )
}

fn s3_config(dir: &Path, garage: &Garage, db: &Path) -> std::path::PathBuf {
    write(
        &dir.join("s3.yml"),
        &format!(
            "version: 0.1\nstorage:\n  s3:\n    accesskey: {}\n    secretkey: {}\n    region: {}\n    regionendpoint: {}\n\
             \x20   bucket: {}\n    rootdirectory: /migrated\n    forcepathstyle: true\n    secure: false\n  redirect:\n\
             \x20   disable: true\nberth:\n  database:\n    path: {}\n",
            garage.access_key(),
            garage.secret_key(),
            garage.region(),
            garage.endpoint(),
            garage.bucket(),
            db.display()
        ),
    )
}

fn migrate(from: &Path, to: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("migrate-storage")
        .arg(from)
        .arg("--to")
        .arg(to)
        .env_remove("REGISTRY_CONFIGURATION_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "migrate-storage failed:\n{stderr}");
    stderr
}

fn serve(config: &Path) -> BerthServer {
    BerthServer::start(
        BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth")).config_file(config).filesystem_root(false),
    )
    .unwrap()
}

#[test]
fn filesystem_to_s3_and_back() {
    let garage = Garage::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("meta.sqlite");
    let original = fs_config(dir.path(), "fs.yml", &dir.path().join("fs"), &db);
    let blobs = [bytes(9 << 20, 1), bytes(1000, 2), bytes(3 << 20, 3)];
    let digests: Vec<Digest> = blobs.iter().map(|b| Digest::compute(Algorithm::Sha256, b)).collect();
    let http = Client::new();
    {
        let s = serve(&original);
        for (b, d) in blobs.iter().zip(&digests) {
            let r = http.post(format!("{}/v2/mig/app/blobs/uploads/?digest={d}", s.url())).body(b.clone()).send();
            assert_eq!(r.unwrap().status(), 201);
        }
    }

    let to_s3 = s3_config(dir.path(), &garage, &db);
    let report = migrate(&original, &to_s3);
    assert!(report.contains("3 blobs copied"), "{report}");
    let again = migrate(&original, &to_s3);
    assert!(again.contains("0 blobs copied") && again.contains("3 already present"), "{again}");

    let check = |config: &Path| {
        let s = serve(config);
        for (b, d) in blobs.iter().zip(&digests) {
            let got = http.get(format!("{}/v2/mig/app/blobs/{d}", s.url())).send().unwrap();
            assert_eq!(got.status(), 200, "{d}");
            assert!(got.bytes().unwrap()[..] == b[..], "{d} byte-exact");
        }
    };
    check(&to_s3);

    // And back, into an empty directory.
    let back = fs_config(dir.path(), "back.yml", &dir.path().join("back"), &db);
    let report = migrate(&to_s3, &back);
    assert!(report.contains("3 blobs copied"), "{report}");
    check(&back);
}
