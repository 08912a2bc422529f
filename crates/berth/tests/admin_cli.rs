//! `berth admin …` against a running server through its admin API, with
//! the CLI's own login: tables for people, `--json` for scripts, a session
//! file that holds a revocable token and never the password.

mod common;

use common::admin::berth_admin;

use common::{options, Reg};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const ADMIN_PW: &str = "correct horse battery staple";

fn ok(session: &Path, args: &[&str], stdin: &str) -> String {
    let out = berth_admin(session, args, stdin);
    assert!(out.status.success(), "berth admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn login_manage_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let reg = Reg::start_with(
        options()
            .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
            .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string()),
    );
    let session = dir.path().join("cli").join("admin.json");
    let url = reg.server.url();

    // A wrong password: refused, nothing saved.
    let out = berth_admin(&session, &["login", &url, "-u", "admin"], "not the password\n");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("login refused"));
    assert!(!session.exists());
    let out = berth_admin(&session, &["users", "list"], "");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("berth admin login"));

    ok(&session, &["login", &url, "-u", "admin"], &format!("{ADMIN_PW}\n"));
    let saved = std::fs::read_to_string(&session).unwrap();
    assert!(!saved.contains(ADMIN_PW), "the password is never kept");
    assert_eq!(std::fs::metadata(&session).unwrap().permissions().mode() & 0o777, 0o600);

    ok(&session, &["users", "create", "alice"], "alice-password-1\n");
    let table = ok(&session, &["users", "list"], "");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("USERNAME") && lines[0].contains("ADMIN"), "{table}");
    assert!(lines.iter().any(|l| l.split_whitespace().nth(1) == Some("alice")), "{table}");

    ok(&session, &["projects", "create", "team-a"], "");
    ok(&session, &["members", "set", "team-a", "alice", "developer"], "");
    let members: Value = serde_json::from_str(&ok(&session, &["--json", "members", "list", "team-a"], "")).unwrap();
    let rows: Vec<(&str, &str)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["username"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [("admin", "projectAdmin"), ("alice", "developer")]);

    // API errors come through with their code; the exit status says it failed.
    let out = berth_admin(&session, &["members", "set", "team-a", "alice", "owner"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("INVALID_INPUT"), "{}", String::from_utf8_lossy(&out.stderr));

    // A password change revokes the saved session.
    ok(&session, &["users", "passwd", "admin"], &format!("{ADMIN_PW}\nanother long password\n"));
    let out = berth_admin(&session, &["projects", "list"], "");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("login"));
    ok(&session, &["login", &url, "-u", "admin"], "another long password\n");
    let projects = ok(&session, &["projects", "list"], "");
    assert!(projects.lines().any(|l| l.contains("team-a")), "{projects}");
    ok(&session, &["logout"], "");
    assert!(!session.exists());
}
