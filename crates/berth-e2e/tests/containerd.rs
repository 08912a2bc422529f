//! Scenario 7 of issue 13: containerd pulls from Berth.

use berth_e2e::{containerd_pull, tail};
use berth_testkit::{BerthOptions, BerthServer, Containerd};

#[test]
fn containerd_pulls_from_berth() {
    let berth = BerthServer::start(BerthOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let containerd = Containerd::start().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = containerd_pull::run(&containerd, berth.addr(), berth.scratch_dir()) {
        panic!(
            "{e}\n--- berth log (tail) ---\n{}\n--- containerd log (tail) ---\n{}",
            tail(&berth.log(), 40),
            tail(&containerd.log(), 20)
        );
    }
}
