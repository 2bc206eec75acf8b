//! The chunk stream: turns a plan ("these chunks of this file, with or
//! without a `meta` event, at this rate") into an SSE response body.
//!
//! The body is a `Stream` that actix polls whenever the socket has room, so
//! a client that reads slowly only slows its own stream, and a connection
//! holds no more than the slice actix is writing.
//!
//! Chunks go out in slices: each event is framed piece by piece (the header,
//! the payload in slices of [`SLICE`] bytes, the tail), read from disk and
//! hashed as it goes. A client only dispatches an event at its closing blank
//! line, so the digest can be checked while the event is on its way: if the
//! last slice does not match the index, the connection is cut before the
//! blank line, the client discards the partial event and resumes.
//!
//! Slices are produced inline on the worker thread: a 48 KiB positional read
//! (from the page cache in the common case), a hash update and a base64
//! encode take tens of microseconds, less than handing the work to another
//! thread and back would cost, and they need no per-connection buffer (the
//! read buffer is per thread).

use std::cell::RefCell;
use std::fs::File;
use std::future::Future;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::fsroot::{FileId, FsRoot};
use crate::index::{self, FileIndex, Kind, Stamp};
use crate::logsafe::Esc;
use crate::protocol::{End, ErrorBody};
use crate::sse;
use crate::store::IndexStore;

/// Payload bytes per slice. A multiple of 3, so base64 slices join without
/// padding; 48 KiB keeps what a connection holds small while a read, a hash
/// update and an encode per slice still amortize their per-call cost.
pub const SLICE: usize = 48 * 1024;

/// Slices of paced streams (`rate`): throughput does not matter there, and
/// actix keeps a connection's write buffer at the size of the largest slice
/// it has written (up to 128 KiB), so small slices keep thousands of slow,
/// mostly idle streams to a few KiB each. With the server's 4 KiB write
/// buffer threshold (see `lib.rs`) one slice fits the buffer actix starts with.
pub const PACED_SLICE: usize = 3 * 1024;

thread_local! {
    /// The read buffer, one per worker thread: slices are produced inline
    /// and never held across an `await`.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SLICE]);
}

/// Everything a stream needs, decided and validated by the route handler.
pub struct Plan {
    pub name: String,
    /// The descriptor the request opened and indexed: the stream reads it
    /// and nothing else, so a rename cannot redirect it.
    pub file: Arc<File>,
    pub id: FileId,
    /// Where the file is, to notice it was replaced or removed (see `Framer`).
    pub fs: Arc<FsRoot>,
    pub rel: String,
    pub index: Arc<FileIndex>,
    /// The chunks to send, in order; never empty (an empty plan is a 204).
    /// The stream takes them over when it starts.
    pub chunks: Vec<Range<u64>>,
    /// The `meta` event's data, sent after `retry` on `/events` only.
    pub meta: Option<String>,
    /// Payload bytes per second, if paced.
    pub rate: Option<u64>,
    pub retry_ms: u64,
    pub keep_alive: Duration,
    /// The client's socket, to notice a hang-up while a paced stream waits.
    pub peer: Option<crate::peer::PeerFd>,
}

/// What every stream shares: the index store (to evict stale indexes), the
/// count of responses holding a file (event streams and `/files` downloads:
/// each costs a socket and a file descriptor), and the shutdown signal.
pub struct Streams {
    store: Arc<IndexStore>,
    open: Arc<AtomicUsize>,
    max: usize,
    shutdown: watch::Receiver<bool>,
}

/// Holds one of the `max` slots until dropped (with the response body).
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Streams {
    pub fn new(store: Arc<IndexStore>, max: usize, shutdown: watch::Receiver<bool>) -> Self {
        Streams { store, open: Arc::new(AtomicUsize::new(0)), max, shutdown }
    }

    /// Responses currently holding a file.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A slot for a response that will hold a file, or `Busy` when `max`
    /// are taken. Handlers take it before opening the file, so the server
    /// says 503 before it runs out of descriptors, not after.
    pub fn take(&self) -> Result<Slot, ApiError> {
        let taken = self.open.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(self.open.clone());
        if taken >= self.max {
            return Err(ApiError::Busy(taken));
        }
        Ok(slot)
    }

    /// The streaming response for a plan, holding `slot` until it ends.
    pub fn respond(&self, mut plan: Plan, slot: Slot) -> Result<HttpResponse, ApiError> {
        let mut shutdown = self.shutdown.clone();
        let shutting_down = *shutdown.borrow();
        let body = ChunkStream {
            phase: Phase::Retry,
            // Moved out of the plan: an idle stream keeps as little as it can.
            order: std::mem::take(&mut plan.chunks).into_iter().flatten(),
            next: None,
            framer: None,
            sent: Sent::default(),
            paced_start: Instant::now(),
            last_write: Instant::now(),
            sleep: None,
            shutting_down,
            shutdown: Box::pin(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            }),
            store: self.store.clone(),
            plan,
            started: Instant::now(),
            outcome: Outcome::ClientGone,
            _slot: slot,
        };
        Ok(head().streaming(body))
    }
}

/// The headers of every stream response. A `HEAD` gets exactly these,
/// without a stream behind them.
pub fn head() -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache, no-transform"))
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header((header::CONTENT_ENCODING, "identity"));
    res
}

/// `retry:` with per-connection jitter in `[base, 1.5 × base]`, so clients
/// dropped together by a restart do not all come back in the same instant.
fn jittered(base: u64) -> u64 {
    base + fastrand::u64(0..=base / 2)
}

/// Why a stream stopped before its end.
enum Stop {
    /// The file's size or modification time no longer match its index.
    Changed(&'static str),
    /// A chunk's bytes no longer match their digest although the stamp
    /// does (rewritten within one mtime tick): the index itself is stale.
    DigestDiffers,
    Io(std::io::Error),
}

/// How a stream ended, for its log line. Until it ends otherwise, a dropped
/// stream means the client went away.
#[derive(Debug)]
enum Outcome {
    Finished,
    ClientGone,
    Shutdown,
    Changed(&'static str),
    Failed(String),
}

#[derive(Default)]
struct Sent {
    chunks: u64,
    payload: u64,
    last: Option<u64>,
}

enum Phase {
    Retry,
    Meta,
    Chunks,
    End,
    Done,
}

type Item = std::io::Result<Bytes>;

/// The response body of one stream.
pub struct ChunkStream {
    plan: Plan,
    phase: Phase,
    order: std::iter::Flatten<std::vec::IntoIter<Range<u64>>>,
    /// A chunk taken from `order` whose pacing delay is not over yet.
    next: Option<u64>,
    /// The event being written, when one is mid-way.
    framer: Option<Framer>,
    sent: Sent,
    paced_start: Instant,
    /// When the stream last sent anything (a keep-alive is due after
    /// `keep_alive` of silence).
    last_write: Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    shutting_down: bool,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    store: Arc<IndexStore>,
    started: Instant,
    outcome: Outcome,
    _slot: Slot,
}

impl Stream for ChunkStream {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut *self;
        if !this.shutting_down && this.shutdown.as_mut().poll(cx).is_ready() {
            this.shutting_down = true;
        }
        loop {
            match std::mem::replace(&mut this.phase, Phase::Done) {
                Phase::Retry => {
                    this.phase = Phase::Meta;
                    return ready(sse::retry(jittered(this.plan.retry_ms)));
                }
                Phase::Meta => {
                    this.phase = Phase::Chunks;
                    if let Some(meta) = this.plan.meta.take() {
                        return ready(sse::named("meta", &meta));
                    }
                }
                Phase::Chunks => {
                    this.phase = Phase::Chunks;
                    return match this.poll_chunk(cx) {
                        Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
                        Poll::Ready(None) => continue,
                        Poll::Pending => Poll::Pending,
                    };
                }
                Phase::End => {
                    this.outcome = Outcome::Finished;
                    let end = serde_json::to_string(&End::of(&this.plan.index)).unwrap_or_default();
                    return ready(sse::named("end", &end));
                }
                Phase::Done => return Poll::Ready(None),
            }
        }
    }
}

fn ready(bytes: Vec<u8>) -> Poll<Option<Item>> {
    Poll::Ready(Some(Ok(Bytes::from(bytes))))
}

impl ChunkStream {
    /// The next slice of the chunk events. `Ready(None)` moves on to `end`.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        if self.framer.is_none() {
            // Between two events: the place to stop for a shutdown, and to
            // wait for the pace.
            if self.shutting_down {
                self.outcome = Outcome::Shutdown;
                self.phase = Phase::Done;
                return Poll::Ready(None);
            }
            let Some(i) = self.next.take().or_else(|| self.order.next()) else {
                self.phase = Phase::End;
                return Poll::Ready(None);
            };
            if let Some(item) = self.pace(cx) {
                self.next = Some(i);
                return item;
            }
            self.framer = Some(Framer::new(i, &self.plan.index));
        }
        let Some(framer) = self.framer.as_mut() else { return self.stop(Stop::Io(std::io::Error::other("no event"))) };
        match framer.next_slice(&self.plan) {
            Ok(slice) => {
                framer.emitted = true;
                self.last_write = Instant::now();
                if framer.finished {
                    let i = framer.i;
                    self.framer = None;
                    self.sent.chunks += 1;
                    self.sent.payload += self.plan.index.span(i).1 as u64;
                    self.sent.last = Some(i);
                }
                ready(slice)
            }
            Err(stop) => self.stop(stop),
        }
    }

    /// `None` when the next chunk is due; otherwise what to return while
    /// waiting: `Pending`, or a keep-alive comment after `keep_alive` of
    /// silence (so proxies and clients do not take the stream for dead), or
    /// the end of the stream when the client hung up meanwhile (checked every
    /// [`crate::peer::CHECK_EVERY`], so its slot frees within seconds).
    fn pace(&mut self, cx: &mut Context<'_>) -> Option<Poll<Option<Item>>> {
        let rate = self.plan.rate?;
        let due = self.paced_start + Duration::from_secs_f64(self.sent.payload as f64 / rate as f64);
        loop {
            let now = Instant::now();
            if now >= due {
                self.sleep = None;
                return None;
            }
            let quiet_until = self.last_write + self.plan.keep_alive;
            let mut wake = due.min(quiet_until);
            if self.plan.peer.is_some() {
                wake = wake.min(now + crate::peer::CHECK_EVERY);
            }
            let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(wake.into())));
            if sleep.as_mut().poll(cx).is_pending() {
                return Some(Poll::Pending);
            }
            self.sleep = None;
            if self.plan.peer.is_some_and(|p| p.hung_up()) {
                self.outcome = Outcome::ClientGone;
                self.phase = Phase::Done;
                return Some(Poll::Ready(None));
            }
            let now = Instant::now();
            if now >= quiet_until && now < due {
                self.last_write = now;
                return Some(ready(sse::KEEP_ALIVE.to_vec()));
            }
        }
    }

    /// Ends the stream: with an `error` event between events, or by cutting
    /// the connection when part of an event is already on the wire (actix
    /// drops the connection on a body error; the client discards the partial
    /// event). Never a half-sent event followed by anything else.
    fn stop(&mut self, stop: Stop) -> Poll<Option<Item>> {
        let file = Esc(&self.plan.name);
        let data = match stop {
            Stop::Changed(_) | Stop::DigestDiffers => {
                let why = match stop {
                    Stop::Changed(why) => why,
                    _ => {
                        self.store.evict(self.plan.id);
                        "chunk digest differs"
                    }
                };
                self.outcome = Outcome::Changed(why);
                let error = format!("{file} changed since it was indexed ({why}); fetch the manifest again");
                ErrorBody::new("changed", error)
            }
            Stop::Io(e) => {
                self.outcome = Outcome::Failed(e.to_string());
                ErrorBody::new("io_error", "the server could not read the file")
            }
        };
        let mid_event = self.framer.take().is_some_and(|f| f.emitted);
        let item = if mid_event {
            Err(std::io::Error::other("stream cut mid-event"))
        } else {
            Ok(Bytes::from(sse::named("error", &serde_json::to_string(&data).unwrap_or_default())))
        };
        self.phase = Phase::Done;
        Poll::Ready(Some(item))
    }
}

impl Drop for ChunkStream {
    /// One log line per finished stream. A client going away is normal for
    /// SSE and logged at debug, with the last chunk it was sent.
    fn drop(&mut self) {
        let ms = self.started.elapsed().as_millis() as u64;
        let (file, chunks, bytes, last) = (Esc(&self.plan.name), self.sent.chunks, self.sent.payload, self.sent.last);
        match &self.outcome {
            Outcome::Finished => tracing::info!(%file, chunks, bytes, ms, "stream finished"),
            Outcome::ClientGone => tracing::debug!(%file, chunks, bytes, ms, last, "client disconnected"),
            Outcome::Shutdown => tracing::info!(%file, chunks, bytes, ms, last, "stream closed for shutdown"),
            Outcome::Changed(why) => tracing::warn!(%file, why, last, "file changed during a stream"),
            Outcome::Failed(e) => {
                tracing::error!(%file, error = %Esc(&e.to_string()), last, "stream failed reading the file")
            }
        }
    }
}

/// Frames one chunk event slice by slice, hashing the bytes as they are read.
struct Framer {
    i: u64,
    off: u64,
    len: usize,
    /// Payload bytes read so far.
    pos: usize,
    hasher: Sha256,
    /// Part of this event went out: stopping now must cut the connection.
    emitted: bool,
    finished: bool,
}

impl Framer {
    fn new(i: u64, index: &FileIndex) -> Framer {
        let (off, len) = index.span(i);
        Framer { i, off, len, pos: 0, hasher: Sha256::new(), emitted: false, finished: false }
    }

    /// Reads the next slice and frames it: the event header goes with the
    /// first, the closing `"}` and blank line with the last, and only after
    /// the chunk's digest matched the index.
    fn next_slice(&mut self, plan: &Plan) -> Result<Vec<u8>, Stop> {
        let file = &*plan.file;
        let index = &plan.index;
        let hash = &index.hashes[self.i as usize];
        let text = index.kind == Kind::Text;
        let slice = if plan.rate.is_some() { PACED_SLICE } else { SLICE };
        let n = slice.min(self.len - self.pos);
        let mut out = Vec::with_capacity(n * 4 / 3 + 256);
        if self.pos == 0 {
            // The descriptor's own stamp says whether its bytes were changed
            // in place; the name's identity says whether the file was
            // replaced or removed (the old one is still readable through our
            // descriptor, but the client asked for what the name holds).
            let meta = file.metadata().map_err(Stop::Io)?;
            if Stamp::of(&meta) != index.stamp {
                return Err(Stop::Changed("size or modification time differs"));
            }
            if !plan.fs.still(&plan.rel, plan.id) {
                return Err(Stop::Changed("file was replaced or removed"));
            }
            sse::chunk_head(&mut out, self.i, self.off, self.len, hash, text);
        }
        READ_BUF.with_borrow_mut(|buf| -> Result<(), Stop> {
            let bytes = &mut buf[..n];
            file.read_exact_at(bytes, self.off + self.pos as u64).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => Stop::Changed("file is shorter"),
                _ => Stop::Io(e),
            })?;
            self.hasher.update(&*bytes);
            if text {
                sse::text_fragment(&mut out, bytes);
            } else {
                sse::base64_fragment(&mut out, bytes);
            }
            Ok(())
        })?;
        self.pos += n;
        let last = self.pos == self.len;
        if last {
            let digest: index::Hash = std::mem::take(&mut self.hasher).finalize().into();
            if digest != *hash {
                return Err(Stop::DigestDiffers);
            }
            sse::chunk_tail(&mut out);
            self.finished = true;
        }
        Ok(out)
    }
}
