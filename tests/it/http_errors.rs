//! Errors produced outside our handlers (actix-files, actix-web) come back
//! as JSON with a code, 405s always with `Allow`; names holding `+` or `%`
//! are fetched by their percent-encoded form, decoded exactly once.

use crate::common::*;

fn assert_json_error(server: &TestServer, request: &str, status: u16, code: &str) -> String {
    let (got, head, body) = server.raw_full(request);
    assert_eq!(got, status, "{request:?}: {head}\n{body}");
    assert!(head.contains("content-type: application/json"), "{request:?}: {head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{request:?}: {e}: {body}"));
    assert_eq!(json["code"], code, "{request:?}: {body}");
    assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
    head
}

#[test]
fn every_405_is_json_with_allow() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"] {
        // Our routes, the web page (served by actix-files) and unknown paths.
        for path in [
            "/healthz",
            "/api/files",
            "/events?file=one-chunk.bin",
            "/files/one-chunk.bin",
            "/",
            "/index.html",
            "/app.js",
            "/nowhere",
        ] {
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let head = assert_json_error(&server, &req, 405, "method_not_allowed");
            assert!(head.contains("\r\nallow: get, head"), "{method} {path}: {head}");
        }
    }
}

#[test]
fn file_layer_errors_are_json() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let close = "Host: localhost\r\nConnection: close\r\n";
    let head = assert_json_error(
        &server,
        &format!("GET /files/one-chunk.bin HTTP/1.1\r\n{close}Range: bytes=99999999-\r\n\r\n"),
        416,
        "range_not_satisfiable",
    );
    assert!(head.contains("content-range: bytes */"), "{head}");
    assert_json_error(
        &server,
        &format!("GET /files/one-chunk.bin HTTP/1.1\r\n{close}If-Match: \"nope\"\r\n\r\n"),
        412,
        "precondition_failed",
    );
    for path in ["/%2e%2e/%2e%2e/etc/passwd", "/web/../../Cargo.toml", "/nested"] {
        assert_json_error(&server, &format!("GET {path} HTTP/1.1\r\n{close}\r\n"), 404, "not_found");
    }
    let traversal = format!("GET /..%2f..%2fetc/passwd HTTP/1.1\r\n{close}\r\n");
    // The built-in page knows no such file.
    assert_json_error(&server, &traversal, 404, "not_found");
    // Served from disk (`--web-dir`), actix-files refuses an encoded
    // separator in a page path with its own 400, rewritten to JSON.
    let web = concat!(env!("CARGO_MANIFEST_DIR"), "/web");
    let from_disk = TestServer::start(root.path(), &["--web-dir", web]);
    assert_json_error(&from_disk, &traversal, 400, "bad_request");
}

/// What actix-http's HTTP/1 dispatcher answers before the application runs:
/// the status is right and the connection closes, but no code of ours can
/// give these a JSON body (see `src/http_errors.rs`).
#[test]
fn dispatcher_errors_keep_their_status() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let (status, _, _) = server.raw_full("GET /healthz HTTP/1.1 extra\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 400);
    let huge = format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "a".repeat(256 * 1024));
    let (status, _, _) = server.raw_full(&huge);
    assert_eq!(status, 431);
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn names_with_plus_and_percent_are_decoded_once() {
    let root = tempfile::tempdir().unwrap();
    let names = ["a+b.txt", "100%.txt", "50%25.txt", "x y.txt", "sub/a+%.txt"];
    std::fs::create_dir(root.path().join("sub")).unwrap();
    for name in names {
        std::fs::write(root.path().join(name), name.as_bytes()).unwrap();
    }
    let server = TestServer::start(root.path(), &[]);
    for name in names {
        // Percent-encoded (as the web client does), through every endpoint.
        let res = server.get(&format!("/files/{}", q(name)));
        assert_eq!((res.status, res.text()), (200, name.to_owned()), "/files/{}", q(name));
        let manifest = server.get(&format!("/api/manifest?file={}", q(name)));
        assert_eq!(manifest.json()["name"], name, "file={}", q(name));
    }
    // A literal `+` in a path is a `+`; an encoded `%` is never decoded twice.
    assert_eq!(server.get("/files/a+b.txt").text(), "a+b.txt");
    assert_eq!(server.get("/files/a%2Bb.txt").text(), "a+b.txt");
    assert_eq!(server.get("/files/50%2525.txt").text(), "50%25.txt");
    assert_eq!(server.get("/files/100%25.txt").text(), "100%.txt");
    server.get("/files/50%25.txt").assert_error(404, "not_found");
    // An encoded slash is a separator, as in `file=`.
    assert_eq!(server.get("/files/sub%2Fa+%25.txt").text(), "sub/a+%.txt");
}
