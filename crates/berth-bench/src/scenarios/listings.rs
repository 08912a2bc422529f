//! Scale listings: a full paginated `tags/list` walk of a repository with
//! many tags and a full `_catalog` walk of many repositories. Both are seeded
//! through the HTTP API with many concurrent clients; seeding is measured too.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::Method;
use serde_json::json;

use super::{run_workers, Ctx};
use crate::http::{next_link, Conn};
use crate::registry::{manifest, mount, push_blob, put_manifest, Blob, Upload};
use crate::report::Row;
use crate::servers::Server;
use crate::stats::{mean, Phase};

const PAGE: usize = 1000;
const WALKS: usize = 3;

/// Follows `Link: rel="next"` from `first` to the end; returns the entries
/// of `field` and the number of pages.
async fn walk(conn: &mut Conn, first: &str, field: &str) -> Result<(Vec<String>, usize)> {
    let (mut all, mut pages, mut next) = (Vec::new(), 0, Some(first.to_owned()));
    while let Some(path) = next {
        let resp = conn.request(Method::GET, &path, &[], Bytes::new()).await?.expect(200, "listing page")?;
        let doc: serde_json::Value = serde_json::from_slice(&resp.body).context("listing JSON")?;
        all.extend(doc[field].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)));
        pages += 1;
        next = next_link(&resp);
    }
    Ok((all, pages))
}

/// Seeds `count` items with `clients` workers running `one(conn, i)`.
async fn seed<F, Fut>(server: &Server, count: usize, clients: usize, one: F) -> Result<f64>
where
    F: Fn(Conn, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Conn>> + Send + 'static,
{
    let addr = server.addr;
    let phase = Phase::start(server.pid);
    run_workers(clients, |w| {
        let one = one.clone();
        async move {
            let mut conn = Conn::new(addr);
            for i in (w..count).step_by(clients) {
                conn = one(conn, i).await?;
            }
            Ok(())
        }
    })
    .await?;
    Ok(phase.end().secs)
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let (tags, repos, clients) = (ctx.sizes.tags, ctx.sizes.catalog_repos, ctx.sizes.seed_clients);
    // One blob serves as config and layer: each seeded repository costs one
    // mount and one manifest PUT.
    let blob = Blob::config(&mut ctx.rng);
    let image = manifest((&blob.digest, blob.len()), &[(&blob.digest, blob.len())]);
    let mut seed_secs = [[0.0; 2]; 2];
    let mut walk_ms = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    let mut pages = [[0; 2]; 2];
    for (i, server) in ctx.registries().into_iter().enumerate() {
        let mut conn = Conn::new(server.addr);
        push_blob(&mut conn, "list/tags", &blob, Upload::Monolithic).await?;
        push_blob(&mut conn, "list/src", &blob, Upload::Monolithic).await?;
        let img = image.clone();
        seed_secs[0][i] = seed(server, tags, clients, move |mut c, n| {
            let img = img.clone();
            async move {
                put_manifest(&mut c, "list/tags", &format!("t{n:06}"), &img).await?;
                Ok(c)
            }
        })
        .await?;
        let (img, digest) = (image.clone(), blob.digest.clone());
        seed_secs[1][i] = seed(server, repos, clients, move |mut c, n| {
            let (img, digest) = (img.clone(), digest.clone());
            async move {
                let repo = format!("cat/r{n:07}");
                mount(&mut c, &repo, "list/src", &digest).await?;
                put_manifest(&mut c, &repo, "v1", &img).await?;
                Ok(c)
            }
        })
        .await?;
    }
    for _ in 0..WALKS {
        for (i, server) in ctx.registries().into_iter().enumerate() {
            let mut conn = Conn::new(server.addr);
            let t = Instant::now();
            let (got, p) = walk(&mut conn, &format!("/v2/list/tags/tags/list?n={PAGE}"), "tags").await?;
            walk_ms[0][i].push(t.elapsed().as_secs_f64() * 1e3);
            if got.len() != tags {
                bail!("{}: tags/list walk found {} tags, {tags} pushed", server.kind.name(), got.len());
            }
            pages[0][i] = p;
            let t = Instant::now();
            let (got, p) = walk(&mut conn, &format!("/v2/_catalog?n={PAGE}"), "repositories").await?;
            walk_ms[1][i].push(t.elapsed().as_secs_f64() * 1e3);
            let seeded = got.iter().filter(|r| r.starts_with("cat/")).count();
            if seeded != repos {
                bail!("{}: _catalog walk found {seeded} seeded repositories, {repos} pushed", server.kind.name());
            }
            pages[1][i] = p;
        }
    }
    for (k, (what, count, unit, key)) in
        [("tags", tags, "tags", "tags_list"), ("repositories", repos, "repositories", "catalog")]
            .into_iter()
            .enumerate()
    {
        let detail = json!({
            "rounds_ms": {"berth": walk_ms[k][0], "distribution": walk_ms[k][1]},
            "pages": {"berth": pages[k][0], "distribution": pages[k][1]}, "n": PAGE,
        });
        let label = if k == 0 {
            format!("tags/list full walk, {count} tags (n={PAGE})")
        } else {
            format!("_catalog full walk, {count} repositories (n={PAGE})")
        };
        ctx.report.push(
            Row::new(format!("{key}_walk"), label, "ms", false)
                .values(mean(&walk_ms[k][0]), mean(&walk_ms[k][1]))
                .detail(detail),
        );
        let seed_label = if k == 0 {
            format!("seed {count} tags via manifest PUT, {clients} clients")
        } else {
            format!("seed {count} repositories via mount + manifest PUT, {clients} clients")
        };
        let secs = seed_secs[k];
        ctx.report.push(
            Row::new(format!("{key}_seed"), seed_label, if k == 0 { "tags/s" } else { "repos/s" }, true)
                .values(count as f64 / secs[0], count as f64 / secs[1])
                .detail(json!({"secs": {"berth": secs[0], "distribution": secs[1]}, "what": what, "unit": unit})),
        );
    }
    Ok(())
}
