//! Child processes that never outlive the test that started them.
//!
//! [`Supervised`] is a long-running child (a server): own process group,
//! stdout/stderr into a log file (never an unread pipe that could fill and
//! block it), `PR_SET_PDEATHSIG` so the kernel kills it if the thread that
//! started it dies (nextest timeout, panic=abort), and on `Drop` SIGTERM,
//! then SIGKILL to the whole group after a bound.
//!
//! [`run_bounded`] runs a short command (docker, skopeo, …) with a deadline
//! and returns its output; on timeout the command's process group is killed.
//!
//! Caveat of `PR_SET_PDEATHSIG`: it fires when the *thread* that spawned the
//! child exits, so start servers on the thread that uses them.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

/// How long a child gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(15);
/// How often bounded waits poll.
const POLL: Duration = Duration::from_millis(25);

/// Puts the child in its own process group and asks the kernel to SIGKILL
/// it when the spawning thread dies.
fn isolate(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A long-running child process, stopped on `Drop`.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Supervised {
    /// Spawns `cmd` with stdin from /dev/null and stderr appended to `log`.
    /// Stdout also goes to `log` unless the caller already set it (e.g. to a
    /// pipe, to read a ready line: the caller must then keep draining it).
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path, stdout_piped: bool) -> Result<Self> {
        let open = || {
            File::options()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| format!("{name}: cannot open log {}: {e}", log.display()))
        };
        cmd.stdin(Stdio::null()).stderr(open()?);
        if stdout_piped {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(open()?);
        }
        isolate(cmd);
        let child = cmd.spawn().map_err(|e| format!("{name}: cannot start {:?}: {e}", cmd.get_program()))?;
        Ok(Self { name: name.to_owned(), child, log: log.to_owned(), exit: None })
    }

    /// The child's PID (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child itself, e.g. to take its stdout pipe.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Path of the log file holding the child's stderr (and stdout if not piped).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// `Some(status)` once the child has exited (reaps it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// SIGKILL the process group now and reap the child.
    pub fn kill9(&mut self) {
        self.signal_group(libc::SIGKILL);
        if self.exit.is_none() {
            self.exit = self.child.wait().ok();
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL the whole group. Returns
    /// the exit status, or an error if it had to be killed.
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        self.signal_leader(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.leader_exited_unreaped() {
                // Kill stragglers in the group while the leader is a zombie:
                // its PID (= the group id) cannot be reused yet.
                self.signal_group(libc::SIGKILL);
                return self.child.wait().map_err(|e| e.to_string()).inspect(|s| self.exit = Some(*s));
            }
            thread::sleep(POLL);
        }
        self.kill9();
        Err(format!("{} (pid {}) ignored SIGTERM for {grace:?}; killed", self.name, self.pid()))
    }

    fn signal_leader(&self, sig: i32) {
        // SAFETY: plain syscall; the child is not reaped, so the PID is ours.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    fn signal_group(&self, sig: i32) {
        if self.exit.is_none() {
            // SAFETY: as above; the group id equals our unreaped child's PID.
            unsafe { libc::kill(-(self.pid() as i32), sig) };
        }
    }

    /// True once the leader has exited, without reaping it (`WNOWAIT`).
    fn leader_exited_unreaped(&self) -> bool {
        // SAFETY: waitid writes only into `info`, which we own.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            libc::waitid(libc::P_PID, self.pid(), &mut info, flags) == 0 && info.si_pid() != 0
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Err(e) = self.terminate(STOP_GRACE) {
            eprintln!("testkit: {e}");
        }
    }
}

/// The last `lines` lines of a text file (empty if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Output of [`run_bounded`].
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Captured stdout, lossily decoded.
    pub stdout: String,
    /// Captured stdout as bytes (e.g. a blob from `ctr content get`).
    pub stdout_bytes: Vec<u8>,
    /// Captured stderr, lossily decoded.
    pub stderr: String,
}

impl CommandOutput {
    /// True if the command exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Stdout (trimmed) if the command succeeded, else an error with stderr.
    pub fn ok(&self) -> Result<String> {
        if self.success() {
            Ok(self.stdout.trim().to_owned())
        } else {
            Err(self.describe_failure())
        }
    }

    /// A message with the command, its status and both outputs.
    pub fn describe_failure(&self) -> String {
        format!(
            "`{}` failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion within `timeout`, capturing stdout and stderr.
/// On timeout the command's process group is killed and an error returned.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<CommandOutput> {
    run(cmd, None, timeout)
}

/// [`run_bounded`] with `input` written to the command's stdin (then closed), e.g.
/// `docker login --password-stdin`.
pub fn run_bounded_with_input(cmd: &mut Command, input: &[u8], timeout: Duration) -> Result<CommandOutput> {
    run(cmd, Some(input), timeout)
}

fn run(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Result<CommandOutput> {
    let command = describe(cmd);
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    isolate(cmd);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run `{command}`: {e}"))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let input = input.to_vec();
        // A writer thread: a child that does not read must not block us past the deadline.
        thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&input);
        });
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // SAFETY: the child is not reaped, so its group id is ours.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        thread::sleep(POLL);
    };
    let stdout_bytes = out.join().unwrap_or_default();
    let stdout = String::from_utf8_lossy(&stdout_bytes).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    match status {
        Some(status) => Ok(CommandOutput { command, status, stdout, stdout_bytes, stderr }),
        None => Err(format!(
            "`{command}` timed out after {timeout:?}; killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        )),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// `program arg1 arg2 …` for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// SIGKILLs every process whose command line mentions `marker` (a unique
/// temp path of ours), e.g. containerd shims a killed dockerd left behind.
/// Never matches by program name, so it cannot hit anyone else's process.
pub fn kill_processes_mentioning(marker: &Path) {
    let marker = marker.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(&marker) {
            // SAFETY: plain syscall on a PID whose command line names our own temp dir.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}
