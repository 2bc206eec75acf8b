//! `GET /api/files?dir=`: one directory per request, through the same safe
//! resolution as files, cached by directory version, bounded in concurrency
//! and memory however large the tree; and a linear walk for `chunkcast index`.

use std::sync::Mutex;

use crate::common::*;
use chunkcast::tree::catalog::{Catalog, EntryKind};

/// The tests here measure the process's memory: one at a time.
static ALONE: Mutex<()> = Mutex::new(());

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn entries(server: &TestServer, dir: &str) -> Vec<serde_json::Value> {
    let res = server.get(&format!("/api/files?dir={}", q(dir)));
    assert_eq!(res.status, 200, "{dir}: {}", res.text());
    res.json().as_array().unwrap().clone()
}

#[test]
fn a_hundred_thousand_files_are_listed_one_small_directory_at_a_time() {
    let _alone = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let root = crate::common::fsops::fast_tempdir();
    for d in 0..1000 {
        let dir = root.path().join(format!("d{d:04}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}.txt")), b"x").unwrap();
        }
    }
    let server = TestServer::start(root.path(), &[]);
    let top = server.get("/api/files");
    assert_eq!(top.status, 200);
    let list = top.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1000);
    assert!(list.iter().all(|e| e["type"] == "dir" && e["size"] == 0));
    assert_eq!(list[42]["name"], "d0042");
    eprintln!("root listing: {} bytes", top.body.len());
    assert!(top.body.len() < 128 * 1024, "one directory, not the tree: {} bytes", top.body.len());

    let inner = entries(&server, "d0042");
    assert_eq!(inner.len(), 100);
    assert_eq!(inner[7]["name"], "d0042/f007.txt");
    assert_eq!(inner[7]["type"], "file");
    assert_eq!(inner[7]["size"], 1);
    // A listed name is what `/files/` and `file=` take.
    assert_eq!(server.get(&format!("/files/{}", q("d0042/f007.txt"))).body, b"x");

    // 60 listings at once (the root and directories): all answered, and the
    // server's memory barely moves (it held 1.45 GiB after this before).
    let before = rss_kib("VmRSS:");
    std::thread::scope(|s| {
        for i in 0..60 {
            let server = &server;
            s.spawn(move || {
                let dir = if i % 2 == 0 { String::new() } else { format!("d{:04}", i * 16) };
                let n = entries(server, &dir).len();
                assert_eq!(n, if dir.is_empty() { 1000 } else { 100 });
            });
        }
    });
    let after = rss_kib("VmRSS:");
    eprintln!("60 concurrent listings: RSS {before} KiB -> {after} KiB");
    assert!(after < before + 64 * 1024, "RSS grew from {before} KiB to {after} KiB");
}

#[test]
fn dir_goes_through_the_same_checks_as_a_file_name() {
    let _alone = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"s").unwrap();
    let root = fixture_root();
    let p = root.path();
    std::fs::create_dir(p.join(".git")).unwrap();
    std::fs::create_dir(p.join("locked")).unwrap();
    std::fs::write(p.join("locked/in.txt"), b"x").unwrap();
    std::os::unix::fs::symlink(outside.path(), p.join("out")).unwrap();
    std::os::unix::fs::symlink("nested", p.join("in-link")).unwrap();
    crate::common::fsops::mkfifo(&p.join("pipe"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let server = TestServer::start(p, &[]);

    let top = entries(&server, "");
    let kinds: Vec<(String, String)> =
        top.iter().map(|e| (e["name"].as_str().unwrap().into(), e["type"].as_str().unwrap().into())).collect();
    assert!(kinds.contains(&("nested".into(), "dir".into())));
    assert!(kinds.contains(&("in-link".into(), "dir".into())), "an in-root link to a directory is one");
    assert!(kinds.contains(&("locked".into(), "dir".into())), "an unreadable directory is still listed");
    for absent in ["out", ".git", "pipe"] {
        assert!(!kinds.iter().any(|(n, _)| n == absent), "{absent} listed");
    }
    assert_eq!(entries(&server, "in-link/deeper")[0]["name"], "in-link/deeper/note.txt");
    assert_eq!(entries(&server, "nested")[0]["name"], "nested/deeper");
    // Listing the unreadable one fails cleanly (root may read it anyway).
    let locked = server.get("/api/files?dir=locked");
    assert!(locked.status == 200 || locked.status == 404, "{}", locked.status);
    std::fs::set_permissions(p.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
    for bad in ["out", ".git", "one-chunk.bin", "..", "nested/..", "../", "/etc", "nested/", "pipe", "nope"] {
        server.get(&format!("/api/files?dir={}", q(bad))).assert_error(404, "not_found");
    }
    // A new file shows at once (the directory's mtime moved, so its cached
    // names are stale), and a grown file shows its new size.
    std::fs::write(p.join("nested/new.txt"), b"12345").unwrap();
    let nested = entries(&server, "nested");
    assert!(nested.iter().any(|e| e["name"] == "nested/new.txt" && e["size"] == 5), "{nested:?}");
    std::fs::write(p.join("nested/new.txt"), b"1234567890").unwrap();
    let nested = entries(&server, "nested");
    assert!(nested.iter().any(|e| e["name"] == "nested/new.txt" && e["size"] == 10), "{nested:?}");
}

/// `chunkcast index` walks the whole tree; 20,000 directories (with a link
/// loop) are walked once each, linearly (it was quadratic: 13 s for 20,000).
#[test]
fn the_index_walk_visits_twenty_thousand_directories_once_each() {
    let _alone = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let root = crate::common::fsops::fast_tempdir();
    for a in 0..200 {
        for b in 0..100 {
            let dir = root.path().join(format!("a{a:03}/b{b:03}"));
            std::fs::create_dir_all(&dir).unwrap();
            if b == 0 {
                std::fs::write(dir.join("f.txt"), b"x").unwrap();
            }
        }
    }
    std::os::unix::fs::symlink("..", root.path().join("a000/loop")).unwrap();
    let catalog = Catalog::new(root.path().to_owned()).unwrap();
    let started = std::time::Instant::now();
    let files = catalog.walk().unwrap();
    eprintln!("walked 20,200 directories in {} ms", started.elapsed().as_millis());
    assert_eq!(files.len(), 200);
    assert_eq!(files[0].name, "a000/b000/f.txt");
    assert!(files.iter().all(|f| f.kind == EntryKind::File));
}

#[test]
fn a_directory_larger_than_a_page_lists_whole_in_order() {
    let root = tempfile::tempdir().unwrap();
    let big = root.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..450 {
        std::fs::write(big.join(format!("f{i:04}.txt")), format!("{i}")).unwrap();
    }
    std::fs::write(big.join(".hidden"), "x").unwrap();
    std::fs::create_dir(big.join("sub")).unwrap();
    let server = TestServer::start(root.path(), &[]);
    let res = server.get("/api/files?dir=big");
    assert_eq!(res.status, 200);
    let list = res.json();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    let mut want: Vec<String> = (0..450).map(|i| format!("big/f{i:04}.txt")).collect();
    want.push("big/sub".into());
    assert_eq!(names, want);
    assert_eq!(list[449]["size"], 3);
    assert_eq!(list[450]["type"], "dir");
    assert_eq!(server.get("/api/files?dir=nope").status, 404, "a missing directory is a 404, not a broken stream");
}
