//! Issue 18: docker pushes with a robot account; quota, tag immutability
//! and retention, set through the admin API, act on real pushes and pulls.

use berth_e2e::{governance, tail};
use berth_testkit::{BerthOptions, BerthServer, Dockerd};

const ADMIN_PASSWORD: &str = "e2e-admin-password-1";

#[test]
fn robot_push_quota_immutability_and_retention_with_docker_on_sqlite() {
    scenario(None);
}

#[test]
fn robot_push_quota_immutability_and_retention_with_docker_on_postgres() {
    let pg = berth_testkit::Postgres::start().unwrap_or_else(|e| panic!("{e}"));
    scenario(Some(pg.url("postgres")));
}

fn scenario(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("admin.pw");
    std::fs::write(&pw, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let mut opts = BerthOptions::default()
        .delete_enabled(true)
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("BERTH_ADMIN_PASSWORD_FILE", pw.display().to_string());
    if let Some(url) = database_url {
        opts = opts.env("REGISTRY_BERTH_DATABASE_URL", url);
    }
    let berth = BerthServer::start(opts).unwrap_or_else(|e| panic!("{e}"));
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    let api = governance::AdminApi::new(berth.addr(), "admin", ADMIN_PASSWORD);
    if let Err(e) = governance::docker(&docker, berth.addr(), &api) {
        panic!(
            "{e}\n--- berth log (tail) ---\n{}\n--- dockerd ---\n{}",
            tail(&berth.log(), 40),
            tail(&docker.log(), 20)
        );
    }
}
