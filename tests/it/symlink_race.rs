//! Someone who can rename entries inside the served tree swaps a file (or a
//! directory) with a symlink out of the root, atomically and in a loop,
//! while clients fetch it every way there is: not one byte of the outside
//! file is served, and no index of it is cached.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::fsops::exchange;
use crate::common::*;

/// How long the attacker swaps.
const RACE: Duration = Duration::from_secs(3);

/// Two files of the same size that share no 16-byte window, so any outside
/// byte run in a response is recognisable.
fn contents() -> (Vec<u8>, Vec<u8>) {
    let inside: Vec<u8> = (0..3 * 4096 + 100).map(|i| b"inside! "[i % 8]).collect();
    let outside: Vec<u8> = (0..3 * 4096 + 100).map(|i| b"SECRET+ "[i % 8]).collect();
    (inside, outside)
}

fn has_outside(body: &[u8]) -> bool {
    body.windows(7).any(|w| w == b"SECRET+") || String::from_utf8_lossy(body).contains("SECRET+")
}

struct Tally {
    served: usize,
    not_found: usize,
}

/// Hits `name` through `/files`, `/api/manifest` and `/events` until the
/// race is over; panics on any outside byte or digest.
fn hammer(server: &TestServer, name: &str, inside_sha: &str, outside_sha: &str, over: &AtomicBool) -> Tally {
    let mut t = Tally { served: 0, not_found: 0 };
    let mut round = 0;
    while !over.load(Ordering::Relaxed) {
        round += 1;
        let path = match round % 3 {
            0 => format!("/files/{name}"),
            1 => format!("/api/manifest?file={}", q(name)),
            _ => format!("/events?file={}", q(name)),
        };
        let res = server.get(&path);
        match res.status {
            200 => t.served += 1,
            404 => {
                t.not_found += 1;
                continue;
            }
            s => panic!("{path}: unexpected status {s}: {}", res.text()),
        }
        assert!(!has_outside(&res.body), "{path} served outside bytes");
        assert!(!res.text().contains(outside_sha), "{path} served the outside file's digest");
        if path.starts_with("/api/manifest") {
            assert_eq!(res.json()["sha256"], inside_sha, "{path}");
        }
        if path.starts_with("/events") {
            for e in res.events().iter().filter(|e| e.event == "chunk") {
                assert!(!has_outside(&payload(e).1), "{path} streamed outside bytes");
            }
        }
    }
    t
}

/// Runs `swap` in a loop for [`RACE`] while four clients hammer `name`.
fn race(server: &TestServer, name: &str, inside: &[u8], outside: &[u8], swap: impl Fn() + Sync) {
    let (inside_sha, outside_sha) = (sha256_hex(inside), sha256_hex(outside));
    let over = AtomicBool::new(false);
    let tallies = std::thread::scope(|s| {
        let clients: Vec<_> =
            (0..4).map(|_| s.spawn(|| hammer(server, name, &inside_sha, &outside_sha, &over))).collect();
        let started = Instant::now();
        let mut swaps = 0u64;
        while started.elapsed() < RACE {
            swap();
            swaps += 1;
        }
        // An even number of swaps puts everything back where it was.
        if swaps % 2 == 1 {
            swap();
        }
        over.store(true, Ordering::Relaxed);
        clients.into_iter().map(|c| c.join().unwrap()).collect::<Vec<_>>()
    });
    let served: usize = tallies.iter().map(|t| t.served).sum();
    let missing: usize = tallies.iter().map(|t| t.not_found).sum();
    eprintln!("{name}: {served} responses served the inside file, {missing} were 404, none the outside one");
    assert!(served > 0, "the race must let some requests through to mean anything");

    // Afterwards the name serves the inside file, and the cached index is its.
    let manifest = server.get(&format!("/api/manifest?file={}", q(name))).json();
    assert_eq!(manifest["sha256"], inside_sha);
    let res = server.get(&format!("/files/{name}"));
    assert_eq!(res.body, inside);
    let streamed: Vec<u8> = server
        .get(&format!("/events?file={}", q(name)))
        .events()
        .iter()
        .filter(|e| e.event == "chunk")
        .flat_map(|e| payload(e).1)
        .collect();
    assert_eq!(streamed, inside);
}

fn outside_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_file_swapped_with_a_link_out_of_the_root_is_never_served() {
    let (inside, outside) = contents();
    let (root, out) = (tempfile::tempdir().unwrap(), outside_dir());
    std::fs::write(root.path().join("target"), &inside).unwrap();
    std::fs::write(out.path().join("safefile"), &outside).unwrap();
    std::os::unix::fs::symlink(out.path().join("safefile"), root.path().join("bait")).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let (a, b) = (root.path().join("target"), root.path().join("bait"));
    race(&server, "target", &inside, &outside, || exchange(&a, &b));
}

#[test]
fn a_relative_link_climbing_out_is_never_served_either() {
    let (inside, outside) = contents();
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("target"), &inside).unwrap();
    std::fs::write(parent.path().join("safefile"), &outside).unwrap();
    std::os::unix::fs::symlink("../secret", root.join("bait")).unwrap();
    let server = TestServer::start(&root, &[]);
    let (a, b) = (root.join("target"), root.join("bait"));
    race(&server, "target", &inside, &outside, || exchange(&a, &b));
}

#[test]
fn a_directory_swapped_with_a_link_to_an_outside_directory_is_never_served() {
    let (inside, outside) = contents();
    let (root, out) = (tempfile::tempdir().unwrap(), outside_dir());
    std::fs::create_dir(root.path().join("dir")).unwrap();
    std::fs::write(root.path().join("dir/f"), &inside).unwrap();
    std::fs::write(out.path().join("f"), &outside).unwrap();
    std::os::unix::fs::symlink(out.path(), root.path().join("bait")).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let (a, b) = (root.path().join("dir"), root.path().join("bait"));
    race(&server, "dir/f", &inside, &outside, || exchange(&a, &b));
}

/// In-root symlinks (to files and directories) still work after the change.
#[test]
fn links_that_stay_inside_the_root_are_still_served() {
    let root = tempfile::tempdir().unwrap();
    let p = root.path();
    std::fs::create_dir_all(p.join("a/b")).unwrap();
    std::fs::write(p.join("a/b/file.txt"), b"hello").unwrap();
    std::os::unix::fs::symlink("a/b/file.txt", p.join("rel")).unwrap();
    std::os::unix::fs::symlink(p.join("a/b/file.txt"), p.join("abs")).unwrap();
    std::os::unix::fs::symlink("a", p.join("dirlink")).unwrap();
    std::os::unix::fs::symlink("../../rel", p.join("a/b/up")).unwrap();
    let server = TestServer::start(p, &[]);
    for name in ["rel", "abs", "dirlink/b/file.txt", "a/b/up"] {
        let res = server.get(&format!("/files/{name}"));
        assert_eq!((res.status, res.body.as_slice()), (200, &b"hello"[..]), "{name}");
    }
    assert!(Path::new(p).join("a/b/up").exists());
}
