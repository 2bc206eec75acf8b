//! DNS rebinding: a loopback server answers only loopback host names (and
//! `--allowed-host`); a LAN server checks nothing unless names are given.

use crate::common::binary::spawn;
use crate::common::*;

const PATHS: [&str; 5] = ["/", "/api/files", "/files/one-chunk.bin", "/api/manifest?file=one-chunk.bin", "/healthz"];

#[test]
fn a_loopback_server_refuses_foreign_host_names() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &["--allowed-host", "files.example"]);
    let port = server.addr.port();
    for path in PATHS {
        for host in ["evil.example", &format!("evil.example:{port}"), "127.0.0.1.nip.io", "192.168.1.9"] {
            let res = server.get_with(path, &[("Host", host)]);
            res.assert_error(403, "host_not_allowed");
        }
        for host in [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
            "app.localhost".into(),
            "files.example".into(),
            format!("FILES.example:{port}"),
        ] {
            let res = server.get_with(path, &[("Host", &host)]);
            assert_eq!(res.status, 200, "{path} with Host {host}: {}", res.text());
        }
    }
}

#[test]
fn a_lan_server_answers_any_name_unless_names_are_given() {
    let root = fixture_root();
    let open = spawn(root.path(), "0.0.0.0:0", &[], None, "warn");
    for host in ["lan.test", "192.168.1.9:8080", "localhost"] {
        assert_eq!(open.request("/api/files", host).0, 200, "{host}");
    }
    let named = spawn(root.path(), "0.0.0.0:0", &["--allowed-host", "files.lan"], None, "warn");
    assert_eq!(named.request("/api/files", "files.lan:1234").0, 200);
    assert_eq!(named.request("/api/files", "localhost").0, 200);
    let (status, body) = named.request("/api/files", "lan.test");
    assert_eq!(status, 403);
    assert!(body.contains("host_not_allowed"), "{body}");
}
