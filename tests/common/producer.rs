//! A producer of a live text over a raw socket: one `POST /api/publish`
//! whose chunked body is written piece by piece while the test watches, and
//! that can end cleanly or be cut like a crashed producer's connection.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// `u:p`, the credentials the live tests' servers accept.
pub const BASIC: &str = "Basic dTpw";

pub struct Producer {
    stream: TcpStream,
}

impl Producer {
    /// Starts `POST /api/publish?QUERY` (`file=...&offset=...`).
    pub fn start(addr: SocketAddr, query: &str) -> Producer {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /api/publish?{query} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {BASIC}\r\n\
             Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        Producer { stream }
    }

    /// Sends `bytes` as one piece of the body.
    pub fn send(&mut self, bytes: &[u8]) {
        let piece = [format!("{:x}\r\n", bytes.len()).as_bytes(), bytes, b"\r\n"].concat();
        self.stream.write_all(&piece).unwrap();
    }

    /// Ends the body and returns the answer's status and JSON.
    pub fn end(mut self) -> (u16, serde_json::Value) {
        self.stream.write_all(b"0\r\n\r\n").unwrap();
        answer(&mut self.stream)
    }

    /// Drops the connection mid-body, as a killed producer's kernel does.
    pub fn cut(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Publishes `body` in one request; the answer's status and JSON.
pub fn publish(addr: SocketAddr, query: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut p = Producer::start(addr, query);
    if !body.is_empty() {
        p.send(body);
    }
    p.end()
}

fn answer(stream: &mut TcpStream) -> (u16, serde_json::Value) {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}
