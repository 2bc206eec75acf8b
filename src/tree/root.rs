//! Opening names under the served root in one step that cannot leave it.
//!
//! Checking a path and then opening it again by name is a race: someone who
//! can rename entries inside the tree can swap a checked file for a symlink
//! to `/etc/shadow` in between. So every name is resolved *and opened*
//! relative to a descriptor of the root, and everything after that (fstat,
//! indexing, streaming, `/files`) uses the one descriptor that came back.
//!
//! - Fast path: `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (Linux 5.6+).
//!   The kernel refuses to leave the root and to follow any symlink, so the
//!   opened file's path is exactly the (already text-checked) name.
//! - When a symlink is in the way (`ELOOP`) or the kernel lacks `openat2`
//!   (`ENOSYS`), the name is walked one component at a time from the root
//!   descriptor with `O_NOFOLLOW`. Symlinks are read and followed by us, not
//!   the kernel, with a bounded depth, and only while the path they lead to
//!   stays inside the root and has no hidden component. A rename during the
//!   walk can make a name fail, never make it escape.
//!
//! Every open uses `O_NONBLOCK`, so a FIFO or a device never blocks a worker
//! in `open`; the `fstat` of the descriptor then decides: only regular files
//! (or directories, when asked for one) are served, anything else is absent.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Symlinks followed for one name, as the kernel's own limit (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// What a name must turn out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    File,
    Dir,
}

/// Which file a descriptor refers to, whatever its name is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        FileId { dev: meta.dev(), ino: meta.ino() }
    }
}

/// An entry opened under the root: its descriptor, the `fstat` of that
/// descriptor, and its canonical path relative to the root (`/`-separated,
/// empty for the root itself).
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub meta: Metadata,
    pub rel: String,
}

/// A descriptor of the served directory, and its canonical path.
#[derive(Debug)]
pub struct FsRoot {
    dir: OwnedFd,
    path: PathBuf,
    /// Cleared for good once the kernel answers `ENOSYS`.
    openat2: AtomicBool,
}

impl FsRoot {
    /// Opens `path` (which must be canonical) as the root.
    pub fn open(path: &Path) -> io::Result<FsRoot> {
        let c = cstring(path.as_os_str())?;
        // SAFETY: `c` is a valid NUL-terminated string; the result is checked.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        let dir = owned(fd)?;
        Ok(FsRoot { dir, path: path.to_owned(), openat2: AtomicBool::new(true) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns the `openat2` fast path off (tests use it to exercise the walk
    /// the server falls back to on kernels without it).
    pub fn use_openat2(&self, on: bool) {
        self.openat2.store(on, Ordering::Relaxed);
    }

    /// Opens `name` (relative, `/`-separated, already checked as text by the
    /// catalog; empty means the root) if it is a `want` inside the root. Any
    /// failure is `None`: absent, outside, hidden, a FIFO, unreadable.
    pub fn open_under(&self, name: &str, want: Want) -> Option<Opened> {
        if name.is_empty() {
            return match want {
                Want::Dir => self.finish(self.dir.as_raw_fd(), ".", want, String::new(), None),
                Want::File => None,
            };
        }
        if self.openat2.load(Ordering::Relaxed) {
            match self.open_beneath(name, want) {
                Ok(opened) => return opened,
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => self.openat2.store(false, Ordering::Relaxed),
                // A symlink on the way (ELOOP; ENOTDIR when a directory was
                // asked for), or a concurrent rename: walk it ourselves.
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::EAGAIN | libc::EXDEV | libc::ENOTDIR)) => {}
                Err(_) => return None,
            }
        }
        self.walk(name, want)
    }

    /// Is `rel` (a canonical relative path from [`Opened::rel`]) still the
    /// file `id`? Only compares identities, so it reveals nothing even if an
    /// ancestor was meanwhile swapped for a link out of the root.
    pub fn still(&self, rel: &str, id: FileId) -> bool {
        let Ok(c) = CString::new(rel) else { return false };
        // SAFETY: an all-zero `stat` is a valid value for fstatat to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dirfd, NUL-terminated path, `st` is writable.
        let rc = unsafe { libc::fstatat(self.dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        rc == 0 && st.st_dev == id.dev && st.st_ino == id.ino
    }

    /// `openat2` with the kernel enforcing "beneath the root, no symlinks".
    /// `Ok(None)` is a definite "not servable"; errors say why it failed.
    fn open_beneath(&self, name: &str, want: Want) -> io::Result<Option<Opened>> {
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
        let how = OpenHow {
            flags: open_flags(want) as u64,
            mode: 0,
            resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
        };
        // SAFETY: openat2(dirfd, path, &how, size) with a live dirfd, a
        // NUL-terminated path and a struct laid out as the kernel's.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        let file = File::from(owned(fd as RawFd)?);
        Ok(checked(file, want, name.to_owned(), None))
    }

    /// The fallback: one component at a time, never letting the kernel
    /// follow a symlink.
    fn walk(&self, name: &str, want: Want) -> Option<Opened> {
        // Components still to resolve, last first (so symlink targets can be
        // pushed in front of the rest).
        let mut todo: Vec<String> = name.split('/').rev().map(str::to_owned).collect();
        // The canonical path so far, and a descriptor of each of its directories.
        let mut rel: Vec<String> = Vec::new();
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        while let Some(comp) = todo.pop() {
            match comp.as_str() {
                "" | "." => {
                    if todo.is_empty() && want == Want::Dir {
                        let parent = dirs.last().map_or(self.dir.as_raw_fd(), |d| d.as_raw_fd());
                        return self.finish(parent, ".", want, rel.join("/"), None);
                    }
                    continue;
                }
                ".." => {
                    // Above the root is outside, whatever is there.
                    rel.pop()?;
                    dirs.pop();
                    if todo.is_empty() && want == Want::Dir {
                        let parent = dirs.last().map_or(self.dir.as_raw_fd(), |d| d.as_raw_fd());
                        return self.finish(parent, ".", want, rel.join("/"), None);
                    }
                    continue;
                }
                _ => {}
            }
            if comp.starts_with('.') {
                return None; // the real path would have a hidden component
            }
            let parent = dirs.last().map_or(self.dir.as_raw_fd(), |d| d.as_raw_fd());
            let last = todo.is_empty();
            let c = CString::new(comp.as_str()).ok()?;
            // SAFETY: live dirfd and NUL-terminated name; result checked.
            let fd =
                owned(unsafe { libc::openat(parent, c.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) })
                    .ok()?;
            let st = fstat(fd.as_raw_fd()).ok()?;
            match st.st_mode & libc::S_IFMT {
                libc::S_IFLNK => {
                    links += 1;
                    if links > MAX_LINKS {
                        return None;
                    }
                    let target = readlink(fd.as_raw_fd())?;
                    let target = match target.strip_prefix('/') {
                        // An absolute target counts only if it names a path
                        // under the (canonical) root; resolution restarts there.
                        Some(_) => {
                            let inside = Path::new(&target).strip_prefix(&self.path).ok()?;
                            rel.clear();
                            dirs.clear();
                            inside.to_str()?.to_owned()
                        }
                        None => target,
                    };
                    todo.extend(target.split('/').rev().map(str::to_owned));
                }
                libc::S_IFDIR if !last => {
                    rel.push(comp);
                    dirs.push(fd);
                }
                kind if last => {
                    let expected = if want == Want::Dir { libc::S_IFDIR } else { libc::S_IFREG };
                    if kind != expected {
                        return None;
                    }
                    rel.push(comp.clone());
                    return self.finish(parent, &comp, want, rel.join("/"), Some(&st));
                }
                _ => return None, // a file (or FIFO...) where a directory should be
            }
        }
        // The name resolved to a directory through `..` or a link, and a file was asked.
        None
    }

    /// Opens `comp` in `parent` for reading and checks what it is; with
    /// `seen`, it must also be the entry the walk just looked at.
    fn finish(&self, parent: RawFd, comp: &str, want: Want, rel: String, seen: Option<&libc::stat>) -> Option<Opened> {
        let c = CString::new(comp).ok()?;
        // SAFETY: live dirfd and NUL-terminated name; result checked.
        let fd = owned(unsafe { libc::openat(parent, c.as_ptr(), open_flags(want)) }).ok()?;
        checked(File::from(fd), want, rel, seen)
    }
}

/// How [`FsRoot::writable_under`] opens the file a publication appends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// A new file: fails with `AlreadyExists` if the name is taken.
    New,
    /// A new, empty version of the file, created if absent.
    Replace,
    /// The existing file (a publication reopened after a restart).
    Existing,
}

impl FsRoot {
    /// Opens `leaf` for reading and writing in the folder `parent` (a name
    /// under the root as [`FsRoot::open_under`] takes it; empty: the root),
    /// never following a symlink at `leaf`. `leaf` must be one plain,
    /// unhidden component (the catalog checks names as text first).
    pub fn writable_under(&self, parent: &str, leaf: &str, how: Create) -> io::Result<Opened> {
        let dir = self.open_under(parent, Want::Dir).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let c = CString::new(leaf).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let base = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
        let flags = base
            | match how {
                Create::New => libc::O_CREAT | libc::O_EXCL,
                Create::Replace => libc::O_CREAT | libc::O_TRUNC,
                Create::Existing => 0,
            };
        // SAFETY: live dirfd and NUL-terminated name; result checked.
        let fd = owned(unsafe { libc::openat(dir.file.as_raw_fd(), c.as_ptr(), flags, 0o644 as libc::c_uint) })?;
        let rel = if dir.rel.is_empty() { leaf.to_owned() } else { format!("{}/{leaf}", dir.rel) };
        checked(File::from(fd), Want::File, rel, None).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))
    }
}

/// Read-only, never following a final symlink, never blocking on a FIFO,
/// never becoming our controlling terminal.
fn open_flags(want: Want) -> libc::c_int {
    let base = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    match want {
        Want::File => base,
        Want::Dir => base | libc::O_DIRECTORY,
    }
}

/// `file` as an [`Opened`] if it is what was asked for (and the same entry as
/// `seen`, when given).
fn checked(file: File, want: Want, rel: String, seen: Option<&libc::stat>) -> Option<Opened> {
    let meta = file.metadata().ok()?;
    let ok = match want {
        Want::File => meta.is_file(),
        Want::Dir => meta.is_dir(),
    };
    let same = seen.is_none_or(|st| st.st_dev == meta.dev() && st.st_ino == meta.ino());
    (ok && same).then_some(Opened { file, meta, rel })
}

fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is valid; fstat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: live fd, writable buffer.
    if unsafe { libc::fstat(fd, &mut st) } == 0 {
        Ok(st)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The target of the symlink `fd` (opened with `O_PATH | O_NOFOLLOW`), if it
/// is UTF-8 (other targets cannot name a servable path anyway).
fn readlink(fd: RawFd) -> Option<String> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    let empty: &CStr = c"";
    // SAFETY: readlinkat on a symlink's own O_PATH descriptor with an empty
    // path (Linux 2.6.39+); it writes at most `buf.len()` bytes.
    let n = unsafe { libc::readlinkat(fd, empty.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 || n as usize >= buf.len() {
        return None;
    }
    buf.truncate(n as usize);
    String::from_utf8(buf).ok()
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The names in a directory opened by [`FsRoot::open_under`], without `.`
/// and `..`, read from its descriptor (never by path).
pub fn read_names(dir: File) -> io::Result<Vec<std::ffi::OsString>> {
    use std::os::fd::IntoRawFd;
    let fd = dir.into_raw_fd();
    // SAFETY: fdopendir takes ownership of `fd` (closed by closedir below).
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `fd` is still ours to close.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: `stream` is a live DIR*; the entry is valid until the next call.
        let entry = unsafe { libc::readdir64(stream) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated within the entry.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(OsStr::from_bytes(bytes).to_owned());
        }
    }
    // SAFETY: closes the stream and its descriptor exactly once.
    unsafe { libc::closedir(stream) };
    Ok(names)
}

/// `lstat` of `name` inside the directory `dir` (never following a final
/// symlink): what kind of entry it is, its size and times, for listings.
pub fn stat_at(dir: &File, name: &OsStr) -> Option<libc::stat> {
    let c = cstring(name).ok()?;
    // SAFETY: an all-zero `stat` is valid; fstatat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: live dirfd, NUL-terminated name, writable buffer.
    let rc = unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    (rc == 0).then_some(st)
}

impl FsRoot {
    /// The identity, size and mtime (ns) of whatever `rel` (a canonical
    /// relative path) names now, without following a final symlink; for
    /// pruning caches of files that were removed, replaced or changed.
    pub fn identity(&self, rel: &str) -> Option<(FileId, u64, u128)> {
        let c = CString::new(rel).ok()?;
        // SAFETY: an all-zero `stat` is valid; fstatat fills it on success.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: live dirfd, NUL-terminated path, writable buffer.
        let rc = unsafe { libc::fstatat(self.dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if rc != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return None;
        }
        let mtime_ns = (st.st_mtime.max(0) as u128) * 1_000_000_000 + st.st_mtime_nsec.max(0) as u128;
        Some((FileId { dev: st.st_dev, ino: st.st_ino }, st.st_size as u64, mtime_ns))
    }
}
