//! The `berth` command: `serve`, `config check`, `--version`.

mod logging;
mod serve;
mod settings;
mod stores;

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
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets masked) and every problem found.
    Check { config: Option<PathBuf> },
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
