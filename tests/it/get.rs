//! `chunkcast get`, run as the real binary against a real server: verified
//! downloads, resume after a kill, clear failures.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn get(server: &TestServer, name: &str, out: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), name, "-o", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

fn random_file(path: &std::path::Path, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(len as u64);
    let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

#[test]
fn every_fixture_downloads_verified_and_identical() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    for (n, name) in fixture_names().iter().enumerate() {
        let out = dir.path().join(format!("out-{n}"));
        let res = get(&server, name, &out, &["--quiet"]);
        assert!(res.status.success(), "{name}: {}", String::from_utf8_lossy(&res.stderr));
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(root.path().join(name)).unwrap(), "{name}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_killed_download_resumes_from_the_chunks_on_disk() {
    let root = tempfile::tempdir().unwrap();
    let original = random_file(&root.path().join("big.bin"), 4 << 20);
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    // 1 MiB/s: the 4 MiB download takes ~4 s; kill it after ~1.5 s.
    let mut child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), "big.bin", "-o", out.to_str().unwrap(), "--rate", "1M", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let part = dir.path().join("big.bin.part");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "killed before the end");
    assert!(part.exists() && dir.path().join("big.bin.part.json").exists());
    assert!(!out.exists(), "nothing is renamed before verification");
    let on_disk = std::fs::read(&part).unwrap();
    let intact = (0..1024).filter(|i| on_disk[i * 4096..(i + 1) * 4096] == original[i * 4096..(i + 1) * 4096]).count();
    assert!(intact > 10 && intact < 1024, "a partial download: {intact} chunks");

    let res = get(&server, "big.bin", &out, &[]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), original);
    assert!(stderr.contains(&format!("{intact} resumed from disk")), "resumed exactly the intact chunks: {stderr}");
    assert!(!part.exists());
}

#[test]
fn a_file_replaced_during_the_download_ends_as_the_new_version_never_a_mix() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("big.bin");
    random_file(&path, 2 << 20);
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    let child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), "big.bin", "-o", out.to_str().unwrap(), "--rate", "512K"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // Replaced whole (a new file renamed over it): no chunk of it repeats.
    let tmp = root.path().join(".big.new");
    let new = random_file(&tmp, (2 << 20) + 1);
    std::fs::rename(&tmp, &path).unwrap();
    let res = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.contains("changed on the server") && stderr.contains("kept 0 verified chunks"), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), new, "the new version, whole");
}

#[test]
fn a_stream_output_whose_file_changes_is_an_error_not_a_mixed_file() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("big.bin");
    random_file(&path, 2 << 20);
    let server = TestServer::start(root.path(), &[]);
    // Standard output cannot take back the chunks it wrote, which the new
    // version does not repeat.
    let child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), "big.bin", "-o", "-", "--rate", "512K"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let tmp = root.path().join(".big.new");
    random_file(&tmp, (2 << 20) + 1);
    std::fs::rename(&tmp, &path).unwrap();
    let res = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(stderr.contains("changed on the server during the download"), "{stderr}");
}

#[test]
fn to_standard_output_the_bytes_go_there_and_the_summary_says_so() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let name = "one-chunk-plus-one.bin";
    let res =
        Command::new(env!("CARGO_BIN_EXE_chunkcast")).args(["get", &server.url(""), name, "-o", "-"]).output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert_eq!(res.stdout, std::fs::read(root.path().join(name)).unwrap());
    let summary = err.lines().last().unwrap_or_default();
    assert!(summary.starts_with("chunkcast: standard output: "), "{err}");
    assert!(summary.contains(" verified (root "), "{err}");
}

#[test]
fn a_reader_of_standard_output_that_stops_early_ends_get_quietly() {
    use std::io::Read as _;
    let root = tempfile::tempdir().unwrap();
    random_file(&root.path().join("big.bin"), 8 << 20);
    let server = TestServer::start(root.path(), &[]);
    // As `get -o - big.bin | head -c 10`: read a little, then close the pipe.
    let mut child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), "big.bin", "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let res = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(141), "the status of a program stopped by SIGPIPE: {err}");
    assert!(!err.contains("error") && !err.contains("Broken pipe"), "nothing to report: {err}");
}

#[test]
fn a_binary_file_is_not_written_to_a_terminal_but_a_text_is() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    // `script` runs the command with a terminal as its standard output.
    let on_terminal = |name: &str| {
        let cmd = format!("{} get {} '{name}' -o - -q", env!("CARGO_BIN_EXE_chunkcast"), server.url(""));
        Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().unwrap()
    };
    let res = on_terminal("all-bytes.bin");
    let shown = String::from_utf8_lossy(&res.stdout);
    assert_eq!(res.status.code(), Some(1), "{shown}");
    assert!(shown.contains("\"all-bytes.bin\" is binary and standard output is a terminal: pass -o FILE"), "{shown}");
    let res = on_terminal("story.txt");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stdout));
    let story = std::fs::read_to_string(root.path().join("story.txt")).unwrap();
    let first = story.lines().next().unwrap();
    assert!(String::from_utf8_lossy(&res.stdout).contains(first));
}

#[test]
fn unknown_files_and_unreachable_servers_fail_clearly() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let res = get(&server, "nope.bin", &dir.path().join("x"), &[]);
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("no file named \"nope.bin\""));

    // Nothing listening, or a name that does not resolve, before any
    // answer: one line at once, no retries (the default would be ten).
    let addr = server.addr;
    server.stop();
    let y = dir.path().join("y");
    for (url, says) in [
        (format!("http://{addr}"), format!("cannot connect to {addr}: connection refused; is the server running")),
        ("http://no-such-host.invalid".to_owned(), "cannot find the host no-such-host.invalid".to_owned()),
    ] {
        let res = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
            .args(["get", &url, "one-byte.txt", "-o", y.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&says), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!y.exists());
    }
}

/// Text travels as JSON strings: every character JSON must escape (quotes,
/// backslashes, each control character), and multi-byte characters, cut
/// across chunk boundaries, come out byte for byte.
#[test]
fn text_with_every_escape_downloads_identical() {
    let root = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let mut k = 0u32;
    while text.len() < 5 * 4096 + 123 {
        text.push_str("\"quoted\\path\\\" ");
        text.push(char::from_u32(k % 0x20).unwrap()); // every control character, NUL included
        text.push_str(["日本語 ", "😀🦀 ", "é\u{7f} ", "\u{2028}\u{2029} ", "tab\tcr\rlf\n"][k as usize % 5]);
        k += 1;
    }
    std::fs::write(root.path().join("escapes.txt"), &text).unwrap();
    let server = TestServer::start(root.path(), &[]); // 4 KiB chunks
    let manifest = server.get("/api/manifest?file=escapes.txt").json();
    assert_eq!(manifest["kind"], "text", "the file must take the text path");
    assert!(manifest["chunks"].as_u64().unwrap() > 5);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("escapes.txt");
    let res = get(&server, "escapes.txt", &out, &["--quiet"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), text.as_bytes());
}
