//! Tiny blocking plain-HTTP helpers on std only: [`get_status`] to see
//! whether a server answers, and [`request`] for the raw API checks the
//! end-to-end tests make beside the real clients (referrers, tags/list,
//! the answer to a DELETE). The clients under test are the real tools.

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

/// A response of [`request`]: status, headers (names lowercased) and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if it came chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status, headers and body, for failure messages.
    pub fn describe(&self) -> String {
        let headers: Vec<String> = self.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("{}\n{}\n\n{}", self.status, headers.join("\n"), self.text())
    }
}

/// One plain-HTTP request to `addr` (HTTP/1.1, `Connection: close`), with a
/// 60-second bound on each read and write. `path` is the request target
/// (path and query). Enough for the API checks the tests make beside the
/// real clients: the referrers API, tags, deletes, chunked uploads.
///
/// The request carries exactly `headers` plus `Host`, `Connection` and (for
/// a body or a POST, PUT or PATCH) `Content-Length`: no `Accept` unless
/// asked for. Nothing is retried. A server may answer (an error) and close
/// before reading the whole body: the write then fails, but a complete
/// answer read afterwards is still returned.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let err = |e: std::io::Error| format!("{method} http://{addr}{path}: {e}");
    let timeout = Duration::from_secs(60);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(err)?;
    stream.set_read_timeout(Some(timeout)).map_err(err)?;
    stream.set_write_timeout(Some(timeout)).map_err(err)?;
    stream.set_nodelay(true).map_err(err)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let sent = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).and_then(|()| stream.flush());
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    match parse_response(&raw, method == "HEAD") {
        Ok(r) => Ok(r),
        Err(e) => {
            sent.map_err(err)?;
            read.map_err(err)?;
            Err(format!("{method} http://{addr}{path}: {e}"))
        }
    }
}

fn parse_response(raw: &[u8], head_only: bool) -> Result<Response, String> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of headers in the response")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head_only || status == 204 || status == 304 {
        Vec::new()
    } else if chunked {
        dechunk(rest)?
    } else {
        let declared = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
        match declared {
            Some(n) if rest.len() < n => return Err(format!("body cut short: {} of {n} bytes", rest.len())),
            Some(n) => rest[..n].to_vec(),
            None => rest.to_vec(),
        }
    };
    Ok(Response { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size = std::str::from_utf8(&data[..eol]).ok().and_then(|s| {
            let s = s.split(';').next().unwrap_or_default().trim();
            usize::from_str_radix(s, 16).ok()
        });
        let size = size.ok_or("bad chunk size")?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("truncated chunk")?);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi";
        let r = super::parse_response(plain, false).unwrap();
        assert_eq!((r.status, r.header("content-type"), r.text().as_str()), (200, Some("text/plain"), "hi"));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = super::parse_response(chunked, false).unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "abcde"));
    }

    #[test]
    fn body_follows_content_length_and_status() {
        let r = super::parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabcdef", false).unwrap();
        assert_eq!((r.status, r.body.as_slice(), r.header("x-a")), (200, &b"abc"[..], Some("b")));
        let r = super::parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true).unwrap();
        assert!(r.body.is_empty());
        let r = super::parse_response(b"HTTP/1.1 204 No Content\r\n\r\nstray", false).unwrap();
        assert!(r.body.is_empty());
        assert!(super::parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false).is_err());
    }
}
