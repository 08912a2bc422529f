//! docker against a real registry: the Berth variant is the product test
//! (scenarios 1 and 2 of issue 13 and Berth's own image, all on one dockerd:
//! its startup is slow); the Distribution variant runs scenario 1 against
//! CNCF Distribution to prove the harness and the scenario themselves right.

use berth_e2e::{berth_image, big_layer, docker_roundtrip, tail};
use berth_testkit::{BerthOptions, BerthServer, Distribution, Dockerd, Oras};

#[test]
fn docker_push_pull_run_against_berth() {
    let berth = BerthServer::start(BerthOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let oras = Oras::locate().unwrap_or_else(|e| panic!("{e}"));
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    let fail =
        |step: &str, e: String| -> ! { panic!("{step}: {e}\n--- berth log (tail) ---\n{}", tail(&berth.log(), 40)) };
    if let Err(e) = docker_roundtrip::run(&docker, berth.addr()) {
        fail("scenario 1 (docker round trip)", e);
    }
    if let Err(e) = big_layer::run(&docker, &oras, berth.addr()) {
        fail("scenario 2 (100 MiB layer, chunked upload)", e);
    }
    if let Err(e) = berth_image::run(&docker) {
        panic!("Berth's own image: {e}\n--- dockerd log (tail) ---\n{}", tail(&docker.log(), 20));
    }
}

#[test]
fn harness_works_against_distribution() {
    let registry = Distribution::start().unwrap_or_else(|e| panic!("{e}"));
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = docker_roundtrip::run(&docker, registry.addr()) {
        panic!("{e}\n--- docker-registry log (tail) ---\n{}", tail(&registry.log(), 40));
    }
}
