//! `chunkcast get` as a person types it: `--user` (asking for the password
//! like curl), clear words for a missing folder, a folder name, a file gone
//! from the server (its part file removed), numbers that cannot work.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;

fn get(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chunkcast")).arg("get").args(args).stdin(Stdio::null()).output().unwrap()
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn user_takes_a_password_or_asks_for_it_on_the_terminal() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &["--auth", "ann:pw"]);
    let dir = tempfile::tempdir().unwrap();
    let story = std::fs::read(root.path().join("story.txt")).unwrap();
    let out = |name: &str| dir.path().join(name);

    let res = get(&[&server.url(""), "story.txt", "-o", out("a").to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1));
    assert!(err(&res).contains("asks for a user name and password: pass --user USER"), "{}", err(&res));
    let res = get(&[&server.url(""), "story.txt", "-o", out("b").to_str().unwrap(), "--user", "ann:nope"]);
    assert!(err(&res).contains("refused this user name or password"), "{}", err(&res));
    let res = get(&[&server.url(""), "story.txt", "-o", out("c").to_str().unwrap(), "--user", "ann:pw"]);
    assert!(res.status.success(), "{}", err(&res));
    assert_eq!(std::fs::read(out("c")).unwrap(), story);

    // No password and no terminal: a plain error, not a hang.
    let res = Command::new("setsid")
        .args([env!("CARGO_BIN_EXE_chunkcast"), "get", &server.url(""), "story.txt", "-o", out("d").to_str().unwrap()])
        .args(["--user", "ann"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1), "{}", err(&res));
    assert!(err(&res).contains("no password given and no terminal to ask for it"), "{}", err(&res));

    // On a terminal it asks, without echo, and goes on (`script` makes a pty).
    let cmd = format!(
        "{} get {} story.txt -o {} --user ann --quiet",
        env!("CARGO_BIN_EXE_chunkcast"),
        server.url(""),
        out("e").display()
    );
    let mut script = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (util-linux) is installed");
    std::thread::sleep(Duration::from_millis(300));
    std::io::Write::write_all(script.stdin.as_mut().unwrap(), b"pw\n").unwrap();
    let res = script.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "{shown}");
    assert!(shown.contains("Enter the password of ann:"), "{shown}");
    assert_eq!(std::fs::read(out("e")).unwrap(), story);
}

#[test]
fn a_missing_folder_and_a_folder_name_are_said_as_such() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing/x.txt");
    let res = get(&[&server.url(""), "story.txt", "-o", missing.to_str().unwrap()]);
    assert!(
        err(&res).contains(&format!("the folder {} does not exist", dir.path().join("missing").display())),
        "{}",
        err(&res)
    );
    // `-o folder/`: a folder to save in, which must exist.
    let folder = format!("{}/", dir.path().join("nofolder").display());
    let res = get(&[&server.url(""), "story.txt", "-o", &folder]);
    assert_eq!(res.status.code(), Some(1));
    assert!(
        err(&res).contains(&format!("the folder {} does not exist", dir.path().join("nofolder").display())),
        "{}",
        err(&res)
    );
    assert!(!err(&res).contains(".part"), "{}", err(&res));
    let res = get(&[&server.url(""), "nested", "-o", dir.path().join("n").to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1));
    assert!(err(&res).contains("\"nested\" is a folder on the server; name a file in it"), "{}", err(&res));
}

#[test]
fn numbers_that_cannot_work_are_refused_before_any_request() {
    // No server at all: the flags are checked first.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.txt");
    for (flag, value, said) in [
        ("--stall-timeout", "0", "--stall-timeout must be at least 1 second"),
        ("--parallel", "0", "--parallel must be between 1 and 128, got 0"),
        ("--parallel", "129", "--parallel must be between 1 and 128, got 129"),
    ] {
        let res = get(&["http://127.0.0.1:9/", "x.txt", "-o", out.to_str().unwrap(), flag, value]);
        assert_eq!(res.status.code(), Some(1), "{flag} {value}: {}", err(&res));
        assert_eq!(err(&res).trim_end(), format!("chunkcast: error: {said}"), "{flag} {value}");
    }
    let publish = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["publish", "http://127.0.0.1:9/", "x.txt", "--stall-timeout", "0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(publish.status.code(), Some(1));
    assert_eq!(err(&publish).trim_end(), "chunkcast: error: --stall-timeout must be at least 1 second");
}

#[test]
fn a_file_deleted_on_the_server_takes_its_part_file_with_it() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("big.bin"), vec![9u8; 2 << 20]).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), "big.bin", "-o", out.to_str().unwrap(), "--rate", "512K", "--quiet"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap();
    child.wait().unwrap();
    let part = dir.path().join("big.bin.part");
    assert!(part.exists() && dir.path().join("big.bin.part.json").exists());
    std::fs::remove_file(root.path().join("big.bin")).unwrap();
    let res = get(&[&server.url(""), "big.bin", "-o", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1));
    assert!(err(&res).contains(&format!("removed {}, which could never complete", part.display())), "{}", err(&res));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");
    assert!(!Path::new(&out).exists());
}
