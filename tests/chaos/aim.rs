//! The scanner aims where it says it aims, on real server output: cuts land
//! on events, lines and payload characters whatever the read sizes, a
//! corruption keeps the framing, the JSON and the base64 and breaks only its
//! chunk's digest, a forged chunk carries the digest of its corrupted bytes,
//! and a cut before `end` forwards every chunk event and nothing of `end`.
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use chaos_proxy::{Corrupt, Done, Kind, Manual, Plan, Point, Scanner};

use crate::common::{fixture_root, sha256_hex, TestServer};

/// The raw HTTP response to `GET target`.
fn wire(server: &TestServer, target: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(server.addr).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

/// Feeds `wire` in pieces of `piece` bytes, as reads would deliver it, and
/// forwards what the scanner releases, as the proxy does. Returns what would
/// be forwarded, the fault hit, and the whole events.
fn scan(wire: &[u8], plan: Plan, path: &str, piece: usize) -> (Vec<u8>, Option<Kind>, Vec<Done>) {
    scan_with(Scanner::new(plan), wire, path, piece)
}

fn scan_with(mut scanner: Scanner, wire: &[u8], path: &str, piece: usize) -> (Vec<u8>, Option<Kind>, Vec<Done>) {
    let paths = Mutex::new(VecDeque::from([path.to_owned()]));
    let (mut out, mut done, mut work) = (Vec::new(), Vec::new(), Vec::new());
    for part in wire.chunks(piece) {
        let from = work.len();
        work.extend_from_slice(part);
        let fed = scanner.feed(&mut work, from, &paths, &mut done);
        if let Some((at, kind)) = fed.stop {
            out.extend_from_slice(&work[..at]);
            return (out, Some(kind), done);
        }
        out.extend(work.drain(..fed.release));
    }
    out.extend(work);
    (out, None, done)
}

/// The body of a (possibly truncated) chunked response.
fn body(http: &[u8]) -> Vec<u8> {
    let mut rest = &http[find(http, b"\r\n\r\n").unwrap() + 4..];
    let mut out = Vec::new();
    while let Some(eol) = find(rest, b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        let data = &rest[eol + 2..];
        out.extend_from_slice(&data[..n.min(data.len())]);
        if n == 0 || data.len() < n + 2 {
            break;
        }
        rest = &data[n + 2..];
    }
    out
}

fn chunk_events(body: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter(|e| e.contains("event: chunk\n"))
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")).and_then(|d| serde_json::from_str(d).ok()))
        .collect()
}

fn with(fault: Option<(Kind, Point)>) -> Plan {
    Plan { fault, corrupt: VecDeque::new() }
}

#[test]
fn cuts_land_on_events_lines_and_payload_characters() {
    let root = fixture_root();
    crate::generate(root.path());
    let server = TestServer::start(root.path(), &[]);
    for (file, chars) in
        [("story.txt", 4096), ("all-bytes.bin", 5464), ("utf8-boundaries.txt", 4096), ("gen/boundaries.txt", 4096)]
    {
        let path = format!("/events?file={file}&from=1");
        let full = wire(&server, &path);
        let total = chunk_events(&body(&full)).len() as u64;
        assert!(total >= 1);
        for piece in [1, 7, 4096, 1 << 20] {
            for k in 0..total {
                let at = |p: Point| {
                    let (out, hit, done) = scan(&full, with(Some((Kind::Cut, p))), &path, piece);
                    assert_eq!(hit, Some(Kind::Cut), "{file} {p:?}");
                    (body(&out), done)
                };
                let ends = |b: &[u8], tail: &str| {
                    assert!(
                        b.ends_with(tail.as_bytes()),
                        "{file} k={k}: ends with {:?}",
                        String::from_utf8_lossy(&b[b.len().saturating_sub(40)..])
                    );
                };
                let (b, done) = at(Point::Between(k));
                ends(&b, "}\n\n");
                assert_eq!(done.len() as u64, k + 1);
                assert_eq!(done.last().unwrap().id, k + 1, "ids from `id:` (the stream starts at 1)");
                assert_eq!(chunk_events(&b).len() as u64, k + 1);
                let (b, done) = at(Point::AfterEventLine(k));
                ends(&b, &format!("id: {}\nevent: chunk\n", k + 1));
                assert_eq!(done.len() as u64, k);
                let (b, _) = at(Point::InDataPrefix(k, 3));
                ends(&b, "event: chunk\ndat");
                let (b, done) = at(Point::AfterDataLine(k));
                ends(&b, "\"}\n");
                assert!(!b.ends_with(b"\n\n"));
                assert_eq!(done.len() as u64, k, "an undispatched event is not delivered");
                // The payload of event k, whole and as cut.
                let payload = |b: &[u8]| -> Vec<u8> {
                    let mut rest = b;
                    for _ in 0..=k {
                        rest = &rest[find(rest, b"event: chunk\n").unwrap() + 13..];
                    }
                    let start = find(rest, b"\"b64\":\"").map(|i| i + 7).or(find(rest, b"\"text\":\"").map(|i| i + 8));
                    rest[start.unwrap()..].to_vec()
                };
                let whole = payload(&body(&full));
                let whole_len = whole.iter().position(|&c| c == b'\n').unwrap() - 2;
                for n in [0, 1, 1000, chars - 1, chars + 10] {
                    let (b, _) = at(Point::InPayload(k, n));
                    assert_eq!(payload(&b).len(), n.min(whole_len), "{file} k={k} n={n}: cut inside the string");
                }
            }
        }
        let (out, hit, done) = scan(&full, with(Some((Kind::Stall, Point::Bytes(100)))), &path, 64);
        assert_eq!((out.len(), hit, done.len()), (100, Some(Kind::Stall), 0));
        // Anywhere on the wire means exactly there: in the headers, the
        // framing or the middle of a payload.
        for piece in [1, 7, 4096, 1 << 20] {
            for n in [0, 100, 1000, 3000, full.len() / 2, full.len() - 1].into_iter().filter(|&n| n < full.len()) {
                let (out, hit, _) = scan(&full, with(Some((Kind::Cut, Point::Bytes(n as u64)))), &path, piece);
                assert_eq!((out.len(), hit), (n, Some(Kind::Cut)), "{file} piece {piece}");
            }
        }
        let (out, hit, done) = scan(&full, with(None), &path, 999);
        assert_eq!((out, hit, done.len() as u64), (full.clone(), None, total));
    }
}

#[test]
fn a_corruption_keeps_the_framing_and_the_json_and_breaks_only_the_digest() {
    let root = fixture_root();
    // Escapes next to the payload's edges: `\"`, `\\`, `\u0001`, `\n`.
    let text: String = (0..3000).map(|i| ["a\"", "\\b", "\u{1}c", "\nd", "é9", "😀Z"][i % 6]).collect();
    std::fs::write(root.path().join("escapes.txt"), &text).unwrap();
    crate::generate(root.path());
    let server = TestServer::start(root.path(), &[]);
    let mut rng = fastrand::Rng::with_seed(11);
    let files = [
        "all-bytes.bin",
        "one-byte.bin",
        "story.txt",
        "utf8-boundaries.txt",
        "escapes.txt",
        "gen/boundaries.txt",
        "gen/lines.txt",
        "gen/tail-1.bin",
    ];
    for file in files {
        let path = format!("/events?file={file}");
        let full = wire(&server, &path);
        let clean = chunk_events(&body(&full));
        for _ in 0..40 {
            let k = rng.u64(0..clean.len() as u64);
            let plan = Plan {
                fault: None,
                corrupt: VecDeque::from([Corrupt { k, at: rng.usize(0..6000), delta: rng.usize(1..1000) }]),
            };
            let (out, _, done) = scan(&full, plan, &path, rng.usize(1..3000));
            assert_eq!(out.len(), full.len());
            let flipped: Vec<usize> = (0..out.len()).filter(|&i| out[i] != full[i]).collect();
            let events = chunk_events(&body(&out));
            assert_eq!(events.len(), clean.len(), "{file}: every event still parses");
            let hit: Vec<u64> = done.iter().filter(|d| d.corrupted).map(|d| d.id).collect();
            if flipped.is_empty() {
                // Nothing eligible at or after the target (e.g. a
                // payload of escapes only): nothing counted either.
                assert!(hit.is_empty());
                continue;
            }
            assert_eq!(flipped.len(), 1);
            assert_eq!(hit.len(), 1);
            for (e, c) in events.iter().zip(&clean) {
                let bytes = payload_bytes(e);
                assert_eq!(
                    bytes.len() as u64,
                    e["len"].as_u64().unwrap(),
                    "{file}: the payload still decodes to its length"
                );
                let changed = sha256_hex(&bytes) != c["sha256"].as_str().unwrap();
                assert_eq!(changed, e["i"] == hit[0], "{file}: only chunk {} is damaged", hit[0]);
                assert_eq!(e["i"], c["i"]);
                assert_eq!(e["len"], c["len"]);
            }
        }
    }
}

/// A payload's bytes as a lenient decoder (a browser's, Node's) sees them:
/// base64 bits past the last whole byte are ignored.
fn payload_bytes(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    match (v["b64"].as_str(), v["text"].as_str()) {
        (Some(b), _) => LENIENT.decode(b).expect("the payload is still base64"),
        (_, Some(t)) => t.as_bytes().to_vec(),
        _ => panic!("no payload"),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_forged_chunk_carries_the_digest_of_its_corrupted_bytes() {
    let root = fixture_root();
    crate::generate(root.path());
    let server = TestServer::start(root.path(), &[]);
    for file in ["all-bytes.bin", "one-byte.bin", "story.txt", "gen/boundaries.txt", "gen/exact-4.bin"] {
        let path = format!("/events?file={file}");
        let full = wire(&server, &path);
        let clean = chunk_events(&body(&full));
        let target = clean.len() as u64 - 1;
        for piece in [1, 7, 4096, 1 << 20] {
            let manual = Arc::new(Manual::default());
            manual.forge.lock().unwrap().insert(target, 1);
            let (out, hit, done) =
                scan_with(Scanner::with_manual(Plan::default(), manual.clone()), &full, &path, piece);
            assert_eq!((out.len(), hit), (full.len(), None), "{file}: same length, no cut");
            assert!(manual.forge.lock().unwrap().is_empty(), "{file}: the forgery was used up");
            let forged: Vec<u64> = done.iter().filter(|d| d.forged).map(|d| d.id).collect();
            assert_eq!(forged, [target], "{file} piece {piece}");
            let events = chunk_events(&body(&out));
            assert_eq!(events.len(), clean.len());
            for (e, c) in events.iter().zip(&clean) {
                let bytes = payload_bytes(e);
                let own = sha256_hex(&bytes);
                assert_eq!(own, e["sha256"].as_str().unwrap(), "{file}: every event's digest matches its bytes");
                assert_eq!(
                    own != c["sha256"].as_str().unwrap(),
                    e["i"] == target,
                    "{file}: only chunk {target} differs"
                );
                assert_eq!(bytes.len() as u64, c["len"].as_u64().unwrap());
            }
        }
    }
}

#[test]
fn a_cut_before_end_forwards_every_chunk_and_nothing_of_end() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    for file in ["story.txt", "all-bytes.bin", "one-byte.bin"] {
        let path = format!("/events?file={file}");
        let full = wire(&server, &path);
        let clean = chunk_events(&body(&full));
        for piece in [1, 7, 4096, 1 << 20] {
            let manual = Arc::new(Manual::default());
            manual.cut_before_end.store(true, std::sync::atomic::Ordering::SeqCst);
            let (out, hit, done) =
                scan_with(Scanner::with_manual(Plan::default(), manual.clone()), &full, &path, piece);
            assert_eq!(hit, Some(Kind::Cut), "{file} piece {piece}");
            assert!(!manual.cut_before_end.load(std::sync::atomic::Ordering::SeqCst), "one cut only");
            let b = body(&out);
            assert!(b.ends_with(b"\n\n") && !b.ends_with(b"event: end\n"), "{file}: {:?}", String::from_utf8_lossy(&b));
            assert_eq!(find(&b, b"event: end"), None);
            assert_eq!(done.len(), clean.len(), "{file}: every chunk went out");
            assert_eq!(chunk_events(&b).len(), clean.len());
        }
        // Not armed: the whole stream passes.
        let (out, hit, _) = scan_with(Scanner::with_manual(Plan::default(), Arc::default()), &full, &path, 999);
        assert_eq!((out, hit), (full.clone(), None));
    }
}
