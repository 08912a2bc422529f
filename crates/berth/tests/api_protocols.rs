//! Blob bodies over every way a client may ask: HTTP/1.1 (zero-copy
//! `sendfile`), pipelined HTTP/1.1 requests on one connection (bodies must
//! come back in order and whole), HTTP/1.0, and cleartext HTTP/2.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Reads one HTTP/1.x response with a Content-Length body from `stream`.
fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("content-length");
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    (head, body)
}

#[test]
fn pipelined_requests_get_their_own_bodies_in_order() {
    let reg = Reg::start();
    let (a, b) = (random_bytes(3 << 20), random_bytes(700_000));
    let (da, db) = (reg.push_blob("proto/p", &a), reg.push_blob("proto/p", &b));
    let mut s = TcpStream::connect(reg.server.addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let host = reg.server.addr();
    // Four requests in one write: whole blobs, a range, and a manifest-less 404 between them.
    let requests = format!(
        "GET /v2/proto/p/blobs/{da} HTTP/1.1\r\nHost: {host}\r\n\r\n\
         GET /v2/proto/p/blobs/{db} HTTP/1.1\r\nHost: {host}\r\nRange: bytes=100-199\r\n\r\n\
         GET /v2/proto/p/manifests/none HTTP/1.1\r\nHost: {host}\r\n\r\n\
         GET /v2/proto/p/blobs/{db} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    );
    s.write_all(requests.as_bytes()).unwrap();
    let (h1, b1) = read_response(&mut s);
    assert!(h1.starts_with("HTTP/1.1 200"), "{h1}");
    assert!(b1 == a, "first body is blob a, whole");
    let (h2, b2) = read_response(&mut s);
    assert!(h2.starts_with("HTTP/1.1 206"), "{h2}");
    assert_eq!(b2, &b[100..200]);
    let (h3, _) = read_response(&mut s);
    assert!(h3.starts_with("HTTP/1.1 404"), "{h3}");
    let (h4, b4) = read_response(&mut s);
    assert!(h4.starts_with("HTTP/1.1 200"), "{h4}");
    assert!(b4 == b, "last body is blob b, whole");
}

#[test]
fn http10_and_http2_bodies_are_whole() {
    let reg = Reg::start();
    let data = random_bytes(2 << 20);
    let digest = reg.push_blob("proto/q", &data);

    let mut s = TcpStream::connect(reg.server.addr()).unwrap();
    write!(s, "GET /v2/proto/q/blobs/{digest} HTTP/1.0\r\n\r\n").unwrap();
    let (head, body) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(body == data);

    let h2 = reqwest::blocking::Client::builder().http2_prior_knowledge().build().unwrap();
    let resp = h2.get(reg.url(&format!("/v2/proto/q/blobs/{digest}"))).send().unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().unwrap()[..] == data[..]);
    let resp = h2.get(reg.url("/v2/")).send().unwrap();
    assert_eq!(resp.status(), 200);
}
