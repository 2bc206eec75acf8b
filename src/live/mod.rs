//! Live text: publications a producer is still writing, followed by any
//! number of viewers (`serve --publish`, `docs/PROTOCOL.md` "Live text").
//!
//! Between the file core and the HTTP server: it uses the catalog (to open
//! the file a publication writes, beneath the root), the layouts of
//! [`crate::tree::published`] (durable before a chunk is announced), and
//! the index store (a finished publication's layout becomes its index);
//! the server's routes use it and nothing here knows HTTP.
//!
//! - [`publication`]: one publication — appending, sealing at character
//!   boundaries, the state, the channel its viewers watch.
//! - [`fanout`]: notices between instances through Redis (`--redis`).
//! - This file: the registry of open publications by canonical name, their
//!   timers (`--seal-ms`, the producer's grace, `--publish-timeout`), the
//!   reopening of unfinished ones after a restart, the hand-over of a
//!   finished one to the index store, and the followers of publications
//!   another instance writes (shared root and index directory): made when a
//!   viewer asks, reading the layout when Redis says it grew, or every
//!   [`FOLLOW_POLL`] without Redis.

pub mod fanout;
pub mod publication;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

pub use publication::{Live, Opening, Progress, PublishError, Settings, Snapshot, Token};

use crate::logsafe::Esc;
use crate::protocol::{hex, sha256, LiveState, Publication};
use crate::tree::index::Stamp;
use crate::tree::published::{self, Header, Writer};
use crate::tree::root::Create;
use crate::tree::{Catalog, IndexStore, Resolved, TreeError};
use fanout::{Fanout, Notice};
use publication::Due;

/// How often a follower looks at its layout without Redis ("within about a
/// second" of a seal on another instance).
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// ... and with Redis, in case a notice was lost.
const FOLLOW_CHECK: Duration = Duration::from_secs(2);
/// Layouts remembered as "not a publication being written" (finished, or
/// of another file), so requests for finished files do not read them again.
const KNOWN_MAX: usize = 4096;

/// The open publications of one served root.
pub struct Registry {
    open: Mutex<HashMap<String, Arc<Live>>>,
    settings: Settings,
    catalog: Catalog,
    store: Arc<IndexStore>,
    /// The index directory (layouts live in its `live/` folder).
    dir: PathBuf,
    /// `--redis`: notices to and from the other instances.
    fanout: Option<Arc<Fanout>>,
    /// Layouts known not to describe an open publication, by canonical
    /// name, with the length and mtime they had then.
    known: Mutex<HashMap<String, (u64, SystemTime)>>,
}

impl Registry {
    /// The registry, with every unfinished publication found in `dir`
    /// reopened as interrupted (call [`Registry::start`] from the runtime
    /// to run their timers).
    pub fn open(
        settings: Settings,
        catalog: Catalog,
        store: Arc<IndexStore>,
        dir: PathBuf,
        fanout: Option<Fanout>,
    ) -> Arc<Registry> {
        let registry = Arc::new(Registry {
            open: Mutex::new(HashMap::new()),
            settings,
            catalog,
            store,
            dir: dir.clone(),
            fanout: fanout.map(Arc::new),
            known: Mutex::new(HashMap::new()),
        });
        for path in published::all(&dir) {
            match registry.reopen(&path) {
                Ok(Some(live)) => {
                    tracing::info!(file = %Esc(&live.rel), chunks = live.progress().chunks,
                        "reopened an unfinished publication as interrupted");
                    registry.lock().insert(live.rel.clone(), live);
                }
                Ok(None) => {}
                // Another instance sharing the index directory writes it.
                Err(PublishError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => tracing::warn!(layout = %path.display(), error = %e, "could not reopen a publication"),
            }
        }
        registry
    }

    /// Starts the timers of the publications [`Registry::open`] reopened,
    /// and the Redis subscriber.
    pub fn start(self: &Arc<Self>) {
        let open: Vec<Arc<Live>> = self.lock().values().cloned().collect();
        for live in open {
            self.spawn_timer(live);
        }
        if let Some(fanout) = &self.fanout {
            let registry = Arc::downgrade(self);
            fanout.listen(move |notice| {
                if let Some(registry) = registry.upgrade() {
                    registry.heard(&notice);
                }
            });
        }
    }

    /// A notice from another instance: its follower here (if a viewer made
    /// one) reads the layout now.
    fn heard(&self, notice: &Notice) {
        if let Some(live) = self.lock().get(&notice.rel).filter(|l| l.is_follower()) {
            live.heard(notice.state);
            live.wake.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Live>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open publication of a resolved file, if it is one: written
    /// here, or by another instance (then followed from here on).
    pub fn find(self: &Arc<Self>, file: &Resolved) -> Option<Arc<Live>> {
        if let Some(live) = self.lock().get(&file.rel).cloned() {
            return (live.file_id == file.id && !live.ended()).then_some(live);
        }
        self.follow(file)
    }

    /// A follower of `file` if its layout says another instance is writing
    /// it. Costs a `stat` of the layout for a file that is not live; a
    /// layout is read only when it changed since it was last found not to
    /// describe an open publication of this file.
    fn follow(self: &Arc<Self>, file: &Resolved) -> Option<Arc<Live>> {
        let path = published::path_for(&self.dir, self.catalog.root(), &file.rel);
        let meta = std::fs::metadata(&path).ok()?;
        let seen = (meta.len(), meta.modified().ok()?);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.get(&file.rel) == Some(&seen) {
            return None;
        }
        let loaded = published::load(&path).ok();
        let open = loaded.filter(|l| {
            l.ended.is_none()
                && l.header.file == file.id
                && l.header.rel == file.rel
                && l.header.chunk_size == self.settings.chunk_size
        });
        let Some(loaded) = open else {
            if known.len() >= KNOWN_MAX {
                known.clear();
            }
            known.insert(file.rel.clone(), seen);
            return None;
        };
        drop(known);
        let live = match Live::follow(&loaded, file.file.clone(), self.settings) {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(file = %Esc(&file.rel), error = %e, "could not follow a publication");
                return None;
            }
        };
        let mut open = self.lock();
        if let Some(other) = open.get(&file.rel) {
            return Some(other.clone());
        }
        open.insert(file.rel.clone(), live.clone());
        drop(open);
        tracing::info!(file = %Esc(&file.rel), "following a publication written by another instance");
        self.spawn_follower(live.clone());
        Some(live)
    }

    /// Reads a follower's layout when told (Redis) or every [`FOLLOW_POLL`],
    /// until the publication ends or no viewer is left.
    fn spawn_follower(self: &Arc<Self>, live: Arc<Live>) {
        let registry = self.clone();
        let every = if self.fanout.is_some() { FOLLOW_CHECK } else { FOLLOW_POLL };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = live.wake.notified() => {}
                    () = tokio::time::sleep(every) => {}
                }
                let l = live.clone();
                let ended = match tokio::task::spawn_blocking(move || l.refresh()).await {
                    Ok(Ok(ended)) => ended,
                    Ok(Err(e)) => {
                        tracing::warn!(file = %Esc(&live.rel), error = %e, "could not read a followed layout");
                        true
                    }
                    Err(_) => true,
                };
                if ended || live.viewers() == 0 {
                    registry.forget(&live);
                    if ended {
                        live.announce_end();
                    }
                    return;
                }
            }
        });
    }

    /// Lets `live` go, if it is still the registered one.
    fn forget(&self, live: &Arc<Live>) {
        let mut open = self.lock();
        if open.get(&live.rel).is_some_and(|l| Arc::ptr_eq(l, live)) {
            open.remove(&live.rel);
        }
    }

    /// The open publication called `name` (for `GET /api/publish`).
    pub fn find_name(self: &Arc<Self>, name: &str) -> Result<Arc<Live>, PublishError> {
        let file = self.catalog.resolve(name).map_err(|_| PublishError::NotFound)?;
        self.find(&file).ok_or(PublishError::NotFound)
    }

    /// Lets a request publish to `name` from `offset`: into the open
    /// publication of that name, or a new one (a new file, or with
    /// `replace` a new version of a finished one). Blocking (creates and
    /// flushes files): run it on the blocking pool. Says whether it
    /// created the publication (whose timer [`Registry::started`] starts).
    pub fn begin(
        self: &Arc<Self>,
        name: &str,
        offset: Option<u64>,
        replace: bool,
    ) -> Result<(Arc<Live>, Token, bool), PublishError> {
        let mut open = self.lock();
        let how = match self.catalog.resolve(name) {
            Ok(file) => match open.get(&file.rel) {
                Some(live) if live.file_id == file.id && !live.ended() && !live.is_follower() => {
                    let live = live.clone();
                    drop(open);
                    let token = live.begin(offset)?;
                    return Ok((live, token, false));
                }
                // Not written here: an unfinished layout (another instance's,
                // or one whose writer is gone) is taken over only if its
                // writer let go of it.
                _ => match self.take_over(&file)? {
                    Some(taken) => {
                        open.insert(file.rel.clone(), taken.clone());
                        drop(open);
                        let token = taken.begin(offset)?;
                        return Ok((taken, token, true));
                    }
                    None if replace => Create::Replace,
                    None => return Err(PublishError::Exists),
                },
            },
            Err(_) => Create::New,
        };
        if offset.is_some_and(|o| o != 0) {
            return Err(PublishError::OffsetMismatch { offset: 0 });
        }
        let opened = self.catalog.writable(name, how).map_err(|e| match e {
            TreeError::Exists => PublishError::Exists,
            _ => PublishError::NotFound,
        })?;
        let id = hex(&sha256(format!("{}\0{:x}", opened.rel, fastrand::u128(..)).as_bytes())[..8]);
        let root = self.catalog.root().to_owned();
        let header = Header {
            format: published::FORMAT,
            root: root.clone(),
            rel: opened.rel.clone(),
            id: id.clone(),
            chunk_size: self.settings.chunk_size,
            file: crate::tree::root::FileId::of(&opened.meta),
        };
        let layout = Writer::create(&published::path_for(&self.dir, &root, &opened.rel), &header)?;
        let opening = Opening {
            rel: opened.rel.clone(),
            id,
            file: Arc::new(opened.file),
            layout,
            sealed: Vec::new(),
            whole: Sha256::new(),
            state: LiveState::Live,
        };
        let live = Live::new(opening, self.settings)?;
        let token = live.begin(Some(0))?;
        open.insert(opened.rel.clone(), live.clone());
        drop(open);
        tracing::info!(file = %Esc(&opened.rel), "publication started");
        Ok((live, token, true))
    }

    /// The publication `file` is, reopened here, if its layout is
    /// unfinished and nobody writes it any more; `Elsewhere` while another
    /// process does. Blocking.
    fn take_over(&self, file: &Resolved) -> Result<Option<Arc<Live>>, PublishError> {
        let path = published::path_for(&self.dir, self.catalog.root(), &file.rel);
        if !path.exists() {
            return Ok(None);
        }
        match self.reopen(&path) {
            Ok(Some(taken)) if taken.file_id == file.id => {
                tracing::info!(file = %Esc(&file.rel), "took over a publication its writer let go of");
                Ok(Some(taken))
            }
            Ok(_) => Ok(None),
            Err(PublishError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => Err(PublishError::Elsewhere),
            Err(e) => Err(e),
        }
    }

    /// Starts a new publication's timer (from the runtime, after `begin`).
    pub fn started(self: &Arc<Self>, live: &Arc<Live>) {
        self.spawn_timer(live.clone());
    }

    /// [`Live::append`], ending the publication as abandoned when it passed
    /// `--max-publish` or its text stopped being UTF-8 (its viewers are told
    /// at once rather than after `--publish-timeout`). Blocking.
    pub fn append(&self, live: &Arc<Live>, token: Token, bytes: &[u8]) -> Result<(), PublishError> {
        let appended = live.append(token, bytes);
        if let Err(PublishError::TooLarge { .. } | PublishError::NotText { .. }) = appended {
            self.end(live, LiveState::Abandoned);
        }
        appended
    }

    /// The request's body ended (`broken`: with its connection); with
    /// `end`, the publication ends `complete`. Blocking.
    pub fn finish(&self, live: &Arc<Live>, token: Token, broken: bool, end: bool) -> Result<(), PublishError> {
        live.finish(token, broken)?;
        if end && !broken {
            self.end(live, LiveState::Complete);
        }
        Ok(())
    }

    /// Ends `live`: its layout records the end, the index store takes the
    /// layout as the file's index, the registry lets it go, and only then
    /// are viewers told, so whatever they ask next finds the finished file.
    fn end(&self, live: &Arc<Live>, reason: LiveState) {
        match live.end(reason) {
            Ok(index) => self.store.adopt(live.file_id, &live.rel, index),
            Err(e) => tracing::error!(file = %Esc(&live.rel), error = %e, "could not end a publication"),
        }
        self.forget(live);
        tracing::info!(file = %Esc(&live.rel), chunks = live.progress().chunks, reason = reason.as_str(), "publication ended");
        live.announce_end();
    }

    /// The answer of `GET /api/publish` for a publication that ended, as
    /// long as its file is as it ended. Blocking (reads the layout).
    pub fn finished(&self, name: &str) -> Option<Publication> {
        let file = self.catalog.resolve(name).ok()?;
        let loaded = published::load(&published::path_for(&self.dir, self.catalog.root(), &file.rel)).ok()?;
        let ended = loaded.ended?;
        if loaded.header.file != file.id || ended.stamp != Stamp::of(&file.meta) {
            return None;
        }
        let root = loaded.index(&ended).root;
        Some(Publication {
            file: name.to_owned(),
            offset: ended.stamp.size,
            chunks: loaded.chunks.len() as u64,
            state: ended.end,
            root: hex(&root),
        })
    }

    /// Seals what is due and moves states on, until the publication ends;
    /// with Redis, also tells the other instances of every change.
    fn spawn_timer(self: &Arc<Self>, live: Arc<Live>) {
        if let Some(fanout) = self.fanout.clone() {
            let (mut seen, rel) = (live.subscribe(), live.rel.clone());
            tokio::spawn(async move {
                while seen.changed().await.is_ok() {
                    let now = *seen.borrow_and_update();
                    let (fanout, notice) =
                        (fanout.clone(), Notice { rel: rel.clone(), chunks: now.chunks, state: now.state });
                    let _ = tokio::task::spawn_blocking(move || fanout.tell(&notice)).await;
                    if now.state.ended() {
                        return;
                    }
                }
            });
        }
        let registry = self.clone();
        tokio::spawn(async move {
            loop {
                let deadline = live.next_deadline();
                let sleep = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = live.wake.notified() => {}
                    () = sleep => {}
                }
                if live.ended() {
                    return;
                }
                let (r, l) = (registry.clone(), live.clone());
                let done = tokio::task::spawn_blocking(move || match l.tick(Instant::now()) {
                    Ok(Due::Abandon) => {
                        r.end(&l, LiveState::Abandoned);
                        true
                    }
                    Ok(Due::Nothing) => false,
                    Err(e) => {
                        tracing::error!(file = %Esc(&l.rel), error = %e, "could not seal a chunk");
                        false
                    }
                })
                .await
                .unwrap_or(true);
                if done {
                    return;
                }
            }
        });
    }

    /// Reopens the publication a layout describes, if it is unfinished and
    /// of this root: its file cut back to the last sealed chunk, whose
    /// bytes are checked against the layout first.
    fn reopen(&self, path: &std::path::Path) -> Result<Option<Arc<Live>>, PublishError> {
        // The lock first: while another instance writes this publication,
        // nothing of it is read, cut or taken.
        let mut layout = Writer::take(path)?;
        let loaded = published::load(path)?;
        let root = self.catalog.root();
        if loaded.ended.is_some() || loaded.header.root != root || loaded.header.chunk_size != self.settings.chunk_size
        {
            return Ok(None);
        }
        let opened = self.catalog.writable(&loaded.header.rel, Create::Existing).map_err(|_| PublishError::NotFound)?;
        if crate::tree::root::FileId::of(&opened.meta) != loaded.header.file || opened.rel != loaded.header.rel {
            return Ok(None);
        }
        let size = loaded.chunks.last().map_or(0, |c| c.off + c.len);
        let mut whole = Sha256::new();
        for chunk in &loaded.chunks {
            let mut buf = vec![0; chunk.len as usize];
            std::os::unix::fs::FileExt::read_exact_at(&opened.file, &mut buf, chunk.off)?;
            if sha256(&buf) != chunk.sha256 {
                return Err(PublishError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("chunk at {} no longer matches its layout", chunk.off),
                )));
            }
            whole.update(&buf);
        }
        // Bytes past the last sealed chunk were never acknowledged.
        opened.file.set_len(size)?;
        opened.file.sync_data()?;
        layout.cut(loaded.intact)?;
        let header = loaded.header;
        let opening = Opening {
            rel: header.rel,
            id: header.id,
            file: Arc::new(opened.file),
            layout,
            sealed: loaded.chunks,
            whole,
            state: LiveState::Interrupted,
        };
        let live = Live::new(opening, self.settings)?;
        Ok(Some(live))
    }
}
