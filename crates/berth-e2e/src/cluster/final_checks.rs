//! Steps 4 and 5, once every upload ended: the nodes list the same
//! catalog and tags, and the bucket holds the committed blobs only.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{location_path, Cluster, A, B, C, NAMES};
use crate::registry::{self, json};
use crate::{ensure, Result};

/// Every repository of the catalog, walked `n` at a time via `Link`.
fn catalog(addr: SocketAddr, n: Option<usize>) -> Result<Vec<String>> {
    let mut path = match n {
        Some(n) => format!("/v2/_catalog?n={n}"),
        None => "/v2/_catalog".to_owned(),
    };
    let mut repos = Vec::new();
    for _page in 0..100 {
        let r = registry::get(addr, &path, &[])?;
        ensure(r.status == 200, || format!("GET {path} on {addr}: {}", r.describe()))?;
        let v = json(&r.text())?;
        repos.extend(v["repositories"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned));
        // Link: </v2/_catalog?last=x&n=1>; rel="next"
        match r.header("link").and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_owned())) {
            Some(next) => path = location_path(&next),
            None => return Ok(repos),
        }
    }
    Err(format!("catalog on {addr}: more than 100 pages"))
}

/// Step 4.
pub(super) fn listings_agree(cluster: &Cluster) -> Result<()> {
    let reference = catalog(cluster.addr(A), None)?;
    ensure(reference.iter().any(|r| r == "cluster/app"), || format!("catalog on A lacks cluster/app: {reference:?}"))?;
    for i in [A, B, C] {
        let whole = catalog(cluster.addr(i), None)?;
        let paged = catalog(cluster.addr(i), Some(1))?;
        ensure(whole == reference && paged == reference, || {
            format!("catalog: A {reference:?}; node {} {whole:?}, paginated by 1 {paged:?}", NAMES[i])
        })?;
    }
    for repo in &reference {
        let tags = registry::tags(cluster.addr(A), repo)?;
        for i in [B, C] {
            let other = registry::tags(cluster.addr(i), repo)?;
            ensure(other == tags, || format!("tags of {repo}: A {tags:?}, node {} {other:?}", NAMES[i]))?;
        }
    }
    let app = registry::tags(cluster.addr(B), "cluster/app")?;
    ensure(app == ["v1"], || format!("tags of cluster/app: {app:?}"))?;
    eprintln!("cluster: catalog on every node: {reference:?}");
    Ok(())
}

/// After every upload ended: no staging object (tail objects, `startedat`)
/// and no multipart upload (such as the one the killed node started) is
/// left in the bucket, only the committed blobs (manifests live in
/// PostgreSQL). Garage's object
/// counter may lag a write briefly, hence the short poll.
pub(super) fn bucket_holds_only_blobs(cluster: &Cluster, blobs: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = cluster.garage.cli(&["bucket", "info", cluster.garage.bucket()])?;
        let objects = info.lines().find_map(|l| l.trim().strip_prefix("Objects:")).map(str::trim);
        let objects = objects.and_then(|n| n.parse::<usize>().ok());
        // "Unfinished uploads:  1 multipart uploads" (absent when none): the
        // multipart upload the killed node started must have been aborted.
        let unfinished = info
            .lines()
            .find_map(|l| l.trim().strip_prefix("Unfinished uploads:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<usize>().ok())
            .unwrap_or(0);
        if objects == Some(blobs) && unfinished == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the bucket should hold the {blobs} committed blobs only; `garage bucket info`:\n{info}"
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}
