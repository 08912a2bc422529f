//! `http.tls` of the real binary: HTTPS with HTTP/1.1 and HTTP/2 (ALPN), mutual TLS with
//! `clientcas`, certificates reloaded from disk without a restart, and start-up errors that
//! name the key. Expected behaviour: Distribution's configuration.md (`http.tls`) and Go's
//! `tls.RequireAndVerifyClientCert`, its default with client CAs.

mod common;

use berth_testkit::tls::{https_client, peer_certificate, Issued};
use berth_testkit::{BerthOptions, BerthServer, TestCa};
use common::{options, random_bytes, sha256, Reg};
use reqwest::{StatusCode, Version};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LOOPBACK: &[&str] = &["127.0.0.1", "localhost"];

struct Pki {
    dir: tempfile::TempDir,
    ca: TestCa,
    cert: PathBuf,
    key: PathBuf,
    server: Issued,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("berth test CA").unwrap();
    let server = ca.server_cert(LOOPBACK).unwrap();
    let (cert, key) = server.write(dir.path(), "server").unwrap();
    Pki { dir, ca, cert, key, server }
}

fn start(opts: BerthOptions) -> BerthServer {
    BerthServer::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

fn get_v2(server: &BerthServer, client: &reqwest::blocking::Client) -> reqwest::Result<reqwest::blocking::Response> {
    client.get(format!("{}/v2/", server.url())).send()
}

/// The whole error chain: reqwest's top-level message hides the TLS cause.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

#[test]
fn https_with_http1_and_http2_and_blobs_streamed_through_tls() {
    let p = pki();
    let server = start(options().tls(&p.cert, &p.key));
    assert!(server.url().starts_with("https://127.0.0.1:"), "ready line says https: {}", server.url());

    let h2 = https_client(&p.ca.cert_pem(), None).unwrap();
    let resp = get_v2(&server, &h2).unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_2, "ALPN offers h2 first");
    assert_eq!(peer_certificate(&resp).as_deref(), Some(&p.server.der[..]));

    // Blobs: on TLS there is no sendfile; the streamed body must carry every byte, over
    // HTTP/1.1 (where plain connections would use sendfile) and HTTP/2.
    let reg = Reg { server, http: h2 };
    let data = random_bytes(3 * 1024 * 1024 + 17);
    let digest = reg.push_blob("tls/blob", &data);
    assert_eq!(digest, sha256(&data));
    let h1 = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(p.ca.cert_pem().as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    for (client, version) in [(&h1, Version::HTTP_11), (&reg.http, Version::HTTP_2)] {
        let resp = client.get(reg.url(&format!("/v2/tls/blob/blobs/{digest}"))).send().unwrap();
        assert_eq!((resp.status(), resp.version()), (StatusCode::OK, version));
        let body = resp.bytes().unwrap();
        assert!(body.len() == data.len() && body[..] == data[..], "blob over {version:?} differs");
    }
    let ranged = h1
        .get(reg.url(&format!("/v2/tls/blob/blobs/{digest}")))
        .header("range", "bytes=1048570-1048585")
        .send()
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().unwrap()[..], data[1048570..=1048585]);
}

#[test]
fn a_client_that_does_not_trust_the_ca_is_refused() {
    let p = pki();
    let server = start(options().tls(&p.cert, &p.key));
    let stranger = TestCa::new("some other CA").unwrap();
    let client = https_client(&stranger.cert_pem(), None).unwrap();
    let e = get_v2(&server, &client).unwrap_err();
    let why = chain(&e);
    assert!(why.contains("UnknownIssuer") || why.contains("certificate"), "{why}");
    // Plain HTTP on the TLS port gets no registry answer either.
    let plain = reqwest::blocking::get(format!("http://{}/v2/", server.addr()));
    assert!(plain.map(|r| r.status() != StatusCode::OK).unwrap_or(true));
}

#[test]
fn client_cas_require_a_certificate_signed_by_them() {
    let p = pki();
    let clients = TestCa::new("client CA").unwrap();
    let ca_file = p.dir.path().join("clients.pem");
    std::fs::write(&ca_file, clients.cert_pem()).unwrap();
    let server = start(options().tls(&p.cert, &p.key).client_cas(&[&ca_file]));
    let trust = p.ca.cert_pem();

    // With TLS 1.3 the client may see the server's alert or only the closed connection,
    // so the reason is checked in the server's log.
    let anonymous = https_client(&trust, None).unwrap();
    assert!(get_v2(&server, &anonymous).is_err(), "no client certificate must be refused");
    let log = wait_for_log(&server, "peer sent no certificates");
    assert!(log.contains("tls handshake failed"), "{log}");

    let forged = TestCa::new("client CA").unwrap().client_cert("mallory").unwrap();
    let e = get_v2(&server, &https_client(&trust, Some(&forged)).unwrap());
    assert!(e.is_err(), "a certificate of another CA (same name) must be refused");
    wait_for_log(&server, "invalid peer certificate: BadSignature");

    let alice = clients.client_cert("alice").unwrap();
    let resp = get_v2(&server, &https_client(&trust, Some(&alice)).unwrap()).unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().unwrap();
    assert_eq!(body, "{}");
}

/// The server's log once it contains `needle` (bounded).
fn wait_for_log(server: &BerthServer, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.log();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "{needle:?} not in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn verify_client_cert_if_given_lets_anonymous_in_but_checks_a_sent_certificate() {
    let p = pki();
    let clients = TestCa::new("client CA").unwrap();
    let ca_file = p.dir.path().join("clients.pem");
    std::fs::write(&ca_file, clients.cert_pem()).unwrap();
    let opts = options()
        .tls(&p.cert, &p.key)
        .client_cas(&[&ca_file])
        .env("REGISTRY_HTTP_TLS_CLIENTAUTH", "verify-client-cert-if-given");
    let server = start(opts);
    let trust = p.ca.cert_pem();
    assert_eq!(get_v2(&server, &https_client(&trust, None).unwrap()).unwrap().status(), StatusCode::OK);
    let forged = TestCa::new("client CA").unwrap().client_cert("mallory").unwrap();
    assert!(get_v2(&server, &https_client(&trust, Some(&forged)).unwrap()).is_err());
}

#[test]
fn minimum_tls_1_3_refuses_a_tls_1_2_client() {
    let p = pki();
    let server = start(options().tls(&p.cert, &p.key).env("REGISTRY_HTTP_TLS_MINIMUMTLS", "tls1.3"));
    let ca = reqwest::Certificate::from_pem(p.ca.cert_pem().as_bytes()).unwrap();
    let client = |max: reqwest::tls::Version| {
        reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca.clone())
            .max_tls_version(max)
            .build()
            .unwrap()
    };
    assert!(get_v2(&server, &client(reqwest::tls::Version::TLS_1_2)).is_err());
    assert_eq!(get_v2(&server, &client(reqwest::tls::Version::TLS_1_3)).unwrap().status(), StatusCode::OK);
}

/// Polls new connections until the server presents `der` (the reloader looks once a second).
fn wait_for_certificate(server: &BerthServer, client: &reqwest::blocking::Client, der: &[u8]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = get_v2(server, client).ok().and_then(|r| peer_certificate(&r));
        if seen.as_deref() == Some(der) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("still not presented after 10 s\n{}", server.log()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_in_place(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn certificates_are_reloaded_without_a_restart_and_a_broken_file_keeps_the_old_one() {
    let p = pki();
    let mut server = start(options().tls(&p.cert, &p.key));
    let pid = server.pid();
    let client = https_client(&p.ca.cert_pem(), None).unwrap();
    assert_eq!(peer_certificate(&get_v2(&server, &client).unwrap()).as_deref(), Some(&p.server.der[..]));

    // Renewal as certbot does it: new files over the old ones, another serial and SAN.
    let renewed = p.ca.server_cert(&["127.0.0.1", "localhost", "renewed.test"]).unwrap();
    write_in_place(&p.key, &renewed.key_pem);
    write_in_place(&p.cert, &renewed.cert_pem);
    wait_for_certificate(&server, &client, &renewed.der).unwrap();
    assert!(server.log().contains("tls certificate reloaded"), "{}", server.log());

    // A half-written certificate (and then one whose key does not match) is not used.
    let next = p.ca.server_cert(LOOPBACK).unwrap();
    write_in_place(&p.cert, &next.cert_pem[..next.cert_pem.len() / 2]);
    std::thread::sleep(Duration::from_millis(2500));
    let seen = peer_certificate(&get_v2(&server, &client).unwrap());
    assert_eq!(seen.as_deref(), Some(&renewed.der[..]), "a broken file must keep the previous certificate");
    write_in_place(&p.cert, &next.cert_pem);
    std::thread::sleep(Duration::from_millis(2500));
    let seen = peer_certificate(&get_v2(&server, &client).unwrap());
    assert_eq!(seen.as_deref(), Some(&renewed.der[..]), "a key that does not match must keep the previous one");
    let log = server.log();
    assert!(log.contains("still serving the previous certificate"), "{log}");
    assert!(log.contains("does not match"), "the mismatch is named:\n{log}");

    // Once the key arrives, the new pair is served: the reloader survived the failures.
    write_in_place(&p.key, &next.key_pem);
    wait_for_certificate(&server, &client, &next.der).unwrap();
    assert_eq!(server.pid(), pid, "no restart");
    server.stop().unwrap();
}

#[test]
fn a_silent_client_does_not_block_other_handshakes() {
    let p = pki();
    let server = start(options().tls(&p.cert, &p.key));
    // Connections that never send a ClientHello.
    let idle: Vec<_> = (0..4).map(|_| std::net::TcpStream::connect(server.addr()).unwrap()).collect();
    let client = https_client(&p.ca.cert_pem(), None).unwrap();
    let started = Instant::now();
    assert_eq!(get_v2(&server, &client).unwrap().status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    drop(idle);
}

fn start_error(mut opts: BerthOptions) -> String {
    opts.ready_timeout = Duration::from_secs(20);
    match BerthServer::start(opts) {
        Ok(s) => panic!("berth started on {} but should have refused the configuration", s.url()),
        Err(e) => e,
    }
}

#[test]
fn configuration_errors_stop_start_up_naming_the_key() {
    let p = pki();
    let missing = p.dir.path().join("missing.crt");
    let e = start_error(options().tls(&missing, &p.key));
    assert!(e.contains("http.tls.certificate") && e.contains("missing.crt"), "{e}");

    let e = start_error(options().tls(&p.cert, &p.dir.path().join("missing.key")));
    assert!(e.contains("http.tls.key") && e.contains("missing.key"), "{e}");

    let other = p.ca.server_cert(LOOPBACK).unwrap();
    let (_, other_key) = other.write(p.dir.path(), "other").unwrap();
    let e = start_error(options().tls(&p.cert, &other_key));
    assert!(e.contains("http.tls.key") && e.contains("does not match"), "{e}");

    let e = start_error(options().tls(&p.cert, &p.key).env("REGISTRY_HTTP_TLS_MINIMUMTLS", "tls1.0"));
    assert!(e.contains("http.tls.minimumtls") && e.contains("tls1.0"), "{e}");

    let e =
        start_error(options().tls(&p.cert, &p.key).env("REGISTRY_HTTP_TLS_CIPHERSUITES", "[TLS_RSA_WITH_RC4_128_SHA]"));
    assert!(e.contains("http.tls.ciphersuites") && e.contains("TLS_RSA_WITH_RC4_128_SHA"), "{e}");

    let e = start_error(options().env("REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE", "/tmp/le"));
    assert!(e.contains("http.tls.letsencrypt") && e.contains("not supported yet"), "{e}");

    let e = start_error(options().env("REGISTRY_HTTP_TLS_CLIENTCAS", format!("[{}]", p.cert.display())));
    assert!(e.contains("http.tls.certificate") && e.contains("required"), "mTLS asked, no certificate: {e}");

    let bad_ca = p.dir.path().join("bad-ca.pem");
    std::fs::write(&bad_ca, "not a certificate\n").unwrap();
    let e = start_error(options().tls(&p.cert, &p.key).client_cas(&[&bad_ca]));
    assert!(e.contains("http.tls.clientcas[0]") && e.contains("bad-ca.pem"), "{e}");
}
