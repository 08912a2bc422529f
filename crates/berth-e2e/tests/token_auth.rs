//! Issue 17: the real clients log in to Berth's own token service.

use berth_e2e::{tail, token_clients};
use berth_testkit::{BerthOptions, BerthServer, Containerd, Dockerd, Podman};

const ADMIN_PASSWORD: &str = "e2e-admin-password-1";

fn berth_with_token_auth(dir: &std::path::Path) -> BerthServer {
    let pw = dir.join("admin.pw");
    std::fs::write(&pw, format!("{ADMIN_PASSWORD}\n")).unwrap();
    BerthServer::start(
        BerthOptions::default()
            .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
            .env("BERTH_ADMIN_PASSWORD_FILE", pw.display().to_string()),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn clients_log_in_to_the_token_service() {
    let dir = tempfile::tempdir().unwrap();
    let berth = berth_with_token_auth(dir.path());
    let fail = |what: &str, e: String, extra: String| -> ! {
        panic!("{what}: {e}\n--- berth log (tail) ---\n{}\n{extra}", tail(&berth.log(), 40))
    };
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = token_clients::docker(&docker, berth.addr(), "admin", ADMIN_PASSWORD) {
        fail("docker", e, tail(&docker.log(), 20));
    }
    drop(docker);
    let podman = Podman::new().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = token_clients::podman(&podman, berth.addr(), "admin", ADMIN_PASSWORD) {
        fail("podman", e, String::new());
    }
    if let Err(e) = token_clients::skopeo(dir.path(), berth.addr(), "admin", ADMIN_PASSWORD) {
        fail("skopeo", e, String::new());
    }
    let containerd = Containerd::start().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = token_clients::containerd(&containerd, berth.addr(), "admin", ADMIN_PASSWORD) {
        fail("containerd", e, tail(&containerd.log(), 20));
    }
    let oras = berth_testkit::Oras::locate().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = token_clients::oras(&oras, berth.addr(), "admin", ADMIN_PASSWORD) {
        fail("oras-py", e, String::new());
    }
    let log = berth.log();
    assert!(!log.contains(ADMIN_PASSWORD), "the password is in the log");
}
