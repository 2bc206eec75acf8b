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
//! The change time is deliberately not part of the stamp: a rename, `chmod`
//! or new hard link moves it, and would rehash a multi-GiB file whose bytes
//! did not change. Content rewritten behind an unchanged size and mtime is
//! still caught: every streamed chunk is checked against its digest, and a
//! mismatch evicts the index.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::web::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::catalog::Resolved;
use crate::error::ApiError;
use crate::fsroot::FileId;
use crate::index::{self, FileIndex, Stamp};
use crate::logsafe::Esc;

/// Bumped whenever the persisted layout or the chunking rules change, so old
/// files in the index directory are ignored rather than misread.
const FORMAT: u32 = 2;

pub struct IndexStore {
    chunk_size: u32,
    dir: Option<PathBuf>,
    entries: Mutex<HashMap<FileId, Arc<Slot>>>,
    /// Files hashed so far (not loaded from disk): shows the cache working.
    builds: AtomicU64,
    /// Whole manifests serialized so far: shows their bytes being shared.
    serializations: AtomicU64,
}

struct Slot {
    stamp: Stamp,
    cell: OnceCell<Arc<FileIndex>>,
    /// The whole manifest's shared bytes ([`crate::manifest::tail`]).
    manifest: OnceCell<Bytes>,
}

impl Slot {
    fn new(stamp: Stamp) -> Arc<Slot> {
        Arc::new(Slot { stamp, cell: OnceCell::new(), manifest: OnceCell::new() })
    }
}

/// What goes to disk: the index plus what it was computed for (the file's
/// identity, and where it was found, for the log and for pruning).
#[derive(Deserialize)]
struct Persisted {
    format: u32,
    id: FileId,
    index: FileIndex,
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
            entries: Mutex::new(HashMap::new()),
            builds: AtomicU64::new(0),
            serializations: AtomicU64::new(0),
        }
    }

    /// How many indexes this store computed by hashing a file.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// The index of a resolved file, computing it at most once per version,
    /// from the file's own descriptor.
    pub async fn get(&self, file: &Resolved) -> Result<Arc<FileIndex>, ApiError> {
        let slot = self.slot(file);
        let index = slot.cell.get_or_try_init(|| self.load_or_build(file, slot.stamp)).await?;
        Ok(index.clone())
    }

    /// The index and the whole manifest's shared bytes, serialized at most
    /// once per index version, on the blocking pool (a big manifest takes
    /// long enough to stall a worker).
    pub async fn manifest(&self, file: &Resolved) -> Result<(Arc<FileIndex>, Bytes), ApiError> {
        let slot = self.slot(file);
        let index = slot.cell.get_or_try_init(|| self.load_or_build(file, slot.stamp)).await?.clone();
        let bytes = slot
            .manifest
            .get_or_try_init(|| {
                self.serializations.fetch_add(1, Ordering::Relaxed);
                let index = index.clone();
                async move {
                    tokio::task::spawn_blocking(move || crate::manifest::tail(&index))
                        .await
                        .map_err(|e| ApiError::Index(std::io::Error::other(e)))?
                        .map_err(|e| ApiError::Index(e.into()))
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
    fn slot(&self, file: &Resolved) -> Arc<Slot> {
        let stamp = Stamp::of(&file.meta);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let slot = entries.entry(file.id).or_insert_with(|| Slot::new(stamp));
        if slot.stamp != stamp {
            *slot = Slot::new(stamp);
        }
        slot.clone()
    }

    /// Forgets a file's index, e.g. after a chunk no longer matched it while
    /// its stamp did (content rewritten within one mtime tick).
    pub fn evict(&self, id: FileId) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        if let Some(file) = self.disk_path(id) {
            let _ = std::fs::remove_file(file);
        }
    }

    async fn load_or_build(&self, file: &Resolved, stamp: Stamp) -> Result<Arc<FileIndex>, ApiError> {
        let chunk_size = self.chunk_size;
        let id = file.id;
        let disk = self.disk_path(id);
        let loaded = {
            let disk = disk.clone();
            tokio::task::spawn_blocking(move || disk.as_deref().and_then(|d| read_persisted(d, id, stamp, chunk_size)))
                .await
                .map_err(|e| ApiError::Index(std::io::Error::other(e)))?
        };
        if let Some(index) = loaded {
            tracing::debug!(file = %Esc(&file.rel), "index loaded from disk");
            return Ok(Arc::new(index));
        }
        self.builds.fetch_add(1, Ordering::Relaxed);
        let (descriptor, rel): (Arc<File>, String) = (file.file.clone(), file.rel.clone());
        let index = tokio::task::spawn_blocking(move || -> std::io::Result<FileIndex> {
            let started = std::time::Instant::now();
            let index = index::build(&descriptor, chunk_size)?;
            tracing::info!(file = %Esc(&rel), size = index.size(), chunks = index.chunks(),
                ms = started.elapsed().as_millis() as u64, "indexed");
            if let Some(disk) = disk {
                if let Err(e) = write_persisted(&disk, id, &index) {
                    tracing::warn!(error = %e, "could not persist index");
                }
            }
            Ok(index)
        })
        .await
        .map_err(|e| ApiError::Index(std::io::Error::other(e)))?
        .map_err(ApiError::Index)?;
        Ok(Arc::new(index))
    }

    /// One file per (file identity, chunk size), named by a digest of both.
    fn disk_path(&self, id: FileId) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let key = format!("{}\0{}\0{}\0{}", FORMAT, self.chunk_size, id.dev, id.ino);
        Some(dir.join(format!("{}.json", &index::hex(&index::sha256(key.as_bytes()))[..32])))
    }
}

/// The borrowed twin of [`Persisted`], so writing needs no copy of the index.
#[derive(Serialize)]
struct PersistedRef<'a> {
    format: u32,
    id: FileId,
    index: &'a FileIndex,
}

fn read_persisted(disk: &Path, id: FileId, stamp: Stamp, chunk_size: u32) -> Option<FileIndex> {
    let bytes = std::fs::read(disk).ok()?;
    let p: Persisted = serde_json::from_slice(&bytes).ok()?;
    let ok = p.format == FORMAT
        && p.id == id
        && p.index.stamp == stamp
        && p.index.chunk_size == chunk_size
        && p.index.offsets.len() == p.index.hashes.len()
        && p.index.root == index::root_of(&p.index.hashes);
    ok.then_some(p.index)
}

/// Writes to a temporary name and renames, so a crash never leaves a torn
/// index behind.
fn write_persisted(disk: &Path, id: FileId, index: &FileIndex) -> std::io::Result<()> {
    let tmp = disk.with_extension(format!("tmp{}", std::process::id()));
    let body = serde_json::to_vec(&PersistedRef { format: FORMAT, id, index })?;
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, disk)
}

fn probe_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".probe{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}
