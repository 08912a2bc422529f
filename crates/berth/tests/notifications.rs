//! Distribution's `notifications.endpoints` against the real binary: a
//! local listener receives the envelope Distribution documents
//! (`docs/content/about/notifications.md`, `notifications/event.go`) for
//! pushes, pulls, mounts and deletes, with the configured headers, in
//! order, retried until it accepts; ignored media types and actions are
//! not sent.

mod common;

use common::receiver::{Received, Receiver};
use common::{header, options, Reg, OCI_MANIFEST};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

const ENVELOPE: &str = "application/vnd.docker.distribution.events.v1+json";

fn config(dir: &std::path::Path, all: &Receiver, filtered: &Receiver) -> std::path::PathBuf {
    let yaml = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n\
         notifications:\n  events:\n    includereferences: true\n  endpoints:\n\
         \x20   - name: everything\n      url: {all}\n      headers:\n        Authorization: [Bearer t0k3n]\n      timeout: 2s\n      threshold: 2\n      backoff: 300ms\n\
         \x20   - name: manifests-only\n      url: {filtered}\n      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        actions: [pull]\n\
         \x20   - name: switched-off\n      disabled: true\n      url: {filtered}\n",
        root = dir.join("data").display(),
        all = all.url("/events"),
        filtered = filtered.url("/filtered"),
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The single event of each accepted envelope, in order.
fn accepted(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .filter(|r| r.answered == 200)
        .map(|r| {
            let mut v = r.json();
            let events = v["events"].as_array_mut().expect("events");
            assert_eq!(events.len(), 1, "one event per envelope, as Distribution sends");
            events.remove(0)
        })
        .collect()
}

fn summary(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let t = &e["target"];
            format!(
                "{} {} {}",
                e["action"].as_str().unwrap(),
                t["repository"].as_str().unwrap(),
                t["mediaType"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[test]
fn endpoints_receive_distributions_envelopes_retried_and_filtered() {
    let all = Receiver::start(3);
    let filtered = Receiver::start(0);
    let dir = tempfile::tempdir().unwrap();
    let reg = Reg::start_with(options().delete_enabled(true).config_file(config(dir.path(), &all, &filtered)));

    // Push: two blobs (layer, config) then the manifest by tag.
    let image = reg.push_image("team/app", "v1");
    // Pull the manifest by tag, then the layer; HEAD of a blob is not a pull.
    let resp = reg.req(Method::GET, "/v2/team/app/manifests/v1").header("accept", OCI_MANIFEST).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(reg.head(&format!("/v2/team/app/blobs/{}", image.layer_digest)).status(), 200);
    assert_eq!(reg.get(&format!("/v2/team/app/blobs/{}", image.layer_digest)).status(), 200);
    // Mount the layer into another repository, delete the manifest.
    let mount = format!("/v2/other/app/blobs/uploads/?mount={}&from=team/app", image.layer_digest);
    assert_eq!(reg.req(Method::POST, &mount).send().unwrap().status(), 201);
    let del = reg.delete(&format!("/v2/team/app/manifests/{}", image.digest));
    assert_eq!(del.status(), 202, "{}", header(&del, "content-type"));

    let want = 7;
    let got = all.wait_for(Duration::from_secs(30), |r| r.iter().filter(|x| x.answered == 200).count() >= want);
    // The first event was refused three times (threshold 2, so with a
    // backoff) and sent again, the same event each time.
    assert_eq!(got.iter().take(4).map(|r| r.answered).collect::<Vec<_>>(), [503, 503, 503, 200]);
    let first_ids: Vec<Value> = got.iter().take(4).map(|r| r.json()["events"][0]["id"].clone()).collect();
    assert!(first_ids.iter().all(|id| *id == first_ids[0]), "{first_ids:?}");
    for r in &got {
        assert_eq!(r.path, "/events");
        assert_eq!(r.headers["content-type"], ENVELOPE);
        assert_eq!(r.headers["authorization"], "Bearer t0k3n");
    }
    let events = accepted(&got);
    assert_eq!(
        summary(&events),
        [
            "push team/app application/octet-stream",
            "push team/app application/octet-stream",
            &format!("push team/app {OCI_MANIFEST}"),
            &format!("pull team/app {OCI_MANIFEST}"),
            "pull team/app application/octet-stream",
            "mount other/app application/octet-stream",
            "delete team/app -",
        ]
    );
    let base = format!("http://{}", reg.server.addr());
    let push = &events[2];
    let t = &push["target"];
    assert_eq!(t["digest"], image.digest.as_str());
    assert_eq!(t["size"], image.manifest.len());
    assert_eq!(t["length"], image.manifest.len());
    assert_eq!(t["tag"], "v1");
    assert_eq!(t["url"], format!("{base}/v2/team/app/manifests/{}", image.digest));
    assert_eq!(t["references"][1]["digest"], image.layer_digest.as_str(), "includereferences: config, then layers");
    assert_eq!(push["request"]["method"], "PUT");
    assert!(push["request"]["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(push["source"]["instanceID"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(push["source"]["addr"].as_str().unwrap().ends_with(&format!(":{}", reg.server.addr().port())));
    assert_eq!(push["actor"], serde_json::json!({}), "no authentication: no actor name");
    let layer_pull = &events[4]["target"];
    assert_eq!(layer_pull["digest"], image.layer_digest.as_str());
    assert_eq!(layer_pull["size"], image.layer.len());
    assert_eq!(layer_pull["url"], format!("{base}/v2/team/app/blobs/{}", image.layer_digest));
    assert_eq!(events[5]["target"]["fromRepository"], "team/app");
    let deleted = &events[6]["target"];
    assert_eq!(deleted["digest"], image.digest.as_str());
    assert!(deleted.get("url").is_none() && deleted.get("size").is_none());
    let ids: std::collections::HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "every event has its own id");

    // The filtered endpoint: no blob events (ignoredmediatypes), no pulls (ignore.actions).
    let got = filtered.wait_for(Duration::from_secs(10), |r| r.len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        summary(&accepted(&filtered.all())),
        [format!("push team/app {OCI_MANIFEST}"), "delete team/app -".into()]
    );
    assert!(got.iter().all(|r| !r.headers.contains_key("authorization")), "headers are per endpoint");
    // The disabled endpoint shares the filtered listener's address: nothing more came.
    assert_eq!(filtered.all().len(), 2);
}
