//! How served files are read: through a [`Disk`] (the real one in the
//! binary; tests hand the server a slow or watched one through
//! `server::server_on_with`, so nothing in the request path asks whether a
//! test is running), the identity a stream trusts its index by, and how many
//! first-time index builds run at once.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;

/// Where a read happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSite {
    /// A first-time index build.
    Index,
    /// A chunk read for a stream.
    Stream,
}

/// Reads of served files. `rel` (the file's path relative to the root) and
/// `site` say what is read, for a disk that watches.
pub trait Disk: Send + Sync + 'static {
    /// `pread`: up to `buf.len()` bytes at `at`.
    fn read_at(&self, file: &File, buf: &mut [u8], at: u64, rel: &str, site: ReadSite) -> io::Result<usize>;

    /// Fills `buf` from `at`, or fails (`UnexpectedEof` when the file is shorter).
    fn read_exact_at(&self, file: &File, buf: &mut [u8], at: u64, rel: &str, site: ReadSite) -> io::Result<()>;

    /// What the page cache holds at `at`, without waiting for the disk:
    /// `None` when nothing is cached or the kernel cannot say.
    fn read_cached(&self, file: &File, buf: &mut [u8], at: u64) -> Option<usize>;
}

/// The disk the binary reads through.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealDisk;

impl Disk for RealDisk {
    fn read_at(&self, file: &File, buf: &mut [u8], at: u64, _: &str, _: ReadSite) -> io::Result<usize> {
        file.read_at(buf, at)
    }

    fn read_exact_at(&self, file: &File, buf: &mut [u8], at: u64, _: &str, _: ReadSite) -> io::Result<()> {
        file.read_exact_at(buf, at)
    }

    /// `preadv2(RWF_NOWAIT)` (`None` on any error: not cached, or not
    /// supported here, which the blocking read then sorts out).
    fn read_cached(&self, file: &File, buf: &mut [u8], at: u64) -> Option<usize> {
        use std::os::fd::AsRawFd;
        let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        let at = libc::off_t::try_from(at).ok()?;
        // SAFETY: one iovec over `buf`, which stays borrowed mutably for the call.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) };
        usize::try_from(n).ok()
    }
}

/// What a [`WatchedDisk`] calls before every read: the file's path relative
/// to the root, and where.
pub type ReadHook = dyn Fn(&str, ReadSite) + Send + Sync;

/// A disk for tests: calls a hook before every read (to stand in for a slow
/// disk with a sleep, or to count builds at once) and has nothing in the
/// page cache, so every chunk read goes the slow way, on the blocking pool.
#[derive(Clone)]
pub struct WatchedDisk(pub Arc<ReadHook>);

impl Disk for WatchedDisk {
    fn read_at(&self, file: &File, buf: &mut [u8], at: u64, rel: &str, site: ReadSite) -> io::Result<usize> {
        (self.0)(rel, site);
        file.read_at(buf, at)
    }

    fn read_exact_at(&self, file: &File, buf: &mut [u8], at: u64, rel: &str, site: ReadSite) -> io::Result<()> {
        (self.0)(rel, site);
        file.read_exact_at(buf, at)
    }

    fn read_cached(&self, _: &File, _: &mut [u8], _: u64) -> Option<usize> {
        None
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
    pub fn now(file: &File) -> io::Result<Identity> {
        Ok(Identity::of(&file.metadata()?))
    }
}

/// First-time index builds at once: one per core. Each is a sequential read
/// plus SHA-256 (two threads, see [`super::index::build`]); more at once
/// only share the same cores and disk, and a hundred requests for a hundred
/// new files would otherwise start a hundred passes.
pub fn default_index_builds() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
