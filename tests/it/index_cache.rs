//! The index is computed once per file version: shared between concurrent
//! first requests, and persisted so a restart does not rehash.

use std::sync::Arc;

use crate::common::binary;
use crate::common::*;
use chunkcast::tree::catalog::Catalog;
use chunkcast::tree::IndexStore;

/// Rewrites `path` with other bytes of the same size and puts the old mtime
/// back: only a server that rehashes would notice.
fn swap_content_keep_stamp(path: &std::path::Path) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes.iter_mut().for_each(|b| *b = !*b);
    std::fs::write(path, &bytes).unwrap();
    std::fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
}

#[test]
fn a_restarted_server_reads_the_persisted_index_instead_of_rehashing() {
    let root = fixture_root();
    let index_dir = tempfile::tempdir().unwrap();
    let dir = index_dir.path().to_str().unwrap();
    let args = ["serve", "--chunk-size", "4K", "--index-dir", dir];
    let first = TestServer::start_with(root.path(), &args);
    let before = first.get("/api/manifest?file=all-bytes.bin").json();
    first.stop();
    assert_eq!(std::fs::read_dir(index_dir.path()).unwrap().count(), 1, "one persisted index");

    swap_content_keep_stamp(&root.path().join("all-bytes.bin"));
    let second = TestServer::start_with(root.path(), &args);
    let after = second.get("/api/manifest?file=all-bytes.bin").json();
    assert_eq!(after["root"], before["root"], "same stamp and chunk size: served from the persisted index");
    second.stop();

    // A different chunk size is a different index.
    let third = TestServer::start_with(root.path(), &["serve", "--chunk-size", "8K", "--index-dir", dir]);
    let other = third.get("/api/manifest?file=all-bytes.bin").json();
    assert_eq!(other["chunk_size"], 8192);
    assert_eq!(other["sha256"], sha256_hex(&std::fs::read(root.path().join("all-bytes.bin")).unwrap()));
}

#[test]
fn the_index_subcommand_precomputes_what_the_server_then_uses() {
    let root = fixture_root();
    let index_dir = tempfile::tempdir().unwrap();
    let dir = index_dir.path().to_str().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["index", root.path().to_str().unwrap(), "--chunk-size", "4K", "--index-dir", dir])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), fixture_names().len(), "one line per file:\n{stdout}");
    assert!(out.stderr.is_empty(), "each file is told once, on stdout: {}", String::from_utf8_lossy(&out.stderr));
    let original = std::fs::read(root.path().join("one-chunk.bin")).unwrap();
    swap_content_keep_stamp(&root.path().join("one-chunk.bin"));
    let server = TestServer::start_with(root.path(), &["serve", "--chunk-size", "4K", "--index-dir", dir]);
    let m = server.get("/api/manifest?file=one-chunk.bin").json();
    assert_eq!(m["sha256"], sha256_hex(&original), "served from the precomputed index");
}

#[test]
fn concurrent_first_requests_share_one_computation() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("big.bin"), vec![7u8; 8 << 20]).unwrap();
    let catalog = Catalog::new(root.path().to_owned()).unwrap();
    let store = Arc::new(IndexStore::new(4096, None));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let roots: Vec<String> = rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, file) = (store.clone(), catalog.resolve("big.bin").unwrap());
                tokio::spawn(async move { chunkcast::protocol::hex(&store.get(&file).await.unwrap().root) })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(store.builds(), 1, "16 concurrent first requests, one hashing pass");
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn an_unwritable_index_dir_falls_back_to_memory() {
    let root = fixture_root();
    let server =
        TestServer::start_with(root.path(), &["serve", "--chunk-size", "4K", "--index-dir", "/dev/null/not-a-dir"]);
    let m = server.get("/api/manifest?file=all-bytes.bin").json();
    assert_eq!(m["chunks"], 2);
    assert_eq!(server.get("/events?file=all-bytes.bin").status, 200);
}

#[test]
fn an_index_dir_inside_the_root_is_refused() {
    let root = fixture_root();
    let inside = root.path().join("idx");
    let args = chunkcast::cli::ServeArgs::parse_from([
        "serve",
        "--root",
        root.path().to_str().unwrap(),
        "--index-dir",
        inside.to_str().unwrap(),
    ]);
    let err = chunkcast::Config::try_from(args).unwrap_err();
    assert!(err.to_string().contains("inside the served root"), "{err}");
}

#[test]
fn a_truncated_or_corrupted_index_file_is_rebuilt_never_trusted() {
    let root = fixture_root();
    let index_dir = tempfile::tempdir().unwrap();
    let args = ["serve", "--chunk-size", "4K", "--index-dir", index_dir.path().to_str().unwrap()];
    let first = TestServer::start_with(root.path(), &args);
    let before = first.get("/api/manifest?file=all-bytes.bin").json();
    first.stop();
    let file = std::fs::read_dir(index_dir.path()).unwrap().next().unwrap().unwrap().path();
    let good = std::fs::read(&file).unwrap();
    // The served bytes change behind the same stamp: a server that trusted
    // the index file would serve the old root; one that rebuilds, the new.
    swap_content_keep_stamp(&root.path().join("all-bytes.bin"));
    let new_sha = sha256_hex(&std::fs::read(root.path().join("all-bytes.bin")).unwrap());
    let body_at = good.iter().position(|&b| b == b'\n').unwrap() + 1;
    let flipped = {
        let mut b = good.clone();
        let at = body_at + b[body_at..].windows(8).position(|w| w == b"\"hashes\"").unwrap() + 12;
        b[at] = if b[at] == b'0' { b'1' } else { b'0' };
        b
    };
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("a digit flipped in a digest", flipped),
        ("empty", Vec::new()),
        ("no header", good[body_at..].to_vec()),
    ] {
        std::fs::write(&file, &bytes).unwrap();
        let server = TestServer::start_with(root.path(), &args);
        let served = server.get("/api/manifest?file=all-bytes.bin").json();
        server.stop();
        assert_eq!(served["sha256"], new_sha, "{what}: rebuilt from the file");
        assert_ne!(served["root"], before["root"], "{what}: the damaged index was not used");
        let rewritten = std::fs::read(&file).unwrap();
        assert!(rewritten.len() > body_at && rewritten != bytes, "{what}: the index file was written anew");
    }
}

#[test]
fn an_index_dir_that_fills_up_degrades_to_memory_with_one_warning() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let mnt = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt.path().to_str().unwrap()])
        .status()
        .unwrap();
    if !mounted.success() {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mnt.path());
    let root = tempfile::tempdir().unwrap();
    for i in 0..12 {
        std::fs::write(root.path().join(format!("f{i}.bin")), vec![i as u8; 256 * 1024]).unwrap();
    }
    let index_dir = mnt.path().join("index");
    let server = binary::spawn(
        root.path(),
        "127.0.0.1:0",
        &["--chunk-size", "4K", "--index-dir", index_dir.to_str().unwrap()],
        None,
        "warn",
    );
    assert_eq!(server.request("/api/manifest?file=f0.bin", "localhost").0, 200);
    assert_eq!(std::fs::read_dir(&index_dir).unwrap().count(), 1, "persisted while there is room");
    // Another program takes the rest of the disk.
    let mut filler = std::fs::File::create(mnt.path().join("filler")).unwrap();
    while std::io::Write::write_all(&mut filler, &[0u8; 16 * 1024]).is_ok() {}
    for i in 1..12 {
        let (status, body) = server.request(&format!("/api/manifest?file=f{i}.bin"), "localhost");
        assert_eq!(status, 200, "f{i}: {body}");
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = String::from_utf8_lossy(&server.log()).into_owned();
    let warnings = log.matches("could not write to the index directory").count();
    assert_eq!(warnings, 1, "one warning, then memory only: {log}");
    let names: Vec<_> = std::fs::read_dir(&index_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "no torn temporary file is left: {names:?}");
}
