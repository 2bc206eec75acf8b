//! `rate` pacing and keep-alive comments on slow streams.

use std::io::Read as _;
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn a_paced_stream_sends_keep_alives_while_it_waits() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("slow.txt"), "z".repeat(3 * 4096)).unwrap();
    let server = TestServer::start(root.path(), &["--keep-alive", "1"]);
    let started = Instant::now();
    // 2 KiB/s and 4 KiB chunks: two seconds between chunks, keep-alive every second.
    let (status, mut reader) = server.open_stream("/events?file=slow.txt&rate=2048", &[]);
    assert_eq!(status, 200);
    let mut body = String::new();
    reader.read_to_string(&mut body).unwrap();
    let elapsed = started.elapsed();
    // A lower bound only: pacing must hold the stream back at least this long.
    assert!(elapsed >= Duration::from_millis(3500), "3 chunks at 2 KiB/s took {elapsed:?}");
    assert!(body.matches(": keep-alive\n\n").count() >= 2, "{body:.300}");
    let events = events_of(body.as_bytes());
    assert_eq!(events.iter().filter(|e| e.event == "chunk").count(), 3);
    assert_eq!(events.last().unwrap().event, "end");
}
