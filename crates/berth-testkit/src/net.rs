//! Loopback ports: never fixed, always picked by the kernel.

use std::net::{SocketAddr, TcpListener};

use crate::Result;

/// A port on 127.0.0.1 that was free a moment ago: bind port 0, read the
/// port the kernel chose, release it. For servers (like Distribution) that
/// cannot bind port 0 and report it; small race, acceptable in tests.
pub fn free_loopback_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener.local_addr().map_err(|e| e.to_string())
}
