//! Builds the server's authentication from the configuration: none,
//! `auth.htpasswd`, an external token server (`auth.token`), or Berth's own
//! users and token service (`berth.auth`).

use anyhow::Context;
use berth_auth::{Algorithm, KeySet, SigningKey, TokenIssuer, TokenVerifier};
use berth_config::{Config, TokenAuth as TokenConfig};
use berth_meta::MetaStore;
use berth_server::{Authenticator, Policy, ProjectCreation, Realm, TokenAuth, TokenService, UserDirectory};
use std::sync::Arc;

/// Where the generated signing key is kept when `berth.auth.signingkey` is unset.
const SIGNING_KEY_SECRET: &str = "token-signing-key";
/// Names a file holding the first administrator's password (unattended installs).
pub const ADMIN_PASSWORD_FILE_VAR: &str = "BERTH_ADMIN_PASSWORD_FILE";

pub async fn authenticator(config: &Config, meta: &Arc<dyn MetaStore>) -> anyhow::Result<Authenticator> {
    let https = config.http.tls.certificate.is_some();
    if let Some(h) = &config.auth.htpasswd {
        let htpasswd = berth_auth::Htpasswd::open(&h.path, &h.realm).context("auth.htpasswd")?;
        let throttle = berth_auth::FailureThrottle::new(berth_auth::ThrottleConfig::default());
        return Ok(Authenticator::Htpasswd(htpasswd, Arc::new(throttle)));
    }
    if let Some(t) = &config.auth.token {
        return external(t, https).map(|t| Authenticator::Token(Arc::new(t)));
    }
    if config.berth.auth.enabled {
        return builtin(config, meta, https).await.map(|t| Authenticator::Token(Arc::new(t)));
    }
    Ok(Authenticator::Anonymous)
}

/// `auth.token`: verify tokens of an external server with only the key
/// material configured.
fn external(t: &TokenConfig, https: bool) -> anyhow::Result<TokenAuth> {
    let mut keys = KeySet::new();
    if let Some(path) = &t.rootcertbundle {
        let pem = std::fs::read(path).with_context(|| format!("auth.token.rootcertbundle: {}", path.display()))?;
        let n = keys
            .add_root_cert_bundle(&pem)
            .with_context(|| format!("auth.token.rootcertbundle: {}", path.display()))?;
        anyhow::ensure!(n > 0, "auth.token.rootcertbundle: {} holds no certificate", path.display());
    }
    if let Some(path) = &t.jwks {
        let json = std::fs::read(path).with_context(|| format!("auth.token.jwks: {}", path.display()))?;
        let n = keys.add_jwks(&json).with_context(|| format!("auth.token.jwks: {}", path.display()))?;
        anyhow::ensure!(n > 0, "auth.token.jwks: {} holds no usable key", path.display());
    }
    let mut verifier = TokenVerifier::new(keys, &t.issuer, &t.service);
    if !t.signingalgorithms.is_empty() {
        let algorithms = t
            .signingalgorithms
            .iter()
            .map(|a| a.parse::<Algorithm>().map_err(|_| anyhow::anyhow!("auth.token.signingalgorithms: unknown {a:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        verifier = verifier.with_algorithms(&algorithms);
    }
    let realm = if t.autoredirect {
        let path = t.autoredirectpath.clone().unwrap_or_else(|| "/auth/token".into());
        Realm::SameHost { path, https }
    } else {
        Realm::Fixed(t.realm.clone())
    };
    Ok(TokenAuth { verifier, realm, service: t.service.clone(), builtin: None })
}

/// `berth.auth`: Berth issues and verifies its own tokens.
async fn builtin(config: &Config, meta: &Arc<dyn MetaStore>, https: bool) -> anyhow::Result<TokenAuth> {
    let a = &config.berth.auth;
    let key = match &a.signingkey {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("berth.auth.signingkey: {}", path.display()))?;
            SigningKey::from_pem(&pem).with_context(|| format!("berth.auth.signingkey: {}", path.display()))?
        }
        None => {
            // The first node to start generates the key; every node and
            // restart after it uses the same one.
            let candidate = SigningKey::generate_es256().to_pkcs8_pem()?;
            let pem = meta.secret_or_insert(SIGNING_KEY_SECRET, candidate.as_bytes(), crate::now_ms()).await?;
            SigningKey::from_pem(&pem).context("the token-signing key kept in the metadata database")?
        }
    };
    let mut keys = KeySet::new();
    keys.insert(key.public_key());
    let verifier = TokenVerifier::new(keys, &a.issuer, &a.service);
    let issuer = TokenIssuer::new(key, &a.issuer).with_ttl(a.tokenttl).with_refresh_ttl(a.refreshttl);
    bootstrap_from_env(meta).await?;
    if meta.count_admins().await? == 0 {
        tracing::warn!(
            "no administrator exists: create one with `berth admin bootstrap --user NAME`, \
             or start with {ADMIN_PASSWORD_FILE_VAR} naming a file that holds the password"
        );
    }
    let users = UserDirectory::new(meta.clone());
    let creation = match config.berth.projects.creation {
        berth_config::ProjectCreation::Everyone => ProjectCreation::Everyone,
        berth_config::ProjectCreation::AdminOnly => ProjectCreation::AdminOnly,
    };
    let template = project_template(&config.berth.projects.template)?;
    let policy =
        Policy::new(meta.clone(), a.anonymouspull, config.berth.projects.autocreate, creation).with_template(template);
    let service = TokenService { issuer, users, service: a.service.clone(), policy };
    let realm = match &a.realm {
        Some(r) => Realm::Fixed(r.clone()),
        None => Realm::SameHost { path: "/token".into(), https },
    };
    Ok(TokenAuth { verifier, realm, service: a.service.clone(), builtin: Some(Arc::new(service)) })
}

/// `BERTH_ADMIN_PASSWORD_FILE`: creates the administrator `admin` with the
/// file's password if no administrator exists yet.
async fn bootstrap_from_env(meta: &Arc<dyn MetaStore>) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os(ADMIN_PASSWORD_FILE_VAR) else { return Ok(()) };
    let password = crate::admin::read_password_file(std::path::Path::new(&path))
        .with_context(|| format!("{ADMIN_PASSWORD_FILE_VAR}={}", path.to_string_lossy()))?;
    if let Some(user) = crate::admin::create_first_admin(meta, "admin", &password).await? {
        tracing::info!(user = %user, "created the first administrator from {ADMIN_PASSWORD_FILE_VAR}");
    }
    Ok(())
}

/// `berth.projects.template`, checked now so that a bad pattern or policy
/// stops the start rather than the first push.
fn project_template(t: &berth_config::ProjectTemplate) -> anyhow::Result<berth_server::ProjectTemplate> {
    use berth_meta::selectors::Decoration;
    use berth_meta::{NewImmutableRule, RulePattern};
    let mut immutable = Vec::new();
    for tag in &t.immutabletags {
        let rule = NewImmutableRule {
            repository: RulePattern::new(Decoration::Matches, "**"),
            tag: RulePattern::new(Decoration::Matches, tag),
            disabled: false,
        };
        rule.validate().map_err(|e| anyhow::anyhow!("berth.projects.template.immutabletags: {tag:?}: {e}"))?;
        immutable.push(rule);
    }
    let retention = match &t.retention {
        None => None,
        Some(path) => {
            let json = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("berth.projects.template.retention: reading {path}: {e}"))?;
            let policy = berth_jobs::retention::policy::Policy::parse(&json)
                .and_then(|p| p.compile().map(|_| p))
                .map_err(|e| anyhow::anyhow!("berth.projects.template.retention: {path}: {e}"))?;
            let cron = policy.cron().map(berth_jobs::retention::policy::five_field_cron);
            if let Some(c) = &cron {
                berth_jobs::schedule::Schedule::parse(c)
                    .map_err(|e| anyhow::anyhow!("berth.projects.template.retention: {path}: schedule {c:?}: {e}"))?;
            }
            Some((json, cron))
        }
    };
    Ok(berth_server::ProjectTemplate { public: t.public, storage_limit: t.storagelimit, immutable, retention })
}
