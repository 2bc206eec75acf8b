//! The catalog: which files are served, and the one function that turns a
//! client-supplied name into an open file that is guaranteed to be inside the
//! root (through [`super::root`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::error::TreeError;
use super::root::{Create, FileId, FsRoot, Opened, Want};

/// A served file or directory, as `GET /api/files?dir=` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Path relative to the root, `/`-separated.
    pub name: String,
    /// Bytes for a file, 0 for a directory.
    pub size: u64,
    /// RFC 3339, UTC, whole seconds.
    pub modified: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
}

/// Listings built at once. Each is one directory, read off the workers on
/// the blocking pool; the bound keeps a burst of them from filling that pool
/// and memory.
const MAX_LISTINGS: usize = 4;

/// Directories whose names are cached at once.
const MAX_CACHED_DIRS: usize = 1024;

/// Cached directory names, by (identity, mtime seconds, mtime nanoseconds).
type Lists = Mutex<HashMap<(FileId, i64, i64), Arc<Vec<String>>>>;

/// A name that passed every check, opened: the descriptor every later step
/// reads (index, stream, `/files`), its `fstat`, and where it really is.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The name the client asked for.
    pub name: String,
    /// The canonical path relative to the root (differs from `name` when an
    /// in-root symlink was followed).
    pub rel: String,
    pub file: Arc<File>,
    pub meta: Metadata,
    pub id: FileId,
}

/// One directory's listing in progress (see [`Catalog::listing`]).
pub struct Listing {
    fs: Arc<FsRoot>,
    /// The directory, opened once: every entry is examined beneath it.
    dir: File,
    names: Arc<Vec<String>>,
    next: usize,
    prefix: String,
}

impl Listing {
    /// Up to `max` more entries; empty at the end. Names that are not safe,
    /// entries that cannot be examined (gone meanwhile) and anything but
    /// regular files and directories inside the root are left out.
    pub fn next_page(&mut self, max: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        while out.len() < max && self.next < self.names.len() {
            let file_name = &self.names[self.next];
            self.next += 1;
            let name = format!("{}{file_name}", self.prefix);
            if !is_safe_name(&name) {
                continue;
            }
            let Some(st) = super::root::stat_at(&self.dir, std::ffi::OsStr::new(file_name)) else { continue };
            let (kind, size, mtime) = match st.st_mode & libc::S_IFMT {
                libc::S_IFREG => (EntryKind::File, st.st_size as u64, st.st_mtime),
                libc::S_IFDIR => (EntryKind::Dir, 0, st.st_mtime),
                // A symlink is what it leads to, if that is inside the root.
                libc::S_IFLNK => match self.fs.open_under(&name, Want::File) {
                    Some(f) => (EntryKind::File, f.meta.len(), f.meta.mtime()),
                    None => match self.fs.open_under(&name, Want::Dir) {
                        Some(d) => (EntryKind::Dir, 0, d.meta.mtime()),
                        None => continue,
                    },
                },
                _ => continue, // FIFOs, sockets, devices: never served
            };
            out.push(Entry { name, size, modified: rfc3339(mtime), kind });
        }
        out
    }
}

/// The served directory, held open as a descriptor. `root` is canonical.
#[derive(Debug, Clone)]
pub struct Catalog {
    root: PathBuf,
    fs: Arc<FsRoot>,
    lists: Arc<Lists>,
    /// Listings running at once; the rest wait their turn.
    listing: Arc<tokio::sync::Semaphore>,
}

/// Longest name we look at; longer ones cannot exist on common file systems.
const MAX_NAME_LEN: usize = 4096;

impl Catalog {
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        let root = root.canonicalize()?;
        let fs = Arc::new(FsRoot::open(&root)?);
        let listing = Arc::new(tokio::sync::Semaphore::new(MAX_LISTINGS));
        Ok(Catalog { root, fs, lists: Arc::default(), listing })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root descriptor, for checks that a stream's file is still there.
    pub fn fs(&self) -> &Arc<FsRoot> {
        &self.fs
    }

    /// Resolves and opens a client-supplied, already percent-decoded name.
    ///
    /// The name is checked as text first (no empty, `.`, `..` or hidden
    /// components, no absolute path, no backslash, no NUL), then opened in
    /// one step that cannot leave the root ([`FsRoot::open_under`]): in-root
    /// symlinks are followed, the real path must have no hidden component,
    /// and the descriptor must be a regular file. Every failure is the same
    /// `NotFound`, so a probe cannot tell "exists outside" from "does not
    /// exist" (or "is a FIFO").
    pub fn resolve(&self, name: &str) -> Result<Resolved, TreeError> {
        if !is_safe_name(name) {
            return Err(TreeError::NotFound);
        }
        let opened = self.fs.open_under(name, Want::File).ok_or(TreeError::NotFound)?;
        Ok(Resolved {
            name: name.to_owned(),
            rel: opened.rel,
            id: FileId::of(&opened.meta),
            file: Arc::new(opened.file),
            meta: opened.meta,
        })
    }

    /// Opens the file a publication writes: `name` checked as
    /// [`Catalog::resolve`] checks it, its folder opened beneath the root,
    /// the file itself opened without following a symlink. A name taken
    /// (for [`Create::New`]) is `Exists`; anything else that fails is
    /// `NotFound`, as for reading.
    pub fn writable(&self, name: &str, how: Create) -> Result<Opened, TreeError> {
        if !is_safe_name(name) {
            return Err(TreeError::NotFound);
        }
        let (parent, leaf) = name.rsplit_once('/').unwrap_or(("", name));
        self.fs.writable_under(parent, leaf, how).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => TreeError::Exists,
            _ => TreeError::NotFound,
        })
    }

    /// One directory's servable entries (`dir` empty: the root), sorted by
    /// name. `dir` goes through the same checks and the same one-step open
    /// as a file name, so an outside, hidden or non-directory `dir` is
    /// `NotFound`. Entries follow the rules of [`Catalog::resolve`]: hidden
    /// names are skipped, symlinks count only while they stay inside the
    /// root, only regular files and directories are listed, and an entry
    /// that cannot be examined (unreadable, gone meanwhile) is left out.
    /// Names are relative to the root, through `dir` as the client spelled
    /// it, so they can be passed back as `file=`, `/files/NAME` or `dir=`.
    ///
    /// The directory's names are read from its descriptor once per version
    /// (identity and mtime, which every create, delete or rename in it moves)
    /// and cached; sizes and times are read on every call, since a file can
    /// grow without its directory changing.
    pub fn list_dir(&self, dir: &str) -> Result<Vec<Entry>, TreeError> {
        let mut listing = self.listing(dir)?;
        let mut out = Vec::with_capacity(listing.names.len());
        loop {
            let page = listing.next_page(usize::MAX);
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }

    /// Whether `dir` is a folder the list would show (not hidden, inside
    /// the root): one open, no names read.
    pub fn is_dir(&self, dir: &str) -> bool {
        !dir.is_empty() && is_safe_name(dir) && self.fs.open_under(dir, Want::Dir).is_some()
    }

    /// [`Catalog::list_dir`] a page at a time: the directory opened and its
    /// (cached, shared) names read, each entry examined only when its page
    /// is asked for. A response that streams it holds one page, not the
    /// whole list, however slowly its client reads.
    pub fn listing(&self, dir: &str) -> Result<Listing, TreeError> {
        if !dir.is_empty() && !is_safe_name(dir) {
            return Err(TreeError::NotFound);
        }
        let opened = self.fs.open_under(dir, Want::Dir).ok_or(TreeError::NotFound)?;
        let names = self.names(&opened)?;
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        Ok(Listing { fs: self.fs.clone(), dir: opened.file, names, next: 0, prefix })
    }

    /// The next page of a listing, on the blocking pool (an entry's `stat`
    /// can wait for a slow disk), at most `MAX_LISTINGS` (4) pages at once.
    /// The permit is held for the page, not the response: a client that
    /// never reads holds none.
    pub async fn next_page(&self, mut listing: Listing, max: usize) -> Result<(Listing, Vec<Entry>), TreeError> {
        let _permit = self.listing.acquire().await?;
        Ok(tokio::task::spawn_blocking(move || {
            let page = listing.next_page(max);
            (listing, page)
        })
        .await?)
    }

    /// Every servable file under the root, sorted by name (for `chunkcast
    /// index`): [`Catalog::list_dir`] applied breadth-first, each directory
    /// walked once however many links lead to it (a set of identities, so
    /// the walk stays linear in the number of directories).
    pub fn walk(&self) -> Result<Vec<Entry>, TreeError> {
        let mut files = Vec::new();
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([String::new()]);
        while let Some(dir) = queue.pop_front() {
            let Some(opened) = self.fs.open_under(&dir, Want::Dir) else { continue };
            if !seen.insert(FileId::of(&opened.meta)) {
                continue;
            }
            let Ok(entries) = self.list_dir(&dir) else { continue };
            for e in entries {
                match e.kind {
                    EntryKind::Dir => queue.push_back(e.name),
                    EntryKind::File => files.push(e),
                }
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    /// The (cached) names in an opened directory, sorted.
    fn names(&self, dir: &Opened) -> Result<Arc<Vec<String>>, TreeError> {
        let key = (FileId::of(&dir.meta), dir.meta.mtime(), dir.meta.mtime_nsec());
        if let Some(names) = self.lists.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(names.clone());
        }
        let fd = dir.file.try_clone().map_err(TreeError::Io)?;
        let mut names: Vec<String> = super::root::read_names(fd)
            .map_err(TreeError::Io)?
            .into_iter()
            // Names that are not UTF-8 cannot be a JSON string or a request.
            .filter_map(|n| n.into_string().ok())
            .filter(|n| !is_hidden(Some(n)))
            .collect();
        names.sort();
        let names = Arc::new(names);
        let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        // A bound on memory, not an LRU: when full, start over (a listing is
        // one directory read away).
        if lists.len() >= MAX_CACHED_DIRS {
            lists.clear();
        }
        lists.insert(key, names.clone());
        Ok(names)
    }
}

/// The textual half of the name check; see [`Catalog::resolve`].
pub fn is_safe_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains(['\0', '\\']) {
        return false;
    }
    if name.starts_with('/') {
        return false;
    }
    name.split('/').all(|part| {
        let mut comps = Path::new(part).components();
        !part.is_empty()
            && !is_hidden(Some(part))
            && matches!(comps.next(), Some(Component::Normal(_)))
            && comps.next().is_none()
    })
}

fn is_hidden(component: Option<&str>) -> bool {
    component.is_none_or(|c| c.starts_with('.'))
}

fn rfc3339(secs: i64) -> String {
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(modified).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A root with files, a hidden file, a directory, and symlinks in and out.
    fn hostile_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("a/b")).unwrap();
        std::fs::write(p.join("a/b/file.txt"), b"x").unwrap();
        std::fs::write(p.join("top.bin"), b"x").unwrap();
        std::fs::write(p.join(".hidden"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("out")).unwrap();
        std::os::unix::fs::symlink("/etc", p.join("outdir")).unwrap();
        std::os::unix::fs::symlink("a/b/file.txt", p.join("in")).unwrap();
        std::os::unix::fs::symlink(".hidden", p.join("to-hidden")).unwrap();
        dir
    }

    #[test]
    fn good_names_resolve_and_bad_ones_do_not() {
        let root = hostile_root();
        let c = Catalog::new(root.path().to_owned()).unwrap();
        // Both ways of opening: the kernel's openat2 and the fallback walk.
        for openat2 in [true, false] {
            c.fs().use_openat2(openat2);
            check_names(&c);
        }
        let names: Vec<_> = c.walk().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a/b/file.txt", "in", "top.bin"]);
        let top: Vec<_> = c.list_dir("").unwrap().into_iter().map(|e| (e.name, e.kind)).collect();
        let want = [("a", EntryKind::Dir), ("in", EntryKind::File), ("top.bin", EntryKind::File)];
        assert_eq!(top, want.map(|(n, k)| (n.to_owned(), k)));
        for bad in ["outdir", ".hidden", "top.bin", "a/../..", "nope", "a/"] {
            assert!(c.list_dir(bad).is_err(), "{bad}");
        }
    }

    fn check_names(c: &Catalog) {
        for ok in ["a/b/file.txt", "top.bin", "in"] {
            assert!(c.resolve(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "out",
            "outdir/passwd",
            "to-hidden",
            "a",
            "a/b",
            "a//b/file.txt",
            "/top.bin",
            "a/../top.bin",
            "./top.bin",
            "a\\b",
            "top.bin\0",
            "top.bin/",
        ] {
            assert!(c.resolve(bad).is_err(), "{bad:?}");
        }
    }

    /// One root for all property cases (they only read it), opened twice:
    /// with openat2 (`[0]`) and with the fallback walk (`[1]`).
    fn catalogs() -> &'static [Catalog; 2] {
        static ROOT: std::sync::OnceLock<(tempfile::TempDir, [Catalog; 2])> = std::sync::OnceLock::new();
        &ROOT
            .get_or_init(|| {
                let root = hostile_root();
                let both = [(); 2].map(|_| Catalog::new(root.path().to_owned()).unwrap());
                both[1].fs().use_openat2(false);
                (root, both)
            })
            .1
    }

    fn shared() -> &'static Catalog {
        &catalogs()[0]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever a client sends, a resolved path is a regular file inside
        /// the root with no hidden component, and the name passed the textual check.
        #[test]
        fn resolve_never_leaves_the_root(parts in proptest::collection::vec(prop_oneof![
            Just(".."), Just("."), Just(""), Just("a"), Just("b"), Just("file.txt"), Just("top.bin"),
            Just("out"), Just("outdir"), Just("passwd"), Just("etc"), Just(".hidden"), Just("in"),
            Just("to-hidden"), Just("\\"), Just("\0"), Just("%2e%2e"), Just("é"), Just("/"),
        ], 0..8), sep in prop_oneof![Just("/"), Just("//"), Just("\\"), Just("")]) {
            let name = parts.join(sep);
            let [fast, walk] = catalogs();
            prop_assert_eq!(fast.resolve(&name).ok().map(|f| f.id), walk.resolve(&name).ok().map(|f| f.id));
            let c = shared();
            if let Ok(found) = c.resolve(&name) {
                prop_assert!(is_safe_name(&name), "{name:?}");
                prop_assert!(found.meta.is_file());
                // The descriptor is the file at the canonical path inside the root.
                let real = c.root().join(&found.rel).canonicalize().unwrap();
                prop_assert!(real.starts_with(c.root()), "{name:?} -> {real:?}");
                prop_assert_eq!(FileId::of(&std::fs::metadata(&real).unwrap()), found.id);
                prop_assert!(found.rel.split('/').all(|p| !p.starts_with('.')));
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(name in "\\PC{0,40}") {
            let _ = shared().resolve(&name);
        }
    }
}
