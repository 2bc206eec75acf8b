//! The chunk stream: turns a plan ("these chunks of this file, with or
//! without a `meta` event, at this rate") into an SSE response body.
//!
//! The body is a `Stream` that actix polls whenever the socket has room, so
//! a client that reads slowly only slows its own stream, and a connection
//! holds no more than the slice actix is writing.
//!
//! Chunks go out in slices: each event is framed piece by piece (the header,
//! the payload in slices of [`SLICE`] bytes, the tail). A slice whose bytes
//! are in the page cache (the common case) is read and encoded inline on the
//! worker: `preadv2(RWF_NOWAIT)` returns them without ever waiting for the
//! disk, and a hand-off to another thread per slice would cost more than the
//! work (measured: the server's CPU per GiB nearly doubled). A slice that is
//! not cached is read and encoded on the blocking pool instead, so a read
//! that stalls (cold cache, network storage) stalls its own stream only, not
//! every connection the worker serves.
//!
//! Which chunks are hashed again is `--verify-reads` ([`VerifyReads`]). A
//! stream that does not hash trusts the index while the descriptor's
//! identity (device, inode, size, mtime and ctime in nanoseconds, `fstat`
//! before each chunk) is the one it started with; clients verify every chunk
//! anyway. A stream that hashes reads the whole chunk and checks it before
//! the first byte of its event goes out, so a chunk that rotted on disk ends
//! the stream with a clean `error` event (`corrupt`) and the stale index is
//! dropped. Paced streams hash as the slices go instead (holding a chunk for
//! minutes would cost memory per connection) and cut the connection before
//! the event's closing blank line on a mismatch.

use std::cell::RefCell;
use std::fs::File;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::config::VerifyReads;
use super::error::ApiError;
use super::peer::{PeerFd, CHECK_EVERY};
use super::slots::Slot;
use crate::logsafe::Esc;
use crate::protocol::{hex, sha256, sse, End, ErrorBody, Hash, Kind};
use crate::tree::disk::{Disk, Identity, ReadSite};
use crate::tree::index::{FileIndex, Stamp};
use crate::tree::root::{FileId, FsRoot};
use crate::tree::store::IndexStore;

/// Payload bytes per slice. A multiple of 3, so base64 slices join without
/// padding; 48 KiB keeps what a connection holds small while a read, a hash
/// update and an encode per slice still amortize their per-call cost.
pub const SLICE: usize = 48 * 1024;

/// Slices of paced streams (`rate`): throughput does not matter there, and
/// actix keeps a connection's write buffer at the size of the largest slice
/// it has written (up to 128 KiB), so small slices keep thousands of slow,
/// mostly idle streams to a few KiB each. With the server's 4 KiB write
/// buffer threshold (see `server::server_on_with`) one slice fits the buffer actix starts with.
pub const PACED_SLICE: usize = 3 * 1024;

thread_local! {
    /// The read buffer, one per thread (workers and the blocking pool's):
    /// a slice is produced in one go and never held across an `await`.
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
    /// A range (refill) stream rather than `/events`: see [`VerifyReads`].
    pub refill: bool,
    pub retry_ms: u64,
    pub keep_alive: Duration,
    /// The client's socket, to notice a hang-up while a paced stream waits.
    pub peer: Option<PeerFd>,
}

/// What every stream shares: the index store (to evict stale indexes),
/// the shutdown signal, `--verify-reads` and the disk chunks are read from.
pub struct Streams {
    store: Arc<IndexStore>,
    shutdown: watch::Receiver<bool>,
    verify: VerifyReads,
    disk: Arc<dyn Disk>,
}

impl Streams {
    pub fn new(
        store: Arc<IndexStore>,
        shutdown: watch::Receiver<bool>,
        verify: VerifyReads,
        disk: Arc<dyn Disk>,
    ) -> Self {
        Streams { store, shutdown, verify, disk }
    }

    /// The shutdown signal, for streams that are not file streams (live).
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// The streaming response for a plan, holding `slot` until it ends.
    pub fn respond(&self, mut plan: Plan, slot: Slot) -> Result<HttpResponse, ApiError> {
        let source = Arc::new(Source {
            identity: Identity::now(&plan.file)?,
            file: plan.file.clone(),
            index: plan.index.clone(),
            fs: plan.fs.clone(),
            rel: plan.rel.clone(),
            id: plan.id,
            verify: self.verify.hashes(plan.refill),
            slice: if plan.rate.is_some() { PACED_SLICE } else { SLICE },
            paced: plan.rate.is_some(),
            disk: self.disk.clone(),
        });
        let mut shutdown = self.shutdown.clone();
        let shutting_down = *shutdown.borrow();
        let body = ChunkStream {
            phase: Phase::Retry,
            // Moved out of the plan: an idle stream keeps as little as it can.
            order: std::mem::take(&mut plan.chunks).into_iter().flatten(),
            next: None,
            framer: None,
            spare: Vec::new(),
            job: None,
            source,
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
            ending: Ending::ClientGone,
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
pub fn jittered(base: u64) -> u64 {
    base + fastrand::u64(0..=base / 2)
}

/// Why a stream stopped before its end.
enum Stop {
    /// The file's identity no longer matches the one the stream started
    /// with, or its size or mtime no longer match its index.
    Changed(&'static str),
    /// A chunk's bytes no longer match their digest although the file's
    /// identity did not change (bit rot, or a rewrite that restored the
    /// times): the index itself is stale.
    DigestDiffers,
    Io(std::io::Error),
    /// The blocking job reading a slice panicked or was cancelled.
    Task(tokio::task::JoinError),
    /// A broken invariant of this stream's own state.
    Internal(&'static str),
    /// Not in the page cache: the slice must be read on the blocking pool.
    WouldBlock,
}

/// How a stream ended, for its log line. Until it ends otherwise, a dropped
/// stream means the client went away.
#[derive(Debug)]
enum Ending {
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

/// A framer and the slice it produced (or why it could not).
type Framed = (Framer, Result<Vec<u8>, Stop>);

/// The response body of one stream.
pub struct ChunkStream {
    plan: Plan,
    phase: Phase,
    order: std::iter::Flatten<std::vec::IntoIter<Range<u64>>>,
    /// A chunk taken from `order` whose pacing delay is not over yet.
    next: Option<u64>,
    /// The event being written, when one is mid-way (and not out on a job).
    framer: Option<Framer>,
    /// The whole-chunk buffer of verifying streams, handed from one framer
    /// to the next (a refill of 256 chunks allocates it once, not 256 times).
    spare: Vec<u8>,
    /// The slice being read and encoded on the blocking pool; the framer
    /// travels with it and comes back with the slice.
    job: Option<tokio::task::JoinHandle<Framed>>,
    source: Arc<Source>,
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
    ending: Ending,
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
                    this.ending = Ending::Finished;
                    let index = &this.plan.index;
                    let end = End { chunks: index.chunks(), root: hex(&index.root), reason: index.published_end };
                    let end = serde_json::to_string(&end).unwrap_or_default();
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
        if self.framer.is_none() && self.job.is_none() {
            // Between two events: the place to stop for a shutdown, and to
            // wait for the pace.
            if self.shutting_down {
                self.ending = Ending::Shutdown;
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
            self.framer = Some(Framer::new(i, &self.plan.index, std::mem::take(&mut self.spare)));
        }
        let (mut framer, slice) = match self.framer.take() {
            Some(mut framer) => match framer.next_slice(&self.source, Read::CachedOnly) {
                Err(Stop::WouldBlock) => {
                    let source = self.source.clone();
                    self.job = Some(tokio::task::spawn_blocking(move || {
                        let slice = framer.next_slice(&source, Read::Blocking);
                        (framer, slice)
                    }));
                    return self.poll_chunk(cx);
                }
                slice => (framer, slice),
            },
            None => {
                let Some(job) = self.job.as_mut() else {
                    return self.stop(Stop::Internal("a chunk event with neither a framer nor a job"));
                };
                let done = match Pin::new(job).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(done) => done,
                };
                self.job = None;
                match done {
                    Ok(done) => done,
                    Err(e) => return self.stop(Stop::Task(e)),
                }
            }
        };
        match slice {
            Ok(slice) => {
                framer.emitted = true;
                self.last_write = Instant::now();
                if framer.finished {
                    self.spare = std::mem::take(&mut framer.whole);
                    let i = framer.i;
                    self.sent.chunks += 1;
                    self.sent.payload += self.plan.index.span(i).1 as u64;
                    self.sent.last = Some(i);
                } else {
                    self.framer = Some(framer);
                }
                ready(slice)
            }
            Err(stop) => {
                self.framer = Some(framer);
                self.stop(stop)
            }
        }
    }

    /// `None` when the next chunk is due; otherwise what to return while
    /// waiting: `Pending`, or a keep-alive comment after `keep_alive` of
    /// silence (so proxies and clients do not take the stream for dead), or
    /// the end of the stream when the client hung up meanwhile (checked every
    /// [`CHECK_EVERY`], so its slot frees within seconds).
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
                wake = wake.min(now + CHECK_EVERY);
            }
            let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(wake.into())));
            if sleep.as_mut().poll(cx).is_pending() {
                return Some(Poll::Pending);
            }
            self.sleep = None;
            if self.plan.peer.is_some_and(|p| p.hung_up()) {
                self.ending = Ending::ClientGone;
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
            Stop::Changed(why) => {
                self.ending = Ending::Changed(why);
                let error = format!("{file} changed since it was indexed ({why}); fetch the manifest again");
                ErrorBody::new("changed", error)
            }
            Stop::DigestDiffers => {
                // The index is stale: the next request builds it again from
                // the bytes on disk, and the client's `v` then gets 412.
                self.store.evict(self.plan.id);
                let why = "chunk digest differs";
                self.ending = Ending::Changed(why);
                let error = format!(
                    "a chunk of {file} no longer matches its digest although the file's identity is unchanged \
                     (corrupted on disk, or rewritten with its times restored); fetch the manifest again"
                );
                ErrorBody::new("corrupt", error)
            }
            Stop::Io(_) | Stop::Task(_) | Stop::Internal(_) | Stop::WouldBlock => {
                let e = match stop {
                    Stop::Io(e) => e.to_string(),
                    Stop::Task(e) => format!("the read job failed: {e}"),
                    Stop::Internal(what) => format!("internal error: {what}"),
                    _ => "a read would block".to_owned(),
                };
                self.ending = Ending::Failed(e);
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
        match &self.ending {
            Ending::Finished => tracing::info!(%file, chunks, bytes, ms, "stream finished"),
            Ending::ClientGone => tracing::debug!(%file, chunks, bytes, ms, last, "client disconnected"),
            Ending::Shutdown => tracing::info!(%file, chunks, bytes, ms, last, "stream closed for shutdown"),
            Ending::Changed(why) => tracing::warn!(%file, why, last, "file changed during a stream"),
            Ending::Failed(e) => {
                tracing::error!(%file, error = %Esc(&e.to_string()), last, "stream failed reading the file")
            }
        }
    }
}

/// What the blocking jobs of one stream share.
struct Source {
    file: Arc<File>,
    index: Arc<FileIndex>,
    fs: Arc<FsRoot>,
    rel: String,
    id: FileId,
    /// `fstat` of the descriptor when the stream started.
    identity: Identity,
    /// Chunks are hashed and checked against the index before they go out.
    verify: bool,
    /// Payload bytes per slice.
    slice: usize,
    paced: bool,
    disk: Arc<dyn Disk>,
}

/// How a slice may read the file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Inline on a worker: only bytes already in the page cache.
    CachedOnly,
    /// On the blocking pool: whatever it takes.
    Blocking,
}

impl Source {
    /// Fills `buf` from `at`. `CachedOnly` gives `WouldBlock` unless the
    /// whole of it came from the page cache at once.
    fn read(&self, buf: &mut [u8], at: u64, how: Read) -> Result<(), Stop> {
        if how == Read::CachedOnly {
            return match self.disk.read_cached(&self.file, buf, at) {
                Some(n) if n == buf.len() => Ok(()),
                _ => Err(Stop::WouldBlock),
            };
        }
        self.disk.read_exact_at(&self.file, buf, at, &self.rel, ReadSite::Stream).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Stop::Changed("file is shorter"),
            _ => Stop::Io(e),
        })
    }
}

/// Frames one chunk event slice by slice (inline, or on the blocking pool).
struct Framer {
    i: u64,
    off: u64,
    len: usize,
    /// Payload bytes framed so far.
    pos: usize,
    /// A verified chunk, read whole and checked before its event started.
    held: bool,
    /// Where `held` chunks are read (reused from the last framer).
    whole: Vec<u8>,
    /// A paced verified chunk is hashed as its slices go.
    hasher: Option<Sha256>,
    /// Part of this event went out: stopping now must cut the connection.
    emitted: bool,
    finished: bool,
}

impl Framer {
    fn new(i: u64, index: &FileIndex, whole: Vec<u8>) -> Framer {
        let (off, len) = index.span(i);
        Framer { i, off, len, pos: 0, held: false, whole, hasher: None, emitted: false, finished: false }
    }

    /// Checks the file, then frames the next slice: the event header goes
    /// with the first, the closing `"}` and blank line with the last.
    /// `WouldBlock` (from a `CachedOnly` read) leaves the framer as it was.
    fn next_slice(&mut self, source: &Source, how: Read) -> Result<Vec<u8>, Stop> {
        let index = &source.index;
        let hash = &index.hashes[self.i as usize];
        let text = index.kind == Kind::Text;
        let n = source.slice.min(self.len - self.pos);
        let mut out = Vec::with_capacity(n * 4 / 3 + 256);
        if self.pos == 0 {
            self.check(source)?;
            if source.verify && source.paced {
                self.hasher = Some(Sha256::new());
            } else if source.verify {
                self.whole.resize(self.len, 0);
                let whole = &mut self.whole[..self.len];
                source.read(whole, self.off, how)?;
                if sha256(whole) != *hash {
                    return Err(Stop::DigestDiffers);
                }
                self.held = true;
            }
            sse::chunk_head(&mut out, self.i, self.off, self.len, hash, text);
        }
        let mut frame = |bytes: &[u8]| {
            if text {
                sse::text_fragment(&mut out, bytes);
            } else {
                sse::base64_fragment(&mut out, bytes);
            }
        };
        if self.held {
            frame(&self.whole[self.pos..self.pos + n]);
        } else {
            READ_BUF.with_borrow_mut(|buf| -> Result<(), Stop> {
                let bytes = &mut buf[..n];
                source.read(bytes, self.off + self.pos as u64, how)?;
                if let Some(hasher) = &mut self.hasher {
                    hasher.update(&*bytes);
                }
                frame(bytes);
                Ok(())
            })?;
        }
        self.pos += n;
        if self.pos == self.len {
            if let Some(hasher) = self.hasher.take() {
                let digest: Hash = hasher.finalize().into();
                if digest != *hash {
                    return Err(Stop::DigestDiffers);
                }
            }
            self.held = false;
            sse::chunk_tail(&mut out);
            self.finished = true;
        }
        Ok(out)
    }

    /// Before each chunk: the descriptor's own `fstat` says whether its
    /// bytes may have changed in place (against the index's stamp, and
    /// against the identity the stream started with); the name says whether
    /// the file was replaced or removed (the old one is still readable
    /// through our descriptor, but the client asked for what the name holds).
    fn check(&self, source: &Source) -> Result<(), Stop> {
        let meta = source.file.metadata().map_err(Stop::Io)?;
        if Stamp::of(&meta) != source.index.stamp {
            return Err(Stop::Changed("size or modification time differs"));
        }
        if Identity::of(&meta) != source.identity {
            return Err(Stop::Changed("the file's change time moved"));
        }
        if !source.fs.still(&source.rel, source.id) {
            return Err(Stop::Changed("file was replaced or removed"));
        }
        Ok(())
    }
}
