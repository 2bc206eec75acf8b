//! Bad input: every malformed or hostile request gets its status and a JSON
//! error, never a panic, a hang or a byte from outside the root.

use crate::common::*;

fn hostile_root() -> tempfile::TempDir {
    let root = fixture_root();
    let p = root.path();
    std::fs::write(p.join(".hidden.txt"), b"safefile").unwrap();
    std::fs::create_dir(p.join(".private")).unwrap();
    std::fs::write(p.join(".private/key.txt"), b"safefile").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", p.join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("/etc", p.join("etc-link")).unwrap();
    std::os::unix::fs::symlink(".hidden.txt", p.join("link-to-hidden")).unwrap();
    std::os::unix::fs::symlink("one-byte.txt", p.join("inside-link.txt")).unwrap();
    root
}

const TRAVERSALS: &[&str] = &[
    "../etc/passwd",
    "..%2fetc%2fpasswd",
    "%2e%2e%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "nested/../../etc/passwd",
    "nested/%2e%2e/%2e%2e/etc/passwd",
    "..%5cetc%5cpasswd",
    "nested%5c..%5c..%5cetc%5cpasswd",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "//etc/passwd",
    "one-byte.txt%00.png",
    "%00",
    "%c0%ae%c0%ae/etc/passwd",
    "%e0%80%ae%e0%80%ae/etc/passwd",
    "passwd-link",
    "etc-link/passwd",
    ".hidden.txt",
    ".private/key.txt",
    "link-to-hidden",
    "nested",
    "nested/",
    "nested/deeper",
    ".",
    "./one-byte.txt",
    "",
    "does-not-exist",
];

#[test]
fn names_that_leave_the_root_or_are_hidden_are_404_everywhere() {
    let root = hostile_root();
    let server = TestServer::start(root.path(), &[]);
    for name in TRAVERSALS {
        for path in [
            format!("/api/manifest?file={name}"),
            format!("/events?file={name}"),
            format!("/events/chunk/0/1?file={name}"),
        ] {
            let res = server.get(&path);
            res.assert_error(404, "not_found");
            assert!(!res.text().contains("root:"), "{path} leaked");
        }
        let (status, body) = server.raw_get(&format!("/files/{name}"));
        assert!(status == 404 || status == 400, "/files/{name}: {status} {body}");
        assert!(!body.contains("root:"), "/files/{name} leaked /etc/passwd");
    }
    // Raw, unencoded traversal in the request target.
    for target in
        ["/files/../../../../etc/passwd", "/files/..\\..\\etc\\passwd", "/../../etc/passwd", "/files//etc/passwd"]
    {
        let (status, body) = server.raw_get(target);
        assert!(status == 404 || status == 400, "{target}: {status}");
        assert!(!body.contains("root:"), "{target} leaked");
    }
    // A symlink that stays inside the root is fine.
    assert_eq!(server.get("/api/manifest?file=inside-link.txt").status, 200);
}

#[test]
fn listing_leaves_out_hidden_files_and_symlinks_that_leave_the_root() {
    let root = hostile_root();
    let server = TestServer::start(root.path(), &[]);
    let text = server.get("/api/files").text();
    for hidden in ["hidden", "private", "passwd", "etc-link"] {
        assert!(!text.contains(hidden), "{hidden} listed: {text}");
    }
    assert!(text.contains("inside-link.txt"));
}

#[test]
fn malformed_numbers_are_400_with_the_parameter_named() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let f = "file=all-bytes.bin";
    for bad in ["", "-1", "%2B1", "1.5", "abc", "1e3", "0x1", "99999999999999999999999", "%201"] {
        let res = server.get(&format!("/events?{f}&from={bad}"));
        res.assert_error(400, "bad_parameter");
        assert!(res.json()["error"].as_str().unwrap().contains("from"));
        // HTTP strips spaces around a header value, so the header case puts one inside.
        server
            .get_with(&format!("/events?{f}"), &[("Last-Event-ID", &bad.replace("%2B", "+").replace("%20", "1 "))])
            .assert_error(400, "bad_parameter");
        server.get(&format!("/events?{f}&lastEventId={bad}")).assert_error(400, "bad_parameter");
        server.get(&format!("/events/chunk/{bad}/1?{f}")).assert_error(
            if bad.is_empty() { 404 } else { 400 },
            if bad.is_empty() { "not_found" } else { "bad_parameter" },
        );
        server.get(&format!("/events/chunk/0/{bad}x?{f}")).assert_error(400, "bad_parameter");
    }
    server.get(&format!("/events?{f}&rate=0")).assert_error(400, "bad_parameter");
    server.get(&format!("/events?{f}&v=XYZ")).assert_error(400, "bad_parameter");
    server.get("/events").assert_error(400, "missing_parameter");
}

#[test]
fn ranges_past_the_end_empty_or_over_the_limit_are_416() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &["--max-range", "3"]);
    std::fs::write(root.path().join("big.bin"), vec![0xFFu8; 4096 * 8]).unwrap();
    let f = "file=big.bin";
    for (start, end) in [(2, 2), (3, 1), (0, 9), (8, 9), (0, 4), (18446744073709551615u64, 1)] {
        server.get(&format!("/events/chunk/{start}/{end}?{f}")).assert_error(416, "range_not_satisfiable");
    }
    assert_eq!(server.get(&format!("/events/chunk/5/8?{f}")).status, 200);
    server
        .get_with(&format!("/events?{f}"), &[("Last-Event-ID", "18446744073709551615")])
        .assert_error(416, "range_not_satisfiable");
    server.get(&format!("/events?{f}&from=18446744073709551615")).assert_error(416, "range_not_satisfiable");
}

#[test]
fn checks_apply_in_order_404_400_412_416() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    // Unknown file with bad numbers and a wrong version: 404 first.
    server.get("/events?file=nope&from=x&v=0000000000000000").assert_error(404, "not_found");
    server.get("/events/chunk/x/y?file=nope").assert_error(404, "not_found");
    // Known file, bad number and wrong version: 400 before 412.
    server.get("/events?file=all-bytes.bin&from=x&v=0000000000000000").assert_error(400, "bad_parameter");
    // Wrong version and a range past the end: 412 before 416.
    server.get("/events/chunk/0/99?file=all-bytes.bin&v=0000000000000000").assert_error(412, "version_mismatch");
    server.get("/events?file=all-bytes.bin&from=99&v=0000000000000000").assert_error(412, "version_mismatch");
    let v = server.get("/api/manifest?file=all-bytes.bin").json()["version"].as_str().unwrap().to_owned();
    server.get(&format!("/events?file=all-bytes.bin&from=99&v={v}")).assert_error(416, "range_not_satisfiable");
    assert_eq!(server.get(&format!("/events?file=all-bytes.bin&from=2&v={v}")).status, 204);
}

#[test]
fn other_methods_are_405_and_unknown_parameters_are_ignored() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        for path in [
            "/api/files",
            "/api/manifest?file=one-byte.txt",
            "/events?file=one-byte.txt",
            "/events/chunk/0/1?file=one-byte.txt",
            "/files/one-byte.txt",
            "/healthz",
        ] {
            let (status, body) = server.raw(
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
            assert_eq!(status, 405, "{method} {path}: {body}");
            assert!(body.contains("\"code\":\"method_not_allowed\""), "{method} {path}: {body}");
        }
    }
    let head =
        server.raw(b"HEAD /api/manifest?file=one-byte.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(head.0, 200);
    let res = server.get("/events?file=one-byte.txt&_=1699999&foo=bar&from=0");
    assert_eq!(res.status, 200);
    assert_eq!(res.events().iter().filter(|e| e.event == "chunk").count(), 1);
    server.get("/no/such/route").assert_error(404, "not_found");
}

#[test]
fn the_server_survives_a_barrage_of_bad_requests() {
    let root = hostile_root();
    let server = TestServer::start(root.path(), &[]);
    let garbage: &[&[u8]] = &[
        b"GET /events?file=%ff%fe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"GET /events?file=one-byte.txt HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: \xff\xfe\r\nConnection: close\r\n\r\n",
        b"GET /events?file=one-byte.txt&file=two HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"GET /events?file=one-byte.txt&from=%ZZ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"NONSENSE\r\n\r\n",
    ];
    for req in garbage {
        let (status, _) = server.raw(req);
        assert!((400..500).contains(&status) || status == 0, "{:?}: {status}", String::from_utf8_lossy(req));
    }
    assert_eq!(server.get("/healthz").status, 200, "still serving");
}
