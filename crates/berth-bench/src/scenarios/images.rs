//! Push of many small images (config + 2 small layers + manifest) from
//! concurrent clients: the metadata write path (many small durable commits).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::{run_workers, Ctx};
use crate::http::Conn;
use crate::registry::{push_image, Blob, Upload};
use crate::report::Row;
use crate::stats::{Latencies, Phase};

struct Image {
    config: Blob,
    layers: [Blob; 2],
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let (count, clients) = (ctx.sizes.small_images, ctx.sizes.small_clients);
    let images: Arc<Vec<Image>> = Arc::new(
        (0..count)
            .map(|_| Image {
                config: Blob::config(&mut ctx.rng),
                layers: [Blob::random(4096, &mut ctx.rng), Blob::random(32 * 1024, &mut ctx.rng)],
            })
            .collect(),
    );
    let mut out = Vec::new();
    for server in ctx.registries() {
        let addr = server.addr;
        let phase = Phase::start(server.pid);
        let lats = run_workers(clients, |w| {
            let images = images.clone();
            async move {
                let mut conn = Conn::new(addr);
                let mut lat = Latencies::default();
                for i in (w..images.len()).step_by(clients) {
                    let img = &images[i];
                    let t = Instant::now();
                    let layers = [&img.layers[0], &img.layers[1]];
                    push_image(
                        &mut conn,
                        &format!("small/w{w:02}"),
                        &format!("v{i}"),
                        &img.config,
                        &layers,
                        Upload::Monolithic,
                    )
                    .await?;
                    lat.record(t.elapsed());
                }
                Ok(lat)
            }
        })
        .await?;
        let cost = phase.end();
        let mut lat = Latencies::default();
        lats.into_iter().for_each(|l| lat.merge(l));
        out.push((
            count as f64 / cost.secs,
            json!({
                "secs": cost.secs, "p50_ms": lat.percentile_ms(50.0), "p99_ms": lat.percentile_ms(99.0),
                "server_cpu_s": cost.server_cpu, "client_cpu_share": cost.client_util(),
            }),
        ));
    }
    let label = format!("push {count} small images (config + 2 layers + manifest), {clients} clients");
    let detail = json!({"berth": out[0].1, "distribution": out[1].1, "requests_per_image": 7});
    ctx.report.push(Row::new("small_images", label, "images/s", true).values(out[0].0, out[1].0).detail(detail));
    Ok(())
}
