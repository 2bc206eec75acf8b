//! Section 8, live text: how long a sealed chunk takes to reach 1 and many
//! viewers (median and p99), what a viewer costs the server (RSS), and how
//! fast a producer can publish.
//!
//! The server runs with `--seal-ms 1`, so a piece is sealed a millisecond
//! after it arrives, and the producer writes one piece every 100 ms (each
//! its own chunk): the time from the producer's write to a viewer's read is
//! the seal-to-viewer latency plus at most that millisecond. Viewers are
//! raw sockets on one tokio thread, reading `/events` and noting when each
//! chunk event ends.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::http::{self, Finder};

/// `u:p`, the bench server's `--auth`.
pub const BASIC: &str = "Basic dTpw";

/// A producer's open `POST /api/publish` with a chunked body.
pub struct Producer {
    stream: TcpStream,
}

impl Producer {
    pub fn start(addr: SocketAddr, name: &str) -> Result<Producer> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        write!(
            stream,
            "POST /api/publish?file={name}&end=1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: {BASIC}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )?;
        Ok(Producer { stream })
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        write!(self.stream, "{:x}\r\n", bytes.len())?;
        self.stream.write_all(bytes)?;
        self.stream.write_all(b"\r\n")?;
        Ok(())
    }

    /// Ends the body; the server's status (read to the end: the request
    /// asked the server to close the connection after answering).
    pub fn end(mut self) -> Result<u16> {
        self.stream.write_all(b"0\r\n\r\n")?;
        let mut out = Vec::new();
        self.stream.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out);
        Ok(text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0))
    }
}

pub struct Latency {
    pub median: Duration,
    pub p99: Duration,
    pub samples: usize,
    /// Server RSS growth per viewer, KiB.
    pub rss_per_viewer_kib: f64,
    pub failed: usize,
}

/// `viewers` viewers of a publication `name` that the producer extends
/// with `pieces` pieces, one every 100 ms; the latency of every piece to
/// every viewer.
pub fn latency(addr: SocketAddr, name: &str, viewers: usize, pieces: usize, rss: impl Fn() -> u64) -> Result<Latency> {
    let mut producer = Producer::start(addr, name)?;
    producer.send(b"the first words ")?;
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = rss();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let path = format!("/events?file={name}");
    let req = Arc::new(http::request(&path, &[("Authorization", BASIC.to_owned())]));
    // Per viewer: when each chunk event was complete (index = chunk id).
    let arrivals: Arc<Mutex<Vec<Vec<Instant>>>> = Arc::new(Mutex::new(Vec::new()));
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let producer_thread = {
        let sent = sent.clone();
        std::thread::spawn(move || -> Result<u16> {
            // Waits until every viewer is in, and the RSS read.
            let _ = ready_rx.recv();
            for k in 0..pieces {
                let piece = format!("word {k} ");
                sent.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
                producer.send(piece.as_bytes())?;
                std::thread::sleep(Duration::from_millis(100));
            }
            producer.end()
        })
    };
    let (failed, rss_in) = rt.block_on(async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let opening = Arc::new(tokio::sync::Semaphore::new(128));
        let mut tasks = Vec::new();
        let (in_tx, mut in_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        for _ in 0..viewers {
            let (req, arrivals, opening, in_tx) = (req.clone(), arrivals.clone(), opening.clone(), in_tx.clone());
            tasks.push(tokio::spawn(async move {
                let mut permit = opening.acquire_owned().await.ok();
                let run = async {
                    let mut s = tokio::net::TcpStream::connect(addr).await?;
                    s.write_all(&req).await?;
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut head = Vec::new();
                    let mut body: Option<http::Body> = None;
                    let (mut chunk, mut blank) = (Finder::new(b"event: chunk"), Finder::new(b"\n\n"));
                    let mut in_chunk = false;
                    let mut mine = Vec::new();
                    let mut told = false;
                    loop {
                        let k = s.read(&mut buf).await?;
                        if k == 0 {
                            break;
                        }
                        let now = Instant::now();
                        let mut data = buf[..k].to_vec();
                        if body.is_none() {
                            head.extend_from_slice(&data);
                            let Some((h, used)) = http::parse_head(&head)? else { continue };
                            if h.status != 200 {
                                bail!("status {}", h.status);
                            }
                            body = Some(h.body);
                            data = head[used..].to_vec();
                        }
                        let b = body.as_mut().expect("set above");
                        b.feed(&data, &mut |piece: &[u8]| {
                            let mut rest = piece;
                            loop {
                                if !in_chunk {
                                    match chunk.find(rest) {
                                        Some(p) => {
                                            in_chunk = true;
                                            rest = &rest[p..];
                                        }
                                        None => return,
                                    }
                                }
                                match blank.find(rest) {
                                    Some(p) => {
                                        in_chunk = false;
                                        mine.push(now);
                                        rest = &rest[p..];
                                    }
                                    None => return,
                                }
                            }
                        })?;
                        if !told && !mine.is_empty() {
                            told = true;
                            permit.take();
                            let _ = in_tx.send(true);
                        }
                        if b.done() {
                            break;
                        }
                    }
                    arrivals.lock().unwrap_or_else(|p| p.into_inner()).push(mine);
                    anyhow::Ok(())
                };
                match tokio::time::timeout(Duration::from_secs(120), run).await {
                    Ok(Ok(())) => true,
                    _ => {
                        let _ = in_tx.send(false);
                        false
                    }
                }
            }));
        }
        drop(in_tx);
        // Every viewer has its first chunk (or failed): measure, then write.
        let mut seen = 0;
        while seen < viewers {
            if in_rx.recv().await.is_none() {
                break;
            }
            seen += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_in = rss();
        let _ = ready_tx.send(());
        let mut failed = 0;
        for t in tasks {
            if !t.await.unwrap_or(false) {
                failed += 1;
            }
        }
        (failed, rss_in)
    });
    let status = producer_thread.join().map_err(|_| anyhow::anyhow!("the producer panicked"))??;
    if status != 200 {
        bail!("publishing ended with status {status}");
    }
    // Chunk 0 was sealed before the viewers came; piece k is chunk k + 1.
    let sent = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut samples: Vec<Duration> = Vec::new();
    for mine in arrivals.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        for (k, at) in sent.iter().enumerate() {
            if let Some(got) = mine.get(k + 1) {
                samples.push(got.saturating_duration_since(*at));
            }
        }
    }
    if samples.is_empty() {
        bail!("no viewer received a piece");
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok(Latency {
        median: at(0.5),
        p99: at(0.99),
        samples: samples.len(),
        rss_per_viewer_kib: rss_in.saturating_sub(rss_before) as f64 / viewers.max(1) as f64,
        failed,
    })
}

/// Publishes `total` bytes of text as fast as one connection sends them;
/// the wall time and the server's CPU seconds for it.
pub fn throughput(addr: SocketAddr, name: &str, total: u64, cpu: impl Fn() -> f64) -> Result<(Duration, f64)> {
    let line = "The quick brown fox jumps over the lazy dog; café, 数据, 🚀.\n".repeat(1024);
    let cpu0 = cpu();
    let started = Instant::now();
    let mut producer = Producer::start(addr, name)?;
    let mut sent = 0u64;
    while sent < total {
        producer.send(line.as_bytes())?;
        sent += line.len() as u64;
    }
    let status = producer.end()?;
    if status != 200 {
        bail!("publishing ended with status {status}");
    }
    Ok((started.elapsed(), cpu() - cpu0))
}
