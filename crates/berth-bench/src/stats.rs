//! What the harness measures besides wall time: latency percentiles, the
//! client's own CPU (`getrusage`), and a server's CPU and memory (`/proc`).

use std::time::{Duration, Instant};

/// Latency samples in microseconds.
#[derive(Default, Clone)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.0.push(d.as_micros().min(u32::MAX as u128) as u32);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (0–100) in milliseconds; sorts in place.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let idx = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[idx] as f64 / 1000.0
    }
}

/// CPU seconds (user + system) this process has used so far.
pub fn self_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU seconds (utime + stime, all threads) of process `pid`, from `/proc/PID/stat`.
pub fn proc_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name, which may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat; index 11 and 12 after the name.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Wall time, client CPU and server CPU over one measured phase.
pub struct Phase {
    start: Instant,
    client_cpu: f64,
    server_pid: u32,
    server_cpu: f64,
}

/// The result of a [`Phase`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseCost {
    pub secs: f64,
    pub client_cpu: f64,
    pub server_cpu: f64,
}

impl PhaseCost {
    /// Client CPU as a share of one core over the phase.
    pub fn client_util(&self) -> f64 {
        self.client_cpu / self.secs.max(1e-9)
    }
}

impl Phase {
    pub fn start(server_pid: u32) -> Self {
        Self { start: Instant::now(), client_cpu: self_cpu(), server_pid, server_cpu: proc_cpu(server_pid) }
    }

    pub fn end(self) -> PhaseCost {
        PhaseCost {
            secs: self.start.elapsed().as_secs_f64(),
            client_cpu: self_cpu() - self.client_cpu,
            server_cpu: proc_cpu(self.server_pid) - self.server_cpu,
        }
    }
}

pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}
