//! `chunkcast get -o` on what is not a regular file: standard output (`-`),
//! a named pipe and a device node get the verified bytes written straight
//! through, in order, and are never replaced by a file.

use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

/// A file of `len` bytes spanning many 4 KiB chunks, every byte value.
fn served(len: usize) -> (tempfile::TempDir, Vec<u8>) {
    let root = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(len as u64);
    let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
    std::fs::write(root.path().join("data.bin"), &bytes).unwrap();
    (root, bytes)
}

fn get(server: &TestServer, out: &str, dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), "data.bin", "-o", out, "--verify-sha256"])
        .current_dir(dir)
        .output()
        .unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn dash_streams_the_verified_bytes_to_standard_output_in_order() {
    let (root, bytes) = served(100_000);
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let res = get(&server, "-", dir.path());
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(res.stdout == bytes, "stdout carries exactly the file ({} bytes)", res.stdout.len());
    assert!(names_in(dir.path()).is_empty(), "no file named `-`, no part file: {:?}", names_in(dir.path()));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("standard output") || stderr.contains("-:"), "{stderr}");
}

#[test]
fn a_named_pipe_is_written_through_and_stays_a_pipe() {
    let (root, bytes) = served(70_000);
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let res = get(&server, fifo.to_str().unwrap(), dir.path());
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(reader.join().unwrap() == bytes, "the reader got the file, in order");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
    assert_eq!(names_in(dir.path()), ["pipe"], "no part file next to it");
}

/// As root, a device node (a copy of /dev/null: char 1:3) made in a temp
/// dir: the download is written to the device, never renamed over it.
/// Without root, `/dev/null` itself (which cannot be harmed then).
#[test]
fn a_device_node_is_written_through_and_never_replaced() {
    let (root, _) = served(50_000);
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let node = if unsafe { libc::geteuid() } == 0 {
        let node = dir.path().join("null");
        let c = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) }, 0);
        node
    } else {
        Path::new("/dev/null").to_owned()
    };
    let res = get(&server, node.to_str().unwrap(), dir.path());
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let meta = std::fs::symlink_metadata(&node).unwrap();
    assert!(meta.file_type().is_char_device(), "still a character device");
    let leftovers: Vec<_> = names_in(dir.path()).into_iter().filter(|n| n != "null").collect();
    assert!(leftovers.is_empty(), "no part file: {leftovers:?}");
    assert!(!Path::new("/dev/null.part").exists());
}
