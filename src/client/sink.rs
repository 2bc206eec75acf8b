//! The receiving end of a download: verifies each chunk against the
//! manifest, writes it into the part file, tracks which chunks are verified,
//! and gives the final proof before the file gets its name.

use std::ops::Range;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use super::state::PartFile;
use super::{ClientError, Manifest, Summary};
use crate::index;
use crate::protocol::ChunkEvent;

/// The receiving end: verifies chunks, writes them to the part file and
/// tracks which are verified.
pub(super) struct Sink {
    part: PartFile,
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
    progress: indicatif::ProgressBar,
    manifest_chunks: u64,
}

impl Sink {
    pub(super) fn new(m: &Manifest, part: PartFile, have: Vec<bool>, quiet: bool) -> Sink {
        let progress = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::with_draw_target(Some(m.size), indicatif::ProgressDrawTarget::stderr());
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(m.name.clone());
            bar
        };
        let have_count = have.iter().filter(|&&h| h).count() as u64;
        let bytes_verified = (0..m.chunks).filter(|&i| have[i as usize]).map(|i| m.span(i).1 as u64).sum();
        progress.set_position(bytes_verified);
        Sink {
            part,
            have,
            have_count,
            bytes_verified,
            reconnects: 0,
            corrupt: 0,
            refilled: 0,
            resent: 0,
            stream_rounds: 0,
            progress,
            manifest_chunks: m.chunks,
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

    /// Verifies and stores one chunk event. Returns whether it was new.
    pub(super) fn chunk(&mut self, m: &Manifest, data: &[u8], scratch: &mut Vec<u8>) -> Result<bool, ClientError> {
        // A mangled event is treated like a corrupt chunk: whatever it was
        // is refilled by range later. (A server that only sends garbage
        // brings no progress, and the download gives up.)
        let Ok(msg) = serde_json::from_slice::<ChunkEvent>(data) else {
            self.corrupt += 1;
            return Ok(false);
        };
        if msg.i >= m.chunks {
            self.corrupt += 1;
            return Ok(false);
        }
        let (off, len) = m.span(msg.i);
        let bytes: &[u8] = match (&msg.b64, &msg.text) {
            (Some(b64), _) => {
                scratch.clear();
                match base64_simd::STANDARD.decode_append(b64, scratch) {
                    Ok(()) => scratch,
                    Err(_) => &[],
                }
            }
            (None, Some(text)) => text.as_bytes(),
            (None, None) => &[],
        };
        if self.have[msg.i as usize] {
            self.resent += bytes.len() as u64;
            return Ok(false);
        }
        // Only the manifest's digest counts: the one in the event travelled
        // with the (possibly corrupted) payload.
        if msg.off != off || msg.len != len as u64 || bytes.len() != len || index::sha256(bytes) != m.hash(msg.i) {
            self.corrupt += 1;
            return Ok(false);
        }
        self.part.file.write_all_at(bytes, off)?;
        self.have[msg.i as usize] = true;
        self.have_count += 1;
        self.bytes_verified += len as u64;
        self.progress.set_position(self.bytes_verified);
        Ok(true)
    }

    /// Final proof: every chunk verified against its manifest digest, the
    /// digests hash to `root`, and the size matches. Together they prove the
    /// bytes are the indexed version; `verify_sha256` also reads the file
    /// back and checks the whole-file digest (one more hashing pass).
    pub(super) fn finish(
        self,
        m: &Manifest,
        out: &std::path::Path,
        verify_sha256: bool,
    ) -> Result<Summary, ClientError> {
        self.progress.finish_and_clear();
        if self.have_count != m.chunks {
            return Err(ClientError::Verify(format!("{} of {} chunks verified", self.have_count, m.chunks)));
        }
        if index::hex(&index::root_of(&m.digests)) != m.root {
            return Err(ClientError::Verify("chunk digests do not hash to the manifest's root".into()));
        }
        let size = self.part.file.metadata()?.len();
        if size != m.size {
            return Err(ClientError::Verify(format!("assembled {size} bytes, expected {}", m.size)));
        }
        if verify_sha256 {
            let mut whole = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut pos = 0;
            while pos < size {
                let n = (size - pos).min(buf.len() as u64) as usize;
                self.part.file.read_exact_at(&mut buf[..n], pos)?;
                whole.update(&buf[..n]);
                pos += n as u64;
            }
            let sha = index::hex(&whole.finalize());
            if sha != m.sha256 {
                return Err(ClientError::Verify(format!("file digest {sha} differs from the manifest's {}", m.sha256)));
            }
        }
        let sha = m.sha256.clone();
        self.part.finish(out)?;
        let summary = Summary {
            path: out.to_owned(),
            bytes: size,
            sha256: sha,
            reconnects: self.reconnects,
            corrupt_chunks: self.corrupt,
            refilled_chunks: self.refilled,
            bytes_resent: self.resent,
            ..Summary::default()
        };
        Ok(summary)
    }
}
