//! Named pipes (and anything else that is not a regular file) are absent:
//! a request for one gets 404 at once, and no worker or index thread ever
//! blocks opening it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::fsops::{exchange, mkfifo};
use crate::common::*;

#[test]
fn a_fifo_is_not_found_and_blocks_nothing() {
    let root = fixture_root();
    mkfifo(&root.path().join("pipe"));
    let server = TestServer::start(root.path(), &[]);
    // More requests than the server has workers: with a blocking open, the
    // first two would hang the whole server.
    for path in ["/files/pipe", "/api/manifest?file=pipe", "/events?file=pipe", "/events/chunk/0/1?file=pipe"] {
        for _ in 0..3 {
            server.get(path).assert_error(404, "not_found");
        }
    }
    let names: Vec<String> = server
        .get("/api/files")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().into())
        .collect();
    assert!(!names.iter().any(|n| n == "pipe"), "a FIFO is not listed: {names:?}");
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn a_file_swapped_for_a_fifo_mid_request_never_hangs_the_server() {
    let root = fixture_root();
    let (file, pipe) = (root.path().join("swapped.bin"), root.path().join("pipe"));
    std::fs::write(&file, vec![7u8; 3 * 4096]).unwrap();
    mkfifo(&pipe);
    let server = TestServer::start(root.path(), &[]);
    let over = AtomicBool::new(false);
    let (mut ok, mut absent) = (0, 0);
    std::thread::scope(|s| {
        let swapper = s.spawn(|| {
            let started = Instant::now();
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(2) || n % 2 == 1 {
                exchange(&file, &pipe);
                n += 1;
            }
            over.store(true, Ordering::Relaxed);
        });
        let health = s.spawn(|| {
            let mut answered = 0;
            while !over.load(Ordering::Relaxed) {
                assert_eq!(server.get("/healthz").status, 200);
                answered += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            answered
        });
        let mut round = 0;
        while !over.load(Ordering::Relaxed) {
            round += 1;
            let path = ["/files/swapped.bin", "/api/manifest?file=swapped.bin", "/events?file=swapped.bin"][round % 3];
            match server.get(path).status {
                200 => ok += 1,
                404 => absent += 1,
                s => panic!("{path}: {s}"),
            }
        }
        swapper.join().unwrap();
        assert!(health.join().unwrap() > 0, "/healthz answered throughout");
    });
    eprintln!("{ok} served, {absent} not found while swapping with a FIFO");
    assert!(ok > 0 && absent > 0, "the swap must have been seen both ways ({ok} ok, {absent} 404)");
    assert_eq!(server.get("/files/swapped.bin").body, vec![7u8; 3 * 4096]);
}
