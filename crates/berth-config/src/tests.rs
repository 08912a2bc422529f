//! End-to-end tests of `load`: expected values come from Distribution's configuration docs.

use super::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const REGISTRY2_IMAGE: &str = include_str!("../fixtures/registry2-image.yml");
/// Debian's docker-registry 2.8.2 /etc/docker/registry/config.yml, unmodified.
const DEBIAN_STOCK: &str = include_str!("../fixtures/debian-docker-registry-2.8.2.yml");
/// The same without its `auth.htpasswd` section.
const DEBIAN_NOAUTH: &str = include_str!("../fixtures/debian-docker-registry-noauth.yml");

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn ok(yaml: &str, vars: &[(&str, &str)]) -> Loaded {
    load_from_str(yaml, env(vars)).unwrap_or_else(|e| panic!("should load: {e}"))
}

fn problems(yaml: &str, vars: &[(&str, &str)]) -> Vec<Problem> {
    match load_from_str(yaml, env(vars)) {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

const MINIMAL: &str = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n";

#[test]
fn defaults_without_a_file_are_registry2s() {
    let loaded = load(None, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    let c = &loaded.config;
    assert!(loaded.warnings.is_empty());
    assert_eq!(c.http.socket_addr().ok(), Some("0.0.0.0:5000".parse::<SocketAddr>().unwrap_or_else(|e| panic!("{e}"))));
    assert_eq!(c.storage.filesystem.rootdirectory, PathBuf::from("/var/lib/registry"));
    // configuration.md: delete "defaults to false"; uploadpurging enabled true, age 168h,
    // interval 24h, dryrun false; readonly off; log level info, formatter text;
    // catalog maxentries 1000; index platforms "all".
    assert!(!c.storage.delete.enabled);
    assert!(c.storage.maintenance.uploadpurging.enabled);
    assert_eq!(c.storage.maintenance.uploadpurging.age, Duration::from_secs(168 * 3600));
    assert_eq!(c.storage.maintenance.uploadpurging.interval, Duration::from_secs(24 * 3600));
    assert!(!c.storage.maintenance.uploadpurging.dryrun);
    assert!(!c.storage.maintenance.readonly.enabled);
    assert_eq!(c.log.level, LogLevel::Info);
    assert_eq!(c.log.formatter, LogFormatter::Text);
    assert_eq!(c.catalog.maxentries, 1000);
    assert_eq!(c.validation.manifests.indexes.platforms, Platforms::All);
    assert!(c.validation.is_active());
    assert_eq!(c.berth.manifests.maxbytes, 4 * 1024 * 1024);
    assert_eq!(c.berth.tags.maxentries, 1000);
    assert_eq!(c.berth.cache.manifestbytes, 64 * 1024 * 1024);
    assert_eq!(c.database_path(), PathBuf::from("/var/lib/registry/berth/metadata.sqlite"));
    assert_eq!(c, &Config::default());
}

#[test]
fn env_overrides_each_form() {
    let loaded = ok(
        "version: 0.1\nlog: {level: info}\nstorage:\n  filesystem: {rootdirectory: /data}\nhttp: {addr: ':5000'}\n",
        &[
            ("REGISTRY_HTTP_ADDR", "127.0.0.1:0"),
            ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/somewhere"),
            ("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
            ("REGISTRY_LOG_LEVEL", "debug"),
            ("REGISTRY_LOG_FIELDS_SERVICE", "registry"),
            ("REGISTRY_HTTP_HEADERS_X-CONTENT-TYPE-OPTIONS", "[nosniff]"),
            ("REGISTRY_HTTP_DRAINTIMEOUT", "60s"),
            ("REGISTRY_CATALOG_MAXENTRIES", "50"),
            ("REGISTRY_VALIDATION_MANIFESTS_URLS_ALLOW", "['^https?://([^/]+\\.)*example\\.com/']"),
            ("REGISTRY_VALIDATION_MANIFESTS_INDEXES_PLATFORMS", "none"),
            ("REGISTRY_BERTH_DATABASE_PATH", "/db/berth.sqlite"),
            ("REGISTRY_BERTH_TAGS_MAXENTRIES", "200"),
        ],
    );
    let c = &loaded.config;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(c.http.socket_addr().ok(), "127.0.0.1:0".parse().ok());
    assert_eq!(c.storage.filesystem.rootdirectory, PathBuf::from("/somewhere"));
    assert!(c.storage.delete.enabled);
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.log.fields.get("service").map(String::as_str), Some("registry"));
    assert_eq!(c.http.headers.get("x-content-type-options"), Some(&vec!["nosniff".to_owned()]));
    assert_eq!(c.http.draintimeout, Duration::from_secs(60));
    assert_eq!(c.catalog.maxentries, 50);
    assert_eq!(c.validation.manifests.urls.allow.len(), 1);
    assert_eq!(c.validation.manifests.indexes.platforms, Platforms::None);
    assert_eq!(c.database_path(), PathBuf::from("/db/berth.sqlite"));
    assert_eq!(c.berth.tags.maxentries, 200);
}

#[test]
fn env_applies_without_a_file() {
    let loaded = load(None, env(&[("REGISTRY_STORAGE_DELETE_ENABLED", "true")])).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.config.storage.delete.enabled);
}

#[test]
fn registry_storage_selects_the_driver_and_replaces_the_section() {
    let loaded = ok(MINIMAL, &[("REGISTRY_STORAGE", "s3"), ("REGISTRY_STORAGE_S3_ACCESSKEY", "AK")]);
    let s3 = loaded.config.storage.s3.as_ref().expect("s3 selected");
    assert_eq!(s3.accesskey.as_ref().map(|k| k.expose()), Some("AK"));
    assert_eq!(s3.chunksize, 10 << 20, "Distribution's default part size");
    let p = problems(MINIMAL, &[("REGISTRY_STORAGE", "gcs")]);
    assert_eq!((p[0].key.as_str(), p[0].kind), ("storage.gcs", ProblemKind::NotYetSupported));
    assert!(p[0].message.contains("REGISTRY_STORAGE"), "{}", p[0].message);

    // REGISTRY_STORAGE=filesystem drops the file's storage section, as Distribution does.
    let file = "version: 0.1\nstorage:\n  filesystem: {rootdirectory: /data}\n  delete: {enabled: true}\n";
    let loaded = ok(file, &[("REGISTRY_STORAGE", "filesystem")]);
    assert_eq!(loaded.config.storage.filesystem.rootdirectory, PathBuf::from("/var/lib/registry"));
    assert!(!loaded.config.storage.delete.enabled);
    assert!(loaded.warnings.iter().any(|w| w.contains("REGISTRY_STORAGE replaces")), "{:?}", loaded.warnings);
}

#[test]
fn storage_short_form_in_file() {
    let p = problems("version: 0.1\nstorage: inmemory\n", &[]);
    assert_eq!((p[0].key.as_str(), p[0].kind), ("storage.inmemory", ProblemKind::NotYetSupported));
}

#[test]
fn unrelated_registry_variables_warn_only() {
    let loaded =
        ok(MINIMAL, &[("REGISTRY_PORT", "tcp://172.17.0.5:5000"), ("REGISTRY_PORT_5000_TCP_ADDR", "172.17.0.5")]);
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("REGISTRY_PORT"));
}

#[test]
fn unknown_keys_are_errors_naming_the_full_path() {
    let yaml = "version: 0.1\nstorage:\n  filesystem: {rootdirectory: /data, rootdir: /x}\nhttp: {port: 5000}\n\
                validation:\n  manifests:\n    indexes:\n      platforms: list\n      platformlist:\n        - {os: linux, architecture: amd64, variant: v8}\n\
                berth: {database: {file: x}}\nlisten: 1\n";
    let keys: Vec<String> = problems(yaml, &[]).into_iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        [
            "storage.filesystem.rootdir",
            "http.port",
            "validation.manifests.indexes.platformlist[0].variant",
            "berth.database.file",
            "listen",
        ]
    );
}

#[test]
fn not_yet_supported_keys_are_errors_naming_the_key() {
    let yaml = "version: 0.1\nstorage: {filesystem: {}}\nauth:\n  silly: {realm: r, service: s}\n\
                http:\n  net: unix\n  tls: {letsencrypt: {cachefile: /c, email: a@b.c}}\nproxy: {remoteurl: https://registry-1.docker.io}\n\
                middleware:\n  storage:\n    - name: cloudfront\n";
    let p = problems(yaml, &[]);
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["auth.silly", "http.net", "http.tls.letsencrypt", "proxy", "middleware"]);
    assert!(p.iter().all(|p| p.kind == ProblemKind::NotYetSupported));
    assert!(p[0].to_string().contains("not supported yet"), "{}", p[0]);
}

#[test]
fn empty_not_yet_sections_are_accepted() {
    ok("version: 0.1\nstorage: {filesystem: {}}\nnotifications:\n  events: {includereferences: true}\n  endpoints: []\nmiddleware: {}\n", &[]);
}

#[test]
fn ignored_keys_warn_by_name() {
    let yaml = "version: 0.1\nstorage:\n  filesystem: {rootdirectory: /d, maxthreads: 100}\n  cache: {blobdescriptor: redis}\n\
                redis: {addr: 'localhost:6379', password: p, pool: {maxidle: 16}}\n\
                reporting: {bugsnag: {apikey: k}}\ncompatibility: {schema1: {enabled: true}}\nlog: {hooks: [{type: mail}]}\n";
    let warnings = ok(yaml, &[]).warnings;
    let named: Vec<&str> = warnings.iter().filter_map(|w| w.split(' ').next()).collect();
    assert_eq!(
        named,
        [
            "storage.filesystem.maxthreads",
            "storage.cache.blobdescriptor",
            "redis",
            "reporting.bugsnag",
            "compatibility.schema1",
            "log.hooks",
        ]
    );
}

#[test]
fn registry2_image_config_loads_with_warnings_only() {
    let loaded = ok(REGISTRY2_IMAGE, &[]);
    let c = &loaded.config;
    assert_eq!(c.storage.filesystem.rootdirectory, PathBuf::from("/var/lib/registry"));
    assert_eq!(c.http.socket_addr().ok(), "0.0.0.0:5000".parse().ok());
    assert_eq!(c.http.headers.get("X-Content-Type-Options"), Some(&vec!["nosniff".to_owned()]));
    assert_eq!(c.log.fields.get("service").map(String::as_str), Some("registry"));
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].starts_with("storage.cache.blobdescriptor "));
    assert!(loaded.warnings[1].starts_with("health.storagedriver "));
}

#[test]
fn debian_stock_config_loads_with_htpasswd() {
    let loaded = ok(DEBIAN_STOCK, &[]);
    let h = loaded.config.auth.htpasswd.as_ref().expect("htpasswd configured");
    assert_eq!((h.realm.as_str(), h.path.as_path()), ("basic-realm", Path::new("/etc/docker/registry")));
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
}

#[test]
fn debian_config_without_auth_loads_with_warnings_only() {
    let loaded = ok(DEBIAN_NOAUTH, &[]);
    assert_eq!(loaded.config.storage.filesystem.rootdirectory, PathBuf::from("/var/lib/docker-registry"));
    assert!(loaded.config.storage.delete.enabled);
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
}

#[test]
fn masked_yaml_hides_the_secret() {
    let loaded = ok("version: 0.1\nstorage: {filesystem: {}}\nhttp: {secret: asecretforlocaldevelopment}\n", &[]);
    assert_eq!(loaded.config.http.secret.as_ref().map(Secret::expose), Some("asecretforlocaldevelopment"));
    assert!(!format!("{:?}", loaded.config).contains("asecretforlocaldevelopment"));
    let yaml = loaded.config.to_masked_yaml();
    assert!(!yaml.contains("asecretforlocaldevelopment"), "{yaml}");
    assert!(yaml.contains("secret: '********'"), "{yaml}");
    assert!(yaml.contains("/var/lib/registry/berth/metadata.sqlite"), "{yaml}");
    assert!(yaml.contains("age: 168h"), "{yaml}");
}

#[test]
fn masked_yaml_round_trips_through_load() {
    let loaded = ok(REGISTRY2_IMAGE, &[]);
    let again = ok(&loaded.config.to_masked_yaml(), &[]);
    let mut expected = loaded.config.clone();
    expected.berth.database.path = Some(loaded.config.database_path());
    assert_eq!(again.config, expected);
}

#[test]
fn colon_port_and_other_addresses() {
    let addr = |a: &str| Http { addr: a.into(), ..Http::default() }.socket_addr().ok();
    assert_eq!(addr(":5000"), "0.0.0.0:5000".parse().ok());
    assert_eq!(addr("127.0.0.1:0"), "127.0.0.1:0".parse().ok());
    assert_eq!(addr("[::1]:5000"), "[::1]:5000".parse().ok());
    assert!(addr("localhost:5000").is_some_and(|a| a.ip().is_loopback() && a.port() == 5000));
    assert!(addr("5000").is_none());
}

#[test]
fn the_debug_listener_is_off_by_default_and_keeps_distributions_keys() {
    let loaded = ok(MINIMAL, &[]);
    assert_eq!(loaded.config.http.debug.socket_addr().ok(), Some(None));
    assert!(!loaded.config.http.debug.prometheus.enabled);
    assert_eq!(loaded.config.http.debug.prometheus.path, "/metrics", "Distribution's default");
    let yaml = "version: 0.1\nstorage: {filesystem: {}}\nhttp: {debug: {addr: ':5001', prometheus: {enabled: true}}}\n";
    let loaded = ok(yaml, &[]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.http.debug.socket_addr().ok(), Some("0.0.0.0:5001".parse().ok()));
    assert!(loaded.config.http.debug.prometheus.enabled);
    let loaded = ok(MINIMAL, &[("REGISTRY_HTTP_DEBUG_PROMETHEUS_PATH", "/prom")]);
    assert_eq!(loaded.config.http.debug.prometheus.path, "/prom");
    assert!(!problems("version: 0.1\nhttp: {debug: {addr: '5001'}}\n", &[]).is_empty(), "a port alone is no address");
}

#[test]
fn all_problems_are_collected_in_one_error() {
    let yaml = "storage:\n  filesystem: {rootdirectory: /d}\n  s3: {bucket: b}\nhttp: {addr: localhost, bogus: 1}\n\
                log: {level: loud}\nstorage2: {}\n";
    let err = load_from_str(yaml, env(&[("REGISTRY_STORAGE_DELETE_ENABLED", "perhaps")]))
        .err()
        .unwrap_or_else(|| panic!("should fail"));
    let ConfigError::Invalid(p) = &err else { panic!("{err}") };
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["version", "storage.delete.enabled", "http.addr", "http.bogus", "log.level", "storage2", "storage"]
    );
    let text = err.to_string();
    for key in keys {
        assert!(text.contains(&format!("\n  - {key}: ")), "{key} missing from {text}");
    }
    assert!(text.contains("(from REGISTRY_STORAGE_DELETE_ENABLED)"), "{text}");
}

#[test]
fn version_is_required_with_a_file_and_must_be_0_1() {
    let p = problems("storage: {filesystem: {}}\n", &[]);
    assert_eq!((p[0].key.as_str(), p[0].kind), ("version", ProblemKind::Missing));
    let p = problems("version: 0.2\nstorage: {filesystem: {}}\n", &[]);
    assert_eq!((p[0].key.as_str(), p[0].kind), ("version", ProblemKind::InvalidValue));
}

#[test]
fn deprecated_loglevel_is_used_when_log_level_is_absent() {
    let loaded = ok("version: 0.1\nloglevel: debug\nstorage: {filesystem: {}}\n", &[]);
    assert_eq!(loaded.config.log.level, LogLevel::Debug);
    assert!(loaded.warnings.iter().any(|w| w.contains("deprecated")));
    let loaded = ok("version: 0.1\nloglevel: debug\nlog: {level: error}\nstorage: {filesystem: {}}\n", &[]);
    assert_eq!(loaded.config.log.level, LogLevel::Error);
}

#[test]
fn durations_follow_distribution_field_types() {
    // http.draintimeout is a Go time.Duration: an integer is nanoseconds.
    let loaded = ok("version: 0.1\nstorage: {filesystem: {}}\nhttp: {draintimeout: 1500000000}\n", &[]);
    assert_eq!(loaded.config.http.draintimeout, Duration::from_millis(1500));
    // uploadpurging.age is read from a parameter map as a string: integers are refused.
    let p = problems("version: 0.1\nstorage:\n  filesystem: {}\n  maintenance: {uploadpurging: {age: 100}}\n", &[]);
    assert_eq!(p[0].key, "storage.maintenance.uploadpurging.age");
    let loaded = ok(
        "version: 0.1\nstorage:\n  filesystem: {}\n  maintenance: {uploadpurging: {age: 2h10m, enabled: no}}\n",
        &[],
    );
    assert_eq!(loaded.config.storage.maintenance.uploadpurging.age, Duration::from_secs(7800));
    assert!(!loaded.config.storage.maintenance.uploadpurging.enabled);
}

#[test]
fn storage_needs_exactly_one_driver() {
    let p = problems("version: 0.1\nstorage: {delete: {enabled: true}}\n", &[]);
    assert_eq!((p[0].key.as_str(), p[0].kind), ("storage", ProblemKind::Missing));
    let p = problems("version: 0.1\nstorage: {filesystem: {}, gcs: {bucket: b}}\n", &[]);
    assert!(p.iter().any(|p| p.key == "storage" && p.message.contains("exactly one")), "{p:?}");
}

#[test]
fn catalog_maxentries_zero_means_default() {
    let loaded = ok("version: 0.1\nstorage: {filesystem: {}}\ncatalog: {maxentries: 0}\n", &[]);
    assert_eq!(loaded.config.catalog.maxentries, 1000);
}

#[test]
fn platform_list_and_bad_regex() {
    let loaded = ok(
        "version: 0.1\nstorage: {filesystem: {}}\nvalidation:\n  manifests:\n    indexes:\n      platforms: List\n      platformlist: [{architecture: amd64, os: linux}]\n",
        &[],
    );
    let idx = &loaded.config.validation.manifests.indexes;
    assert_eq!(idx.platforms, Platforms::List);
    assert_eq!(idx.platformlist, [Platform { architecture: "amd64".into(), os: "linux".into() }]);
    let p = problems("version: 0.1\nstorage: {filesystem: {}}\nvalidation: {manifests: {urls: {deny: ['(']}}}\n", &[]);
    assert_eq!(p[0].key, "validation.manifests.urls.deny");
}

#[test]
fn syntax_errors_name_the_origin() {
    let err = load_from_str("version: [0.1\n", Vec::new()).err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.starts_with("configuration is not valid YAML")));
}

#[test]
fn env_values_that_are_not_yaml_are_plain_strings() {
    let loaded = ok(MINIMAL, &[("REGISTRY_BERTH_GC_SCHEDULE", "@daily"), ("REGISTRY_BERTH_GC_GRACE", "30m")]);
    assert_eq!(loaded.config.berth.gc.schedule.as_deref(), Some("@daily"));
    assert_eq!(loaded.config.berth.gc.grace, Duration::from_secs(1800));
    // A string where a boolean belongs is still refused, naming the key.
    let p = problems(MINIMAL, &[("REGISTRY_STORAGE_DELETE_ENABLED", "@yes")]);
    assert_eq!(p[0].key, "storage.delete.enabled");
}

#[test]
fn http_tls_from_file_and_seed_style_env() {
    let yaml = "version: 0.1\nstorage: {filesystem: {}}\nhttp:\n  tls:\n    clientcas: [/ca1.pem, /ca2.pem]\n    \
                clientauth: verify-client-cert-if-given\n    minimumtls: tls1.3\n    \
                ciphersuites: [TLS_AES_128_GCM_SHA256]\n";
    let vars = [("REGISTRY_HTTP_TLS_CERTIFICATE", "/certs/domain.crt"), ("REGISTRY_HTTP_TLS_KEY", "/certs/domain.key")];
    let tls = ok(yaml, &vars).config.http.tls;
    assert_eq!(tls.certificate, Some(PathBuf::from("/certs/domain.crt")));
    assert_eq!(tls.key, Some(PathBuf::from("/certs/domain.key")));
    assert_eq!(tls.clientcas, [PathBuf::from("/ca1.pem"), PathBuf::from("/ca2.pem")]);
    assert_eq!(tls.clientauth, ClientAuth::VerifyClientCertIfGiven);
    assert_eq!(tls.minimumtls, MinimumTls::Tls13);
    assert_eq!(tls.ciphersuites, ["TLS_AES_128_GCM_SHA256"]);
    // configuration.md: clientauth defaults to require-and-verify-client-cert, minimumtls to tls1.2.
    let defaults = ok(MINIMAL, &vars[..1]).config.http.tls;
    assert_eq!((defaults.clientauth, defaults.minimumtls), (ClientAuth::RequireAndVerifyClientCert, MinimumTls::Tls12));
    assert_eq!(ok(MINIMAL, &[]).config.http.tls, Tls::default());
}

#[test]
fn http_tls_errors_name_the_key() {
    let p = problems(MINIMAL, &[("REGISTRY_HTTP_TLS_MINIMUMTLS", "tls1.0")]);
    assert_eq!(p[0].key, "http.tls.minimumtls");
    assert!(p[0].message.contains("tls1.2") && p[0].message.contains("REGISTRY_HTTP_TLS_MINIMUMTLS"), "{}", p[0]);
    let p = problems(MINIMAL, &[("REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE", "/le")]);
    assert_eq!((p[0].key.as_str(), p[0].kind), ("http.tls.letsencrypt", ProblemKind::NotYetSupported));
    let p = problems(MINIMAL, &[("REGISTRY_HTTP_TLS_CLIENTAUTH", "optional")]);
    assert_eq!(p[0].key, "http.tls.clientauth");
}

#[test]
fn token_auth_as_in_distribution_docs() {
    let yaml = concat!(
        "version: 0.1\nstorage: {filesystem: {}}\nauth:\n  token:\n    realm: https://auth.example.com/token\n",
        "    service: registry.example.com\n    issuer: auth-server\n    rootcertbundle: /certs/bundle.pem\n"
    );
    let t = ok(yaml, &[]).config.auth.token.expect("token configured");
    assert_eq!(t.realm, "https://auth.example.com/token");
    assert_eq!((t.service.as_str(), t.issuer.as_str()), ("registry.example.com", "auth-server"));
    assert_eq!(t.rootcertbundle, Some(PathBuf::from("/certs/bundle.pem")));
    let vars = [("REGISTRY_AUTH_TOKEN_JWKS", "/certs/jwks.json")];
    assert_eq!(ok(yaml, &vars).config.auth.token.unwrap().jwks, Some(PathBuf::from("/certs/jwks.json")));
}

#[test]
fn token_auth_needs_its_keys_and_one_provider() {
    let p = problems("version: 0.1\nstorage: {filesystem: {}}\nauth:\n  token: {realm: https://a/t}\n", &[]);
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["auth.token.service", "auth.token.issuer", "auth.token.rootcertbundle"], "{p:?}");
    let both = "version: 0.1\nstorage: {filesystem: {}}\nauth:\n  htpasswd: {realm: r, path: /p}\n";
    let p = problems(both, &[("REGISTRY_BERTH_AUTH_ENABLED", "true")]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "berth.auth.enabled");
    assert!(p[0].message.contains("auth.htpasswd and berth.auth.enabled"), "{}", p[0]);
    assert!(p[0].message.contains("REGISTRY_BERTH_AUTH_ENABLED"), "{}", p[0]);
}

#[test]
fn berth_auth_defaults() {
    let a = ok(MINIMAL, &[("REGISTRY_BERTH_AUTH_ENABLED", "true")]).config.berth.auth;
    assert!(a.enabled && !a.anonymouspull);
    assert_eq!((a.service.as_str(), a.issuer.as_str(), a.realm), ("berth", "berth", None));
    assert_eq!((a.tokenttl, a.refreshttl), (Duration::from_secs(300), Duration::from_secs(30 * 86400)));
}

#[test]
fn seed_token_auth_config_loads() {
    // From the user's seed article on hardening (auth/config.yml), with its whitespace restored.
    let yaml = concat!(
        "version: 0.1\nstorage: {filesystem: {}}\nhttp:\n  addr: :5001\n  secret: aesecrect\nauth:\n  token:\n",
        "    realm: token-realm\n    service: token-service\n    issuer: registry-token\n",
        "    rootcertbundle: /root/certs/bundle.pem\n"
    );
    let t = ok(yaml, &[]).config.auth.token.expect("token configured");
    assert_eq!(
        (t.realm.as_str(), t.service.as_str(), t.issuer.as_str()),
        ("token-realm", "token-service", "registry-token")
    );
}
