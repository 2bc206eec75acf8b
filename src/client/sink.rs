//! The receiving end of a download: checks each chunk against the manifest
//! ([`check`], run by each reader thread without any lock, so parallel
//! refills hash in parallel), then stores it ([`Sink::accept`], under the
//! lock: a bitmap update and one positional write), and gives the final
//! proof before the file gets its name.

use std::fs::File;
use std::io::Write as _;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::delta;
use super::error::ClientError;
use super::manifest::Manifest;
use super::part::PartFile;
use super::report::Reporter;
use super::report::Summary;
use crate::protocol::ChunkEvent;

/// Where verified chunks go.
pub(super) enum Store {
    /// `OUT.part`, written at each chunk's offset, in any order.
    Part(PartFile),
    /// A device, a pipe or standard output: chunk `next` and only it can be
    /// written; `whole` hashes the bytes as they go for `--verify-sha256`.
    Ordered { out: File, path: PathBuf, next: u64, whole: Option<Sha256> },
}

/// A chunk event after [`check`].
pub(super) enum Checked {
    /// Chunk `i` matches the manifest; its bytes are in the scratch buffer.
    Good { i: u64 },
    /// Mangled, misplaced or failing its digest.
    Bad,
}

/// What [`Sink::accept`] made of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    New,
    /// Already verified: a resend.
    Old,
    Corrupt,
    /// An ordered output got a chunk past the next one it can write.
    Gap,
}

/// Parses, decodes and verifies one chunk event into `scratch`. Only the
/// manifest's digest counts: the one in the event travelled with the
/// (possibly corrupted) payload.
///
/// A binary chunk's base64 string is located with `memchr` and decoded in
/// place; serde_json only sees the short header around it. (A full JSON
/// parse walks the 350 KB string byte by byte, which cost more than the
/// decoding.) The base64 alphabet has no `"` or `\`, so the first quote
/// after `"b64":"` ends the string.
pub(super) fn check(m: &Manifest, data: &[u8], scratch: &mut Vec<u8>) -> Checked {
    scratch.clear();
    let head = match memchr::memmem::find(data, br#""b64":""#) {
        Some(at) => {
            let start = at + 7;
            let Some(len) = memchr::memchr(b'"', &data[start..]) else { return Checked::Bad };
            if base64_simd::STANDARD.decode_append(&data[start..start + len], scratch).is_err() {
                return Checked::Bad;
            }
            let mut head = Vec::with_capacity(start + 8);
            head.extend_from_slice(&data[..start]);
            head.extend_from_slice(&data[start + len..]);
            match serde_json::from_slice::<ChunkEvent>(&head) {
                Ok(h) => (h.i, h.off, h.len),
                Err(_) => return Checked::Bad,
            }
        }
        // Text: checked as UTF-8 once, with SIMD, so that serde_json reads
        // it as a `str` and skips its own check (std's `from_utf8`, byte by
        // byte on non-ASCII text, was half of `get`'s CPU on a UTF-8 file).
        None => match simdutf8::basic::from_utf8(data).ok().map(serde_json::from_str::<ChunkEvent>) {
            Some(Ok(ChunkEvent { text: Some(text), i, off, len, .. })) => {
                scratch.extend_from_slice(text.as_bytes());
                (i, off, len)
            }
            // Neither `b64` nor `text`, or not JSON.
            _ => return Checked::Bad,
        },
    };
    let (i, off, len) = head;
    if i >= m.chunks {
        return Checked::Bad;
    }
    let (want_off, want_len) = m.span(i);
    if off != want_off
        || len != want_len as u64
        || scratch.len() != want_len
        || crate::protocol::sha256(scratch) != m.hash(i)
    {
        return Checked::Bad;
    }
    Checked::Good { i }
}

/// The receiving end: stores verified chunks and tracks which are in.
pub(super) struct Sink<'r> {
    store: Store,
    have: Vec<bool>,
    /// Chunks verified so far.
    pub(super) have_count: u64,
    bytes_verified: u64,
    /// Counters the download loop keeps here so the summary finds them.
    pub(super) reconnects: u64,
    corrupt: u64,
    pub(super) refilled: u64,
    resent: u64,
    /// `/events` rounds started; later rounds may refill by range instead.
    pub(super) stream_rounds: u64,
    /// Chunks (and their bytes) verified from the network in this run, for
    /// every version the download went through.
    fetched_chunks: u64,
    fetched_bytes: u64,
    manifest_chunks: u64,
    reporter: &'r dyn Reporter,
}

impl<'r> Sink<'r> {
    pub(super) fn new(m: &Manifest, store: Store, have: Vec<bool>, reporter: &'r dyn Reporter) -> Sink<'r> {
        let have_count = have.iter().filter(|&&h| h).count() as u64;
        let bytes_verified = (0..m.chunks).filter(|&i| have[i as usize]).map(|i| m.span(i).1 as u64).sum();
        Sink {
            store,
            have,
            have_count,
            bytes_verified,
            reconnects: 0,
            corrupt: 0,
            refilled: 0,
            resent: 0,
            stream_rounds: 0,
            fetched_chunks: 0,
            fetched_bytes: 0,
            manifest_chunks: m.chunks,
            reporter,
        }
    }

    pub(super) fn bytes_verified(&self) -> u64 {
        self.bytes_verified
    }

    /// The file changed on the server: `new` replaces `old`. The chunks
    /// verified so far that `new` repeats ([`delta::carry`]) are kept and
    /// the rest forgotten; the part file takes the new size and state. An
    /// ordered output goes on only when `new` repeats every chunk it wrote
    /// (they cannot be taken back): `None` otherwise. Returns the chunks
    /// kept.
    pub(super) fn retarget(&mut self, old: &Manifest, new: &Manifest) -> Result<Option<u64>, ClientError> {
        let have = delta::carry(old, &self.have, new);
        let kept = have.iter().filter(|&&h| h).count() as u64;
        match &self.store {
            Store::Part(part) => part.retarget(new)?,
            Store::Ordered { next, .. } if kept != *next => return Ok(None),
            Store::Ordered { .. } => {}
        }
        self.have = have;
        self.have_count = kept;
        self.bytes_verified = (0..new.chunks).filter(|&i| self.have[i as usize]).map(|i| new.span(i).1 as u64).sum();
        self.manifest_chunks = new.chunks;
        Ok(Some(kept))
    }

    /// Whether chunks must arrive in order (no part file to fill gaps in).
    pub(super) fn ordered(&self) -> bool {
        matches!(self.store, Store::Ordered { .. })
    }

    /// For an ordered output, the `Last-Event-ID` that resumes at the next
    /// chunk it can write (`Some(None)`: from the start).
    pub(super) fn ordered_resume(&self) -> Option<Option<u64>> {
        match self.store {
            Store::Ordered { next, .. } => Some(next.checked_sub(1)),
            Store::Part(_) => None,
        }
    }

    pub(super) fn missing(&self) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        for i in (0..self.manifest_chunks).filter(|&i| !self.have[i as usize]) {
            match out.last_mut() {
                Some(r) if r.end == i => r.end += 1,
                _ => out.push(i..i + 1),
            }
        }
        out
    }

    /// Stores a checked chunk (`bytes` is the scratch [`check`] filled).
    pub(super) fn accept(&mut self, m: &Manifest, checked: Checked, bytes: &[u8]) -> Result<Outcome, ClientError> {
        let Checked::Good { i } = checked else {
            self.corrupt += 1;
            return Ok(Outcome::Corrupt);
        };
        if self.have[i as usize] {
            self.resent += bytes.len() as u64;
            return Ok(Outcome::Old);
        }
        match &mut self.store {
            Store::Part(part) => {
                let off = m.span(i).0;
                part.file.write_all_at(bytes, off).map_err(|e| ClientError::file(part.part_path.clone(), e))?;
            }
            Store::Ordered { next, .. } if i != *next => return Ok(Outcome::Gap),
            Store::Ordered { out, path, next, whole } => {
                out.write_all(bytes).map_err(|e| ClientError::file(path.clone(), e))?;
                if let Some(h) = whole {
                    h.update(bytes);
                }
                *next += 1;
            }
        }
        self.have[i as usize] = true;
        self.have_count += 1;
        self.bytes_verified += bytes.len() as u64;
        self.fetched_chunks += 1;
        self.fetched_bytes += bytes.len() as u64;
        self.reporter.progress(self.bytes_verified, bytes.len() as u64);
        Ok(Outcome::New)
    }

    /// Final proof: every chunk verified against its manifest digest, the
    /// digests hash to `root`, and the size matches. Together they prove the
    /// bytes are the indexed version; `verify_sha256` also checks the
    /// whole-file digest (reading a part file back, or hashing an ordered
    /// output as it was written).
    pub(super) fn finish(self, m: &Manifest, out: PathBuf, verify_sha256: bool) -> Result<Summary, ClientError> {
        if self.have_count != m.chunks {
            return Err(ClientError::Verify(format!("{} of {} chunks verified", self.have_count, m.chunks)));
        }
        let root = crate::protocol::hex(&crate::protocol::root_of(&m.digests));
        if root != m.root {
            return Err(ClientError::Verify("chunk digests do not hash to the manifest's root".into()));
        }
        if self.bytes_verified != m.size {
            return Err(ClientError::Verify(format!("assembled {} bytes, expected {}", self.bytes_verified, m.size)));
        }
        let whole = match self.store {
            Store::Part(part) => {
                let sha = if verify_sha256 { Some(part.read_back_sha256(m.size)?) } else { None };
                if let Some(sha) = sha.as_ref().filter(|sha| **sha != m.sha256) {
                    // Never renamed: the final name only ever holds a proven file.
                    return Err(ClientError::Verify(format!(
                        "file digest {sha} differs from the manifest's {}",
                        m.sha256
                    )));
                }
                part.finish(&out)?;
                sha
            }
            Store::Ordered { mut out, path, whole, .. } => {
                out.flush().map_err(|e| ClientError::file(path, e))?;
                whole.map(|h| crate::protocol::hex(&h.finalize()))
            }
        };
        if let Some(sha) = whole.as_ref().filter(|sha| **sha != m.sha256) {
            return Err(ClientError::Verify(format!("file digest {sha} differs from the manifest's {}", m.sha256)));
        }
        Ok(Summary {
            path: out,
            bytes: m.size,
            root,
            sha256: whole,
            reconnects: self.reconnects,
            corrupt_chunks: self.corrupt,
            refilled_chunks: self.refilled,
            bytes_resent: self.resent,
            chunks: m.chunks,
            fetched_chunks: self.fetched_chunks,
            fetched_bytes: self.fetched_bytes,
            bytes_this_run: self.fetched_bytes,
            ..Summary::default()
        })
    }
}
