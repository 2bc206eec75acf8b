//! Bounds on reading (issue 10): first-time index builds run a few at a
//! time while the server keeps answering, and a read that stalls stalls its
//! own stream only, not the worker it runs for. A gate in the read hook
//! stands in for a slow disk; the server runs one worker, so anything done
//! on the worker would block every request.

use std::sync::Arc;

use crate::common::gate::Gate;
use crate::common::*;
use chunkcast::tree::disk::ReadSite;

fn write_file(root: &std::path::Path, name: &str, chunks: usize, seed: u8) -> Vec<u8> {
    let bytes: Vec<u8> = (0..chunks * 4096).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) | 0x80).collect();
    std::fs::write(root.join(name), &bytes).unwrap();
    bytes
}

/// Every chunk of a finished stream, checked against its header digest; the
/// payloads joined.
fn streamed_bytes(events: &[chunkcast::protocol::sse::Event]) -> Vec<u8> {
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("end"), "{events:?}");
    let mut out = Vec::new();
    for e in events.iter().filter(|e| e.event == "chunk") {
        let (_, bytes) = payload(e);
        let head: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(sha256_hex(&bytes), head["sha256"]);
        out.extend_from_slice(&bytes);
    }
    out
}

#[test]
fn first_index_builds_are_bounded_and_the_server_answers_meanwhile() {
    const FILES: usize = 8;
    const BUILDS: usize = 2;
    let root = fixture_root();
    let indexed = write_file(root.path(), "indexed.bin", 6, 1);
    let new: Vec<Vec<u8>> = (0..FILES).map(|i| write_file(root.path(), &format!("new-{i}.bin"), 3, i as u8)).collect();
    let gate = Arc::new(Gate::default());
    let server = Arc::new(TestServer::start_configured(
        root.path(),
        &["serve", "--chunk-size", "4K", "--no-index-dir"],
        |c, hooks| {
            hooks.workers = Some(1);
            c.index_builds = BUILDS;
            hooks.disk = Some(gate.disk(ReadSite::Index, "new-"));
        },
    ));
    assert_eq!(server.get("/api/manifest?file=indexed.bin").status, 200);

    // Many requests for files never indexed: only BUILDS start, the rest queue.
    let requests: Vec<_> = (0..FILES)
        .map(|i| {
            let server = server.clone();
            std::thread::spawn(move || server.get(&format!("/api/manifest?file=new-{i}.bin")).json())
        })
        .collect();
    gate.wait_for(BUILDS);
    // The queued builds stay queued while the running ones are stuck.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(gate.waiting(), BUILDS);

    // Meanwhile the one worker answers /healthz and streams an indexed file.
    let health = server.get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(streamed_bytes(&server.get("/events?file=indexed.bin").events()), indexed);
    assert_eq!(gate.waiting(), BUILDS, "the builds were still held while the server answered");

    gate.open();
    for (i, request) in requests.into_iter().enumerate() {
        let manifest = request.join().unwrap();
        assert_eq!(manifest["sha256"], sha256_hex(&new[i]), "new-{i}.bin");
    }
    assert_eq!(gate.peak(), BUILDS, "never more builds at once than the bound");
}

#[test]
fn a_stalled_read_does_not_stall_another_stream_on_the_same_worker() {
    let root = fixture_root();
    let stalled = write_file(root.path(), "stalled.bin", 4, 7);
    let fast = write_file(root.path(), "fast.bin", 16, 9);
    let gate = Arc::new(Gate::default());
    let server = Arc::new(TestServer::start_configured(
        root.path(),
        &["serve", "--chunk-size", "4K", "--no-index-dir"],
        |_, hooks| {
            hooks.workers = Some(1);
            hooks.disk = Some(gate.disk(ReadSite::Stream, "stalled"));
        },
    ));
    // Indexing reads are not held: both files are indexed up front.
    for name in ["stalled.bin", "fast.bin"] {
        assert_eq!(server.get(&format!("/api/manifest?file={name}")).status, 200);
    }
    let slow = {
        let server = server.clone();
        std::thread::spawn(move || server.get("/events?file=stalled.bin").events())
    };
    gate.wait_for(1);

    // The stalled stream's read is stuck; the same (only) worker still
    // serves a whole other stream and /healthz.
    assert_eq!(streamed_bytes(&server.get("/events?file=fast.bin").events()), fast);
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(gate.waiting(), 1, "the stalled read was still held");

    gate.open();
    assert_eq!(streamed_bytes(&slow.join().unwrap()), stalled);
}
