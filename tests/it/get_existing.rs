//! `chunkcast get` and what is already at the output path: an existing file
//! is kept unless `--force` (or it already is this version of the file), and
//! a directory receives the file inside it, decided before any network work.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

fn get(url: &str, name: &str, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", url, name, "-o", out.to_str().unwrap(), "--retries", "0"])
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(res: &Output) -> String {
    String::from_utf8_lossy(&res.stderr).into_owned()
}

#[test]
fn an_existing_file_is_replaced_only_with_force() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine.txt");
    std::fs::write(&out, b"precious").unwrap();

    let res = get(&server.url(""), "one-byte.txt", &out, &[]);
    assert!(!res.status.success());
    let msg = stderr(&res);
    assert!(msg.contains("already exists") && msg.contains("--force"), "{msg}");
    assert_eq!(msg.matches("mine.txt").count(), 1, "the path is named once: {msg}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious", "untouched");

    let res = get(&server.url(""), "one-byte.txt", &out, &["--force"]);
    assert!(res.status.success(), "{}", stderr(&res));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(root.path().join("one-byte.txt")).unwrap());
}

#[test]
fn running_a_finished_download_again_needs_no_force_and_fetches_nothing() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("story");
    let name = fixture_names().into_iter().find(|n| n.ends_with(".txt") && n != "one-byte.txt").unwrap();
    assert!(get(&server.url(""), &name, &out, &[]).status.success());
    let before = std::fs::metadata(&out).unwrap().modified().unwrap();
    let res = get(&server.url(""), &name, &out, &[]);
    assert!(res.status.success(), "{}", stderr(&res));
    assert!(stderr(&res).contains("already is this version"), "{}", stderr(&res));
    assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), before, "not rewritten");
}

#[test]
fn a_directory_receives_the_file_under_its_base_name() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("downloads");
    std::fs::create_dir(&dir).unwrap();
    let name = fixture_names().into_iter().find(|n| n.contains('/')).expect("a fixture in a folder");
    let res = get(&server.url(""), &name, &dir, &[]);
    assert!(res.status.success(), "{}", stderr(&res));
    let base = name.rsplit('/').next().unwrap();
    assert_eq!(std::fs::read(dir.join(base)).unwrap(), std::fs::read(root.path().join(&name)).unwrap());
    let siblings: Vec<_> = std::fs::read_dir(parent.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(siblings, ["downloads"], "no downloads.part next to the directory");
}

#[test]
fn an_impossible_output_path_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plain"), b"x").unwrap();
    // Port 1 refuses connections: the refusal must come before trying it.
    for (out, why) in
        [(dir.path().join("plain/inside"), "is not a folder"), (dir.path().join("no/such/dir/f"), "does not exist")]
    {
        let started = std::time::Instant::now();
        let res = get("http://127.0.0.1:1", "a.bin", &out, &[]);
        let msg = stderr(&res);
        assert!(!res.status.success());
        assert!(msg.contains(why), "{msg}");
        assert!(!msg.contains("connect"), "refused before any request: {msg}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(msg.matches(out.to_str().unwrap()).count(), 1, "the path is named once: {msg}");
    }
}
