//! The servers under test, on loopback, pinned to the server core:
//! Berth (through `berth-testkit`), Distribution (Debian's `docker-registry`,
//! started here because the benchmark wants its access log off and log level
//! `error`, which the testkit's test configuration does not set) and nginx
//! with `sendfile on` as the limit for blob pulls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use berth_testkit::process::Supervised;
use berth_testkit::{BerthOptions, BerthServer, Garage, Postgres};
use tempfile::TempDir;

use crate::stats::proc_status_kib;

/// The core the servers run on; the load generator runs on [`CLIENT_CPU`].
pub const SERVER_CPU: usize = 0;
pub const CLIENT_CPU: usize = 1;

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Berth,
    Distribution,
    Nginx,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Berth => "berth",
            Kind::Distribution => "distribution",
            Kind::Nginx => "nginx",
        }
    }
}

/// Where Berth keeps blobs and metadata (`--backend`). Distribution always runs on the filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Filesystem blobs, embedded metadata: the single-node default.
    Fs,
    /// Blobs in S3 (a real Garage), metadata in a real PostgreSQL: the cluster set-up.
    S3Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Fs => "fs",
            Backend::S3Postgres => "s3-postgres",
        }
    }
}

/// The S3 prefix Berth writes under in the benchmark's bucket.
const S3_ROOT_DIRECTORY: &str = "/berth-bench";

// Tuple fields drop in order: Berth stops before the services it uses.
enum Handle {
    Berth(#[allow(dead_code)] Box<BerthServer>),
    BerthS3(#[allow(dead_code)] Box<(BerthServer, Garage, Postgres)>),
    Process(#[allow(dead_code)] Supervised, #[allow(dead_code)] TempDir),
}

/// A running server; stopped on `Drop`.
pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub pid: u32,
    /// `VmRSS` right after start-up, KiB.
    pub idle_rss_kib: u64,
    /// PIDs of the services Berth uses (Garage, the postmaster), if any; their CPU is not in
    /// Berth's figures.
    pub backing_pids: Vec<(&'static str, u32)>,
    /// How an operator collects this registry's garbage (the `gc` scenario).
    pub gc: Option<GcCommand>,
    /// `Authorization` for the manifest scenario's repository (`--auth`).
    pub auth: Option<String>,
    _handle: Handle,
}

/// A garbage-collection command line for a server's data.
pub struct GcCommand {
    pub kind: Kind,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Set after the caller's `REGISTRY_*` variables are removed.
    pub env: Vec<(String, String)>,
}

impl Server {
    /// Peak resident memory so far (`VmHWM`), KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmHWM")
    }

    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmRSS")
    }
}

/// The registry configuration both registries read: filesystem storage,
/// deletes on, upload purging off, access log off, errors only. Berth reads
/// the same file (its address and root come from `REGISTRY_*` overrides).
fn registry_config(addr: SocketAddr, root: &Path) -> String {
    format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
         rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n",
        root.display()
    )
}

/// Pins every thread of `pid` (and so every thread it creates later) to `cpu`.
pub fn pin(pid: u32, cpu: usize) -> Result<()> {
    let out = Command::new("taskset").args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()]).output()?;
    if !out.status.success() {
        bail!("taskset -a -p -c {cpu} {pid}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Pins this process (the load generator) to the client core.
pub fn pin_self() -> Result<()> {
    pin(std::process::id(), CLIENT_CPU)
}

/// PIDs of the processes whose parent is `parent` (PostgreSQL's background workers and backends).
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

const BENCH_ADMIN_PASSWORD: &str = "berth-bench-admin-password";

/// A token for pull and push on `repo` from Berth's token service, as docker would get it.
fn bearer_token(addr: SocketAddr, repo: &str) -> Result<String> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{BENCH_ADMIN_PASSWORD}"));
    let path = format!("/token?service=berth&scope=repository:{repo}:pull,push");
    let resp = berth_testkit::http::request(addr, "GET", &path, &[("Authorization", &format!("Basic {basic}"))], &[])
        .map_err(|e| anyhow!(e))?;
    anyhow::ensure!(resp.status == 200, "token request: {}", resp.describe());
    let body: serde_json::Value = serde_json::from_slice(&resp.body)?;
    let token = body["token"].as_str().ok_or_else(|| anyhow!("no token in {body}"))?;
    Ok(format!("Bearer {token}"))
}

/// Starts Berth from `bin` on `backend` and pins it (and, for S3 + PostgreSQL, Garage and
/// PostgreSQL) to the server core.
pub fn start_berth(bin: &Path, scratch: &Path, backend: Backend, auth: bool) -> Result<Server> {
    let config = scratch.join("berth-config.yml");
    std::fs::write(&config, registry_config("127.0.0.1:0".parse()?, &scratch.join("unused")))?;
    let opts = BerthOptions::default()
        .bin(bin)
        .config_file(&config)
        .delete_enabled(true)
        .env("REGISTRY_LOG_ACCESSLOG_DISABLED", "true")
        .env("REGISTRY_LOG_LEVEL", "error");
    // `--auth`: Berth's own token service, an administrator, and tokens that outlive the run.
    let password_file = scratch.join("admin-password");
    let opts = if auth {
        std::fs::write(&password_file, format!("{BENCH_ADMIN_PASSWORD}\n"))?;
        opts.env("REGISTRY_BERTH_AUTH_ENABLED", "true")
            .env("REGISTRY_BERTH_AUTH_TOKENTTL", "2h")
            .env("BERTH_ADMIN_PASSWORD_FILE", password_file.display().to_string())
    } else {
        opts
    };
    let (opts, services) = match backend {
        Backend::Fs => (opts, None),
        Backend::S3Postgres => {
            let garage = Garage::start().map_err(|e| anyhow!(e)).context("starting Garage")?;
            let postgres = Postgres::start().map_err(|e| anyhow!(e)).context("starting PostgreSQL")?;
            // Pin before Berth connects: backends forked later inherit the postmaster's affinity.
            pin(garage.pid(), SERVER_CPU)?;
            pin(postgres.pid(), SERVER_CPU)?;
            for child in children(postgres.pid()) {
                pin(child, SERVER_CPU)?;
            }
            let opts = opts
                .s3_storage(&garage, S3_ROOT_DIRECTORY)
                .env("REGISTRY_STORAGE_DELETE_ENABLED", "true")
                .env("REGISTRY_BERTH_DATABASE_URL", postgres.url("postgres"));
            (opts, Some((garage, postgres)))
        }
    };
    let server = BerthServer::start(opts.clone()).map_err(|e| anyhow!(e))?;
    // `berth gc` reads what `serve` reads: the same file and variables.
    let mut gc_env = vec![("REGISTRY_STORAGE_DELETE_ENABLED".to_owned(), "true".to_owned())];
    if opts.filesystem_root {
        gc_env.push(("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY".into(), server.data_dir().display().to_string()));
    }
    gc_env.extend(opts.env.iter().cloned());
    let gc = GcCommand {
        kind: Kind::Berth,
        program: bin.to_owned(),
        args: vec!["gc".into(), "--grace".into(), "0s".into(), config.display().to_string()],
        env: gc_env,
    };
    let pid = server.pid();
    pin(pid, SERVER_CPU)?;
    settle();
    let idle_rss_kib = proc_status_kib(pid, "VmRSS");
    let addr = server.addr();
    let (backing_pids, handle) = match services {
        None => (Vec::new(), Handle::Berth(Box::new(server))),
        Some((garage, postgres)) => {
            // Anything the postmaster forked meanwhile that did not inherit the pin.
            for child in children(postgres.pid()) {
                pin(child, SERVER_CPU)?;
            }
            let pids = vec![("garage", garage.pid()), ("postgres", postgres.pid())];
            (pids, Handle::BerthS3(Box::new((server, garage, postgres))))
        }
    };
    let auth = if auth { Some(bearer_token(addr, crate::scenarios::MANIFEST_REPO)?) } else { None };
    Ok(Server { kind: Kind::Berth, addr, pid, idle_rss_kib, backing_pids, gc: Some(gc), auth, _handle: handle })
}

/// CPU seconds so far of the services Berth uses: Garage, the postmaster and its live children.
pub fn backing_cpu(server: &Server) -> f64 {
    server
        .backing_pids
        .iter()
        .map(|&(name, pid)| {
            let own = crate::stats::proc_cpu(pid);
            match name {
                "postgres" => own + children(pid).into_iter().map(crate::stats::proc_cpu).sum::<f64>(),
                _ => own,
            }
        })
        .sum()
}

/// Starts `docker-registry serve` under `taskset` on the server core.
pub fn start_distribution() -> Result<Server> {
    let bin = berth_testkit::tools::require("docker-registry", "docker-registry").map_err(|e| anyhow!(e))?;
    let dir = tempfile::Builder::new().prefix("bench-distribution-").tempdir_in(bench_tmp())?;
    let addr = berth_testkit::net::free_loopback_addr().map_err(|e| anyhow!(e))?;
    let config = dir.path().join("config.yml");
    std::fs::write(&config, registry_config(addr, &dir.path().join("data")))?;
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &SERVER_CPU.to_string()]).arg(&bin).arg("serve").arg(&config);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("REGISTRY_") || k.starts_with("AWS_") {
            cmd.env_remove(&key);
        }
    }
    let log = dir.path().join("registry.log");
    let process = Supervised::spawn("docker-registry", &mut cmd, &log, false).map_err(|e| anyhow!(e))?;
    wait_http(addr, "/v2/", &log)?;
    let pid = process.pid();
    settle();
    let gc = GcCommand {
        kind: Kind::Distribution,
        program: bin.clone(),
        args: vec!["garbage-collect".into(), config.display().to_string()],
        env: Vec::new(),
    };
    Ok(Server {
        kind: Kind::Distribution,
        addr,
        pid,
        idle_rss_kib: proc_status_kib(pid, "VmRSS"),
        backing_pids: Vec::new(),
        gc: Some(gc),
        auth: None,
        _handle: Handle::Process(process, dir),
    })
}

/// Starts nginx (single process, `sendfile on`) serving `file` as `/blob`.
pub fn start_nginx(file: &[u8]) -> Result<Server> {
    let bin = berth_testkit::tools::require("nginx", "nginx-light").map_err(|e| anyhow!(e))?;
    let dir = tempfile::Builder::new().prefix("bench-nginx-").tempdir_in(bench_tmp())?;
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("blob"), file)?;
    let addr = berth_testkit::net::free_loopback_addr().map_err(|e| anyhow!(e))?;
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log error;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n  \
         client_body_temp_path {d}/t1;\n  proxy_temp_path {d}/t2;\n  fastcgi_temp_path {d}/t3;\n  \
         uwsgi_temp_path {d}/t4;\n  scgi_temp_path {d}/t5;\n  default_type application/octet-stream;\n  \
         server {{ listen {addr}; root {www}; }}\n}}\n",
        www = www.display()
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &SERVER_CPU.to_string()])
        .arg(&bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&conf_path);
    let log = dir.path().join("stderr.log");
    let process = Supervised::spawn("nginx", &mut cmd, &log, false).map_err(|e| anyhow!(e))?;
    wait_http(addr, "/blob", &log)?;
    let pid = process.pid();
    Ok(Server {
        kind: Kind::Nginx,
        addr,
        pid,
        idle_rss_kib: proc_status_kib(pid, "VmRSS"),
        backing_pids: Vec::new(),
        gc: None,
        auth: None,
        _handle: Handle::Process(process, dir),
    })
}

fn wait_http(addr: SocketAddr, path: &str, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if berth_testkit::http::get_status(addr, path) == Some(200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let tail = berth_testkit::process::log_tail(log, 20);
    Err(anyhow!("no 200 from http://{addr}{path} within 30 s\n{tail}")).context("server start")
}

/// Lets a freshly started server finish its start-up work before idle RSS is read.
fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

/// Where servers keep their data: on disk (not tmpfs), so pushes pay real fsyncs.
pub fn bench_tmp() -> PathBuf {
    let dir = PathBuf::from("/var/tmp");
    match dir.is_dir() {
        true => dir,
        false => std::env::temp_dir(),
    }
}
