//! Every fixture arrives byte-identical through `/events` and through the
//! range endpoint, with the manifest's digests matching the bytes.

use crate::common::*;

#[test]
fn every_fixture_streams_byte_identical_through_events() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    for name in fixture_names() {
        let original = std::fs::read(root.path().join(&name)).unwrap();
        let manifest = server.get(&format!("/api/manifest?file={}", q(&name))).json();
        let res = server.get(&format!("/events?file={}", q(&name)));
        let chunks = manifest["chunks"].as_u64().unwrap();
        if chunks == 0 {
            assert_eq!(res.status, 204, "{name}: nothing to send");
            assert!(original.is_empty());
            continue;
        }
        assert_eq!(res.status, 200, "{name}");
        let events = res.events();
        assert_eq!(events[0].event, "meta", "{name}");
        assert_eq!(events[0].id, None, "meta carries no id");
        let meta: serde_json::Value = serde_json::from_str(&events[0].data).unwrap();
        assert_eq!(meta["version"], manifest["version"]);
        assert!(meta.get("hashes").is_none() && meta.get("offsets").is_none());
        let end = events.last().unwrap();
        assert_eq!(end.event, "end");
        let end_data: serde_json::Value = serde_json::from_str(&end.data).unwrap();
        assert_eq!(end_data, serde_json::json!({ "chunks": chunks, "root": manifest["root"] }));

        let mut assembled = Vec::new();
        let chunk_events: Vec<_> = events.iter().filter(|e| e.event == "chunk").collect();
        assert_eq!(chunk_events.len() as u64, chunks, "{name}");
        for (n, event) in chunk_events.iter().enumerate() {
            let (i, bytes) = payload(event);
            assert_eq!(i, n as u64);
            assert_eq!(event.id.as_deref(), Some(n.to_string().as_str()));
            assert_eq!(sha256_hex(&bytes), manifest["hashes"][n], "{name} chunk {n}");
            assembled.extend(bytes);
        }
        assert_eq!(assembled, original, "{name} reassembles exactly");
    }
}

#[test]
fn every_fixture_streams_byte_identical_through_the_range_endpoint() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &["--max-range", "2"]);
    for name in fixture_names() {
        let original = std::fs::read(root.path().join(&name)).unwrap();
        let manifest = server.get(&format!("/api/manifest?file={}", q(&name))).json();
        let chunks = manifest["chunks"].as_u64().unwrap();
        let mut assembled = Vec::new();
        for start in (0..chunks).step_by(2) {
            let end = (start + 2).min(chunks);
            let res = server.get(&format!("/events/chunk/{start}/{end}?file={}", q(&name)));
            assert_eq!(res.status, 200);
            let events = res.events();
            assert!(events.iter().all(|e| e.event != "meta"), "range streams carry no meta");
            assert_eq!(events.last().unwrap().event, "end");
            let got: Vec<_> = events.iter().filter(|e| e.event == "chunk").map(payload).collect();
            assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (start..end).collect::<Vec<_>>());
            for (_, bytes) in got {
                assembled.extend(bytes);
            }
        }
        assert_eq!(assembled, original, "{name}");
    }
}

#[test]
fn manifest_digests_match_the_bytes() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    for name in fixture_names() {
        let bytes = std::fs::read(root.path().join(&name)).unwrap();
        let m = server.get(&format!("/api/manifest?file={}", q(&name))).json();
        assert_eq!(m["name"], name.as_str());
        assert_eq!(m["size"], bytes.len() as u64);
        assert_eq!(m["chunk_size"], 4096);
        assert_eq!(m["sha256"], sha256_hex(&bytes), "{name}: whole-file digest");
        let hashes: Vec<_> = m["hashes"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
        let raw: Vec<u8> = hashes
            .iter()
            .flat_map(|h| (0..32).map(move |i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()))
            .collect();
        assert_eq!(m["root"], sha256_hex(&raw), "{name}: root");
        assert_eq!(m["version"], &m["root"].as_str().unwrap()[..16]);
        let kind = if std::str::from_utf8(&bytes).is_ok() { "text" } else { "binary" };
        assert_eq!(m["kind"], kind, "{name}");
        assert_eq!(m.get("offsets").is_some(), kind == "text", "{name}: offsets only for text");
        if kind == "binary" {
            for (i, h) in hashes.iter().enumerate() {
                let chunk = &bytes[i * 4096..((i + 1) * 4096).min(bytes.len())];
                assert_eq!(sha256_hex(chunk), *h);
            }
        }
    }
}

#[test]
fn text_chunks_are_valid_utf8_and_cut_before_split_characters() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let bytes = std::fs::read(root.path().join("utf8-boundaries.txt")).unwrap();
    let m = server.get("/api/manifest?file=utf8-boundaries.txt").json();
    let offsets: Vec<u64> = m["offsets"].as_array().unwrap().iter().map(|o| o.as_u64().unwrap()).collect();
    // The fixture puts a multi-byte character across every 4 KiB boundary, so
    // every cut must have moved back.
    assert!(offsets.iter().skip(1).all(|o| o % 4096 != 0), "{offsets:?}");
    let events = server.get("/events?file=utf8-boundaries.txt").events();
    let mut text = String::new();
    for e in events.iter().filter(|e| e.event == "chunk") {
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        let piece = v["text"].as_str().expect("text files stream as text");
        assert_eq!(v["off"].as_u64().unwrap(), offsets[v["i"].as_u64().unwrap() as usize]);
        assert!(piece.len() <= 4096);
        text.push_str(piece);
    }
    assert_eq!(text.as_bytes(), &bytes[..]);
    assert!(text.contains('文') && text.contains('😀') && text.contains('完'));
}

#[test]
fn files_are_listed_with_size_and_time_and_hidden_ones_are_not() {
    let root = fixture_root();
    std::fs::write(root.path().join(".secret"), b"x").unwrap();
    std::fs::create_dir(root.path().join(".git")).unwrap();
    std::fs::write(root.path().join(".git/config"), b"x").unwrap();
    let server = TestServer::start(root.path(), &[]);
    let list = server.get("/api/files").json();
    // One directory per listing: walk into each `dir` entry by its name.
    let mut names = Vec::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let listing = server.get(&format!("/api/files?dir={}", q(&dir))).json();
        for e in listing.as_array().unwrap() {
            let name = e["name"].as_str().unwrap().to_owned();
            assert!(name.starts_with(&dir), "{name} listed under {dir:?}");
            match e["type"].as_str().unwrap() {
                "dir" => dirs.push(name),
                "file" => names.push(name),
                t => panic!("type {t}"),
            }
        }
    }
    names.sort();
    assert_eq!(names, fixture_names());
    let first = &list[0];
    assert_eq!(first["size"], std::fs::metadata(root.path().join(&names[0])).unwrap().len());
    let modified = first["modified"].as_str().unwrap();
    assert!(modified.ends_with('Z') && modified.len() == 20, "RFC 3339 UTC: {modified}");
}

#[test]
fn stream_headers_and_wire_bytes_are_exact() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &["--retry-ms", "2000"]);
    let res = server.get("/events?file=one-byte.bin");
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    assert_eq!(res.header("cache-control"), Some("no-cache, no-transform"));
    assert_eq!(res.header("x-accel-buffering"), Some("no"));
    assert_eq!(res.header("content-encoding"), Some("identity"));
    let body = res.text();
    let retry: u64 = body.strip_prefix("retry: ").unwrap().split('\n').next().unwrap().parse().unwrap();
    assert!((2000..=3000).contains(&retry), "retry carries jitter within [base, 1.5 base]: {retry}");
    let m = server.get("/api/manifest?file=one-byte.bin").json();
    let want = format!(
        "id: 0\nevent: chunk\ndata: {{\"i\":0,\"off\":0,\"len\":1,\"sha256\":\"{}\",\"b64\":\"/w==\"}}\n\nevent: end\ndata: {{\"chunks\":1,\"root\":\"{}\"}}\n\n",
        m["hashes"][0].as_str().unwrap(),
        m["root"].as_str().unwrap()
    );
    assert!(body.ends_with(&want), "wire bytes:\n{body}");
}

#[test]
fn static_web_client_and_health() {
    let root = fixture_root();
    let server = TestServer::start(root.path(), &[]);
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("chunkcast"));
    let health = server.get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
}
