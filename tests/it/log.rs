//! Log injection: a file name holding CR, LF and ESC, requested every way,
//! never puts a raw control byte or a forged line in the server's log.

use std::time::Duration;

use crate::common::binary::spawn;
use crate::common::*;

const FORGED: &str = "2026-01-01T00:00:00.000000Z  INFO chunkcast: forged admin login";

#[test]
fn hostile_names_are_escaped_in_every_log_line() {
    let root = tempfile::tempdir().unwrap();
    let name = format!("evil\r\n{FORGED}\u{1b}[2J\u{7}.txt");
    std::fs::write(root.path().join(&name), "some text\n".repeat(2000)).unwrap();
    let server = spawn(root.path(), "127.0.0.1:0", &[], None, "debug");
    let host = "localhost";
    // The manifest indexes it (the `indexed` line), the stream finishes (the
    // `stream finished` line), a stale version fails, /files serves it, and
    // the request log sees the raw path of each.
    assert_eq!(server.request(&format!("/api/manifest?file={}", q(&name)), host).0, 200);
    assert_eq!(server.request(&format!("/events?file={}", q(&name)), host).0, 200);
    assert_eq!(server.request(&format!("/events?file={}&v=0000000000000000", q(&name)), host).0, 412);
    assert_eq!(server.request(&format!("/files/{}", q(&name)), host).0, 200);
    assert_eq!(server.request(&format!("/nope/{}", q(&name)), host).0, 404);
    assert_eq!(server.request("/api/files", "evil.example").0, 403);
    std::thread::sleep(Duration::from_millis(300));

    let log = server.log();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("indexed") && text.contains("stream finished"), "the name reached the log:\n{text}");
    assert!(text.contains("\\r\\n2026-01-01"), "the name is there, escaped:\n{text}");
    for (i, b) in log.iter().enumerate() {
        assert!(*b == b'\n' || *b >= 0x20 && *b != 0x7f, "raw control byte {b:#04x} at {i} in the log:\n{text}");
    }
    for line in text.lines() {
        assert!(!line.starts_with("2026-01-01T00:00:00"), "forged line in the log: {line:?}");
    }
}
