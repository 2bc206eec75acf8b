//! Chaos: the real `chunkcast get` binary through the seeded fault-injecting
//! proxy of `tools/chaos-proxy` (cuts, stalls, corrupted payloads, refused
//! connections), over fixtures and generated edge-case files, plus a server
//! killed and restarted mid-download. `aim.rs` checks where the proxy aims;
//! `tls.rs` runs the same seeds over HTTPS, the proxy forwarding blind.
//!
//! Every run must end in a file whose SHA-256 equals the original's, or in a
//! non-zero exit with a clear message and no output file; a failed run is then
//! resumed without faults and must finish from what it had verified. Beyond
//! "the file is right", the proxy's ledger of what reached the client whole
//! lets each run check the client's own figures: every corrupted chunk that
//! reached it on the stream was refilled, a resumed run found exactly the
//! chunks that had arrived intact, and no intact chunk was ever sent twice.
//!
//! What fails the suite: a wrong file (any output that exists and differs
//! from the original); a non-zero exit without a `chunkcast: error:` line
//! saying it gave up or could not reach the server, or a panic, or a hang; a
//! fault-free resume that does not finish; fewer chunks refilled than
//! corrupted chunks reached the client on the stream; a resume that finds
//! other chunks on disk than those delivered intact before; an intact chunk
//! sent twice; a stall the client did not notice within ~1 s; and, over the
//! whole set, no drop, stall, refusal or delivered corruption at all, no
//! cut or stall at some kind of place, no refill, no clean give-up, no
//! resume from disk, no 64 MiB run.
//!
//! - `cargo test --test chaos -- --nocapture` prints the summary line.
//! - `CHAOS_RUNS=2000` for a longer soak (default 200); `CHAOS_JOBS=n` runs
//!   n clients at once (default 6; they mostly sleep in backoffs and stalls).
//! - `CHAOS_SEED=n` replays one run; failures print their seeds.

mod aim;
#[path = "../common/mod.rs"]
mod common;
mod tls;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chaos_proxy::{Faults, Ledger, Proxy, Stats, Step};
use common::{fixture_names, fixture_root, q, sha256_hex, TestServer};

/// Server flags for every chaos server: a short `retry:` so that backoffs
/// (full jitter over `retry` · 2^n) cost tens of milliseconds, not seconds.
const FAST_RETRY: &[&str] = &["--retry-ms", "50"];
/// Chunk size of the 64 MiB runs: 256 chunks instead of 16,384 keeps a run
/// to seconds in a debug build.
const BIG_CHUNK: &str = "256K";
const BIG_SIZE: usize = 64 << 20;
/// Seeds `n` with `n % BIG_EVERY == BIG_AT` fetch the 64 MiB file (3 of 200).
const BIG_EVERY: u64 = 64;
const BIG_AT: u64 = 17;
/// An invocation still running after this long is a hang.
const HANG: Duration = Duration::from_secs(120);

/// One file the runs may fetch, with what the test needs to know about it.
struct Target {
    name: String,
    size: u64,
    sha256: String,
    chunks: u64,
    /// Payload characters of a whole chunk event (base64 or text).
    payload_chars: usize,
    /// Chunks whose bytes are all zero: a fresh part file already holds
    /// them, so a resume counts them as found on disk.
    zero_chunks: BTreeSet<u64>,
    /// Where each chunk starts.
    offsets: Vec<u64>,
}

impl Target {
    fn load(server: &TestServer, name: &str) -> Target {
        let m = server.get(&format!("/api/manifest?file={}", q(name))).json();
        let bytes = std::fs::read(server.root.join(name)).unwrap();
        let size = m["size"].as_u64().unwrap();
        let chunk = m["chunk_size"].as_u64().unwrap();
        let chunks = m["chunks"].as_u64().unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(m["sha256"], sha256_hex(&bytes), "{name}: manifest sha256");
        let offsets: Vec<u64> = match m["offsets"].as_array() {
            Some(o) => o.iter().map(|v| v.as_u64().unwrap()).collect(),
            None => (0..chunks).map(|i| i * chunk).collect(),
        };
        let zero_chunks = (0..chunks)
            .filter(|&i| {
                let end = offsets.get(i as usize + 1).copied().unwrap_or(size);
                bytes[offsets[i as usize] as usize..end as usize].iter().all(|&b| b == 0)
            })
            .collect();
        let text = m["kind"] == "text";
        let payload_chars = if text { chunk as usize } else { (chunk as usize).div_ceil(3) * 4 };
        Target { name: name.to_owned(), size, sha256: sha256_hex(&bytes), chunks, payload_chars, zero_chunks, offsets }
    }

    /// How many chunks of `part` (a part file of this target) hold the
    /// original's bytes: what a resume must find on disk.
    fn intact_in(&self, part: &Path, original: &Path) -> u64 {
        let (Ok(part), Ok(original)) = (std::fs::read(part), std::fs::read(original)) else { return 0 };
        let end = |i: usize| self.offsets.get(i + 1).map_or(self.size, |&o| o) as usize;
        (0..self.offsets.len())
            .filter(|&i| {
                let range = self.offsets[i] as usize..end(i);
                part.get(range.clone()).is_some_and(|p| p == &original[range])
            })
            .count() as u64
    }
}

/// Generated edge cases, next to a copy of the fixtures (4 KiB chunks).
fn generate(root: &Path) -> Vec<String> {
    let gen = root.join("gen");
    std::fs::create_dir_all(&gen).unwrap();
    let mut rng = fastrand::Rng::with_seed(4);
    let mut random = |n: usize| -> Vec<u8> { (0..n).map(|_| rng.u8(..)).collect() };
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("empty.bin", Vec::new()),
        ("one.bin", vec![0xA7]),
        ("zero-byte.bin", vec![0]),
        ("exact-1.bin", random(4096)),
        ("exact-4.bin", random(4 * 4096)),
        ("exact-32.bin", random(32 * 4096)),
        ("tail-1.bin", random(5 * 4096 + 1)),
        ("random-1m.bin", random((1 << 20) + 5)),
    ];
    // Zero chunks among random ones: a resume finds those "intact" in a
    // fresh (zero-filled) part file, which the resume check must allow for.
    let mut holes = Vec::new();
    for k in 0..9 {
        holes.extend(if k % 3 == 1 { random(4096) } else { vec![0; 4096] });
    }
    holes.extend(random(100));
    files.push(("zero-holes.bin", holes));
    files.push(("boundaries.txt", boundary_text().into_bytes()));
    files.push(("lines.txt", lines_text(&mut fastrand::Rng::with_seed(5), 200 << 10).into_bytes()));
    for (name, bytes) in &files {
        std::fs::write(gen.join(name), bytes).unwrap();
    }
    files.iter().map(|(n, _)| format!("gen/{n}")).collect()
}

/// Text with a 2-, 3- or 4-byte character across (or starting exactly at)
/// every 4 KiB chunk boundary, and characters JSON must escape (quotes,
/// backslashes, control characters) in between, so corruptions and cuts land
/// next to `\uXXXX` escapes and split characters.
fn boundary_text() -> String {
    let wide = ['é', '€', '😀', '名', 'ß', '🎉'];
    let filler = "plain ascii \"quoted\" back\\slash\ttab\u{1}ctl / line\n";
    let mut s = String::new();
    let mut chunk_start = 0;
    for k in 0..14 {
        let c = wide[k % wide.len()];
        let w = c.len_utf8();
        // Straddle the boundary by j bytes (j = 0: start exactly on it).
        let j = k % w;
        let at = chunk_start + 4096 - j;
        while s.len() < at {
            let room = at - s.len();
            s.push_str(&filler[..room.min(filler.len())]);
        }
        s.push(c);
        // The text chunker ends a chunk at the last boundary at or before
        // `start + C`, so the next chunk starts where `c` starts if it
        // straddles, or right at the boundary if not.
        chunk_start = at;
    }
    s.push_str("the end ✓\n");
    s
}

fn lines_text(rng: &mut fastrand::Rng, size: usize) -> String {
    let words = ["chunk", "événement", "数据", "🚀", "resume", "\"id\"", "back\\slash", "naïve", "Ωmega", "tab\t"];
    let mut s = String::new();
    while s.len() < size {
        for _ in 0..rng.usize(1..14) {
            s.push_str(words[rng.usize(..words.len())]);
            s.push(' ');
        }
        s.push('\n');
    }
    s
}

/// The servers and files all runs share.
struct Corpus {
    /// Over HTTPS with this certificate, or over plain HTTP.
    tls: Option<tls::Cert>,
    small: TestServer,
    targets: Vec<Target>,
    /// The 64 MiB file, its server and its directory, made on first use.
    big: OnceLock<(TestServer, Target, tempfile::TempDir)>,
    /// One 64 MiB run at a time: they are the memory- and CPU-heavy ones.
    big_turn: Mutex<()>,
    work: tempfile::TempDir,
    _small_root: tempfile::TempDir,
}

impl Corpus {
    fn new(tls: Option<tls::Cert>) -> Corpus {
        let root = fixture_root();
        let mut names = fixture_names();
        names.extend(generate(root.path()));
        let small = TestServer::start(root.path(), &server_flags(tls.as_ref()));
        let targets = names.iter().map(|n| Target::load(&small, n)).collect();
        Corpus {
            tls,
            small,
            targets,
            big: OnceLock::new(),
            big_turn: Mutex::new(()),
            work: tempfile::tempdir().unwrap(),
            _small_root: root,
        }
    }

    fn big(&self) -> &(TestServer, Target, tempfile::TempDir) {
        self.big.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            std::fs::create_dir_all(&root).unwrap();
            let mut bytes = vec![0u8; BIG_SIZE];
            fastrand::Rng::with_seed(64).fill(&mut bytes);
            std::fs::write(root.join("big.bin"), &bytes).unwrap();
            let index = dir.path().join("index");
            let mut args = vec!["serve", "--chunk-size", BIG_CHUNK, "--index-dir", index.to_str().unwrap()];
            args.extend(server_flags(self.tls.as_ref()));
            let server = TestServer::start_with(&root, &args);
            let target = Target::load(&server, "big.bin");
            (server, target, dir)
        })
    }

    /// The proxy's address as the client's URL (`https://` over TLS).
    fn url(&self, proxy: &Proxy) -> String {
        format!("{}://{}", self.small.scheme, proxy.addr)
    }

    /// What `get` needs beyond its URL: the certificate to trust over TLS.
    fn client_flags(&self) -> Vec<&str> {
        self.tls.as_ref().map_or(Vec::new(), |t| vec!["--cacert", t.cert.to_str().unwrap()])
    }
}

/// Every chaos server's flags: [`FAST_RETRY`], and the certificate and key
/// over TLS.
fn server_flags(tls: Option<&tls::Cert>) -> Vec<&str> {
    let mut flags = FAST_RETRY.to_vec();
    if let Some(t) = tls {
        flags.extend(t.flags());
    }
    flags
}

/// What one seed does: which file, which faults, which client flags.
#[derive(Debug, Clone)]
struct RunPlan {
    seed: u64,
    big: bool,
    target: usize,
    faults: Faults,
    retries: u32,
    parallel: u32,
    verify_sha256: bool,
    /// `get --transport`: over plain HTTP always `events`, whose framing
    /// the proxy aims its faults at; over TLS (faults at bytes and records,
    /// whatever they carry) odd seeds take the default, `auto`, so the
    /// raw ranges of `/files` meet cuts, stalls and failed records too.
    transport: &'static str,
}

impl RunPlan {
    fn of(seed: u64, corpus: &Corpus) -> RunPlan {
        // Not the proxy's own seed: the two streams must not be correlated.
        let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xC4A05);
        let big = seed % BIG_EVERY == BIG_AT;
        let target = rng.usize(..corpus.targets.len());
        let pick = |rng: &mut fastrand::Rng, xs: &[f64]| xs[rng.usize(..xs.len())];
        let mut faults = Faults {
            cut: pick(&mut rng, &[0.0, 0.2, 0.4, 0.6, 0.7]),
            stall: pick(&mut rng, &[0.0, 0.05, 0.1, 0.2]),
            corrupt: pick(&mut rng, &[0.0, 0.3, 0.6, 0.9]),
            down: pick(&mut rng, &[0.0, 0.05, 0.1, 0.2]),
            max_down: rng.u32(1..=3),
            chunks: 0,
            payload_chars: 0,
            // The client's stall timeout is 1 s; a read that has waited 8 s
            // has not noticed.
            stall_max: Duration::from_secs(8),
            // Over TLS: forwarded blind, cuts and stalls at byte counts and
            // records, `corrupt` flipping a bit of an encrypted record.
            tls: corpus.tls.is_some(),
        };
        let mut retries = rng.u32(6..=10);
        // One run in six is fragile: `--retries 0` gives up at the first
        // connection that brings no new chunk, often halfway through, so the
        // run must say so clearly and later resume from what it verified.
        if rng.u32(..6) == 0 {
            retries = 0;
            faults.cut = 0.8;
        }
        if big {
            // A stream of 256 big chunks is one or two connections when left
            // alone: fault most of them, so each 64 MiB run meets several.
            retries = retries.max(6);
            faults.cut = 0.7;
            faults.stall = 0.1;
            faults.corrupt = 0.9;
            faults.down = 0.1;
        }
        let transport = if faults.tls && seed % 2 == 1 { "auto" } else { "events" };
        RunPlan { seed, big, target, faults, retries, parallel: rng.u32(1..=4), verify_sha256: rng.bool(), transport }
    }
}

/// The client's figures from its summary line.
#[derive(Debug, Default, Clone, Copy)]
struct ClientSummary {
    reconnects: u64,
    refilled: u64,
    resumed: u64,
}

impl ClientSummary {
    /// Parses `…; N reconnects, C corrupt chunks detected, M chunks refilled, K resumed from disk`.
    fn parse(stderr: &str) -> Option<ClientSummary> {
        let line = stderr.lines().rev().find(|l| l.contains(" reconnects, "))?;
        let before = |suffix: &str| -> Option<u64> {
            let head = &line[..line.find(suffix)?];
            head.rsplit([' ', ';', ',']).next()?.parse().ok()
        };
        Some(ClientSummary {
            reconnects: before(" reconnects")?,
            refilled: before(" chunks refilled")?,
            resumed: before(" resumed from disk")?,
        })
    }
}

/// One `chunkcast get` process.
struct Invocation {
    ok: bool,
    stderr: String,
    hung: bool,
}

/// Starts `get`. The proxy aims its faults at chunk events and keeps its
/// ledger by them, so a run takes the event stream unless `extra` names a
/// `--transport` (the raw road meets byte-aimed faults over TLS).
fn spawn_get(url: &str, name: &str, out: &Path, extra: &[&str]) -> (Child, PathBuf) {
    let log = PathBuf::from(format!("{}.stderr", out.display()));
    let transport = if extra.contains(&"--transport") { &[][..] } else { &["--transport", "events"][..] };
    let child = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["get", url, name, "-o"])
        .arg(out)
        .args(["--stall-timeout", "1"])
        .args(transport)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("chunkcast binary starts");
    (child, log)
}

fn wait(mut child: Child, log: &Path, limit: Duration) -> Invocation {
    let started = Instant::now();
    let (status, hung) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (Some(status), false);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(log).unwrap_or_default();
    Invocation { ok: status.is_some_and(|s| s.success()), stderr, hung }
}

fn get(url: &str, name: &str, out: &Path, extra: &[&str]) -> Invocation {
    let (child, log) = spawn_get(url, name, out, extra);
    wait(child, &log, HANG)
}

fn file_sha(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| sha256_hex(&b))
}

fn part_path(out: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part", out.display()))
}

/// What one run contributed to the summary.
#[derive(Debug, Default, Clone)]
struct Report {
    invocations: u64,
    gave_up: u64,
    wrong_files: u64,
    stats: Stats,
    file_bytes: u64,
    /// Payload bytes of whole chunk events beyond one copy of each chunk.
    resent: u64,
    /// Of those, bytes of chunks that arrived whole but corrupted.
    corrupt_bytes: u64,
    /// Intact chunks that arrived more than once (must be 0).
    duplicates: u64,
    reconnects: u64,
    /// Of those, reconnects of raw ranges (`--transport auto`).
    raw_reconnects: u64,
    refilled: u64,
    resumed: u64,
    /// Corrupted chunks on `/events` whose refill the client accounted for.
    detected: u64,
    /// Invocations that stopped at a TLS record that failed to decrypt
    /// instead of retrying (see `tls::RECORD_FAILED`).
    record_failures: u64,
    problems: Vec<String>,
}

fn run(corpus: &Corpus, plan: &RunPlan) -> Report {
    let mut report = Report::default();
    let _turn = plan.big.then(|| corpus.big_turn.lock().unwrap());
    let (addr, target) = match plan.big {
        true => (corpus.big().0.addr, &corpus.big().1),
        false => (corpus.small.addr, &corpus.targets[plan.target]),
    };
    let mut faults = plan.faults;
    faults.chunks = target.chunks;
    faults.payload_chars = target.payload_chars;
    let proxy = Proxy::start(addr, plan.seed, faults);
    let url = corpus.url(&proxy);
    // A blind (TLS) proxy sees no chunk: its ledger stays empty, and a
    // resume is checked against the part file instead.
    let blind = faults.tls;
    let original = match plan.big {
        true => corpus.big().0.root.join(&target.name),
        false => corpus.small.root.join(&target.name),
    };
    let dir = corpus.work.path().join(format!("run-{}", plan.seed));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    let retries = plan.retries.to_string();
    let parallel = plan.parallel.to_string();
    let mut flags = vec!["--retries", &retries, "--parallel", &parallel, "--transport", plan.transport];
    if plan.verify_sha256 {
        flags.push("--verify-sha256");
    }
    flags.extend(corpus.client_flags());
    let mut problems = Vec::new();
    let mut intact_before: BTreeSet<u64> = BTreeSet::new();
    // Every chunk that crossed intact, with its length.
    let mut crossed = std::collections::BTreeMap::new();
    let mut duplicates = 0;
    let mut corrupt_bytes = 0;
    for attempt in 0..2 {
        if attempt == 1 {
            // The resume: no more faults, a patient client.
            proxy.set_faults(Faults { stall_max: plan.faults.stall_max, tls: blind, ..Faults::default() });
            flags = vec!["--retries", "10"];
            flags.extend(corpus.client_flags());
        }
        let part_existed = part_path(&out).exists();
        let on_disk = if part_existed && blind { target.intact_in(&part_path(&out), &original) } else { 0 };
        let inv = get(&url, &target.name, &out, &flags);
        // The client has exited; let the proxy finish its books.
        if !proxy.wait_idle(Duration::from_secs(10)) {
            problems.push("proxy connections still open 10 s after the client exited".into());
        }
        let ledger: Ledger = proxy.take_ledger();
        report.invocations += 1;
        duplicates += ledger.intact_repeats;
        duplicates += ledger.intact.iter().filter(|i| crossed.contains_key(*i)).count() as u64;
        crossed.extend(&ledger.lens);
        corrupt_bytes += ledger.corrupt_bytes;
        let last = inv.stderr.lines().last().unwrap_or("").to_owned();
        if inv.hung {
            problems.push(format!("hung for {HANG:?}; stderr: {}", inv.stderr.trim()));
            break;
        }
        if inv.stderr.contains("panicked") {
            problems.push(format!("client panicked: {}", inv.stderr.trim()));
        }
        // Never a wrong file: whatever exists under the output name must be
        // the original, success or not.
        let got = file_sha(&out);
        if got.as_ref().is_some_and(|s| *s != target.sha256) {
            report.wrong_files += 1;
            problems.push(format!("WRONG FILE: {} has sha256 {}", out.display(), got.clone().unwrap()));
        }
        if !inv.ok {
            report.gave_up += 1;
            if got.is_some() {
                problems.push("failed but left an output file".into());
            }
            let clear = last.starts_with("chunkcast: error: ");
            if clear && blind && tls::RECORD_FAILED.iter().any(|m| last.contains(m)) {
                report.record_failures += 1;
            } else if !clear || !(last.contains("gave up") || last.contains("cannot reach")) {
                problems.push(format!("unclear or unexpected failure: {:?}", inv.stderr.trim()));
            }
            if attempt == 1 {
                problems.push(format!("the fault-free resume failed: {last}"));
            }
            intact_before.extend(&ledger.intact);
            continue;
        }
        if got.is_none() {
            problems.push("exit 0 but no output file".into());
        }
        if part_path(&out).exists() {
            problems.push("exit 0 but OUT.part left behind".into());
        }
        let Some(summary) = ClientSummary::parse(&inv.stderr) else {
            problems.push(format!("no summary line in {:?}", inv.stderr));
            break;
        };
        report.reconnects += summary.reconnects;
        if plan.transport == "auto" {
            report.raw_reconnects += summary.reconnects;
        }
        report.refilled += summary.refilled;
        report.resumed += summary.resumed;
        // Every chunk that reached the client whole but corrupted on the
        // stream was rejected and fetched again by range; the client's count
        // of refilled chunks covers them (it may include more: chunks
        // corrupted again during a refill).
        let corrupt = ledger.corrupt_on_stream.len() as u64;
        report.detected += corrupt;
        if summary.refilled < corrupt {
            problems.push(format!(
                "{corrupt} corrupted chunks reached the client on the stream ({:?}) but it reports {} refilled",
                ledger.corrupt_on_stream, summary.refilled
            ));
        }
        // A resume finds exactly what earlier attempts delivered intact (plus
        // all-zero chunks, which a fresh part file already holds); blind,
        // exactly the chunks of the part file that hold the original's bytes.
        let expected = match (part_existed, blind) {
            (false, _) => 0,
            (true, false) => intact_before.union(&target.zero_chunks).count() as u64,
            (true, true) => on_disk,
        };
        if summary.resumed != expected {
            problems.push(format!(
                "resumed {} chunks from disk, expected {expected} (delivered intact before: {:?})",
                summary.resumed, intact_before
            ));
        }
        // The resumed chunks were not sent again.
        if let Some(again) = ledger.intact.iter().find(|i| intact_before.contains(i)) {
            problems.push(format!(
                "chunk {again} was verified on disk ({:?}) but sent again; requests: {:?}",
                intact_before, ledger.requests
            ));
        }
        break;
    }
    report.stats = proxy.stats();
    report.file_bytes = target.size;
    report.duplicates = duplicates;
    report.corrupt_bytes = corrupt_bytes;
    // Payload bytes beyond one copy of each chunk that crossed: corrupted
    // copies and duplicates. (A resume may also find all-zero chunks on disk
    // that never crossed, so this is not simply "delivered - file size".)
    report.resent = report.stats.payload_bytes - crossed.values().sum::<u64>();
    if duplicates > 0 && !problems.iter().any(|p: &String| p.contains("sent again")) {
        problems.push(format!("{duplicates} intact chunks were sent more than once"));
    }
    // Only corrupted chunks may be sent twice: the stream resumes after the
    // last id seen, and refills ask for missing chunks only.
    if !blind && problems.is_empty() && report.gave_up == 0 && report.stats.payload_bytes != target.size + corrupt_bytes
    {
        problems.push(format!(
            "payload delivered {} != file {} + corrupted {corrupt_bytes}",
            report.stats.payload_bytes, target.size
        ));
    }
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
    report.problems =
        problems.into_iter().map(|p| format!("seed {} ({}, {:?}): {p}", plan.seed, target.name, plan)).collect();
    report
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")))
}

#[test]
fn seeded_runs_through_a_faulty_proxy_never_yield_a_wrong_file() {
    let started = Instant::now();
    let corpus = Corpus::new(None);
    let seeds = seeds("CHAOS_RUNS", 200);
    let reports = run_all(&corpus, &seeds, "chaos", "seeded_runs_through");
    let sum = |f: &dyn Fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    let stat = |f: &dyn Fn(&Stats) -> u64| reports.iter().map(|r| f(&r.stats)).sum::<u64>();
    let runs = reports.len() as u64;
    let file_bytes = sum(&|r| r.file_bytes);
    let wrong = sum(&|r| r.wrong_files);
    let (cuts, stalls, stalls_detected) = (stat(&|s| s.cuts), stat(&|s| s.stalls), stat(&|s| s.stalls_detected));
    let (refused, corruptions, corrupt_delivered) =
        (stat(&|s| s.refused), stat(&|s| s.corruptions), stat(&|s| s.corrupt_delivered));
    let stall_ms = reports.iter().map(|r| r.stats.stall_detect_max_ms).max().unwrap_or(0);
    let refilled = sum(&|r| r.refilled);
    let detected = sum(&|r| r.detected);
    let resent = sum(&|r| r.resent);
    let duplicates = sum(&|r| r.duplicates);
    let corrupt_bytes = sum(&|r| r.corrupt_bytes);
    let wire = stat(&|s| s.wire_bytes);
    let at: Vec<String> =
        (0..chaos_proxy::WHERE.len()).map(|i| format!("{} {}", stat(&|s| s.at[i]), chaos_proxy::WHERE[i])).collect();
    let failed_first = reports.iter().filter(|r| r.gave_up > 0).count();
    let resumed_runs = reports.iter().filter(|r| r.resumed > 0).count();
    println!(
        "chaos: {runs} runs ({} invocations, {failed_first} gave up clearly and then resumed), {wrong} wrong files; \
         injected: {cuts} drops, {stalls} stalls ({stalls_detected} noticed by the client, slowest after {stall_ms} ms), \
         {refused} refused connections, {corruptions} corruptions ({corrupt_delivered} reached the client whole); \
         cuts and stalls hit: {}; \
         client: {detected} corrupted stream chunks detected, {refilled} chunks refilled, {} reconnects, {} chunks resumed from disk in {resumed_runs} runs; \
         re-sent {resent} payload bytes beyond one copy of each chunk ({corrupt_bytes} corrupted copies, \
         {duplicates} intact chunks twice) for {file_bytes} file bytes, {wire} bytes on the wire; {:.1}s",
        sum(&|r| r.invocations),
        at.join(", "),
        sum(&|r| r.reconnects),
        sum(&|r| r.resumed),
        started.elapsed().as_secs_f64(),
    );
    assert_sound(&reports);
    if seeds.len() >= 50 {
        // The faults really happened, and were really handled.
        assert!(cuts > 0, "no drops injected");
        for i in 0..chaos_proxy::WHERE.len() {
            assert!(stat(&|s| s.at[i]) > 0, "no cut or stall {}", chaos_proxy::WHERE[i]);
        }
        assert!(stalls > 0, "no stalls injected");
        assert!(refused > 0, "no refused connections");
        assert!(corrupt_delivered > 0, "no corrupted chunk reached a client");
        assert!(detected > 0 && refilled >= detected, "corruption detection: {detected} detected, {refilled} refilled");
        assert!(failed_first > 0, "no run gave up; the clear-error path went untested");
        assert!(resumed_runs > 0, "no run resumed from disk");
        assert!(reports.iter().any(|r| r.file_bytes == BIG_SIZE as u64), "no 64 MiB run");
    }
}

/// What every set of runs must show: no problem in any run, no wrong file,
/// every stall noticed, and noticed after about a second (`--stall-timeout
/// 1`, with slack for a loaded machine), not after some longer internal
/// timeout.
fn assert_sound(reports: &[Report]) {
    let problems: Vec<&String> = reports.iter().flat_map(|r| &r.problems).collect();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("\n")
    );
    let wrong: u64 = reports.iter().map(|r| r.wrong_files).sum();
    assert_eq!(wrong, 0, "a client wrote a wrong file");
    let stalls: u64 = reports.iter().map(|r| r.stats.stalls).sum();
    let noticed: u64 = reports.iter().map(|r| r.stats.stalls_detected).sum();
    assert_eq!(stalls, noticed, "every stall must be noticed by the client's stall timeout");
    let stall_ms = reports.iter().map(|r| r.stats.stall_detect_max_ms).max().unwrap_or(0);
    assert!(stall_ms < 4000, "a stall took {stall_ms} ms to notice with --stall-timeout 1");
}

/// The seeds to run: `CHAOS_SEED` alone, else `0..$runs_var` (`default`).
fn seeds(runs_var: &str, default: u64) -> Vec<u64> {
    match env_u64("CHAOS_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64(runs_var).unwrap_or(default)).collect(),
    }
}

/// Runs `seeds`, `CHAOS_JOBS` at a time (default 6: they mostly sleep in
/// backoffs and stalls), printing each 64 MiB run and each failure with how
/// to replay it (`test` filters the test that failed).
fn run_all(corpus: &Corpus, seeds: &[u64], label: &str, test: &str) -> Vec<Report> {
    let jobs = env_u64("CHAOS_JOBS").unwrap_or(6).max(1) as usize;
    let next = AtomicU64::new(0);
    let reports: Mutex<Vec<Report>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(seeds.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, SeqCst) as usize;
                let Some(&seed) = seeds.get(i) else { return };
                let plan = RunPlan::of(seed, corpus);
                let run_started = Instant::now();
                let report = run(corpus, &plan);
                if plan.big {
                    let s = &report.stats;
                    println!(
                        "{label}: 64 MiB run, seed {seed}: {:.1}s, {} invocations, {} drops, {} stalls, {} refused, {} corruptions",
                        run_started.elapsed().as_secs_f64(),
                        report.invocations,
                        s.cuts,
                        s.stalls,
                        s.refused,
                        s.corruptions
                    );
                }
                for p in &report.problems {
                    eprintln!(
                        "{label}: FAILED {p}\n  replay: CHAOS_SEED={seed} cargo test --test chaos {test} -- --nocapture"
                    );
                }
                reports.lock().unwrap().push(report);
            });
        }
    });
    reports.into_inner().unwrap()
}

/// Waits for `cond`, panicking with `what` after `limit`.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn restart_server(root: &Path) -> TestServer {
    TestServer::start(root, FAST_RETRY)
}

/// The server dies mid-download and comes back at the same address (the
/// proxy's, which now forwards to a new server process on the same root):
/// the running client carries on from the next chunk, and a client killed
/// while the server was down resumes from exactly the chunks it verified.
#[test]
fn a_server_killed_mid_download_is_resumed_from_what_was_verified() {
    if env_u64("CHAOS_SEED").is_some() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut bytes = vec![0u8; 128 * 4096 - 77];
    fastrand::Rng::with_seed(7).fill(&mut bytes);
    std::fs::write(root.path().join("restart.bin"), &bytes).unwrap();
    let size = bytes.len() as u64;
    let sha = sha256_hex(&bytes);
    let work = tempfile::tempdir().unwrap();
    let server = restart_server(root.path());
    let proxy = Proxy::start(server.addr, 1, Faults::default());
    // Paced so the download is still going when the server dies: 128 chunks
    // at 64 chunks per second.
    let paced = ["--rate", "256K", "--retries", "20"];

    // 1. Same client process, server restarted under it.
    let out = work.path().join("one.bin");
    let (child, log) = spawn_get(&proxy.url(), "restart.bin", &out, &paced);
    wait_for("a third of the chunks", Duration::from_secs(30), || proxy.stats().chunk_events >= 40);
    server.stop();
    let down_at = proxy.stats().upstream_down;
    wait_for("the client to find the server down", Duration::from_secs(10), || proxy.stats().upstream_down > down_at);
    let before_restart = proxy.stats().chunk_events;
    assert!(before_restart < 128, "the download finished before the server was stopped");
    let server = restart_server(root.path());
    proxy.set_upstream(server.addr);
    let inv = wait(child, &log, HANG);
    assert!(inv.ok, "the client did not survive a server restart: {}", inv.stderr);
    assert_eq!(file_sha(&out).as_deref(), Some(sha.as_str()));
    let summary = ClientSummary::parse(&inv.stderr).expect("summary line");
    assert!(summary.reconnects >= 1, "{}", inv.stderr);
    assert!(proxy.wait_idle(Duration::from_secs(10)));
    let ledger = proxy.take_ledger();
    assert_eq!(ledger.intact.len(), 128);
    assert_eq!(ledger.intact_repeats, 0, "the restarted server was asked again for chunks already verified");
    assert_eq!(proxy.stats().payload_bytes, size, "every chunk crossed once");
    println!(
        "chaos: restart under a running client: {before_restart} of 128 chunks before the kill, {} reconnects, file verified",
        summary.reconnects
    );

    // 2. Client killed while the server is down, then run again.
    let before = proxy.stats();
    let out = work.path().join("two.bin");
    let (mut child, _log) = spawn_get(&proxy.url(), "restart.bin", &out, &paced);
    wait_for("a third of the chunks", Duration::from_secs(30), || {
        proxy.stats().chunk_events - before.chunk_events >= 40
    });
    server.stop();
    let down_at = proxy.stats().upstream_down;
    // Once the client is knocking on a dead server it has read (and
    // written) everything the old one sent.
    wait_for("the client to find the server down", Duration::from_secs(10), || proxy.stats().upstream_down > down_at);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(proxy.wait_idle(Duration::from_secs(10)));
    let verified = proxy.take_ledger().intact;
    assert!(!verified.is_empty() && verified.len() < 128, "{} chunks before the kill", verified.len());
    assert!(part_path(&out).exists() && !out.exists());
    let server = restart_server(root.path());
    proxy.set_upstream(server.addr);
    let before = proxy.stats();
    let inv = get(&proxy.url(), "restart.bin", &out, &["--retries", "10"]);
    assert!(inv.ok, "the re-run failed: {}", inv.stderr);
    assert_eq!(file_sha(&out).as_deref(), Some(sha.as_str()));
    let summary = ClientSummary::parse(&inv.stderr).expect("summary line");
    assert_eq!(summary.resumed, verified.len() as u64, "resumed from disk: {}", inv.stderr);
    assert!(proxy.wait_idle(Duration::from_secs(10)));
    let fetched = proxy.take_ledger().intact;
    assert!(fetched.is_disjoint(&verified), "chunks verified before the kill were fetched again");
    assert_eq!(fetched.len() + verified.len(), 128);
    let on_disk: u64 = verified.iter().map(|&i| (size - i * 4096).min(4096)).sum();
    assert_eq!((proxy.stats() - before).payload_bytes, size - on_disk, "the re-run fetched only what was missing");
    println!(
        "chaos: client killed while the server was down: {} of 128 chunks resumed from disk, {} fetched after the restart",
        verified.len(),
        fetched.len()
    );
}

/// A resume whose only gap is inside the file (not a tail) fetches that gap
/// alone. Found by the seeded runs (`CHAOS_RUNS=1000`: seeds 570, 650, 882,
/// 889): `chunkcast get` used to ask `/events?from=<gap start>` for a single
/// missing range, so the server re-sent every verified chunk after the gap
/// (8 of 10 chunks here); it now asks with `need=`.
#[test]
fn a_resume_with_one_inner_gap_fetches_only_the_gap() {
    let root = tempfile::tempdir().unwrap();
    let mut bytes = vec![0u8; 10 * 4096];
    fastrand::Rng::with_seed(10).fill(&mut bytes);
    std::fs::write(root.path().join("ten.bin"), &bytes).unwrap();
    let server = TestServer::start(root.path(), FAST_RETRY);
    let proxy = Proxy::start(server.addr, 0, Faults::default());
    // First run: chunk 1 arrives corrupted, the stream is cut after chunk 9
    // (before `end`), and the server then looks down: with `--retries 0`
    // the client gives up holding chunks 0 and 2..=9.
    proxy.script(&[Step::Pass { corrupt: Some(1), cut_after: Some(9) }, Step::Refuse, Step::Refuse, Step::Refuse]);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("ten.bin");
    let inv = get(&proxy.url(), "ten.bin", &out, &["--retries", "0"]);
    assert!(!inv.ok, "the first run was meant to give up: {}", inv.stderr);
    assert!(proxy.wait_idle(Duration::from_secs(10)));
    let first = proxy.take_ledger();
    assert_eq!(first.intact, (0..10).filter(|&i| i != 1).collect());
    // Second run, no faults: 9 chunks on disk, only chunk 1 is missing.
    let before = proxy.stats();
    let inv = get(&proxy.url(), "ten.bin", &out, &[]);
    assert!(inv.ok, "{}", inv.stderr);
    assert_eq!(file_sha(&out), Some(sha256_hex(&bytes)));
    assert_eq!(ClientSummary::parse(&inv.stderr).unwrap().resumed, 9);
    assert!(proxy.wait_idle(Duration::from_secs(10)));
    let second = proxy.take_ledger();
    assert_eq!(
        (proxy.stats() - before).payload_bytes,
        4096,
        "only the missing chunk should cross; requests: {:?}, chunks sent: {:?}",
        second.requests,
        second.intact
    );
}
