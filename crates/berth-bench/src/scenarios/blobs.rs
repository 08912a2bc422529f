//! Blob push (monolithic and 8 MiB chunked, durable before the 201) and
//! blob pull with 1 and N clients, beside nginx serving the same file.

use anyhow::{bail, Result};
use bytes::BytesMut;
use serde_json::json;

use super::{run_workers, Ctx, MIB};
use crate::http::Conn;
use crate::registry::{push_blob, Blob, Upload};
use crate::report::Row;
use crate::servers::{start_nginx, Kind, Server};
use crate::stats::{mean, Phase, PhaseCost};

const CHUNK: usize = 8 * MIB;

/// `base` with its first bytes replaced, so every push stores a new blob.
fn variant(base: &Blob, n: u64) -> Blob {
    let mut data = BytesMut::from(&base.data[..]);
    data[..8].copy_from_slice(&n.to_le_bytes());
    Blob::new(data.freeze())
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let size = ctx.sizes.blob_bytes;
    let mib = size / MIB;
    let base = Blob::random(size, &mut ctx.rng);
    let mut pull_blob = None;
    for (how, key, label) in [
        (Upload::Monolithic, "blob_push_monolithic", format!("blob push {mib} MiB, POST+PUT")),
        (Upload::Chunked(CHUNK), "blob_push_chunked", format!("blob push {mib} MiB, 8 MiB PATCHes")),
    ] {
        let mut rates = [Vec::new(), Vec::new()];
        let mut costs = [Vec::new(), Vec::new()];
        for round in 0..ctx.sizes.rounds {
            let blob = variant(&base, (round * 2 + matches!(how, Upload::Chunked(_)) as usize) as u64);
            for (i, server) in ctx.registries().into_iter().enumerate() {
                let repo = format!("bench/{key}-{round}");
                let mut conn = Conn::new(server.addr);
                let phase = Phase::start(server.pid);
                push_blob(&mut conn, &repo, &blob, how).await?;
                let cost = phase.end();
                rates[i].push(size as f64 / cost.secs / 1e6);
                costs[i].push(cost);
            }
            if round == 0 && matches!(how, Upload::Monolithic) {
                pull_blob = Some((format!("bench/{key}-0"), blob));
            }
        }
        let detail = json!({
            "rounds_mb_s": {"berth": rates[0], "distribution": rates[1]},
            "server_cpu_s": {"berth": cpu(&costs[0]), "distribution": cpu(&costs[1])},
            "durable": "each registry acknowledges with 201 only after the blob is on disk under its digest",
        });
        ctx.report.push(Row::new(key, label, "MB/s", true).values(mean(&rates[0]), mean(&rates[1])).detail(detail));
    }
    let (repo, blob) = pull_blob.expect("round 0 ran");
    pull(ctx, &repo, &blob).await
}

fn cpu(costs: &[PhaseCost]) -> Vec<f64> {
    costs.iter().map(|c| c.server_cpu).collect()
}

/// One pull measurement: MB/s, server CPU-s per GB, client CPU share.
struct PullResult {
    mb_s: f64,
    cpu_per_gb: f64,
    client_util: f64,
    verified: u64,
}

/// `clients` connections each GET the blob `reps` times; the first GET of
/// worker 0 (every GET in quick mode) is hashed and checked.
async fn pull_once(
    server: &Server,
    path: &str,
    blob: &Blob,
    clients: usize,
    reps: usize,
    hash_all: bool,
) -> Result<PullResult> {
    let phase = Phase::start(server.pid);
    let (addr, digest, size) = (server.addr, blob.digest.clone(), blob.len());
    let path = path.to_owned();
    let verified = run_workers(clients, |w| {
        let (path, digest) = (path.clone(), digest.clone());
        async move {
            let mut conn = Conn::new(addr);
            let mut verified = 0u64;
            for k in 0..reps {
                let hash = hash_all || (w == 0 && k == 0);
                let got = conn.get_sink(&path, hash).await?;
                if got.status != 200 || got.bytes != size {
                    bail!("GET {path}: status {}, {} of {size} bytes", got.status, got.bytes);
                }
                if let Some(d) = got.digest {
                    if d != digest {
                        bail!("GET {path}: digest {d}, expected {digest}");
                    }
                    verified += 1;
                }
            }
            Ok(verified)
        }
    })
    .await?;
    let cost = phase.end();
    let bytes = (size as usize * clients * reps) as f64;
    Ok(PullResult {
        mb_s: bytes / cost.secs / 1e6,
        cpu_per_gb: cost.server_cpu / (bytes / 1e9),
        client_util: cost.client_util(),
        verified: verified.iter().sum(),
    })
}

async fn pull(ctx: &mut Ctx, repo: &str, blob: &Blob) -> Result<()> {
    let nginx = start_nginx(&blob.data)?;
    let registry_path = format!("/v2/{repo}/blobs/{}", blob.digest);
    let quick = ctx.sizes.quick;
    for (clients, reps) in [(1, ctx.sizes.pull_reps_single), (ctx.sizes.pull_clients, 1)] {
        // Berth, Distribution, nginx.
        let mut results: [Vec<PullResult>; 3] = Default::default();
        for _round in 0..ctx.sizes.rounds {
            for (i, server) in [&ctx.berth, &ctx.distribution, &nginx].into_iter().enumerate() {
                let path = if server.kind == Kind::Nginx { "/blob" } else { registry_path.as_str() };
                let r = pull_once(server, path, blob, clients, reps, quick).await?;
                ctx.report.digests_verified += r.verified;
                results[i].push(r);
            }
        }
        let pick = |i: usize, f: fn(&PullResult) -> f64| mean(&results[i].iter().map(f).collect::<Vec<_>>());
        let rounds = |f: fn(&PullResult) -> f64| {
            json!({
                "berth": results[0].iter().map(f).collect::<Vec<_>>(),
                "distribution": results[1].iter().map(f).collect::<Vec<_>>(),
                "nginx": results[2].iter().map(f).collect::<Vec<_>>(),
            })
        };
        let mib = blob.len() as usize / MIB;
        let detail = json!({
            "rounds_mb_s": rounds(|r| r.mb_s),
            "client_cpu_share": rounds(|r| r.client_util),
            "gets_per_client": reps,
        });
        let key = format!("blob_pull_{clients}");
        let label = format!("blob pull {mib} MiB, {clients} client{}", if clients > 1 { "s" } else { "" });
        let row = Row::new(&key, label.clone(), "MB/s", true)
            .values(pick(0, |r| r.mb_s), pick(1, |r| r.mb_s))
            .nginx(pick(2, |r| r.mb_s))
            .detail(detail.clone());
        ctx.report.push(row);
        let row = Row::new(format!("{key}_cpu"), format!("{label}: server CPU"), "CPU-s/GB", false)
            .values(pick(0, |r| r.cpu_per_gb), pick(1, |r| r.cpu_per_gb))
            .nginx(pick(2, |r| r.cpu_per_gb))
            .detail(json!({"rounds": rounds(|r| r.cpu_per_gb)}));
        ctx.report.push(row);
    }
    drop(nginx);
    Ok(())
}
