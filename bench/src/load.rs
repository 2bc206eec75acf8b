//! The load generators: a byte-counting SSE reader, verifying readers (many
//! at once, on threads), resume probes, and thousands of slow streams on one
//! tokio thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::http::{self, Conn, Finder};

pub use chunkcast::protocol::Hash;

/// The chunk digests of a file, from its manifest (read and checked by the
/// protocol's own [`chunkcast::protocol::Manifest`]).
pub fn manifest_hashes(addr: SocketAddr, name: &str) -> Result<Vec<Hash>> {
    let (status, body) = http::get(addr, &format!("/api/manifest?file={name}"))?;
    if status != 200 {
        bail!("manifest of {name}: status {status}");
    }
    Ok(chunkcast::protocol::Manifest::parse(&body)?.digests)
}

/// What one byte-counting read of a stream saw.
pub struct Plain {
    pub wall: Duration,
    pub wire: u64,
}

/// Reads a whole SSE response, counting bytes and nothing else, so the
/// client costs almost nothing next to the server.
pub fn plain_stream(addr: SocketAddr, path: &str) -> Result<Plain> {
    let started = Instant::now();
    let mut conn = Conn::open(addr, path, &[])?;
    if conn.status != 200 {
        bail!("{path}: status {}", conn.status);
    }
    let mut body = 0u64;
    let mut last = Vec::with_capacity(512);
    while conn.pump(&mut |b: &[u8]| {
        body += b.len() as u64;
        last.extend_from_slice(&b[b.len().saturating_sub(256)..]);
        let drop = last.len().saturating_sub(256);
        last.drain(..drop);
    })? {}
    if memchr::memmem::find(&last, b"event: end").is_none() {
        bail!("{path}: the stream did not finish with `end`");
    }
    if body == 0 {
        bail!("{path}: empty body");
    }
    Ok(Plain { wall: started.elapsed(), wire: conn.wire })
}

/// Parses SSE and verifies every binary chunk event against the manifest,
/// as a client must: decode the base64, hash it, compare.
pub struct Verifier<'a> {
    hashes: &'a [Hash],
    buf: Vec<u8>,
    scan: usize,
    decoded: Vec<u8>,
    pub verified: u64,
    pub chunks: u64,
    pub ended: bool,
}

impl<'a> Verifier<'a> {
    pub fn new(hashes: &'a [Hash]) -> Self {
        Verifier { hashes, buf: Vec::new(), scan: 0, decoded: Vec::new(), verified: 0, chunks: 0, ended: false }
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(p) = memchr::memmem::find(&self.buf[self.scan..], b"\n\n") {
            let end = self.scan + p;
            let event = std::mem::take(&mut self.buf);
            let r = self.event(&event[start..end]);
            self.buf = event;
            r?;
            start = end + 2;
            self.scan = start;
        }
        self.buf.drain(..start);
        self.scan = self.buf.len().saturating_sub(1);
        Ok(())
    }

    fn event(&mut self, ev: &[u8]) -> Result<()> {
        let has = |s: &[u8]| memchr::memmem::find(ev, s).is_some();
        if has(b"event: chunk\n") {
            let i = field(ev, b"\"i\":").context("chunk without i")?;
            let i: usize = std::str::from_utf8(&ev[i..])?
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or_default()
                .parse()?;
            let b = field(ev, b"\"b64\":\"").context("chunk without b64 (text is not verified here)")?;
            let len = memchr::memchr(b'"', &ev[b..]).context("unterminated b64")?;
            let b64 = &ev[b..b + len];
            let n = base64_simd::STANDARD.decoded_length(b64).map_err(|e| anyhow::anyhow!("{e}"))?;
            self.decoded.resize(n, 0);
            let bytes = base64_simd::STANDARD
                .decode(b64, base64_simd::Out::from_slice(&mut self.decoded))
                .map_err(|e| anyhow::anyhow!("chunk {i}: {e}"))?;
            let digest: Hash = Sha256::digest(&*bytes).into();
            if self.hashes.get(i) != Some(&digest) {
                bail!("chunk {i} does not match the manifest");
            }
            self.verified += n as u64;
            self.chunks += 1;
        } else if has(b"event: end\n") {
            self.ended = true;
        } else if has(b"event: error\n") {
            bail!("server error event: {}", String::from_utf8_lossy(ev));
        }
        Ok(())
    }
}

fn field(ev: &[u8], name: &[u8]) -> Option<usize> {
    memchr::memmem::find(ev, name).map(|p| p + name.len())
}

/// The outcome of many concurrent verifying downloads.
pub struct Concurrent {
    pub elapsed: Duration,
    pub verified: u64,
    pub complete: usize,
    pub failed: Vec<String>,
}

/// `n` threads, each downloading `path` through `/events` and verifying
/// every chunk, until they finish or `limit` passes.
pub fn concurrent_verify(addr: SocketAddr, path: &str, hashes: &[Hash], n: usize, limit: Duration) -> Concurrent {
    let total = AtomicU64::new(0);
    let started = Instant::now();
    let deadline = started + limit;
    let outcomes: Vec<Result<bool>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let total = &total;
                s.spawn(move || -> Result<bool> {
                    let mut conn = Conn::open(addr, path, &[])?;
                    if conn.status != 200 {
                        bail!("status {}", conn.status);
                    }
                    conn.set_read_timeout(Duration::from_millis(200))?;
                    let mut v = Verifier::new(hashes);
                    let mut err = None;
                    while Instant::now() < deadline {
                        let before = v.verified;
                        let more = conn.pump(&mut |b: &[u8]| {
                            if err.is_none() {
                                err = v.feed(b).err();
                            }
                        })?;
                        total.fetch_add(v.verified - before, Ordering::Relaxed);
                        if let Some(e) = err.take() {
                            return Err(e);
                        }
                        if !more {
                            if !v.ended {
                                bail!("stream ended without `end`");
                            }
                            return Ok(true);
                        }
                    }
                    Ok(false)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))).collect()
    });
    let elapsed = started.elapsed().min(limit);
    let complete = outcomes.iter().filter(|o| matches!(o, Ok(true))).count();
    let failed = outcomes.into_iter().filter_map(|o| o.err().map(|e| format!("{e:#}"))).collect();
    Concurrent { elapsed, verified: total.into_inner(), complete, failed }
}

/// One resume probe: connect, ask, and time the first `chunk` event's first
/// bytes and its end (the blank line that lets a client dispatch it), and
/// the whole response.
pub struct Probe {
    pub first_bytes: Duration,
    pub first_event: Duration,
    pub total: Duration,
}

pub fn probe(addr: SocketAddr, path: &str, headers: &[(&str, String)], read_all: bool) -> Result<Probe> {
    let started = Instant::now();
    let mut conn = Conn::open(addr, path, headers)?;
    if conn.status != 200 {
        bail!("{path}: status {}", conn.status);
    }
    let (mut chunk, mut blank) = (Finder::new(b"event: chunk"), Finder::new(b"\n\n"));
    let (mut first_bytes, mut first_event) = (None, None);
    loop {
        let more = conn.pump(&mut |b: &[u8]| {
            let mut rest = b;
            if first_bytes.is_none() {
                match chunk.find(rest) {
                    Some(p) => {
                        first_bytes = Some(started.elapsed());
                        rest = &rest[p..];
                    }
                    None => return,
                }
            }
            if first_event.is_none() && blank.find(rest).is_some() {
                first_event = Some(started.elapsed());
            }
        })?;
        if !more || (first_event.is_some() && !read_all) {
            break;
        }
    }
    match (first_bytes, first_event) {
        (Some(first_bytes), Some(first_event)) => Ok(Probe { first_bytes, first_event, total: started.elapsed() }),
        _ => bail!("{path}: no chunk event"),
    }
}

/// The outcome of holding many slow streams open.
pub struct Slow {
    pub opened: usize,
    pub failed_open: usize,
    pub failed_held: usize,
    pub rss_before_kib: u64,
    pub rss_open_kib: u64,
    pub rss_end_kib: u64,
    pub open_time: Duration,
    pub first_error: Option<String>,
}

/// Opens `n` paced streams of `path` (the server sends the first chunk at
/// once, then waits), reads what arrives, and holds them for `hold`.
/// `rss` reads the server's RSS in KiB. All on one current-thread runtime:
/// the work per connection is tiny once its first chunk is in.
pub fn slow_streams(addr: SocketAddr, path: &str, n: usize, hold: Duration, rss: impl Fn() -> u64) -> Result<Slow> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        // Open at most this many at once, so the listen backlog never overflows
        // (an overflow is a SYN retransmit a second later, not a failure).
        let opening = Arc::new(tokio::sync::Semaphore::new(128));
        let (release, released) = tokio::sync::watch::channel(false);
        let opened = Arc::new(AtomicUsize::new(0));
        let failed_open = Arc::new(AtomicUsize::new(0));
        let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
        let req = Arc::new(http::request(path, &[]));
        let rss_before_kib = rss();
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (opening, mut released, opened, failed_open, first_error, req) = (
                opening.clone(),
                released.clone(),
                opened.clone(),
                failed_open.clone(),
                first_error.clone(),
                req.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let note = |e: String| {
                    first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                };
                // Phase 1: connect, ask, and read up to the end of the first chunk event.
                let permit = opening.acquire_owned().await.ok();
                let open = async {
                    let mut s = tokio::net::TcpStream::connect(addr).await?;
                    s.write_all(&req).await?;
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut head = Vec::new();
                    let (mut chunk, mut blank) = (Finder::new(b"event: chunk"), Finder::new(b"\n\n"));
                    let (mut seen_chunk, mut seen_end) = (false, false);
                    let mut body: Option<http::Body> = None;
                    while !seen_end {
                        let k = s.read(&mut buf).await?;
                        if k == 0 {
                            anyhow::bail!("closed while opening");
                        }
                        let mut data = &buf[..k];
                        let mut owned = Vec::new();
                        if body.is_none() {
                            head.extend_from_slice(data);
                            let Some((h, used)) = http::parse_head(&head)? else { continue };
                            if h.status != 200 {
                                anyhow::bail!("status {}", h.status);
                            }
                            body = Some(h.body);
                            owned = head[used..].to_vec();
                            data = &owned;
                        }
                        let b = body.as_mut().expect("set above");
                        b.feed(data, &mut |piece: &[u8]| {
                            let mut rest = piece;
                            if !seen_chunk {
                                match chunk.find(rest) {
                                    Some(p) => {
                                        seen_chunk = true;
                                        rest = &rest[p..];
                                    }
                                    None => return,
                                }
                            }
                            if !seen_end && blank.find(rest).is_some() {
                                seen_end = true;
                            }
                        })?;
                        drop(owned);
                        if b.done() {
                            anyhow::bail!("stream ended while opening");
                        }
                    }
                    anyhow::Ok((s, buf))
                };
                let (mut s, mut buf) = match tokio::time::timeout(Duration::from_secs(60), open).await {
                    Ok(Ok(x)) => x,
                    Ok(Err(e)) => {
                        note(format!("open: {e:#}"));
                        failed_open.fetch_add(1, Ordering::Relaxed);
                        return false;
                    }
                    Err(_) => {
                        note("open: timed out after 60 s".into());
                        failed_open.fetch_add(1, Ordering::Relaxed);
                        return false;
                    }
                };
                drop(permit);
                opened.fetch_add(1, Ordering::Relaxed);
                // Phase 2: hold, reading whatever comes (keep-alive comments).
                loop {
                    tokio::select! {
                        r = s.read(&mut buf) => match r {
                            Ok(0) => { note("held: closed by the server".into()); return false; }
                            Ok(_) => {}
                            Err(e) => { note(format!("held: {e}")); return false; }
                        },
                        _ = released.wait_for(|r| *r) => return true,
                    }
                }
            }));
        }
        while opened.load(Ordering::Relaxed) + failed_open.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let open_time = started.elapsed();
        // Let the server settle (buffers freed after the first chunks went out).
        tokio::time::sleep(Duration::from_secs(1).min(hold)).await;
        let rss_open_kib = rss();
        tokio::time::sleep(hold).await;
        let rss_end_kib = rss();
        let _ = release.send(true);
        let mut held_ok = 0;
        for t in tasks {
            if t.await.unwrap_or(false) {
                held_ok += 1;
            }
        }
        let opened = opened.load(Ordering::Relaxed);
        let first_error = first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(Slow {
            opened,
            failed_open: failed_open.load(Ordering::Relaxed),
            failed_held: opened - held_ok,
            rss_before_kib,
            rss_open_kib,
            rss_end_kib,
            open_time,
            first_error,
        })
    })
}
