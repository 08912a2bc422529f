//! docker against a real registry: the Berth variant is the product test;
//! the Distribution variant runs the same script against CNCF Distribution
//! to prove the harness and the scenario themselves are right.

use berth_e2e::{docker_roundtrip, tail};
use berth_testkit::{BerthOptions, BerthServer, Distribution, Dockerd};

#[test]
fn docker_push_pull_run_against_berth() {
    let berth = BerthServer::start(BerthOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = docker_roundtrip::run(&docker, berth.addr()) {
        panic!("{e}\n--- berth log (tail) ---\n{}", tail(&berth.log(), 40));
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
