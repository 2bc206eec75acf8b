//! `chunkcast get`'s raw road (`client::raw`): the bulk of a file as its
//! own bytes, by `Range` from `/files`, each chunk checked against the
//! manifest's digest; and the event stream taking over whenever an answer
//! is not what was asked. A real server behind the chaos proxy (which
//! records every request head and cuts where it is told), or a hostile one
//! that answers by hand.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use chaos_proxy::{Event, Faults, Kind, Options, Plan, Point, Proxy, Step};
use chunkcast::protocol::sse::{self, Payload};
use chunkcast::protocol::{hex, root_of, sha256};
use chunkcast::server::policy::access::{unix_now, LinkKey};

use crate::common::hostile::{Hostile, Reply};
use crate::common::*;

/// The test server's chunk size.
const CHUNK: usize = 4096;

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

fn get(url: &str, name: &str, out: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", url, name, "-o", out.to_str().unwrap(), "--retries", "3"])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn ok(res: &Output) -> String {
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(res.status.success(), "{stderr}");
    stderr
}

type Heads = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// A server on `root` (4 KiB chunks, plus `args`) behind a proxy that
/// keeps every request head it forwards, and runs `steps` first.
fn recorded(root: &std::path::Path, args: &[&str], steps: &[Step]) -> (TestServer, Proxy, Heads) {
    let server = TestServer::start(root, args);
    let heads: Heads = Arc::default();
    let sink = heads.clone();
    let events = move |e: Event| {
        if let Event::Request { line, headers, .. } = e {
            sink.lock().unwrap().push((line, headers));
        }
    };
    let o = Options { events: Some(Box::new(events)), ..Options::default() };
    let proxy = Proxy::start_with(server.addr, 0, Faults::default(), o).unwrap();
    proxy.script(steps);
    (server, proxy, heads)
}

/// The request heads whose line starts with `GET prefix`.
fn asked(heads: &Heads, prefix: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let want = format!("GET {prefix}");
    heads.lock().unwrap().iter().filter(|(line, _)| line.starts_with(&want)).cloned().collect()
}

#[test]
fn the_bulk_travels_as_the_files_own_bytes_by_range() {
    let root = tempfile::tempdir().unwrap();
    let bytes = random(256 * CHUNK + 1000, 1);
    std::fs::write(root.path().join("big.bin"), &bytes).unwrap();
    let (server, proxy, heads) = recorded(root.path(), &[], &[]);
    let manifest = server.get("/api/manifest?file=big.bin").text().len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");

    let stderr = ok(&get(&proxy.url(), "big.bin", &out, &[]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "verified and identical");
    assert!(stderr.contains("0 corrupt chunks detected"), "{stderr}");
    let files = asked(&heads, "/files/big.bin");
    assert_eq!(files.len(), 1, "one range request: {files:?}");
    assert_eq!(files[0].1.get("range").map(String::as_str), Some(&*format!("bytes=0-{}", bytes.len() - 1)));
    assert!(asked(&heads, "/events").is_empty(), "no event stream was needed");
    // The manifest and the file's own bytes: no base64 on the wire.
    let wire = proxy.stats().wire_bytes;
    assert!(wire < manifest + bytes.len() as u64 + 2048, "{wire} bytes on the wire for {}", bytes.len());

    // `--transport events` takes the stream, at 4/3 the bytes.
    let before = proxy.stats().wire_bytes;
    std::fs::remove_file(&out).unwrap();
    ok(&get(&proxy.url(), "big.bin", &out, &["--transport", "events"]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert_eq!(asked(&heads, "/files").len(), 1, "no new range request");
    assert_eq!(asked(&heads, "/events").len(), 1);
    let wire = proxy.stats().wire_bytes - before;
    assert!(wire > bytes.len() as u64 * 4 / 3, "{wire} bytes on the wire for {}", bytes.len());

    // `--rate` paces the event stream, which only `/events` can do.
    std::fs::remove_file(&out).unwrap();
    ok(&get(&proxy.url(), "big.bin", &out, &["--rate", "64M"]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert_eq!(asked(&heads, "/files").len(), 1, "no new range request");
    assert!(asked(&heads, "/events")[1].0.contains("rate="), "{:?}", asked(&heads, "/events"));
}

#[test]
fn a_cut_mid_body_resumes_from_the_next_missing_chunk_and_never_refetches_one() {
    let root = tempfile::tempdir().unwrap();
    let bytes = random(256 * CHUNK, 2);
    std::fs::write(root.path().join("cut.bin"), &bytes).unwrap();
    // The first two connections are cut 400,000 bytes in (into the body
    // whether the manifest shares the connection or not); the rest pass.
    let cut = || Step::Plan(Plan { fault: Some((Kind::Cut, Point::Bytes(400_000))), ..Plan::default() });
    let (server, proxy, heads) = recorded(root.path(), &[], &[cut(), cut()]);
    let manifest = server.get("/api/manifest?file=cut.bin").text().len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cut.bin");

    let stderr = ok(&get(&proxy.url(), "cut.bin", &out, &[]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "verified and identical");
    let cuts = proxy.stats().cuts;
    assert!(cuts >= 1, "the proxy cut the body");
    assert!(stderr.contains(&format!("{cuts} reconnects")), "each cut was one reconnect: {stderr}");
    let files = asked(&heads, "/files/cut.bin");
    assert_eq!(files.len() as u64, cuts + 1, "{files:?}");
    let etag = files[0].1.get("if-range");
    assert!(etag.is_none(), "the first request has no validator yet");
    let mut starts = Vec::new();
    for (_, h) in &files[1..] {
        let range = h.get("range").unwrap();
        let start: usize = range.trim_start_matches("bytes=").split('-').next().unwrap().parse().unwrap();
        assert!(start > 0 && start % CHUNK == 0, "resumed at a chunk boundary: {range}");
        assert!(h.get("if-range").is_some_and(|v| v.starts_with('"')), "with the first answer's strong ETag: {h:?}");
        starts.push(start);
    }
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "each resume starts later: {starts:?}");
    // Nothing verified crossed twice: at most the partial chunk of each cut
    // (plus heads) beyond the manifest and one copy of the file.
    let wire = proxy.stats().wire_bytes;
    let bound = manifest + bytes.len() as u64 + cuts * (CHUNK as u64 + 1024) + 2048;
    assert!(wire <= bound, "{wire} bytes on the wire for {} (bound {bound})", bytes.len());
    assert!(asked(&heads, "/events").is_empty(), "drops stay on the raw road");
}

/// A manifest of `bytes` (binary, 4 KiB chunks) as version `version`, and
/// the whole event stream of it.
fn serving(bytes: &[u8], version: &str) -> (String, Vec<u8>) {
    const SMALL: usize = 4096;
    let hashes: Vec<_> = bytes.chunks(SMALL).map(sha256).collect();
    let root = root_of(&hashes);
    let manifest = serde_json::json!({
        "name": "f.bin", "size": bytes.len(), "kind": "binary", "chunk_size": SMALL,
        "chunks": hashes.len(), "version": version, "sha256": hex(&sha256(bytes)), "root": hex(&root),
        "hashes": hashes.iter().map(|h| hex(h)).collect::<Vec<_>>(),
    });
    let mut events = b"retry: 50\n\n".to_vec();
    let meta = serde_json::json!({"name": "f.bin", "version": version});
    events.extend(sse::named("meta", &meta.to_string()));
    for (i, piece) in bytes.chunks(SMALL).enumerate() {
        sse::chunk(&mut events, i as u64, (i * SMALL) as u64, &hashes[i], Payload::Binary(piece));
    }
    events.extend(sse::named("end", &format!("{{\"chunks\":{},\"root\":\"{}\"}}", hashes.len(), hex(&root))));
    (manifest.to_string(), events)
}

/// The path of each request line, without its query.
fn paths(requests: &[String]) -> Vec<&str> {
    requests.iter().map(|l| l.split(['?', ' ']).nth(1).unwrap()).collect()
}

fn range_reply(body: &[u8], size: usize) -> Reply {
    let range = format!("bytes 0-{}/{size}", size - 1);
    Reply::status(206, &[("Content-Range", &range), ("ETag", "\"v1\"")], body.to_vec())
}

#[test]
fn a_damaged_byte_fails_its_digest_and_the_event_stream_takes_over() {
    let bytes = random(10 * 4096, 3);
    let (manifest, events) = serving(&bytes, "1111111111111111");
    let mut damaged = bytes.clone();
    damaged[2 * 4096 + 7] ^= 0x20;
    let server = Hostile::start(move |path| {
        if path.starts_with("/api/manifest") {
            Reply::json(manifest.clone())
        } else if path.starts_with("/files/") {
            range_reply(&damaged, damaged.len())
        } else {
            Reply::events(events.clone())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.bin");
    let stderr = ok(&get(&server.url(""), "f.bin", &out, &[]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "the damaged chunk was never kept");
    assert!(stderr.contains("1 corrupt chunks detected"), "{stderr}");
    let requests = server.requests.lock().unwrap().clone();
    let lines = paths(&requests);
    assert_eq!(lines, ["/api/manifest", "/files/f.bin", "/events"], "{requests:?}");
    assert!(requests[2].contains("from=2"), "the stream starts at the damaged chunk: {}", requests[2]);
}

#[test]
fn a_server_without_files_hands_over_to_the_stream_at_once() {
    // A proxy or server that serves the stream but not `/files` (here 404):
    // the first answer ends the raw road, and the stream is asked at once,
    // with no failed round, retry line or backoff in between.
    let bytes = random(10 * 4096, 7);
    let (manifest, events) = serving(&bytes, "1111111111111111");
    let server = Hostile::start(move |path| {
        if path.starts_with("/api/manifest") {
            Reply::json(manifest.clone())
        } else if path.starts_with("/files/") {
            Reply::status(404, &[], r#"{"error":"no such route","code":"not_found"}"#)
        } else {
            Reply::events(events.clone())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.bin");
    let stderr = ok(&get(&server.url(""), "f.bin", &out, &[]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert!(!stderr.contains("retrying"), "a change of road is not a retry: {stderr}");
    let requests = server.requests.lock().unwrap().clone();
    let lines = paths(&requests);
    assert_eq!(lines, ["/api/manifest", "/files/f.bin", "/events"], "{requests:?}");
}

#[test]
fn a_file_replaced_between_two_ranges_is_followed_never_spliced() {
    let old = random(10 * 4096, 4);
    let mut new = old.clone();
    new[8 * 4096] ^= 0xFF;
    let (m1, _) = serving(&old, "1111111111111111");
    let (m2, events2) = serving(&new, "2222222222222222");
    let files_asked = Arc::new(Mutex::new(0));
    let manifests = Arc::new(Mutex::new(0));
    let (files_n, manifests_n) = (files_asked.clone(), manifests.clone());
    let (old_head, new_whole) = (old[..3 * 4096].to_vec(), new.clone());
    let server = Hostile::start(move |path| {
        if path.starts_with("/api/manifest") {
            let mut n = manifests_n.lock().unwrap();
            *n += 1;
            Reply::json(if *n == 1 { m1.clone() } else { m2.clone() })
        } else if path.starts_with("/files/") {
            let mut n = files_n.lock().unwrap();
            *n += 1;
            if *n == 1 {
                // Three chunks of the old version, then the connection ends.
                let range = format!("bytes 0-{}/{}", 10 * 4096 - 1, 10 * 4096);
                let headers = vec![("Content-Range".into(), range), ("ETag".into(), "\"v1\"".into())];
                Reply::Cut { status: 206, headers, body: old_head.clone(), length: 10 * 4096 }
            } else {
                // The validator no longer matches: the whole new file.
                Reply::status(200, &[("ETag", "\"v2\"")], new_whole.clone())
            }
        } else if path.contains("v=1111111111111111") {
            Reply::status(412, &[], r#"{"error":"changed","code":"version_mismatch"}"#)
        } else {
            Reply::events(events2.clone())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.bin");
    let stderr = ok(&get(&server.url(""), "f.bin", &out, &[]));
    assert_eq!(std::fs::read(&out).unwrap(), new, "the new version, whole");
    assert!(stderr.contains("changed on the server"), "{stderr}");
    let heads = server.headers.lock().unwrap().clone();
    let requests = server.requests.lock().unwrap().clone();
    let second =
        requests.iter().zip(&heads).filter(|(l, _)| l.starts_with("GET /files/")).nth(1).expect("a second range");
    let header = |name: &str| second.1.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("range"), Some(&*format!("bytes={}-{}", 3 * 4096, 10 * 4096 - 1)), "from the next chunk");
    assert_eq!(header("if-range"), Some("\"v1\""), "only the version the first answer was");
}

#[test]
fn a_signed_link_reads_the_raw_bytes_too() {
    let root = tempfile::tempdir().unwrap();
    let bytes = random(50 * CHUNK + 9, 5);
    std::fs::write(root.path().join("linked.bin"), &bytes).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("link-key");
    let (_server, proxy, heads) =
        recorded(root.path(), &["--auth", "ann:pw", "--link-key", key_file.to_str().unwrap()], &[]);
    let key = LinkKey::load_or_create(&key_file).unwrap();
    let expires = unix_now() + 600;
    let link = format!("{}/files/linked.bin?exp={expires}&sig={}", proxy.url(), key.sign("linked.bin", expires));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("linked.bin");
    ok(&Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &link, "-o", out.to_str().unwrap()])
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let files = asked(&heads, "/files/linked.bin?");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].0.contains(&format!("exp={expires}&sig=")), "the link's signature goes along: {}", files[0].0);
    assert!(asked(&heads, "/events").is_empty(), "the range was served: no fallback");
}

#[test]
fn an_update_asks_for_exactly_the_chunks_that_changed() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("disk.img");
    let mut bytes = random(256 * CHUNK, 6);
    std::fs::write(&path, &bytes).unwrap();
    let (_server, proxy, heads) = recorded(root.path(), &[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("disk.img");
    ok(&get(&proxy.url(), "disk.img", &out, &[]));

    // Overwritten in place in chunks 24 and 146 and 147 (the last write
    // crosses a boundary); the size stays.
    for (at, patch) in [(100_000usize, &b"XYZ"[..]), (602_110, b"0123456789")] {
        bytes[at..at + patch.len()].copy_from_slice(patch);
    }
    std::fs::write(&path, &bytes).unwrap();
    let stderr = ok(&get(&proxy.url(), "disk.img", &out, &["--update"]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert!(stderr.contains("reused 253 of 256 chunks"), "{stderr}");
    let ranges: Vec<String> =
        asked(&heads, "/files/disk.img").iter().skip(1).map(|(_, h)| h["range"].clone()).collect();
    let span = |a: usize, b: usize| format!("bytes={}-{}", a * CHUNK, b * CHUNK - 1);
    assert_eq!(ranges, [span(24, 25), span(146, 148)], "one range per run of changed chunks");
}
