//! Access control: HTTP Basic users (`--auth`, plain and hashed) and signed
//! links to one file (`--link-key`, `chunkcast link`), each case over real
//! sockets against a real server.

use crate::common::{q, sha256_hex, TestServer};
use chunkcast::server::policy::access::{unix_now, LinkKey};

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{user}:{password}"))
    )
}

/// Every endpoint that reveals served data, for one file.
fn protected(name: &str) -> Vec<String> {
    vec![
        "/api/files".to_owned(),
        format!("/api/manifest?file={}", q(name)),
        format!("/events?file={}", q(name)),
        format!("/events/chunk/0/1?file={}", q(name)),
        format!("/files/{}", q(name)),
        "/".to_owned(),
    ]
}

#[test]
fn without_flags_everything_is_open() {
    let root = crate::common::fixture_root();
    let server = TestServer::start(root.path(), &[]);
    for path in protected("story.txt") {
        assert_eq!(server.get(&path).status, 200, "{path}");
    }
}

#[test]
fn basic_auth_protects_every_data_endpoint() {
    let root = crate::common::fixture_root();
    let hashed = format!("bob:sha256:{}", sha256_hex(b"hunter2"));
    let server = TestServer::start(root.path(), &["--auth", "ann:open sesame", "--auth", &hashed]);

    for path in protected("story.txt") {
        let none = server.get(&path);
        none.assert_error(401, "unauthorized");
        assert_eq!(none.header("www-authenticate"), Some(r#"Basic realm="chunkcast", charset="UTF-8""#), "{path}");
        let wrong_password = server.get_with(&path, &[("Authorization", &basic("ann", "guess"))]);
        let unknown_user = server.get_with(&path, &[("Authorization", &basic("mallory", "open sesame"))]);
        wrong_password.assert_error(401, "unauthorized");
        // Nothing tells an unknown user from a wrong password.
        assert_eq!(unknown_user.status, wrong_password.status);
        assert_eq!(unknown_user.body, wrong_password.body);
        assert_eq!(unknown_user.header("www-authenticate"), wrong_password.header("www-authenticate"));
        assert_eq!(server.get_with(&path, &[("Authorization", "Basic !!!")]).status, 401, "{path}");

        let plain = server.get_with(&path, &[("Authorization", &basic("ann", "open sesame"))]);
        assert_eq!(plain.status, 200, "{path}: {}", plain.text());
        let hashed = server.get_with(&path, &[("Authorization", &basic("bob", "hunter2"))]);
        assert_eq!(hashed.status, 200, "{path}: {}", hashed.text());
        // The hash itself is not a password.
        let hash_as_password = server.get_with(&path, &[("Authorization", &basic("bob", &sha256_hex(b"hunter2")))]);
        assert_eq!(hash_as_password.status, 401, "{path}");
    }
    // Encoded paths reach the same handlers, so they are protected the same.
    for path in ["/%66iles/story.txt", "/api/m%61nifest?file=story.txt", "/%65vents?file=story.txt", "/%61pi/files"] {
        let res = server.get(path);
        assert_eq!(res.status, 401, "{path}: {}", res.text());
        let with = server.get_with(path, &[("Authorization", &basic("ann", "open sesame"))]);
        assert_eq!(with.status, 200, "{path} is routed to its handler: {}", with.text());
    }
    // The page's code and the health check stay public.
    assert_eq!(server.get("/app.js").status, 200);
    assert_eq!(server.get("/healthz").status, 200);
    // The file's bytes arrive with the right credentials.
    let raw = server.get_with("/files/story.txt", &[("Authorization", &basic("ann", "open sesame"))]);
    assert_eq!(raw.body, std::fs::read(root.path().join("story.txt")).unwrap());
}

#[test]
fn bad_auth_values_stop_the_server_at_startup() {
    for bad in ["ann", "ann:", ":pw", "bob:sha256:xyz"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chunkcast"))
            .args(["serve", "--bind", "127.0.0.1:0", "--no-index-dir", "--auth", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--auth wants USER:PASSWORD"), "{bad}");
    }
}

/// A server with `--link-key` (and `--auth`, so only links open it) plus
/// the key to sign with.
fn link_server(root: &std::path::Path, key_dir: &std::path::Path) -> (TestServer, LinkKey) {
    let key_file = key_dir.join("link-key");
    let server = TestServer::start(root, &["--auth", "ann:pw", "--link-key", key_file.to_str().unwrap()]);
    let key = LinkKey::load_or_create(&key_file).unwrap();
    (server, key)
}

fn link_query(key: &LinkKey, name: &str, expires: u64) -> String {
    format!("exp={expires}&sig={}", key.sign(name, expires))
}

#[test]
fn a_signed_link_opens_its_file_and_nothing_else() {
    let root = crate::common::fixture_root();
    let keys = tempfile::tempdir().unwrap();
    let (server, key) = link_server(root.path(), keys.path());
    let name = "ünïcødé 名前.txt";
    let link = link_query(&key, name, unix_now() + 600);

    // The key file was created, readable by its owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(keys.path().join("link-key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Valid: every request for that file, and the page opened on it.
    for path in [
        format!("/api/manifest?file={}&{link}", q(name)),
        format!("/events?file={}&{link}", q(name)),
        format!("/events/chunk/0/1?file={}&{link}", q(name)),
        format!("/files/{}?{link}", q(name)),
        format!("/?file={}&{link}", q(name)),
    ] {
        let res = server.get(&path);
        assert_eq!(res.status, 200, "{path}: {}", res.text());
    }
    let raw = server.get(&format!("/files/{}?{link}", q(name)));
    assert_eq!(raw.body, std::fs::read(root.path().join(name)).unwrap());

    let encoded = server.get(&format!("/%66iles/{}?{link}", q(name)));
    assert_eq!(encoded.status, 200, "{}", encoded.text());
    assert_eq!(encoded.body, raw.body);

    // Another file, the list, or no `file` at all: link_invalid.
    server.get(&format!("/api/manifest?file=story.txt&{link}")).assert_error(403, "link_invalid");
    server.get(&format!("/files/story.txt?{link}")).assert_error(403, "link_invalid");
    server.get(&format!("/events/chunk/0/1?file=story.txt&{link}")).assert_error(403, "link_invalid");
    server.get(&format!("/api/files?{link}")).assert_error(403, "link_invalid");
    // Without the link the server still wants credentials.
    server.get(&format!("/api/manifest?file={}", q(name))).assert_error(401, "unauthorized");
}

#[test]
fn expired_tampered_and_foreign_links_are_refused() {
    let root = crate::common::fixture_root();
    let keys = tempfile::tempdir().unwrap();
    let (server, key) = link_server(root.path(), keys.path());
    let manifest = |query: &str| server.get(&format!("/api/manifest?file=story.txt&{query}"));

    let past = unix_now() - 5;
    manifest(&link_query(&key, "story.txt", past)).assert_error(403, "link_expired");

    // A later expiry with the old signature: the signature covers the expiry.
    let sig = key.sign("story.txt", past);
    manifest(&format!("exp={}&sig={sig}", unix_now() + 600)).assert_error(403, "link_invalid");
    // One flipped hex digit.
    let exp = unix_now() + 600;
    let mut tampered = key.sign("story.txt", exp).into_bytes();
    tampered[10] = if tampered[10] == b'0' { b'1' } else { b'0' };
    manifest(&format!("exp={exp}&sig={}", String::from_utf8(tampered).unwrap())).assert_error(403, "link_invalid");
    manifest(&format!("exp=soon&sig={}", key.sign("story.txt", exp))).assert_error(403, "link_invalid");
    manifest(&format!("sig={}", key.sign("story.txt", exp))).assert_error(403, "link_invalid");
    // Signed with another server's key.
    let other = tempfile::tempdir().unwrap();
    let foreign = LinkKey::load_or_create(&other.path().join("k")).unwrap();
    manifest(&link_query(&foreign, "story.txt", exp)).assert_error(403, "link_invalid");
    // A user with credentials is let in even with a stale link alongside.
    let res = server.get_with(
        &format!("/api/manifest?file=story.txt&{}", link_query(&key, "story.txt", past)),
        &[("Authorization", &basic("ann", "pw"))],
    );
    assert_eq!(res.status, 200);
}

#[test]
fn chunkcast_link_prints_a_working_url() {
    let root = crate::common::fixture_root();
    let keys = tempfile::tempdir().unwrap();
    let (server, _) = link_server(root.path(), keys.path());
    let key_file = keys.path().join("link-key");
    let base = server.url("");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["link", &base, "nested/deeper/note.txt", "--expires", "1h", "--key-file", key_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let query = url.strip_prefix(&format!("{base}/?")).unwrap_or_else(|| panic!("{url}"));
    assert!(query.starts_with("file=nested/deeper/note.txt&exp="), "{query}");
    let exp: u64 = query.split("exp=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    assert!((unix_now() + 3500..=unix_now() + 3600).contains(&exp), "{exp}");
    // The page opens, and the same parameters fetch the file.
    assert_eq!(server.get(&format!("/?{query}")).status, 200);
    let link = query.split_once('&').unwrap().1;
    let raw = server.get(&format!("/files/nested/deeper/note.txt?{link}"));
    assert_eq!(raw.status, 200, "{}", raw.text());
    assert_eq!(raw.body, std::fs::read(root.path().join("nested/deeper/note.txt")).unwrap());
}

#[test]
fn chunkcast_link_with_a_new_key_file_says_so_in_plain_lines() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("new-key");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_chunkcast"))
            .args(["link", "http://127.0.0.1:8080", "story.txt", "--key-file", key_file.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let first = run();
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{said}");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert_eq!(lines[0], format!("created a new link key in {}", key_file.display()));
    assert!(lines[1].starts_with("valid until "), "{said}");
    // The second time the key is there: only the expiry.
    let again = run();
    assert_eq!(String::from_utf8_lossy(&again.stderr).lines().count(), 1);
}

/// Asserts a `link` refused with one plain line saying `said` (status 1,
/// not a panic's 101), and no link printed; `case` names the input.
#[track_caller]
fn refused_in_one_line(out: &std::process::Output, said: &str, case: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{case}: a plain error, not a panic (101): {stderr}");
    assert!(out.stdout.is_empty(), "{case}: no link printed");
    assert!(stderr.contains(said), "{case}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{case}: one line: {stderr}");
}

/// `chunkcast link ARGS --key-file KEY_FILE`, run to its exit.
fn link_cli(key_file: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_chunkcast"));
    command.arg("link").args(args).arg("--key-file").arg(key_file).output().unwrap()
}

#[test]
fn a_link_expiry_of_zero_or_past_ten_years_is_refused_without_a_panic() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("link-key");
    let link = |expires: &str| link_cli(&key_file, &["http://host:8080", "a.txt", "--expires", expires]);
    for expires in ["0s", "3651days", "18446744073709551615s", "1000000000years"] {
        refused_in_one_line(&link(expires), "--expires must be between 1 second and 3650 days", expires);
    }
    let out = link("3650days");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap();
    let exp: u64 = url.split("exp=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    assert!(exp.abs_diff(unix_now() + 3650 * 86_400) <= 5, "{url}");
}

#[test]
fn get_with_an_expired_or_foreign_link_says_why_in_one_line() {
    let root = crate::common::fixture_root();
    let keys = tempfile::tempdir().unwrap();
    let (server, key) = link_server(root.path(), keys.path());
    let out = tempfile::tempdir().unwrap();
    let get = |query: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_chunkcast"))
            .args(["get", &server.url(&format!("/?file=story.txt&{query}")), "-o"])
            .arg(out.path().join("story.txt"))
            .output()
            .unwrap()
    };
    let past = unix_now() - 5;
    let exp = unix_now() + 600;
    for (query, said) in [
        (
            link_query(&key, "story.txt", past),
            "the server refused: this link has expired; ask for a new one (link_expired)",
        ),
        (link_query(&key, "one-chunk.bin", exp), "(link_invalid)"),
    ] {
        let res = get(query);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(said) && !stderr.contains("protocol error"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert!(!out.path().join("story.txt").exists());
}

#[test]
fn a_base_url_without_its_scheme_is_refused_in_one_line() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("link-key");
    let link = |base: &str| link_cli(&key_file, &[base, "a.txt"]);
    for base in ["nas.lan", "nas.lan:8443", "ftp://nas.lan", "https://", "http:///x", "https://nas.lan/?file=b.txt"] {
        refused_in_one_line(&link(base), "BASE_URL must be the server's address with its scheme", base);
    }
    for base in ["https://nas.lan:8443/", "HTTP://127.0.0.1:8080", "https://example.com/chunkcast"] {
        let out = link(base);
        let url = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && url.starts_with(base.trim_end_matches('/')), "{base}: {url}");
        assert!(url.contains("/?file=a.txt&exp="), "{base}: {url}");
    }
}

/// The binary serving `root` with `--link-key key`, run to its exit (a
/// key it refuses stops it before it binds).
fn serve_with_link_key(root: &std::path::Path, key: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["serve", "--root", root.to_str().unwrap(), "--bind", "127.0.0.1:0", "--no-index-dir"])
        .args(["--link-key", key.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn a_link_key_inside_the_served_root_is_a_startup_error() {
    let root = crate::common::fixture_root();
    for key in [root.path().join("link.key"), root.path().join("nested/new-dir/link.key")] {
        let out = serve_with_link_key(root.path(), &key);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("--link-key") && stderr.contains("inside the served root"), "{stderr}");
        assert!(!key.exists(), "no key is created where it would be served");
    }
}

#[test]
fn a_link_key_every_user_can_read_is_a_startup_error() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = crate::common::fixture_root();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("link-key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = serve_with_link_key(root.path(), &key);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("chmod 600 {}", key.display())), "{stderr}");
}
