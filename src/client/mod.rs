//! `chunkcast get`: downloads a file through the event stream.
//!
//! 1. Fetch the manifest; open (or resume) `OUT.part`.
//! 2. Stream what is missing from `/events` (`from=` for one tail, `need=`
//!    for scattered gaps). Every chunk is checked against the manifest's
//!    digest (never only the one in the event) before it is written.
//! 3. A dropped or stalled stream is reopened with `Last-Event-ID`, after an
//!    exponential backoff with full jitter.
//! 4. Chunks that failed verification are refilled through
//!    `/events/chunk/<start>/<end>`, several requests in flight.
//! 5. Once every chunk is verified, the digests must hash to `root` and the
//!    size must match (`--verify-sha256` also re-reads the whole file); only
//!    then is `OUT.part` renamed to `OUT`.
//!
//! [`manifest`] parses and checks the manifest, [`sink`] verifies and stores
//! chunks, [`state`] keeps the part file resumable, [`agent`] sets up HTTP
//! and TLS and tells retryable failures from fatal ones.

mod agent;
mod manifest;
mod output;
mod sink;
mod state;

use std::borrow::Cow;
use std::io::BufReader;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cli::GetArgs;
use crate::params::{format_need, MAX_NEED_LEN};
use crate::sse::Parser;
pub use manifest::Manifest;
use sink::Sink;
use state::{PartFile, Resumed};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server has no file named {0:?}")]
    NotFound(String),
    #[error("{0} changed on the server during the download; run again to fetch the new version")]
    Changed(String),
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Tls(String),
    #[error("--cacert: {0}")]
    CaCert(String),
    #[error("server error: {0}")]
    Server(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("gave up after {0} attempts without progress: {1}")]
    GaveUp(u32, String),
    #[error("verification failed: {0}")]
    Verify(String),
    #[error("cannot name the output file after {0:?}: {1}; pass -o PATH")]
    OutputName(String, &'static str),
    #[error("local file error: {0}")]
    Io(#[from] std::io::Error),
}

/// What a finished download reports.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    /// Chunks found intact in a part file and not downloaded again.
    pub resumed_chunks: u64,
    pub reconnects: u64,
    pub corrupt_chunks: u64,
    pub refilled_chunks: u64,
    /// Payload bytes received beyond one copy of each chunk.
    pub bytes_resent: u64,
    pub seconds: f64,
}

/// Downloads `args.name` from `args.url`; see the module docs for the steps.
pub fn get(args: &GetArgs) -> Result<Summary, ClientError> {
    let started = Instant::now();
    // Decided before any network work, and never from the server's answer.
    let out = match &args.output {
        Some(path) => path.clone(),
        None => output::default_output(&args.name)?,
    };
    let agent = agent::build(&args.url, args.cacert.as_deref(), Duration::from_secs(args.stall_timeout))?;
    let base = args.url.trim_end_matches('/').to_owned();
    let mut dl = Download { agent, base, args, retry_ms: None };
    let manifest = dl.with_retries(|dl| dl.manifest())?;
    let (part, resumed) = PartFile::open(&out, &manifest)?;
    let have = match resumed {
        Resumed::Found { have } => have,
        Resumed::Discarded { old_version } => {
            if !args.quiet {
                eprintln!(
                    "{}: server has a new version ({} -> {}); starting over",
                    crate::logsafe::Esc(&args.name),
                    crate::logsafe::Esc(&old_version),
                    crate::logsafe::Esc(&manifest.version)
                );
            }
            vec![false; manifest.chunks as usize]
        }
        Resumed::Fresh => vec![false; manifest.chunks as usize],
    };
    let mut sink = Sink::new(&manifest, part, have, args.quiet);
    let resumed_chunks = sink.have_count;
    dl.fill(&manifest, &mut sink)?;
    let mut summary = sink.finish(&manifest, &out, args.verify_sha256)?;
    summary.resumed_chunks = resumed_chunks;
    summary.seconds = started.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!(
            "{}: {} bytes verified (sha256 {}) in {:.2}s, {:.1} MB/s; {} reconnects, {} corrupt chunks detected, {} chunks refilled, {} resumed from disk",
            summary.path.display(), summary.bytes, summary.sha256, summary.seconds,
            summary.bytes as f64 / summary.seconds.max(1e-9) / 1e6, summary.reconnects, summary.corrupt_chunks,
            summary.refilled_chunks, resumed_chunks
        );
    }
    Ok(summary)
}

struct Download<'a> {
    agent: ureq::Agent,
    base: String,
    args: &'a GetArgs,
    /// The server's last `retry:`, used as the backoff's base.
    retry_ms: Option<u64>,
}

/// How one streaming request ended.
enum Ended {
    /// `event: end`, or 204: the server has nothing more for this request.
    Complete,
    /// The connection dropped or stalled after these many new chunks.
    Dropped { new_chunks: u64, why: String },
}

impl Download<'_> {
    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{path}", self.base);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }

    fn manifest(&mut self) -> Result<Manifest, ClientError> {
        let url = self.url("/api/manifest", &[("file", &self.args.name)]);
        let mut res = self.agent.get(&url).call().map_err(|e| agent::classify(e, &url))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        match status {
            200 => Ok(Manifest::parse(&body)?),
            404 => Err(ClientError::NotFound(self.args.name.clone())),
            s if s >= 500 => Err(ClientError::Server(error_message(s, &body))),
            s => Err(ClientError::Protocol(error_message(s, &body))),
        }
    }

    /// Retries transient failures (server unreachable or 5xx) with backoff.
    fn with_retries<T>(&mut self, mut f: impl FnMut(&mut Self) -> Result<T, ClientError>) -> Result<T, ClientError> {
        let mut attempt = 0;
        loop {
            match f(self) {
                Err(e @ (ClientError::Unreachable(_) | ClientError::Server(_))) => {
                    attempt += 1;
                    if attempt > self.args.retries {
                        return Err(ClientError::GaveUp(attempt, e.to_string()));
                    }
                    self.backoff(attempt);
                }
                other => return other,
            }
        }
    }

    /// Full jitter: sleep a uniform random time in [0, min(cap, base·2^n)].
    fn backoff(&self, attempt: u32) {
        let base = self.retry_ms.unwrap_or(250).clamp(50, 5_000);
        let ceiling = base.saturating_mul(1 << attempt.min(10)).min(15_000);
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..=ceiling)));
    }

    /// Streams and refills until every chunk is verified.
    fn fill(&mut self, m: &Manifest, sink: &mut Sink) -> Result<(), ClientError> {
        let mut fruitless = 0;
        while sink.have_count < m.chunks {
            let missing = sink.missing();
            // Few scattered chunks: fetch by range. Otherwise one stream.
            let progressed = if sink.stream_rounds > 0 && missing_chunks(&missing) <= 256 * self.args.parallel as u64 {
                self.refill(m, sink, &missing)?
            } else {
                self.stream(m, sink, &missing)?
            };
            if progressed {
                fruitless = 0;
            } else {
                fruitless += 1;
                if fruitless > self.args.retries {
                    return Err(ClientError::GaveUp(fruitless, "no new chunks arrived".into()));
                }
                self.backoff(fruitless);
            }
        }
        Ok(())
    }

    /// One `/events` request for `missing`, reconnecting with `Last-Event-ID`
    /// after drops, until the server says `end` (or 204). Returns whether any
    /// new chunk was verified.
    fn stream(&mut self, m: &Manifest, sink: &mut Sink, missing: &[Range<u64>]) -> Result<bool, ClientError> {
        sink.stream_rounds += 1;
        let from = missing[0].start.to_string();
        let need = fitting_need(missing, m.chunks);
        let rate = self.args.rate.map(|r| r.to_string());
        let mut query = vec![("file", self.args.name.as_str()), ("v", m.version.as_str())];
        match &need {
            Some(need) => query.push(("need", need)),
            None => query.push(("from", &from)),
        }
        if let Some(rate) = &rate {
            query.push(("rate", rate));
        }
        let url = self.url("/events", &query);
        let before = sink.have_count;
        let shared = Mutex::new(sink);
        let mut last_id: Option<u64> = None;
        let mut drops = 0;
        loop {
            let reply = self.request(&url, last_id, m, &shared, true)?;
            self.retry_ms = reply.retry_ms.or(self.retry_ms);
            last_id = reply.last_id.or(last_id);
            match reply.ended {
                Ended::Complete => return Ok(lock(&shared).have_count > before),
                Ended::Dropped { new_chunks, why } => {
                    lock(&shared).reconnects += 1;
                    drops = if new_chunks > 0 { 0 } else { drops + 1 };
                    if drops > self.args.retries {
                        return Err(ClientError::GaveUp(drops, why));
                    }
                    self.backoff(drops.max(1));
                }
            }
        }
    }

    /// Refills scattered chunks through the range endpoint, `parallel`
    /// requests in flight, each at most 256 chunks (the server's default
    /// `--max-range`). A batch that drops is left for the next round.
    fn refill(&mut self, m: &Manifest, sink: &mut Sink, missing: &[Range<u64>]) -> Result<bool, ClientError> {
        let batches: Vec<Range<u64>> =
            missing.iter().flat_map(|r| (r.start..r.end).step_by(256).map(move |s| s..(s + 256).min(r.end))).collect();
        let before = sink.have_count;
        let queue = Mutex::new(batches.into_iter());
        let shared = Mutex::new(&mut *sink);
        let this = &*self;
        let worker = || -> Result<(), ClientError> {
            while let Some(batch) = lock(&queue).next() {
                let path = format!("/events/chunk/{}/{}", batch.start, batch.end);
                let url = this.url(&path, &[("file", &this.args.name), ("v", &m.version)]);
                if let Ended::Dropped { .. } = this.request(&url, None, m, &shared, false)?.ended {
                    lock(&shared).reconnects += 1;
                }
            }
            Ok(())
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..this.args.parallel.max(1)).map(|_| scope.spawn(worker)).collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().unwrap_or_else(|_| Err(ClientError::Protocol("worker panicked".into()))))
        })?;
        let sink = shared.into_inner().unwrap_or_else(|p| p.into_inner());
        sink.refilled += sink.have_count - before;
        Ok(sink.have_count > before)
    }

    /// One HTTP request on a stream endpoint, read to its end or its failure.
    /// The sink is locked for one chunk at a time, so refill workers share it.
    fn request(
        &self,
        url: &str,
        last_id: Option<u64>,
        m: &Manifest,
        sink: &Mutex<&mut Sink>,
        with_meta: bool,
    ) -> Result<Reply, ClientError> {
        let mut req = self.agent.get(url).header("Accept", "text/event-stream");
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let reply = |ended, last_id, retry_ms| Ok(Reply { ended, last_id, retry_ms });
        let dropped = |why: String| Ended::Dropped { new_chunks: 0, why };
        let mut res = match req.call().map_err(|e| agent::classify(e, url)) {
            Ok(res) => res,
            Err(ClientError::Unreachable(why)) => return reply(dropped(why), last_id, None),
            Err(fatal) => return Err(fatal),
        };
        match res.status().as_u16() {
            200 => {}
            204 => return reply(Ended::Complete, last_id, None),
            412 => return Err(ClientError::Changed(m.name.clone())),
            404 => return Err(ClientError::NotFound(m.name.clone())),
            s @ (503 | 500..) => {
                let body = res.body_mut().read_to_vec().unwrap_or_default();
                return reply(dropped(error_message(s, &body)), last_id, None);
            }
            s => {
                let body = res.body_mut().read_to_vec().unwrap_or_default();
                return Err(ClientError::Protocol(error_message(s, &body)));
            }
        }
        let mut reader = BufReader::with_capacity(256 * 1024, res.body_mut().as_reader());
        let mut parser = Parser::new();
        let mut new_chunks = 0;
        let mut id = last_id;
        let mut scratch = Vec::new();
        let ended = loop {
            let event = match parser.next_raw(&mut reader) {
                Ok(Some(event)) => event,
                Ok(None) => break Ended::Dropped { new_chunks, why: "stream ended before `end`".into() },
                Err(e) => break Ended::Dropped { new_chunks, why: e.to_string() },
            };
            let json = |what: &str| {
                serde_json::from_slice::<serde_json::Value>(event.data)
                    .map_err(|e| ClientError::Protocol(format!("bad {what} event: {e}")))
            };
            match event.event {
                "chunk" => {
                    if lock(sink).chunk(m, event.data, &mut scratch)? {
                        new_chunks += 1;
                    }
                    id = event.id.and_then(|s| s.parse().ok()).or(id);
                }
                "meta" if with_meta && json("meta")?["version"] != m.version.as_str() => {
                    return Err(ClientError::Changed(m.name.clone()));
                }
                "end" if json("end")?["root"] != m.root.as_str() => return Err(ClientError::Changed(m.name.clone())),
                "end" => break Ended::Complete,
                "error" => {
                    let err = json("error").unwrap_or_default();
                    if err["code"] == "changed" {
                        return Err(ClientError::Changed(m.name.clone()));
                    }
                    let why = err["error"].as_str().unwrap_or("server error").to_owned();
                    break Ended::Dropped { new_chunks, why };
                }
                _ => {}
            }
        };
        reply(ended, id, parser.retry_ms)
    }
}

/// What one request on a stream endpoint brought back.
struct Reply {
    ended: Ended,
    /// The last event id received (or the one the request resumed from).
    last_id: Option<u64>,
    /// The server's `retry:`, the base of the next backoff.
    retry_ms: Option<u64>,
}

/// Locks, recovering from a poisoned lock: the data it guards (a bitmap of
/// verified chunks, a queue) stays consistent between statements.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `need` parameter for `missing`, or `None` when a plain `from=` says
/// the same (what is missing is one tail of the file). A list too long for
/// one request names as many gaps as fit; the next round asks for the rest.
/// Either way the server never sends a chunk the client already has.
fn fitting_need(missing: &[Range<u64>], chunks: u64) -> Option<String> {
    if let [only] = missing {
        if only.end == chunks {
            return None;
        }
    }
    let mut need = String::new();
    for r in missing {
        let part = format_need(std::slice::from_ref(r));
        if !need.is_empty() && need.len() + 1 + part.len() > MAX_NEED_LEN {
            break;
        }
        if !need.is_empty() {
            need.push(',');
        }
        need.push_str(&part);
    }
    Some(need)
}

fn missing_chunks(missing: &[Range<u64>]) -> u64 {
    missing.iter().map(|r| r.end - r.start).sum()
}

fn error_message(status: u16, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v["error"].as_str()) {
        Some(msg) => format!("{status}: {msg}"),
        None => format!("HTTP {status}"),
    }
}

/// Percent-encodes a query value (everything but unreserved characters and `/`).
fn encode(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}
