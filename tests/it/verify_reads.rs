//! `--verify-reads` (issue 13): `/events` trusts the index while the open
//! file's identity is unchanged, the range endpoint hashes every chunk and
//! answers a chunk that rotted on disk with `corrupt` (dropping the stale
//! index), `always` hashes on `/events` too, and an identity change during a
//! stream still ends it with `changed`.

use std::os::unix::fs::FileExt;

use crate::common::*;
use chunkcast::protocol::sse::{Event, Parser};

fn write_chunks(path: &std::path::Path, n: usize) -> Vec<u8> {
    let bytes: Vec<u8> = (0..n * 4096).map(|i| (i as u8).wrapping_mul(31).wrapping_add(5) | 0x80).collect();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// Flips one bit at `at` and puts the modification time back, as bit rot
/// would leave the file: same size, same mtime (only the ctime moves).
fn rot(path: &std::path::Path, at: u64) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let file = std::fs::File::options().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x01], at).unwrap();
    file.set_modified(mtime).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
}

fn code_of(e: &Event) -> String {
    assert_eq!(e.event, "error", "{e:?}");
    let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    data["code"].as_str().unwrap().to_owned()
}

fn chunk_ids(events: &[Event]) -> Vec<u64> {
    events.iter().filter(|e| e.event == "chunk").map(|e| payload(e).0).collect()
}

/// Serves a 3-chunk file with `flags`, indexes it, then rots chunk 1.
fn rotted(flags: &[&str]) -> (tempfile::TempDir, TestServer, serde_json::Value) {
    let root = fixture_root();
    let path = root.path().join("doc.bin");
    write_chunks(&path, 3);
    let server = TestServer::start(root.path(), flags);
    let manifest = server.get("/api/manifest?file=doc.bin").json();
    rot(&path, 4096 + 100);
    (root, server, manifest)
}

/// After `corrupt` the stale index is gone: the manifest describes the bytes on disk.
fn assert_reindexed(server: &TestServer, root: &tempfile::TempDir, old: &serde_json::Value) {
    let new = server.get("/api/manifest?file=doc.bin").json();
    assert_ne!(new["root"], old["root"]);
    assert_eq!(new["sha256"], sha256_hex(&std::fs::read(root.path().join("doc.bin")).unwrap()));
}

#[test]
fn a_rotted_chunk_is_refused_by_the_range_endpoint_with_corrupt() {
    let (root, server, old) = rotted(&[]);
    // Chunk 0 is intact and still served by range.
    assert_eq!(chunk_ids(&server.get("/events/chunk/0/1?file=doc.bin").events()), vec![0]);
    let events = server.get("/events/chunk/0/3?file=doc.bin").events();
    assert_eq!(chunk_ids(&events), vec![0], "the rotted chunk 1 is never sent: {events:?}");
    assert_eq!(code_of(events.last().unwrap()), "corrupt");
    assert_reindexed(&server, &root, &old);
}

#[test]
fn by_default_events_trusts_the_index_and_the_client_check_catches_rot() {
    let (_root, server, _old) = rotted(&[]);
    let events = server.get("/events?file=doc.bin").events();
    // The trade-off of `refills`: the bytes on disk go out under the
    // index's digest, so the client's verification fails and it refills.
    assert_eq!(events.last().unwrap().event, "end");
    let chunk1 = events.iter().find(|e| e.event == "chunk" && payload(e).0 == 1).unwrap();
    let head: serde_json::Value = serde_json::from_str(&chunk1.data).unwrap();
    assert_ne!(sha256_hex(&payload(chunk1).1), head["sha256"]);
}

#[test]
fn with_verify_reads_always_events_refuses_a_rotted_chunk_too() {
    let (root, server, old) = rotted(&["--verify-reads", "always"]);
    let events = server.get("/events?file=doc.bin").events();
    assert_eq!(chunk_ids(&events), vec![0]);
    assert_eq!(code_of(events.last().unwrap()), "corrupt");
    assert_reindexed(&server, &root, &old);
}

#[test]
fn with_verify_reads_never_the_range_endpoint_sends_what_is_on_disk() {
    let (_root, server, _old) = rotted(&["--verify-reads", "never"]);
    let events = server.get("/events/chunk/1/2?file=doc.bin").events();
    assert_eq!(chunk_ids(&events), vec![1]);
    assert_eq!(events.last().unwrap().event, "end");
}

#[test]
fn an_identity_change_during_events_ends_it_with_changed() {
    let root = fixture_root();
    let path = root.path().join("doc.bin");
    write_chunks(&path, 8);
    let server = TestServer::start(root.path(), &[]);
    // 2 chunks per second: the change lands long before the stream ends.
    let (status, mut reader) = server.open_stream("/events?file=doc.bin&rate=8192", &[]);
    assert_eq!(status, 200);
    let mut parser = Parser::new();
    while parser.next_event(&mut reader).unwrap().unwrap().event != "chunk" {}
    // Same size, same mtime, new bytes: only the ctime tells.
    rot(&path, 5 * 4096);
    let rest: Vec<Event> = std::iter::from_fn(|| parser.next_event(&mut reader).unwrap()).collect();
    assert_eq!(code_of(rest.last().unwrap()), "changed");
    assert!(!chunk_ids(&rest).contains(&5));
}
