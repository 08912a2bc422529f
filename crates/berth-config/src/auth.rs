//! Who may use the registry: Distribution's `auth` section (htpasswd, or an
//! external token server) and Berth's own users and token service
//! (`berth.auth`). At most one of them is active; without any, anyone may
//! use the registry, exactly like `registry:2`.

use crate::duration;
use crate::error::{Problem, ProblemKind};
use crate::Config;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `auth`: Distribution's providers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<HtpasswdAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenAuth>,
}

/// `auth.htpasswd`: HTTP basic auth against an htpasswd file of bcrypt hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HtpasswdAuth {
    /// The realm of the `WWW-Authenticate` challenge.
    pub realm: String,
    /// The htpasswd file; created with a generated `docker` user if missing.
    pub path: PathBuf,
}

/// `auth.token`: trust bearer tokens from an external token server (the
/// Docker token spec), verified only with the key material named here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenAuth {
    /// Where clients get tokens (the challenge's `realm`).
    pub realm: String,
    /// This registry's name in tokens (`aud`) and challenges.
    pub service: String,
    /// The token server's name (`iss`).
    pub issuer: String,
    /// PEM certificates whose public keys sign tokens.
    pub rootcertbundle: Option<PathBuf>,
    /// A JSON Web Key Set file of signing keys (Distribution 3.x).
    pub jwks: Option<PathBuf>,
    /// Build the realm from the request's host and `autoredirectpath` (3.x).
    pub autoredirect: bool,
    pub autoredirectpath: Option<String>,
    /// Accepted JWS algorithms (3.x); empty: Distribution's default set.
    pub signingalgorithms: Vec<String>,
}

/// `berth.auth`: Berth's own users (in the metadata database) and its
/// built-in token service at `/token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BerthAuth {
    pub enabled: bool,
    /// `aud` of issued tokens and the challenge's `service`.
    pub service: String,
    /// `iss` of issued tokens.
    pub issuer: String,
    /// The challenge's realm; default: this registry's own `/token` URL as
    /// the client reached it.
    pub realm: Option<String>,
    /// Lifetime of an access token.
    #[serde(with = "duration::go")]
    pub tokenttl: Duration,
    /// Lifetime of a refresh token (`offline_token`, docker's identity token).
    #[serde(with = "duration::go")]
    pub refreshttl: Duration,
    /// PEM private key (EC P-256 or RSA) signing tokens; default: one
    /// generated on first start and kept in the metadata database.
    pub signingkey: Option<PathBuf>,
    /// Anonymous clients may pull.
    pub anonymouspull: bool,
}

impl Default for BerthAuth {
    fn default() -> Self {
        BerthAuth {
            enabled: false,
            service: "berth".into(),
            issuer: "berth".into(),
            realm: None,
            tokenttl: Duration::from_secs(300),
            refreshttl: Duration::from_secs(30 * 24 * 3600),
            signingkey: None,
            anonymouspull: false,
        }
    }
}

/// Distribution accepts exactly one `auth` provider; Berth's own service is
/// one more choice, not a layer on top.
pub(crate) fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(t) = &config.auth.token {
        // Distribution refuses to start without these.
        for (key, missing) in [
            ("auth.token.realm", t.realm.is_empty() && !t.autoredirect),
            ("auth.token.service", t.service.is_empty()),
            ("auth.token.issuer", t.issuer.is_empty()),
            ("auth.token.rootcertbundle", t.rootcertbundle.is_none() && t.jwks.is_none()),
        ] {
            if missing {
                let what = if key.ends_with("rootcertbundle") { "required (or auth.token.jwks)" } else { "required" };
                problems.push(Problem::new(key, ProblemKind::Missing, what));
            }
        }
    }
    problems.extend(one_provider(config));
    problems
}

fn one_provider(config: &Config) -> Option<Problem> {
    let active: Vec<&str> = [
        ("auth.htpasswd", config.auth.htpasswd.is_some()),
        ("auth.token", config.auth.token.is_some()),
        ("berth.auth.enabled", config.berth.auth.enabled),
    ]
    .into_iter()
    .filter_map(|(key, on)| on.then_some(key))
    .collect();
    (active.len() > 1).then(|| {
        Problem::new(
            active[1],
            ProblemKind::InvalidValue,
            format!("only one authentication provider may be configured, found {}", active.join(" and ")),
        )
    })
}

/// `berth.projects`: how projects come to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Projects {
    /// A push into a project that does not exist creates it (private, the
    /// pusher its ProjectAdmin) when the pusher may create projects.
    pub autocreate: bool,
    /// Who may create projects (Harbor's `project_creation_restriction`).
    pub creation: ProjectCreation,
    /// What a project created by a first push starts with.
    pub template: ProjectTemplate,
}

impl Default for Projects {
    fn default() -> Self {
        Projects { autocreate: true, creation: ProjectCreation::Everyone, template: ProjectTemplate::default() }
    }
}

/// `berth.projects.template`: the settings a project created by a first
/// push starts with (projects created through the admin API say their own).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectTemplate {
    /// Anyone, even anonymous, may pull.
    pub public: bool,
    /// Storage quota in bytes; unset: unlimited.
    pub storagelimit: Option<u64>,
    /// Tag patterns (doublestar) made immutable in every repository of the project.
    pub immutabletags: Vec<String>,
    /// A file holding a tag retention policy in Harbor's JSON.
    pub retention: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectCreation {
    Everyone,
    #[serde(rename = "adminonly")]
    AdminOnly,
}
