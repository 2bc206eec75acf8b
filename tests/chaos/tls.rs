//! Chaos over HTTPS: the seeded runs of `chunkcast get` (HTTP/1.1 over TLS)
//! against a server with a certificate of the test's own, through the proxy
//! forwarding blind, as it must when it cannot read or edit what it
//! carries: cuts and stalls at byte counts and TLS record boundaries,
//! refused connections, and one bit flipped inside an encrypted record,
//! which TLS must turn into a failed connection, never a wrong byte.
//!
//! Every run ends in the right file, or in a clear error after which a
//! fault-free resume finishes; a resume finds exactly the chunks of the part
//! file that hold the original's bytes (the blind proxy has no ledger);
//! every stall is noticed. Beside the runs: the framer aims where it says
//! on a real TLS connection's bytes, and a client reading through a flipped
//! bit gets an error, never altered bytes.
//!
//! - `CHAOS_TLS_RUNS=n` (default 100); `CHAOS_SEED` and `CHAOS_JOBS` as in
//!   `main.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chaos_proxy::{BlindPlan, Faults, Flip, Framer, Kind, Proxy, Spot, Stats, Step, BLIND_WHERE};

use crate::common::{fixture_root, TestServer};
use crate::{assert_sound, run_all, seeds, Corpus, Report, BIG_SIZE};

/// How `get` words a run that stopped because a TLS record failed its
/// check (rustls's `DecryptError`): `protocol error: cannot decrypt peer's
/// message` when it came inside an event stream (the reader takes it for the
/// SSE parser's own refusal), `TLS handshake with HOST failed: cannot
/// decrypt peer's message` when it came in the handshake or a response's
/// head (`agent::classify` sorts every rustls error over https as a failed
/// handshake). Either way `get` stops at once instead of reconnecting as
/// after a cut: a clear error still (exit 1, no output file, and the re-run
/// resumes), counted apart; see
/// `get_resumes_after_a_tls_record_that_fails_to_decrypt`.
pub const RECORD_FAILED: &[&str] = &["cannot decrypt peer's message"];

/// A certificate for 127.0.0.1 and localhost, and its key (private, as the
/// server demands).
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cert {
    pub fn new() -> Cert {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = chunkcast::tls::generate(&["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert).unwrap();
        chunkcast::safefile::write_private(&key_path, key.as_bytes()).unwrap();
        Cert { cert: cert_path, key: key_path, _dir: dir }
    }

    /// The server's flags that serve HTTPS with it.
    pub fn flags(&self) -> [&str; 4] {
        ["--tls-cert", self.cert.to_str().unwrap(), "--tls-key", self.key.to_str().unwrap()]
    }

    /// A rustls client trusting only this certificate, speaking HTTP/1.1.
    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in chunkcast::tls::read_chain(&self.cert).unwrap() {
            roots.add(c).unwrap();
        }
        let mut config = rustls::ClientConfig::builder_with_provider(chunkcast::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

#[test]
fn seeded_runs_over_tls_never_yield_a_wrong_file() {
    let started = Instant::now();
    let corpus = Corpus::new(Some(Cert::new()));
    assert_eq!(corpus.small.scheme, "https");
    let seeds = seeds("CHAOS_TLS_RUNS", 100);
    let reports = run_all(&corpus, &seeds, "chaos tls", "tls::");
    let sum = |f: &dyn Fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    let stat = |f: &dyn Fn(&Stats) -> u64| reports.iter().map(|r| f(&r.stats)).sum::<u64>();
    let wrong = sum(&|r| r.wrong_files);
    let (cuts, stalls, stalls_detected) = (stat(&|s| s.cuts), stat(&|s| s.stalls), stat(&|s| s.stalls_detected));
    let (refused, flips, corrupted) = (stat(&|s| s.refused), stat(&|s| s.corruptions), stat(&|s| s.records_corrupted));
    let stall_ms = reports.iter().map(|r| r.stats.stall_detect_max_ms).max().unwrap_or(0);
    let at: Vec<String> =
        (0..BLIND_WHERE.len()).map(|i| format!("{} {}", stat(&|s| s.blind_at[i]), BLIND_WHERE[i])).collect();
    let gave_up = reports.iter().filter(|r| r.gave_up > 0).count();
    let record_failures = sum(&|r| r.record_failures);
    let resumed_runs = reports.iter().filter(|r| r.resumed > 0).count();
    println!(
        "chaos tls: {} runs over HTTPS ({} invocations, {gave_up} stopped with a clear error and then resumed, \
         {record_failures} of those errors at a TLS record that failed to decrypt), {wrong} wrong files; \
         injected: {cuts} drops, {stalls} stalls ({stalls_detected} noticed by the client, slowest after {stall_ms} ms), \
         {refused} refused connections, {flips} bits flipped in encrypted records ({corrupted} of those records reached the client whole); \
         cuts and stalls hit: {}; client: {} reconnects ({} of raw ranges from /files), {} chunks resumed from disk in {resumed_runs} runs; \
         {} TLS records, {} bytes on the wire for {} file bytes; {:.1}s",
        reports.len(),
        sum(&|r| r.invocations),
        at.join(", "),
        sum(&|r| r.reconnects),
        sum(&|r| r.raw_reconnects),
        sum(&|r| r.resumed),
        stat(&|s| s.records),
        stat(&|s| s.wire_bytes),
        sum(&|r| r.file_bytes),
        started.elapsed().as_secs_f64(),
    );
    assert_sound(&reports);
    if seeds.len() >= 30 {
        assert!(cuts > 0 && stalls > 0 && refused > 0, "{cuts} drops, {stalls} stalls, {refused} refused");
        for (i, place) in BLIND_WHERE.iter().enumerate() {
            assert!(stat(&|s| s.blind_at[i]) > 0, "no cut or stall {place}");
        }
        assert!(corrupted > 0, "no corrupted TLS record reached a client");
        assert!(sum(&|r| r.raw_reconnects) > 0, "no raw range from /files met a fault");
        assert!(gave_up > 0, "no run gave up; the clear-error path went untested");
        assert!(resumed_runs > 0, "no run resumed from disk");
        assert!(reports.iter().any(|r| r.file_bytes == BIG_SIZE as u64), "no 64 MiB run");
    }
}

/// A TCP stream that keeps a copy of every byte it reads.
struct Tee {
    socket: TcpStream,
    read: Vec<u8>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.socket.read(buf)?;
        self.read.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.socket.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.socket.flush()
    }
}

/// `GET target` over TLS to `addr` (`Connection: close`): what the client
/// read as plaintext until the end or the first error, that error, and the
/// raw bytes the server side sent.
fn https_get(cert: &Cert, addr: SocketAddr, target: &str) -> (Vec<u8>, Option<std::io::Error>, Vec<u8>) {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(cert.client(), name).unwrap();
    let socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, Tee { socket, read: Vec::new() });
    let mut plain = Vec::new();
    let sent = tls
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
        .and_then(|()| tls.flush());
    let error = match sent {
        Err(e) => Some(e),
        Ok(()) => {
            let mut buf = [0u8; 4096];
            loop {
                match tls.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => plain.extend_from_slice(&buf[..n]),
                    Err(e) => break Some(e),
                }
            }
        }
    };
    (plain, error, tls.sock.read)
}

/// The records of a TLS byte stream: (start, body length, content type).
fn records(wire: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 5 <= wire.len() {
        let len = u16::from_be_bytes([wire[at + 3], wire[at + 4]]) as usize;
        out.push((at, len, wire[at]));
        at += 5 + len;
    }
    assert_eq!(at, wire.len(), "whole records");
    out
}

/// Feeds `wire` to a framer in pieces of `piece` bytes, as reads would
/// deliver them, forwarding what it lets through. Returns what would be
/// forwarded, the fault that hit, and the framer.
fn frame(wire: &[u8], plan: BlindPlan, piece: usize) -> (Vec<u8>, Option<Kind>, Framer) {
    let mut framer = Framer::new(plan);
    let mut out = Vec::new();
    for part in wire.chunks(piece) {
        let mut part = part.to_vec();
        if let Some((at, kind)) = framer.feed(&mut part) {
            out.extend_from_slice(&part[..at]);
            return (out, Some(kind), framer);
        }
        out.extend_from_slice(&part);
    }
    (out, None, framer)
}

#[test]
fn the_framer_aims_at_bytes_and_records_of_a_real_tls_connection() {
    let root = fixture_root();
    let cert = Cert::new();
    let server = TestServer::start(root.path(), &cert.flags());
    let (plain, error, wire) = https_get(&cert, server.addr, "/events?file=story.txt");
    assert!(error.is_none(), "{error:?}");
    assert!(plain.windows(10).any(|w| w == b"event: end"), "the whole stream");
    let recs = records(&wire);
    let encrypted: Vec<&(usize, usize, u8)> = recs.iter().filter(|r| r.2 == 23).collect();
    assert!(recs[0].2 == 22 && encrypted.len() >= 4, "a ServerHello, then encrypted records: {recs:?}");
    let cut = |spot| BlindPlan { fault: Some((Kind::Cut, spot)), flip: None };
    for piece in [1, 7, 4096, 1 << 20] {
        for (k, &(start, len, _)) in recs.iter().enumerate() {
            let k = k as u64;
            let at = |spot| {
                let (out, hit, _) = frame(&wire, cut(spot), piece);
                assert_eq!(hit, Some(Kind::Cut), "{spot:?} piece {piece}");
                assert_eq!(out[..], wire[..out.len()], "forwarded as it came");
                out.len()
            };
            assert_eq!(at(Spot::Between(k)), start + 5 + len, "record {k}");
            for n in 1..5 {
                assert_eq!(at(Spot::InHeader(k, n)), start + n);
            }
            // Inside the body where it has room (a 1-byte record: after it).
            let inside = |n: usize| if len >= 2 { n.clamp(1, len - 1) } else { len };
            for n in [1, 100, len.saturating_sub(1), len + 50] {
                assert_eq!(at(Spot::InRecord(k, n)), start + 5 + inside(n), "record {k} of {len} bytes, n {n}");
            }
        }
        for n in [0, 1, 5, 6, 1000, wire.len() / 2, wire.len() - 1] {
            let (out, hit, _) = frame(&wire, cut(Spot::Bytes(n as u64)), piece);
            assert_eq!((out.len(), hit), (n, Some(Kind::Cut)));
        }
        let (out, hit, _) = frame(&wire, cut(Spot::Between(recs.len() as u64)), piece);
        assert_eq!((out, hit), (wire.clone(), None), "a record past the end: nothing happens");
        // A flip changes one bit of the body of the k-th encrypted record,
        // and nothing else.
        for (k, &&(start, len, _)) in encrypted.iter().enumerate() {
            for (at, mask) in [(0, 1), (len / 2, 0x80), (len - 1, 4), (len + 9, 2)] {
                let flip = Flip { k: k as u64, at, mask };
                let (out, hit, framer) = frame(&wire, BlindPlan { fault: None, flip: Some(flip) }, piece);
                assert_eq!((out.len(), hit), (wire.len(), None));
                let changed: Vec<usize> = (0..out.len()).filter(|&i| out[i] != wire[i]).collect();
                let want = start + 5 + at.min(len - 1);
                assert_eq!(changed, [want], "{flip:?}");
                assert_eq!(out[want] ^ wire[want], mask);
                assert_eq!((framer.flipped, framer.corrupted), (1, 1));
                assert_eq!(framer.records, recs.len() as u64);
            }
        }
    }
}

/// What a TLS client reads through the proxy when one bit of an encrypted
/// record is flipped: an error where that record comes, and before it only
/// the server's own bytes. Record 0 is inside the handshake (TLS 1.3
/// encrypts its second half), the last one inside the response.
#[test]
fn a_flipped_bit_in_a_tls_record_is_an_error_never_altered_bytes() {
    let root = fixture_root();
    let cert = Cert::new();
    let server = TestServer::start(root.path(), &cert.flags());
    let target = "/api/manifest?file=all-bytes.bin";
    let (clean, error, wire) = https_get(&cert, server.addr, target);
    assert!(error.is_none(), "{error:?}");
    let encrypted = records(&wire).iter().filter(|r| r.2 == 23).count() as u64;
    let proxy = Proxy::start(server.addr, 0, Faults { tls: true, ..Faults::default() });
    for k in [0, encrypted - 1] {
        let flip = Flip { k, at: 7, mask: 0x20 };
        proxy.script(&[Step::Blind(BlindPlan { fault: None, flip: Some(flip) })]);
        let before = proxy.stats();
        let (plain, error, _) = https_get(&cert, proxy.addr, target);
        let error = error.unwrap_or_else(|| panic!("{flip:?}: read {} bytes and no error", plain.len()));
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{flip:?}: {error}");
        let why = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
        assert!(matches!(why, Some(rustls::Error::DecryptError)), "{flip:?}: {error:?}");
        assert!(clean.starts_with(&plain), "{flip:?}: what was read is the server's own bytes");
        assert!(plain.len() < clean.len());
        assert!(proxy.wait_idle(std::time::Duration::from_secs(10)));
        let s = proxy.stats() - before;
        assert_eq!((s.corruptions, s.records_corrupted), (1, 1), "{flip:?}");
    }
}

/// A flipped bit is a failed record, which should be a dropped connection:
/// `get` should reconnect and finish, as after a cut. It stops instead with
/// `protocol error: cannot decrypt peer's message` (see [`RECORD_FAILED`]):
/// `Download::request` takes any `InvalidData` read error that is not a
/// `ureq::Error` for the SSE parser's own refusal, and rustls's
/// `DecryptError` arrives as one.
#[test]
fn get_resumes_after_a_tls_record_that_fails_to_decrypt() {
    // On the event stream; and on the raw road, whose 256 KiB body is
    // some 17 records, so the flip is aimed earlier.
    resumes_after_a_failed_record(&["--transport", "events"], 30);
    resumes_after_a_failed_record(&["--transport", "auto"], 8);
}

fn resumes_after_a_failed_record(transport: &[&str], k: u64) {
    let root = fixture_root();
    let mut bytes = vec![0u8; 64 * 4096];
    fastrand::Rng::with_seed(20).fill(&mut bytes);
    std::fs::write(root.path().join("flip.bin"), &bytes).unwrap();
    let cert = Cert::new();
    let server = TestServer::start(root.path(), &cert.flags());
    let proxy = Proxy::start(server.addr, 0, Faults { tls: true, ..Faults::default() });
    // The first connection carries the handshake, the manifest and the
    // stream: a record some way into the stream fails.
    proxy.script(&[Step::Blind(BlindPlan { fault: None, flip: Some(Flip { k, at: 100, mask: 1 }) })]);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("flip.bin");
    let inv = crate::get(
        &format!("https://{}", proxy.addr),
        "flip.bin",
        &out,
        &[&["--cacert", cert.cert.to_str().unwrap(), "--retries", "3"], transport].concat(),
    );
    assert_eq!(proxy.stats().records_corrupted, 1, "the flip reached the client ({transport:?})");
    assert!(inv.ok, "{}", inv.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert!(crate::ClientSummary::parse(&inv.stderr).unwrap().reconnects >= 1, "{}", inv.stderr);
}
