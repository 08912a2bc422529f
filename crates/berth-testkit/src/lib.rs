//! Test harness for Berth's integration and end-to-end tests.
//!
//! Starts real servers as child processes on loopback and cleans up after
//! them: [`BerthServer`] (the `berth serve` binary), [`Distribution`]
//! (Debian's `docker-registry`, CNCF Distribution, as a reference registry),
//! [`Dockerd`] (a private Docker engine), [`Containerd`] and [`Prometheus`]; it prepares
//! private storage for [`Podman`] and drives oras-py through [`Oras`].
//! [`ImageContext`] builds `FROM scratch` docker build contexts out of a
//! static busybox and random data. [`TestCa`] makes certificates for HTTPS and
//! mutual TLS; [`NetNs`] gives a server an address off loopback.
//!
//! Rules every type here keeps:
//! - every wait is bounded and fails with a message that says what it waited
//!   for and the tail of the child's log;
//! - no fixed ports: servers bind 127.0.0.1 on a port the kernel picked;
//! - every child runs in its own process group and is stopped on `Drop`
//!   (SIGTERM, then SIGKILL to the group after a bound), and is also killed
//!   if the test process dies (`PR_SET_PDEATHSIG`, see [`process`]);
//! - temp dirs live under `std::env::temp_dir()` and are removed on `Drop`;
//! - a missing tool is an error naming the Debian package, never a skip.
//!
//! Dependency direction: this crate depends on no other Berth crate, so it
//! tests the binary exactly as a user runs it.

pub mod berth;
pub mod containerd;
pub mod distribution;
pub mod dockerd;
pub mod garage;
pub mod http;
pub mod image;
pub mod net;
pub mod netns;
pub mod oras;
pub mod podman;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod tls;
pub mod tools;

pub use berth::{BerthOptions, BerthServer};
pub use containerd::Containerd;
pub use distribution::{Distribution, DistributionOptions};
pub use dockerd::Dockerd;
pub use garage::Garage;
pub use image::{BuildContext, ImageContext};
pub use netns::NetNs;
pub use oras::Oras;
pub use podman::Podman;
pub use postgres::Postgres;
pub use process::{run_bounded, run_bounded_with_input, CommandOutput};
pub use prometheus::Prometheus;
pub use tls::TestCa;

/// Error type of the harness: a human-readable message. Tests only
/// display it, so one string carrying the context is what they need.
pub type Error = String;
/// Result of harness operations.
pub type Result<T> = std::result::Result<T, Error>;
