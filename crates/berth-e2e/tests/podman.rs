//! Scenario 3 of issue 13: podman against Berth.

use berth_e2e::{podman_images, tail};
use berth_testkit::{BerthOptions, BerthServer, Podman};

#[test]
fn podman_push_pull_and_two_platform_index() {
    let berth = BerthServer::start(BerthOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let podman = Podman::new().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = podman_images::run(&podman, berth.addr()) {
        panic!("{e}\n--- berth log (tail) ---\n{}", tail(&berth.log(), 40));
    }
}
