//! Scenario 6 (and 8 for oras-py) of issue 13: OCI artifacts, referrers and
//! a Helm chart through oras-py.

use berth_e2e::{artifacts, tail};
use berth_testkit::{BerthOptions, BerthServer, Oras};

#[test]
fn oras_artifacts_referrers_and_helm_chart() {
    let berth = BerthServer::start(BerthOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let oras = Oras::locate().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = artifacts::run(&oras, berth.addr(), berth.scratch_dir()) {
        panic!("{e}\n--- berth log (tail) ---\n{}", tail(&berth.log(), 40));
    }
}
