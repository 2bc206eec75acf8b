//! `get --follow`: a text still being published (`serve --publish`)
//! streamed in order to its end. The chunks the first manifest lists are
//! checked against its digests; later ones against the digest their own
//! event carries (there is no other yet). At the end the finished file's
//! manifest, fetched again, must name exactly the digests verified, so the
//! output is accepted by the same proof as a file's. Apart from
//! `download.rs` because nothing of a live stream is known in advance:
//! chunks arrive only in order, and the size grows.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::time::Instant;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::download::{max_event_len, next_event, open_ordered, part_left, Download, Stop};
use super::error::ClientError;
use super::manifest::Manifest;
use super::output::Output;
use super::part::PartFile;
use super::remote::{error_message, wire};
use super::report::{Start, Summary};
use crate::logsafe::Esc;
use crate::protocol::sse::Parser;
use crate::protocol::{hex, parse_hex, root_of, sha256, End, ErrorBody, Hash, LiveState, StateEvent};

/// Where the followed text goes: a part file appended chunk by chunk, or a
/// stream (standard output, a pipe, a device) written in order.
enum LiveStore {
    Part(PartFile),
    /// `whole` hashes what is written, for `--verify-sha256`.
    Ordered {
        out: File,
        path: PathBuf,
        whole: Option<Sha256>,
    },
}

/// A live text followed so far: the digests of the chunks written, in
/// order, and where the next one starts.
struct Live {
    /// The manifest the stream started from (its chunks have digests).
    first: Manifest,
    store: LiveStore,
    digests: Vec<Hash>,
    /// Bytes written (the next chunk's offset).
    bytes: u64,
    resumed_bytes: u64,
    resumed_chunks: u64,
    reconnects: u64,
    corrupt: u64,
    resent: u64,
}

/// A live `chunk` event. Unlike `protocol::ChunkEvent` its `sha256` is
/// read: a chunk sealed after the first manifest has no other digest.
#[derive(Deserialize)]
struct LiveChunk<'a> {
    i: u64,
    off: u64,
    len: u64,
    sha256: &'a str,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// What a live stream's `meta` event says besides the version.
#[derive(Deserialize)]
struct LiveMeta {
    version: String,
    #[serde(default)]
    live: bool,
    #[serde(default)]
    state: Option<LiveState>,
}

/// How one request on a live stream ended.
enum Ended {
    /// `event: end`, with its reason.
    End(Option<LiveState>),
    /// 204: the publication ended and every chunk was sent before (the
    /// `end` event was lost with a connection).
    NoMore,
    Dropped {
        new_chunks: u64,
        why: String,
    },
}

impl Download<'_> {
    /// A live manifest came back: refused without `--follow`, else followed
    /// to the end and finished like a file.
    pub(super) fn follow(&mut self, first: Manifest, started: Instant) -> Result<Summary, ClientError> {
        let config = self.config;
        if !config.follow {
            return Err(ClientError::Live { name: config.target.name.clone(), chunks: first.chunks });
        }
        let (store, have) = match &config.output {
            // `--update` replaces the file at the end, as `--force` does: a
            // live text's chunks are not known in advance to reuse any.
            Output::File { path, exists: true } if !config.force && !config.update => {
                return Err(ClientError::Exists(path.clone()))
            }
            Output::File { path, .. } => {
                let (part, resumable) = PartFile::open_live(path, &first)?;
                let have = if resumable { verified_prefix(&part, &first)? } else { 0 };
                (LiveStore::Part(part), have)
            }
            ordered => {
                let (out, path) = open_ordered(ordered)?;
                (LiveStore::Ordered { out, path, whole: config.verify_sha256.then(Sha256::new) }, 0)
            }
        };
        let digests = first.digests[..have as usize].to_vec();
        let bytes = if have == 0 { 0 } else { first.span(have - 1).0 + first.span(have - 1).1 as u64 };
        let mut live = Live {
            first,
            store,
            digests,
            bytes,
            resumed_bytes: bytes,
            resumed_chunks: have,
            reconnects: 0,
            corrupt: 0,
            resent: 0,
        };
        self.reporter.start(&Start { name: &config.target.name, size: bytes, have: bytes, live: true });
        if let Some(state) = live.first.state {
            self.reporter.live_state(state);
        }
        let reason = match self.stream_live(&mut live) {
            Ok(reason) => reason,
            Err(e) => {
                drop(live); // closes the part file before it may be removed
                return Err(part_left(&config.output, self.changed_or_gone(e)));
            }
        };
        if reason == Some(LiveState::Abandoned) {
            self.reporter.notice(&format!(
                "warning: the producer of {} abandoned it; the file ends with the {} bytes sealed before",
                Esc(&config.target.name),
                live.bytes
            ));
        }
        let last = self.finished_manifest()?;
        let mut summary = live.finish(&last, config)?;
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// Streams from the next chunk until the publication ends, reconnecting
    /// with `Last-Event-ID` after drops. Returns the `end` event's reason.
    fn stream_live(&mut self, live: &mut Live) -> Result<Option<LiveState>, ClientError> {
        let from = (live.digests.len() as u64).to_string();
        let url = self.url("/events", &[("file", self.name()), ("v", &live.first.version), ("from", &from)]);
        let mut drops = 0;
        loop {
            match self.live_request(&url, live)? {
                Ended::End(reason) => return Ok(reason),
                Ended::NoMore => return Ok(None),
                Ended::Dropped { new_chunks, why } => {
                    live.reconnects += 1;
                    drops = if new_chunks > 0 { 1 } else { drops + 1 };
                    if drops > self.config.retries {
                        return Err(ClientError::GaveUp(drops, why));
                    }
                    self.backoff(drops, &why, true);
                }
            }
        }
    }

    /// One `/events` request, read until `end`, a drop or a fatal error.
    fn live_request(&mut self, url: &str, live: &mut Live) -> Result<Ended, ClientError> {
        let last_id = (live.digests.len() as u64).checked_sub(1).map(|id| id.to_string());
        let mut headers = vec![("Accept", "text/event-stream")];
        if let Some(id) = &last_id {
            headers.push(("Last-Event-ID", id));
        }
        let dropped = |why: String| Ended::Dropped { new_chunks: 0, why };
        let mut res = match self.remote.get(url, &headers) {
            Ok(res) => res,
            Err(ClientError::Unreachable { why, .. }) => return Ok(dropped(why)),
            Err(fatal) => return Err(fatal),
        };
        let name = live.first.name.clone();
        match res.status().as_u16() {
            200 => {}
            204 => return Ok(Ended::NoMore),
            412 => return Err(ClientError::Changed(name)),
            404 => return Err(ClientError::NotFound(name)),
            s @ 500.. => return Ok(dropped(error_message(s, &res.body_mut().read_to_vec().unwrap_or_default()))),
            s => {
                return Err(ClientError::Protocol(error_message(s, &res.body_mut().read_to_vec().unwrap_or_default())))
            }
        }
        let mut reader = BufReader::with_capacity(256 * 1024, res.body_mut().as_reader());
        let mut parser = Parser::new().with_max_line(max_event_len(&live.first));
        let mut new_chunks = 0;
        let ended = loop {
            let event = match next_event(&mut parser, &mut reader, url) {
                Ok(event) => event,
                Err(Stop::Dropped(why)) => break Ended::Dropped { new_chunks, why },
                Err(Stop::Fatal(e)) => return Err(e),
            };
            match event.event {
                "meta" => {
                    let meta = wire::<LiveMeta>("meta", event.data)?;
                    // After the end, `v=` (the publication's id) is answered
                    // with the finished file, under its own version; the
                    // final manifest proves it is what was followed.
                    if meta.version != live.first.version && meta.live {
                        return Err(ClientError::Changed(name));
                    }
                    if let Some(state) = meta.state {
                        self.reporter.live_state(state);
                    }
                }
                "chunk" => match live.accept(event.data)? {
                    Taken::New(len) => {
                        new_chunks += 1;
                        self.reporter.progress(live.bytes, len);
                    }
                    Taken::Old => {}
                    // Asked again from the last good chunk: a live stream
                    // only moves forward, so nothing past a gap is kept.
                    Taken::Bad => break Ended::Dropped { new_chunks, why: "a chunk failed verification".into() },
                },
                "state" => self.reporter.live_state(wire::<StateEvent>("state", event.data)?.state),
                "end" => {
                    let end = wire::<End>("end", event.data)?;
                    live.check_end(&end)?;
                    break Ended::End(end.reason);
                }
                "error" => {
                    let err = wire::<ErrorBody>("error", event.data).ok();
                    if err.as_ref().is_some_and(|e| e.code == "changed" || e.code == "corrupt") {
                        return Err(ClientError::Changed(name));
                    }
                    let why = err.map_or_else(|| "server error".to_owned(), |e| Esc(&e.error).to_string());
                    break Ended::Dropped { new_chunks, why };
                }
                _ => {}
            }
        };
        if let Some(ms) = parser.retry_ms {
            self.retry_ms = Some(ms);
        }
        Ok(ended)
    }

    /// The manifest once the stream ended: an ordinary one by then. A
    /// server may answer the request that raced the end with the live one
    /// still, so a live answer is asked again a few times.
    fn finished_manifest(&mut self) -> Result<Manifest, ClientError> {
        for _ in 0..20 {
            let m = self.with_retries(|dl| dl.manifest())?;
            if !m.live {
                return Ok(m);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(ClientError::Protocol(format!(
            "the stream of {} ended, but its manifest still says it is live",
            Esc(self.name())
        )))
    }
}

/// What [`Live::accept`] made of a chunk event.
enum Taken {
    /// Verified and written: its length.
    New(u64),
    /// Already written: a resend.
    Old,
    /// Mangled, out of place or failing its digest.
    Bad,
}

impl Live {
    /// Checks one chunk event and writes it.
    fn accept(&mut self, data: &[u8]) -> Result<Taken, ClientError> {
        let next = self.digests.len() as u64;
        let Some(Ok(chunk)) = simdutf8::basic::from_utf8(data).ok().map(serde_json::from_str::<LiveChunk>) else {
            self.corrupt += 1;
            return Ok(Taken::Bad);
        };
        if chunk.i < next {
            self.resent += chunk.len;
            return Ok(Taken::Old);
        }
        let Some(text) = chunk.text.as_deref() else {
            return Err(ClientError::Protocol(format!(
                "a chunk of the live text {} has no text",
                Esc(&self.first.name)
            )));
        };
        // The manifest's digest where it has one, else the event's.
        let want = if chunk.i < self.first.chunks {
            let (off, len) = self.first.span(chunk.i);
            (off == chunk.off && len as u64 == chunk.len).then(|| self.first.hash(chunk.i))
        } else {
            parse_hex(chunk.sha256)
        };
        let fits = chunk.i == next
            && chunk.off == self.bytes
            && chunk.len == text.len() as u64
            && chunk.len > 0
            && chunk.len <= u64::from(self.first.chunk_size);
        let digest = sha256(text.as_bytes());
        if !fits || want != Some(digest) {
            self.corrupt += 1;
            return Ok(Taken::Bad);
        }
        let bytes = text.as_bytes();
        match &mut self.store {
            LiveStore::Part(part) => {
                part.file.write_all_at(bytes, self.bytes).map_err(|e| ClientError::file(part.part_path.clone(), e))?
            }
            LiveStore::Ordered { out, path, whole } => {
                out.write_all(bytes).map_err(|e| ClientError::file(path.clone(), e))?;
                if let Some(h) = whole {
                    h.update(bytes);
                }
            }
        }
        self.digests.push(digest);
        self.bytes += chunk.len;
        Ok(Taken::New(chunk.len))
    }

    /// The `end` event must name exactly the chunks written.
    fn check_end(&self, end: &End) -> Result<(), ClientError> {
        let written = self.digests.len() as u64;
        if end.chunks != written {
            return Err(ClientError::Verify(format!(
                "the stream ended after {} chunks, but {written} were received",
                end.chunks
            )));
        }
        if end.root != hex(&root_of(&self.digests)) {
            return Err(ClientError::Verify("the chunks received do not hash to the root of `end`".into()));
        }
        Ok(())
    }

    /// Final proof, as for a file: the finished file's manifest (no longer
    /// live) has exactly the digests verified, so its `root` is theirs and
    /// its size the bytes written; then the part file gets its name.
    fn finish(self, last: &Manifest, config: &super::GetConfig) -> Result<Summary, ClientError> {
        let root = hex(&root_of(&self.digests));
        if last.root != root || last.chunks != self.digests.len() as u64 {
            return Err(ClientError::Verify(format!(
                "the finished file's root {} is not the root {root} of the {} chunks verified",
                Esc(&last.root),
                self.digests.len()
            )));
        }
        if last.size != self.bytes {
            return Err(ClientError::Verify(format!(
                "wrote {} bytes, the finished file has {}",
                self.bytes, last.size
            )));
        }
        let (path, sha256) = match self.store {
            LiveStore::Part(part) => {
                let sha = if config.verify_sha256 { Some(part.read_back_sha256(last.size)?) } else { None };
                if sha.as_ref().is_some_and(|sha| *sha != last.sha256) {
                    return Err(ClientError::Verify(format!(
                        "file digest differs from the manifest's {}",
                        last.sha256
                    )));
                }
                let Output::File { path, .. } = &config.output else { unreachable!("a part file is for a file") };
                part.finish(path)?;
                (path.clone(), sha)
            }
            LiveStore::Ordered { mut out, path, whole } => {
                out.flush().map_err(|e| ClientError::file(path.clone(), e))?;
                let sha = whole.map(|h| hex(&h.finalize()));
                if sha.as_ref().is_some_and(|sha| *sha != last.sha256) {
                    return Err(ClientError::Verify(format!(
                        "file digest differs from the manifest's {}",
                        last.sha256
                    )));
                }
                (if config.output == Output::Stdout { PathBuf::from("-") } else { path }, sha)
            }
        };
        Ok(Summary {
            path,
            bytes: self.bytes,
            root,
            sha256,
            resumed_chunks: self.resumed_chunks,
            bytes_this_run: self.bytes - self.resumed_bytes,
            reconnects: self.reconnects,
            corrupt_chunks: self.corrupt,
            bytes_resent: self.resent,
            ..Summary::default()
        })
    }
}

/// The chunks of a resumed part file that still match the manifest, from
/// the start: how many. The part file is cut after them (a live text is
/// only ever written in order, so nothing after a bad chunk is kept).
fn verified_prefix(part: &PartFile, m: &Manifest) -> Result<u64, ClientError> {
    let on = |e| ClientError::file(part.part_path.clone(), e);
    let len = part.file.metadata().map_err(on)?.len();
    let mut buf = Vec::new();
    let (mut have, mut end) = (0, 0);
    for i in 0..m.chunks {
        let (off, n) = m.span(i);
        if off + n as u64 > len {
            break;
        }
        buf.resize(n, 0);
        part.file.read_exact_at(&mut buf, off).map_err(on)?;
        if sha256(&buf) != m.hash(i) {
            break;
        }
        (have, end) = (i + 1, off + n as u64);
    }
    part.file.set_len(end).map_err(on)?;
    Ok(have)
}
