//! Step 3: `kill -9` of node A in the middle of a chunked upload, which B
//! then finishes.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use berth_testkit::http::{self, Response};
use berth_testkit::{run_bounded, tools};

use super::{blob_from, location_path, Cluster, Timings, A, B, C, MIB, NAMES};
use crate::{ensure, Result};

/// Pseudo-random bytes (xorshift).
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `sha256:…` of `data`, by coreutils' `sha256sum` (no hashing crate here).
fn sha256(data: &[u8], work: &Path) -> Result<String> {
    let file = work.join("sha256-input");
    std::fs::write(&file, data).map_err(|e| format!("{}: {e}", file.display()))?;
    let out = run_bounded(Command::new(tools::require("sha256sum", "coreutils")?).arg(&file), Duration::from_secs(30))?
        .ok()?;
    let _ = std::fs::remove_file(&file);
    let hex = out.split_whitespace().next().unwrap_or_default();
    ensure(hex.len() == 64, || format!("sha256sum printed {out:?}"))?;
    Ok(format!("sha256:{hex}"))
}

fn patch(addr: SocketAddr, path: &str, data: &[u8], from: usize, to: usize) -> Result<Response> {
    let range = format!("{from}-{}", to - 1);
    let headers = [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str())];
    http::request(addr, "PATCH", path, &headers, &data[from..to])
}

fn ensure_range(r: &Response, what: &str, expected_end: usize) -> Result<()> {
    let expected = format!("0-{}", expected_end - 1);
    ensure(r.header("range") == Some(expected.as_str()), || {
        format!("{what}: expected Range {expected}, got:\n{}", r.describe())
    })
}

/// Step 3. Chunks (MiB): 1 and 3 acknowledged by A; 1.5, of which 1.25 sent
/// to A when it is killed, then sent whole to B; 0.5 in the PUT on B. All
/// below 5 MiB; the third crosses the 5 MiB mark (the first multipart part).
pub(super) fn chunked_upload_survives_kill(cluster: &mut Cluster, work: &Path, t: &mut Timings) -> Result<()> {
    let repo = "cluster/chunked";
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64);
    let data = random_bytes(6 * MIB, seed);
    let digest = sha256(&data, work)?;
    let cuts = [0, MIB, 4 * MIB, 4 * MIB + 3 * MIB / 2, 6 * MIB];

    let start = Instant::now();
    let post = format!("/v2/{repo}/blobs/uploads/");
    let r = http::request(cluster.addr(A), "POST", &post, &[], &[])?;
    ensure(r.status == 202, || format!("POST {post} on A: {}", r.describe()))?;
    let upload =
        location_path(r.header("location").ok_or_else(|| format!("POST on A: no Location\n{}", r.describe()))?);
    for (n, w) in cuts.windows(2).take(2).enumerate() {
        let r = patch(cluster.addr(A), &upload, &data, w[0], w[1])?;
        ensure(r.status == 202, || format!("PATCH {} ({}-{}) on A: {}", n + 1, w[0], w[1] - 1, r.describe()))?;
        ensure_range(&r, &format!("PATCH {} on A", n + 1), w[1])?;
    }
    t.record("3 POST + 2 PATCHes (4 MiB) on A", start.elapsed());

    // The third chunk: headers and 1.25 MiB of its 1.5 MiB body, so that A
    // holds 4 MiB (the tail object it read back) + 1.25 MiB and uploads a
    // first 5 MiB part that is never acknowledged; then kill -9.
    let (from, to) = (cuts[2], cuts[3]);
    let mut stream = TcpStream::connect_timeout(&cluster.addr(A), Duration::from_secs(10))
        .and_then(|s| s.set_write_timeout(Some(Duration::from_secs(10))).map(|()| s))
        .map_err(|e| format!("connect to A: {e}"))?;
    let head = format!(
        "PATCH {upload} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Range: {from}-{}\r\n\
         Content-Length: {}\r\n\r\n",
        cluster.addr(A),
        to - 1,
        to - from
    );
    stream.write_all(head.as_bytes()).map_err(|e| format!("half PATCH to A: {e}"))?;
    stream.write_all(&data[from..from + 5 * MIB / 4]).map_err(|e| format!("half PATCH to A: {e}"))?;
    thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    let pid = cluster.nodes[A].pid();
    cluster.nodes[A].kill9();
    drop(stream);
    eprintln!("cluster: node A (pid {pid}) killed with 1.25 of the 1.5 MiB of PATCH 3 sent");

    let r = http::request(cluster.addr(B), "GET", &upload, &[], &[])?;
    t.record("3 kill -9 A → status answered on B", killed.elapsed());
    ensure(r.status == 204, || format!("GET {upload} (status) on B after A died: {}", r.describe()))?;
    ensure_range(&r, "status on B after A died", cuts[2])?;

    let start = Instant::now();
    let r = patch(cluster.addr(B), &upload, &data, from, to)?;
    ensure(r.status == 202, || format!("PATCH 3 ({from}-{}) on B: {}", to - 1, r.describe()))?;
    ensure_range(&r, "PATCH 3 on B", to)?;
    let r = http::request(cluster.addr(C), "GET", &upload, &[], &[])?;
    ensure(r.status == 204, || format!("GET {upload} (status) on C: {}", r.describe()))?;
    ensure_range(&r, "status on C", to)?;
    let sep = if upload.contains('?') { '&' } else { '?' };
    let put = format!("{upload}{sep}digest={digest}");
    let range = format!("{}-{}", cuts[3], cuts[4] - 1);
    let headers = [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str())];
    let r = http::request(cluster.addr(B), "PUT", &put, &headers, &data[cuts[3]..])?;
    ensure(r.status == 201, || format!("PUT {put} on B: {}", r.describe()))?;
    ensure(r.header("docker-content-digest") == Some(digest.as_str()), || format!("PUT on B: {}", r.describe()))?;
    t.record("3 PATCH 3 + PUT on B (2 MiB)", start.elapsed());

    let start = Instant::now();
    for i in [C, B] {
        let (status, bytes) = blob_from(cluster.addr(i), repo, &digest)?;
        let expected = if i == B { 200 } else { 307 };
        ensure(status == expected, || format!("GET blob on node {}: {status}, expected {expected}", NAMES[i]))?;
        ensure(bytes == data, || {
            format!("node {} served {} bytes that differ from the {} uploaded", NAMES[i], bytes.len(), data.len())
        })?;
    }
    t.record("3 pull 6 MiB from C (redirect) and B (proxied)", start.elapsed());

    let start = Instant::now();
    cluster.nodes[A].restart().map_err(|e| format!("restarting A: {e}"))?;
    t.record("3 restart A", start.elapsed());
    let (status, bytes) = blob_from(cluster.addr(A), repo, &digest)?;
    ensure(status == 307 && bytes == data, || {
        format!("restarted A: blob {status}, {} bytes, not byte-exact", bytes.len())
    })?;
    let r = http::request(cluster.addr(A), "GET", &upload, &[], &[])?;
    ensure(r.status == 404, || format!("restarted A: status of the finished upload: {}", r.describe()))?;
    Ok(())
}
