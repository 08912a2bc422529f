//! [`NetNs`]: a private network namespace reachable from the host, for servers that must
//! not be on loopback (docker always treats 127.0.0.0/8 as an insecure registry and skips
//! TLS there, see TESTING.md).
//!
//! Each namespace gets a veth pair and its own /30 out of 10.213.0.0/16: the host end is
//! `.1` of the /30, the namespace end `.2`. The /30 is derived from the test process's PID
//! and a counter, and one that is in use (an address on the host, a namespace or interface
//! of the same name) is skipped, so concurrent tests do not collide. Run a program inside
//! with [`NetNs::command_prefix`] (`ip netns exec NAME`, which execs the program in place:
//! its PID is the one to kill). On `Drop` the veth pair (both ends) and the namespace are
//! deleted; processes still inside keep it alive until they exit, so drop them first.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::process::run_bounded;
use crate::{tools, Result};

const IP_TIMEOUT: Duration = Duration::from_secs(20);
/// Number of /30 blocks in 10.213.0.0/16.
const BLOCKS: u32 = 1 << 14;

/// A network namespace with a veth link to the host; removed on `Drop`.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    host_ip: Ipv4Addr,
    ns_ip: Ipv4Addr,
    /// Whether the veth pair is ours to delete (its creation succeeded).
    link_created: bool,
}

fn ip(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(tools::require("ip", "iproute2")?);
    cmd.args(args);
    run_bounded(&mut cmd, IP_TIMEOUT)?.ok()
}

impl NetNs {
    /// Creates the namespace, the veth pair and the addresses; `lo` is up inside.
    pub fn create() -> Result<Self> {
        tools::require("ip", "iproute2")?;
        // SAFETY: plain syscall without arguments.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root (ip netns add)".into());
        }
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let host_addrs = ip(&["-o", "-4", "addr", "show"])?;
        let namespaces = ip(&["netns", "list"])?;
        let links = ip(&["-o", "link", "show"])?;
        for _ in 0..64 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let block = (std::process::id().wrapping_mul(97).wrapping_add(n)) % BLOCKS;
            let base = block * 4;
            let host_ip = Ipv4Addr::new(10, 213, (base >> 8) as u8, (base & 0xff) as u8 + 1);
            let ns_ip = Ipv4Addr::new(10, 213, (base >> 8) as u8, (base & 0xff) as u8 + 2);
            let name = format!("berth-{block:04x}");
            // Interface names: at most 15 bytes.
            let host_if = format!("bth{block:04x}h");
            let ns_if = format!("bth{block:04x}n");
            let taken = host_addrs.contains(&format!(" {host_ip}/"))
                || namespaces.lines().any(|l| l.split_whitespace().next() == Some(name.as_str()))
                || links.contains(&format!(": {host_if}"))
                || links.contains(&format!(": {host_if}@"));
            if taken {
                continue;
            }
            if ip(&["netns", "add", &name]).is_err() {
                continue; // created by someone else meanwhile
            }
            let mut this = Self { name, host_if, host_ip, ns_ip, link_created: false };
            this.setup(&ns_if)?; // on error, Drop removes what was made
            return Ok(this);
        }
        Err("no free /30 in 10.213.0.0/16 for a test network namespace".into())
    }

    fn setup(&mut self, ns_if: &str) -> Result<()> {
        ip(&["link", "add", &self.host_if, "type", "veth", "peer", "name", ns_if])?;
        self.link_created = true;
        let (ns, host_if) = (self.name.as_str(), self.host_if.as_str());
        ip(&["link", "set", ns_if, "netns", ns])?;
        ip(&["addr", "add", &format!("{}/30", self.host_ip), "dev", host_if])?;
        ip(&["link", "set", host_if, "up"])?;
        ip(&["-n", ns, "addr", "add", &format!("{}/30", self.ns_ip), "dev", ns_if])?;
        ip(&["-n", ns, "link", "set", ns_if, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address inside the namespace (where servers listen).
    pub fn ns_ip(&self) -> Ipv4Addr {
        self.ns_ip
    }

    /// The host's end of the link.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// `ip netns exec NAME`: put it before a program to run that program inside.
    pub fn command_prefix(&self) -> Vec<String> {
        let ip = tools::which("ip").map_or_else(|| "ip".to_owned(), |p| p.to_string_lossy().into_owned());
        vec![ip, "netns".into(), "exec".into(), self.name.clone()]
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both.
        if self.link_created {
            if let Err(e) = ip(&["link", "del", &self.host_if]) {
                eprintln!("testkit: removing veth {}: {e}", self.host_if);
            }
        }
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("testkit: removing network namespace {}: {e}", self.name);
        }
    }
}
