//! The catalog: which files are served, and the one function that turns a
//! client-supplied name into a path that is guaranteed to be inside the root.

use std::fs::Metadata;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::error::ApiError;

/// A served file, as `GET /api/files` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Path relative to the root, `/`-separated.
    pub name: String,
    pub size: u64,
    /// RFC 3339, UTC, whole seconds.
    pub modified: String,
}

/// A name that passed every check: the canonical path inside the root and
/// the metadata read while checking it.
#[derive(Debug)]
pub struct Resolved {
    pub name: String,
    pub path: PathBuf,
    pub meta: Metadata,
}

/// The served directory. `root` is canonical, so a canonical candidate path
/// is inside it exactly when it starts with `root`.
#[derive(Debug, Clone)]
pub struct Catalog {
    root: PathBuf,
}

/// Longest name we look at; longer ones cannot exist on common file systems.
const MAX_NAME_LEN: usize = 4096;

impl Catalog {
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        Ok(Catalog { root: root.canonicalize()? })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a client-supplied, already percent-decoded name.
    ///
    /// The name is checked as text first (no empty, `.`, `..` or hidden
    /// components, no absolute path, no backslash, no NUL), then the joined
    /// path is canonicalized so symlinks are followed, and the result must
    /// still be a regular, non-hidden file under the root. Every failure is
    /// the same `NotFound`, so a probe cannot tell "exists outside" from
    /// "does not exist".
    pub fn resolve(&self, name: &str) -> Result<Resolved, ApiError> {
        if !is_safe_name(name) {
            return Err(ApiError::NotFound);
        }
        let path = self.visible(&self.root.join(name)).ok_or(ApiError::NotFound)?;
        let meta = std::fs::metadata(&path).map_err(|_| ApiError::NotFound)?;
        if !meta.is_file() {
            return Err(ApiError::NotFound);
        }
        Ok(Resolved { name: name.to_owned(), path, meta })
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
        let names: Vec<_> = c.list().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a/b/file.txt", "in", "top.bin"]);
    }

    /// One root for all property cases (they only read it).
    fn shared() -> &'static Catalog {
        static ROOT: std::sync::OnceLock<(tempfile::TempDir, Catalog)> = std::sync::OnceLock::new();
        &ROOT
            .get_or_init(|| {
                let root = hostile_root();
                let catalog = Catalog::new(root.path().to_owned()).unwrap();
                (root, catalog)
            })
            .1
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
            let c = shared();
            let name = parts.join(sep);
            if let Ok(found) = c.resolve(&name) {
                prop_assert!(is_safe_name(&name), "{name:?}");
                prop_assert!(found.path.starts_with(c.root()), "{name:?} -> {:?}", found.path);
                prop_assert!(found.meta.is_file());
                let rel = found.path.strip_prefix(c.root()).unwrap();
                prop_assert!(rel.components().all(|p| !p.as_os_str().to_string_lossy().starts_with('.')));
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(name in "\\PC{0,40}") {
            let _ = shared().resolve(&name);
        }
    }
}
