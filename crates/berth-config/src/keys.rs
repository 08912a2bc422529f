//! The table of every configuration key Distribution 2.8 and 3.x know, plus Berth's own
//! `berth:` section, each classified once.
//!
//! Sources: distribution/distribution `docs/content/about/configuration.md` (3.x),
//! Debian's docker-registry 2.8.2 `configuration.md`, and `configuration/configuration.go`
//! of both lines. A path names a key with dots; `[]` stands for any element of a list
//! (`health.file[].interval`). Keys not in this table are errors, except below an entry whose
//! kind says its children are free-form.

use crate::values::Check::{self, *};

/// How Berth treats one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A supported mapping; its children must be in the table.
    Section,
    /// A supported value, checked and normalised by the `Check`.
    Value(Check),
    /// A supported mapping with free-form names; every child value passes the `Check`.
    Map(Check),
    /// A supported list of mappings; element keys are listed as `path[].key`.
    Objects,
    /// Known, but means nothing to Berth: accepted, and the reason (when not empty) is a
    /// warning. Children are still checked against the table.
    Ignored(&'static str),
    /// Like `Ignored`, but the children are free-form (a third party's option set).
    IgnoredOpen(&'static str),
    /// Known, built by a later Berth version: a start-up error naming the key.
    NotYet(&'static str),
    /// Like `NotYet`, but accepted while empty (`notifications.endpoints: []`, `middleware: {}`).
    NotYetIfNonEmpty(&'static str),
}

use Kind::*;

const NO_REDIS: &str = "Berth uses no Redis; its caches live in the process";
const NO_HEALTH: &str = "Berth runs no configurable health checks; it answers /v2/ while it can serve";
const NO_BLOB_CACHE: &str = "Berth reads blob descriptors from its metadata database, not a Distribution cache";
const NO_REPORTING: &str = "Berth sends no error reports to Bugsnag or New Relic";
const NO_SSE: &str = "Berth does not request server-side encryption; enable default encryption on the bucket";
const S3_COPY: &str = "Berth sizes its server-side copies itself";
const NO_SCHEMA1: &str = "Berth does not sign or serve schema1 manifests";

/// Drivers known to Distribution 2.8 (swift, oss) and 3.x besides filesystem.
pub(crate) const OTHER_DRIVERS: &[&str] = &["inmemory", "s3", "azure", "gcs", "swift", "oss"];

/// Children of `storage` that are settings, not drivers (Distribution's `Storage.Type()`).
pub(crate) const STORAGE_SETTINGS: &[&str] = &["maintenance", "cache", "delete", "redirect", "tag"];

#[rustfmt::skip]
pub(crate) static KEYS: &[(&str, Kind)] = &[
    ("version", Value(Version)),
    ("loglevel", Value(LogLevel)), // deprecated spelling of log.level
    ("log", Section),
    ("log.level", Value(LogLevel)),
    ("log.formatter", Value(Formatter)),
    ("log.fields", Map(Str)),
    ("log.accesslog", Section),
    ("log.accesslog.disabled", Value(Bool)),
    ("log.hooks", IgnoredOpen("log hooks (mail on error) are not implemented; use your log collector")),
    ("log.reportcaller", Ignored("Berth does not add the caller's source location to log lines")),

    ("http", Section),
    ("http.addr", Value(ListenAddr)),
    ("http.net", Value(Net)),
    ("http.prefix", Value(Str)),
    ("http.host", Value(AbsoluteUrl)),
    ("http.secret", Value(Str)),
    ("http.relativeurls", Value(Bool)),
    ("http.draintimeout", Value(Duration { int_ns: true })),
    ("http.headers", Map(StrList)),
    ("http.tls", Section),
    ("http.tls.certificate", Value(Str)),
    ("http.tls.key", Value(Str)),
    ("http.tls.clientcas", Value(StrList)),
    ("http.tls.clientauth", Value(ClientAuth)),
    ("http.tls.minimumtls", Value(MinimumTls)),
    ("http.tls.ciphersuites", Value(StrList)),
    ("http.tls.letsencrypt", NotYetIfNonEmpty("Let's Encrypt (ACME) certificates; give http.tls.certificate and key")),
    ("http.debug", Section),
    ("http.debug.addr", Value(ListenAddr)),
    ("http.debug.prometheus", Section),
    ("http.debug.prometheus.enabled", Value(Bool)),
    ("http.debug.prometheus.path", Value(Str)),
    ("http.http2", Ignored("")),
    ("http.http2.disabled", Ignored("Berth always offers HTTP/2 over TLS (ALPN h2, then http/1.1)")),
    ("http.h2c", Ignored("")),
    ("http.h2c.enabled", Ignored("whether cleartext HTTP/2 is accepted is decided by Berth's HTTP server")),

    ("storage", Section),
    ("storage.filesystem", Section),
    ("storage.filesystem.rootdirectory", Value(Str)),
    ("storage.filesystem.maxthreads", Ignored("Berth bounds its blocking file I/O itself")),
    ("storage.inmemory", NotYet("the inmemory storage driver")),
    ("storage.s3", Section),
    ("storage.s3.accesskey", Value(Str)),
    ("storage.s3.secretkey", Value(Str)),
    ("storage.s3.region", Value(Str)),
    ("storage.s3.regionendpoint", Value(Str)),
    ("storage.s3.bucket", Value(Str)),
    ("storage.s3.rootdirectory", Value(Str)),
    ("storage.s3.forcepathstyle", Value(Bool)),
    ("storage.s3.chunksize", Value(UInt)),
    ("storage.s3.secure", Value(Bool)),
    ("storage.s3.skipverify", Value(Bool)),
    ("storage.s3.v4auth", Ignored("Berth always signs with AWS Signature Version 4")),
    ("storage.s3.encrypt", Ignored(NO_SSE)),
    ("storage.s3.keyid", Ignored(NO_SSE)),
    ("storage.s3.storageclass", Ignored("objects get the bucket's default storage class")),
    ("storage.s3.objectacl", Ignored("objects get the bucket's default ACL")),
    ("storage.s3.multipartcopychunksize", Ignored(S3_COPY)),
    ("storage.s3.multipartcopymaxconcurrency", Ignored(S3_COPY)),
    ("storage.s3.multipartcopythresholdsize", Ignored(S3_COPY)),
    ("storage.s3.useragent", Ignored("Berth sends its own User-Agent")),
    ("storage.s3.usedualstack", Ignored("set regionendpoint to a dual-stack endpoint instead")),
    ("storage.s3.accelerate", Ignored("set regionendpoint to an accelerated endpoint instead")),
    ("storage.s3.loglevel", Ignored("S3 requests are logged through log.level")),
    ("storage.s3.sessiontoken", NotYet("temporary S3 credentials (session tokens)")),
    ("storage.s3.checksumdisabled", Ignored("Berth verifies every blob against its digest")),
    ("storage.s3.checksumalgorithm", Ignored("Berth verifies every blob against its digest")),
    ("storage.azure", NotYet("the azure storage driver")),
    ("storage.gcs", NotYet("the gcs storage driver")),
    ("storage.swift", NotYet("the swift storage driver")),
    ("storage.oss", NotYet("the oss storage driver")),
    ("storage.delete", Section),
    ("storage.delete.enabled", Value(Bool)),
    ("storage.redirect", Section),
    ("storage.redirect.disable", Value(Bool)),
    ("storage.cache", Ignored("")),
    ("storage.cache.blobdescriptor", Ignored(NO_BLOB_CACHE)),
    ("storage.cache.blobdescriptorsize", Ignored(NO_BLOB_CACHE)),
    ("storage.cache.layerinfo", Ignored(NO_BLOB_CACHE)), // deprecated name of blobdescriptor
    ("storage.tag", Ignored("")),
    ("storage.tag.concurrencylimit", Ignored("Berth looks tags up in its metadata database")),
    ("storage.maintenance", Section),
    ("storage.maintenance.uploadpurging", Section),
    ("storage.maintenance.uploadpurging.enabled", Value(Bool)),
    // Read from a parameter map by Distribution: strings only, no integer nanoseconds.
    ("storage.maintenance.uploadpurging.age", Value(Duration { int_ns: false })),
    ("storage.maintenance.uploadpurging.interval", Value(Duration { int_ns: false })),
    ("storage.maintenance.uploadpurging.dryrun", Value(Bool)),
    ("storage.maintenance.readonly", Section),
    ("storage.maintenance.readonly.enabled", Value(Bool)),

    ("auth", Section),
    ("auth.none", IgnoredOpen("")), // Distribution's explicit "no authentication": Berth's behaviour
    ("auth.silly", NotYet("silly authentication")),
    ("auth.token", Section),
    ("auth.token.realm", Value(Str)), // any string, as in Distribution (the seeds use "token-realm")
    ("auth.token.service", Value(Str)),
    ("auth.token.issuer", Value(Str)),
    ("auth.token.rootcertbundle", Value(Str)),
    ("auth.token.jwks", Value(Str)),
    ("auth.token.autoredirect", Value(Bool)),
    ("auth.token.autoredirectpath", Value(Str)),
    ("auth.token.signingalgorithms", Value(StrList)),
    ("auth.htpasswd", Section),
    ("auth.htpasswd.realm", Value(Str)),
    ("auth.htpasswd.path", Value(Str)),

    ("middleware", NotYetIfNonEmpty("registry, repository and storage middleware (cloudfront, redirect, ...)")),

    ("notifications", Section),
    ("notifications.events", Section),
    ("notifications.events.includereferences", Value(Bool)),
    ("notifications.endpoints", Objects),
    ("notifications.endpoints[].name", Value(Str)),
    ("notifications.endpoints[].disabled", Value(Bool)),
    ("notifications.endpoints[].url", Value(AbsoluteUrl)),
    ("notifications.endpoints[].headers", Map(StrList)),
    ("notifications.endpoints[].timeout", Value(Duration { int_ns: true })),
    ("notifications.endpoints[].threshold", Value(UInt)),
    ("notifications.endpoints[].backoff", Value(Duration { int_ns: true })),
    ("notifications.endpoints[].ignoredmediatypes", Value(StrList)),
    ("notifications.endpoints[].ignore", Section),
    ("notifications.endpoints[].ignore.mediatypes", Value(StrList)),
    ("notifications.endpoints[].ignore.actions", Value(StrList)),

    ("redis", IgnoredOpen(NO_REDIS)),

    ("reporting", Ignored("")),
    ("reporting.bugsnag", Ignored(NO_REPORTING)),
    ("reporting.bugsnag.apikey", Ignored("")),
    ("reporting.bugsnag.releasestage", Ignored("")),
    ("reporting.bugsnag.endpoint", Ignored("")),
    ("reporting.newrelic", Ignored(NO_REPORTING)),
    ("reporting.newrelic.licensekey", Ignored("")),
    ("reporting.newrelic.name", Ignored("")),
    ("reporting.newrelic.verbose", Ignored("")),

    ("health", Ignored("")),
    ("health.storagedriver", Ignored(NO_HEALTH)),
    ("health.storagedriver.enabled", Ignored("")),
    ("health.storagedriver.interval", Ignored("")),
    ("health.storagedriver.threshold", Ignored("")),
    ("health.file", Ignored(NO_HEALTH)),
    ("health.file[].file", Ignored("")),
    ("health.file[].interval", Ignored("")),
    ("health.file[].threshold", Ignored("")),
    ("health.http", Ignored(NO_HEALTH)),
    ("health.http[].uri", Ignored("")),
    ("health.http[].headers", IgnoredOpen("")),
    ("health.http[].statuscode", Ignored("")),
    ("health.http[].timeout", Ignored("")),
    ("health.http[].interval", Ignored("")),
    ("health.http[].threshold", Ignored("")),
    ("health.tcp", Ignored(NO_HEALTH)),
    ("health.tcp[].addr", Ignored("")),
    ("health.tcp[].timeout", Ignored("")),
    ("health.tcp[].interval", Ignored("")),
    ("health.tcp[].threshold", Ignored("")),

    ("proxy", NotYetIfNonEmpty("pull-through cache (proxy)")),

    ("compatibility", Ignored("")),
    ("compatibility.schema1", Ignored(NO_SCHEMA1)),
    ("compatibility.schema1.signingkeyfile", Ignored("")),
    ("compatibility.schema1.enabled", Ignored("")),

    ("policy", Ignored("")),
    ("policy.repository", Ignored("")),
    ("policy.repository.classes", Ignored("repository class policy is not enforced by Berth")),

    ("catalog", Section),
    ("catalog.maxentries", Value(PositiveOrDefault)),

    ("validation", Section),
    ("validation.enabled", Value(Bool)), // deprecated in favour of disabled
    ("validation.disabled", Value(Bool)),
    ("validation.manifests", Section),
    ("validation.manifests.urls", Section),
    ("validation.manifests.urls.allow", Value(RegexList)),
    ("validation.manifests.urls.deny", Value(RegexList)),
    ("validation.manifests.indexes", Section),
    ("validation.manifests.indexes.platforms", Value(Platforms)),
    ("validation.manifests.indexes.platformlist", Objects),
    ("validation.manifests.indexes.platformlist[].architecture", Value(Str)),
    ("validation.manifests.indexes.platformlist[].os", Value(Str)),

    ("berth", Section),
    ("berth.database", Section),
    ("berth.database.path", Value(Str)),
    ("berth.database.url", Value(Str)),
    ("berth.database.poolsize", Value(UInt)),
    ("berth.manifests", Section),
    ("berth.manifests.maxbytes", Value(UInt)),
    ("berth.tags", Section),
    ("berth.tags.maxentries", Value(UInt)),
    ("berth.limits", Section),
    ("berth.limits.maxconnections", Value(UInt)),
    ("berth.limits.maxheaderbytes", Value(UInt)),
    ("berth.limits.headertimeout", Value(Duration { int_ns: false })),
    ("berth.limits.maxuploads", Value(UInt)),
    ("berth.limits.uploadidletimeout", Value(Duration { int_ns: false })),
    ("berth.webhooks", Section),
    ("berth.webhooks.enabled", Value(Bool)),
    ("berth.webhooks.allownets", Value(StrList)),
    ("berth.webhooks.timeout", Value(Duration { int_ns: false })),
    ("berth.webhooks.maxattempts", Value(UInt)),
    ("berth.webhooks.backoff", Value(Duration { int_ns: false })),
    ("berth.webhooks.keep", Value(Duration { int_ns: false })),
    ("berth.gc", Section),
    ("berth.gc.schedule", Value(Str)),
    ("berth.gc.grace", Value(Duration { int_ns: false })),
    ("berth.gc.untagged", Value(Str)),
    ("berth.auth", Section),
    ("berth.auth.enabled", Value(Bool)),
    ("berth.auth.service", Value(Str)),
    ("berth.auth.issuer", Value(Str)),
    ("berth.auth.realm", Value(AbsoluteUrl)),
    ("berth.auth.tokenttl", Value(Duration { int_ns: false })),
    ("berth.auth.refreshttl", Value(Duration { int_ns: false })),
    ("berth.auth.signingkey", Value(Str)),
    ("berth.auth.anonymouspull", Value(Bool)),
    ("berth.projects", Section),
    ("berth.projects.autocreate", Value(Bool)),
    ("berth.projects.creation", Value(Str)), // everyone | adminonly (Harbor's project_creation_restriction)
    ("berth.projects.template", Section),
    ("berth.projects.template.public", Value(Bool)),
    ("berth.projects.template.storagelimit", Value(UInt)),
    ("berth.projects.template.immutabletags", Value(StrList)),
    ("berth.projects.template.retention", Value(Str)),
    ("berth.audit", Section),
    ("berth.audit.enabled", Value(Bool)),
    ("berth.audit.retention", Value(Duration { int_ns: false })),
    ("berth.cache", Section),
    ("berth.cache.manifestbytes", Value(UInt)),
    ("berth.ratelimit", Section),
    ("berth.ratelimit.perip", Section),
    ("berth.ratelimit.perip.rate", Value(UInt)),
    ("berth.ratelimit.perip.burst", Value(UInt)),
    ("berth.ratelimit.peruser", Section),
    ("berth.ratelimit.peruser.rate", Value(UInt)),
    ("berth.ratelimit.peruser.burst", Value(UInt)),
    ("berth.metrics", Section),
    ("berth.metrics.token", Value(Str)),
];

/// The kind of the key at `pattern` (`[]` for list elements), if the table knows it.
pub(crate) fn lookup(pattern: &str) -> Option<Kind> {
    KEYS.iter().find(|(p, _)| *p == pattern).map(|(_, kind)| *kind)
}

/// Whether a lower-case key path from an environment variable names a key Berth or
/// Distribution knows. Numeric segments address list elements.
pub(crate) fn is_known_path(segments: &[String]) -> bool {
    let mut pattern = String::new();
    for (i, seg) in segments.iter().enumerate() {
        let parent = (!pattern.is_empty()).then(|| lookup(&pattern)).flatten();
        let is_index = seg.parse::<usize>().is_ok();
        match parent {
            // Below these, anything goes (the subtree is free-form or rejected as a whole).
            Some(Map(_) | IgnoredOpen(_) | NotYet(_) | NotYetIfNonEmpty(_)) => return true,
            Some(Value(check)) => return check.is_list() && is_index && i + 1 == segments.len(),
            _ => {}
        }
        if is_index {
            pattern.push_str("[]");
        } else {
            if !pattern.is_empty() {
                pattern.push('.');
            }
            pattern.push_str(seg);
        }
        if lookup(&pattern).is_none() && !is_index {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn table_has_no_duplicates_and_every_parent_is_listed() {
        for (i, (p, _)) in KEYS.iter().enumerate() {
            assert!(KEYS[i + 1..].iter().all(|(q, _)| q != p), "duplicate {p}");
            let parent = p.rsplit_once('.').map(|(a, _)| a).unwrap_or("");
            let parent = parent.strip_suffix("[]").unwrap_or(parent);
            assert!(parent.is_empty() || lookup(parent).is_some(), "{p} has no parent entry");
        }
    }

    #[test]
    fn every_key_in_distribution_docs_example_is_known() {
        // The "List of configuration options" block of Distribution 3.x configuration.md,
        // plus the 2.8-only sections (reporting, compatibility, swift, oss).
        for p in [
            "log.accesslog.disabled",
            "log.level",
            "log.formatter",
            "log.fields.service",
            "log.hooks",
            "loglevel",
            "storage.filesystem.rootdirectory",
            "storage.filesystem.maxthreads",
            "storage.azure.accountname",
            "storage.gcs.bucket",
            "storage.s3.accesskey",
            "storage.inmemory",
            "storage.tag.concurrencylimit",
            "storage.delete.enabled",
            "storage.redirect.disable",
            "storage.cache.blobdescriptor",
            "storage.cache.blobdescriptorsize",
            "storage.maintenance.uploadpurging.age",
            "storage.maintenance.readonly.enabled",
            "storage.swift.username",
            "storage.oss.bucket",
            "auth.silly.realm",
            "auth.token.jwks",
            "auth.htpasswd.path",
            "middleware.registry",
            "http.addr",
            "http.prefix",
            "http.host",
            "http.secret",
            "http.relativeurls",
            "http.draintimeout",
            "http.tls.certificate",
            "http.debug.addr",
            "http.debug.prometheus.enabled",
            "http.headers.x-content-type-options",
            "http.http2.disabled",
            "http.h2c.enabled",
            "http.net",
            "notifications.events.includereferences",
            "notifications.endpoints",
            "redis.addrs",
            "redis.tls.certificate",
            "redis.pool.maxidle",
            "health.storagedriver.threshold",
            "health.file.0.interval",
            "health.http.0.statuscode",
            "health.tcp.0.addr",
            "proxy.remoteurl",
            "proxy.exec.command",
            "proxy.ttl",
            "validation.manifests.urls.allow",
            "validation.manifests.indexes.platforms",
            "validation.manifests.indexes.platformlist.0.os",
            "validation.disabled",
            "validation.enabled",
            "catalog.maxentries",
            "reporting.bugsnag.apikey",
            "reporting.newrelic.verbose",
            "compatibility.schema1.signingkeyfile",
            "policy.repository.classes",
        ] {
            assert!(is_known_path(&path(p)), "{p} should be known");
        }
    }

    #[test]
    fn unknown_paths() {
        for p in ["port", "http.port", "storage.filesystem.foo", "berth.nope", "log.level.x", "health.file.x"] {
            assert!(!is_known_path(&path(p)), "{p} should be unknown");
        }
    }

    #[test]
    fn list_elements_of_value_lists() {
        assert!(is_known_path(&path("validation.manifests.urls.allow.0")));
        assert!(!is_known_path(&path("validation.manifests.urls.allow.x")));
    }
}
