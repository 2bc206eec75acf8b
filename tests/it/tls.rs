//! HTTPS and HTTP/2: handshakes with a certificate the test makes, every
//! endpoint over both protocols (curl built with nghttp2), SSE over HTTP/2
//! event by event, `chunkcast get` over HTTPS (trust, resume, fast failures),
//! clear errors for each bad certificate or key, and `--tls-self-signed`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use chunkcast::tls::{self, TlsError, TlsSource};

/// Writes a fresh certificate for `hosts` and its key into `dir`.
fn cert_files(dir: &Path, hosts: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = tls::generate(&hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    chunkcast::safefile::write_private(&key_path, key.as_bytes()).unwrap();
    (cert_path, key_path)
}

/// A TLS server over `root` with a certificate for 127.0.0.1 and localhost.
fn tls_server(root: &Path, certs: &Path, extra: &[&str]) -> (TestServer, PathBuf) {
    let (cert, key) = cert_files(certs, &["localhost", "127.0.0.1"]);
    let mut args = vec!["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    (TestServer::start(root, &args), cert)
}

/// `curl` verifying the server with `cacert`; returns its output and the
/// status and HTTP version it got (`"200"`, `"2"`).
fn curl(cacert: &Path, args: &[&str]) -> (Output, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert", cacert.to_str().unwrap(), "-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = text.lines().last().unwrap_or_default().to_owned();
    let (code, version) = last.split_once(' ').unwrap_or_default();
    let (code, version) = (code.to_owned(), version.to_owned());
    (out, code, version)
}

fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(len as u64);
    let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

#[test]
fn every_endpoint_answers_over_http2_and_http1_1() {
    let root = fixture_root();
    let certs = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(root.path(), certs.path(), &[]);
    let paths = [
        "/healthz",
        "/api/files",
        "/api/manifest?file=story.txt",
        "/events?file=story.txt",
        "/events/chunk/0/1?file=story.txt",
        "/files/story.txt",
        "/",
    ];
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        for path in paths {
            let (out, code, got) = curl(&cert, &[flag, "-o", "/dev/null", &server.url(path)]);
            assert!(out.status.success(), "{path} {flag}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!((code.as_str(), got.as_str()), ("200", version), "{path} {flag}");
        }
    }
    // The in-process client verifies the same certificate over HTTP/1.1.
    let health = server.get("/healthz").json();
    assert_eq!(health["tls"], true);
    assert_eq!(health["protocols"], serde_json::json!(["h2", "http/1.1"]));
}

#[test]
fn healthz_of_a_plain_server_says_http1_1_without_tls() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let health = server.get("/healthz").json();
    assert_eq!(health["tls"], false);
    assert_eq!(health["protocols"], serde_json::json!(["http/1.1"]));
}

#[test]
fn sse_over_http2_streams_event_by_event_with_its_headers() {
    let root = tempfile::tempdir().unwrap();
    random_file(&root.path().join("paced.bin"), 40 * 1024);
    let certs = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(root.path(), certs.path(), &[]);
    let headers = certs.path().join("headers");
    // 10 chunks of 4 KiB at 12 KiB/s: about 3 s from the first chunk to `end`.
    let mut child = Command::new("curl")
        .args(["-sS", "-N", "--http2", "--max-time", "30", "--cacert", cert.to_str().unwrap()])
        .args(["-D", headers.to_str().unwrap(), &server.url("/events?file=paced.bin&rate=12288")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first_chunk = None;
    let mut chunks = 0;
    let mut ended = None;
    while let Some(Ok(line)) = lines.next() {
        if line == "event: chunk" {
            chunks += 1;
            first_chunk.get_or_insert_with(Instant::now);
        }
        if line == "event: end" {
            ended = Some(Instant::now());
            break;
        }
    }
    child.wait().unwrap();
    assert_eq!(chunks, 10);
    let (first, end) = (first_chunk.unwrap(), ended.expect("the stream ends with `end`"));
    // Buffered, all ten events would arrive together with `end`; streamed,
    // the pacing spreads them over seconds.
    assert!(end - first > Duration::from_millis(1500), "events arrived together: {:?} apart", end - first);
    let head = std::fs::read_to_string(&headers).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/2 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    for banned in ["connection:", "keep-alive:", "transfer-encoding:"] {
        assert!(!head.contains(banned), "HTTP/1-only header {banned} sent over HTTP/2: {head}");
    }
}

#[test]
fn files_with_range_over_http2() {
    let root = tempfile::tempdir().unwrap();
    let bytes = random_file(&root.path().join("r.bin"), 100_000);
    let certs = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(root.path(), certs.path(), &[]);
    let body = certs.path().join("body");
    let (_, code, version) =
        curl(&cert, &["--http2", "-r", "1000-1999", "-o", body.to_str().unwrap(), &server.url("/files/r.bin")]);
    assert_eq!((code.as_str(), version.as_str()), ("206", "2"));
    assert_eq!(std::fs::read(&body).unwrap(), &bytes[1000..2000]);
}

fn get(url: &str, name: &str, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", url, name, "-o", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn get_over_https_with_cacert_resumes_after_a_kill() {
    let root = tempfile::tempdir().unwrap();
    let original = random_file(&root.path().join("big.bin"), 4 << 20);
    let certs = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(root.path(), certs.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    // 1 MiB/s: the 4 MiB download takes ~4 s; kill it after ~1.5 s.
    let mut child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), "big.bin", "-o", out.to_str().unwrap(), "--rate", "1M", "--quiet"])
        .args(["--cacert", cert.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    let killed = child.wait_with_output().unwrap();
    let part = dir.path().join("big.bin.part");
    assert!(part.exists() && !out.exists(), "stopped mid-download: {}", String::from_utf8_lossy(&killed.stderr));

    let res = get(&server.url(""), "big.bin", &out, &["--cacert", cert.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), original);
    let resumed: u64 = stderr
        .split(" resumed from disk")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume count: {stderr}"));
    assert!(resumed > 10 && resumed < 1024, "resumed {resumed} chunks: {stderr}");
}

#[test]
fn get_fails_at_once_on_an_untrusted_certificate_or_the_wrong_scheme() {
    let root = fixture_root();
    let certs = tempfile::tempdir().unwrap();
    let (tls_server, _cert) = tls_server(root.path(), certs.path(), &[]);
    let plain = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let https_to_plain = format!("https://{}", plain.addr);
    let http_to_tls = format!("http://{}", tls_server.addr);
    let tls_host = tls_server.addr.to_string();
    let cases = [
        (tls_server.url(""), vec!["not trusted", "unknown issuer", "--cacert", &tls_host]),
        (https_to_plain, vec!["did not answer with TLS", "http://"]),
        (http_to_tls, vec!["answered with TLS", "https://"]),
    ];
    for (url, expected) in cases {
        let started = Instant::now();
        let res = get(&url, "story.txt", &out, &[]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{url}");
        // No retry loop: the default 10 retries with backoff would take far longer.
        assert!(started.elapsed() < Duration::from_secs(5), "{url}: took {:?}", started.elapsed());
        for needle in expected {
            assert!(stderr.contains(needle), "{url}: {needle:?} missing from: {stderr}");
        }
        assert!(!stderr.contains("gave up") && !stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists());
    }
}

#[test]
fn get_with_a_bad_cacert_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let res = get("https://127.0.0.1:9", "x", &dir.path().join("x"), &["--cacert", "/nonexistent/ca.pem"]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(stderr.contains("--cacert: /nonexistent/ca.pem: file not found"), "{stderr}");
}

/// A certificate for localhost valid between the two dates, and its key.
fn dated_cert(dir: &Path, not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("dated.pem"), dir.join("dated.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    chunkcast::safefile::write_private(&k, key.serialize_pem().as_bytes()).unwrap();
    (c, k)
}

#[test]
fn each_bad_certificate_or_key_gets_an_error_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = cert_files(d, &["localhost"]);
    let other = tempfile::tempdir().unwrap();
    let (_, other_key) = cert_files(other.path(), &["localhost"]);
    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let broken = d.join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
    let (expired, expired_key) = dated_cert(d, (2001, 1, 1), (2002, 1, 1));
    let future = tempfile::tempdir().unwrap();
    let (early, early_key) = dated_cert(future.path(), (2090, 1, 1), (2091, 1, 1));
    let missing = d.join("missing.pem");

    let load = |cert: &Path, key: &Path| {
        tls::load(&TlsSource::Files { cert: cert.to_owned(), key: key.to_owned() }).map(|_| ()).unwrap_err()
    };
    let cases: Vec<(TlsError, &Path, &str)> = vec![
        (load(&missing, &key), &missing, "file not found"),
        (load(&cert, &missing), &missing, "file not found"),
        (load(d, &key), d, "cannot read"),
        (load(&garbage, &key), &garbage, "no certificate in it"),
        (load(&broken, &key), &broken, "not valid PEM"),
        (load(&cert, &garbage), &garbage, "no private key in it"),
        (load(&cert, &cert), &cert, "no private key in it"),
        (load(&cert, &other_key), &other_key, "does not match the certificate"),
        (load(&expired, &expired_key), &expired, "expired on 2002-01-01"),
        (load(&early, &early_key), &early, "not valid until 2090-01-01"),
    ];
    for (err, file, problem) in cases {
        let msg = err.to_string();
        assert!(msg.contains(&file.display().to_string()), "{msg:?} does not name {}", file.display());
        assert!(msg.contains(problem), "{msg:?} does not say {problem:?}");
    }
    assert!(tls::load(&TlsSource::Files { cert: cert.clone(), key }).is_ok());

    // The binary prints the same message and exits non-zero, without a panic.
    let res = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["serve", "--bind", "127.0.0.1:0", "--no-index-dir"])
        .args(["--tls-cert", expired.to_str().unwrap(), "--tls-key", expired_key.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("certificate expired on 2002-01-01") && stderr.contains("dated.pem"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A file that is not there is named with its flag.
    for (cert, key, said) in [(&missing, &expired_key, "--tls-cert"), (&expired, &missing, "--tls-key")] {
        let res = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
            .args(["serve", "--bind", "127.0.0.1:0", "--no-index-dir", "--tls-cert"])
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.trim_end(), format!("chunkcast: error: {said} {}: file not found", missing.display()));
    }
    // clap rejects a certificate without its key.
    let res = Command::new(env!("CARGO_BIN_EXE_chunkcast")).args(["serve", "--tls-cert", "c.pem"]).output().unwrap();
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("--tls-key"));
}

/// Runs `serve --tls-self-signed HOSTS...` with its config dir in `config`
/// until it prints its URL; returns everything it printed.
fn self_signed_start(config: &Path, hosts: &[&str]) -> String {
    let root = fixture_root();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["serve", "--root", root.path().to_str().unwrap(), "--bind", "127.0.0.1:0", "--no-index-dir"])
        .arg("--tls-self-signed")
        .args(hosts)
        .env("XDG_CONFIG_HOME", config)
        .env("HOME", config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains(" at https://") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    printed
}

fn printed_fingerprint(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.split("SHA-256 fingerprint ").nth(1))
        .unwrap_or_else(|| panic!("no fingerprint in {printed}"))
        .to_owned()
}

#[test]
fn self_signed_is_made_once_reused_and_remade_for_other_hosts() {
    use std::os::unix::fs::PermissionsExt as _;
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("chunkcast/tls");

    let first = self_signed_start(config.path(), &["localhost", "127.0.0.1"]);
    assert!(first.contains("made a self-signed certificate"), "{first}");
    assert!(first.contains("(HTTP/2, HTTP/1.1;"), "{first}");
    let chain = tls::read_chain(&dir.join("cert.pem")).unwrap();
    let fingerprint = printed_fingerprint(&first);
    assert_eq!(fingerprint, tls::fingerprint(&chain[0]), "the printed fingerprint is the certificate's");
    assert!(fingerprint.len() == 95 && fingerprint.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()));
    assert!(!fingerprint.bytes().any(|b| b.is_ascii_lowercase()));
    let mode = std::fs::metadata(dir.join("key.pem")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key is private");

    let second = self_signed_start(config.path(), &["127.0.0.1", "localhost"]);
    assert!(!second.contains("made a self-signed"), "reused: {second}");
    assert_eq!(printed_fingerprint(&second), fingerprint);

    let third = self_signed_start(config.path(), &["localhost", "nas.lan", "10.1.2.3"]);
    assert!(third.contains("made a self-signed certificate") && third.contains("nas.lan"), "{third}");
    assert_ne!(printed_fingerprint(&third), fingerprint);

    // The remade certificate verifies for a name it lists.
    let root = fixture_root();
    let server = TestServer::start(
        root.path(),
        &[
            "--tls-cert",
            dir.join("cert.pem").to_str().unwrap(),
            "--tls-key",
            dir.join("key.pem").to_str().unwrap(),
            // Reached by that name on a loopback bind: the name must be allowed.
            "--allowed-host",
            "nas.lan",
        ],
    );
    let port = server.addr.port();
    let resolve = format!("nas.lan:{port}:127.0.0.1");
    let (out, code, _) =
        curl(&dir.join("cert.pem"), &["--resolve", &resolve, &format!("https://nas.lan:{port}/healthz")]);
    assert_eq!(code, "200", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn get_trusts_the_system_store() {
    // rustls-native-certs reads the OS store, which SSL_CERT_FILE replaces
    // (as for openssl and curl): a certificate put there needs no --cacert.
    let root = fixture_root();
    let certs = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(root.path(), certs.path(), &[]);
    let out = certs.path().join("story.txt");
    let res = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), "story.txt", "-o", out.to_str().unwrap(), "--quiet"])
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(root.path().join("story.txt")).unwrap());
}

#[test]
fn the_server_picks_aes_128_gcm_whatever_the_client_prefers() {
    let root = fixture_root();
    let certs = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(root.path(), certs.path(), &[]);
    // OpenSSL (curl) lists AES-256-GCM first in both versions.
    for version in [&["--tlsv1.3"][..], &["--tlsv1.2", "--tls-max", "1.2"][..]] {
        let mut args = vec!["-v", "-o", "/dev/null"];
        args.extend_from_slice(version);
        let url = server.url("/healthz");
        args.push(&url);
        let (out, code, _) = curl(&cert, &args);
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code, "200", "{log}");
        let line = log.lines().find(|l| l.contains("SSL connection using")).unwrap_or_default();
        assert!(line.contains("AES_128_GCM") || line.contains("AES128-GCM"), "{version:?}: {line}");
    }
}

#[test]
fn rsa_and_ec_keys_in_their_traditional_pem_forms_are_served() {
    // openssl writes the "BEGIN RSA PRIVATE KEY" (PKCS#1) and "BEGIN EC
    // PRIVATE KEY" (SEC1) forms many existing certificates come with.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(d).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&["genrsa", "-traditional", "-out", "rsa.key", "2048"]);
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec.key"]);
    let san = "subjectAltName=DNS:localhost,IP:127.0.0.1";
    for kind in ["rsa", "ec"] {
        let (key, cert) = (format!("{kind}.key"), format!("{kind}.pem"));
        openssl(&["req", "-x509", "-key", &key, "-out", &cert, "-days", "2", "-subj", "/CN=localhost", "-addext", san]);
        let pem = std::fs::read_to_string(d.join(&key)).unwrap();
        let label = if kind == "rsa" { "BEGIN RSA PRIVATE KEY" } else { "BEGIN EC PRIVATE KEY" };
        assert!(pem.contains(label), "{kind}: {pem}");
        let root = fixture_root();
        let server = TestServer::start(
            root.path(),
            &["--tls-cert", d.join(&cert).to_str().unwrap(), "--tls-key", d.join(&key).to_str().unwrap()],
        );
        let (out, code, version) = curl(&d.join(&cert), &["--http2", "-o", "/dev/null", &server.url("/healthz")]);
        assert_eq!((code.as_str(), version.as_str()), ("200", "2"), "{kind}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_key_every_user_can_read_is_refused_with_the_chmod_that_fixes_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_files(dir.path(), &["localhost"]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = tls::load(&TlsSource::Files { cert: cert.clone(), key: key.clone() }).map(|_| ()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("chmod 600 {}", key.display())) && text.contains("0644"), "{text}");
    // Group-readable (a service group such as Debian's ssl-cert) is allowed.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(tls::load(&TlsSource::Files { cert, key }).is_ok());
}

#[test]
fn self_signed_files_replace_planted_symlinks_instead_of_writing_through_them() {
    use std::os::unix::fs::PermissionsExt as _;
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("chunkcast/tls");
    std::fs::create_dir_all(&dir).unwrap();
    let victims = tempfile::tempdir().unwrap();
    for name in ["cert.pem", "hosts", "key.pem"] {
        let victim = victims.path().join(name);
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
    }
    let printed = self_signed_start(config.path(), &["localhost"]);
    assert!(printed.contains("made a self-signed certificate"), "{printed}");
    for name in ["cert.pem", "hosts", "key.pem"] {
        assert_eq!(std::fs::read_to_string(victims.path().join(name)).unwrap(), "precious", "{name}'s target");
        let meta = std::fs::symlink_metadata(dir.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name} is a file of its own now");
    }
    let fresh = tempfile::tempdir().unwrap();
    self_signed_start(fresh.path(), &["localhost"]);
    let mode = std::fs::metadata(fresh.path().join("chunkcast/tls")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the directory it makes is private");
}

#[test]
fn get_accepts_the_usual_self_signed_certificate_it_was_handed_and_still_checks_it() {
    // `openssl req -x509` makes CA:TRUE certificates, which webpki refuses
    // as a server's own (CaUsedAsEndEntity); curl takes them with --cacert.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let make = |name: &str, san: &str, days: &str| {
        let (key, cert) = (d.join(format!("{name}.key")), d.join(format!("{name}.pem")));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", days, "-subj", "/CN=test", "-addext", san])
            .args(["-keyout", key.to_str().unwrap(), "-out", cert.to_str().unwrap()])
            .output()
            .expect("openssl is installed");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (cert, key)
    };
    let (cert, key) = make("usual", "subjectAltName=IP:127.0.0.1,DNS:localhost", "2");
    let text =
        Command::new("openssl").args(["x509", "-noout", "-text", "-in", cert.to_str().unwrap()]).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"), "the case in point: a CA certificate");
    let (other, _) = make("other", "subjectAltName=IP:127.0.0.1", "2");
    let (misnamed, misnamed_key) = make("misnamed", "subjectAltName=DNS:elsewhere.example", "2");

    let root = fixture_root();
    let server =
        TestServer::start(root.path(), &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let out = d.join("story.txt");
    let res = get(&server.url(""), "story.txt", &out, &["--cacert", cert.to_str().unwrap()]);
    assert!(res.status.success(), "pinned: {}", String::from_utf8_lossy(&res.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(root.path().join("story.txt")).unwrap());

    // Another self-signed certificate is no pin for this one.
    let res = get(&server.url(""), "story.txt", &d.join("x"), &["--cacert", other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success() && err.contains("is not trusted"), "{err}");

    // A pinned certificate must still name the host.
    let misnamed_server = TestServer::start(
        root.path(),
        &["--tls-cert", misnamed.to_str().unwrap(), "--tls-key", misnamed_key.to_str().unwrap()],
    );
    let res = get(&misnamed_server.url(""), "story.txt", &d.join("y"), &["--cacert", misnamed.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success() && err.contains("for another host name"), "{err}");
}

/// Raises this process's soft open-file limit to at least `n` (up to the
/// hard limit); returns what it is now.
fn at_least_open_files(n: u64) -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if limit.rlim_cur < n {
            limit.rlim_cur = n.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

#[test]
fn idle_sockets_do_not_starve_a_new_tls_handshake() {
    const IDLE: usize = 2_500;
    if at_least_open_files(2 * IDLE as u64 + 200) < 2 * IDLE as u64 + 200 {
        eprintln!("skipped: the open-file limit is below {} (ulimit -Hn)", 2 * IDLE + 200);
        return;
    }
    let root = fixture_root();
    let certs = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(root.path(), certs.path(), &[]);
    // Connections that never send a ClientHello, each holding a handshake.
    let idle: Vec<std::net::TcpStream> =
        (0..IDLE).map(|_| std::net::TcpStream::connect(server.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));

    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(tls::read_chain(&cert).unwrap());
    let config = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let started = std::time::Instant::now();
    let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut conn = rustls::ClientConnection::new(config, "127.0.0.1".try_into().unwrap()).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut socket).expect("the handshake completes");
    }
    let took = started.elapsed();
    println!("TLS handshake with {IDLE} idle connections held: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(1), "a new client waited {took:?} behind idle sockets");
    drop(idle);
}
