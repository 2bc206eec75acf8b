//! The index caches are bounded: entries of files that were deleted, renamed
//! or changed are pruned from memory and from the index directory, the map
//! never outgrows its bound, two servers sharing a directory never leave a
//! torn file, and a corrupt index file is detected and rebuilt.

use std::path::Path;
use std::sync::Arc;

use chunkcast::tree::catalog::Catalog;
use chunkcast::tree::IndexStore;

fn index_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn deleted_renamed_and_changed_files_are_pruned_within_the_bounds() {
    let root = crate::common::fsops::fast_tempdir();
    let index_dir = crate::common::fsops::fast_tempdir();
    for i in 0..2000 {
        std::fs::write(root.path().join(format!("f{i:04}.txt")), format!("file {i}\n")).unwrap();
    }
    let catalog = Catalog::new(root.path().to_owned()).unwrap();
    let store =
        IndexStore::new(4096, Some(index_dir.path().to_owned())).for_root(catalog.fs().clone()).with_bounds(500, 1500);
    let rt = rt();
    for i in 0..2000 {
        rt.block_on(store.get(&catalog.resolve(&format!("f{i:04}.txt")).unwrap())).unwrap();
        assert!(store.len() <= 500, "the map never outgrows its bound");
    }
    assert_eq!(index_files(index_dir.path()), 2000, "every index persisted");

    // 800 deleted, 800 renamed, 200 rewritten; 200 left as they were.
    for i in 0..2000 {
        let p = root.path().join(format!("f{i:04}.txt"));
        match i % 10 {
            0..4 => std::fs::remove_file(&p).unwrap(),
            4..8 => std::fs::rename(&p, root.path().join(format!("moved{i:04}.txt"))).unwrap(),
            8 => std::fs::write(&p, "new content, new size\n").unwrap(),
            _ => {}
        }
    }
    store.sweep_now();
    assert_eq!(index_files(index_dir.path()), 200, "only the unchanged files keep their index on disk");
    assert!(store.len() <= 200, "and in memory: {}", store.len());
    // What was kept is still used: no rehash for an unchanged file.
    let builds = store.builds();
    let restarted = IndexStore::new(4096, Some(index_dir.path().to_owned())).for_root(catalog.fs().clone());
    rt.block_on(restarted.get(&catalog.resolve("f0009.txt").unwrap())).unwrap();
    assert_eq!(restarted.builds(), 0, "loaded from disk");
    assert_eq!(store.builds(), builds);

    // The directory bound holds even for files that are all still there.
    let small =
        IndexStore::new(4096, Some(index_dir.path().to_owned())).for_root(catalog.fs().clone()).with_bounds(500, 50);
    small.sweep_now();
    assert_eq!(index_files(index_dir.path()), 50);
}

#[test]
fn two_servers_sharing_an_index_dir_never_leave_a_torn_file_and_corruption_is_rebuilt() {
    let root = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..20 {
        std::fs::write(root.path().join(format!("f{i}.bin")), &bytes).unwrap();
    }
    // Two stores, two runtimes, both indexing every file at once into one
    // directory (their writes land on the same names).
    let catalog = Catalog::new(root.path().to_owned()).unwrap();
    let stores: Vec<Arc<IndexStore>> = (0..2)
        .map(|_| Arc::new(IndexStore::new(4096, Some(index_dir.path().to_owned())).for_root(catalog.fs().clone())))
        .collect();
    std::thread::scope(|s| {
        for store in &stores {
            let catalog = &catalog;
            s.spawn(move || {
                let rt = rt();
                for i in 0..20 {
                    rt.block_on(store.get(&catalog.resolve(&format!("f{i}.bin")).unwrap())).unwrap();
                }
            });
        }
    });
    let names: Vec<String> =
        std::fs::read_dir(index_dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 20, "one file per index, no temporary left: {names:?}");
    // A third store reads every one of them back without rehashing.
    let reader = IndexStore::new(4096, Some(index_dir.path().to_owned())).for_root(catalog.fs().clone());
    let rt = rt();
    for i in 0..20 {
        rt.block_on(reader.get(&catalog.resolve(&format!("f{i}.bin")).unwrap())).unwrap();
    }
    assert_eq!(reader.builds(), 0, "every file intact");

    // Corrupt one (a flipped digit inside the index) and truncate another:
    // both are detected, rebuilt, and serve the right digests.
    let mut paths: Vec<_> = std::fs::read_dir(index_dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    let mut text = std::fs::read_to_string(&paths[0]).unwrap();
    let at = text.rfind("\"offsets\"").unwrap() + 12;
    let flipped = if text.as_bytes()[at] == b'1' { "2" } else { "1" };
    text.replace_range(at..at + 1, flipped);
    std::fs::write(&paths[0], text).unwrap();
    let len = std::fs::metadata(&paths[1]).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&paths[1]).unwrap().set_len(len / 2).unwrap();
    let fresh = IndexStore::new(4096, Some(index_dir.path().to_owned())).for_root(catalog.fs().clone());
    let want = chunkcast::protocol::sha256(&bytes);
    for i in 0..20 {
        let index = rt.block_on(fresh.get(&catalog.resolve(&format!("f{i}.bin")).unwrap())).unwrap();
        assert_eq!(index.sha256, want);
        assert_eq!(index.offsets.len(), 64);
        assert!(index.offsets.iter().enumerate().all(|(k, &o)| o == k as u64 * 4096));
    }
    assert_eq!(fresh.builds(), 2, "the two damaged files were rebuilt, the rest loaded");
}
