//! The bulk of a download as the file's own bytes: `GET /files/NAME` with
//! `Range`, cut at the manifest's chunk boundaries, each chunk checked
//! against the manifest's digest before the sink takes it. The proof is
//! the event stream's (obligation 1 of docs/PROTOCOL.md: only the
//! manifest's digest counts), without its framing: no base64 to decode, a
//! third fewer bytes through the socket, no line to find. Those put the
//! event stream's floor near 1.5× `openssl dgst`'s CPU per byte on this
//! side (docs/BENCHMARKS.md, issue 22); the file's bytes need what hashing
//! and writing them needs.
//!
//! It is a faster road, never the only one. Anything unexpected ends it
//! for the rest of the download and the event stream takes over, whose
//! `v=` tells a changed file from a damaged byte: a status other than 206
//! (a server or proxy that ignores `Range`, or an `If-Range` that no longer
//! matches, answers 200; 200 is expected only when the whole file was
//! asked), a `Content-Range` other than the range asked of a file of the
//! manifest's size, a chunk that fails its digest. A dropped
//! connection is not unexpected: the next request asks for the range from
//! the next chunk still missing, with `If-Range` set to the first answer's
//! strong `ETag`, so a file replaced meanwhile is never spliced. Not used
//! with `--rate` (only `/events` is paced) or `--transport events`.

use std::io::Read;
use std::ops::Range;

use super::error::ClientError;
use super::manifest::Manifest;
use super::remote::{error_message, Remote};
use super::sink::{Checked, Outcome, Sink};
use crate::protocol::params::encode_query_value;

/// More runs of missing chunks than this go to the event stream's `need=`
/// (one request) rather than one range request each.
pub(super) const MAX_RUNS: usize = 16;

/// How one range request ended.
pub(super) enum Ended {
    /// Every chunk asked for arrived and verified.
    Complete,
    /// The connection dropped or stalled after this many whole chunks.
    Dropped { read: u64, why: String },
    /// Something unexpected: the event stream takes over.
    Refused,
}

/// Whether this download still reads raw bytes, and the validator that
/// keeps every range of it from one version of the file. The download
/// ([`super::download`]) retries drops and decides what comes next.
#[derive(Debug, Default)]
pub(super) struct Raw {
    /// Off for good once anything was unexpected (or never on).
    pub(super) off: bool,
    /// The first answer's strong `ETag`, sent as `If-Range` from then on.
    etag: Option<String>,
}

impl Raw {
    pub(super) fn new(on: bool) -> Raw {
        Raw { off: !on, etag: None }
    }

    /// One `Range` request for `chunks` of `name`, read to its end or its
    /// failure; each whole chunk is checked and given to `sink`. One
    /// chunk-sized buffer serves every chunk: read, hashed and written
    /// while it is still in cache. The caller switches the raw road off
    /// on `Refused`.
    pub(super) fn request(
        &mut self,
        remote: &Remote,
        name: &str,
        m: &Manifest,
        sink: &mut Sink,
        chunks: Range<u64>,
    ) -> Result<Ended, ClientError> {
        let start = m.span(chunks.start).0;
        let (last_off, last_len) = m.span(chunks.end - 1);
        let last = last_off + last_len as u64 - 1;
        let range = format!("bytes={start}-{last}");
        // The query value's encoding keeps `/` and escapes everything a
        // path segment could misread (`?`, `#`, `%`, `+`).
        let url = remote.url(&format!("/files/{}", encode_query_value(name)), &[]);
        let mut headers = vec![("Range", range.as_str())];
        if let Some(etag) = &self.etag {
            headers.push(("If-Range", etag));
        }
        let mut res = match remote.get(&url, &headers) {
            Ok(res) => res,
            Err(ClientError::Unreachable { why, .. }) => return Ok(Ended::Dropped { read: 0, why }),
            Err(fatal) => return Err(fatal),
        };
        let header = |name| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // actix-files answers a range that is the whole file with 200 and
        // the whole file, which is what was asked; its digests still decide
        // whether it is the manifest's version.
        let whole = start == 0 && last + 1 == m.size;
        match res.status().as_u16() {
            206 if header("content-range").as_deref() == Some(&format!("bytes {start}-{last}/{}", m.size)) => {}
            200 if whole && header("content-length").as_deref() == Some(&m.size.to_string()) => {}
            s @ 500.. => {
                let body = res.body_mut().read_to_vec().unwrap_or_default();
                return Ok(Ended::Dropped { read: 0, why: error_message(s, &body) });
            }
            _ => return Ok(Ended::Refused),
        }
        if self.etag.is_none() {
            self.etag = header("etag").filter(|tag| !tag.starts_with("W/"));
        }
        let mut body = res.body_mut().as_reader();
        let mut buf = vec![0; m.chunk_size as usize];
        let mut read = 0;
        for i in chunks {
            let bytes = &mut buf[..m.span(i).1];
            if let Err(e) = body.read_exact(bytes) {
                return Ok(Ended::Dropped { read, why: super::agent::describe_read(e, &url) });
            }
            let checked = if crate::protocol::sha256(bytes) == m.hash(i) { Checked::Good { i } } else { Checked::Bad };
            match sink.accept(m, checked, bytes)? {
                Outcome::New | Outcome::Old => read += 1,
                Outcome::Corrupt | Outcome::Gap => return Ok(Ended::Refused),
            }
        }
        Ok(Ended::Complete)
    }
}
