//! `berth admin …` commands that work offline, on the database itself.
//! Today: `bootstrap`, which creates the first administrator. Berth never
//! has a default password: until this runs (or `BERTH_ADMIN_PASSWORD_FILE`
//! is set at start), no administrator can log in.

use anyhow::Context;
use berth_meta::{valid_user_name, MetaStore, NewUser};
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

/// Shortest password accepted for a new account.
pub const MIN_PASSWORD_LEN: usize = 12;

pub struct BootstrapArgs {
    pub user: String,
    pub password_file: Option<std::path::PathBuf>,
}

pub fn bootstrap(loaded: berth_config::Loaded, args: BootstrapArgs) -> anyhow::Result<bool> {
    let password = match &args.password_file {
        Some(path) => read_password_file(path).with_context(|| format!("--password-file {}", path.display()))?,
        None => {
            eprintln!("password for {} (one line on stdin):", args.user);
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let (meta, at) = crate::stores::open_meta(&loaded.config).await?;
        match create_first_admin(&meta, &args.user, &password).await? {
            Some(name) => {
                println!("created administrator {name} in {at}");
                Ok(true)
            }
            None => {
                eprintln!("an administrator already exists in {at}; nothing changed");
                Ok(false)
            }
        }
    })
}

/// Creates `name` as an administrator if none exists. `None` if one did.
pub async fn create_first_admin(
    meta: &Arc<dyn MetaStore>,
    name: &str,
    password: &str,
) -> anyhow::Result<Option<String>> {
    anyhow::ensure!(valid_user_name(name), "invalid user name {name:?}: use letters, digits, '.', '_' and '-'");
    anyhow::ensure!(
        password.chars().count() >= MIN_PASSWORD_LEN,
        "the password must have at least {MIN_PASSWORD_LEN} characters"
    );
    let hash = {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || berth_auth::hash_password(&password)).await?
    };
    let user = NewUser { name: name.to_owned(), password_hash: hash, admin: true };
    Ok(meta.create_first_admin(&user, crate::now_ms()).await?.map(|u| u.name))
}

/// The first line of a password file, without its line ending.
pub fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let password = text.lines().next().unwrap_or("").to_owned();
    anyhow::ensure!(!password.is_empty(), "the file is empty");
    Ok(password)
}
