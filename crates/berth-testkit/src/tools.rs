//! Locating the external tools the tests drive. A missing tool is an error
//! naming the Debian package that provides it (scripts/test installs them).

use std::path::{Path, PathBuf};

use crate::Result;

/// Full path of `program` on `PATH`, or an error naming `package`.
pub fn require(program: &str, package: &str) -> Result<PathBuf> {
    which(program).ok_or_else(|| {
        format!("`{program}` not found on PATH: install Debian package `{package}` (./scripts/test does)")
    })
}

/// Full path of `program` on `PATH`, if any.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// True if `path` is an ELF executable without a `PT_INTERP` program header,
/// i.e. statically linked and runnable in a `FROM scratch` image.
pub fn is_static_elf(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let u16_at = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |o: usize| bytes.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let u64_at = |o: usize| bytes.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    // 64-bit little-endian ELF only: that is what runs on this machine.
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Err(format!("{} is not a 64-bit little-endian ELF file", path.display()));
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return Err(format!("{}: truncated ELF header", path.display()));
    };
    const PT_INTERP: u32 = 3;
    Ok((0..phnum).all(|i| u32_at(phoff + i * phentsize) != Some(PT_INTERP)))
}

/// Runs `skopeo ARGS` (bounded to five minutes); its output whatever the exit code.
pub fn skopeo(args: &[&str]) -> Result<crate::CommandOutput> {
    let mut cmd = std::process::Command::new(require("skopeo", "skopeo")?);
    cmd.args(args);
    crate::run_bounded(&mut cmd, std::time::Duration::from_secs(300))
}
