//! The catalog: which files are served, and the one function that turns a
//! client-supplied name into an open file that is guaranteed to be inside the
//! root (through [`crate::fsroot`]).

use std::fs::{File, Metadata};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::error::ApiError;
use crate::fsroot::{FileId, FsRoot, Want};

/// A served file, as `GET /api/files` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Path relative to the root, `/`-separated.
    pub name: String,
    pub size: u64,
    /// RFC 3339, UTC, whole seconds.
    pub modified: String,
}

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

/// The served directory, held open as a descriptor. `root` is canonical.
#[derive(Debug, Clone)]
pub struct Catalog {
    root: PathBuf,
    fs: Arc<FsRoot>,
}

/// Longest name we look at; longer ones cannot exist on common file systems.
const MAX_NAME_LEN: usize = 4096;

impl Catalog {
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        let root = root.canonicalize()?;
        let fs = Arc::new(FsRoot::open(&root)?);
        Ok(Catalog { root, fs })
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
    pub fn resolve(&self, name: &str) -> Result<Resolved, ApiError> {
        if !is_safe_name(name) {
            return Err(ApiError::NotFound);
        }
        let opened = self.fs.open_under(name, Want::File).ok_or(ApiError::NotFound)?;
        Ok(Resolved {
            name: name.to_owned(),
            rel: opened.rel,
            id: FileId::of(&opened.meta),
            file: Arc::new(opened.file),
            meta: opened.meta,
        })
    }

    /// Every servable file under the root, sorted by name. Walks the tree with
    /// the same rules as [`Catalog::resolve`]: hidden entries are skipped,
    /// symlinks are followed only while they stay inside the root, and a
    /// directory reached twice (a symlink loop) is walked once.
    pub fn list(&self) -> std::io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut seen_dirs = vec![self.root.clone()];
        let mut stack = vec![(self.root.clone(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            for item in std::fs::read_dir(&dir)? {
                let Ok(item) = item else { continue };
                let Some(file_name) = item.file_name().to_str().map(str::to_owned) else {
                    continue; // not representable as a JSON string name
                };
                if is_hidden(Some(&file_name)) {
                    continue;
                }
                let name = format!("{prefix}{file_name}");
                // The same two checks as `resolve`, so the list holds exactly
                // what can be served.
                if !is_safe_name(&name) {
                    continue;
                }
                let Some(real) = self.visible(&item.path()) else { continue };
                let Ok(meta) = std::fs::metadata(&real) else { continue };
                if meta.is_dir() {
                    if !seen_dirs.contains(&real) {
                        seen_dirs.push(real.clone());
                        stack.push((real, format!("{name}/")));
                    }
                } else if meta.is_file() {
                    out.push(Entry { modified: rfc3339(&meta), size: meta.len(), name });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

impl Catalog {
    /// The canonical form of `path` (symlinks followed) if it lies inside the
    /// root and no component of it below the root is hidden.
    fn visible(&self, path: &Path) -> Option<PathBuf> {
        let real = path.canonicalize().ok()?;
        let rel = real.strip_prefix(&self.root).ok()?;
        let hidden = rel.components().any(|c| is_hidden(c.as_os_str().to_str()));
        (!hidden).then_some(real)
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

fn rfc3339(meta: &Metadata) -> String {
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
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
        let names: Vec<_> = c.list().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a/b/file.txt", "in", "top.bin"]);
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
