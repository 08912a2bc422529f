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
    // Berth's own records say the second push mounted every layer and sent
    // no layer bytes: docker's "Mounted from" is the client's view only.
    if let Err(e) = mounted_not_uploaded(&berth.log(), "e2e/copy") {
        fail("scenario 1 (mount check in berth's access log)", e);
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

/// Checks Berth's access log: every layer `POST` to `repo` was a mount
/// answered 201. Docker sends the small config blob as a plain upload (it
/// is not a layer), so at most one POST is not a mount.
fn mounted_not_uploaded(log: &str, repo: &str) -> Result<(), String> {
    let uploads = format!("uri=/v2/{repo}/blobs/uploads/");
    let posts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("berth::access") && l.contains("method=POST") && l.contains(&uploads))
        .collect();
    let (mounts, plain): (Vec<&str>, Vec<&str>) = posts.iter().partition(|l| l.contains("mount="));
    if mounts.len() < 2 {
        return Err(format!("expected the layers of {repo} to be mounted, saw {} mount requests", mounts.len()));
    }
    if let Some(bad) = mounts.iter().find(|l| !l.contains("status=201")) {
        return Err(format!("a mount into {repo} fell back to an upload: {bad}"));
    }
    if plain.len() > 1 {
        return Err(format!("{} blobs were uploaded to {repo} instead of mounted:\n{}", plain.len(), plain.join("\n")));
    }
    Ok(())
}
