//! `chunkcast get` tells the user what is happening, at once: a malformed
//! URL fails in well under a second, a server that is down is reported
//! while retrying, and Ctrl-C says how to resume.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn chunkcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
}

#[test]
fn a_malformed_url_fails_at_once_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (url, why) in [("notaurl", "http://"), ("ftp://h/x", "only http"), ("http://h:99999", "port")] {
        let started = Instant::now();
        let res = chunkcast().args(["get", url, "x.bin"]).current_dir(dir.path()).output().unwrap();
        let elapsed = started.elapsed();
        let msg = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success());
        assert!(msg.contains(&format!("cannot use {url:?} as a URL")) && msg.contains(why), "{msg}");
        assert!(elapsed < Duration::from_secs(1), "{url}: {elapsed:?}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}

#[test]
fn a_server_that_is_down_is_reported_while_retrying() {
    // A port that was just free: connecting is refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = chunkcast()
        .args(["get", &format!("http://{addr}"), "x.bin", "--retries", "10"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let elapsed = started.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(elapsed < Duration::from_secs(2), "first words after {elapsed:?}");
    assert!(first.contains(&format!("cannot connect to {addr}: connection refused")), "{first}");
    // Full jitter may pick a delay that rounds to nothing: "retrying now".
    assert!(
        (first.contains("retrying in") || first.contains("retrying now")) && first.contains("attempt 2 of 11"),
        "{first}"
    );
}

#[test]
fn ctrl_c_says_that_the_same_command_resumes() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("slow.bin"), vec![7u8; 1 << 20]).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let child = chunkcast()
        .args(["get", &server.url(""), "slow.bin", "--rate", "64K"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a chunk is on disk, then interrupt as a terminal would.
    let part = dir.path().join("slow.bin.part");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(part.exists() && std::fs::read(&part).unwrap().contains(&7)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let res = child.wait_with_output().unwrap();
    let msg = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(130), "{msg}");
    assert!(msg.contains("interrupted") && msg.contains("run the same command again to resume"), "{msg}");
    assert!(msg.contains("slow.bin.part"), "{msg}");
    assert!(part.exists(), "the part file stays for the resume");
}

#[test]
fn the_urls_people_paste_download_the_file() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let name = "nested/deeper/note.txt";
    let want = std::fs::read(root.path().join(name)).unwrap();
    for url in [
        server.url(&format!("/files/{name}")),
        server.url("/?file=nested%2Fdeeper%2Fnote.txt"),
        server.url("/index.html?file=nested/deeper/note.txt"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let res = chunkcast().args(["get", &url, "--quiet"]).current_dir(dir.path()).output().unwrap();
        assert!(res.status.success(), "{url}: {}", String::from_utf8_lossy(&res.stderr));
        assert_eq!(std::fs::read(dir.path().join("note.txt")).unwrap(), want, "{url}");
    }
}
