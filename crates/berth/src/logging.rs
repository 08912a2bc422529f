//! Logs go to stderr, in Distribution's formats (`text`, `json`, `logstash`
//! treated as json), at `log.level` unless `RUST_LOG` says otherwise.

use berth_config::{Log, LogFormatter, LogLevel};
use tracing_subscriber::EnvFilter;

pub fn init(log: &Log) {
    let level = match log.level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match log.formatter {
        LogFormatter::Text => builder.try_init(),
        _ => builder.json().try_init(),
    };
}
