//! `chunkcast get` within limits, its own and the server's: refills sized by
//! the manifest's `max_range`, an SSE line buffer with a cap, and a file
//! deleted mid-download reported as gone (not as changed).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn chunkcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
}

/// A pass-through proxy in front of `upstream` that damages the first
/// event stream it carries: after `text/event-stream` goes by, every 500th
/// upper-case letter G..Y becomes the next letter, 12 times in all (a few
/// neighbouring chunks). Letters from G on are never part of HTTP's hex
/// chunk sizes or the lower-case SSE fields, so only base64 payloads change,
/// and those chunks fail verification.
fn damaging_proxy(upstream: std::net::SocketAddr) -> String {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    static ARMED: AtomicBool = AtomicBool::new(false);
    static LETTERS: AtomicU64 = AtomicU64::new(0);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let Ok(server) = TcpStream::connect(upstream) else { continue };
            let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut c_read, &mut s_write));
            std::thread::spawn(move || {
                let (mut server, mut client) = (server, client);
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = &mut buf[..n];
                    let mut from = 0;
                    if !ARMED.load(SeqCst) {
                        if let Some(at) = memchr::memmem::find(chunk, b"text/event-stream") {
                            ARMED.store(true, SeqCst);
                            from = at;
                        }
                    }
                    if ARMED.load(SeqCst) {
                        for b in chunk[from..].iter_mut().filter(|b| (b'G'..=b'Y').contains(b)) {
                            let seen = LETTERS.fetch_add(1, SeqCst) + 1;
                            if seen % 500 == 0 && seen <= 500 * 12 {
                                *b += 1;
                            }
                        }
                    }
                    if client.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn refills_follow_the_servers_max_range() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let bytes: Vec<u8> = (0..(2 << 20)).map(|_| rng.u8(..)).collect();
    std::fs::write(root.path().join("big.bin"), &bytes).unwrap();
    let server = TestServer::start(root.path(), &["--max-range", "2"]);
    assert_eq!(server.get("/api/manifest?file=big.bin").json()["max_range"], 2, "the manifest says the limit");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    let res = chunkcast()
        // The proxy damages chunk events: the event stream it is.
        .args(["get", &damaging_proxy(server.addr), "big.bin", "-o", out.to_str().unwrap(), "--transport", "events"])
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{msg}");
    assert!(std::fs::read(&out).unwrap() == bytes, "verified and identical");
    let refilled: u64 = msg.split(" chunks refilled").next().and_then(|s| s.rsplit(' ').next()?.parse().ok()).unwrap();
    let corrupt: u64 = msg.split(" corrupt chunks").next().and_then(|s| s.rsplit(' ').next()?.parse().ok()).unwrap();
    assert!(corrupt > 2 && refilled >= corrupt, "several damaged chunks, refilled by range: {msg}");
}

/// A hostile server: a valid manifest of one 4 KiB chunk, then an event
/// stream that never sends a newline.
fn endless_line_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request = String::new();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    request.push_str(&line);
                    line.clear();
                }
                if request.starts_with("GET /api/manifest") {
                    let chunk = vec![0u8; 4096];
                    let hash = chunkcast::protocol::sha256(&chunk);
                    let root = chunkcast::protocol::hex(&chunkcast::protocol::root_of(&[hash]));
                    let body = serde_json::json!({
                        "name": "x.bin", "size": 4096, "kind": "binary", "chunk_size": 4096, "chunks": 1,
                        "version": &root[..16], "sha256": chunkcast::protocol::hex(&hash), "root": root,
                        "hashes": [chunkcast::protocol::hex(&hash)],
                    })
                    .to_string();
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    return;
                }
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: ");
                let junk = vec![b'A'; 64 * 1024];
                // Stops once the client hangs up (or after 64 MiB at most).
                for _ in 0..1024 {
                    if conn.write_all(&junk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_server_that_never_ends_a_line_is_a_protocol_error_not_unbounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let res = chunkcast()
        .args(["get", &endless_line_server(), "x.bin", "--quiet"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(msg.contains("protocol error") && msg.contains("longer than"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(30), "fails at the cap, without retrying");
}

#[test]
fn a_file_deleted_mid_download_is_gone_not_changed() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("doomed.bin");
    std::fs::write(&path, vec![3u8; 1 << 20]).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let child = chunkcast()
        .args(["get", &server.url(""), "doomed.bin", "--rate", "256K"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::remove_file(&path).unwrap();
    let res = child.wait_with_output().unwrap();
    let msg = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(msg.contains("was removed from the server"), "{msg}");
    assert!(!msg.contains("changed on the server"), "{msg}");
}
