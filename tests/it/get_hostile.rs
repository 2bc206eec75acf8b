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
    let (manifest, events) = serving(&swapped, &published);
    let server = Hostile::start(move |path| {
        if path.starts_with("/api/manifest") {
            Reply::json(manifest.clone())
        } else {
            Reply::events(events.clone())
        }
    });
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
    let (manifest, events) = serving(&swapped, &honest);
    let server = Hostile::start(move |path| {
        if path.starts_with("/api/manifest") {
            Reply::json(manifest.clone())
        } else {
            Reply::events(events.clone())
        }
    });
    let res = get(&server, &dir.path().join("honest.bin"), &["--verify-sha256"]);
    assert!(res.status.success(), "{}", stderr(&res));
    assert!(stderr(&res).contains(&format!("verified (sha256 {honest})")), "{}", stderr(&res));
}
