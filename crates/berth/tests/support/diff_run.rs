//! Runs the differential test's script on one server and reduces each
//! response to an [`Observation`]: the fields the spec lets a client rely
//! on, normalised where the spec leaves the value opaque.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use berth_testkit::http::{request, Response};

use crate::diff_script::{Fixture, Step};
use crate::support::{path_of, sha256, with_query};

/// What one response said, field by field (absent fields are left out).
pub type Observation = BTreeMap<&'static str, String>;

fn observe(st: &Step, r: &Response) -> Observation {
    let mut o = Observation::new();
    o.insert("status", r.status.to_string());
    if let Some(code) = error_code(r) {
        o.insert("code", code);
    }
    let ok = (200..300).contains(&r.status);
    let mut copy = |field: &'static str, value: Option<String>| {
        if let Some(v) = value {
            o.insert(field, v);
        }
    };
    copy("docker-content-digest", r.header("docker-content-digest").map(str::to_owned));
    copy("api-version", r.header("docker-distribution-api-version").map(str::to_owned));
    if ok {
        copy("content-length", r.header("content-length").map(str::to_owned));
        // The type of what was returned: a body, or what a HEAD describes.
        if r.status != 204 && (st.method == "HEAD" || !r.body.is_empty()) {
            copy("content-type", r.header("content-type").map(str::to_owned));
        }
    }
    copy("location", r.header("location").map(normalise_location));
    copy("range", r.header("range").map(str::to_owned));
    copy("content-range", r.header("content-range").map(str::to_owned));
    copy("docker-upload-uuid", r.header("docker-upload-uuid").map(|_| "present".to_owned()));
    copy("link", r.header("link").map(normalise_link));
    if ok && !r.body.is_empty() {
        let json = serde_json::from_slice::<serde_json::Value>(&r.body).ok();
        let listing = json.as_ref().is_some_and(|v| v.get("tags").is_some() || v.get("repositories").is_some());
        let body = match json {
            Some(v) if listing => v.to_string(),
            _ => format!("{} bytes {}", r.body.len(), &sha256(&r.body)[..19]),
        };
        o.insert("body", body);
    }
    o
}

/// `Location` as a path, with the upload id and any query (Distribution's
/// `_state`) elided: both are opaque to clients.
fn normalise_location(l: &str) -> String {
    let path = path_of(l);
    let path = path.split('?').next().unwrap_or_default().to_owned();
    match path.split_once("/blobs/uploads/") {
        Some((repo, id)) if !id.is_empty() => format!("{repo}/blobs/uploads/<id>"),
        _ => path,
    }
}

/// `<URL>; rel="next"` with the URL reduced to its path and query.
fn normalise_link(l: &str) -> String {
    match (l.find('<'), l.find('>')) {
        (Some(a), Some(b)) if a < b => format!("<{}>{}", path_of(&l[a + 1..b]), &l[b + 1..]),
        _ => l.to_owned(),
    }
}

fn substitute(template: &str, vars: &HashMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    assert!(!out.contains('{'), "unresolved variable in {template:?} -> {out:?}");
    out
}

/// Runs the script on one server; one observation per step.
pub fn run(addr: SocketAddr, fx: &Fixture, steps: &[Step]) -> Vec<Observation> {
    let mut vars = fx.vars.clone();
    let mut out = Vec::new();
    for st in steps {
        let mut target = substitute(&st.target, &vars);
        if let Some(q) = &st.query {
            target = with_query(&target, &substitute(q, &vars));
        }
        let headers: Vec<(&str, String)> = st.headers.iter().map(|(k, v)| (*k, substitute(v, &vars))).collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = st.body.map(|b| fx.bodies[b].as_slice()).unwrap_or_default();
        let r = request(addr, st.method, &target, &headers, body)
            .unwrap_or_else(|e| panic!("step {}: {} {target}: {e}", st.id, st.method));
        if let (Some(name), Some(loc)) = (st.save_location, r.header("location")) {
            let path = path_of(loc);
            if let Some(id) = path.split('?').next().and_then(|p| p.rsplit('/').next()) {
                vars.insert(format!("{name}id"), id.to_owned());
            }
            vars.insert(name.to_owned(), path);
        }
        out.push(observe(st, &r));
    }
    out
}

/// The first `errors[].code` of a spec error body, if the body is one.
fn error_code(r: &Response) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v.get("errors")?.get(0)?.get("code")?.as_str().map(str::to_owned)
}
