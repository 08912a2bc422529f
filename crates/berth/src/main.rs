//! The `berth` command: `serve`, `config check`, `--version`.

mod admin;
mod audit;
mod auth;
mod gc;
mod logging;
mod migrate;
mod notifications;
mod remote;
mod retention;
mod scrub;
mod serve;
mod settings;
mod stores;
mod text_pages;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "berth", version, about = "An OCI container registry in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry. Reads Distribution's config.yml format; REGISTRY_*
    /// variables override it.
    Serve {
        /// Configuration file (default: REGISTRY_CONFIGURATION_PATH, else built-in defaults).
        config: Option<PathBuf>,
    },
    /// Administration: users, projects, members, quotas, immutability and retention rules
    /// and the audit log through a running server's admin API (after
    /// `berth admin login`), or `bootstrap` on the database directly.
    Admin {
        /// Print the API's JSON instead of tables.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The tamper-evident audit log: verify its hash chain, export it, prune it.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Collect garbage (unreferenced blobs, expired uploads, optionally
    /// untagged manifests), safely while servers run on the same data.
    Gc {
        config: Option<PathBuf>,
        /// List what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Grace period for this run (e.g. 0s, 30m, 2h); default berth.gc.grace, else 1h.
        #[arg(long, value_parser = gc::parse_duration)]
        grace: Option<std::time::Duration>,
        /// Also remove untagged manifests in repositories matching this regex.
        #[arg(long)]
        untagged: Option<String>,
    },
    /// Copy every blob to the storage of another configuration (filesystem to
    /// S3 or back), verifying each digest; re-run to resume.
    MigrateStorage {
        /// The current configuration (its metadata lists the blobs).
        config: Option<PathBuf>,
        /// A configuration whose `storage` section names the destination.
        #[arg(long)]
        to: PathBuf,
    },
    /// Verify stored blobs against their digests and metadata against storage.
    Scrub {
        config: Option<PathBuf>,
        /// Move corrupt blobs to berth/quarantine/ and forget them.
        #[arg(long)]
        quarantine: bool,
    },
    /// Tag retention (Harbor's policies, stored per project).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Storage used per repository: logical, shared, and freed by deleting it.
    Usage {
        config: Option<PathBuf>,
        /// Only this repository.
        #[arg(long)]
        repo: Option<String>,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Run a project's policy now: record what it retains and removes and,
    /// unless --dry-run, remove it (blob bytes go at the next gc).
    Run {
        config: Option<PathBuf>,
        #[arg(long)]
        project: String,
        /// Record and list the plan; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the first administrator, offline, in the configured metadata
    /// database (Berth has no default password). Reads the password from
    /// --password-file or one line on stdin.
    Bootstrap {
        config: Option<PathBuf>,
        /// The administrator's user name.
        #[arg(long, default_value = "admin")]
        user: String,
        /// A file whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Log in to a running server (the password is read from stdin); keeps
    /// a revocable admin-API refresh token, never the password.
    Login {
        /// The server, e.g. https://registry.example.com
        url: String,
        #[arg(long, short)]
        username: String,
        /// Extra CA certificates (PEM) to trust, for a private CA.
        #[arg(long)]
        ca_cert: Option<PathBuf>,
    },
    /// Forget the saved login.
    Logout,
    /// Users (administrators; anyone for their own password).
    Users {
        #[command(subcommand)]
        command: remote::UsersCommand,
    },
    /// Projects.
    Projects {
        #[command(subcommand)]
        command: remote::ProjectsCommand,
    },
    /// Project members and their roles.
    Members {
        #[command(subcommand)]
        command: remote::MembersCommand,
    },
    /// A project's storage quota and usage (setting it: administrators).
    Quota {
        #[command(subcommand)]
        command: remote::QuotaCommand,
    },
    /// Read-only maintenance mode for every node (administrators).
    Readonly {
        #[command(subcommand)]
        command: remote::ReadOnlyCommand,
    },
    /// A project's tag immutability rules.
    Immutable {
        #[command(subcommand)]
        command: remote::ImmutableCommand,
    },
    /// Robot accounts: a project's (--project) or system robots (administrators).
    Robots {
        #[command(subcommand)]
        command: remote::RobotsCommand,
    },
    /// A project's tag retention policy and its runs.
    Retention {
        #[command(subcommand)]
        command: remote::RetentionCommand,
    },
    /// A project's webhook policies and their delivery logs.
    Webhooks {
        #[command(subcommand)]
        command: remote::WebhooksCommand,
    },
    /// Read the audit log through the server (administrators; a project's
    /// entries with --project, for its members).
    AuditLogs {
        #[arg(long)]
        project: Option<String>,
        /// Entries after this id.
        #[arg(long)]
        after: Option<i64>,
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every entry's hash and link, in id order: prints "chain
    /// intact: N entries, head <hash>", or names the first broken entry and exits 1.
    Verify { config: Option<PathBuf> },
    /// Print entries as JSON lines, oldest first.
    Export {
        config: Option<PathBuf>,
        /// Only entries at or after this time (RFC 3339, e.g. 2024-05-01T00:00:00Z, or a duration ago: 24h).
        #[arg(long)]
        since: Option<String>,
        /// Only entries before this time (same forms).
        #[arg(long)]
        until: Option<String>,
    },
    /// Delete entries older than the retention, oldest first, keeping the
    /// chain verifiable (servers do this hourly when berth.audit.retention is set).
    Prune {
        config: Option<PathBuf>,
        /// Instead of berth.audit.retention (e.g. 2160h, 90d).
        #[arg(long, value_parser = gc::parse_duration)]
        older_than: Option<std::time::Duration>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets masked) and every problem found.
    Check { config: Option<PathBuf> },
}

/// Wall-clock Unix milliseconds, as the metadata store records time.
fn now_ms() -> i64 {
    use berth_jobs::Clock;
    berth_jobs::SystemClock.now_ms()
}

/// The configuration file: the argument, else Distribution's
/// `REGISTRY_CONFIGURATION_PATH`.
fn config_path(arg: Option<PathBuf>) -> Option<PathBuf> {
    arg.or_else(|| std::env::var_os("REGISTRY_CONFIGURATION_PATH").map(PathBuf::from))
}

fn load(arg: Option<PathBuf>) -> Result<berth_config::Loaded, berth_config::ConfigError> {
    let env = std::env::vars().filter(|(k, _)| k != "REGISTRY_CONFIGURATION_PATH");
    berth_config::load(config_path(arg).as_deref(), env)
}

fn main() -> ExitCode {
    text_pages::map_only_what_runs();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let loaded = match load(config) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("berth: {e}");
                    return ExitCode::from(2);
                }
            };
            match serve::run(loaded) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("berth: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Gc { config, dry_run, grace, untagged } => {
            with_config(config, |l| gc::run(l, gc::GcArgs { dry_run, grace, untagged }).map(|()| true))
        }
        Command::MigrateStorage { config, to } => with_config(config, |l| migrate::run(l, to).map(|()| true)),
        Command::Scrub { config, quarantine } => with_config(config, |l| scrub::run(l, quarantine)),
        Command::Usage { config, repo } => with_config(config, |l| gc::usage(l, repo).map(|()| true)),
        Command::Retention { command: RetentionCommand::Run { config, project, dry_run } } => {
            with_config(config, |l| retention::run_cli(l, project, dry_run).map(|()| true))
        }
        Command::Admin { command: AdminCommand::Bootstrap { config, user, password_file }, .. } => {
            with_config(config, |l| admin::bootstrap(l, admin::BootstrapArgs { user, password_file }))
        }
        Command::Admin { command, json } => {
            let remote = match command {
                AdminCommand::Bootstrap { .. } => unreachable!("matched above"),
                AdminCommand::Login { url, username, ca_cert } => remote::Remote::Login { url, username, ca_cert },
                AdminCommand::Logout => remote::Remote::Logout,
                AdminCommand::Users { command } => remote::Remote::Users(command),
                AdminCommand::Projects { command } => remote::Remote::Projects(command),
                AdminCommand::Members { command } => remote::Remote::Members(command),
                AdminCommand::Quota { command } => remote::Remote::Quota(command),
                AdminCommand::Immutable { command } => remote::Remote::Immutable(command),
                AdminCommand::Readonly { command } => remote::Remote::ReadOnly(command),
                AdminCommand::Robots { command } => remote::Remote::Robots(command),
                AdminCommand::Retention { command } => remote::Remote::Retention(command),
                AdminCommand::Webhooks { command } => remote::Remote::Webhooks(command),
                AdminCommand::AuditLogs { project, after, limit } => {
                    remote::Remote::AuditLogs { project, after, limit }
                }
            };
            match remote::run(remote, json) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("berth: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Audit { command } => match command {
            AuditCommand::Verify { config } => with_config(config, audit::verify),
            AuditCommand::Export { config, since, until } => {
                with_config(config, |l| audit::export(l, audit::ExportArgs { since, until }))
            }
            AuditCommand::Prune { config, older_than } => with_config(config, |l| audit::prune(l, older_than)),
        },
        Command::Config { command: ConfigCommand::Check { config } } => match load(config) {
            Ok(loaded) => {
                print!("{}", loaded.config.to_masked_yaml());
                for w in &loaded.warnings {
                    eprintln!("warning: {w}");
                }
                eprintln!("configuration ok ({} warnings)", loaded.warnings.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

/// Loads the configuration and runs a maintenance command: exit 2 on a bad
/// configuration, 1 on failure or (`Ok(false)`) problems found.
fn with_config(config: Option<PathBuf>, f: impl FnOnce(berth_config::Loaded) -> anyhow::Result<bool>) -> ExitCode {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("berth: {e}");
            return ExitCode::from(2);
        }
    };
    match f(loaded) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}
