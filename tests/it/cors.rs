//! `--cors-origin`: which responses carry `Access-Control-*` headers, for
//! allowed and other origins, with `*`, for preflights, and none at all
//! without the flag.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::*;

const APP: &str = "https://app.example";

/// Every endpoint a cross-origin page uses through `chunkcast.js`.
const PATHS: [&str; 6] = [
    "/api/files",
    "/api/manifest?file=story.txt",
    "/events?file=story.txt",
    "/events/chunk/0/1?file=story.txt",
    "/files/story.txt",
    "/chunkcast.js",
];

/// Sends `method path` with `headers` and returns the status and the
/// response head, lower-cased.
fn head(server: &TestServer, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head)
}

fn preflight(server: &TestServer, path: &str, origin: &str) -> (u16, String) {
    head(
        server,
        "OPTIONS",
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "last-event-id"),
        ],
    )
}

#[test]
fn an_allowed_origin_gets_its_own_origin_back_on_every_endpoint() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &["--cors-origin", "https://other.example", "--cors-origin", APP]);
    for path in PATHS {
        let res = server.get_with(path, &[("Origin", APP)]);
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("access-control-allow-origin"), Some(APP), "{path}");
        let expose = res.header("access-control-expose-headers").unwrap_or_default();
        for h in ["Content-Range", "ETag", "Content-Length", "Accept-Ranges"] {
            assert!(expose.contains(h), "{path}: {h} not exposed in {expose:?}");
        }
        assert!(res.header("vary").is_some_and(|v| v.contains("Origin")), "{path}");
    }
    // Errors too: a page must be able to read the JSON error of a 404.
    let res = server.get_with("/api/manifest?file=nope", &[("Origin", APP)]);
    res.assert_error(404, "not_found");
    assert_eq!(res.header("access-control-allow-origin"), Some(APP));
}

#[test]
fn another_origin_gets_no_cors_headers() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &["--cors-origin", APP]);
    for path in PATHS {
        let res = server.get_with(path, &[("Origin", "https://evil.example")]);
        assert_eq!(res.status, 200, "{path}");
        assert!(res.header("access-control-allow-origin").is_none(), "{path}");
        assert!(res.header("access-control-expose-headers").is_none(), "{path}");
        assert!(res.header("vary").is_some_and(|v| v.contains("Origin")), "{path}: caches must key on Origin");
    }
    let (status, head) = preflight(&server, "/events?file=story.txt", "https://evil.example");
    assert_eq!(status, 405, "{head}");
    assert!(!head.contains("access-control-allow"), "{head}");
}

#[test]
fn star_allows_any_origin() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &["--cors-origin", "*"]);
    for path in PATHS {
        let res = server.get_with(path, &[("Origin", "https://anyone.example")]);
        assert_eq!(res.header("access-control-allow-origin"), Some("*"), "{path}");
    }
    let (status, head) = preflight(&server, "/events/chunk/0/1?file=story.txt", "http://10.0.0.9:3000");
    assert_eq!(status, 204, "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
}

#[test]
fn a_preflight_is_answered_with_methods_headers_and_max_age() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &["--cors-origin", APP]);
    for path in PATHS {
        let (status, head) = preflight(&server, path, APP);
        assert_eq!(status, 204, "{path}: {head}");
        assert!(head.contains(&format!("access-control-allow-origin: {APP}")), "{head}");
        assert!(head.contains("access-control-allow-methods: get, head"), "{head}");
        let allowed = head.lines().find(|l| l.starts_with("access-control-allow-headers:")).unwrap_or_default();
        for h in ["last-event-id", "range", "if-range", "cache-control"] {
            assert!(allowed.contains(h), "{path}: {h} not allowed: {allowed}");
        }
        assert!(head.contains("access-control-max-age: 600"), "{head}");
        assert!(head.contains("vary: origin"), "{head}");
    }
    // Chromium's Private Network Access preflight.
    let (_, pna) = head(
        &server,
        "OPTIONS",
        "/api/files",
        &[
            ("Origin", APP),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Private-Network", "true"),
        ],
    );
    assert!(pna.contains("access-control-allow-private-network: true"), "{pna}");
    // An OPTIONS that is not a preflight is still not a method we serve.
    let (status, _) = head(&server, "OPTIONS", "/api/files", &[("Origin", APP)]);
    assert_eq!(status, 405);
}

#[test]
fn without_the_flag_there_are_no_cors_headers_and_options_is_405() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    for path in PATHS {
        let res = server.get_with(path, &[("Origin", APP)]);
        assert_eq!(res.status, 200, "{path}");
        assert!(res.headers.iter().all(|(k, _)| !k.starts_with("access-control-")), "{path}: {:?}", res.headers);
        assert!(res.header("vary").is_none_or(|v| !v.contains("Origin")), "{path}");
    }
    let (status, head) = preflight(&server, "/events?file=story.txt", APP);
    assert_eq!(status, 405, "{head}");
    assert!(head.contains("allow: get, head") && !head.contains("access-control"), "{head}");
}

#[test]
fn a_malformed_origin_is_a_startup_error() {
    for bad in ["app.example", "https://app.example/page", "ftp://x"] {
        let res = std::process::Command::new(env!("CARGO_BIN_EXE_chunkcast"))
            .args(["serve", "--bind", "127.0.0.1:0", "--no-index-dir", "--cors-origin", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{bad}");
        assert!(stderr.contains("--cors-origin") && stderr.contains(bad), "{stderr}");
    }
}
