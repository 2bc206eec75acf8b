//! `chunkcast serve` as a person types it: unambiguous flags, an index
//! directory under a hidden folder of the root, `-p PORT`, and quiet, plain
//! output when stderr is not a terminal.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common::binary::printed_url;

fn serve(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chunkcast"));
    cmd.arg("serve").args(args).env_remove("RUST_LOG").env("XDG_CONFIG_HOME", std::env::temp_dir());
    cmd
}

/// Runs a server that must refuse to start: its output.
fn refused(args: &[&str]) -> Output {
    let out = serve(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "{args:?}: nothing served");
    out
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server, returns it and its startup line's first URL.
fn started(args: &[&str]) -> (Running, String) {
    let mut child = serve(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let url = printed_url(&mut child);
    (Running(child), url)
}

#[test]
fn a_path_given_to_tls_self_signed_is_refused_with_a_hint() {
    let root = tempfile::tempdir().unwrap();
    let out = refused(&["--no-index-dir", "--bind", "127.0.0.1:0", "--tls-self-signed", root.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-self-signed takes host names") && err.contains("is a path"), "{err}");
    assert!(err.contains("give the directory first"), "{err}");
}

#[test]
fn self_signed_names_may_be_one_comma_separated_value() {
    let root = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let mut child = serve(&["--no-index-dir", "--bind", "127.0.0.1:0", "--tls-self-signed", "a.lan,b.lan"])
        .arg("--root")
        .arg(root.path())
        .env("XDG_CONFIG_HOME", config.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains("for a.lan, b.lan"), "{first}");
}

#[test]
fn an_index_dir_under_a_hidden_folder_of_the_root_is_allowed_a_visible_one_not() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().to_str().unwrap();
    let hidden = home.path().join(".cache/chunkcast/index");
    let (_server, url) = started(&["--root", root, "--bind", "127.0.0.1:0", "--index-dir", hidden.to_str().unwrap()]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let visible = home.path().join("indexes");
    let out = refused(&["--root", root, "--bind", "127.0.0.1:0", "--index-dir", visible.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inside the served root") && err.contains("hidden folder"), "{err}");
}

#[test]
fn port_is_a_shortcut_for_a_loopback_bind() {
    let root = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_server, url) = started(&["--no-index-dir", "-p", &port.to_string(), root.path().to_str().unwrap()]);
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    let out = serve(&["--no-index-dir", "--port", "1", "--bind", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--port and --bind conflict: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_server_says_one_line_and_stays_quiet_without_colours() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), "hello\n").unwrap();
    let mut child = serve(&["--no-index-dir", "--bind", "localhost:0", root.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = printed_url(&mut child);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for path in ["/", "/api/files", "/events?file=a.txt", "/nothing"] {
        let _ = agent.get(&format!("{url}{path}")).call().unwrap().body_mut().read_to_vec();
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(!log.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {log:?}");
    assert!(!log.contains("request"), "requests are logged at debug only: {log}");
    assert!(!log.contains("actix"), "actix's start-up lines are for debug: {log}");
}
