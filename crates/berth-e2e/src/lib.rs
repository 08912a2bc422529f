//! End-to-end scenarios of issue 13: real clients against a real registry
//! on loopback, asserting on what came back (digests, image IDs, file
//! contents), not only on exit codes.
//!
//! Each scenario is a function taking the clients' engine and a registry
//! address, so the same script runs against `berth serve` and, as a check
//! of the harness itself, against CNCF Distribution. The test files in
//! `tests/` start the servers (one dockerd per test: its startup is slow)
//! and call these.

pub mod docker_roundtrip;

/// Scenario result: the error is a message with the failing step and the
/// client's output.
pub type Result<T> = std::result::Result<T, String>;

/// Fails with `msg` unless `cond` holds.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// The last `n` lines of `text`, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
