//! `berth scrub`: verify every stored blob against its digest and every
//! metadata reference against storage; report, optionally quarantine.

use berth_jobs::scrub::{scrub, Problem};
use std::io::{IsTerminal, Write};

pub fn run(loaded: berth_config::Loaded, quarantine: bool) -> anyhow::Result<bool> {
    let config = loaded.config;
    crate::logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Scrubbing reads the bytes: no presigned-URL redirects.
        let (meta, _) = crate::stores::open_meta(&config).await?;
        let (blobs, _) = crate::stores::open_blobs(&config, false).await?;
        let tty = std::io::stderr().is_terminal();
        let progress = move |n: u64| {
            if tty {
                eprint!("\r\x1b[2Kblobs checked: {n}");
                let _ = std::io::stderr().flush();
            }
        };
        let report = scrub(&*meta, &*blobs, quarantine, &progress).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if tty {
            eprintln!();
        }
        for p in &report.problems {
            match p {
                Problem::Missing { digest } => println!("missing: {digest} has a row but no bytes"),
                Problem::WrongSize { digest, recorded, stored } => {
                    println!("wrong size: {digest} recorded {recorded} bytes, stored {stored}")
                }
                Problem::Corrupt { digest, actual } => println!("corrupt: {digest} hashes to {actual}"),
                Problem::Dangling(d) => {
                    println!("dangling: {}@{} references {} which has no blob", d.repository, d.manifest, d.child)
                }
            }
        }
        println!(
            "checked {} blobs ({} bytes): {} problems, {} quarantined",
            report.blobs_checked,
            report.bytes_checked,
            report.problems.len(),
            report.quarantined
        );
        Ok(report.problems.is_empty())
    })
}
