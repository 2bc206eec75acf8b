//! `chunkcast get` into a filesystem that fills up: a tmpfs of its own
//! (mounted when the tests run as root, else skipped with a message). It
//! stops with a clear "no space left" and a non-zero exit, never leaves a
//! wrong final file, and once space is freed a rerun finishes, fetching only
//! what was missing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;

/// A tmpfs of `mib` MiB on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u32) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a small tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!("skipped: cannot mount a tmpfs here: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left with a file of its own; returns its path.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.write_all(&block[..4096]);
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn get(server: &TestServer, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chunkcast"));
    cmd.args(["get", &server.url(""), "big.bin", "-o", out.to_str().unwrap()]).args(extra);
    cmd
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_disk_that_fills_up_stops_get_cleanly_and_a_rerun_finishes_with_what_was_missing() {
    let Some(fs) = Tmpfs::mount(8) else { return };
    let root = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(14);
    let original: Vec<u8> = (0..6 << 20).map(|_| rng.u8(..)).collect();
    std::fs::write(root.path().join("big.bin"), &original).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let out = fs.path().join("big.bin");

    // Another program fills the disk while the download runs.
    let child = get(&server, &out, &["--rate", "3M", "--quiet"]).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let filler = fs.fill();
    let res = child.wait_with_output().unwrap();
    let err = text(&res);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("no space left on the device of") && err.contains("big.bin.part"), "{err}");
    assert_eq!(err.lines().count(), 1, "one plain line: {err}");
    assert!(!out.exists(), "no final file from a download that did not finish");
    let part = std::fs::read(fs.path().join("big.bin.part")).unwrap();
    let intact = (0..part.len() / 4096)
        .filter(|&i| part[i * 4096..(i + 1) * 4096] == original[i * 4096..(i + 1) * 4096])
        .count();
    assert!(intact > 0 && intact < 1536, "a part of the file was verified: {intact} chunks");

    std::fs::remove_file(filler).unwrap();
    let res = get(&server, &out, &[]).output().unwrap();
    assert!(res.status.success(), "{}", text(&res));
    assert_eq!(std::fs::read(&out).unwrap(), original);
    assert!(text(&res).contains(&format!("{intact} resumed from disk")), "only what was missing: {}", text(&res));
}

#[test]
fn a_file_the_disk_cannot_hold_is_refused_before_anything_is_written() {
    let Some(fs) = Tmpfs::mount(4) else { return };
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("big.bin"), vec![7u8; 6 << 20]).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let out = fs.path().join("big.bin");
    let res = get(&server, &out, &[]).output().unwrap();
    let err = text(&res);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("needs 6.00 MiB more, and its filesystem has 4.00 MiB free"), "{err}");
    assert_eq!(std::fs::read_dir(fs.path()).unwrap().count(), 0, "nothing written");
}
