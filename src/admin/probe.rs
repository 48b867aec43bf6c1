//! `sluice probe live|ready`: asks a running instance's HTTP admin endpoint for
//! `/health/live` or `/health/ready` and exits 0 on 200. For container HEALTHCHECKs and exec
//! probes in images that carry no curl or wget (the image is the binary and its libraries).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The HTTP status of `GET path` on `addr` (a wildcard listen address such as `0.0.0.0:9090`
/// is asked on loopback), and the body's first line.
pub fn probe(addr: &str, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let target = loopback_for(addr)?;
    let mut s = TcpStream::connect_timeout(&target, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // A reset after the answer arrived (a server closing with the request's tail unread) is
    // still an answer.
    while response.len() < 64 * 1024 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(_) if !response.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").lines().next().unwrap_or("").to_string();
    Ok((status, body))
}

fn loopback_for(addr: &str) -> std::io::Result<SocketAddr> {
    let mut a = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_probed_on_loopback() {
        assert_eq!(loopback_for("0.0.0.0:9090").unwrap(), "127.0.0.1:9090".parse().unwrap());
        assert_eq!(loopback_for("[::]:9090").unwrap(), "[::1]:9090".parse().unwrap());
        assert_eq!(loopback_for("127.0.0.2:1").unwrap(), "127.0.0.2:1".parse().unwrap());
    }

    #[test]
    fn a_status_line_and_body_are_read() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !got.ends_with(b"\r\n\r\n") {
                let n = c.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got.starts_with(b"GET /health/ready HTTP/1.0\r\n"));
            c.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 9\r\n\r\ndraining\n").unwrap();
        });
        let (status, body) = probe(&addr, "/health/ready", Duration::from_secs(2)).unwrap();
        t.join().unwrap();
        assert_eq!((status, body.as_str()), (503, "draining"));
    }
}
