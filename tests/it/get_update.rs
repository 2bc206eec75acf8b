//! Files that grow or change in place: `get --update` keeps every chunk of
//! the existing output that the new version repeats and fetches only the
//! rest; a part file of an older version, and a download whose file
//! changes under it, keep their verified chunks the same way. The bytes
//! sent are counted on the server's side, from its `stream finished` log
//! lines (the real binary, `RUST_LOG=info`), not taken from `get`'s word.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::binary::{spawn, Spawned};

const K: usize = 1024;

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    fastrand::Rng::with_seed(seed).fill(&mut bytes);
    bytes
}

fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

/// The real server on `root`, logging each finished stream.
fn serve(root: &Path, chunk: &str) -> (Spawned, String) {
    let server = spawn(root, "127.0.0.1:0", &["--chunk-size", chunk], None, "info");
    let url = format!("http://{}", server.addr);
    (server, url)
}

/// Payload bytes the server reports having sent in finished streams so far
/// (`/events` and the range endpoint alike).
fn served(server: &Spawned) -> u64 {
    // A stream logs when it is dropped, just after its last event.
    std::thread::sleep(Duration::from_millis(400));
    let log = String::from_utf8_lossy(&server.log()).into_owned();
    log.lines()
        .filter(|l| l.contains("stream finished"))
        .map(|l| {
            let at = l.find(" bytes=").unwrap_or_else(|| panic!("no bytes= in {l:?}")) + 7;
            l[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse::<u64>().unwrap()
        })
        .sum()
}

fn get(url: &str, name: &str, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        // The server's log counts what its event streams sent, which these
        // tests weigh; the raw road's deltas are in `get_raw`.
        .args(["get", url, name, "-o", out.to_str().unwrap(), "--retries", "2", "--transport", "events"])
        .args(extra)
        .output()
        .unwrap()
}

fn ok(res: &Output) -> String {
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(res.status.success(), "{stderr}");
    stderr
}

/// The number just before `word` in `text` (`reused 62 of`: 62 for "of").
fn number_before(text: &str, word: &str) -> u64 {
    let at = text.find(word).unwrap_or_else(|| panic!("no {word:?} in {text}"));
    let head = text[..at].trim_end();
    head.rsplit(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap_or_else(|_| panic!("{text}"))
}

/// `(reused, of, fetched)` from `reused R of N chunks (...) from the
/// existing file; fetched F (...)`.
fn delta_line(stderr: &str) -> (u64, u64, u64) {
    let line = stderr.lines().find(|l| l.contains("from the existing file")).unwrap_or_else(|| panic!("{stderr}"));
    let fetched = line.split("fetched ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    (number_before(line, " of "), number_before(line, " chunks ("), fetched)
}

#[test]
fn an_appended_file_costs_about_the_appended_bytes() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("big.bin");
    let mut bytes = random(16 << 20, 1);
    std::fs::write(&path, &bytes).unwrap();
    let (server, url) = serve(root.path(), "256K");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    ok(&get(&url, "big.bin", &out, &["--update"])); // no output yet: a plain download
    let first = served(&server);
    assert_eq!(first, 16 << 20, "the count sees a whole download");

    let appended = random(300 * K, 2);
    append(&path, &appended);
    bytes.extend_from_slice(&appended);
    let stderr = ok(&get(&url, "big.bin", &out, &["--update"]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let (reused, of, fetched) = delta_line(&stderr);
    assert_eq!((reused, of), (64, 66), "every old chunk is reused: {stderr}");
    assert!(fetched <= (300 * K / (256 * K)) as u64 + 2, "{stderr}");
    let wire = served(&server) - first;
    assert!((300 * K as u64..=(300 + 256) * K as u64).contains(&wire), "the server sent {wire} bytes");
    assert!(!dir.path().join("big.bin.part").exists() && !dir.path().join("big.bin.part.json").exists());

    // Nothing new: nothing fetched, the file left as it is.
    let stderr = ok(&get(&url, "big.bin", &out, &["--update"]));
    assert!(stderr.contains("already is this version"), "{stderr}");
    assert_eq!(served(&server) - first, wire);
}

#[test]
fn a_file_changed_in_place_fetches_only_the_chunks_it_touched() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("disk.img");
    let mut bytes = random(K * K, 3); // 256 chunks of 4 KiB
    std::fs::write(&path, &bytes).unwrap();
    let (server, url) = serve(root.path(), "4K");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("disk.img");
    ok(&get(&url, "disk.img", &out, &[]));
    let first = served(&server);

    // A few bytes overwritten in place, in chunks 24 and 146 (the second
    // write across no boundary); the size stays.
    for (at, patch) in [(100_000usize, &b"XYZ"[..]), (600_000, b"0123456789")] {
        bytes[at..at + patch.len()].copy_from_slice(patch);
    }
    std::fs::write(&path, &bytes).unwrap();
    let res = get(&url, "disk.img", &out, &[]);
    assert!(!res.status.success(), "without --update or --force the file is kept");
    let stderr = ok(&get(&url, "disk.img", &out, &["--update", "--verify-sha256"]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert_eq!(delta_line(&stderr), (254, 256, 2), "{stderr}");
    assert_eq!(served(&server) - first, 2 * 4096, "the server sent the two chunks");
}

#[test]
fn an_appended_text_keeps_its_chunks_at_their_offsets() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("app.log");
    // Multi-byte characters, so text chunks end short of 4 KiB, at character
    // boundaries: the manifest's offsets, not multiples of the chunk size.
    let line = |n: usize| format!("{n:06} entrée — 日本語 😀 ok\n");
    let mut text: String = (0..6000).map(line).collect();
    std::fs::write(&path, &text).unwrap();
    let (server, url) = serve(root.path(), "4K");
    let manifest = |server: &Spawned| -> serde_json::Value {
        let (status, body) = server.request("/api/manifest?file=app.log", "localhost");
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap()
    };
    let old = manifest(&server);
    assert_eq!(old["kind"], "text");
    assert!(old["offsets"].as_array().unwrap().iter().any(|o| o.as_u64().unwrap() % 4096 != 0));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.log");
    ok(&get(&url, "app.log", &out, &[]));

    // `get --update` run again and again, as on a log another process writes.
    for round in 0..3 {
        let first = served(&server);
        let old_chunks = manifest(&server)["chunks"].as_u64().unwrap();
        let more: String = (0..700).map(|n| line(10_000 * (round + 1) + n)).collect();
        append(&path, more.as_bytes());
        text.push_str(&more);
        let stderr = ok(&get(&url, "app.log", &out, &["--update"]));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
        let (reused, of, fetched) = delta_line(&stderr);
        assert_eq!(reused + fetched, of, "{stderr}");
        assert!(reused + 1 >= old_chunks, "all but the last partial chunk repeat: {stderr}");
        assert!(fetched <= (more.len() / 4096) as u64 + 2, "{stderr}");
        let wire = served(&server) - first;
        assert!(wire >= more.len() as u64 && wire <= more.len() as u64 + 4096, "sent {wire} for {}", more.len());
    }
}

#[test]
fn a_part_file_of_the_old_version_keeps_the_chunks_the_new_one_repeats() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("big.bin");
    let mut bytes = random(4 << 20, 4);
    std::fs::write(&path, &bytes).unwrap();
    let (server, url) = serve(root.path(), "4K");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    // 1 MiB/s: the 4 MiB download takes ~4 s; killed after ~1.5 s.
    let mut child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &url, "big.bin", "-o", out.to_str().unwrap(), "--rate", "1M", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "killed before the end");
    let part = dir.path().join("big.bin.part");
    assert!(part.exists() && !out.exists());

    let appended = random(300 * K, 5);
    append(&path, &appended);
    bytes.extend_from_slice(&appended);
    let on_disk = std::fs::read(&part).unwrap();
    let chunk = |b: &[u8], i: usize| b[i * 4096..(i + 1) * 4096].to_vec();
    let intact = (0..1024).filter(|&i| chunk(&on_disk, i) == chunk(&bytes, i)).count();
    assert!(intact > 10 && intact < 1024, "a partial download: {intact} chunks");

    let first = served(&server);
    let stderr = ok(&get(&url, "big.bin", &out, &["--verify-sha256"]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert!(stderr.contains(&format!("kept {intact} of its")), "the part file's chunks are kept: {stderr}");
    assert!(stderr.contains(&format!("{intact} resumed from disk")), "{stderr}");
    let wire = served(&server) - first;
    assert_eq!(wire, bytes.len() as u64 - intact as u64 * 4096, "only the missing chunks were sent");
    assert!(!part.exists());
}

#[test]
fn a_kill_during_update_leaves_the_old_file_and_a_rerun_completes() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("data.bin");
    let old = random(2 << 20, 6);
    std::fs::write(&path, &old).unwrap();
    let (server, url) = serve(root.path(), "4K");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data.bin");
    ok(&get(&url, "data.bin", &out, &[]));

    // The second half rewritten and 100 KiB appended: 1.1 MiB to fetch.
    let mut new = old[..1 << 20].to_vec();
    new.extend_from_slice(&random((1 << 20) + 100 * K, 7));
    let tmp = root.path().join(".data.new");
    std::fs::write(&tmp, &new).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    // 256 KiB/s: over 4 s; killed after ~1.5 s.
    let mut child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &url, "data.bin", "-o", out.to_str().unwrap(), "--update", "--rate", "256K", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(std::fs::read(&out).unwrap() == old, "the old output is untouched, byte for byte");
    assert!(dir.path().join("data.bin.part").exists());

    let first = served(&server);
    let stderr = ok(&get(&url, "data.bin", &out, &["--update"]));
    assert_eq!(std::fs::read(&out).unwrap(), new);
    // The first run copied the unchanged half into the part file and
    // fetched some of the rest: all of it is resumed from there.
    let resumed = number_before(&stderr, " resumed from disk");
    assert!(resumed > 256, "{stderr}");
    let (reused, of, fetched) = delta_line(&stderr);
    assert_eq!(resumed + reused + fetched, of, "{stderr}");
    assert_eq!(served(&server) - first, new.len() as u64 - (resumed + reused) * 4096);
}

#[test]
fn a_file_appended_during_the_download_keeps_the_verified_chunks() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("grow.bin");
    let mut bytes = random(4 << 20, 8);
    std::fs::write(&path, &bytes).unwrap();
    let (_server, url) = serve(root.path(), "4K");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grow.bin");
    let child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &url, "grow.bin", "-o", out.to_str().unwrap(), "--rate", "1M"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let appended = random(300 * K, 9);
    append(&path, &appended);
    bytes.extend_from_slice(&appended);
    let res = child.wait_with_output().unwrap();
    let stderr = ok(&res);
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "the new version, whole");
    let kept = number_before(&stderr, " verified chunks the new version repeats");
    assert!(kept > 10, "{stderr}");
    let fetched = stderr.split("fetched ").nth(1).unwrap().split(' ').next().unwrap().parse::<u64>().unwrap();
    assert_eq!(fetched, (bytes.len() / 4096) as u64, "each chunk fetched once: {stderr}");
}
