//! One live publication: the bytes a producer sends, cut into chunks at
//! character boundaries, each sealed (written, flushed, recorded in the
//! layout, flushed) before it is announced on a `watch` channel that every
//! viewer of it reads.
//!
//! Why a `watch` channel: it holds one value (the chunk count and the
//! state) that any number of viewers read at their own pace. Sealing never
//! waits for a viewer, and a slow viewer only falls behind: it reads the
//! chunks it missed from the file, like a file stream does.
//!
//! Every method that writes (`append`, `finish`, `tick`, `end`) flushes to
//! disk, so the caller runs it on the blocking pool. A producer is let in
//! by [`Live::begin`] only at the offset the server has acknowledged, and
//! only while no other request is publishing: an old producer can never
//! overwrite or double anything (fencing by offset, as tus does).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};

use crate::protocol::{hex, root_of, sha256, Hash, Kind, LiveState, Publication};
use crate::tree::index::{FileIndex, Stamp};
use crate::tree::published::{self, Ended, Loaded, Sealed, Writer};
use crate::tree::root::FileId;

/// How long a publication whose producer ended a part cleanly (without
/// `end=1`) stays `live` before it counts as interrupted: a producer that
/// sends its text in many requests is not "gone" between two of them.
pub const GRACE: Duration = Duration::from_secs(2);

/// The server's publishing settings (`serve --chunk-size --seal-ms
/// --publish-timeout --max-publish`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub chunk_size: u32,
    pub seal_after: Duration,
    pub timeout: Duration,
    pub max_bytes: u64,
}

/// What viewers watch: chunks sealed so far, and the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub chunks: u64,
    pub state: LiveState,
}

/// Why a publishing request was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("another producer is publishing")]
    ProducerActive,
    #[error("the server has acknowledged {offset} bytes")]
    OffsetMismatch { offset: u64 },
    #[error("not UTF-8 after {offset} bytes")]
    NotText { offset: u64 },
    #[error("past the limit of {max} bytes at {offset}")]
    TooLarge { offset: u64, max: u64 },
    #[error("the publication has ended")]
    Ended,
    #[error("a file by this name exists")]
    Exists,
    /// Followed here, published through another instance.
    #[error("published through another instance")]
    Elsewhere,
    #[error("no such folder, or a name that cannot be published")]
    NotFound,
    #[error("could not write the publication")]
    Io(#[from] io::Error),
}

/// What a publication starts from: a new one (nothing sealed, `Live`), or
/// one reopened after a restart (`Interrupted`).
pub struct Opening {
    /// The file's canonical path under the root.
    pub rel: String,
    /// The publication's id.
    pub id: String,
    /// The file, opened for writing; its first bytes are the `sealed` chunks.
    pub file: Arc<File>,
    /// Its layout, open for appending.
    pub layout: Writer,
    pub sealed: Vec<Sealed>,
    /// The digest of the sealed bytes so far.
    pub whole: Sha256,
    pub state: LiveState,
}

/// A request's right to append, from [`Live::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token(u64);

pub struct Live {
    /// The file's canonical path under the root.
    pub rel: String,
    /// The publication's id: its `version` while live.
    pub id: String,
    pub file_id: FileId,
    file: Arc<File>,
    settings: Settings,
    /// Set on an instance that follows a publication another instance
    /// writes (a shared root and index directory): its layout, and how far
    /// it has been read.
    follow: Option<Mutex<Follow>>,
    inner: Mutex<Inner>,
    progress: watch::Sender<Progress>,
    /// Wakes the publication's timer task (see `super::Registry`) when a
    /// deadline may have moved.
    pub(super) wake: Notify,
}

struct Follow {
    layout: PathBuf,
    read_to: u64,
}

struct Inner {
    /// `None` on a follower.
    layout: Option<Writer>,
    sealed: Vec<Sealed>,
    /// Bytes sealed (the acknowledged offset).
    size: u64,
    whole: Sha256,
    /// Received, not yet sealed; `pending[..checked]` is known to be whole
    /// UTF-8 characters.
    pending: Vec<u8>,
    checked: usize,
    /// When the oldest pending byte arrived.
    pending_since: Option<Instant>,
    state: LiveState,
    producer: Option<Token>,
    tokens: u64,
    /// When the last request ended: the start of the grace, or of the
    /// interruption that `--publish-timeout` bounds.
    quiet_since: Instant,
}

/// What the timer found due.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    Nothing,
    /// Interrupted for `--publish-timeout`: the registry ends it.
    Abandon,
}

impl Live {
    /// A publication as [`Opening`] describes it.
    pub fn new(opening: Opening, settings: Settings) -> io::Result<Arc<Live>> {
        let Opening { rel, id, file, layout, sealed, whole, state } = opening;
        Live::build(rel, id, file, Some(layout), sealed, whole, state, settings, None)
    }

    /// A follower of the publication `loaded` describes, which another
    /// instance writes into `file` (opened for reading). It reads the
    /// chunks it lists and checks them; [`Live::refresh`] reads what the
    /// layout gained since.
    pub fn follow(loaded: &Loaded, file: Arc<File>, settings: Settings) -> io::Result<Arc<Live>> {
        let live = Live::build(
            loaded.header.rel.clone(),
            loaded.header.id.clone(),
            file,
            None,
            Vec::new(),
            Sha256::new(),
            LiveState::Live,
            settings,
            Some(Mutex::new(Follow { layout: loaded.path.clone(), read_to: 0 })),
        )?;
        live.refresh()?;
        Ok(live)
    }

    #[allow(clippy::too_many_arguments)] // private: the two constructors' union
    fn build(
        rel: String,
        id: String,
        file: Arc<File>,
        layout: Option<Writer>,
        sealed: Vec<Sealed>,
        whole: Sha256,
        state: LiveState,
        settings: Settings,
        follow: Option<Mutex<Follow>>,
    ) -> io::Result<Arc<Live>> {
        let meta = file.metadata()?;
        let size = sealed.last().map_or(0, |c| c.off + c.len);
        let (progress, _) = watch::channel(Progress { chunks: sealed.len() as u64, state });
        Ok(Arc::new(Live {
            rel,
            id,
            file_id: FileId::of(&meta),
            file,
            settings,
            follow,
            inner: Mutex::new(Inner {
                layout,
                sealed,
                size,
                whole,
                pending: Vec::new(),
                checked: 0,
                pending_since: None,
                state,
                producer: None,
                tokens: 0,
                quiet_since: Instant::now(),
            }),
            progress,
            wake: Notify::new(),
        }))
    }

    /// Viewers subscribed now.
    pub fn viewers(&self) -> usize {
        self.progress.receiver_count()
    }

    /// Whether another instance writes this publication.
    pub fn is_follower(&self) -> bool {
        self.follow.is_some()
    }

    /// A follower reads what its layout gained: new chunks (each read and
    /// checked against its digest before it is announced) and the end.
    /// Returns whether the publication has ended. Blocking.
    pub fn refresh(&self) -> io::Result<bool> {
        let Some(follow) = &self.follow else { return Ok(self.ended()) };
        let mut follow = follow.lock().unwrap_or_else(|p| p.into_inner());
        let layout = File::open(&follow.layout)?;
        let len = layout.metadata()?.len();
        let mut tail = vec![0; len.saturating_sub(follow.read_to) as usize];
        layout.read_exact_at(&mut tail, follow.read_to)?;
        if follow.read_to == 0 {
            // The header line: skip it.
            let Some(n) = memchr::memchr(b'\n', &tail) else { return Ok(false) };
            tail.drain(..=n);
            follow.read_to = n as u64 + 1;
        }
        let mut inner = self.lock();
        let mut chunks = inner.sealed.clone();
        let known = chunks.len();
        let (ended, used) = published::more(&tail, &mut chunks);
        for chunk in &chunks[known..] {
            let bytes = self.read(chunk)?;
            if sha256(&bytes) != chunk.sha256 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "a followed chunk does not match its layout"));
            }
            inner.whole.update(&bytes);
            inner.size += chunk.len;
        }
        follow.read_to += used as u64;
        inner.sealed = chunks;
        let count = inner.sealed.len() as u64;
        if let Some(ended) = ended {
            inner.state = ended.end;
        }
        let state = inner.state;
        self.progress.send_if_modified(|p| {
            let changed = p.chunks != count || (state.ended() && p.state != state);
            p.chunks = count;
            changed
        });
        Ok(state.ended())
    }

    /// A follower hears the producer's state from another instance.
    pub fn heard(&self, state: LiveState) {
        if self.is_follower() && !state.ended() {
            let mut inner = self.lock();
            self.set_state(&mut inner, state);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    pub fn chunk_size(&self) -> u32 {
        self.settings.chunk_size
    }

    /// Chunk `i`, if sealed.
    pub fn chunk(&self, i: u64) -> Option<Sealed> {
        self.lock().sealed.get(usize::try_from(i).ok()?).copied()
    }

    /// The sealed chunks, their bytes' digest and the state, at one moment.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            offsets: inner.sealed.iter().map(|c| c.off).collect(),
            hashes: inner.sealed.iter().map(|c| c.sha256).collect(),
            size: inner.size,
            sha256: inner.whole.clone().finalize().into(),
            state: inner.state,
        }
    }

    /// The answer of `/api/publish` now.
    pub fn ack(&self, file: &str) -> Publication {
        let inner = self.lock();
        let hashes: Vec<Hash> = inner.sealed.iter().map(|c| c.sha256).collect();
        Publication {
            file: file.to_owned(),
            offset: inner.size,
            chunks: inner.sealed.len() as u64,
            state: inner.state,
            root: hex(&root_of(&hashes)),
        }
    }

    /// Reads a sealed chunk's bytes (sealed bytes never change).
    pub fn read(&self, chunk: &Sealed) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; chunk.len as usize];
        self.file.read_exact_at(&mut buf, chunk.off)?;
        Ok(buf)
    }

    /// Lets a request publish from `offset`, which must be the server's.
    pub fn begin(&self, offset: Option<u64>) -> Result<Token, PublishError> {
        if self.is_follower() {
            return Err(PublishError::Elsewhere);
        }
        let mut inner = self.lock();
        if inner.state.ended() {
            return Err(PublishError::Ended);
        }
        if inner.producer.is_some() {
            return Err(PublishError::ProducerActive);
        }
        if offset != Some(inner.size) {
            return Err(PublishError::OffsetMismatch { offset: inner.size });
        }
        inner.tokens += 1;
        let token = Token(inner.tokens);
        inner.producer = Some(token);
        self.set_state(&mut inner, LiveState::Live);
        Ok(token)
    }

    /// Appends what a request's body brought, sealing every full chunk.
    /// Bytes past `--max-publish` or from the first invalid UTF-8 sequence
    /// on are refused (the ones before are kept and sealed).
    pub fn append(&self, token: Token, bytes: &[u8]) -> Result<(), PublishError> {
        let mut inner = self.lock();
        if inner.producer != Some(token) {
            return Err(PublishError::ProducerActive);
        }
        let max = self.settings.max_bytes;
        let room = max.saturating_sub(inner.size + inner.pending.len() as u64);
        let take = &bytes[..bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        if !take.is_empty() && inner.pending_since.is_none() {
            inner.pending_since = Some(Instant::now());
            self.wake.notify_one();
        }
        inner.pending.extend_from_slice(take);
        let checked = inner.checked;
        let invalid = match simdutf8::compat::from_utf8(&inner.pending[checked..]) {
            Ok(_) => {
                inner.checked = inner.pending.len();
                false
            }
            Err(e) => {
                inner.checked += e.valid_up_to();
                e.error_len().is_some()
            }
        };
        if invalid {
            let keep = inner.checked;
            inner.pending.truncate(keep);
            self.seal_all(&mut inner)?;
            return Err(PublishError::NotText { offset: inner.size });
        }
        while inner.checked >= self.settings.chunk_size as usize {
            self.seal_one(&mut inner)?;
        }
        if take.len() < bytes.len() {
            self.seal_all(&mut inner)?;
            return Err(PublishError::TooLarge { offset: inner.size, max });
        }
        Ok(())
    }

    /// The request's body ended: cleanly (`broken` false) or with its
    /// connection. Every whole character received is sealed; a character
    /// cut by the end of the body is dropped (not acknowledged: the
    /// producer sends it again from the offset).
    pub fn finish(&self, token: Token, broken: bool) -> Result<(), PublishError> {
        let mut inner = self.lock();
        if inner.producer != Some(token) {
            return Ok(());
        }
        inner.producer = None;
        inner.quiet_since = Instant::now();
        let sealed = self.seal_all(&mut inner);
        inner.pending.clear();
        inner.checked = 0;
        inner.pending_since = None;
        if broken && !inner.state.ended() {
            self.set_state(&mut inner, LiveState::Interrupted);
        }
        self.wake.notify_one();
        Ok(sealed?)
    }

    /// Seals what has waited `--seal-ms`, and moves the state on when a
    /// producer's grace or `--publish-timeout` ran out.
    pub fn tick(&self, now: Instant) -> Result<Due, PublishError> {
        let mut inner = self.lock();
        if inner.state.ended() {
            return Ok(Due::Nothing);
        }
        if inner.pending_since.is_some_and(|t| now >= t + self.settings.seal_after) {
            self.seal_all(&mut inner)?;
            // A lone partial character waits for the rest of its bytes.
            inner.pending_since = None;
        }
        if inner.producer.is_none() && inner.state == LiveState::Live && now >= inner.quiet_since + GRACE {
            self.set_state(&mut inner, LiveState::Interrupted);
        }
        if inner.state == LiveState::Interrupted && now >= inner.quiet_since + self.settings.timeout {
            return Ok(Due::Abandon);
        }
        Ok(Due::Nothing)
    }

    /// When [`Live::tick`] has something to do next, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let inner = self.lock();
        if inner.state.ended() {
            return None;
        }
        let seal = inner.pending_since.map(|t| t + self.settings.seal_after);
        let state = match (inner.producer, inner.state) {
            (None, LiveState::Live) => Some(inner.quiet_since + GRACE),
            (None, LiveState::Interrupted) => Some(inner.quiet_since + self.settings.timeout),
            _ => None,
        };
        seal.into_iter().chain(state).min()
    }

    pub fn ended(&self) -> bool {
        self.lock().state.ended()
    }

    /// Ends the publication as `reason`: seals what is whole, records the
    /// end in the layout, and returns the finished file's index. Viewers
    /// are told by [`Live::announce_end`], once the index is in place.
    pub fn end(&self, reason: LiveState) -> Result<FileIndex, PublishError> {
        let mut inner = self.lock();
        self.seal_all(&mut inner)?;
        inner.pending.clear();
        inner.checked = 0;
        inner.pending_since = None;
        inner.producer = None;
        inner.state = reason;
        let stamp = Stamp::of(&self.file.metadata()?);
        let sha256: Hash = inner.whole.clone().finalize().into();
        if let Some(layout) = &mut inner.layout {
            layout.end(&Ended { end: reason, stamp, sha256 })?;
        }
        let hashes: Vec<Hash> = inner.sealed.iter().map(|c| c.sha256).collect();
        Ok(FileIndex {
            stamp,
            kind: Kind::Text,
            chunk_size: self.settings.chunk_size,
            offsets: inner.sealed.iter().map(|c| c.off).collect(),
            root: root_of(&hashes),
            hashes,
            sha256,
            published_as: Some(self.id.clone()),
            published_end: Some(reason),
        })
    }

    /// Tells viewers the publication ended (after [`Live::end`]).
    pub fn announce_end(&self) {
        let state = self.lock().state;
        self.progress.send_modify(|p| p.state = state);
        self.wake.notify_one();
    }

    fn set_state(&self, inner: &mut Inner, state: LiveState) {
        if inner.state != state {
            inner.state = state;
            self.progress.send_modify(|p| p.state = state);
        }
    }

    /// Seals every whole character pending, a chunk at a time.
    fn seal_all(&self, inner: &mut Inner) -> io::Result<()> {
        while inner.checked > 0 {
            self.seal_one(inner)?;
        }
        Ok(())
    }

    /// Seals the longest run of whole characters, at most a chunk, at the
    /// head of `pending`: bytes written and flushed, then the layout record
    /// written and flushed, then the chunk announced.
    fn seal_one(&self, inner: &mut Inner) -> io::Result<()> {
        let mut n = inner.checked.min(self.settings.chunk_size as usize);
        // Back to a character boundary (continuation bytes are 10xxxxxx).
        while n < inner.checked && inner.pending[n] & 0xC0 == 0x80 {
            n -= 1;
        }
        let bytes = &inner.pending[..n];
        self.file.write_all_at(bytes, inner.size)?;
        self.file.sync_data()?;
        let chunk = Sealed { off: inner.size, len: n as u64, sha256: sha256(bytes) };
        inner.layout.as_mut().ok_or_else(|| io::Error::other("a follower never seals"))?.seal(&chunk)?;
        inner.whole.update(bytes);
        inner.sealed.push(chunk);
        inner.size += n as u64;
        inner.pending.drain(..n);
        inner.checked -= n;
        inner.pending_since = (!inner.pending.is_empty()).then(Instant::now);
        let chunks = inner.sealed.len() as u64;
        self.progress.send_modify(|p| p.chunks = chunks);
        Ok(())
    }
}

/// A publication's chunks at one moment (for its manifest).
pub struct Snapshot {
    pub offsets: Vec<u64>,
    pub hashes: Vec<Hash>,
    pub size: u64,
    pub sha256: Hash,
    pub state: LiveState,
}
