//! `chunkcast get` facing a server that lies or misbehaves
//! (`common::hostile`): it trusts nothing the server says that it did not
//! check itself.

use std::process::{Command, Output};

use chunkcast::protocol::sse::{self, Payload};
use chunkcast::protocol::{hex, root_of, sha256};

use crate::common::hostile::{Hostile, Reply};

const CHUNK: usize = 4096;

/// A manifest and the `/events` body that serve `bytes` (binary, 4 KiB
/// chunks) consistently, except the manifest's `sha256`, which is `claimed`.
fn serving(bytes: &[u8], claimed: &str) -> (String, Vec<u8>) {
    let hashes: Vec<_> = bytes.chunks(CHUNK).map(sha256).collect();
    let root = root_of(&hashes);
    let manifest = serde_json::json!({
        "name": "release.bin", "size": bytes.len(), "kind": "binary", "chunk_size": CHUNK,
        "chunks": hashes.len(), "version": hex(&root[..8]), "sha256": claimed, "root": hex(&root),
        "hashes": hashes.iter().map(|h| hex(h)).collect::<Vec<_>>(),
    });
    let mut events = b"retry: 100\n\n".to_vec();
    for (i, piece) in bytes.chunks(CHUNK).enumerate() {
        sse::chunk(&mut events, i as u64, (i * CHUNK) as u64, &hashes[i], Payload::Binary(piece));
    }
    events.extend(sse::named("end", &format!("{{\"chunks\":{},\"root\":\"{}\"}}", hashes.len(), hex(&root))));
    (manifest.to_string(), events)
}

/// A server answering [`serving`]'s manifest and events.
fn serving_server(bytes: &[u8], claimed: &str) -> Hostile {
    let (manifest, events) = serving(bytes, claimed);
    Hostile::start(move |path| {
        if path.starts_with("/api/manifest") {
            Reply::json(manifest.clone())
        } else {
            Reply::events(events.clone())
        }
    })
}

fn get(server: &Hostile, out: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &server.url(""), "release.bin", "-o", out.to_str().unwrap(), "--retries", "1"])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn get_never_shows_a_digest_it_did_not_compute() {
    // The server swapped the bytes and kept the published digest in front.
    let published = hex(&sha256(b"the release everybody checks against"));
    let swapped: Vec<u8> = (0..3 * CHUNK + 100).map(|i| (i * 31 % 251) as u8).collect();
    let server = serving_server(&swapped, &published);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("release.bin");
    let root = hex(&root_of(&swapped.chunks(CHUNK).map(sha256).collect::<Vec<_>>()));

    let res = get(&server, &out, &[]);
    assert!(res.status.success(), "{}", stderr(&res));
    assert!(!stderr(&res).contains(&published), "the server's claim is never shown as verified: {}", stderr(&res));
    assert!(stderr(&res).contains(&format!("verified (root {root}")), "{}", stderr(&res));

    let again = get(&server, &out, &[]);
    assert!(stderr(&again).contains(&format!("already is this version (root {root}")), "{}", stderr(&again));
    assert!(!stderr(&again).contains(&published), "{}", stderr(&again));

    // --verify-sha256 computes the file's digest itself, and the lie shows.
    let checked = dir.path().join("checked.bin");
    let res = get(&server, &checked, &["--verify-sha256"]);
    assert!(!res.status.success());
    let text = stderr(&res);
    assert!(
        text.contains(&format!("file digest {} differs from the manifest's {published}", hex(&sha256(&swapped)))),
        "{text}"
    );
    assert!(!checked.exists(), "a file that failed its check never gets the final name");
    let again = get(&server, &out, &["--verify-sha256"]);
    assert!(!again.status.success(), "an existing copy is checked against the claim too: {}", stderr(&again));

    // With an honest manifest, --verify-sha256 shows the digest it computed.
    let honest = hex(&sha256(&swapped));
    let server = serving_server(&swapped, &honest);
    let res = get(&server, &dir.path().join("honest.bin"), &["--verify-sha256"]);
    assert!(res.status.success(), "{}", stderr(&res));
    assert!(stderr(&res).contains(&format!("verified (sha256 {honest})")), "{}", stderr(&res));
}

/// Runs `cmd` to its end (killed past 2 GiB or a minute): its exit code, its
/// stderr and its peak RSS (KiB),
/// read from its own `VmHWM` while it runs (the `wait4` rusage would count
/// the memory of this test process it was spawned from).
fn run_measured(cmd: &mut Command) -> (Option<i32>, String, i64) {
    use std::io::Read as _;
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut err = String::new();
        stderr_pipe.read_to_string(&mut err).unwrap();
        err
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // A client that grows without bound is stopped, and fails below.
        if peak_kib > 2 << 20 || started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
        }
        let hwm = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM")).and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        });
        peak_kib = peak_kib.max(hwm.unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    (status.code(), reader.join().unwrap(), peak_kib)
}

fn get_cmd(server: &Hostile, out: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chunkcast"));
    cmd.args(["get", &server.url(""), "release.bin", "-o", out.to_str().unwrap(), "--retries", "0"]);
    cmd
}

#[test]
fn an_endless_manifest_is_cut_off_at_64_mib() {
    let server = Hostile::start(|_| Reply::Endless {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        piece: format!("{{\"hashes\":[{}", format!("\"{}\",", "ab".repeat(32)).repeat(1000)).into_bytes(),
    });
    let dir = tempfile::tempdir().unwrap();
    let (code, err, rss_kib) = run_measured(&mut get_cmd(&server, &dir.path().join("x")));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the manifest is larger than 64 MiB"), "{err}");
    assert_eq!(err.lines().count(), 1, "one plain line: {err}");
    println!("get against an endless manifest: peak RSS {} MiB", rss_kib / 1024);
    assert!(rss_kib < 200 * 1024, "memory stays bounded: {rss_kib} KiB");
}

/// A manifest for `chunks` made-up digests, with these fields replaced.
fn forged_manifest(chunks: usize, chunk_size: u64, size: u64) -> String {
    let hashes: Vec<_> = (0..chunks).map(|i| sha256(&i.to_le_bytes())).collect();
    let root = root_of(&hashes);
    serde_json::json!({
        "name": "release.bin", "size": size, "kind": "binary", "chunk_size": chunk_size, "chunks": chunks,
        "version": hex(&root[..8]), "sha256": hex(&sha256(b"x")), "root": hex(&root),
        "hashes": hashes.iter().map(|h| hex(h)).collect::<Vec<_>>(),
    })
    .to_string()
}

#[test]
fn a_manifest_outside_the_protocol_is_refused_before_anything_is_created() {
    // A 4 GiB chunk size would raise the client's line cap to gigabytes;
    // a chunk count that does not match the size, a file of no chunks.
    for (manifest, why) in [
        (forged_manifest(1, 4_294_967_295, 1 << 20), "chunk size outside"),
        (forged_manifest(1, 1024, 1000), "chunk size outside"),
        (forged_manifest(3, 4096, 1 << 20), "chunk count"),
        (forged_manifest(0, 4096, 10), "chunk count"),
    ] {
        let server = Hostile::start(move |path| {
            if path.starts_with("/api/manifest") {
                Reply::json(manifest.clone())
            } else {
                // Were it asked: one data line that never ends.
                Reply::Endless { status: 200, headers: vec![], piece: b"data: AAAAAAAAAAAAAAAA".repeat(4096) }
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let (code, err, _) = run_measured(&mut get_cmd(&server, &dir.path().join("x")));
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains(why), "{why}: {err}");
        assert_eq!(server.requests.lock().unwrap().len(), 1, "only the manifest was asked for");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing created: {why}");
    }
}

#[test]
fn a_file_bigger_than_the_free_space_is_refused_before_the_part_file() {
    // 1 TiB in 65,536 chunks of 16 MiB: a manifest of 4 MiB, consistent.
    let manifest = forged_manifest(65_536, 16 << 20, 1 << 40);
    let server = Hostile::start(move |_| Reply::json(manifest.clone()));
    let dir = tempfile::tempdir().unwrap();
    let (code, err, _) = run_measured(&mut get_cmd(&server, &dir.path().join("x")));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("needs 1.00 TiB more, and its filesystem has") && err.contains("free"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no part file made");
}

/// A hostile server that serves `bytes` consistently (its real sha256).
fn honest(bytes: Vec<u8>) -> Hostile {
    serving_server(&bytes, &hex(&sha256(&bytes)))
}

fn redirect_to(to: String) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    move |path: &str| Reply::status(302, &[("Location", &format!("{to}{path}"))], "")
}

#[test]
fn redirects_never_leave_https_and_reach_other_hosts_only_with_location() {
    let bytes: Vec<u8> = (0..2 * CHUNK + 5).map(|i| (i % 253) as u8).collect();
    let plain = honest(bytes.clone());
    let dir = tempfile::tempdir().unwrap();

    // https -> http: refused, with or without --location.
    let tls = Hostile::start_tls(redirect_to(plain.url("")));
    for extra in [&[][..], &["--location"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
            .args(["get", &tls.url(""), "release.bin", "-o", dir.path().join("a").to_str().unwrap()])
            .args(["--cacert", tls.cert_path().to_str().unwrap(), "--retries", "0"])
            .args(extra)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("refused the redirect from https://") && err.contains("leave https for plain http"),
            "{err}"
        );
    }
    assert!(plain.requests.lock().unwrap().is_empty(), "nothing was sent in the clear");

    // http -> another host: only with --location, and then it completes.
    let front = Hostile::start(redirect_to(plain.url("")));
    let out = get(&front, &dir.path().join("b"), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("leads to another host; pass --location to follow it"), "{err}");
    assert!(plain.requests.lock().unwrap().is_empty());
    let out = get(&front, &dir.path().join("b"), &["--location"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), bytes);

    // Within one server a redirect is followed without asking.
    let (manifest, events) = serving(&bytes, &hex(&sha256(&bytes)));
    let moved = Hostile::start(move |path| match path {
        p if p.starts_with("/old") => Reply::status(301, &[("Location", &p.replacen("/old", "", 1))], ""),
        p if p.starts_with("/api/manifest") => Reply::json(manifest.clone()),
        _ => Reply::events(events.clone()),
    });
    let out = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &moved.url("/old"), "release.bin", "-o", dir.path().join("c").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("c")).unwrap(), bytes);
    let requests = moved.requests.lock().unwrap();
    assert!(requests[0].starts_with("GET /old/api/manifest") && requests[1].starts_with("GET /api/manifest"));
}

#[test]
fn nothing_the_server_says_reaches_the_terminal_with_its_escape_sequences() {
    // Set the window title, clear the screen, then claim success; C1 CSI too.
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{9b}1mchunkcast: all good, 0 problems";
    let body = serde_json::json!({"code": "nope", "error": evil}).to_string();
    let dir = tempfile::tempdir().unwrap();
    let check = |out: &Output, what: &str| {
        let err = stderr(out);
        assert!(!out.status.success(), "{what}: {err}");
        assert!(!err.contains(['\u{1b}', '\u{7}', '\r', '\u{9b}']), "{what}: raw control characters: {err:?}");
        assert!(err.contains("\\x1b]0;pwned"), "{what}: the text is shown, escaped: {err}");
    };

    // A JSON error body (a 4xx is fatal at once).
    let body_4xx = body.clone();
    let server = Hostile::start(move |_| Reply::status(400, &[("Content-Type", "application/json")], body_4xx.clone()));
    check(&get(&server, &dir.path().join("a"), &[]), "error body");

    // An `event: error` while streaming (retried, then given up).
    let bytes: Vec<u8> = vec![7; CHUNK + 1];
    let (manifest, _) = serving(&bytes, &hex(&sha256(&bytes)));
    let event = sse::named("error", &serde_json::json!({"code": "io_error", "error": evil}).to_string());
    let server = Hostile::start(move |path| {
        if path.starts_with("/api/manifest") {
            Reply::json(manifest.clone())
        } else {
            Reply::events(event.clone())
        }
    });
    check(&get(&server, &dir.path().join("b"), &[]), "error event");

    // A manifest whose fields serde quotes when it refuses them.
    let server =
        Hostile::start(|_| Reply::json(format!("{{\"name\": 1, \"size\": \"{}\"}}", "\\u001b]0;pwned\\u0007")));
    let out = get(&server, &dir.path().join("c"), &[]);
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains(['\u{1b}', '\u{7}']), "manifest: {err:?}");

    // A redirect to a Location of control characters.
    let server = Hostile::start(|_| Reply::status(302, &[("Location", "http://127.0.0.1:1/\u{9b}2J")], ""));
    let out = get(&server, &dir.path().join("d"), &["--location"]);
    assert!(!stderr(&out).contains('\u{9b}'), "redirect: {:?}", stderr(&out));
}
