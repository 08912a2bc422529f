//! Manifest HEAD and GET by tag and by digest: a fixed number of keep-alive
//! connections hammering one manifest for a fixed time (the load a fleet of
//! Kubernetes nodes puts on a registry).

use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use http::Method;
use serde_json::json;

use super::{run_workers, Ctx};
use crate::http::Conn;
use crate::registry::{push_image, Blob, Upload, ACCEPT};
use crate::report::Row;
use crate::servers::Server;
use crate::stats::{mean, Latencies, Phase, PhaseCost};

const REPO: &str = super::MANIFEST_REPO;

struct HotResult {
    rps: f64,
    errors: u64,
    lat: Latencies,
    cost: PhaseCost,
}

async fn hot_loop(
    server: &Server,
    method: Method,
    path: &str,
    body_len: usize,
    conns: usize,
    secs: f64,
) -> Result<HotResult> {
    let addr = server.addr;
    let auth = server.auth.clone();
    let phase = Phase::start(server.pid);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let path = path.to_owned();
    let per_worker = run_workers(conns, |_| {
        let (method, path, auth) = (method.clone(), path.clone(), auth.clone());
        async move {
            let mut conn = Conn::new(addr).with_auth(auth.as_deref());
            let (mut lat, mut errors) = (Latencies::default(), 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                let resp = conn.request(method.clone(), &path, &[ACCEPT], Bytes::new()).await?;
                lat.record(t.elapsed());
                let bad_body = method == Method::GET && resp.body.len() != body_len;
                if resp.status != 200 || bad_body {
                    errors += 1;
                }
            }
            Ok((lat, errors))
        }
    })
    .await?;
    let cost = phase.end();
    let (mut lat, mut errors) = (Latencies::default(), 0);
    for (l, e) in per_worker {
        lat.merge(l);
        errors += e;
    }
    Ok(HotResult { rps: lat.len() as f64 / cost.secs, errors, lat, cost })
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let layer = Blob::random(1024, &mut ctx.rng);
    let config = Blob::config(&mut ctx.rng);
    let mut digest = String::new();
    let mut body_len = 0;
    for server in ctx.registries() {
        let mut conn = Conn::new(server.addr).with_auth(server.auth.as_deref());
        let manifest = push_image(&mut conn, REPO, "latest", &config, &[&layer], Upload::Monolithic).await?;
        digest = manifest.digest.clone();
        body_len = manifest.data.len();
    }
    let (conns, secs) = (ctx.sizes.manifest_conns, ctx.sizes.manifest_secs);
    for (method, by, reference) in [
        (Method::GET, "tag", "latest"),
        (Method::HEAD, "tag", "latest"),
        (Method::GET, "digest", digest.as_str()),
        (Method::HEAD, "digest", digest.as_str()),
    ] {
        let path = format!("/v2/{REPO}/manifests/{reference}");
        let mut results: [Vec<HotResult>; 2] = Default::default();
        for _round in 0..ctx.sizes.rounds {
            for (i, server) in ctx.registries().into_iter().enumerate() {
                results[i].push(hot_loop(server, method.clone(), &path, body_len, conns, secs).await?);
            }
        }
        let mut summary = |i: usize| {
            let rps: Vec<f64> = results[i].iter().map(|r| r.rps).collect();
            let mut lat = Latencies::default();
            let mut errors = 0;
            for r in &mut results[i] {
                lat.merge(std::mem::take(&mut r.lat));
                errors += r.errors;
            }
            let client: Vec<f64> = results[i].iter().map(|r| r.cost.client_util()).collect();
            let server: Vec<f64> = results[i].iter().map(|r| r.cost.server_cpu / r.cost.secs).collect();
            let p50 = lat.percentile_ms(50.0);
            let p99 = lat.percentile_ms(99.0);
            let detail = json!({
                "rounds_rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors,
                "client_cpu_share": client, "server_cpu_share": server,
            });
            (mean(&rps), p50, p99, errors, detail)
        };
        let (b, d) = (summary(0), summary(1));
        let m = method.as_str();
        let key = format!("manifest_{}_{by}", m.to_lowercase());
        let label = format!("manifest {m} by {by}, {conns} connections, {secs} s");
        let detail = json!({"berth": b.4, "distribution": d.4});
        ctx.report.push(Row::new(&key, &label, "req/s", true).values(b.0, d.0).detail(detail));
        ctx.report.push(Row::new(format!("{key}_p50"), format!("{label}: p50"), "ms", false).values(b.1, d.1));
        ctx.report.push(Row::new(format!("{key}_p99"), format!("{label}: p99"), "ms", false).values(b.2, d.2));
        if b.3 + d.3 > 0 {
            anyhow::bail!("{label}: {} errors on Berth, {} on Distribution", b.3, d.3);
        }
    }
    Ok(())
}
