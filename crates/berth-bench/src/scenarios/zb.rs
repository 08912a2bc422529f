//! zot's `zb` workloads, reproduced (PERFORMANCE.md §2): `n` requests
//! split evenly over `c` workers with one keep-alive connection each; data
//! is 4 KiB random + zeros; every push goes into a fresh repository.
//!
//! Differences from zb, on purpose: rps here is the measured phase only
//! (zb's divides by a wall time that also covers setup pushes and cleanup
//! DELETEs, so its pull and catalog figures understate the steady state);
//! no cleanup DELETEs are sent (every store is thrown away after the run).
//! Blob data is generated and hashed before the clock starts, and shared by
//! both registries, so the client's hashing costs neither of them.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use bytes::Bytes;
use http::Method;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::{run_workers, Ctx, MIB};
use crate::http::Conn;
use crate::registry::{pull_image, push_image, Blob, Upload};
use crate::report::Row;
use crate::stats::{Latencies, Phase};

#[derive(Clone, Copy)]
enum Op {
    Push(Upload),
    Pull,
    /// Pull with probability 0.75, else push a new image.
    PullPush,
    Catalog,
}

struct Workload {
    key: String,
    label: String,
    op: Op,
    /// Layer sizes (in units of the 1/10/100 MB sizes) with their weights.
    mix: Vec<(usize, u32)>,
    n: usize,
}

/// Index into `mix`, drawn by weight.
fn pick_index(mix: &[(usize, u32)], rng: &mut impl Rng) -> usize {
    let total: u32 = mix.iter().map(|m| m.1).sum();
    let mut x = rng.random_range(0..total);
    for (i, &(_, w)) in mix.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    0
}

fn workloads(quick: bool, sizes: [usize; 3], n: usize, n_big: usize) -> Vec<Workload> {
    let names = ["1MB", "10MB", "100MB"];
    let mut out = Vec::new();
    let w = |key: String, label: String, op: Op, mix: Vec<(usize, u32)>, n: usize| Workload { key, label, op, mix, n };
    for (op, key, label) in [
        (Upload::Monolithic, "push_monolith", "Push Monolith"),
        (Upload::Streamed, "push_streamed", "Push Chunk Streamed"),
    ] {
        for (i, name) in names.iter().enumerate() {
            let n = if i == 2 { n_big } else { n };
            out.push(w(format!("zb_{key}_{name}"), format!("{label} {name}"), Op::Push(op), vec![(sizes[i], 1)], n));
        }
    }
    for (i, name) in names.iter().enumerate() {
        out.push(w(format!("zb_pull_{name}"), format!("Pull {name}"), Op::Pull, vec![(sizes[i], 1)], n));
    }
    let mixed = |a, b, c| vec![(sizes[0], a), (sizes[1], b), (sizes[2], c)];
    out.push(w("zb_pull_mixed".into(), "Pull Mixed 20/70/10".into(), Op::Pull, mixed(20, 70, 10), n));
    out.push(w(
        "zb_push_monolith_mixed".into(),
        "Push Monolith Mixed 20/70/10".into(),
        Op::Push(Upload::Monolithic),
        mixed(20, 70, 10),
        n,
    ));
    let n_chunk = if quick { n } else { n / 2 };
    out.push(w(
        "zb_push_chunk_mixed".into(),
        "Push Chunk Mixed 33/33/33".into(),
        Op::Push(Upload::Streamed),
        mixed(33, 33, 33),
        n_chunk,
    ));
    for (i, name) in names.iter().enumerate() {
        let n = if i == 2 { n_big } else { n };
        out.push(w(
            format!("zb_pull75_push25_{name}"),
            format!("Pull 75%/Push 25% {name}"),
            Op::PullPush,
            vec![(sizes[i], 1)],
            n,
        ));
    }
    out.push(w("zb_catalog".into(), "Get Catalog".into(), Op::Catalog, mixed(70, 20, 10), n));
    out
}

/// Blobs for one workload, made before the clock starts: one per push
/// (each worker's share in order), plus one per worker for pull setups.
struct Pool {
    layers: Vec<Blob>,
    configs: Vec<Blob>,
}

/// `pushes` blobs of sizes drawn from `mix`, then `setup` per worker for
/// `workers` workers: of each size in turn when `each_size`, else drawn.
fn make_pool(
    pushes: usize,
    setup: usize,
    workers: usize,
    each_size: bool,
    mix: &[(usize, u32)],
    rng: &mut SmallRng,
) -> Pool {
    let mut sizes: Vec<usize> = (0..pushes).map(|_| mix[pick_index(mix, rng)].0).collect();
    for _ in 0..workers {
        for k in 0..setup {
            sizes.push(if each_size { mix[k].0 } else { mix[pick_index(mix, rng)].0 });
        }
    }
    let layers = sizes.iter().map(|&size| Blob::zb(size, rng)).collect();
    let configs = sizes.iter().map(|_| Blob::config(rng)).collect();
    Pool { layers, configs }
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let quick = ctx.sizes.quick;
    let (c, n, n_big) = if quick { (2, 4, 4) } else { (10, 100, 20) };
    let sizes = if quick { [16 * 1024, 160 * 1024, 1600 * 1024] } else { [MIB, 10 * MIB, 100 * MIB] };
    ctx.report.notes.push(format!(
        "zb workloads: -c {c} -n {n}; the 100 MB push and pull/push workloads use -n {n_big} and Push Chunk Mixed \
         -n {} to fit the time budget; sizes {:?} bytes; rps over the measured phase only",
        if quick { n } else { n / 2 },
        sizes
    ));
    for (wi, wl) in workloads(quick, sizes, n, n_big).into_iter().enumerate() {
        let per = wl.n / c;
        // Pushes: one blob per push. Pulls: each worker's setup images.
        let setup_per_worker = match wl.op {
            Op::Push(_) => 0,
            Op::Pull | Op::PullPush => wl.mix.len(),
            Op::Catalog => per,
        };
        let pushes = match wl.op {
            Op::Push(_) | Op::PullPush => wl.n,
            _ => 0,
        };
        let each_size = !matches!(wl.op, Op::Catalog);
        let pool = Arc::new(make_pool(pushes, setup_per_worker, c, each_size, &wl.mix, &mut ctx.rng));
        let mut results = Vec::new();
        for server in [&ctx.berth, &ctx.distribution] {
            let addr = server.addr;
            let op = wl.op;
            let mix = wl.mix.clone();
            let verify_all = quick;
            let setup = |w: usize| pushes + w * setup_per_worker;
            let mut setup_secs = 0.0;
            if setup_per_worker > 0 {
                let t = Instant::now();
                run_workers(c, |w| {
                    let pool = pool.clone();
                    let base = setup(w);
                    async move {
                        let mut conn = Conn::new(addr);
                        for k in 0..setup_per_worker {
                            let (cfg, layer) = (&pool.configs[base + k], &pool.layers[base + k]);
                            let repo = if matches!(op, Op::Catalog) {
                                format!("zb{wi}/s{w}-{k}")
                            } else {
                                format!("zb{wi}/w{w}")
                            };
                            push_image(&mut conn, &repo, &format!("s{k}"), cfg, &[layer], Upload::Monolithic).await?;
                        }
                        Ok(())
                    }
                })
                .await?;
                setup_secs = t.elapsed().as_secs_f64();
            }
            let phase = Phase::start(server.pid);
            let per_worker = run_workers(c, |w| {
                let pool = pool.clone();
                let mix = mix.clone();
                async move {
                    let mut conn = Conn::new(addr);
                    let mut rng = SmallRng::seed_from_u64(w as u64);
                    let (mut lat, mut bytes, mut verified, mut pushed) = (Latencies::default(), 0u64, 0u64, 0usize);
                    for j in 0..per {
                        let t = Instant::now();
                        let pull = match op {
                            Op::Pull => true,
                            Op::PullPush => rng.random_bool(0.75),
                            _ => false,
                        };
                        if matches!(op, Op::Catalog) {
                            conn.request(Method::GET, "/v2/_catalog", &[], Bytes::new())
                                .await?
                                .expect(200, "catalog")?;
                        } else if pull {
                            let k = pick_index(&mix, &mut rng);
                            let repo = format!("zb{wi}/w{w}");
                            let got = pull_image(&mut conn, &repo, &format!("s{k}"), verify_all || j == 0).await?;
                            bytes += got.bytes;
                            verified += got.verified;
                        } else {
                            let how = if let Op::Push(h) = op { h } else { Upload::Monolithic };
                            let i = w * per + pushed;
                            pushed += 1;
                            let (cfg, layer) = (&pool.configs[i], &pool.layers[i]);
                            let repo = format!("zb{wi}/p{w}-{j}");
                            push_image(&mut conn, &repo, &format!("tag{j}"), cfg, &[layer], how).await?;
                            bytes += layer.len() + cfg.len();
                        }
                        lat.record(t.elapsed());
                    }
                    Ok((lat, bytes, verified))
                }
            })
            .await?;
            let cost = phase.end();
            let (mut lat, mut bytes, mut verified) = (Latencies::default(), 0, 0);
            for (l, b, v) in per_worker {
                lat.merge(l);
                bytes += b;
                verified += v;
            }
            ctx.report.digests_verified += verified;
            let done = per * c;
            results.push((
                done as f64 / cost.secs,
                json!({
                    "requests": done, "secs": cost.secs, "mb_s": bytes as f64 / cost.secs / 1e6,
                    "p50_ms": lat.percentile_ms(50.0), "p99_ms": lat.percentile_ms(99.0),
                    "setup_secs": setup_secs, "server_cpu_s": cost.server_cpu, "client_cpu_share": cost.client_util(),
                    "digests_verified": verified,
                }),
            ));
        }
        let label = format!("zb {} (-c {c} -n {})", wl.label, wl.n);
        let detail = json!({"berth": results[0].1, "distribution": results[1].1});
        ctx.report.push(Row::new(&wl.key, label, "req/s", true).values(results[0].0, results[1].0).detail(detail));
    }
    Ok(())
}
