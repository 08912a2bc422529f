//! `berth admin readonly on|off|status`: read-only maintenance mode, for
//! every node, through the admin API (system administrators).

use super::table::Column;
use super::{Api, Output};
use anyhow::bail;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

#[derive(Subcommand)]
pub enum ReadOnlyCommand {
    /// Refuse pushes, uploads and deletes (other nodes follow within seconds).
    On,
    /// Accept writes again.
    Off,
    /// Whether the registry is read-only.
    Status,
}

const COLUMNS: &[Column] = &[("READ-ONLY", "enabled")];
const PATH: &str = "/system/readonly";

pub fn readonly(api: &Api, out: &Output, c: ReadOnlyCommand) -> anyhow::Result<bool> {
    let v = match c {
        ReadOnlyCommand::On => api.call(Method::PUT, PATH, Some(json!({"enabled": true})))?,
        ReadOnlyCommand::Off => api.call(Method::PUT, PATH, Some(json!({"enabled": false})))?,
        ReadOnlyCommand::Status => api.call(Method::GET, PATH, None)?,
    };
    if v.is_null() {
        bail!("empty answer from {PATH}");
    }
    out.one(&v, COLUMNS);
    Ok(true)
}
