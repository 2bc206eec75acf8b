//! How the server reads served files: which reads are checked against the
//! index (`--verify-reads`), the identity a stream trusts the index by, and
//! the bounds and hooks around reading (index builds at once, a test hook).

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

/// `--verify-reads`: which streamed chunks the server hashes again before
/// sending them. Every client verifies every chunk against the manifest, so
/// hashing on the server only decides *where* a chunk that rotted on disk
/// (bytes changed behind an unchanged size, mtime and ctime) is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum VerifyReads {
    /// Every chunk on every endpoint: rot is refused before it is sent, at
    /// the cost of one SHA-256 pass per byte served (about half the
    /// server's CPU per byte).
    Always,
    /// Chunks of the range endpoint only (refills, which usually follow a
    /// failed verification on the client): `/events` trusts the index while
    /// the open file's identity is unchanged, and rot is caught where the
    /// client asks for the chunk again.
    #[default]
    Refills,
    /// No chunk: clients still verify, but a rotted chunk is sent again on
    /// every refill until the file's identity changes.
    Never,
}

impl VerifyReads {
    /// Whether a stream of this endpoint hashes its chunks.
    pub fn hashes(self, refill: bool) -> bool {
        match self {
            VerifyReads::Always => true,
            VerifyReads::Refills => refill,
            VerifyReads::Never => false,
        }
    }
}

/// What `fstat` of an open descriptor says about the file's version:
/// anything that writes to it moves one of these (a write moves mtime and
/// ctime; restoring mtime with `utimensat` moves ctime again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    pub fn of(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// `fstat` of the descriptor now (a few microseconds).
    pub fn now(file: &File) -> std::io::Result<Identity> {
        Ok(Identity::of(&file.metadata()?))
    }
}

/// Where a read happens, for [`ReadHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSite {
    /// A first-time index build.
    Index,
    /// A chunk read for a stream.
    Stream,
}

/// Called before every read of a served file with its path relative to the
/// root. A test hook, not a flag: tests set it on [`crate::Config`] to stand
/// in for a slow disk (a sleep) or to watch how many builds run at once.
#[derive(Clone)]
pub struct ReadHook(pub Arc<HookFn>);

/// What a [`ReadHook`] runs: the file's path relative to the root, and where.
pub type HookFn = dyn Fn(&str, ReadSite) + Send + Sync;

impl std::fmt::Debug for ReadHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadHook")
    }
}

impl ReadHook {
    pub fn call(hook: &Option<ReadHook>, rel: &str, site: ReadSite) {
        if let Some(hook) = hook {
            (hook.0)(rel, site);
        }
    }
}

/// Knobs the tests set on a [`crate::Config`] and no command-line flag
/// reaches.
#[derive(Debug, Clone, Default)]
pub struct TestHooks {
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    pub read: Option<ReadHook>,
}

/// First-time index builds at once: one per core. Each is a sequential read
/// plus SHA-256 (two threads, see [`crate::index::build`]); more at once
/// only share the same cores and disk, and a hundred requests for a hundred
/// new files would otherwise start a hundred passes.
pub fn default_index_builds() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
