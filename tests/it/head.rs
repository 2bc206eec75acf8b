//! `HEAD` of the stream endpoints answers the headers a `GET` would get and
//! does nothing else: no stream slot, no indexing, no reading.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use crate::common::*;

/// Sends a `HEAD`, reads the response head and hangs up.
fn head_and_close(server: &TestServer, target: &str) -> String {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(s, "HEAD {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn big_root() -> tempfile::TempDir {
    let root = fixture_root();
    let f = std::fs::File::create(root.path().join("big.bin")).unwrap();
    f.set_len(64 << 20).unwrap(); // sparse: cheap to make, costly to hash
    root
}

#[test]
fn a_head_flood_takes_no_stream_slots_and_indexes_nothing() {
    let root = big_root();
    let index_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        root.path(),
        &["serve", "--chunk-size", "4K", "--index-dir", index_dir.path().to_str().unwrap(), "--max-connections", "50"],
    );
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..500 {
                    let target =
                        if i % 2 == 0 { "/events?file=big.bin&rate=1" } else { "/events/chunk/0/9?file=big.bin" };
                    let head = head_and_close(&server, target);
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    assert!(head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{head}");
                }
            });
        }
    });
    assert_eq!(server.get("/healthz").json()["streams"], 0, "2,000 HEADs hold no stream slot");
    let persisted = std::fs::read_dir(index_dir.path()).unwrap().count();
    assert_eq!(persisted, 0, "a HEAD never indexes the file");
    // GET still streams (it indexes now, once).
    let res = server.get("/events/chunk/0/2?file=big.bin");
    assert_eq!(res.status, 200);
    assert_eq!(res.events().iter().filter(|e| e.event == "chunk").count(), 2);
    assert_eq!(std::fs::read_dir(index_dir.path()).unwrap().count(), 1);
}

#[test]
fn head_checks_the_name_and_parameters_like_get() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    for (target, status) in [
        ("/events?file=nope.bin", "404"),
        ("/events?file=one-chunk.bin&from=x", "400"),
        ("/events?file=one-chunk.bin&rate=0", "400"),
        ("/events/chunk/a/2?file=one-chunk.bin", "400"),
        ("/events?file=one-chunk.bin", "200"),
    ] {
        let head = head_and_close(&server, target);
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{target}: {head}");
    }
    // The same headers as GET's stream response.
    let get = server.get("/events?file=one-chunk.bin");
    let head = head_and_close(&server, "/events?file=one-chunk.bin").to_ascii_lowercase();
    for name in ["content-type", "cache-control", "x-accel-buffering", "content-encoding"] {
        let line = format!("{name}: {}", get.header(name).unwrap()).to_ascii_lowercase();
        assert!(head.contains(&line), "{line} missing from {head}");
    }
}
