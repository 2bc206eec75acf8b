//! Just enough HTTP/1.1 for a load generator: a request, the response head
//! and a push-based body decoder (chunked, by length, or until close), so
//! blocking threads and tokio tasks share one parser.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

/// A GET request for `path` with extra `headers`.
pub fn request(path: &str, headers: &[(&str, String)]) -> Vec<u8> {
    // A loopback name: the server answers only those on a loopback bind
    // (its DNS-rebinding check).
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// The status and body framing of a response.
pub struct Head {
    pub status: u16,
    pub body: Body,
}

/// Parses a response head at the start of `buf`; `None` while it is incomplete.
/// Returns the head and how many bytes it took.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>> {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            bail!("response head over 64 KiB");
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).context("bad status line")?;
    let mut mode = Mode::Close;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
            mode = Mode::Chunked(Chunk::Size { n: 0, ext: false });
        } else if name == "content-length" && !matches!(mode, Mode::Chunked(_)) {
            mode = Mode::Length(value.parse().context("bad content-length")?);
        }
    }
    // 204 and 304 have no body whatever the headers say.
    if status == 204 || status == 304 {
        mode = Mode::Length(0);
    }
    let done = matches!(mode, Mode::Length(0));
    Ok(Some((Head { status, body: Body { mode, done } }, end + 4)))
}

/// Decodes a response body from raw socket bytes.
pub struct Body {
    mode: Mode,
    done: bool,
}

enum Mode {
    Chunked(Chunk),
    Length(u64),
    Close,
}

enum Chunk {
    Size { n: u64, ext: bool },
    Data(u64),
    DataEnd,
    Trailer { blank: bool },
}

impl Body {
    pub fn done(&self) -> bool {
        self.done
    }

    /// Feeds raw bytes; decoded body bytes go to `sink`. Bytes after the end
    /// of the body (a pipelined next response) are ignored.
    pub fn feed(&mut self, mut input: &[u8], sink: &mut impl FnMut(&[u8])) -> Result<()> {
        while !input.is_empty() && !self.done {
            match &mut self.mode {
                Mode::Close => {
                    sink(input);
                    return Ok(());
                }
                Mode::Length(left) => {
                    let k = (*left).min(input.len() as u64) as usize;
                    sink(&input[..k]);
                    *left -= k as u64;
                    input = &input[k..];
                    self.done = *left == 0;
                }
                Mode::Chunked(state) => match state {
                    Chunk::Data(left) => {
                        let k = (*left).min(input.len() as u64) as usize;
                        sink(&input[..k]);
                        *left -= k as u64;
                        input = &input[k..];
                        if *left == 0 {
                            *state = Chunk::DataEnd;
                        }
                    }
                    _ => {
                        let b = input[0];
                        input = &input[1..];
                        match state {
                            Chunk::Size { n, ext } => match b {
                                b'\n' if *n == 0 => *state = Chunk::Trailer { blank: true },
                                b'\n' => *state = Chunk::Data(*n),
                                b'\r' => {}
                                b';' => *ext = true,
                                _ if *ext => {}
                                _ => {
                                    let d = (b as char).to_digit(16).context("bad chunk size")?;
                                    *n = n.checked_mul(16).context("chunk size overflow")? + u64::from(d);
                                }
                            },
                            Chunk::DataEnd => match b {
                                b'\r' => {}
                                b'\n' => *state = Chunk::Size { n: 0, ext: false },
                                _ => bail!("no CRLF after chunk data"),
                            },
                            Chunk::Trailer { blank } => match b {
                                b'\r' => {}
                                b'\n' if *blank => self.done = true,
                                b'\n' => *blank = true,
                                _ => *blank = false,
                            },
                            Chunk::Data(_) => unreachable!(),
                        }
                    }
                },
            }
        }
        Ok(())
    }

    /// The connection closed: complete only if the body ran until close.
    pub fn eof(&mut self) -> bool {
        if matches!(self.mode, Mode::Close) {
            self.done = true;
        }
        self.done
    }
}

/// Finds a needle in a stream that arrives in pieces.
pub struct Finder {
    needle: &'static [u8],
    tail: Vec<u8>,
}

impl Finder {
    pub fn new(needle: &'static [u8]) -> Finder {
        Finder { needle, tail: Vec::new() }
    }

    /// The offset in `piece` just past the first match, if the needle ends in it.
    pub fn find(&mut self, piece: &[u8]) -> Option<usize> {
        let k = self.needle.len() - 1;
        if !self.tail.is_empty() {
            // A match straddling the previous piece and this one.
            let mut joined = self.tail.clone();
            joined.extend_from_slice(&piece[..piece.len().min(k)]);
            if let Some(p) = memchr::memmem::find(&joined, self.needle) {
                return Some(p + self.needle.len() - self.tail.len());
            }
        }
        if let Some(p) = memchr::memmem::find(piece, self.needle) {
            return Some(p + self.needle.len());
        }
        if piece.len() >= k {
            self.tail = piece[piece.len() - k..].to_vec();
        } else {
            self.tail.extend_from_slice(piece);
            let drop = self.tail.len().saturating_sub(k);
            self.tail.drain(..drop);
        }
        None
    }
}

/// A blocking response being read.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pending: Vec<u8>,
    pub status: u16,
    body: Body,
    /// Bytes read from the socket, head included.
    pub wire: u64,
}

impl Conn {
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, String)]) -> Result<Conn> {
        let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.write_all(&request(path, headers))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut head = Vec::new();
        let mut wire = 0u64;
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                bail!("connection closed before the response head");
            }
            wire += n as u64;
            head.extend_from_slice(&buf[..n]);
            if let Some((h, used)) = parse_head(&head)? {
                let pending = head[used..].to_vec();
                return Ok(Conn { stream, buf, pending, status: h.status, body: h.body, wire });
            }
        }
    }

    pub fn set_read_timeout(&self, t: Duration) -> Result<()> {
        Ok(self.stream.set_read_timeout(Some(t))?)
    }

    /// One read's worth of body into `sink`. Returns `Ok(false)` once the body
    /// is complete; a read timeout returns `Ok(true)` with nothing read.
    pub fn pump(&mut self, sink: &mut impl FnMut(&[u8])) -> Result<bool> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.body.feed(&pending, sink)?;
            return Ok(!self.body.done());
        }
        if self.body.done() {
            return Ok(false);
        }
        match self.stream.read(&mut self.buf) {
            Ok(0) => {
                if self.body.eof() {
                    Ok(false)
                } else {
                    bail!("connection closed mid-body")
                }
            }
            Ok(n) => {
                self.wire += n as u64;
                self.body.feed(&self.buf[..n], sink)?;
                Ok(!self.body.done())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A whole small response: status and body.
pub fn get(addr: SocketAddr, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut conn = Conn::open(addr, path, &[])?;
    let mut body = Vec::new();
    while conn.pump(&mut |b| body.extend_from_slice(b))? {}
    Ok((conn.status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_body_in_any_pieces() {
        let raw =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=1\r\nhello\r\nb\r\n 0123456789\r\n0\r\n\r\nNEXT";
        let (head, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 200);
        for split in 1..raw.len() - used {
            let mut body = Body { mode: Mode::Chunked(Chunk::Size { n: 0, ext: false }), done: false };
            let mut out = Vec::new();
            for piece in raw[used..].chunks(split) {
                body.feed(piece, &mut |b| out.extend_from_slice(b)).unwrap();
            }
            assert!(body.done());
            assert_eq!(out, b"hello 0123456789");
        }
    }

    #[test]
    fn finder_across_pieces() {
        let text = b"xxid: 1\nevent: chunk\ndata";
        for split in 1..text.len() {
            let mut f = Finder::new(b"event: chunk");
            let mut found = None;
            let mut base = 0;
            for piece in text.chunks(split) {
                if let Some(p) = f.find(piece) {
                    found = Some(base + p);
                    break;
                }
                base += piece.len();
            }
            assert_eq!(found, Some(20), "split {split}");
        }
    }
}
