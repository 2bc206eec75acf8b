//! `chunkcast get` writes where the user said, never where the server says:
//! a hostile server's manifest `name` does not choose the output file.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// A server that answers every request with a valid manifest of an empty
/// file whose `name` points at a hidden file in the client's directory.
fn hostile_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let empty = chunkcast::protocol::hex(&chunkcast::protocol::sha256(b""));
            let body = serde_json::json!({
                "name": "anything/.bashrc_victim", "size": 0, "kind": "text", "chunk_size": 4096,
                "chunks": 0, "version": &empty[..16], "sha256": empty, "root": empty, "hashes": [],
            })
            .to_string();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

fn get(dir: &Path, url: &str, name: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", url, name, "--quiet", "--retries", "0"])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn the_servers_name_never_picks_the_output_file() {
    let url = hostile_server();
    let dir = tempfile::tempdir().unwrap();
    let out = get(dir.path(), &url, "docs/report.pdf");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(written, ["report.pdf"], "only the name the user asked for is written");
    assert!(!dir.path().join(".bashrc_victim").exists());
}

#[test]
fn names_that_cannot_be_a_plain_file_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 refuses connections: a refusal must come before trying it.
    for name in ["", ".", "..", "a/..", ".bashrc", "dir/.profile", "dir/", "bell\u{7}.txt", "esc\u{1b}[2J"] {
        let out = get(dir.path(), "http://127.0.0.1:1", name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name:?} accepted");
        assert!(stderr.contains("cannot name the output file") && stderr.contains("-o"), "{name:?}: {stderr}");
        assert!(!stderr.contains("cannot reach"), "{name:?}: refused only after a request: {stderr}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
