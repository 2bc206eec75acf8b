//! The index store: computes each file's index once and keeps it, in memory
//! and under the index directory, so neither a second request nor a restart
//! rehashes the file.
//!
//! Entries are keyed by the identity of the file actually opened (device and
//! inode from `fstat` of the request's descriptor, never a second `stat` of
//! the path, which a rename could point elsewhere) and checked against its
//! stamp (size, mtime) and the chunk size on every lookup. The index is
//! always computed from that same descriptor. Concurrent first requests for
//! one file share a single computation through a `OnceCell`.
//!
//! Both caches are bounded: the map keeps at most `max_entries` indexes
//! (least recently used out first), and a sweep, at most once a minute on
//! the blocking pool, drops entries (in memory and on disk) whose name no
//! longer leads to the same, unchanged file, then trims the directory to
//! `max_files` (oldest first) and removes temporary files a crash left.
//!
//! The change time is deliberately not part of the stamp: a rename, `chmod`
//! or new hard link moves it, and would rehash a multi-GiB file whose bytes
//! did not change. Content rewritten behind an unchanged size and mtime is
//! still caught: every streamed chunk is checked against its digest, and a
//! mismatch evicts the index.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::catalog::Resolved;
use super::disk::{default_index_builds, Disk, RealDisk};
use super::error::TreeError;
use super::index::{self, FileIndex, Stamp};
use super::published;
use super::root::{FileId, FsRoot};
use crate::logsafe::Esc;
use crate::protocol::{hex, root_of, sha256};

/// Bumped whenever the persisted layout or the chunking rules change, so old
/// files in the index directory are ignored rather than misread.
const FORMAT: u32 = 3;

/// Default bounds: indexes kept in memory, and files in the index directory.
pub const MAX_ENTRIES: usize = 4096;
pub const MAX_FILES: usize = 20_000;
/// How often the store looks for stale entries (lazily, on use).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// A temporary file older than this is a crashed write, not one in progress.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(600);

type Entries = Mutex<HashMap<FileId, Arc<Cached>>>;

pub struct IndexStore {
    chunk_size: u32,
    dir: Option<PathBuf>,
    entries: Arc<Entries>,
    /// The served root, to tell entries whose file is gone (set by `for_root`).
    fs: Option<Arc<FsRoot>>,
    max_entries: usize,
    max_files: usize,
    /// Uses so far: the clock of the least-recently-used bound.
    ticks: AtomicU64,
    last_sweep: Mutex<std::time::Instant>,
    sweeping: Arc<std::sync::atomic::AtomicBool>,
    /// Files hashed so far (not loaded from disk): shows the cache working.
    builds: AtomicU64,
    /// Whole manifests serialized so far: shows their bytes being shared.
    serializations: AtomicU64,
    /// First-time builds at once (see [`default_index_builds`]);
    /// the rest wait here, off the workers, so `/healthz`, listings and
    /// streams of indexed files keep answering meanwhile.
    building: tokio::sync::Semaphore,
    /// Whether indexes are still written to `dir` (until a write fails).
    persisting: Arc<AtomicBool>,
    /// How builds read files: the real disk, or a test's stand-in.
    disk: Arc<dyn Disk>,
}

struct Cached {
    stamp: Stamp,
    /// The canonical name the file was last reached by.
    rel: String,
    /// The store's tick when last used.
    used: AtomicU64,
    cell: OnceCell<Arc<FileIndex>>,
    /// The whole manifest's shared bytes ([`super::manifest::tail`]).
    manifest: OnceCell<Bytes>,
}

impl Cached {
    fn new(stamp: Stamp, rel: &str) -> Arc<Cached> {
        Arc::new(Cached {
            stamp,
            rel: rel.to_owned(),
            used: AtomicU64::new(0),
            cell: OnceCell::new(),
            manifest: OnceCell::new(),
        })
    }
}

/// The first line of an index file: what the index was computed for (so a
/// sweep can check the file without reading the index), and the SHA-256 of
/// the second line, the index itself, so a torn or corrupted file is
/// detected and rebuilt rather than served.
#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    id: FileId,
    /// The served root and the file's canonical path in it.
    root: PathBuf,
    rel: String,
    stamp: Stamp,
    chunk_size: u32,
    sum: String,
}

impl IndexStore {
    /// `dir` is where indexes persist. If it cannot be created or written, the
    /// store says so once, here, and keeps indexes in memory only.
    pub fn new(chunk_size: u32, dir: Option<PathBuf>) -> Self {
        let dir = dir.and_then(|dir| match probe_writable(&dir) {
            Ok(()) => Some(dir),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "index directory is not writable; indexes are kept in memory only");
                None
            }
        });
        IndexStore {
            chunk_size,
            dir,
            entries: Arc::default(),
            fs: None,
            max_entries: MAX_ENTRIES,
            max_files: MAX_FILES,
            ticks: AtomicU64::new(0),
            last_sweep: Mutex::new(std::time::Instant::now()),
            sweeping: Arc::default(),
            persisting: Arc::new(AtomicBool::new(true)),
            builds: AtomicU64::new(0),
            serializations: AtomicU64::new(0),
            building: tokio::sync::Semaphore::new(default_index_builds()),
            disk: Arc::new(RealDisk),
        }
    }

    /// At most `n` first-time builds at once (at least one).
    pub fn with_builds(mut self, n: usize) -> Self {
        self.building = tokio::sync::Semaphore::new(n.max(1));
        self
    }

    /// Reads index builds through `disk` (tests: a slow or watched one).
    pub fn with_disk(mut self, disk: Arc<dyn Disk>) -> Self {
        self.disk = disk;
        self
    }

    /// The served root: lets sweeps drop entries whose file is gone.
    pub fn for_root(mut self, fs: Arc<FsRoot>) -> Self {
        self.fs = Some(fs);
        self
    }

    /// Other bounds than [`MAX_ENTRIES`] and [`MAX_FILES`].
    pub fn with_bounds(mut self, max_entries: usize, max_files: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self.max_files = max_files;
        self
    }

    /// Indexes held in memory.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops stale entries now, on this thread (it reads the disk).
    pub fn sweep_now(&self) {
        self.sweeper().run();
    }

    fn sweeper(&self) -> Sweeper {
        Sweeper {
            entries: self.entries.clone(),
            dir: self.dir.clone(),
            fs: self.fs.clone(),
            max_entries: self.max_entries,
            max_files: self.max_files,
        }
    }

    /// Starts a sweep on the blocking pool when one is due and none runs.
    fn maybe_sweep(&self) {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < SWEEP_EVERY {
                return;
            }
            *last = std::time::Instant::now();
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let (sweeper, sweeping) = (self.sweeper(), self.sweeping.clone());
        rt.spawn_blocking(move || {
            sweeper.run();
            sweeping.store(false, Ordering::Release);
        });
    }

    /// How many indexes this store computed by hashing a file.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// The index of a resolved file, computing it at most once per version,
    /// from the file's own descriptor.
    pub async fn get(&self, file: &Resolved) -> Result<Arc<FileIndex>, TreeError> {
        let cached = self.cached(file);
        let index = cached.cell.get_or_try_init(|| self.load_or_build(file, cached.stamp)).await?;
        Ok(index.clone())
    }

    /// The index and the whole manifest's shared bytes, serialized at most
    /// once per index version, on the blocking pool (a big manifest takes
    /// long enough to stall a worker).
    pub async fn manifest(&self, file: &Resolved) -> Result<(Arc<FileIndex>, Bytes), TreeError> {
        let cached = self.cached(file);
        let index = cached.cell.get_or_try_init(|| self.load_or_build(file, cached.stamp)).await?.clone();
        let bytes = cached
            .manifest
            .get_or_try_init(|| {
                self.serializations.fetch_add(1, Ordering::Relaxed);
                let index = index.clone();
                async move {
                    tokio::task::spawn_blocking(move || super::manifest::tail(&index))
                        .await?
                        .map_err(|e| TreeError::Index(e.into()))
                }
            })
            .await?
            .clone();
        Ok((index, bytes))
    }

    /// How many whole manifests this store serialized.
    pub fn manifest_serializations(&self) -> u64 {
        self.serializations.load(Ordering::Relaxed)
    }

    /// The entry for this version of the file (a new one when it changed).
    fn cached(&self, file: &Resolved) -> Arc<Cached> {
        self.maybe_sweep();
        let stamp = Stamp::of(&file.meta);
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if !entries.contains_key(&file.id) && entries.len() >= self.max_entries {
            let excess = entries.len() + 1 - self.max_entries;
            evict_lru(&mut entries, excess);
        }
        let cached = entries.entry(file.id).or_insert_with(|| Cached::new(stamp, &file.rel));
        if cached.stamp != stamp || cached.rel != file.rel {
            *cached = Cached::new(stamp, &file.rel);
        }
        cached.used.store(tick, Ordering::Relaxed);
        cached.clone()
    }

    /// Takes `index` as the index of file `id`, reached as `rel`: a live
    /// publication that just ended, whose chunks are where it sealed them
    /// (its layout under the index directory says so after a restart; see
    /// [`super::published`]).
    pub fn adopt(&self, id: FileId, rel: &str, index: FileIndex) {
        let cached = Cached::new(index.stamp, rel);
        let _ = cached.cell.set(Arc::new(index));
        cached.used.store(self.ticks.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).insert(id, cached);
    }

    /// The index directory, when indexes persist there.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Forgets a file's index, e.g. after a chunk no longer matched it while
    /// its stamp did (content rewritten within one mtime tick).
    pub fn evict(&self, id: FileId) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        if let Some(file) = self.disk_path(id) {
            let _ = std::fs::remove_file(file);
        }
    }

    async fn load_or_build(&self, file: &Resolved, stamp: Stamp) -> Result<Arc<FileIndex>, TreeError> {
        let chunk_size = self.chunk_size;
        let id = file.id;
        let disk = self.disk_path(id);
        let loaded = {
            let disk = disk.clone();
            // A finished live publication is cut where it was sealed, not
            // where a pass over the file would cut it.
            let published = self.dir.clone().zip(self.fs.as_ref().map(|fs| fs.path().to_owned()));
            let rel = file.rel.clone();
            tokio::task::spawn_blocking(move || {
                published
                    .and_then(|(dir, root)| published::finished_index(&dir, &root, &rel, id, stamp, chunk_size))
                    .or_else(|| disk.as_deref().and_then(|d| read_persisted(d, id, stamp, chunk_size)))
            })
            .await?
        };
        if let Some(index) = loaded {
            tracing::debug!(file = %Esc(&file.rel), "index loaded from disk");
            return Ok(Arc::new(index));
        }
        // Waiting for a permit is an await, not a blocked thread: the worker
        // serves other requests meanwhile.
        let _permit = self.building.acquire().await?;
        self.builds.fetch_add(1, Ordering::Relaxed);
        let (descriptor, rel): (Arc<File>, String) = (file.file.clone(), file.rel.clone());
        let root = self.fs.as_ref().map(|fs| fs.path().to_owned()).unwrap_or_default();
        let reader = self.disk.clone();
        let persisting = self.persisting.clone();
        let disk = disk.filter(|_| persisting.load(Ordering::Relaxed));
        let index = tokio::task::spawn_blocking(move || -> std::io::Result<FileIndex> {
            let started = std::time::Instant::now();
            let index = index::build_from(&descriptor, chunk_size, &*reader, &rel)?;
            tracing::info!(file = %Esc(&rel), size = index.size(), chunks = index.chunks(),
                ms = started.elapsed().as_millis() as u64, "indexed");
            if let Some(disk) = disk {
                let header = Header { format: FORMAT, id, root, rel, stamp, chunk_size, sum: String::new() };
                // A directory that fills up (or fails otherwise) is given up
                // on once, with one warning: indexes stay in memory, and
                // every later build does not try and warn again.
                if let Err(e) = write_persisted(&disk, header, &index) {
                    if persisting.swap(false, Ordering::Relaxed) {
                        tracing::warn!(dir = %disk.parent().unwrap_or(&disk).display(), error = %e,
                            "could not write to the index directory; indexes are kept in memory only from now on");
                    }
                }
            }
            Ok(index)
        })
        .await?
        .map_err(TreeError::Index)?;
        Ok(Arc::new(index))
    }

    /// One file per (file identity, chunk size), named by a digest of both.
    fn disk_path(&self, id: FileId) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let key = format!("{}\0{}\0{}\0{}", FORMAT, self.chunk_size, id.dev, id.ino);
        Some(dir.join(format!("{}.json", &hex(&sha256(key.as_bytes()))[..32])))
    }
}

/// An index file's content if it is intact and describes `id` at `stamp`.
fn read_persisted(disk: &Path, id: FileId, stamp: Stamp, chunk_size: u32) -> Option<FileIndex> {
    let bytes = std::fs::read(disk).ok()?;
    let split = memchr::memchr(b'\n', &bytes)?;
    let header: Header = serde_json::from_slice(&bytes[..split]).ok()?;
    let body = &bytes[split + 1..];
    let fresh = header.format == FORMAT && header.id == id && header.stamp == stamp && header.chunk_size == chunk_size;
    if !fresh || hex(&sha256(body)) != header.sum {
        return None;
    }
    let index: FileIndex = serde_json::from_slice(body).ok()?;
    let ok = index.stamp == stamp
        && index.chunk_size == chunk_size
        && index.offsets.len() == index.hashes.len()
        && index.root == root_of(&index.hashes);
    ok.then_some(index)
}

/// Just the first line of an index file (a sweep never reads the index).
fn read_header(disk: &Path) -> Option<Header> {
    use std::io::{BufRead, Read};
    let mut line = Vec::new();
    std::io::BufReader::new(File::open(disk).ok()?.take(64 * 1024)).read_until(b'\n', &mut line).ok()?;
    serde_json::from_slice(line.strip_suffix(b"\n")?).ok()
}

/// Writes to a temporary name and renames, so a crash never leaves a torn
/// index behind. The temporary name is unique per process and per write:
/// two servers sharing an index directory (or two writes in one) never
/// write into the same temporary file.
fn write_persisted(disk: &Path, mut header: Header, index: &FileIndex) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = disk.with_extension(format!("tmp.{}.{n}.{:x}", std::process::id(), fastrand::u32(..)));
    let body = serde_json::to_vec(index)?;
    header.sum = hex(&sha256(&body));
    let mut out = serde_json::to_vec(&header)?;
    out.push(b'\n');
    out.extend_from_slice(&body);
    // A write cut short (a full disk) leaves no torn temporary file behind.
    std::fs::write(&tmp, out).and_then(|()| std::fs::rename(&tmp, disk)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Drops the `n` least recently used entries.
fn evict_lru(entries: &mut HashMap<FileId, Arc<Cached>>, n: usize) {
    let mut by_use: Vec<(u64, FileId)> = entries.iter().map(|(id, s)| (s.used.load(Ordering::Relaxed), *id)).collect();
    by_use.sort_unstable_by_key(|(used, _)| *used);
    for (_, id) in by_use.into_iter().take(n) {
        entries.remove(&id);
    }
}

/// What a sweep needs, owned, so it can run on the blocking pool.
struct Sweeper {
    entries: Arc<Entries>,
    dir: Option<PathBuf>,
    fs: Option<Arc<FsRoot>>,
    max_entries: usize,
    max_files: usize,
}

impl Sweeper {
    fn run(&self) {
        let started = std::time::Instant::now();
        let (kept, dropped) = self.memory();
        let (files, removed) = self.disk();
        tracing::debug!(kept, dropped, files, removed, ms = started.elapsed().as_millis() as u64, "index sweep");
    }

    /// Whether `rel` still names the file `id`, unchanged since `stamp`.
    fn current(&self, rel: &str, id: FileId, stamp: Stamp) -> bool {
        match &self.fs {
            Some(fs) => fs.identity(rel) == Some((id, stamp.size, stamp.mtime_ns)),
            None => true, // no root to check against: keep
        }
    }

    fn memory(&self) -> (usize, usize) {
        let snapshot: Vec<(FileId, Arc<Cached>)> = {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.iter().map(|(id, s)| (*id, s.clone())).collect()
        };
        // The file-system checks run without the lock held.
        let stale: Vec<FileId> =
            snapshot.iter().filter(|(id, s)| !self.current(&s.rel, *id, s.stamp)).map(|(id, _)| *id).collect();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for id in &stale {
            // Only if it is still the entry that was checked.
            if entries.get(id).is_some_and(|s| snapshot.iter().any(|(i, o)| i == id && Arc::ptr_eq(s, o))) {
                entries.remove(id);
            }
        }
        if entries.len() > self.max_entries {
            let excess = entries.len() - self.max_entries;
            evict_lru(&mut entries, excess);
        }
        (entries.len(), stale.len())
    }

    fn disk(&self) -> (usize, usize) {
        let Some(dir) = &self.dir else { return (0, 0) };
        let Ok(listing) = std::fs::read_dir(dir) else { return (0, 0) };
        let root = self.fs.as_ref().map(|fs| fs.path());
        let mut kept: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        let mut removed = 0;
        for item in listing.flatten() {
            let path = item.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Ok(meta) = item.metadata() else { continue };
            let modified = meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
            let remove = if name.contains(".tmp.") {
                // Another writer's file in progress, unless it is old.
                modified.elapsed().is_ok_and(|age| age > STALE_TMP)
            } else if name.ends_with(".json") {
                match read_header(&path) {
                    // Another server's root: not ours to judge, but counted.
                    Some(h) if Some(h.root.as_path()) != root => false,
                    Some(h) => h.format != FORMAT || !self.current(&h.rel, h.id, h.stamp),
                    None => true, // an older format, or corrupt
                }
            } else {
                false
            };
            if remove {
                removed += usize::from(std::fs::remove_file(&path).is_ok());
            } else if name.ends_with(".json") {
                kept.push((modified, path));
            }
        }
        if kept.len() > self.max_files {
            kept.sort();
            let excess = kept.len() - self.max_files;
            for (_, path) in kept.drain(..excess) {
                removed += usize::from(std::fs::remove_file(path).is_ok());
            }
        }
        (kept.len(), removed)
    }
}

fn probe_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".probe{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}
