//! The chunk stream: turns a plan ("these chunks of this file, with or
//! without a `meta` event, at this rate") into an SSE response body.
//!
//! A producer task prepares events and hands them to the response through a
//! channel with room for one event. Reading, verifying and base64-encoding a
//! chunk happens on the blocking pool, one chunk ahead of the one being
//! written, so disk, CPU and socket overlap while a connection holds at most
//! three chunks: one being written, one queued, one being prepared. A client
//! that reads slowly fills the channel and the producer simply waits, so it
//! slows its own stream and never grows the server's memory.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use tokio::sync::mpsc;

use crate::events::{self, Payload};
use crate::index::{self, FileIndex, Kind, Stamp};
use crate::store::IndexStore;

/// Everything a stream needs, decided and validated by the route handler.
pub struct Plan {
    pub name: String,
    pub path: PathBuf,
    pub index: Arc<FileIndex>,
    /// The chunks to send, in order; never empty (an empty plan is a 204).
    pub chunks: Vec<Range<u64>>,
    /// The `meta` event's data, sent after `retry` on `/events` only.
    pub meta: Option<String>,
    /// Payload bytes per second, if paced.
    pub rate: Option<u64>,
    pub retry_ms: u64,
    pub keep_alive: Duration,
}

/// Why a stream stopped before its end.
enum Stop {
    /// The client went away: normal for SSE, logged at debug.
    ClientGone,
    /// The file no longer matches its index.
    Changed(&'static str),
    Io(std::io::Error),
}

/// The streaming response for a plan. The producer is spawned here and ends
/// by itself when the stream is done or the client disconnects.
pub fn respond(plan: Plan, store: Arc<IndexStore>) -> HttpResponse {
    let (tx, mut rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(produce(plan, store, tx));
    let body =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok::<_, std::convert::Infallible>)));
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache, no-transform"))
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .streaming(body)
}

/// `retry:` with per-connection jitter in `[base, 1.5 × base]`, so clients
/// dropped together by a restart do not all come back in the same instant.
fn jittered(base: u64) -> u64 {
    base + fastrand::u64(0..=base / 2)
}

async fn produce(plan: Plan, store: Arc<IndexStore>, tx: mpsc::Sender<Bytes>) {
    let started = Instant::now();
    let mut sent = Sent::default();
    let outcome = run(&plan, &tx, &mut sent).await;
    let ms = started.elapsed().as_millis() as u64;
    let (file, chunks, bytes, last) = (&plan.name, sent.chunks, sent.payload, sent.last);
    match outcome {
        Ok(()) => tracing::info!(file, chunks, bytes, ms, "stream finished"),
        Err(Stop::ClientGone) => tracing::debug!(file, chunks, bytes, ms, last, "client disconnected"),
        Err(Stop::Changed(why)) => {
            tracing::warn!(file, why, last, "file changed during a stream");
            if why == "chunk digest differs" {
                store.evict(&plan.path);
            }
            let data = serde_json::json!({
                "code": "changed",
                "error": format!("{file} changed since it was indexed ({why}); fetch the manifest again"),
            });
            let _ = tx.send(events::named("error", &data.to_string()).into()).await;
        }
        Err(Stop::Io(e)) => {
            tracing::error!(file, error = %e, last, "stream failed reading the file");
            let data = serde_json::json!({ "code": "io_error", "error": "the server could not read the file" });
            let _ = tx.send(events::named("error", &data.to_string()).into()).await;
        }
    }
}

#[derive(Default)]
struct Sent {
    chunks: u64,
    payload: u64,
    last: Option<u64>,
}

async fn run(plan: &Plan, tx: &mpsc::Sender<Bytes>, sent: &mut Sent) -> Result<(), Stop> {
    let send = |bytes: Vec<u8>| async move { tx.send(bytes.into()).await.map_err(|_| Stop::ClientGone) };
    send(events::retry(jittered(plan.retry_ms))).await?;
    if let Some(meta) = &plan.meta {
        send(events::named("meta", meta)).await?;
    }

    let path = plan.path.clone();
    let file =
        Arc::new(tokio::task::spawn_blocking(move || File::open(path)).await.map_err(join_error)?.map_err(Stop::Io)?);
    let mut order = plan.chunks.iter().flat_map(|r| r.clone());
    let prepare = |i: u64| {
        let (file, index, path) = (file.clone(), plan.index.clone(), plan.path.clone());
        tokio::task::spawn_blocking(move || prepare_chunk(&file, &index, &path, i))
    };
    let paced_start = Instant::now();
    let mut next = order.next().map(|i| (i, prepare(i)));
    while let Some((i, job)) = next.take() {
        let event = job.await.map_err(join_error)??;
        next = order.next().map(|i| (i, prepare(i)));
        if let Some(rate) = plan.rate {
            let due = paced_start + Duration::from_secs_f64(sent.payload as f64 / rate as f64);
            pace(due, plan.keep_alive, tx).await?;
        }
        send(event).await?;
        sent.chunks += 1;
        sent.payload += plan.index.span(i).1 as u64;
        sent.last = Some(i);
    }
    let end = serde_json::json!({ "chunks": plan.index.chunks(), "root": index::hex(&plan.index.root) });
    send(events::named("end", &end.to_string())).await
}

/// Waits until `due`, sending a keep-alive comment for every `keep_alive` of
/// silence so proxies and clients do not take a slow stream for a dead one.
async fn pace(due: Instant, keep_alive: Duration, tx: &mpsc::Sender<Bytes>) -> Result<(), Stop> {
    loop {
        let now = Instant::now();
        if now >= due {
            return Ok(());
        }
        if due - now <= keep_alive {
            tokio::time::sleep_until(due.into()).await;
            return Ok(());
        }
        tokio::time::sleep(keep_alive).await;
        tx.send(Bytes::from_static(events::KEEP_ALIVE)).await.map_err(|_| Stop::ClientGone)?;
    }
}

/// Reads chunk `i`, checks that the file still is the indexed version, and
/// frames the event. Runs on the blocking pool.
fn prepare_chunk(file: &File, index: &FileIndex, path: &std::path::Path, i: u64) -> Result<Vec<u8>, Stop> {
    let meta = std::fs::metadata(path).map_err(|_| Stop::Changed("file is gone"))?;
    if Stamp::of(&meta) != index.stamp {
        return Err(Stop::Changed("size or modification time differs"));
    }
    let (off, len) = index.span(i);
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, off).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Stop::Changed("file is shorter"),
        _ => Stop::Io(e),
    })?;
    let hash = &index.hashes[i as usize];
    if index::sha256(&buf) != *hash {
        return Err(Stop::Changed("chunk digest differs"));
    }
    let payload = match index.kind {
        Kind::Binary => Payload::Binary(&buf),
        Kind::Text => Payload::Text(std::str::from_utf8(&buf).map_err(|_| Stop::Changed("text is no longer UTF-8"))?),
    };
    let mut out = Vec::with_capacity(len * 4 / 3 + 200);
    events::chunk(&mut out, i, off, hash, payload);
    Ok(out)
}

fn join_error(e: tokio::task::JoinError) -> Stop {
    Stop::Io(std::io::Error::other(e))
}
