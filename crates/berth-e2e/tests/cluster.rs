//! Issue 15, "Several nodes": three Berth nodes sharing one Garage bucket
//! and one PostgreSQL database, driven by docker, skopeo and raw HTTP
//! (see `berth_e2e::cluster`). Prints how long each step took.

use std::time::{Duration, Instant};

use berth_e2e::cluster::{self, Cluster, Timings};
use berth_testkit::Dockerd;

/// Bound on the whole test, start-up included (issue 15: "bounded in time").
const LIMIT: Duration = Duration::from_secs(90);

#[test]
fn three_nodes_share_garage_and_postgres() {
    let total = Instant::now();
    let mut timings = Timings::default();
    // dockerd takes seconds to start: alongside Garage, PostgreSQL and the nodes.
    let (docker, _docker_thread) = cluster::start_on_own_thread(|| {
        let start = Instant::now();
        Dockerd::start().map(|d| (d, start.elapsed()))
    });
    let cluster = Cluster::start(&mut timings);
    let docker = cluster::started(docker, "dockerd");
    let mut cluster = cluster.unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let (docker, docker_start) = docker.unwrap_or_else(|e| panic!("{e}"));
    timings.record("start dockerd (in parallel with the above)", docker_start);
    let work = cluster.nodes[1].scratch_dir().to_owned();
    let outcome = cluster::run(&mut cluster, &docker, &work, &mut timings);
    timings.record("total", total.elapsed());
    eprintln!("cluster: timings\n{}", timings.table());
    let outcome = outcome.and_then(|()| match total.elapsed() {
        // Typically under 10 s; the bound catches a hang or a pathological slowdown.
        t if t > LIMIT => Err(format!("the scenario took {t:?}, more than {LIMIT:?}")),
        _ => Ok(()),
    });
    if let Err(e) = outcome {
        panic!("{e}\n{}\n--- garage log (tail) ---\n{}", cluster.logs(40), berth_e2e::tail(&cluster.garage.log(), 20));
    }
}
