//! Scenarios 4, 5 (and 8 for skopeo) of issue 13: skopeo between Berth,
//! CNCF Distribution and OCI layouts; umoci unpacks what came back.

use berth_e2e::skopeo_copy::{self, Registries};
use berth_e2e::tail;
use berth_testkit::{BerthOptions, BerthServer, Distribution, Podman};

#[test]
fn skopeo_copies_between_berth_distribution_and_oci_layouts() {
    let berth = BerthServer::start(BerthOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let deletes = BerthServer::start(BerthOptions::default().delete_enabled(true)).unwrap_or_else(|e| panic!("{e}"));
    let distribution = Distribution::start().unwrap_or_else(|e| panic!("{e}"));
    let podman = Podman::new().unwrap_or_else(|e| panic!("{e}"));
    let regs = Registries { berth: berth.addr(), berth_deletes: deletes.addr(), distribution: distribution.addr() };
    if let Err(e) = skopeo_copy::run(&podman, regs, berth.scratch_dir()) {
        panic!(
            "{e}\n--- berth log (tail) ---\n{}\n--- berth (deletes enabled) log (tail) ---\n{}\n--- docker-registry log (tail) ---\n{}",
            tail(&berth.log(), 30),
            tail(&deletes.log(), 15),
            tail(&distribution.log(), 15)
        );
    }
}
