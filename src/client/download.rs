//! One download: the manifest, then streams and refills until every chunk
//! is verified, with retries (see the steps in [`super`]); a file that
//! changes on the server meanwhile is followed to its new version, keeping
//! the verified chunks it repeats ([`super::delta`]).

use std::io::BufReader;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use super::agent;
use super::config::{GetConfig, Transport};
use super::delta;
use super::error::ClientError;
use super::manifest::Manifest;
use super::output::Output;
use super::part::{self, PartFile, Resumed};
use super::raw::{self, Raw};
use super::remote::{backoff_delay, error_message, lock, refusal, retrying, wire, Remote};
use super::report::{Reporter, Retry, Start, Summary};
use super::sink::{self, Outcome, Sink, Store};
use crate::logsafe::Esc;
use crate::protocol::limits::MAX_MANIFEST_BYTES;
use crate::protocol::params::format_need;
use crate::protocol::sse::{Parser, RawEvent};
use crate::protocol::{hex, root_of, End, ErrorBody, Kind, Meta};

/// How many times one run follows the file to a new version (keeping the
/// chunks each repeats) before it gives up with `Changed`: a file rewritten
/// faster than it downloads would otherwise keep `get` busy forever. The
/// part file keeps what was verified for the next run.
const MAX_NEW_VERSIONS: u64 = 10;

/// Downloads `config.target` into `config.output`, telling `reporter` how
/// it goes; see the module docs for the steps.
pub fn get(config: &GetConfig, reporter: &dyn Reporter) -> Result<Summary, ClientError> {
    let started = Instant::now();
    let remote = Remote::new(&config.target, &config.connect, config.stall_timeout, config.location)?;
    let raw = Raw::new(config.transport == Transport::Auto && config.rate.is_none());
    let mut dl = Download { remote, config, retry_ms: None, reporter, raw };
    // Nothing listening at the first request is a server not running or a
    // wrong address: said at once (unless `--retries` asks to wait for it).
    // Later drops are retried.
    let mut first = !config.retry_refused;
    let mut manifest = dl
        .with_retries(|dl| match (dl.manifest(), std::mem::take(&mut first)) {
            (Err(e), true) if e.is_refused() => Err(ClientError::NotListening(e.to_string())),
            (r, _) => r,
        })
        .map_err(|e| part_left(&config.output, e))?;
    // A binary file's bytes would garble a terminal (curl refuses too).
    if matches!(config.output, Output::Stdout)
        && manifest.kind == Kind::Binary
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        return Err(ClientError::BinaryToTerminal(config.target.name.clone()));
    }
    if manifest.live {
        // Still being published: followed to its end (`super::follow`).
        return dl.follow(manifest, started);
    }
    let mut reused = None;
    let (store, have) = match &config.output {
        Output::File { path, exists: true } if !config.force || config.update => {
            if part::is_this_version(path, &manifest)? {
                return already_there(config, path, &manifest, started);
            }
            if !config.update {
                return Err(ClientError::Exists(path.clone()));
            }
            // `--update`: what the part file lacks is looked for in the
            // existing file, at the new version's offsets.
            let (part, mut have) = open_part(&dl, path, &manifest)?;
            reused = Some(delta::reuse(path, &part, &manifest, &mut have)?);
            (Store::Part(part), have)
        }
        Output::File { path, .. } => {
            let (part, have) = open_part(&dl, path, &manifest)?;
            (Store::Part(part), have)
        }
        ordered => {
            let (out, path) = open_ordered(ordered)?;
            let whole = config.verify_sha256.then(<sha2::Sha256 as sha2::Digest>::new);
            (Store::Ordered { out, path, next: 0, whole }, vec![false; manifest.chunks as usize])
        }
    };
    let mut sink = Sink::new(&manifest, store, have, reporter);
    let reused = reused.unwrap_or_default();
    let resumed_chunks = sink.have_count - reused.chunks;
    reporter.start(&Start { name: &config.target.name, size: manifest.size, have: sink.bytes_verified(), live: false });
    let (mut new_versions, mut kept_chunks) = (0, 0);
    loop {
        let e = match dl.fill(&manifest, &mut sink) {
            Ok(()) => break,
            Err(ClientError::Changed(_)) if new_versions < MAX_NEW_VERSIONS => {
                match dl.next_version(&manifest, &mut sink) {
                    Ok((next, kept)) => {
                        (manifest, new_versions, kept_chunks) = (next, new_versions + 1, kept_chunks + kept);
                        continue;
                    }
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        drop(sink); // closes the part file before it may be removed
        return Err(part_left(&config.output, dl.changed_or_gone(e)));
    }
    let out = match &config.output {
        Output::File { path, .. } | Output::Stream(path) => path.clone(),
        Output::Stdout => PathBuf::from("-"),
    };
    let mut summary = sink.finish(&manifest, out, config.verify_sha256)?;
    if manifest.state == Some(crate::protocol::LiveState::Abandoned) {
        // A live text whose writer never ended it: whole as sealed, but
        // not what its writer meant to write.
        reporter.notice(&format!(
            "warning: the writer of {} abandoned it; it ends with the {} bytes sealed before",
            Esc(&manifest.name),
            manifest.size
        ));
    }
    summary.resumed_chunks = resumed_chunks;
    summary.updated = matches!(config.output, Output::File { exists: true, .. }) && config.update;
    summary.reused_chunks = reused.chunks;
    summary.reused_bytes = reused.bytes;
    summary.new_versions = new_versions;
    summary.kept_chunks = kept_chunks;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The output already is the server's version (an earlier run of the same
/// download, or `--update` with nothing new): nothing is transferred.
fn already_there(
    config: &GetConfig,
    path: &std::path::Path,
    manifest: &Manifest,
    started: Instant,
) -> Result<Summary, ClientError> {
    // A run killed between the rename and this cleanup left it.
    part::forget_state(path);
    let sha256 = if config.verify_sha256 { Some(part::checked_sha256(path, manifest)?) } else { None };
    Ok(Summary {
        path: path.to_owned(),
        bytes: manifest.size,
        chunks: manifest.chunks,
        root: hex(&root_of(&manifest.digests)),
        sha256,
        already_there: true,
        seconds: started.elapsed().as_secs_f64(),
        ..Summary::default()
    })
}

/// Opens `OUT.part`: the chunks found intact in it (of this version, or of
/// an older one that this version repeats) count as verified.
fn open_part(dl: &Download, path: &std::path::Path, manifest: &Manifest) -> Result<(PartFile, Vec<bool>), ClientError> {
    let (part, resumed) = PartFile::open(path, manifest)?;
    let have = match resumed {
        Resumed::Found { have } => have,
        Resumed::Carried { have, old_version } if old_version == manifest.version => have,
        Resumed::Carried { have, old_version } => {
            let kept = have.iter().filter(|&&h| h).count();
            dl.reporter.notice(&format!(
                "{}: the server has a new version ({} -> {}); kept {kept} of its {} chunks from {}, fetching the rest",
                Esc(&dl.config.target.name),
                Esc(&old_version),
                Esc(&manifest.version),
                manifest.chunks,
                part.part_path.display()
            ));
            have
        }
        Resumed::Fresh => vec![false; manifest.chunks as usize],
    };
    Ok((part, have))
}

/// A file gone from the server can never complete: its part file (from
/// this run or an earlier one) is removed, and the error says so.
pub(super) fn part_left(output: &Output, e: ClientError) -> ClientError {
    let (ClientError::NotFound(_) | ClientError::Gone(_), Output::File { path, .. }) = (&e, output) else { return e };
    match part::remove(path) {
        Some(part) => ClientError::PartRemoved { error: Box::new(e), part },
        None => e,
    }
}

/// Opens a device, a FIFO or standard output for writing, in place: no
/// create, no truncate, no rename.
pub(super) fn open_ordered(output: &Output) -> Result<(std::fs::File, PathBuf), ClientError> {
    match output {
        Output::Stdout => {
            use std::os::fd::AsFd as _;
            let path = PathBuf::from("standard output");
            let fd = std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| ClientError::file(path.clone(), e))?;
            Ok((std::fs::File::from(fd), path))
        }
        Output::Stream(path) | Output::File { path, .. } => {
            let file =
                std::fs::OpenOptions::new().write(true).open(path).map_err(|e| ClientError::file(path.clone(), e))?;
            Ok((file, path.clone()))
        }
    }
}

pub(super) struct Download<'a> {
    pub(super) remote: Remote<'a>,
    pub(super) config: &'a GetConfig,
    /// The server's last `retry:`, used as the backoff's base.
    pub(super) retry_ms: Option<u64>,
    pub(super) reporter: &'a dyn Reporter,
    /// Whether the file's raw bytes are still read from `/files` ([`raw`]).
    pub(super) raw: Raw,
}

/// How one streaming request ended.
enum Ended {
    /// `event: end`, or 204: the server has nothing more for this request.
    Complete,
    /// The connection dropped or stalled after these many new chunks.
    Dropped { new_chunks: u64, why: String },
}

impl Download<'_> {
    pub(super) fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        self.remote.url(path, query)
    }

    pub(super) fn name(&self) -> &str {
        &self.config.target.name
    }

    pub(super) fn manifest(&mut self) -> Result<Manifest, ClientError> {
        let url = self.url("/api/manifest", &[("file", self.name())]);
        let mut res = self.remote.get(&url, &[])?;
        let status = res.status().as_u16();
        let body = match res.body_mut().with_config().limit(MAX_MANIFEST_BYTES).read_to_vec() {
            Ok(body) => body,
            Err(ureq::Error::BodyExceedsLimit(_)) => {
                return Err(ClientError::Protocol(format!(
                    "the manifest is larger than {} MiB; no file this protocol serves needs one that big",
                    MAX_MANIFEST_BYTES >> 20
                )))
            }
            Err(e) => return Err(agent::classify(e, &url)),
        };
        match status {
            200 => Ok(Manifest::parse(&body)?),
            401 => Err(ClientError::Unauthorized { given: self.remote.has_credentials() }),
            403 => Err(ClientError::Refused(refusal(&body))),
            404 if self.is_folder() => Err(ClientError::IsFolder(self.name().to_owned())),
            404 => Err(ClientError::NotFound(self.name().to_owned())),
            s if s >= 500 => Err(ClientError::Server(error_message(s, &body))),
            s => Err(ClientError::Protocol(error_message(s, &body))),
        }
    }

    /// Whether the name the manifest did not find is a folder on the server.
    fn is_folder(&self) -> bool {
        let url = self.url("/api/files", &[("dir", self.name())]);
        self.remote.get(&url, &[]).is_ok_and(|r| r.status() == 200)
    }

    /// A stream said the file changed: ask the manifest once more, so a
    /// deleted file is reported as gone rather than changed.
    pub(super) fn changed_or_gone(&mut self, e: ClientError) -> ClientError {
        match e {
            ClientError::Changed(name) | ClientError::NotFound(name) => match self.manifest() {
                Err(ClientError::NotFound(_)) => ClientError::Gone(name),
                _ => ClientError::Changed(name),
            },
            other => other,
        }
    }

    /// The file changed on the server mid-download: fetches its manifest
    /// again and keeps, in `sink`, the verified chunks the new version
    /// repeats at the same index, offset, length and digest; the rest is
    /// fetched as usual. A file gone answers `NotFound` (reported as gone);
    /// one that became a live publication, or an ordered output whose
    /// written chunks the new version does not all repeat, stays `Changed`.
    fn next_version(&mut self, old: &Manifest, sink: &mut Sink) -> Result<(Manifest, u64), ClientError> {
        let changed = || ClientError::Changed(old.name.clone());
        let new = self.with_retries(|dl| dl.manifest())?;
        if new.live {
            return Err(changed());
        }
        let kept = sink.retarget(old, &new)?.ok_or_else(changed)?;
        if new.version != old.version {
            self.reporter.notice(&format!(
                "{}: changed on the server ({} -> {}); kept {kept} verified chunks the new version repeats, of its {}",
                Esc(self.name()),
                Esc(&old.version),
                Esc(&new.version),
                new.chunks
            ));
        }
        self.reporter.start(&Start { name: self.name(), size: new.size, have: sink.bytes_verified(), live: false });
        Ok((new, kept))
    }

    /// Retries transient failures (server unreachable or 5xx) with backoff,
    /// saying each time what failed and when the next attempt comes.
    pub(super) fn with_retries<T>(
        &mut self,
        f: impl FnMut(&mut Self) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let retries = self.config.retries;
        retrying(self, retries, f, |dl, attempt, why| dl.backoff(attempt, why, false))
    }

    /// Reports the retry, then sleeps ([`backoff_delay`]: full jitter).
    pub(super) fn backoff(&self, failures: u32, why: &str, reconnect: bool) {
        let delay = backoff_delay(self.retry_ms, failures);
        let retry = Retry { why, attempt: failures + 1, of: self.config.retries + 1, delay, reconnect };
        self.reporter.retry(&retry);
        std::thread::sleep(delay);
    }

    /// Reads raw ranges, streams and refills until every chunk is verified.
    fn fill(&mut self, m: &Manifest, sink: &mut Sink) -> Result<(), ClientError> {
        let mut fruitless = 0;
        let per_range = m.range_limit();
        while sink.have_count < m.chunks {
            let missing = sink.missing();
            // Few scattered chunks: fetch by range. Otherwise one stream.
            // An ordered output only ever streams from its next chunk.
            let few = missing_chunks(&missing) <= per_range * self.config.parallel as u64;
            // The file's own bytes by range where that road is open (one
            // run at a time, in order), for runs not too scattered.
            let raw = !self.raw.off && missing.len() <= raw::MAX_RUNS;
            let progressed = if raw {
                self.raw_run(m, sink, missing[0].clone())?
            } else if sink.stream_rounds > 0 && few && !sink.ordered() {
                self.refill(m, sink, &missing)?
            } else {
                self.stream(m, sink, &missing)?
            };
            if progressed {
                fruitless = 0;
            } else if raw && self.raw.off {
                // Handed over to the event stream (once per download): a
                // change of road, not a failed round to wait after.
            } else {
                fruitless += 1;
                if fruitless > self.config.retries {
                    return Err(ClientError::GaveUp(fruitless, "no new chunks arrived".into()));
                }
                self.backoff(fruitless, "no new chunks arrived", true);
            }
        }
        Ok(())
    }

    /// Fetches the chunks of `run` (consecutive, all missing) as raw bytes
    /// ([`raw`]), retrying drops from the next chunk still missing as a
    /// stream does; returns whether any new chunk was verified.
    fn raw_run(&mut self, m: &Manifest, sink: &mut Sink, run: Range<u64>) -> Result<bool, ClientError> {
        let before = sink.have_count;
        let mut next = run.start;
        let mut drops = 0;
        while next < run.end && !self.raw.off {
            match self.raw.request(&self.remote, &self.config.target.name, m, sink, next..run.end)? {
                raw::Ended::Complete => next = run.end,
                raw::Ended::Refused => self.raw.off = true,
                raw::Ended::Dropped { read, why } => {
                    sink.reconnects += 1;
                    next += read;
                    drops = if read > 0 { 1 } else { drops + 1 };
                    if drops > self.config.retries {
                        return Err(ClientError::GaveUp(drops, why));
                    }
                    self.backoff(drops, &why, true);
                }
            }
        }
        Ok(sink.have_count > before)
    }

    /// One `/events` request for `missing`, reconnecting with `Last-Event-ID`
    /// after drops, until the server says `end` (or 204). Returns whether any
    /// new chunk was verified.
    fn stream(&mut self, m: &Manifest, sink: &mut Sink, missing: &[Range<u64>]) -> Result<bool, ClientError> {
        sink.stream_rounds += 1;
        let from = missing[0].start.to_string();
        let need = if sink.ordered() { None } else { fitting_need(missing, m.chunks, m.need_limit()) };
        let rate = self.config.rate.map(|r| r.to_string());
        let mut query = vec![("file", self.name()), ("v", m.version.as_str())];
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
                    drops = if new_chunks > 0 { 1 } else { drops + 1 };
                    if drops > self.config.retries {
                        return Err(ClientError::GaveUp(drops, why));
                    }
                    self.backoff(drops.max(1), &why, true);
                }
            }
        }
    }

    /// Refills scattered chunks through the range endpoint, `parallel`
    /// requests in flight, each at most the manifest's `max_range` chunks.
    /// A batch that drops is left for the next round.
    fn refill(&mut self, m: &Manifest, sink: &mut Sink, missing: &[Range<u64>]) -> Result<bool, ClientError> {
        let per = m.range_limit();
        let batches: Vec<Range<u64>> = missing
            .iter()
            .flat_map(|r| (r.start..r.end).step_by(per as usize).map(move |s| s..(s + per).min(r.end)))
            .collect();
        let before = sink.have_count;
        let queue = Mutex::new(batches.into_iter());
        let shared = Mutex::new(&mut *sink);
        let this = &*self;
        let worker = || -> Result<(), ClientError> {
            while let Some(batch) = lock(&queue).next() {
                let path = format!("/events/chunk/{}/{}", batch.start, batch.end);
                let url = this.url(&path, &[("file", this.name()), ("v", &m.version)]);
                if let Ended::Dropped { .. } = this.request(&url, None, m, &shared, false)?.ended {
                    lock(&shared).reconnects += 1;
                }
            }
            Ok(())
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..this.config.parallel).map(|_| scope.spawn(worker)).collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().unwrap_or_else(|_| Err(ClientError::Internal("a refill worker panicked"))))
        })?;
        let sink = shared.into_inner().unwrap_or_else(|p| p.into_inner());
        sink.refilled += sink.have_count - before;
        Ok(sink.have_count > before)
    }

    /// One HTTP request on a stream endpoint, read to its end or its failure.
    /// Chunks are checked without the lock; the sink is locked only to store
    /// one, so refill workers hash in parallel.
    fn request(
        &self,
        url: &str,
        last_id: Option<u64>,
        m: &Manifest,
        sink: &Mutex<&mut Sink>,
        with_meta: bool,
    ) -> Result<Reply, ClientError> {
        let id_header = last_id.map(|id| id.to_string());
        let mut headers = vec![("Accept", "text/event-stream")];
        if let Some(id) = &id_header {
            headers.push(("Last-Event-ID", id));
        }
        let reply = |ended, last_id, retry_ms| Ok(Reply { ended, last_id, retry_ms });
        let dropped = |why: String| Ended::Dropped { new_chunks: 0, why };
        let mut res = match self.remote.get(url, &headers) {
            Ok(res) => res,
            Err(ClientError::Unreachable { why, .. }) => return reply(dropped(why), last_id, None),
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
        let mut parser = Parser::new().with_max_line(max_event_len(m));
        let mut new_chunks = 0;
        let mut id = last_id;
        let mut scratch = Vec::new();
        let ended = loop {
            let event = match next_event(&mut parser, &mut reader, url) {
                Ok(event) => event,
                Err(Stop::Dropped(why)) => break Ended::Dropped { new_chunks, why },
                Err(Stop::Fatal(e)) => return Err(e),
            };
            match event.event {
                "chunk" => {
                    let checked = sink::check(m, event.data, &mut scratch);
                    let mut sink = lock(sink);
                    let outcome = sink.accept(m, checked, &scratch)?;
                    // An ordered output resumes at the next chunk it can
                    // write; a gap or a bad chunk ends this request.
                    if let Some(resume) = sink.ordered_resume() {
                        id = resume;
                        if matches!(outcome, Outcome::Gap | Outcome::Corrupt) {
                            break Ended::Dropped { new_chunks, why: "a chunk failed verification".into() };
                        }
                    } else {
                        id = event.id.and_then(|s| s.parse().ok()).or(id);
                    }
                    new_chunks += u64::from(outcome == Outcome::New);
                }
                "meta" if with_meta && wire::<Meta>("meta", event.data)?.version != m.version => {
                    return Err(ClientError::Changed(m.name.clone()));
                }
                "end" if wire::<End>("end", event.data)?.root != m.root => {
                    return Err(ClientError::Changed(m.name.clone()))
                }
                "end" => break Ended::Complete,
                "error" => {
                    let err = wire::<ErrorBody>("error", event.data).ok();
                    // `corrupt`: the server's copy no longer matches the index it
                    // served; the manifest it builds next differs, as for a change.
                    if err.as_ref().is_some_and(|e| e.code == "changed" || e.code == "corrupt") {
                        return Err(ClientError::Changed(m.name.clone()));
                    }
                    let why = err.map_or_else(|| "server error".to_owned(), |e| Esc(&e.error).to_string());
                    break Ended::Dropped { new_chunks, why };
                }
                _ => {}
            }
        };
        reply(ended, id, parser.retry_ms)
    }
}

/// The longest SSE line a stream of `m` can legally carry, plus slack: a
/// chunk's base64 (4/3 of its bytes) or escaped text (at most 6 bytes per
/// byte, `\u00XX`) and its JSON header, plus 4 MiB. A server that sends
/// more without a newline is broken or hostile; the client's buffer stays
/// bounded instead of growing with it.
pub fn max_event_len(m: &Manifest) -> usize {
    let payload = m.chunk_size as usize;
    let encoded = if m.kind == Kind::Text { payload * 6 } else { payload.div_ceil(3) * 4 };
    encoded + (4 << 20)
}

/// What one request on a stream endpoint brought back.
struct Reply {
    ended: Ended,
    /// The last event id received (or the one the request resumed from).
    last_id: Option<u64>,
    /// The server's `retry:`, the base of the next backoff.
    retry_ms: Option<u64>,
}

/// Why a stream's events stopped before its `end`.
pub(super) enum Stop {
    /// The connection dropped (a transport error, ureq's, or rustls's for a
    /// damaged TLS record): the stream resumes from its last id.
    Dropped(String),
    /// The parser's own refusal (the line cap): a protocol error.
    Fatal(ClientError),
}

/// The next event of a stream from `url`; a stream that ends before its
/// `end` event dropped too.
pub(super) fn next_event<'p>(
    parser: &'p mut Parser,
    reader: &mut impl std::io::BufRead,
    url: &str,
) -> Result<RawEvent<'p>, Stop> {
    match parser.next_raw(reader) {
        Ok(Some(event)) => Ok(event),
        Ok(None) => Err(Stop::Dropped("the stream ended before `end`".into())),
        Err(e) => {
            let transport = e.get_ref().is_some_and(|inner| inner.is::<ureq::Error>() || inner.is::<rustls::Error>());
            Err(if e.kind() == std::io::ErrorKind::InvalidData && !transport {
                Stop::Fatal(ClientError::Protocol(e.to_string()))
            } else {
                Stop::Dropped(agent::describe_read(e, url))
            })
        }
    }
}

/// The `need` parameter for `missing`, or `None` when a plain `from=` says
/// the same (what is missing is one tail of the file). A list too long for
/// one request names as many gaps as fit; the next round asks for the rest.
/// Either way the server never sends a chunk the client already has.
fn fitting_need(missing: &[Range<u64>], chunks: u64, max_len: usize) -> Option<String> {
    if let [only] = missing {
        if only.end == chunks {
            return None;
        }
    }
    let mut need = String::new();
    for r in missing {
        let part = format_need(std::slice::from_ref(r));
        if !need.is_empty() && need.len() + 1 + part.len() > max_len {
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
