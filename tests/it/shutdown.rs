//! A graceful shutdown, in-process: the server's `shutdown` input (SIGTERM
//! or SIGINT for the binary; see `limits.rs` for the real signal) ends every
//! open stream between two events, and a client resumes from its
//! `Last-Event-ID` on a new server with nothing lost or duplicated.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::*;
use chunkcast::protocol::sse::Parser;

#[test]
fn a_shut_down_stream_ends_between_events_and_resumes_on_a_new_server() {
    const CHUNKS: u64 = 16;
    let root = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..CHUNKS as usize * 4096).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.path().join("paced.bin"), &data).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let manifest = server.get("/api/manifest?file=paced.bin").json();

    // Two chunks a second: the stream is mid-file when the shutdown comes.
    let (status, mut reader) = server.open_stream("/events?file=paced.bin&rate=8192", &[]);
    assert_eq!(status, 200);
    let mut parser = Parser::new();
    let mut received: Vec<(u64, Vec<u8>)> = Vec::new();
    while received.len() < 2 {
        let event = parser.next_event(&mut reader).unwrap().expect("a chunk before the shutdown");
        if event.event == "chunk" {
            received.push(payload(&event));
        }
    }

    let started = Instant::now();
    let stopping = std::thread::spawn(move || server.shut_down());
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    assert!(
        rest.is_empty() || rest.ends_with(b"\n\n"),
        "the stream ends on an event boundary: {:?}",
        String::from_utf8_lossy(&rest)
    );
    let after = events_of(&rest);
    assert!(after.iter().all(|e| e.event == "chunk"), "cut short, with no `end` or `error`: {after:?}");
    received.extend(after.iter().map(payload));
    stopping.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "the server returned promptly: {:?}", started.elapsed());
    assert!((received.len() as u64) < CHUNKS, "the shutdown stopped the stream early");
    let last_id = received.last().unwrap().0.to_string();

    // A new server on the same files: the client resumes from its last id.
    let server = TestServer::start(root.path(), &[]);
    assert_eq!(server.get("/api/manifest?file=paced.bin").json()["version"], manifest["version"]);
    let res = server.get_with("/events?file=paced.bin", &[("Last-Event-ID", &last_id)]);
    assert_eq!(res.status, 200);
    let events = res.events();
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("end"));
    received.extend(events.iter().filter(|e| e.event == "chunk").map(payload));

    let ids: Vec<u64> = received.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, (0..CHUNKS).collect::<Vec<_>>(), "every chunk once, in order");
    let whole: Vec<u8> = received.into_iter().flat_map(|(_, bytes)| bytes).collect();
    assert_eq!(sha256_hex(&whole), manifest["sha256"].as_str().unwrap());
}
