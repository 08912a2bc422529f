//! Issue 17 (TLS): docker login/push/pull over TLS and mutual TLS against Berth in a network
//! namespace, with the negatives; skopeo with `--cert-dir` and `--creds` on loopback.

use berth_e2e::tail;
use berth_e2e::tls_clients::{self, cert_dir, htpasswd_file, DockerRegistries};
use berth_testkit::{BerthOptions, BerthServer, Dockerd, NetNs, TestCa};

fn htpasswd_opts(opts: BerthOptions, htpasswd: &std::path::Path) -> BerthOptions {
    opts.env("REGISTRY_AUTH", "htpasswd")
        .env("REGISTRY_AUTH_HTPASSWD_REALM", "berth-tls")
        .env("REGISTRY_AUTH_HTPASSWD_PATH", htpasswd.to_string_lossy())
}

#[test]
fn docker_over_tls_and_mutual_tls_in_a_network_namespace() {
    // Declared first: dropped last, after the servers inside it are gone.
    let ns = NetNs::create().unwrap_or_else(|e| panic!("{e}"));
    let work = tempfile::tempdir().unwrap();
    let ip = ns.ns_ip().to_string();
    let ca = TestCa::new("berth e2e CA").unwrap();
    let stranger = TestCa::new("a CA docker does not trust").unwrap();
    let (cert, key) = ca.server_cert(&[&ip]).unwrap().write(work.path(), "server").unwrap();
    let (bad_cert, bad_key) = stranger.server_cert(&[&ip]).unwrap().write(work.path(), "untrusted").unwrap();
    let clients = TestCa::new("berth e2e client CA").unwrap();
    let client_ca = work.path().join("client-ca.pem");
    std::fs::write(&client_ca, clients.cert_pem()).unwrap();
    let client = clients.client_cert("docker").unwrap();
    let htpasswd = htpasswd_file(work.path()).unwrap_or_else(|e| panic!("{e}"));

    let start = |opts: BerthOptions| {
        BerthServer::start(htpasswd_opts(opts.in_netns(&ns), &htpasswd)).unwrap_or_else(|e| panic!("{e}"))
    };
    let tls = start(BerthOptions::default().tls(&cert, &key));
    let mtls = start(BerthOptions::default().tls(&cert, &key).client_cas(&[&client_ca]));
    let untrusted = start(BerthOptions::default().tls(&bad_cert, &bad_key));
    assert!(tls.url().starts_with(&format!("https://{ip}:")), "{}", tls.url());

    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    let regs = DockerRegistries { tls: tls.addr(), mtls: mtls.addr(), untrusted: untrusted.addr() };
    if let Err(e) = tls_clients::docker_scenario(&docker, regs, &ca, &client) {
        panic!(
            "{e}\n--- berth (tls) log ---\n{}\n--- berth (mtls) log ---\n{}\n--- dockerd log ---\n{}",
            tail(&tls.log(), 20),
            tail(&mtls.log(), 20),
            tail(&docker.log(), 20)
        );
    }
    // Berth's side of the negatives: the refused handshakes.
    assert!(mtls.log().contains("tls handshake failed"), "{}", tail(&mtls.log(), 20));
}

#[test]
fn skopeo_with_cert_dir_and_creds_over_mutual_tls() {
    let work = tempfile::tempdir().unwrap();
    let ca = TestCa::new("berth e2e CA").unwrap();
    let (cert, key) = ca.server_cert(&["127.0.0.1", "localhost"]).unwrap().write(work.path(), "server").unwrap();
    let clients = TestCa::new("berth e2e client CA").unwrap();
    let client_ca = work.path().join("client-ca.pem");
    std::fs::write(&client_ca, clients.cert_pem()).unwrap();
    let htpasswd = htpasswd_file(work.path()).unwrap_or_else(|e| panic!("{e}"));
    let opts = htpasswd_opts(BerthOptions::default().tls(&cert, &key).client_cas(&[&client_ca]), &htpasswd);
    let berth = BerthServer::start(opts).unwrap_or_else(|e| panic!("{e}"));

    let client = clients.client_cert("skopeo").unwrap();
    let good = cert_dir(work.path(), "certs-good", &ca.cert_pem(), Some(&client)).unwrap();
    let no_client = cert_dir(work.path(), "certs-ca-only", &ca.cert_pem(), None).unwrap();
    if let Err(e) = tls_clients::skopeo_scenario(berth.addr(), &good, &no_client, work.path()) {
        panic!("{e}\n--- berth log ---\n{}", tail(&berth.log(), 30));
    }
}
