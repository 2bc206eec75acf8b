//! Descriptor exhaustion: under a lowered `ulimit -n`, more paced streams and
//! stalled `/files` downloads than the server can hold get 503 with
//! `Retry-After` before the limit is reached, `/healthz` and the page keep
//! answering, and slots come back within seconds of their clients leaving.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::binary::{spawn, Spawned};

const NOFILE: u32 = 256;
/// What the server allows under that limit: (256 - 64 reserved) / 2.
const SLOTS: usize = 96;

/// Sends a GET and reads the response head only; the connection stays open
/// and nothing more is read from it.
fn open(server: &Spawned, target: &str) -> (u16, String, TcpStream) {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "connection closed before the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, s)
}

fn streams(server: &Spawned) -> u64 {
    let (status, body) = server.request("/healthz", "localhost");
    assert_eq!(status, 200, "/healthz must always answer: {body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["streams"].as_u64().unwrap()
}

#[test]
fn more_clients_than_descriptors_get_503_and_health_keeps_answering() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("slow.txt"), "s".repeat(64 * 1024)).unwrap();
    // Big enough that a client that stops reading stalls the download.
    std::fs::write(root.path().join("big.bin"), vec![9u8; 16 << 20]).unwrap();
    let server = spawn(root.path(), "127.0.0.1:0", &["--chunk-size", "4K"], Some(NOFILE), "warn");

    let mut held = Vec::new();
    let (mut ok, mut busy) = (0, 0);
    for i in 0..SLOTS + 40 {
        // Every third client is a download that never reads past the head.
        let target = if i % 3 == 0 { "/files/big.bin" } else { "/events?file=slow.txt&rate=1" };
        let (status, head, conn) = open(&server, target);
        match status {
            200 => {
                ok += 1;
                held.push(conn);
            }
            503 => {
                busy += 1;
                assert!(head.contains("retry-after: 1"), "{head}");
                assert!(head.contains("content-type: application/json"), "{head}");
            }
            s => panic!("{target}: {s}: {head}"),
        }
        if i % 20 == 0 {
            assert!(streams(&server) as usize <= SLOTS);
            assert_eq!(server.request("/", "localhost").0, 200, "the page answers");
        }
    }
    assert_eq!(ok, SLOTS, "exactly the slots the descriptor limit allows");
    assert_eq!(busy, 40);
    assert_eq!(streams(&server) as usize, SLOTS);
    // Everything without a file keeps answering while every slot is taken.
    for path in ["/", "/api/files", "/api/manifest?file=slow.txt"] {
        for _ in 0..20 {
            assert_eq!(server.request(path, "localhost").0, 200, "{path}");
        }
    }

    // Hang up on 30 of them (streams and downloads): their slots come back
    // within a few seconds, long before a keep-alive (15 s) would be written.
    // Each client first reads what it was sent, so it closes with a clean FIN
    // (unread data would make its kernel send a reset, which the server
    // notices at once anyway).
    std::thread::sleep(Duration::from_millis(300));
    for conn in &mut held[..30] {
        conn.set_nonblocking(true).unwrap();
        let mut sink = [0u8; 64 * 1024];
        while conn.read(&mut sink).is_ok_and(|n| n > 0) {}
    }
    let closed = Instant::now();
    held.drain(..30);
    let want = (SLOTS - 30) as u64;
    while streams(&server) > want {
        assert!(closed.elapsed() < Duration::from_secs(5), "slots still held: {}", streams(&server));
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("30 slots freed {} ms after their clients hung up", closed.elapsed().as_millis());
    for _ in 0..30 {
        let (status, _, conn) = open(&server, "/events?file=slow.txt&rate=1");
        assert_eq!(status, 200);
        held.push(conn);
    }
    assert_eq!(open(&server, "/events?file=slow.txt&rate=1").0, 503);
}
