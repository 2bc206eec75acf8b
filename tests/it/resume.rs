//! Resuming: `Last-Event-ID` (header or `lastEventId` query), `from`, `need`
//! lists, and the 204 that tells an EventSource to stop.

use crate::common::*;

/// A 10-chunk binary file (4 KiB chunks, last one short).
fn ten_chunks(root: &std::path::Path) -> Vec<u8> {
    let bytes: Vec<u8> = (0..9 * 4096 + 100).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("ten.bin"), &bytes).unwrap();
    bytes
}

fn chunk_ids(res: &Resp) -> Vec<u64> {
    res.events().iter().filter(|e| e.event == "chunk").map(|e| payload(e).0).collect()
}

#[test]
fn last_event_id_resumes_from_the_next_chunk_at_first_middle_and_last() {
    let root = fixture_root();
    let bytes = ten_chunks(root.path());
    let server = TestServer::start(root.path(), &[]);
    for last in [0u64, 4, 8] {
        let res = server.get_with("/events?file=ten.bin", &[("Last-Event-ID", &last.to_string())]);
        assert_eq!(res.status, 200);
        let events = res.events();
        assert_eq!(events[0].event, "meta", "a resumed /events stream still starts with meta");
        assert_eq!(chunk_ids(&res), (last + 1..10).collect::<Vec<_>>());
        let tail: Vec<u8> = events.iter().filter(|e| e.event == "chunk").flat_map(|e| payload(e).1).collect();
        assert_eq!(tail, bytes[(last as usize + 1) * 4096..]);
    }
    // After the last chunk there is nothing left: 204 stops a browser's EventSource.
    let res = server.get_with("/events?file=ten.bin", &[("Last-Event-ID", "9")]);
    assert_eq!(res.status, 204);
    assert!(res.body.is_empty());
}

#[test]
fn from_starts_at_the_first_middle_and_last_chunk() {
    let root = fixture_root();
    ten_chunks(root.path());
    let server = TestServer::start(root.path(), &[]);
    for from in [0u64, 5, 9] {
        let res = server.get(&format!("/events?file=ten.bin&from={from}"));
        assert_eq!(chunk_ids(&res), (from..10).collect::<Vec<_>>());
    }
    assert_eq!(server.get("/events?file=ten.bin&from=10").status, 204);
    server.get("/events?file=ten.bin&from=11").assert_error(416, "range_not_satisfiable");
}

#[test]
fn the_header_wins_over_from_and_over_the_query_parameter() {
    let root = fixture_root();
    ten_chunks(root.path());
    let server = TestServer::start(root.path(), &[]);
    let res = server.get_with("/events?file=ten.bin&from=2&lastEventId=5", &[("Last-Event-ID", "7")]);
    assert_eq!(chunk_ids(&res), vec![8, 9]);
    let res = server.get("/events?file=ten.bin&from=2&lastEventId=5");
    assert_eq!(chunk_ids(&res), vec![6, 7, 8, 9], "polyfills send lastEventId as a query parameter");
}

#[test]
fn need_lists_send_only_those_chunks_and_resume_within_them() {
    let root = fixture_root();
    ten_chunks(root.path());
    let server = TestServer::start(root.path(), &[]);
    let res = server.get("/events?file=ten.bin&need=0-1,4,7-8");
    assert_eq!(chunk_ids(&res), vec![0, 1, 4, 7, 8]);
    assert_eq!(res.events().last().unwrap().event, "end");
    let res = server.get_with("/events?file=ten.bin&need=0-1,4,7-8", &[("Last-Event-ID", "4")]);
    assert_eq!(chunk_ids(&res), vec![7, 8]);
    let res = server.get_with("/events?file=ten.bin&need=0-1,4,7-8", &[("Last-Event-ID", "8")]);
    assert_eq!(res.status, 204);
    server.get("/events?file=ten.bin&need=3,10").assert_error(416, "range_not_satisfiable");
    server.get("/events?file=ten.bin&need=3-").assert_error(400, "bad_parameter");
    server.get(&format!("/events?file=ten.bin&need={}", "1,".repeat(5000) + "2")).assert_error(414, "need_too_long");
}

#[test]
fn range_endpoint_honours_last_event_id_within_its_bounds() {
    let root = fixture_root();
    ten_chunks(root.path());
    let server = TestServer::start(root.path(), &[]);
    let res = server.get_with("/events/chunk/2/6?file=ten.bin", &[("Last-Event-ID", "3")]);
    assert_eq!(chunk_ids(&res), vec![4, 5]);
    let end: serde_json::Value = serde_json::from_str(&res.events().last().unwrap().data).unwrap();
    assert_eq!(end["chunks"], 10, "end carries the file's chunk count");
    assert_eq!(server.get_with("/events/chunk/2/6?file=ten.bin", &[("Last-Event-ID", "5")]).status, 204);
    server
        .get_with("/events/chunk/2/6?file=ten.bin", &[("Last-Event-ID", "6")])
        .assert_error(416, "range_not_satisfiable");
    server
        .get_with("/events/chunk/2/6?file=ten.bin", &[("Last-Event-ID", "0")])
        .assert_error(416, "range_not_satisfiable");
    let res = server.get_with("/events/chunk/2/6?file=ten.bin", &[("Last-Event-ID", "1")]);
    assert_eq!(chunk_ids(&res), vec![2, 3, 4, 5], "Last-Event-ID = start - 1 is the whole range");
}

#[test]
fn a_stream_cut_mid_way_resumes_without_loss_or_repeat() {
    let root = fixture_root();
    let bytes = ten_chunks(root.path());
    let server = TestServer::start(root.path(), &[]);
    // Read three chunk events, then drop the connection.
    let (status, mut reader) = server.open_stream("/events?file=ten.bin", &[]);
    assert_eq!(status, 200);
    let mut parser = chunkcast::protocol::sse::Parser::new();
    let mut got = Vec::new();
    let mut last = None;
    while got.len() < 3 {
        let e = parser.next_event(&mut reader).unwrap().unwrap();
        if e.event == "chunk" {
            let (i, b) = payload(&e);
            assert_eq!(e.id, Some(i.to_string()));
            last = Some(i);
            got.push(b);
        }
    }
    drop(reader);
    let res = server.get_with("/events?file=ten.bin", &[("Last-Event-ID", &last.unwrap().to_string())]);
    for e in res.events().iter().filter(|e| e.event == "chunk") {
        got.push(payload(e).1);
    }
    assert_eq!(got.concat(), bytes);
}
