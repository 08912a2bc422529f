//! Rate limits (`berth.ratelimit`) against the real binary: a burst past
//! the bucket is answered `429 TOOMANYREQUESTS` with `Retry-After` and the
//! registry's error body (the Distribution spec's error code; RFC 6585 for
//! the status and header), other clients keep their own bucket, and the
//! bucket refills at the configured rate.

mod common;

use common::{expect_error, options, Reg};
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const ADMIN_PW: &str = "correct horse battery staple";

/// This worktree's binary when `BERTH_BIN` names one (several builds share the target dir).
fn opts() -> berth_testkit::BerthOptions {
    match std::env::var("BERTH_BIN") {
        Ok(bin) => options().bin(bin),
        Err(_) => options(),
    }
}

/// A client whose connections come from `source` (any 127/8 address is loopback).
fn client_from(source: Ipv4Addr) -> Client {
    Client::builder().local_address(IpAddr::V4(source)).timeout(Duration::from_secs(30)).build().unwrap()
}

fn get(client: &Client, reg: &Reg, who: Option<(&str, &str)>) -> Response {
    let mut r = client.get(reg.url("/v2/"));
    if let Some((u, p)) = who {
        r = r.basic_auth(u, Some(p));
    }
    r.send().unwrap()
}

fn assert_refused(resp: Response) {
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let secs: u64 = retry.as_deref().unwrap_or_else(|| panic!("no Retry-After")).parse().unwrap();
    assert!((1..=2).contains(&secs), "Retry-After {secs}");
    expect_error(resp, 429, "TOOMANYREQUESTS");
}

#[test]
fn a_burst_past_the_per_address_limit_is_refused_then_refilled() {
    let reg = Reg::start_with(
        opts().env("REGISTRY_BERTH_RATELIMIT_PERIP_RATE", "2").env("REGISTRY_BERTH_RATELIMIT_PERIP_BURST", "5"),
    );
    let (a, b) = (client_from(Ipv4Addr::new(127, 0, 0, 2)), client_from(Ipv4Addr::new(127, 0, 0, 3)));
    for i in 0..5 {
        assert_eq!(get(&a, &reg, None).status(), StatusCode::OK, "request {i} of the burst");
    }
    assert_refused(get(&a, &reg, None));
    // Refused requests take no token, and another address has its own bucket.
    assert_refused(get(&a, &reg, None));
    for i in 0..5 {
        assert_eq!(get(&b, &reg, None).status(), StatusCode::OK, "other client, request {i}");
    }
    // 2 per second: one token back within 500 ms.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(get(&a, &reg, None).status(), StatusCode::OK);
    assert_refused(get(&a, &reg, None));
}

#[test]
fn the_per_account_limit_counts_each_account_apart() {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let reg = Reg::start_with(
        opts()
            .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
            .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string())
            .env("REGISTRY_BERTH_RATELIMIT_PERUSER_RATE", "1")
            .env("REGISTRY_BERTH_RATELIMIT_PERUSER_BURST", "3"),
    );
    let http = Client::new();
    let created = http
        .post(reg.url("/api/v1/users"))
        .basic_auth("admin", Some(ADMIN_PW))
        .json(&serde_json::json!({"username": "bob", "password": "bob-password-1"}))
        .send()
        .unwrap();
    assert!(created.status().is_success(), "{}", created.text().unwrap());
    let admin = Some(("admin", ADMIN_PW));
    for i in 0..3 {
        assert_eq!(get(&http, &reg, admin).status(), StatusCode::OK, "request {i} of the burst");
    }
    assert_refused(get(&http, &reg, admin));
    // Same address, another account: its own bucket.
    for i in 0..3 {
        assert_eq!(get(&http, &reg, Some(("bob", "bob-password-1"))).status(), StatusCode::OK, "bob, request {i}");
    }
    // Anonymous requests are not counted per account (they get the challenge).
    assert_eq!(get(&http, &reg, None).status(), StatusCode::UNAUTHORIZED);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(get(&http, &reg, admin).status(), StatusCode::OK);
    assert_refused(get(&http, &reg, admin));
}

#[test]
fn without_configuration_nothing_is_limited() {
    let reg = Reg::start_with(opts());
    let a = client_from(Ipv4Addr::new(127, 0, 0, 4));
    for i in 0..300 {
        assert_eq!(get(&a, &reg, None).status(), StatusCode::OK, "request {i}");
    }
}

/// Manifest GET latency with the limits off and on (generous enough never
/// to refuse): `… --test ratelimit -- --ignored --nocapture`. Sequential
/// requests on one keep-alive connection, alternating servers so machine
/// noise hits both alike.
#[test]
#[ignore = "a measurement, not a check"]
fn manifest_get_cost_with_limits_off_and_on() {
    let off = Reg::start_with(opts());
    let on = Reg::start_with(
        opts()
            .env("REGISTRY_BERTH_RATELIMIT_PERIP_RATE", "1000000000")
            .env("REGISTRY_BERTH_RATELIMIT_PERIP_BURST", "1000000000")
            .env("REGISTRY_BERTH_RATELIMIT_PERUSER_RATE", "1000000000"),
    );
    for reg in [&off, &on] {
        reg.push_image("bench/app", "v1");
    }
    let time = |reg: &Reg, n: u32| {
        let url = reg.url("/v2/bench/app/manifests/v1");
        let t = std::time::Instant::now();
        for _ in 0..n {
            let r = reg.http.get(&url).header("accept", common::OCI_MANIFEST).send().unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.bytes().unwrap();
        }
        t.elapsed()
    };
    time(&off, 500);
    time(&on, 500);
    // Per-request means of many short rounds; the machine is shared, so
    // the fastest round and the median say more than the mean.
    let (mut off_rounds, mut on_rounds) = (Vec::new(), Vec::new());
    for _ in 0..40 {
        off_rounds.push(time(&off, 250).as_nanos() as f64 / 250_000.0);
        on_rounds.push(time(&on, 250).as_nanos() as f64 / 250_000.0);
    }
    for v in [&mut off_rounds, &mut on_rounds] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "manifest GET µs/request: off min {:.1} median {:.1}; on min {:.1} median {:.1}",
        off_rounds[0], off_rounds[20], on_rounds[0], on_rounds[20]
    );
}
