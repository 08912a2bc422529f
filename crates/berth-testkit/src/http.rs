//! A tiny blocking HTTP/1.0 probe, enough to see whether a server answers.
//! Tests that need a real client use one; the harness needs only a status.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Status code of `GET path` on `addr`, or `None` if nothing answered
/// within about two seconds.
pub fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]).ok()? {
            0 => break,
            n => len += n,
        }
    }
    // "HTTP/1.1 200 OK"
    std::str::from_utf8(&head[..len]).ok()?.split_whitespace().nth(1)?.parse().ok()
}
