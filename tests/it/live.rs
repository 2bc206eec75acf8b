//! Live text (`serve --publish`): a producer appends while viewers follow;
//! every chunk reaches every viewer once, in order, pushed as it is sealed;
//! resumes by `Last-Event-ID`; producers are fenced by offset; a restart
//! reopens an unfinished publication; the finished file keeps the chunks
//! and `root` its viewers saw.

use std::io::{BufRead, Write as _};
use std::time::{Duration, Instant};

use chunkcast::protocol::sse::{Event, Parser};
use chunkcast::protocol::{hex, parse_hex, root_of, sha256, Hash};

use crate::common::producer::{publish, Producer, BASIC};
use crate::common::*;

const AUTH: (&str, &str) = ("Authorization", BASIC);

fn server(root: &std::path::Path, extra: &[&str]) -> TestServer {
    let mut args = vec!["--publish", "--auth", "u:p"];
    args.extend_from_slice(extra);
    TestServer::start(root, &args)
}

/// A viewer's stream, read event by event.
struct Viewer {
    reader: Box<dyn BufRead>,
    parser: Parser,
}

impl Viewer {
    fn open(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Viewer {
        let mut all = vec![AUTH];
        all.extend_from_slice(headers);
        let (status, reader) = server.open_stream(path, &all);
        assert_eq!(status, 200, "{path}");
        Viewer { reader: Box::new(reader), parser: Parser::new() }
    }

    fn next(&mut self) -> Option<Event> {
        self.parser.next_event(&mut self.reader).unwrap()
    }

    /// The next event that is not `meta`.
    fn next_data(&mut self) -> Event {
        loop {
            let e = self.next().expect("the stream went on");
            if e.event != "meta" {
                return e;
            }
        }
    }
}

/// A chunk event's id and text, checked against the digest it carries.
fn chunk(e: &Event) -> (u64, String, Hash) {
    assert_eq!(e.event, "chunk", "{}", e.data);
    let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    let text = v["text"].as_str().expect("live chunks are text").to_owned();
    let hash = parse_hex(v["sha256"].as_str().unwrap()).unwrap();
    assert_eq!(sha256(text.as_bytes()), hash, "chunk {} matches its digest", v["i"]);
    assert_eq!(e.id.as_deref(), Some(v["i"].to_string().as_str()));
    (v["i"].as_u64().unwrap(), text, hash)
}

#[test]
fn a_viewer_is_sent_each_piece_while_the_producer_is_still_writing() {
    let root = tempfile::tempdir().unwrap();
    let s = server(root.path(), &[]);
    let mut producer = Producer::start(s.addr, "file=answer.txt");
    producer.send("Once ".as_bytes());
    // The first piece is sealed within --seal-ms: the name exists by then.
    let started = Instant::now();
    while s.get_with("/api/manifest?file=answer.txt", &[AUTH]).status != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "the publication never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    let manifest = s.get_with("/api/manifest?file=answer.txt", &[AUTH]).json();
    assert_eq!((manifest["live"].as_bool(), manifest["state"].as_str()), (Some(true), Some("live")));
    let mut viewer = Viewer::open(&s, "/events?file=answer.txt", &[]);
    let mut text = String::new();
    let mut hashes = Vec::new();
    // Words every 20 ms, as a model streams tokens: each reaches the viewer
    // while the body is still open, in a chunk of its own or a few together.
    let words: Vec<String> = (0..40).map(|i| format!("wörd{i} ")).collect();
    let mut seen_while_open = 0;
    for word in &words {
        producer.send(word.as_bytes());
        std::thread::sleep(Duration::from_millis(20));
    }
    let whole: String = std::iter::once("Once ".to_owned()).chain(words.iter().cloned()).collect();
    while text.len() < whole.len() {
        let (i, piece, hash) = chunk(&viewer.next_data());
        assert_eq!(i, hashes.len() as u64, "ids in order, none twice");
        text.push_str(&piece);
        hashes.push(hash);
        seen_while_open += 1;
    }
    assert_eq!(text, whole);
    // Sealed on the clock, not only at the end: 40 writes over ~0.8 s at
    // --seal-ms 50 give many chunks, each shorter than a chunk size.
    assert!(seen_while_open >= 5, "only {seen_while_open} chunks were sealed while the body was open");
    let (status, ack) = producer.end();
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["offset"].as_u64(), Some(whole.len() as u64));
    assert_eq!(ack["state"], "live", "a part without end=1 leaves it open");
    assert_eq!(ack["root"].as_str().unwrap(), hex(&root_of(&hashes)));
    // The next part ends it; the viewer gets the last chunk and the end.
    let (status, ack) = publish(s.addr, &format!("file=answer.txt&offset={}&end=1", whole.len()), b"The end.");
    assert_eq!((status, ack["state"].as_str()), (200, Some("complete")), "{ack}");
    let (_, last, hash) = chunk(&viewer.next_data());
    assert_eq!(last, "The end.");
    hashes.push(hash);
    let end = viewer.next_data();
    assert_eq!(end.event, "end");
    let end: serde_json::Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(end["reason"], "complete");
    assert_eq!(end["root"].as_str().unwrap(), hex(&root_of(&hashes)));
    assert!(viewer.next().is_none(), "the stream ends after `end`");
    // The finished file: an ordinary manifest with the chunks the viewer saw.
    let finished = s.get_with("/api/manifest?file=answer.txt", &[AUTH]).json();
    assert!(finished.get("live").is_none(), "{finished}");
    assert_eq!(finished["state"], "complete", "how it ended stays in the manifest");
    assert_eq!(finished["root"], end["root"]);
    assert_eq!(finished["chunks"].as_u64(), Some(hashes.len() as u64));
    assert_eq!(std::fs::read_to_string(root.path().join("answer.txt")).unwrap(), format!("{whole}The end."));
}

#[test]
fn a_viewer_resumes_by_last_event_id_and_a_finished_file_answers_the_live_version() {
    let root = tempfile::tempdir().unwrap();
    let s = server(root.path(), &[]);
    let (_, ack) = publish(s.addr, "file=log.txt", "line one\n".as_bytes());
    let version = s.get_with("/api/manifest?file=log.txt", &[AUTH]).json()["version"].as_str().unwrap().to_owned();
    let mut offset = ack["offset"].as_u64().unwrap();
    for line in ["line two\n", "line three\n"] {
        let (status, ack) = publish(s.addr, &format!("file=log.txt&offset={offset}"), line.as_bytes());
        assert_eq!(status, 200, "{ack}");
        offset = ack["offset"].as_u64().unwrap();
    }
    // Three parts, three chunks. A viewer that saw chunk 0 resumes after it.
    let path = format!("/events?file=log.txt&v={version}");
    let mut viewer = Viewer::open(&s, &path, &[("Last-Event-ID", "0")]);
    let (i, text, _) = chunk(&viewer.next_data());
    assert_eq!((i, text.as_str()), (1, "line two\n"));
    let (i, _, _) = chunk(&viewer.next_data());
    assert_eq!(i, 2);
    // Caught up: it waits for the next chunk rather than ending.
    let (status, _) = publish(s.addr, &format!("file=log.txt&offset={offset}&end=1"), b"");
    assert_eq!(status, 200);
    assert_eq!(viewer.next_data().event, "end");
    // A start past the sealed chunks was never seen by anyone: 416.
    s.get_with("/events?file=log.txt", &[AUTH, ("Last-Event-ID", "9")]).assert_error(416, "range_not_satisfiable");
    // After the end the publication's id still opens the finished file.
    let resumed = s.get_with(&path, &[AUTH, ("Last-Event-ID", "1")]);
    assert_eq!(resumed.status, 200);
    let texts: Vec<String> = resumed.events().iter().filter(|e| e.event == "chunk").map(|e| chunk(e).1).collect();
    assert_eq!(texts, ["line three\n"]);
    let end = resumed.events().into_iter().find(|e| e.event == "end").unwrap();
    assert!(end.data.contains(r#""reason":"complete""#), "a late viewer still learns how it ended: {}", end.data);
    let range = s.get_with(&format!("/events/chunk/0/2?file=log.txt&v={version}"), &[AUTH]);
    assert_eq!(range.events().iter().filter(|e| e.event == "chunk").count(), 2);
}

#[test]
fn producers_are_fenced_by_the_acknowledged_offset() {
    let root = tempfile::tempdir().unwrap();
    let s = server(root.path(), &[]);
    std::fs::write(root.path().join("done.txt"), "finished").unwrap();
    let (status, body) = publish(s.addr, "file=done.txt", b"x");
    assert_eq!((status, body["code"].as_str()), (409, Some("exists")), "{body}");
    let (status, body) = publish(s.addr, "file=done.txt&replace=1", b"new");
    assert_eq!((status, body["offset"].as_u64()), (200, Some(3)), "{body}");
    assert_eq!(std::fs::read_to_string(root.path().join("done.txt")).unwrap(), "new");

    // Without the offset, or with a wrong one: 409 with the server's offset.
    for query in ["file=done.txt", "file=done.txt&offset=2", "file=done.txt&offset=4"] {
        let (status, body) = publish(s.addr, query, b"again");
        assert_eq!((status, body["code"].as_str(), body["offset"].as_u64()), (409, Some("offset_mismatch"), Some(3)));
    }
    // While one producer's body is open, another is turned away.
    let mut first = Producer::start(s.addr, "file=done.txt&offset=3");
    first.send(b" and more");
    std::thread::sleep(Duration::from_millis(200));
    let (status, body) = publish(s.addr, "file=done.txt&offset=3", b"intruder");
    assert_eq!((status, body["code"].as_str()), (409, Some("producer_active")), "{body}");
    let (status, body) = first.end();
    assert_eq!((status, body["offset"].as_u64()), (200, Some(12)));
    assert_eq!(std::fs::read_to_string(root.path().join("done.txt")).unwrap(), "new and more");
}

#[test]
fn bad_input_gets_a_clear_answer_and_keeps_what_was_good() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join(".secret")).unwrap();
    let s = server(root.path(), &["--max-publish", "20"]);
    // No credentials.
    let (status, _) = s.raw(
        b"POST /api/publish?file=a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
    );
    assert_eq!(status, 401);
    for name in [".hidden.txt", ".secret/a.txt", "../out.txt", "missing/a.txt", "/etc/passwd"] {
        let (status, body) = publish(s.addr, &format!("file={}", q(name)), b"x");
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{name}: {body}");
    }
    assert!(!root.path().join("../out.txt").exists());
    let (status, body) = publish(s.addr, "file=a.txt&offset=x", b"x");
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_parameter")));
    // Invalid UTF-8: the valid bytes before it are kept, the rest refused.
    let (status, body) = publish(s.addr, "file=a.txt", b"caf\xc3\xa9 \xff\xfe rest");
    assert_eq!((status, body["code"].as_str(), body["offset"].as_u64()), (400, Some("not_text"), Some(6)), "{body}");
    assert_eq!(std::fs::read(root.path().join("a.txt")).unwrap(), "café ".as_bytes());
    let state = s.get_with("/api/publish?file=a.txt", &[AUTH]).json();
    assert_eq!((state["state"].as_str(), state["offset"].as_u64()), (Some("abandoned"), Some(6)), "{state}");
    // Past --max-publish: the bytes up to it are kept and it ends abandoned.
    let (_, body) = publish(s.addr, "file=b.txt", b"caf\xc3\xa9 ");
    assert_eq!(body["offset"].as_u64(), Some(6));
    let (status, body) = publish(s.addr, "file=b.txt&offset=6", b"0123456789abcdefghij");
    assert_eq!((status, body["code"].as_str(), body["offset"].as_u64()), (413, Some("too_large"), Some(20)), "{body}");
    let state = s.get_with("/api/publish?file=b.txt", &[AUTH]).json();
    assert_eq!((state["state"].as_str(), state["offset"].as_u64()), (Some("abandoned"), Some(20)), "{state}");
    let m = s.get_with("/api/manifest?file=b.txt", &[AUTH]).json();
    assert_eq!((m["size"].as_u64(), m.get("live"), m["state"].as_str()), (Some(20), None, Some("abandoned")));
    // A download of it later still says it was abandoned.
    let out = tempfile::tempdir().unwrap();
    let get = std::process::Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", &s.url(""), "b.txt", "-u", "u:p", "-o"])
        .arg(out.path().join("b.txt"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&get.stderr);
    assert!(get.status.success() && said.contains("abandoned"), "{said}");
    s.get_with("/api/publish?file=nothing.txt", &[AUTH]).assert_error(404, "not_found");
    // Another method: 405 naming the four the endpoint answers.
    let delete = format!("DELETE /api/publish?file=a.txt HTTP/1.1\r\nHost: localhost\r\nAuthorization: {BASIC}\r\nConnection: close\r\n\r\n");
    let (status, head, _) = s.raw_full(&delete);
    assert!(status == 405 && head.contains("\r\nallow: get, head, post, put\r\n"), "{head}");
    // Without --publish the endpoint does not exist, whatever the method.
    let plain = TestServer::start(root.path(), &["--auth", "u:p"]);
    let (status, _) = publish(plain.addr, "file=c.txt", b"x");
    assert_eq!(status, 404);
    assert_eq!(plain.raw_full(&delete).0, 404);
    assert!(!root.path().join("c.txt").exists());
}

#[test]
fn publish_needs_auth_and_an_index_directory() {
    use chunkcast::cli::{Cli, ServeArgs};
    use clap::Parser as _;
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let no_auth = Cli::try_parse_from(["chunkcast", "serve", "--root", r, "--publish"]).unwrap_err().to_string();
    assert!(no_auth.contains("--auth"), "--publish without --auth is refused: {no_auth}");
    let args = ServeArgs::parse_from(["serve", "--root", r, "--publish", "--auth", "u:p", "--no-index-dir"]);
    let err = chunkcast::Config::try_from(args).unwrap_err().to_string();
    assert!(err.contains("index directory"), "{err}");
}

#[test]
fn a_broken_producer_is_interrupted_then_abandoned_and_viewers_are_told() {
    let root = tempfile::tempdir().unwrap();
    let s = server(root.path(), &["--publish-timeout", "1s"]);
    let mut producer = Producer::start(s.addr, "file=gone.txt");
    producer.send(b"half a thought");
    std::thread::sleep(Duration::from_millis(300));
    let mut viewer = Viewer::open(&s, "/events?file=gone.txt", &[]);
    assert_eq!(chunk(&viewer.next_data()).1, "half a thought");
    producer.cut();
    let state = viewer.next_data();
    assert_eq!((state.event.as_str(), state.data.as_str()), ("state", r#"{"state":"interrupted"}"#));
    // (It carries no `id:` line: the parser's id is still chunk 0's.)
    assert_eq!(state.id.as_deref(), Some("0"));
    let end = viewer.next_data();
    assert_eq!(end.event, "end");
    let end: serde_json::Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!((end["reason"].as_str(), end["chunks"].as_u64()), (Some("abandoned"), Some(1)));
}

#[test]
fn a_restart_reopens_an_unfinished_publication_and_keeps_a_finished_ones_chunks() {
    let root = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    let idx = index.path().to_str().unwrap();
    let args = ["--publish", "--auth", "u:p", "--index-dir", idx, "--chunk-size", "4K"];
    let mut first = binary::spawn(root.path(), "127.0.0.1:0", &args, None, "warn");
    let (_, ack) = publish(first.addr, "file=story.txt", b"It was a dark ");
    assert_eq!(ack["offset"].as_u64(), Some(14));
    let (_, ack) = publish(first.addr, "file=story.txt&offset=14", b"and stormy night");
    let done = publish(first.addr, "file=done.txt&end=1", b"first part, ").1["offset"].as_u64().unwrap();
    assert_eq!(done, 12);
    let offset = ack["offset"].as_u64().unwrap();
    // Bytes written past the last sealed chunk (a crash mid-seal) were never
    // acknowledged: the restart cuts them off.
    std::fs::OpenOptions::new()
        .append(true)
        .open(root.path().join("story.txt"))
        .unwrap()
        .write_all(b"GARBAGE")
        .unwrap();
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = binary::spawn(root.path(), "127.0.0.1:0", &args, None, "warn");
    let get = |path: &str| {
        let (status, body) = second.request_with(path, &[AUTH]);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let state = get("/api/publish?file=story.txt");
    assert_eq!((state["state"].as_str(), state["offset"].as_u64()), (Some("interrupted"), Some(offset)), "{state}");
    assert_eq!(std::fs::read(root.path().join("story.txt")).unwrap().len() as u64, offset);
    let (status, ack) = publish(second.addr, &format!("file=story.txt&offset={offset}&end=1"), b".");
    assert_eq!((status, ack["state"].as_str()), (200, Some("complete")), "{ack}");
    assert_eq!(std::fs::read_to_string(root.path().join("story.txt")).unwrap(), "It was a dark and stormy night.");
    // Three parts, three chunks, although 31 bytes are one chunk of 4 KiB
    // to an indexing pass: the layout is the index, across restarts too.
    let m = get("/api/manifest?file=story.txt");
    assert_eq!((m["chunks"].as_u64(), m["offsets"].clone()), (Some(3), serde_json::json!([0, 14, 30])));
    let finished = get("/api/manifest?file=done.txt");
    assert_eq!(finished["size"].as_u64(), Some(12));
}

#[test]
fn a_viewer_that_stops_reading_slows_neither_the_producer_nor_the_others() {
    let root = tempfile::tempdir().unwrap();
    let s = server(root.path(), &[]);
    let (status, _) = publish(s.addr, "file=flood.txt", b"start ");
    assert_eq!(status, 200);
    // A viewer that asks and then never reads: its socket buffers fill.
    let mut stuck = std::net::TcpStream::connect(s.addr).unwrap();
    write!(stuck, "GET /events?file=flood.txt HTTP/1.1\r\nHost: localhost\r\nAuthorization: {BASIC}\r\n\r\n").unwrap();
    let mut reader = Viewer::open(&s, "/events?file=flood.txt", &[]);
    // Far more than any socket buffer holds, in 4 KiB chunks.
    let line = "all work and no play makes a dull stream\n".repeat(100);
    let total = 16 << 20;
    let mut producer = Producer::start(s.addr, "file=flood.txt&offset=6&end=1");
    let mut sent = 0;
    while sent < total {
        producer.send(line.as_bytes());
        sent += line.len();
    }
    let (status, ack) = producer.end();
    assert_eq!((status, ack["offset"].as_u64()), (200, Some(6 + sent as u64)), "the producer finished");
    let mut received = 0;
    loop {
        let e = reader.next_data();
        if e.event == "end" {
            break;
        }
        received += chunk(&e).1.len();
    }
    assert_eq!(received, 6 + sent, "the reading viewer got everything while the other read nothing");
    drop(stuck);
}
