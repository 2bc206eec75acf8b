//! `GET /files/NAME`: raw bytes with Range, ETag, Last-Modified, and an
//! `If-Range` that never splices two versions.

use crate::common::*;

#[test]
fn ranges_and_validators() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let original = std::fs::read(root.path().join("all-bytes.bin")).unwrap();
    let full = server.get("/files/all-bytes.bin");
    assert_eq!(full.status, 200);
    assert_eq!(full.body, original);
    let etag = full.header("etag").expect("ETag").to_owned();
    let modified = full.header("last-modified").expect("Last-Modified").to_owned();
    assert_eq!(full.header("accept-ranges"), Some("bytes"));

    let part = server.get_with("/files/all-bytes.bin", &[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &original[100..200]);

    for validator in [etag.as_str(), modified.as_str()] {
        let res = server.get_with("/files/all-bytes.bin", &[("Range", "bytes=100-199"), ("If-Range", validator)]);
        assert_eq!(res.status, 206, "matching If-Range {validator}");
        assert_eq!(res.body, &original[100..200]);
    }
    let nested = server.get("/files/nested/deeper/note.txt");
    assert_eq!(nested.body, b"nested file\n");
    let odd = server.get(&format!("/files/{}", q("name with spaces & 'quotes'.txt")));
    assert_eq!(odd.status, 200);
}

#[test]
fn a_stale_if_range_gets_the_whole_new_file_not_a_spliced_range() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let path = root.path().join("all-bytes.bin");
    let old = server.get("/files/all-bytes.bin");
    let etag = old.header("etag").unwrap().to_owned();
    // A new version: different size and mtime, so both validators go stale.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let new_bytes: Vec<u8> = (0..5000u32).map(|i| (i % 13) as u8).collect();
    std::fs::write(&path, &new_bytes).unwrap();
    for validator in [etag.as_str(), old.header("last-modified").unwrap(), "W/\"weak\""] {
        let res = server.get_with("/files/all-bytes.bin", &[("Range", "bytes=100-"), ("If-Range", validator)]);
        assert_eq!(res.status, 200, "stale If-Range {validator}");
        assert_eq!(res.body, new_bytes);
        assert_ne!(res.header("etag"), Some(etag.as_str()));
    }
    // Without If-Range, a range of the new version is fine.
    let res = server.get_with("/files/all-bytes.bin", &[("Range", "bytes=100-")]);
    assert_eq!(res.status, 206);
    assert_eq!(res.body, &new_bytes[100..]);
}

#[test]
fn curl_continue_resumes_a_partial_download() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl not installed; skipping");
        return;
    }
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("story.txt");
    let original = std::fs::read(root.path().join("story.txt")).unwrap();
    std::fs::write(&out, &original[..1000]).unwrap();
    let status = std::process::Command::new("curl")
        .args(["-sf", "-C", "-", "-o", out.to_str().unwrap(), &server.url("/files/story.txt")])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&out).unwrap(), original);
}

#[test]
fn download_1_asks_for_an_attachment_named_in_rfc_6266_form() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    // Viewed by default: no Content-Disposition.
    let plain = server.get(&format!("/files/{}", q("ünïcødé 名前.txt")));
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-disposition"), None);

    let res = server.get(&format!("/files/{}?download=1", q("ünïcødé 名前.txt")));
    assert_eq!(res.status, 200);
    assert_eq!(res.body, std::fs::read(root.path().join("ünïcødé 名前.txt")).unwrap());
    assert_eq!(
        res.header("content-disposition"),
        Some("attachment; filename=\"_n_c_d_ __.txt\"; filename*=UTF-8''%C3%BCn%C3%AFc%C3%B8d%C3%A9%20%E5%90%8D%E5%89%8D.txt")
    );

    // Quotes never break out of the plain form; only the base name is given.
    let odd = server.get(&format!("/files/{}?download=1", q("name with spaces & 'quotes'.txt")));
    assert_eq!(
        odd.header("content-disposition"),
        Some("attachment; filename=\"name with spaces & 'quotes'.txt\"; filename*=UTF-8''name%20with%20spaces%20&%20%27quotes%27.txt")
    );
    let nested = server.get("/files/nested/deeper/note.txt?download=1");
    assert_eq!(
        nested.header("content-disposition"),
        Some("attachment; filename=\"note.txt\"; filename*=UTF-8''note.txt")
    );
    // A range of an attachment is still a range.
    let part = server.get_with("/files/all-bytes.bin?download=1", &[("Range", "bytes=0-9")]);
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-disposition"),
        Some("attachment; filename=\"all-bytes.bin\"; filename*=UTF-8''all-bytes.bin")
    );
}
