//! `chunkcast publish` and `chunkcast get --follow` as people run them,
//! against the real binary serving with `--publish`: a slow producer's text
//! arrives byte for byte at a follower, under the root the follower
//! proved; the producer resumes after the server is killed and restarted,
//! and after being killed itself (`--resume`); wrong credentials, a
//! non-UTF-8 input and a live text fetched without `--follow` each end
//! with one clear line.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::binary::{self, Spawned};

const AUTH: &str = "u:p";
const BASIC: &str = "Basic dTpw"; // base64("u:p")

/// `chunkcast serve --publish --auth u:p` on `bind`, its index in `index`.
fn serve(root: &Path, index: &Path, bind: &str) -> Spawned {
    let args = ["--publish", "--auth", AUTH, "--index-dir", index.to_str().unwrap(), "--chunk-size", "4K"];
    binary::spawn(root, bind, &args, None, "info")
}

fn chunkcast(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chunkcast"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// `publish URL NAME` with `extra` flags, reading its standard input from
/// a pipe the test writes to.
fn publish(server: &Spawned, name: &str, extra: &[&str]) -> Child {
    let url = format!("http://{}", server.addr);
    chunkcast(&["publish", &url, name, "--user", AUTH, "--retries", "20"])
        .args(extra)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The text a slow producer writes: lines with two-, three- and four-byte
/// characters, so writes and parts are cut inside characters.
fn text(lines: usize) -> Vec<u8> {
    (0..lines)
        .map(|i| format!("line {i:05}: héllo wörld — 漢字 😀 {}\n", "x".repeat(i % 37)))
        .collect::<String>()
        .into_bytes()
}

/// Writes `bytes` to `child`'s standard input in small uneven pieces, a
/// pause after each: a producer that writes as it goes.
fn feed(child: &mut Child, bytes: &[u8], pause: Duration) {
    let stdin = child.stdin.as_mut().unwrap();
    let mut at = 0;
    let mut n = 0;
    while at < bytes.len() {
        n += 1;
        let end = (at + 97 + (n * 61) % 211).min(bytes.len());
        stdin.write_all(&bytes[at..end]).unwrap();
        stdin.flush().unwrap();
        at = end;
        std::thread::sleep(pause);
    }
}

/// A GET with the test's credentials: status and body.
fn api(server: &Spawned, path: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut res = agent
        .get(format!("http://{}{path}", server.addr))
        .header("Authorization", BASIC)
        .call()
        .expect("server answers");
    let status = res.status().as_u16();
    let body = res.body_mut().read_to_vec().unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

/// Waits until the server has acknowledged at least `bytes` of `name`;
/// returns the offset.
fn acknowledged(server: &Spawned, name: &str, bytes: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api(server, &format!("/api/publish?file={name}"));
        let offset = body["offset"].as_u64().unwrap_or(0);
        if status == 200 && offset >= bytes {
            return offset;
        }
        assert!(Instant::now() < deadline, "the server never acknowledged {bytes} bytes of {name}: {status} {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts `got` is `want`, saying where they part rather than printing
/// every byte.
fn same(got: &[u8], want: &[u8], what: &str) {
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    assert!(got == want, "{what}: {} bytes, expected {}; they differ from byte {at}", got.len(), want.len());
}

fn finish(child: Child) -> (Output, String) {
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

/// The `root <64 hex>` in a line of output.
fn root_in(text: &str) -> String {
    let at = text.find("root ").unwrap_or_else(|| panic!("no root in {text:?}")) + 5;
    text[at..at + 64].to_owned()
}

/// The server's finished manifest of `name`: no longer live.
fn final_manifest(server: &Spawned, name: &str) -> serde_json::Value {
    let (status, m) = api(server, &format!("/api/manifest?file={name}"));
    assert_eq!(status, 200, "{m}");
    assert!(m.get("live").is_none_or(|l| l == false), "still live: {m}");
    m
}

#[test]
fn a_follower_gets_the_text_byte_for_byte_as_it_is_produced() {
    let root = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = serve(root.path(), index.path(), "127.0.0.1:0");
    let input = text(1200);
    let (first, second) = input.split_at(input.len() / 3);

    let mut producer = publish(&server, "answer.txt", &[]);
    feed(&mut producer, first, Duration::from_millis(5));
    acknowledged(&server, "answer.txt", 1);

    // Without --follow, get says what the text is and how to follow it.
    let url = format!("http://{}", server.addr);
    let early = out.path().join("early.txt");
    let res = chunkcast(&["get", &url, "answer.txt", "-o", early.to_str().unwrap(), "--user", AUTH]).output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("answer.txt is being published (live, "), "{err}");
    assert!(err.contains("chunks so far); add --follow to follow it to its end"), "{err}");
    assert!(!early.exists());

    let followed = out.path().join("answer.txt");
    let follow = || {
        chunkcast(&["get", &url, "answer.txt", "--follow", "-o", followed.to_str().unwrap(), "--user", AUTH])
            .spawn()
            .unwrap()
    };
    // A follower killed midway keeps the chunks it verified in its part
    // file; the next one takes them up and follows the rest.
    let mut killed = follow();
    let (second, third) = second.split_at(second.len() / 3);
    feed(&mut producer, second, Duration::from_millis(10));
    let part = out.path().join("answer.txt.part");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 4096 {
        assert!(Instant::now() < deadline, "the follower wrote nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let follower = follow();
    // The rest, slowly: the follower receives it as it is sealed.
    feed(&mut producer, third, Duration::from_millis(10));
    drop(producer.stdin.take());

    let (res, published) = finish(producer);
    assert!(res.status.success(), "{published}");
    let line = format!("published answer.txt: {} bytes, ", input.len());
    assert!(published.contains(&line), "{published}");
    let (res, got) = finish(follower);
    assert!(res.status.success(), "{got}");
    let resumed: u64 = got.split(" resumed from disk").next().and_then(|s| s.rsplit(' ').next()?.parse().ok()).unwrap();
    assert!(resumed > 0, "{got}");
    same(&std::fs::read(&followed).unwrap(), &input, "the follower's copy");
    same(&std::fs::read(root.path().join("answer.txt")).unwrap(), &input, "the server's file");
    assert!(!out.path().join("answer.txt.part").exists() && !out.path().join("answer.txt.part.json").exists());

    // One root for all three: the server's finished file, what publish was
    // told, what get proved from the digests it checked.
    let m = final_manifest(&server, "answer.txt");
    assert_eq!(m["size"], input.len() as u64);
    assert_eq!(root_in(&got), m["root"].as_str().unwrap(), "{got}");
    assert_eq!(root_in(&published), m["root"].as_str().unwrap(), "{published}");
    assert!(m["chunks"].as_u64().unwrap() > 1, "{m}");

    // A second follower of the finished text: an ordinary download.
    let again = out.path().join("again.txt");
    let res = chunkcast(&["get", &url, "answer.txt", "--follow", "-o", again.to_str().unwrap(), "--user", AUTH])
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    same(&std::fs::read(&again).unwrap(), &input, "the file");
}

#[test]
fn publish_and_follow_survive_a_server_restart_mid_stream() {
    let root = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = serve(root.path(), index.path(), "127.0.0.1:0");
    let addr = server.addr;
    let input = text(1500);
    let (first, second) = input.split_at(input.len() / 2);

    let mut producer = publish(&server, "log.txt", &[]);
    feed(&mut producer, first, Duration::from_millis(5));
    let before = acknowledged(&server, "log.txt", first.len() as u64 / 2);
    let url = format!("http://{addr}");
    let followed = out.path().join("log.txt");
    let follower = chunkcast(&["get", &url, "log.txt", "--follow", "-o", followed.to_str().unwrap()])
        .args(["--user", AUTH, "--retries", "20"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // Killed (no graceful shutdown) while both are connected; the producer
    // keeps writing into its pipe meanwhile.
    drop(server);
    let second = second.to_vec();
    let writer = std::thread::spawn(move || {
        feed(&mut producer, &second, Duration::from_millis(5));
        drop(producer.stdin.take());
        producer
    });
    std::thread::sleep(Duration::from_millis(700));
    let server = serve(root.path(), index.path(), &addr.to_string());
    assert_eq!(server.addr, addr);

    let (res, published) = finish(writer.join().unwrap());
    assert!(res.status.success(), "{published}");
    assert!(before < input.len() as u64, "the restart came mid-stream");
    assert!(published.contains("retrying"), "the producer saw the server go: {published}");
    let (res, got) = finish(follower);
    assert!(res.status.success(), "{got}");
    // Not a byte twice, not one lost, on the server and at the follower.
    same(&std::fs::read(root.path().join("log.txt")).unwrap(), &input, "the server's file");
    same(&std::fs::read(&followed).unwrap(), &input, "the follower's copy");
    let m = final_manifest(&server, "log.txt");
    assert_eq!(root_in(&got), m["root"].as_str().unwrap(), "{got}");
    assert_eq!(root_in(&published), m["root"].as_str().unwrap(), "{published}");
}

#[test]
fn a_killed_producer_resumes_with_the_same_input_and_only_with_it() {
    let root = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    let server = serve(root.path(), index.path(), "127.0.0.1:0");
    let url = format!("http://{}", server.addr);
    let input = text(800);
    let whole = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(whole.path(), &input).unwrap();

    let mut producer = publish(&server, "gen.txt", &[]);
    feed(&mut producer, &input[..input.len() / 2], Duration::from_millis(2));
    let had = acknowledged(&server, "gen.txt", input.len() as u64 / 4);
    producer.kill().unwrap();
    producer.wait().unwrap();

    // Run again without --resume: says what to do.
    let res =
        chunkcast(&["publish", &url, "gen.txt", whole.path().to_str().unwrap(), "--user", AUTH]).output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("gen.txt is already being published ("), "{err}");
    assert!(err.contains("run again with --resume"), "{err}");

    // Another input: refused, nothing appended.
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), text(900).iter().map(|b| if *b == b'x' { b'y' } else { *b }).collect::<Vec<_>>())
        .unwrap();
    let res = chunkcast(&["publish", &url, "gen.txt", other.path().to_str().unwrap(), "--user", AUTH, "--resume"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("--resume: the input differs from the"), "{err}");
    assert!(err.contains("it is not the same input"), "{err}");

    // The same input: continues from the server's offset.
    let res = chunkcast(&["publish", &url, "gen.txt", whole.path().to_str().unwrap(), "--user", AUTH, "--resume"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(err.contains("resuming gen.txt at "), "{err}");
    assert!(err.contains(&format!("published gen.txt: {} bytes", input.len())), "{err}");
    same(&std::fs::read(root.path().join("gen.txt")).unwrap(), &input, "the file");
    assert!(had > 0);

    // Finished: a new run needs --replace, and --replace publishes anew.
    let res =
        chunkcast(&["publish", &url, "gen.txt", other.path().to_str().unwrap(), "--user", AUTH]).output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("already exists on the server as a finished file; pass --replace"), "{err}");
    let res = chunkcast(&["publish", &url, "gen.txt", whole.path().to_str().unwrap(), "--user", AUTH, "--resume"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("gen.txt has ended (complete): there is nothing to resume; pass --replace"), "{err}");
    let res = chunkcast(&["publish", &url, "gen.txt", other.path().to_str().unwrap(), "--user", AUTH, "--replace"])
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    same(&std::fs::read(root.path().join("gen.txt")).unwrap(), &std::fs::read(other.path()).unwrap(), "the file");
}

#[test]
fn wrong_credentials_and_text_that_is_not_utf8_end_with_one_line() {
    let root = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    let server = serve(root.path(), index.path(), "127.0.0.1:0");
    let url = format!("http://{}", server.addr);
    let run = |args: &[&str], stdin: &[u8]| {
        let mut child = chunkcast(&["publish", &url]).args(args).stdin(Stdio::piped()).spawn().unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let (res, err) = finish(child);
        assert_eq!(res.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        err
    };
    let err = run(&["a.txt", "--user", "u:wrong"], b"hello\n");
    assert!(err.contains("the server refused this user name or password"), "{err}");
    let err = run(&["a.txt"], b"hello\n");
    assert!(err.contains("asks for a user name and password"), "{err}");
    assert!(!root.path().join("a.txt").exists());

    let err = run(&["b.txt", "--user", AUTH, "-"], b"caf\xc3\xa9 ok\n\xff\xfe then garbage");
    assert!(err.contains("the input is not UTF-8 text (the first invalid byte is at offset 9)"), "{err}");

    let err = run(&["no/such/folder.txt", "--user", AUTH], b"hello\n");
    assert!(err.contains("does not take no/such/folder.txt"), "{err}");
}

#[test]
fn an_answer_lost_after_the_server_sealed_its_part_is_not_sent_again() {
    use chaos_proxy::{Faults, Proxy};
    let root = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    let server = serve(root.path(), index.path(), "127.0.0.1:0");
    // The producer reaches the server through a proxy that can hold back
    // the server's answers while the requests still arrive.
    let front = Proxy::start(server.addr, 0, Faults::default());
    let input = text(600);
    let (first, second) = input.split_at(input.len() / 2);
    let mut producer = chunkcast(&["publish", &front.url(), "held.txt", "--user", AUTH, "--stall-timeout", "1"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    feed(&mut producer, first, Duration::from_millis(2));
    let before = acknowledged(&server, "held.txt", first.len() as u64);
    // The next part reaches the server and is sealed there; its answer
    // never comes. The producer must learn the server's offset and go on
    // from it, not send that part again.
    front.stall_all();
    feed(&mut producer, second, Duration::from_millis(2));
    drop(producer.stdin.take());
    let (res, err) = finish(producer);
    assert!(res.status.success(), "{err}");
    assert!(err.contains("sent nothing within the stall timeout"), "an answer was held back: {err}");
    same(&std::fs::read(root.path().join("held.txt")).unwrap(), &input, "the server's file");
    assert!(before < input.len() as u64);
}
