//! A manifest of tens of MB (1 GiB at 4 KiB chunks: 262,144 digests, ~18 MB)
//! under 30 concurrent requests: every response is the same correct
//! manifest, `/healthz` answers while they are in flight, and the JSON is
//! serialized once, not once per request.

use std::io::Read as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::*;
use chunkcast::tree::catalog::Catalog;
use chunkcast::tree::IndexStore;
use sha2::Digest as _;

const SIZE: u64 = 1 << 30;
const CHUNKS: usize = (SIZE / 4096) as usize;

/// A root holding `huge.bin`, a sparse file of `size` bytes (cheap to make).
fn sparse_root(size: u64) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::File::create(root.path().join("huge.bin")).unwrap().set_len(size).unwrap();
    root
}

#[test]
fn thirty_concurrent_huge_manifests_are_correct_and_healthz_keeps_answering() {
    let root = sparse_root(SIZE);
    let server = TestServer::start(root.path(), &[]);
    // The first request indexes (one hashing pass); the rest is serving.
    let first = server.get("/api/manifest?file=huge.bin");
    assert_eq!(first.status, 200);
    eprintln!("manifest of {CHUNKS} chunks: {} bytes", first.body.len());
    assert!(first.body.len() > 10 << 20, "tens of MB");
    let m = first.json();
    let hashes = m["hashes"].as_array().unwrap();
    assert_eq!(hashes.len(), CHUNKS);
    let zero_chunk = sha256_hex(&[0u8; 4096]);
    assert!(hashes.iter().all(|h| h == zero_chunk.as_str()));
    assert_eq!(m["name"], "huge.bin");
    assert_eq!(m["size"], SIZE);
    let want = sha256_hex(&first.body);

    let pending = AtomicUsize::new(30);
    let answered_meanwhile = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..30 {
            s.spawn(|| {
                let res = ureq::get(&server.url("/api/manifest?file=huge.bin")).call().unwrap();
                let mut reader = res.into_body().into_reader();
                let mut hasher = sha2::Sha256::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = reader.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
                assert_eq!(chunkcast::protocol::hex(&hasher.finalize()), want, "every response is the manifest");
                pending.fetch_sub(1, Ordering::SeqCst);
            });
        }
        s.spawn(|| {
            while pending.load(Ordering::SeqCst) > 0 {
                assert_eq!(server.get("/healthz").status, 200);
                if pending.load(Ordering::SeqCst) > 0 {
                    answered_meanwhile.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    });
    let answered = answered_meanwhile.load(Ordering::SeqCst);
    eprintln!("/healthz answered {answered} times while the manifests were in flight");
    assert!(answered > 0);
}

#[test]
fn concurrent_manifests_share_one_serialization() {
    // Smaller: this one counts serializations, it needs no big body.
    const SIZE: u64 = 64 << 20;
    let root = sparse_root(SIZE);
    let catalog = Catalog::new(root.path().to_owned()).unwrap();
    let store = Arc::new(IndexStore::new(4096, None));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tails: Vec<_> = rt.block_on(async {
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let (store, file) = (store.clone(), catalog.resolve("huge.bin").unwrap());
                tokio::spawn(async move { store.manifest(&file).await.unwrap().1 })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(store.builds(), 1);
    assert_eq!(store.manifest_serializations(), 1, "30 requests, one serialization");
    // One buffer, shared: every request got the same bytes, not a copy.
    assert!(tails.iter().all(|t| t.as_ptr() == tails[0].as_ptr() && t.len() == tails[0].len()));
    // A new version of the file is serialized again.
    std::fs::OpenOptions::new().write(true).open(root.path().join("huge.bin")).unwrap().set_len(SIZE / 2).unwrap();
    let file = catalog.resolve("huge.bin").unwrap();
    let (index, tail) = rt.block_on(store.manifest(&file)).unwrap();
    assert_eq!(index.size(), SIZE / 2);
    assert_eq!(store.manifest_serializations(), 2);
    assert!(tail.len() < tails[0].len());
}
