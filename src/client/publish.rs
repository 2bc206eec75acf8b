//! `chunkcast publish`: sends a text to a server's `/api/publish` while it
//! is produced (`docs/PROTOCOL.md`, "Live text"), in parts the server
//! acknowledges, and resumes after a dropped connection or a restart
//! without sending a byte twice or skipping one.
//!
//! A reader thread reads the input into one buffer of bytes not yet
//! acknowledged ([`Intake`]); the publishing loop sends what it holds from
//! the acknowledged offset (`POST ?offset=N`), waits for the server's
//! answer, which comes once the part is sealed and flushed, and drops what
//! the answer's `offset` passed. Nothing is dropped before the server has
//! it on disk, so after any failure the loop asks the server where it is
//! (`GET /api/publish`) and sends the rest from there.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::config::{Input, PublishConfig};
use super::error::ClientError;
use super::manifest::Manifest;
use super::remote::{backoff_delay, error_message, lock, retrying, Remote};
use super::report::{Reporter, Retry, Start};
use crate::logsafe::Esc;
use crate::protocol::limits::MAX_MANIFEST_BYTES;
use crate::protocol::{sha256, Hash, LiveState, Publication};

/// The most one request carries. Each answer waits for its part to be
/// sealed (written and `fdatasync`ed), so a part is also the most input a
/// failed request makes the producer send again; 1 MiB keeps that short
/// and is still many chunks' worth per round trip.
const MAX_PART: usize = 1 << 20;
/// Input read but not yet acknowledged, past which reading stops (and so
/// the producer, once its pipe is full): a server that is down for a while
/// costs bounded memory, and nothing is lost while it restarts.
const MAX_HELD: usize = 8 << 20;
/// How long the first byte of a part waits for more before it is sent: the
/// server's default `--seal-ms`, so a producer writing a few bytes every
/// 20 ms makes a part (and a chunk) about every 50 ms rather than one per
/// write. Bytes that arrived while a request was out are sent at once.
const LINGER: Duration = Duration::from_millis(50);

/// The longest a producer whose input is quiet goes without a request: the
/// server counts a publication `interrupted` 2 s after the last one ended,
/// and an empty part (a heartbeat) keeps it `live` while the input pauses.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// One read of the input.
const READ_SIZE: usize = 64 << 10;

/// Publishes `config.input` as `config.target.name`, telling `reporter`
/// what the server acknowledged. Returns the server's last answer (state
/// `complete`).
pub fn publish(config: &PublishConfig, reporter: &dyn Reporter) -> Result<Publication, ClientError> {
    let remote = Remote::new(&config.target, &config.connect, config.stall_timeout, false)?;
    let (input, input_name) = open_input(&config.input)?;
    let mut p = Producer {
        remote,
        config,
        reporter,
        intake: Arc::new(Intake::default()),
        acked: 0,
        replace: config.replace,
        ours: false,
        dropped: false,
    };
    // Where the publication stands decides where the input starts.
    let existing = p.with_retries(|p| p.status())?;
    let skip = match existing {
        Some(s) if !s.state.ended() && config.resume => {
            reporter.notice(&format!("resuming {} at {} bytes ({} chunks)", Esc(p.name()), s.offset, s.chunks));
            Some(p.with_retries(|p| p.skip_of(s.offset))?)
        }
        Some(s) if !s.state.ended() => {
            return Err(ClientError::AlreadyLive { name: p.name().to_owned(), offset: s.offset, state: s.state })
        }
        Some(s) if config.resume && !config.replace => {
            return Err(ClientError::NothingToResume { name: p.name().to_owned(), state: s.state })
        }
        Some(_) => None,
        None => {
            // Nothing there: whatever appears under this name is this run's.
            p.ours = true;
            if config.resume {
                reporter.notice(&format!("nothing to resume: {} starts a new publication", Esc(p.name())));
            }
            None
        }
    };
    if let Some(skip) = &skip {
        p.acked = skip.offset;
        p.ours = true;
        // The killed run's last request may still be landing there.
        p.dropped = true;
        lock(&p.intake.held).start = skip.offset;
    }
    let intake = Arc::clone(&p.intake);
    std::thread::Builder::new()
        .name("publish-input".into())
        .spawn(move || read_input(input, input_name, skip, &intake))
        .map_err(|_| ClientError::Internal("cannot start the input thread"))?;
    let _stop = StopReader(Arc::clone(&p.intake));
    reporter.start(&Start { name: p.name(), size: p.acked, have: p.acked, live: true });
    p.run()
}

/// The input as a reader, and its name for messages.
fn open_input(input: &Input) -> Result<(Box<dyn Read + Send>, PathBuf), ClientError> {
    match input {
        Input::Stdin => Ok((Box::new(std::io::stdin()), PathBuf::from("standard input"))),
        Input::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| ClientError::file(path.clone(), e))?;
            Ok((Box::new(file), path.clone()))
        }
    }
}

struct Producer<'a> {
    remote: Remote<'a>,
    config: &'a PublishConfig,
    reporter: &'a dyn Reporter,
    intake: Arc<Intake>,
    /// The server's offset: every input byte before it is sealed there.
    acked: u64,
    /// `--replace` not yet acknowledged: sent with the first part until a
    /// part is.
    replace: bool,
    /// The publication under this name is this run's (or the one it
    /// resumed), so one that ended with exactly this run's bytes is ours.
    ours: bool,
    /// A request of this run failed in transit: the server may still be
    /// finishing it (`producer_active`) or may have taken part of it.
    dropped: bool,
}

/// How a part's request failed.
enum Failed {
    /// Worth another try after the server says where it is.
    Retry(ClientError),
    /// `409 offset_mismatch`: the server's offset.
    Mismatch(u64),
    Fatal(ClientError),
}

/// What a refusal's JSON body says (`offset` for `not_text`, `too_large`
/// and `offset_mismatch`).
#[derive(Deserialize)]
struct Refusal {
    code: String,
    #[serde(default)]
    offset: Option<u64>,
}

impl Producer<'_> {
    fn name(&self) -> &str {
        &self.config.target.name
    }

    /// Sends parts until the last one is acknowledged.
    fn run(&mut self) -> Result<Publication, ClientError> {
        let mut failures = 0;
        loop {
            let part = self.intake.next_part()?;
            let sent_from = self.acked;
            let failed = match self.post(&part) {
                Ok(answer) => {
                    failures = 0;
                    self.take(&answer, part.bytes.len())?;
                    if !answer.state.ended() {
                        continue;
                    }
                    if part.end && answer.offset == sent_from + part.bytes.len() as u64 {
                        return Ok(answer);
                    }
                    return Err(self.ended(&answer));
                }
                Err(failed) => failed,
            };
            match failed {
                Failed::Fatal(e) => return Err(e),
                Failed::Mismatch(offset) if self.dropped => self.resync(offset)?,
                Failed::Mismatch(offset) if self.acked == 0 => {
                    // Someone else's publication appeared since the check.
                    return Err(ClientError::AlreadyLive {
                        name: self.name().to_owned(),
                        offset,
                        state: LiveState::Live,
                    });
                }
                Failed::Mismatch(offset) => return Err(self.lost(offset)),
                Failed::Retry(e) => {
                    self.dropped = true;
                    failures += 1;
                    if failures > self.config.retries {
                        return Err(ClientError::GaveUp(failures, e.to_string()));
                    }
                    self.backoff(failures, &e.to_string());
                    let status = self.with_retries(|p| p.status())?;
                    if let Some(done) = self.after_failure(status, &part)? {
                        return Ok(done);
                    }
                }
            }
        }
    }

    /// Takes the server's word after a failed request: drops what it has,
    /// or finds the last part landed (`Some`: done), or that nothing did.
    fn after_failure(&mut self, status: Option<Publication>, part: &Part) -> Result<Option<Publication>, ClientError> {
        match status {
            // Nothing landed yet: the next request starts it (again).
            None if self.acked == 0 => Ok(None),
            None => Err(ClientError::OffsetLost {
                name: self.name().to_owned(),
                server: 0,
                from: self.acked,
                to: self.intake.held_end(),
            }),
            Some(s) if s.state.ended() => {
                let all = self.acked + part.bytes.len() as u64;
                if self.ours && part.end && s.state == LiveState::Complete && s.offset == all {
                    // The last part landed; only its answer was lost.
                    self.take(&s, part.bytes.len())?;
                    Ok(Some(s))
                } else if self.acked == 0 && !self.ours {
                    // The finished file this run replaces: the request
                    // with `replace=1` did not land.
                    Ok(None)
                } else {
                    Err(self.ended(&s))
                }
            }
            Some(s) => {
                // Live: started by this run's request if it was not before.
                self.ours = true;
                self.replace = false;
                self.resync(s.offset)?;
                Ok(None)
            }
        }
    }

    /// Continues from the server's `offset`, which must lie within the
    /// bytes still held (else some would be skipped or sent twice).
    fn resync(&mut self, offset: u64) -> Result<(), ClientError> {
        if offset < self.acked || offset > self.intake.held_end() {
            return Err(self.lost(offset));
        }
        if offset > self.acked {
            self.intake.ack(offset);
            self.reporter.progress(offset, offset - self.acked);
            self.acked = offset;
        }
        Ok(())
    }

    fn lost(&self, server: u64) -> ClientError {
        let name = self.name().to_owned();
        ClientError::OffsetLost { name, server, from: self.acked, to: self.intake.held_end() }
    }

    fn ended(&self, s: &Publication) -> ClientError {
        ClientError::PublicationEnded { name: self.name().to_owned(), state: s.state, offset: s.offset }
    }

    /// An answer to a part of `sent` bytes: what it acknowledged is dropped.
    fn take(&mut self, answer: &Publication, sent: usize) -> Result<(), ClientError> {
        if answer.offset < self.acked || answer.offset > self.acked + sent as u64 {
            return Err(ClientError::Protocol(format!(
                "the server acknowledged offset {} for a part of bytes {} to {}",
                answer.offset,
                self.acked,
                self.acked + sent as u64
            )));
        }
        self.replace = false;
        self.ours = true;
        self.intake.ack(answer.offset);
        self.reporter.progress(answer.offset, answer.offset - self.acked);
        self.acked = answer.offset;
        Ok(())
    }

    /// One `POST /api/publish` of `part` at the acknowledged offset.
    fn post(&self, part: &Part) -> Result<Publication, Failed> {
        let offset = self.acked.to_string();
        let mut query = vec![("file", self.name()), ("offset", offset.as_str())];
        if part.end {
            query.push(("end", "1"));
        }
        if self.replace {
            query.push(("replace", "1"));
        }
        let url = self.remote.url("/api/publish", &query);
        let retry_or_fatal = |e| match e {
            e @ ClientError::Unreachable { .. } => Failed::Retry(e),
            e => Failed::Fatal(e),
        };
        let mut res = self.remote.post(&url, &part.bytes).map_err(retry_or_fatal)?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_vec()
            .map_err(|e| retry_or_fatal(super::agent::classify(e, &url)))?;
        if status == 200 {
            return serde_json::from_slice(&body).map_err(|e| {
                Failed::Fatal(ClientError::Protocol(format!("bad publish answer: {}", Esc(&e.to_string()))))
            });
        }
        let refusal = serde_json::from_slice::<Refusal>(&body).ok();
        let (code, offset) = refusal.map_or((String::new(), None), |r| (r.code, r.offset));
        let name = self.name().to_owned();
        Err(match (status, code.as_str(), offset) {
            (401, ..) => Failed::Fatal(ClientError::Unauthorized { given: self.remote.has_credentials() }),
            (404, ..) => Failed::Fatal(ClientError::NotPublishing { host: self.config.target.host().to_owned(), name }),
            (400, "not_text", Some(offset)) => Failed::Fatal(ClientError::NotText { offset }),
            (409, "exists", _) => Failed::Fatal(ClientError::PublishExists(name)),
            (409, "offset_mismatch", Some(offset)) => Failed::Mismatch(offset),
            // Maybe this run's own request that dropped, still open there.
            (409, "producer_active", _) if self.dropped => Failed::Retry(ClientError::ProducerActive(name)),
            (409, "producer_active", _) => Failed::Fatal(ClientError::ProducerActive(name)),
            (413, _, offset) => Failed::Fatal(ClientError::TooLarge { name, offset: offset.unwrap_or(self.acked) }),
            (500.., ..) => Failed::Retry(ClientError::Server(error_message(status, &body))),
            _ => Failed::Fatal(ClientError::Protocol(error_message(status, &body))),
        })
    }

    /// `GET /api/publish`: the publication by this name, if there is one.
    fn status(&mut self) -> Result<Option<Publication>, ClientError> {
        let url = self.remote.url("/api/publish", &[("file", self.name())]);
        let mut res = self.remote.get(&url, &[])?;
        let status = res.status().as_u16();
        let body =
            res.body_mut().with_config().limit(64 << 10).read_to_vec().map_err(|e| super::agent::classify(e, &url))?;
        match status {
            200 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| ClientError::Protocol(format!("bad publish answer: {}", Esc(&e.to_string())))),
            404 => Ok(None),
            401 => Err(ClientError::Unauthorized { given: self.remote.has_credentials() }),
            s @ 500.. => Err(ClientError::Server(error_message(s, &body))),
            s => Err(ClientError::Protocol(error_message(s, &body))),
        }
    }

    /// What `--resume` skips of the input: the server's `offset` bytes,
    /// checked chunk by chunk against the live manifest's digests, so a
    /// different input is refused rather than glued onto the publication.
    fn skip_of(&mut self, offset: u64) -> Result<Skip, ClientError> {
        let url = self.remote.url("/api/manifest", &[("file", self.name())]);
        let mut res = self.remote.get(&url, &[])?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| super::agent::classify(e, &url))?;
        match status {
            200 => {}
            s @ 500.. => return Err(ClientError::Server(error_message(s, &body))),
            s => return Err(ClientError::Protocol(error_message(s, &body))),
        }
        let m = Manifest::parse(&body)?;
        let chunks = (0..m.chunks)
            .map(|i| (m.span(i), m.hash(i)))
            .take_while(|((off, len), _)| off + *len as u64 <= offset)
            .map(|((_, len), hash)| (len, hash))
            .collect();
        Ok(Skip { offset, chunks })
    }

    /// Retries what failed in transit or with a 5xx, with backoff.
    fn with_retries<T>(&mut self, f: impl FnMut(&mut Self) -> Result<T, ClientError>) -> Result<T, ClientError> {
        let retries = self.config.retries;
        retrying(self, retries, f, |p, attempt, why| p.backoff(attempt, why))
    }

    fn backoff(&self, failures: u32, why: &str) {
        let delay = backoff_delay(None, failures);
        let retry = Retry { why, attempt: failures + 1, of: self.config.retries + 1, delay, reconnect: true };
        self.reporter.retry(&retry);
        std::thread::sleep(delay);
    }
}

/// The bytes read and not yet acknowledged, shared by the reader thread
/// (which appends, and waits while [`MAX_HELD`] are held) and the
/// publishing loop (which sends from the front and drops what the server
/// acknowledged).
#[derive(Default)]
struct Intake {
    held: Mutex<Held>,
    changed: Condvar,
}

#[derive(Default)]
struct Held {
    bytes: Vec<u8>,
    /// The input offset of `bytes[0]`.
    start: u64,
    eof: bool,
    failed: Option<ClientError>,
    /// The publishing loop is done: the reader stops at its next wake-up.
    closed: bool,
}

/// One request's body.
struct Part {
    bytes: Vec<u8>,
    /// The input ends with it (`end=1`).
    end: bool,
}

impl Intake {
    /// Waits for the next part: everything held up to [`MAX_PART`], cut at
    /// a character boundary (the server acknowledges whole characters
    /// only), once [`LINGER`] passed since its first byte came, or at once
    /// when bytes were waiting already or the input ended; an empty part
    /// after [`HEARTBEAT`] of nothing to send.
    fn next_part(&self) -> Result<Part, ClientError> {
        let mut held = lock(&self.held);
        let waiting = !held.bytes.is_empty();
        let mut deadline: Option<Instant> = None;
        loop {
            if let Some(e) = held.failed.take() {
                return Err(e);
            }
            if held.eof && held.bytes.len() <= MAX_PART {
                return Ok(Part { bytes: held.bytes.clone(), end: true });
            }
            let ready = sendable(&held.bytes);
            if ready > 0 {
                let now = Instant::now();
                let due = *deadline.get_or_insert(if waiting { now } else { now + LINGER });
                if held.eof || ready >= MAX_PART / 2 || now >= due {
                    return Ok(Part { bytes: held.bytes[..ready].to_vec(), end: false });
                }
                held = self.changed.wait_timeout(held, due - now).unwrap_or_else(|p| p.into_inner()).0;
            } else {
                let (next, waited) = self.changed.wait_timeout(held, HEARTBEAT).unwrap_or_else(|p| p.into_inner());
                held = next;
                if waited.timed_out() && sendable(&held.bytes) == 0 && !held.eof {
                    // Nothing to send for a while: an empty part tells the
                    // server (and its viewers) the producer is still here.
                    return Ok(Part { bytes: Vec::new(), end: false });
                }
            }
        }
    }

    /// The server has everything before `offset`: drop it.
    fn ack(&self, offset: u64) {
        let mut held = lock(&self.held);
        let n = (offset.saturating_sub(held.start) as usize).min(held.bytes.len());
        held.bytes.drain(..n);
        held.start += n as u64;
        self.changed.notify_all();
    }

    /// The offset after the last byte held.
    fn held_end(&self) -> u64 {
        let held = lock(&self.held);
        held.start + held.bytes.len() as u64
    }
}

/// How many of `bytes` the next part sends: at most [`MAX_PART`], not
/// ending inside a character. Bytes that cannot be UTF-8 are sent as they
/// are: the server's `not_text` then says where.
fn sendable(bytes: &[u8]) -> usize {
    let n = bytes.len().min(MAX_PART);
    // The continuation bytes (10xxxxxx) at the end, and the lead byte before.
    let tail = bytes[..n].iter().rev().take(4).take_while(|&&b| b & 0xC0 == 0x80).count();
    let Some(&lead) = n.checked_sub(tail + 1).map(|i| &bytes[i]) else { return n };
    let len = match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return n,
    };
    if tail + 1 >= len {
        n
    } else {
        n - tail - 1
    }
}

/// Stops the reader thread when the publishing loop returns.
struct StopReader(Arc<Intake>);

impl Drop for StopReader {
    fn drop(&mut self) {
        lock(&self.0.held).closed = true;
        self.0.changed.notify_all();
    }
}

/// What `--resume` skips: `offset` bytes, starting with chunks of these
/// lengths and digests.
struct Skip {
    offset: u64,
    chunks: Vec<(usize, Hash)>,
}

/// The reader thread: skips (and checks) what the server already has, then
/// appends what it reads, waiting while [`MAX_HELD`] bytes are held.
fn read_input(mut input: Box<dyn Read + Send>, name: PathBuf, skip: Option<Skip>, intake: &Intake) {
    let fail = |e: ClientError| {
        lock(&intake.held).failed = Some(e);
        intake.changed.notify_all();
    };
    if let Some(skip) = &skip {
        if let Err(e) = skip_input(&mut input, &name, skip) {
            return fail(e);
        }
    }
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        {
            let mut held = lock(&intake.held);
            while held.bytes.len() >= MAX_HELD && !held.closed {
                held = intake.changed.wait(held).unwrap_or_else(|p| p.into_inner());
            }
            if held.closed {
                return;
            }
        }
        match input.read(&mut buf) {
            Ok(0) => {
                lock(&intake.held).eof = true;
                intake.changed.notify_all();
                return;
            }
            Ok(n) => {
                lock(&intake.held).bytes.extend_from_slice(&buf[..n]);
                intake.changed.notify_all();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return fail(ClientError::file(name, e)),
        }
    }
}

/// Reads past the `skip.offset` bytes the server has, checking each whole
/// chunk among them against its digest.
fn skip_input(input: &mut dyn Read, name: &std::path::Path, skip: &Skip) -> Result<(), ClientError> {
    let mut read = 0u64;
    let mut buf = Vec::new();
    let short = |read| ClientError::InputShort { read, offset: skip.offset };
    for (chunk, &(len, hash)) in skip.chunks.iter().enumerate() {
        buf.resize(len, 0);
        let got = read_full(input, &mut buf).map_err(|e| ClientError::file(name.to_owned(), e))?;
        if got < len {
            return Err(short(read + got as u64));
        }
        if sha256(&buf) != hash {
            return Err(ClientError::InputDiffers { offset: skip.offset, chunk: chunk as u64 });
        }
        read += len as u64;
    }
    let rest = skip.offset - read;
    let copied = std::io::copy(&mut input.take(rest), &mut std::io::sink())
        .map_err(|e| ClientError::file(name.to_owned(), e))?;
    if copied < rest {
        return Err(short(read + copied));
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; how many bytes came.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_end_at_character_boundaries() {
        assert_eq!(sendable(b""), 0);
        assert_eq!(sendable(b"abc"), 3);
        let e = "é".as_bytes(); // c3 a9
        assert_eq!(sendable(&[b'a', e[0]]), 1, "a lead byte waits for the rest");
        assert_eq!(sendable(&[b'a', e[0], e[1]]), 3);
        let euro = "€".as_bytes(); // e2 82 ac
        assert_eq!(sendable(&[b'x', euro[0], euro[1]]), 1);
        assert_eq!(sendable(&[euro[0]]), 0);
        let smile = "😀".as_bytes();
        assert_eq!(sendable(&smile[..3]), 0);
        assert_eq!(sendable(smile), 4);
        // Not UTF-8 at all: sent as is, for the server to refuse.
        assert_eq!(sendable(&[0x80, 0x80]), 2);
        assert_eq!(sendable(&[b'a', 0xff]), 2);
        // A long run is cut at MAX_PART, then back to a boundary.
        let mut long = vec![b'a'; MAX_PART - 1];
        long.extend_from_slice(e);
        assert_eq!(sendable(&long), MAX_PART - 1);
    }

    #[test]
    fn a_resumed_input_must_be_the_same() {
        let skip = Skip { offset: 7, chunks: vec![(3, sha256(b"abc")), (3, sha256(b"def"))] };
        assert!(skip_input(&mut &b"abcdefgXYZ"[..], "in".as_ref(), &skip).is_ok());
        let mut rest = &b"abcdefgXYZ"[..];
        skip_input(&mut rest, "in".as_ref(), &skip).unwrap();
        assert_eq!(rest, b"XYZ", "exactly `offset` bytes are skipped");
        let err = skip_input(&mut &b"abcdxfg"[..], "in".as_ref(), &skip).unwrap_err();
        assert!(matches!(err, ClientError::InputDiffers { chunk: 1, .. }), "{err}");
        let err = skip_input(&mut &b"abcde"[..], "in".as_ref(), &skip).unwrap_err();
        assert!(matches!(err, ClientError::InputShort { read: 5, offset: 7 }), "{err}");
    }
}
