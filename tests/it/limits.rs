//! Resource limits: the stream cap (503 + Retry-After), bounded memory under
//! clients that never read, and a clean close of every stream on SIGTERM.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::binary::printed_url;
use crate::common::*;
use chunkcast::protocol::sse::Parser;

#[test]
fn streams_beyond_the_cap_get_503_with_retry_after() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("slow.txt"), "s".repeat(8 * 4096)).unwrap();
    // A paced stream notices a vanished client when it next writes: a keep-alive
    // every second makes that quick.
    let server = TestServer::start(root.path(), &["--max-connections", "2", "--keep-alive", "1"]);
    let (s1, r1) = server.open_stream("/events?file=slow.txt&rate=100", &[]);
    let (s2, _r2) = server.open_stream("/events?file=slow.txt&rate=100", &[]);
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(server.get("/healthz").json()["streams"], 2);
    let busy = server.get("/events?file=slow.txt");
    busy.assert_error(503, "busy");
    assert_eq!(busy.header("retry-after"), Some("1"));
    server.get("/events/chunk/0/1?file=slow.txt").assert_error(503, "busy");
    // Non-stream endpoints are not capped.
    assert_eq!(server.get("/api/manifest?file=slow.txt").status, 200);
    // A slot frees when its client goes away.
    drop(r1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = server.get("/events?file=slow.txt&from=7");
        if res.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The real binary, serving `root`; returns the child and its base URL.
fn spawn_server(root: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["serve", "--root", root.to_str().unwrap(), "--bind", "127.0.0.1:0", "--no-index-dir"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = printed_url(&mut child);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (child, url)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn clients_that_never_read_cost_bounded_server_memory() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(64);
    let bytes: Vec<u8> = (0..64 << 20).map(|_| rng.u8(..)).collect();
    std::fs::write(root.path().join("big.bin"), &bytes).unwrap();
    let (mut child, url) = spawn_server(root.path(), &[]);
    let addr = url.trim_start_matches("http://").to_owned();
    // Warm the index so its one-off cost is not counted.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /api/manifest?file=big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    s.read_to_end(&mut Vec::new()).unwrap();
    let before = rss_kib(child.id());

    const CLIENTS: usize = 100;
    let sockets: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /events?file=big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let during = rss_kib(child.id());
    let per_client = (during.saturating_sub(before)) as f64 / CLIENTS as f64;
    eprintln!("server RSS: {before} KiB before, {during} KiB with {CLIENTS} non-reading clients on a 64 MiB file ({per_client:.0} KiB each)");
    // Unbounded buffering would reach the socket buffers plus the whole file
    // (64 MiB) per client; bounded streaming holds a slice or two.
    assert!(per_client < 1024.0, "{per_client:.0} KiB per non-reading client");
    drop(sockets);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sigterm_closes_every_stream_between_events_and_exits() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("slow.bin"), vec![0xFFu8; 16 * 4096]).unwrap();
    let (mut child, url) = spawn_server(root.path(), &["--chunk-size", "4K"]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let res = agent.get(&format!("{url}/events?file=slow.bin&rate=8192")).call().unwrap();
    let mut reader = BufReader::new(res.into_body().into_reader());
    let mut parser = Parser::new();
    let mut chunks = 0;
    while chunks < 2 {
        if parser.next_event(&mut reader).unwrap().unwrap().event == "chunk" {
            chunks += 1;
        }
    }
    let sent_at = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    // Bounded wait: a server that ignored the signal must fail the test, not hang it.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent_at.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("the server did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "graceful exit: {status:?}");
    assert!(sent_at.elapsed() < Duration::from_secs(5), "exited promptly");
    // Whatever arrived after the signal is whole events: the client can
    // resume from its last id with nothing half-sent.
    assert!(
        rest.is_empty() || rest.ends_with(b"\n\n"),
        "ends on an event boundary: {:?}",
        String::from_utf8_lossy(&rest)
    );
    let after = events_of(&rest);
    assert!(after.iter().all(|e| e.event == "chunk"), "no end: the stream was cut short, on purpose");
    assert!(chunks + after.len() < 16);
}

#[test]
fn a_request_whose_headers_never_finish_is_dropped() {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(root.path(), &[]);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // A slowloris: a request line and one header, then nothing.
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(15), "the server closed the connection after {waited:?}");
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"), "{}", String::from_utf8_lossy(&rest));
}
