//! `FROM scratch` docker build contexts made of files the test owns: the
//! static busybox from Debian's `busybox-static` plus random data files, one
//! `COPY` (one layer) each, and a marker file whose content is unique per
//! context so `docker run` can prove which image ran.
//!
//! Random data does not compress, so layer sizes on the wire are about the
//! sizes asked for. Generation uses xorshift: fast, and no dependency.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use crate::berth::temp_dir;
use crate::{tools, Result};

/// Where Debian's `busybox-static` puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";
/// One MiB.
pub const MIB: u64 = 1024 * 1024;
/// Path of the marker file inside the image.
pub const MARKER_PATH: &str = "/marker.txt";

/// Builder of a [`BuildContext`].
#[derive(Debug, Default, Clone)]
pub struct ImageContext {
    data_files: Vec<(String, u64)>,
}

impl ImageContext {
    /// An image of busybox and the marker file only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `/data/NAME` of `size` random bytes, as its own layer.
    pub fn data_layer(mut self, name: &str, size: u64) -> Self {
        self.data_files.push((name.to_owned(), size));
        self
    }

    /// The usual multi-layer test image: busybox plus data layers of 1, 2
    /// and 3 MiB (and the marker).
    pub fn small() -> Self {
        Self::new().data_layer("a.bin", MIB).data_layer("b.bin", 2 * MIB).data_layer("c.bin", 3 * MIB)
    }

    /// [`small`](Self::small) plus one layer of `size` bytes (≥ 100 MiB for
    /// the big-layer scenarios).
    pub fn with_big_layer(size: u64) -> Self {
        Self::small().data_layer("big.bin", size)
    }

    /// Writes the context (Dockerfile, busybox, data, marker) to a temp dir.
    pub fn build(&self) -> Result<BuildContext> {
        let busybox = Path::new(BUSYBOX);
        if !busybox.is_file() || !tools::is_static_elf(busybox)? {
            return Err(format!("{BUSYBOX} missing or not static: install Debian package `busybox-static`"));
        }
        let dir = temp_dir("image-ctx-")?;
        let io = |e: std::io::Error| format!("writing build context in {}: {e}", dir.path().display());
        std::fs::copy(busybox, dir.path().join("busybox")).map_err(io)?;
        let mut seed = unique_seed();
        let marker = format!("berth e2e marker {seed:016x}\n");
        std::fs::write(dir.path().join("marker.txt"), &marker).map_err(io)?;
        let mut dockerfile = String::from("FROM scratch\nCOPY busybox /bin/busybox\n");
        let mut files = Vec::new();
        for (name, size) in &self.data_files {
            let host = dir.path().join(name);
            write_random(&host, *size, &mut seed).map_err(io)?;
            dockerfile.push_str(&format!("COPY {name} /data/{name}\n"));
            files.push((format!("/data/{name}"), host));
        }
        dockerfile
            .push_str(&format!("COPY marker.txt {MARKER_PATH}\nCMD [\"/bin/busybox\", \"cat\", \"{MARKER_PATH}\"]\n"));
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).map_err(io)?;
        Ok(BuildContext { dir, marker, files })
    }
}

/// A build context on disk; removed on `Drop`.
#[derive(Debug)]
pub struct BuildContext {
    dir: TempDir,
    marker: String,
    files: Vec<(String, PathBuf)>,
}

impl BuildContext {
    /// The context dir, to pass to `docker build`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Content of [`MARKER_PATH`]: what the image's default command prints.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// `(path in the image, path on the host)` of each data file.
    pub fn data_files(&self) -> &[(String, PathBuf)] {
        &self.files
    }

    /// Number of layers the image has (busybox, data files, marker).
    pub fn layer_count(&self) -> usize {
        self.files.len() + 2
    }
}

/// A seed unique per call and per process.
fn unique_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let seed = nanos ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(17);
    seed | 1 // xorshift must not start at 0
}

/// Writes `size` pseudo-random bytes to `path`, advancing `state`.
fn write_random(path: &Path, size: u64, state: &mut u64) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut chunk = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    out.flush()
}
