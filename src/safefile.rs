//! Files written safely: as a new file renamed into place, so a reader (or
//! a process killed mid-write) sees the old whole file or the new whole
//! file, never half of one, and a symlink someone planted is replaced, never
//! written through. Secrets (a TLS private key, the link key) are written
//! private and refused when every user of the machine can read them.

use std::fs::Metadata;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// A secret file anyone on the machine can read.
#[derive(Debug, thiserror::Error)]
#[error("{} is readable by every user of this machine (mode {mode:04o}); run `chmod 600 {}`", .path.display(), .path.display())]
pub struct Exposed {
    pub path: PathBuf,
    pub mode: u32,
}

/// Refuses a secret file whose "other" permission bits allow reading. A
/// group-readable key (Debian's `ssl-cert` group) is the operator's choice.
pub fn check_private(path: &Path, meta: &Metadata) -> Result<(), Exposed> {
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o004 != 0 {
        return Err(Exposed { path: path.to_owned(), mode });
    }
    Ok(())
}

/// Creates `dir` and its missing parents, each `0700`.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Writes `bytes` to `path` as a new file of the owner's only (0600 from
/// creation, never briefly readable by others) beside it, then renames it
/// over `path`: a symlink planted at `path` is replaced, its target never
/// written.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, 0o600)
}

/// Writes `bytes` to a new file (`mode`) beside `path`, flushed to disk,
/// then renames it over `path`.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    // One name per target, so a write killed half-way leaves one stray file
    // that the next write replaces, not one more per kill.
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    // A leftover (or a planted symlink) goes first; `create_new` then makes
    // a file of our own or fails, and never follows a link.
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let path = dir.path().join("cert.pem");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left");
    }

    #[test]
    fn files_others_can_read_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "k").unwrap();
        for (mode, ok) in [(0o600, true), (0o640, true), (0o400, true), (0o644, false), (0o604, false)] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let res = check_private(&key, &std::fs::metadata(&key).unwrap());
            assert_eq!(res.is_ok(), ok, "{mode:o}");
            if let Err(e) = res {
                assert!(e.to_string().contains(&format!("chmod 600 {}", key.display())), "{e}");
            }
        }
    }
}
