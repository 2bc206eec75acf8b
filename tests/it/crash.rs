//! `chunkcast get` killed with SIGKILL at random moments of a download
//! (mid-write, mid-state-file, mid-rename) and run again each time: the
//! final file is byte-identical, nothing verified is ever lost, and each
//! rerun fetches only chunks that were not on disk yet. A fault-free proxy
//! (`chaos-proxy`) in front of the server counts what each run received.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chaos_proxy::{Faults, Proxy};
use chunkcast::protocol::{parse_hex, sha256};

use crate::common::*;

const CHUNK: usize = 4096;
const CHUNKS: usize = 1024;
/// At least this many kills, over as many downloads as it takes.
const KILLS: usize = 24;

/// The chunks of `part` whose bytes match their digest.
fn intact(part: &Path, digests: &[[u8; 32]]) -> BTreeSet<u64> {
    let Ok(bytes) = std::fs::read(part) else { return BTreeSet::new() };
    (0..digests.len())
        .filter(|&i| bytes.get(i * CHUNK..(i + 1) * CHUNK).is_some_and(|c| sha256(c) == digests[i]))
        .map(|i| i as u64)
        .collect()
}

#[test]
fn a_download_killed_at_random_moments_finishes_identical_and_never_refetches_what_it_had() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(20261206);
    let original: Vec<u8> = (0..CHUNKS * CHUNK).map(|_| rng.u8(..)).collect();
    std::fs::write(root.path().join("big.bin"), &original).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let manifest = server.get("/api/manifest?file=big.bin").json();
    let digests: Vec<[u8; 32]> =
        manifest["hashes"].as_array().unwrap().iter().map(|h| parse_hex(h.as_str().unwrap()).unwrap()).collect();
    let proxy = Proxy::start(server.addr, 0, Faults::default());
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("big.bin");
    let part = out_dir.path().join("big.bin.part");

    let (mut kills, mut downloads, mut fetched_per_run) = (0, 0, Vec::new());
    while kills < KILLS {
        // One download, killed again and again until a run finishes it.
        let _ = std::fs::remove_file(&out);
        downloads += 1;
        loop {
            let on_disk = intact(&part, &digests);
            let before = proxy.stats();
            // 4 MiB at 4 MiB/s: a kill anywhere from the first bytes to
            // after the rename.
            let mut child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
                .args(["get", &format!("http://{}", proxy.addr), "big.bin", "-o", out.to_str().unwrap()])
                .args(["--rate", "4M", "--quiet", "--retries", "3"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let delay = Duration::from_millis(rng.u64(10..1300));
            std::thread::sleep(delay);
            let killed = child.try_wait().unwrap().is_none();
            if killed {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
            let status = child.wait_with_output().unwrap();
            assert!(proxy.wait_idle(Duration::from_secs(10)), "the run's connections ended");
            let (after, run) = (proxy.stats(), proxy.take_ledger());
            let now = intact(&part, &digests);
            let received = after.payload_bytes - before.payload_bytes;
            fetched_per_run.push(received);

            // Nothing verified is lost, whatever the moment of the kill.
            if !out.exists() {
                let lost: Vec<_> = on_disk.difference(&now).collect();
                assert!(lost.is_empty(), "chunks verified before the run are gone: {lost:?}");
            }
            // A chunk on disk is never fetched again (only chunks sent but
            // not yet written at a kill arrive a second time, in a later run),
            // and no run receives one chunk twice.
            let again: Vec<_> = run.intact.intersection(&on_disk).collect();
            assert!(again.is_empty(), "chunks already on disk were fetched again: {again:?}");
            assert_eq!(run.intact_repeats, 0, "a chunk arrived twice in one run");
            if out.exists() {
                assert_eq!(std::fs::read(&out).unwrap(), original, "the final file is byte-identical");
                assert!(!part.exists(), "the part file is renamed, not copied");
                break;
            }
            if !killed {
                panic!("get exited without the file: {}", String::from_utf8_lossy(&status.stderr));
            }
        }
    }
    let runs = fetched_per_run.len();
    let total: u64 = fetched_per_run.iter().sum();
    println!(
        "{kills} SIGKILLs over {downloads} downloads of {} KiB in {runs} runs: {:.2}x the file fetched in all, per run {:?} KiB",
        original.len() / 1024,
        total as f64 / (downloads * original.len()) as f64,
        fetched_per_run.iter().map(|b| b / 1024).collect::<Vec<_>>()
    );
}
