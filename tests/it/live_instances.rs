//! Several instances serving one root and one index directory (the nginx
//! set-up of docs/DEPLOY.md): a viewer on instance B follows a text
//! published through instance A, without Redis (B reads the shared layout
//! as it grows) and with Redis (A's notices wake B at once); losing Redis
//! loses nothing.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chunkcast::protocol::sse::Parser;

use crate::common::producer::{publish, Producer, BASIC};
use crate::common::*;

const AUTH: (&str, &str) = ("Authorization", BASIC);

fn instance(root: &Path, index: &Path, extra: &[&str]) -> TestServer {
    let index = index.to_str().unwrap();
    let mut args = vec!["serve", "--chunk-size", "4K", "--index-dir", index, "--publish", "--auth", "u:p"];
    args.extend_from_slice(extra);
    TestServer::start_with(root, &args)
}

/// Texts of the chunk events (and the end's reason) a viewer of the
/// instance at `addr` reads until `end`.
fn follow(addr: SocketAddr, path: &str, mut on_chunk: impl FnMut(usize)) -> (String, String) {
    let response = ureq::get(format!("http://{addr}{path}")).header(AUTH.0, AUTH.1).call().unwrap();
    assert_eq!(response.status(), 200);
    let mut reader = std::io::BufReader::new(response.into_body().into_reader());
    let mut parser = Parser::new();
    let mut text = String::new();
    let mut n = 0;
    while let Some(e) = parser.next_event(&mut reader).unwrap() {
        match e.event.as_str() {
            "chunk" => {
                let (i, bytes) = payload(&e);
                assert_eq!(i, n as u64, "every chunk once, in order");
                text.push_str(std::str::from_utf8(&bytes).unwrap());
                n += 1;
                on_chunk(n);
            }
            "end" => {
                let end: serde_json::Value = serde_json::from_str(&e.data).unwrap();
                return (text, end["reason"].as_str().unwrap_or_default().to_owned());
            }
            _ => {}
        }
    }
    panic!("the stream ended without `end`");
}

#[test]
fn a_viewer_on_another_instance_follows_through_the_shared_layout() {
    let (root, index) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = instance(root.path(), index.path(), &[]);
    let b = instance(root.path(), index.path(), &[]);
    let (status, _) = publish(a.addr, "file=shared.txt", "first, ".as_bytes());
    assert_eq!(status, 200);
    // Instance B never saw a request to publish: it finds the layout.
    let manifest = b.get_with("/api/manifest?file=shared.txt", &[AUTH]).json();
    assert_eq!((manifest["live"].as_bool(), manifest["chunks"].as_u64()), (Some(true), Some(1)), "{manifest}");
    // B does not take a producer's requests for a publication A writes.
    let (status, body) = publish(b.addr, "file=shared.txt&offset=7", b"x");
    assert_eq!((status, body["code"].as_str()), (409, Some("producer_active")), "{body}");
    let parts = ["second, ", "third, ", "fourth, ", "and the last."];
    let producer = std::thread::spawn({
        let a_addr = a.addr;
        move || {
            let mut offset = 7;
            for (i, part) in parts.iter().enumerate() {
                std::thread::sleep(Duration::from_millis(300));
                let end = if i + 1 == parts.len() { "&end=1" } else { "" };
                let (status, ack) = publish(a_addr, &format!("file=shared.txt&offset={offset}{end}"), part.as_bytes());
                assert_eq!(status, 200, "{ack}");
                offset = ack["offset"].as_u64().unwrap();
            }
        }
    });
    let (text, reason) = follow(b.addr, "/events?file=shared.txt", |_| {});
    producer.join().unwrap();
    assert_eq!((text.as_str(), reason.as_str()), ("first, second, third, fourth, and the last.", "complete"));
    // Both instances now serve the finished file with the same chunks.
    let (ma, mb) = (
        a.get_with("/api/manifest?file=shared.txt", &[AUTH]).json(),
        b.get_with("/api/manifest?file=shared.txt", &[AUTH]).json(),
    );
    assert_eq!((ma["root"].clone(), ma["chunks"].as_u64()), (mb["root"].clone(), Some(5)));
    assert!(mb.get("live").is_none());
}

/// `redis-server` on a port of its own, in a directory of its own, saving
/// nothing; stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let exe = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "/usr/bin/redis-server".into());
        assert!(Path::new(&exe).exists(), "{exe} is missing: scripts/test installs it (apt-get install redis-server)");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(exe)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", dir.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port, _dir: dir }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn with_redis_each_seal_is_announced_and_losing_redis_loses_nothing() {
    let mut redis = Redis::start();
    let (root, index) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = redis.url();
    let a = instance(root.path(), index.path(), &["--redis", &url]);
    let b = instance(root.path(), index.path(), &["--redis", &url]);
    // Listen on the channel as a third party: A announces every seal.
    let mut listener = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let mut pubsub = listener.as_pubsub();
    pubsub.psubscribe("chunkcast:*").unwrap();
    pubsub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut producer = Producer::start(a.addr, "file=told.txt");
    producer.send(b"one ");
    let notice: serde_json::Value =
        serde_json::from_str(&pubsub.get_message().unwrap().get_payload::<String>().unwrap()).unwrap();
    assert_eq!(
        (notice["rel"].as_str(), notice["chunks"].as_u64(), notice["state"].as_str()),
        (Some("told.txt"), Some(1), Some("live")),
        "{notice}"
    );
    // B's viewer: a chunk sealed on A reaches it without waiting for B's
    // next look at the layout (every 2 s with Redis), because the notice woke it.
    let b_addr = b.addr;
    let viewer = std::thread::spawn(move || {
        let mut arrived = Vec::new();
        let result = follow(b_addr, "/events?file=told.txt", |_| arrived.push(Instant::now()));
        (result, arrived)
    });
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    producer.send(b"two ");
    std::thread::sleep(Duration::from_millis(500));
    // Redis goes away: B still sees the rest at its next look, and the end.
    redis.stop();
    producer.send(b"three");
    let (status, ack) = producer.end();
    assert_eq!(status, 200, "{ack}");
    let (status, _) = publish(a.addr, &format!("file=told.txt&offset={}&end=1", ack["offset"]), b"");
    assert_eq!(status, 200);
    let ((text, reason), arrived) = viewer.join().unwrap();
    assert_eq!((text.as_str(), reason.as_str()), ("one two three", "complete"));
    let second = arrived[1].duration_since(sent);
    assert!(second < Duration::from_millis(1500), "the notice did not wake B: chunk 1 took {second:?}");
}

#[test]
fn when_the_writing_instance_is_gone_another_takes_over_at_the_acknowledged_offset() {
    let (root, index) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let idx = index.path().to_str().unwrap();
    let mut a = binary::spawn(
        root.path(),
        "127.0.0.1:0",
        &["--chunk-size", "4K", "--index-dir", idx, "--publish", "--auth", "u:p"],
        None,
        "warn",
    );
    let b = instance(root.path(), index.path(), &[]);
    let (_, ack) = publish(a.addr, "file=relay.txt", "first leg, ".as_bytes());
    let offset = ack["offset"].as_u64().unwrap();
    // Another publication nobody on B follows: B has never looked at it.
    let (_, orphan) = publish(a.addr, "file=orphan.txt", "left behind, ".as_bytes());
    // A viewer on B follows from the start.
    let b_addr = b.addr;
    let viewer = std::thread::spawn(move || follow(b_addr, "/events?file=relay.txt", |_| {}));
    std::thread::sleep(Duration::from_millis(300));
    // While A lives, B refuses to write A's publication.
    let (status, body) = publish(b.addr, &format!("file=relay.txt&offset={offset}"), b"x");
    assert_eq!((status, body["code"].as_str()), (409, Some("producer_active")), "{body}");
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    // A is gone: the producer's next part, at the acknowledged offset, is
    // taken by B; a wrong offset still is not.
    let (status, body) = publish(b.addr, &format!("file=relay.txt&offset={}", offset - 1), b"x");
    assert_eq!((status, body["code"].as_str(), body["offset"].as_u64()), (409, Some("offset_mismatch"), Some(offset)));
    let (status, ack) = publish(b.addr, &format!("file=relay.txt&offset={offset}&end=1"), "second leg.".as_bytes());
    assert_eq!((status, ack["state"].as_str()), (200, Some("complete")), "{ack}");
    let (text, reason) = viewer.join().unwrap();
    assert_eq!((text.as_str(), reason.as_str()), ("first leg, second leg.", "complete"));
    let (status, ack) = publish(b.addr, &format!("file=orphan.txt&offset={}&end=1", orphan["offset"]), b"then found.");
    assert_eq!((status, ack["state"].as_str()), (200, Some("complete")), "{ack}");
    assert_eq!(std::fs::read_to_string(root.path().join("orphan.txt")).unwrap(), "left behind, then found.");
    assert_eq!(std::fs::read_to_string(root.path().join("relay.txt")).unwrap(), "first leg, second leg.");
}
