//! The scenarios of issue 14. Each runs against Berth and Distribution in
//! alternation (A/B/A/B where a round is cheap) and pushes [`Row`]s.

pub mod blobs;
pub mod gc;
pub mod images;
pub mod listings;
pub mod manifests;
pub mod zb;

use std::future::Future;

use anyhow::{Context, Result};
use rand::rngs::SmallRng;
use tokio::task::JoinSet;

use crate::report::Report;
use crate::servers::Server;

pub const MIB: usize = 1 << 20;
/// The repository the manifest scenario hammers (and `--auth` gets a token for).
pub const MANIFEST_REPO: &str = "bench/manifest";

/// Sizes and counts; `quick` shrinks every scenario to seconds.
pub struct Sizes {
    pub quick: bool,
    /// Alternating rounds for the cheap scenarios.
    pub rounds: usize,
    pub blob_bytes: usize,
    pub pull_reps_single: usize,
    pub pull_clients: usize,
    pub manifest_conns: usize,
    pub manifest_secs: f64,
    pub small_images: usize,
    pub small_clients: usize,
    pub tags: usize,
    pub catalog_repos: usize,
    pub seed_clients: usize,
    /// Unreferenced blobs seeded for the `gc` scenario.
    pub gc_blobs: usize,
}

pub struct Ctx {
    pub sizes: Sizes,
    pub berth: Server,
    pub distribution: Server,
    pub rng: SmallRng,
    pub report: Report,
}

impl Ctx {
    /// The two registries, Berth first.
    pub fn registries(&self) -> [&Server; 2] {
        [&self.berth, &self.distribution]
    }
}

/// Runs `n` workers concurrently and returns their results in worker order.
pub async fn run_workers<F, Fut, T>(n: usize, f: F) -> Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    for i in 0..n {
        let fut = f(i);
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined.context("worker panicked")?;
        out[i] = Some(result.with_context(|| format!("worker {i}"))?);
    }
    Ok(out.into_iter().map(|r| r.expect("every worker reported")).collect())
}
