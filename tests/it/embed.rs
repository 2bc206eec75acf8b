//! chunkcast mounted in someone else's actix-web app (`examples/embed.rs`,
//! built by `cargo test`): the app keeps its own route, and everything of
//! chunkcast works under the prefix, the resume of a killed download
//! included.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::binary::printed_url;
use crate::common::{events_of, payload, sha256_hex};

/// The example's binary, next to this test's (`target/debug/examples`).
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("examples").join("embed");
    assert!(path.exists(), "{} is missing: `cargo test` builds it (or `cargo build --example embed`)", path.display());
    path
}

struct App {
    child: Child,
    url: String,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(root: &std::path::Path) -> App {
    start_with(root, &[])
}

fn start_with(root: &std::path::Path, flags: &[&str]) -> App {
    let mut child = Command::new(example());
    child.args([root.to_str().unwrap(), "127.0.0.1:0", "--chunk-size", "4K"]).args(flags).env("RUST_LOG", "warn");
    let mut child = child.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let url = printed_url(&mut child);
    App { child, url }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut res = req.call().unwrap();
    (res.status().as_u16(), res.body_mut().read_to_vec().unwrap())
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut x = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn the_app_keeps_its_route_and_chunkcast_answers_under_the_prefix() {
    let root = tempfile::tempdir().unwrap();
    let bytes = random_bytes(10 * 4096 + 7);
    std::fs::write(root.path().join("a b.bin"), &bytes).unwrap();
    let app = start(root.path());

    let (status, home) = get(&format!("{}/", app.url), &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&home).contains("My app"), "the app's own page");
    let (status, health) = get(&format!("{}/dl/healthz", app.url), &[]);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&health).unwrap()["status"], "ok");
    let (status, page) = get(&format!("{}/dl/", app.url), &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<script type=\"module\""), "chunkcast's page under the prefix");
    let (status, _) = get(&format!("{}/dl", app.url), &[]);
    assert_eq!(status, 308, "the prefix without its slash is sent to the page");

    let (status, list) = get(&format!("{}/dl/api/files", app.url), &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&list).contains("a b.bin"));
    let (status, raw) = get(&format!("{}/dl/files/a%20b.bin", app.url), &[]);
    assert_eq!((status, sha256_hex(&raw)), (200, sha256_hex(&bytes)), "/files under the prefix");
    let (status, body) = get(&format!("{}/dl/nothing-here", app.url), &[]);
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["code"], "not_found");

    // The event stream resumes after Last-Event-ID through the prefix.
    let (status, body) = get(&format!("{}/dl/events?file=a%20b.bin", app.url), &[("Last-Event-ID", "6")]);
    assert_eq!(status, 200);
    let chunks: Vec<(u64, Vec<u8>)> = events_of(&body).iter().filter(|e| e.event == "chunk").map(payload).collect();
    assert_eq!(chunks.iter().map(|c| c.0).collect::<Vec<_>>(), vec![7, 8, 9, 10]);
    let tail: Vec<u8> = chunks.into_iter().flat_map(|c| c.1).collect();
    assert_eq!(tail, bytes[7 * 4096..]);
}

#[test]
fn auth_guards_chunkcast_under_the_prefix_and_leaves_the_app_alone() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("secret.txt"), "not for everyone\n").unwrap();
    let app = start_with(root.path(), &["--auth", "ann:pw"]);
    assert_eq!(get(&format!("{}/", app.url), &[]).0, 200, "the app's own route is the app's business");
    assert_eq!(get(&format!("{}/dl/app.js", app.url), &[]).0, 200, "the page's code stays public");
    // However the path is spelled, a file under the prefix needs the password.
    for path in ["/dl/api/files", "/dl/files/secret.txt", "/%64l/files/secret.txt", "/dl/files/secret%2etxt"] {
        assert_eq!(get(&format!("{}{path}", app.url), &[]).0, 401, "{path}");
    }
    let basic = ("Authorization", "Basic YW5uOnB3"); // ann:pw
    let (status, body) = get(&format!("{}/dl/files/secret.txt", app.url), &[basic]);
    assert_eq!((status, body.as_slice()), (200, &b"not for everyone\n"[..]));
}

#[test]
fn a_killed_get_through_the_prefix_resumes_from_the_chunks_on_disk() {
    let root = tempfile::tempdir().unwrap();
    let original = random_bytes(2 << 20);
    std::fs::write(root.path().join("big.bin"), &original).unwrap();
    let app = start(root.path());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    let base = format!("{}/dl", app.url);
    let get = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chunkcast"));
        cmd.args(["get", &base, "big.bin", "-o", out.to_str().unwrap()]).args(extra).stdin(Stdio::null());
        cmd
    };
    // 512 KiB/s: the 2 MiB download takes ~4 s; kill it after ~1.5 s.
    let mut child = get(&["--rate", "512K", "--quiet"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "killed before the end");
    let part = std::fs::read(dir.path().join("big.bin.part")).unwrap();
    let intact = (0..512).filter(|i| part[i * 4096..(i + 1) * 4096] == original[i * 4096..(i + 1) * 4096]).count();
    assert!(intact > 10 && intact < 512, "a partial download: {intact} chunks");

    let res = get(&[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), original);
    assert!(stderr.contains(&format!("{intact} resumed from disk")), "resumed exactly the intact chunks: {stderr}");
}
