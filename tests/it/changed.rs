//! A file that changes under a client: 412 for a stale `v`, `event: error`
//! with `changed` mid-stream, and never a chunk of the new version inside an
//! old-version stream.

use std::io::Write as _;

use crate::common::*;
use chunkcast::protocol::sse::Parser;

fn write_chunks(path: &std::path::Path, n: usize, seed: u8) -> Vec<u8> {
    let bytes: Vec<u8> = (0..n * 4096).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 0x80).collect();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

#[test]
fn a_stale_version_gets_412_and_a_fresh_one_streams_the_new_file() {
    let root = fixture_root();
    let path = root.path().join("doc.bin");
    write_chunks(&path, 3, 1);
    let server = TestServer::start(root.path(), &[]);
    let old = server.get("/api/manifest?file=doc.bin").json();
    let v_old = old["version"].as_str().unwrap().to_owned();
    // Appending changes size and mtime.
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[0xFF; 10]).unwrap();
    for url in [format!("/events?file=doc.bin&v={v_old}"), format!("/events/chunk/0/1?file=doc.bin&v={v_old}")] {
        let res = server.get(&url);
        res.assert_error(412, "version_mismatch");
        assert!(res.json()["error"].as_str().unwrap().contains(&v_old));
    }
    let new = server.get("/api/manifest?file=doc.bin").json();
    assert_ne!(new["version"], old["version"]);
    assert_eq!(new["size"], 3 * 4096 + 10);
    let res = server.get("/events?file=doc.bin");
    let meta: serde_json::Value = serde_json::from_str(&res.events()[0].data).unwrap();
    assert_eq!(meta["version"], new["version"]);
}

/// Opens a paced stream, reads its first chunk, lets `change` alter the
/// file, then reads to the end. Returns the events after the change.
fn change_mid_stream(change: impl FnOnce(&std::path::Path)) -> Vec<chunkcast::protocol::sse::Event> {
    let root = fixture_root();
    let path = root.path().join("doc.bin");
    write_chunks(&path, 8, 2);
    let server = TestServer::start(root.path(), &[]);
    // 2 chunks per second: the change lands long before the stream ends.
    let (status, mut reader) = server.open_stream("/events?file=doc.bin&rate=8192", &[]);
    assert_eq!(status, 200);
    let mut parser = Parser::new();
    loop {
        let e = parser.next_event(&mut reader).unwrap().unwrap();
        if e.event == "chunk" {
            break;
        }
    }
    change(&path);
    std::iter::from_fn(|| parser.next_event(&mut reader).unwrap()).collect()
}

fn assert_changed(rest: &[chunkcast::protocol::sse::Event]) {
    let last = rest.last().expect("the stream says why it stops");
    assert_eq!(last.event, "error", "{rest:?}");
    let data: serde_json::Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(data["code"], "changed");
    assert!(rest.iter().all(|e| e.event != "end"));
    // Whatever chunks did arrive after the change are still old-version bytes
    // (they were checked against the index before being sent).
    for e in rest.iter().filter(|e| e.event == "chunk") {
        let (_, bytes) = payload(e);
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(sha256_hex(&bytes), v["sha256"]);
    }
}

#[test]
fn appending_during_a_stream_ends_it_with_changed() {
    assert_changed(&change_mid_stream(|path| {
        std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(b"more").unwrap();
    }));
}

#[test]
fn replacing_the_file_during_a_stream_ends_it_with_changed() {
    assert_changed(&change_mid_stream(|path| {
        let tmp = path.with_extension("new");
        write_chunks(&tmp, 8, 9);
        std::fs::rename(tmp, path).unwrap();
    }));
}

// Bytes rewritten behind an unchanged size and mtime: tests/verify_reads.rs.
