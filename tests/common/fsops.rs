//! File-system moves an attacker inside the served tree can make: atomic
//! swaps (`renameat2(RENAME_EXCHANGE)`) and named pipes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// Atomically exchanges two directory entries (either may be a symlink).
pub fn exchange(a: &Path, b: &Path) {
    let (a, b) = (c(a), c(b));
    // SAFETY: two NUL-terminated paths; the result is checked.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
}

/// Creates a named pipe. Opening it for reading blocks until a writer comes
/// (unless opened with O_NONBLOCK).
pub fn mkfifo(path: &Path) {
    let p = c(path);
    // SAFETY: a NUL-terminated path; the result is checked.
    let rc = unsafe { libc::mkfifo(p.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// A temporary directory for many small files: in memory (`/dev/shm`) when
/// the machine has it, as tens of thousands of entries on a busy disk take
/// minutes.
pub fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("chunkcast-test-").tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}
