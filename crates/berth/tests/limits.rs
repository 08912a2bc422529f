//! `berth.limits` against the real binary, driven over raw TCP where a
//! client must misbehave: oversized headers get 431 (RFC 6585), a client
//! too slow with its headers is disconnected, connections past the limit
//! wait until one ends, uploads past the concurrency limit get
//! `429 TOOMANYREQUESTS` with `Retry-After`, a silent upload body is cut
//! off without damaging the session, and on SIGTERM an upload in progress
//! may finish within `http.draintimeout`.

mod common;

use common::{options, sha256, Reg};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn connect(reg: &Reg) -> TcpStream {
    let s = TcpStream::connect(reg.server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the end of a response head; `None` if the server closed first or sent nothing in `wait`.
fn response_head(s: &mut TcpStream, wait: Duration) -> Option<String> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&got).into_owned())
}

fn status_of(head: &str) -> u16 {
    head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Sends the head of a PATCH of `len` bytes to upload `location` (a path).
fn start_patch(reg: &Reg, location: &str, len: usize) -> TcpStream {
    let mut s = connect(reg);
    let path = location.split_once("://").map_or(location, |(_, rest)| &rest[rest.find('/').unwrap()..]);
    write!(
        s,
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n",
        reg.server.addr()
    )
    .unwrap();
    s
}

#[test]
fn oversized_headers_get_431_and_slow_headers_are_cut() {
    let reg = Reg::start_with(
        options().env("REGISTRY_BERTH_LIMITS_HEADERTIMEOUT", "1s").env("REGISTRY_BERTH_LIMITS_MAXHEADERBYTES", "16384"),
    );
    // Under the limit: served.
    let mut s = connect(&reg);
    write!(s, "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(10 << 10)).unwrap();
    assert_eq!(response_head(&mut s, Duration::from_secs(5)).map(|h| status_of(&h)), Some(200));
    // Over it: 431, or — when the server's close races the rest of our
    // write — a reset; never served (hyper's own limit is ~400 KiB).
    let mut s = connect(&reg);
    let _ = write!(s, "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20 << 10));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 431),
        Err(e) => assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "no answer and no close within 5 s"
        ),
    }

    // Half a request line, then silence: the connection is closed after the header timeout.
    let mut slow = connect(&reg);
    slow.write_all(b"GET /v2/ HT").unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let closed = loop {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break true,
            Ok(_) => continue,
        }
    };
    assert!(closed && start.elapsed() < Duration::from_secs(5), "closed after {:?}", start.elapsed());
    // Normal requests are unaffected.
    assert_eq!(reg.get("/v2/").status(), 200);
}

#[test]
fn connections_past_the_limit_wait_for_a_free_slot() {
    let reg = Reg::start_with(
        options().env("REGISTRY_BERTH_LIMITS_MAXCONNECTIONS", "2").env("REGISTRY_BERTH_LIMITS_HEADERTIMEOUT", "30s"),
    );
    // Two idle connections hold both slots.
    let first = connect(&reg);
    let _second = connect(&reg);
    std::thread::sleep(Duration::from_millis(200));
    let mut third = connect(&reg);
    write!(third, "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(response_head(&mut third, Duration::from_millis(700)).is_none(), "served past the limit");
    drop(first);
    let head = response_head(&mut third, Duration::from_secs(5)).expect("served once a slot freed");
    assert_eq!(status_of(&head), 200, "{head}");
}

#[test]
fn uploads_past_the_limit_get_429_and_silent_bodies_are_cut_off() {
    let reg = Reg::start_with(
        options().env("REGISTRY_BERTH_LIMITS_MAXUPLOADS", "1").env("REGISTRY_BERTH_LIMITS_UPLOADIDLETIMEOUT", "1s"),
    );
    let data = common::random_bytes(1000);
    let a = reg.start_upload("team/app");
    let mut slow = start_patch(&reg, &a, data.len());
    slow.write_all(&data[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    // The one upload slot is taken: another upload is refused, retryable.
    let b = reg.start_upload("team/app");
    let resp = reg.req(reqwest::Method::PATCH, &b).body(data.clone()).send().unwrap();
    assert_eq!(resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()).as_deref(), Some("1"));
    common::expect_error(resp, 429, "TOOMANYREQUESTS");

    // The stalled body is cut off after a second of silence…
    let head = response_head(&mut slow, Duration::from_secs(5)).expect("an answer to the stalled upload");
    assert_eq!(status_of(&head), 400, "{head}");
    // …its session keeps what it had (nothing), and the slot is free again.
    let status = reg.get(&a);
    assert_eq!(common::header(&status, "range"), "0-0");
    let resp = reg.req(reqwest::Method::PATCH, &a).body(data.clone()).send().unwrap();
    assert_eq!(resp.status(), 202);
    let digest = sha256(&data);
    let put = reg.req(reqwest::Method::PUT, &common::with_query(&a, &format!("digest={digest}"))).send().unwrap();
    assert_eq!(put.status(), 201);
    assert_eq!(reg.get(&format!("/v2/team/app/blobs/{digest}")).bytes().unwrap().as_ref(), &data[..]);
}

#[test]
fn an_upload_in_progress_finishes_during_the_drain() {
    let mut reg = Reg::start_with(options().env("REGISTRY_HTTP_DRAINTIMEOUT", "10s"));
    let data = common::random_bytes(100_000);
    let loc = reg.start_upload("team/app");
    let mut upload = start_patch(&reg, &loc, data.len());
    upload.write_all(&data[..50_000]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // SIGTERM: the listener closes, the upload goes on.
    unsafe { libc_kill(reg.server.pid() as i32, 15) };
    std::thread::sleep(Duration::from_millis(500));
    assert!(TcpStream::connect(reg.server.addr()).is_err(), "still accepting after SIGTERM");
    upload.write_all(&data[50_000..]).unwrap();
    let head = response_head(&mut upload, Duration::from_secs(5)).expect("the upload's answer");
    assert_eq!(status_of(&head), 202, "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("range: 0-{}", data.len() - 1)), "{head}");
    reg.server.stop().unwrap();
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
