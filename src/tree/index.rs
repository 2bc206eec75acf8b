//! The index of a file: how it is cut into chunks (the rules are
//! [`crate::protocol::layout`]'s), and the SHA-256 of each chunk, of the
//! whole file and of the chunk digests (`root`).
//!
//! The kind is only known at the end of the file, so the builder optimistically
//! cuts text chunks. If the file turns out not to be UTF-8 and no text chunk
//! had been cut short yet, the chunks so far are already the binary chunks and
//! the pass goes on; otherwise the build restarts in binary mode. Real binary
//! files fail UTF-8 within their first bytes, so the restart costs ~nothing.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::sync::mpsc;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::disk::{Disk, ReadSite, RealDisk};
use crate::protocol::digest::serde_hex;
use crate::protocol::{root_of, sha256, Hash, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: u128,
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Stamp {
        let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        Stamp { size: meta.len(), mtime_ns }
    }
}

/// The computed index. Chunk `i` spans `offsets[i] .. offsets[i+1]` (or the
/// file's end for the last chunk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIndex {
    pub stamp: Stamp,
    pub kind: Kind,
    pub chunk_size: u32,
    pub offsets: Vec<u64>,
    #[serde(with = "serde_hex::list")]
    pub hashes: Vec<Hash>,
    #[serde(with = "serde_hex::one")]
    pub sha256: Hash,
    #[serde(with = "serde_hex::one")]
    pub root: Hash,
    /// The id a live publication of this file carried (its `version` while
    /// live), still accepted as `v=` once it is finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_as: Option<String>,
    /// How that publication ended (`complete` or `abandoned`), kept in the
    /// finished file's manifest and `end` event for a viewer that missed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_end: Option<crate::protocol::LiveState>,
}

impl FileIndex {
    pub fn size(&self) -> u64 {
        self.stamp.size
    }

    pub fn chunks(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// `(offset, length)` of chunk `i`; `i` must be `< chunks()`.
    pub fn span(&self, i: u64) -> (u64, usize) {
        crate::protocol::span(self.stamp.size, self.chunk_size, Some(&self.offsets), i)
    }

    /// The first 16 hex digits of `root`: short enough for a URL, and it
    /// changes whenever any chunk changes.
    pub fn version(&self) -> String {
        crate::protocol::hex(&self.root[..8])
    }
}

/// Computes the index of an open file in one streaming pass with constant
/// memory. It reads the descriptor it is given (positionally, so passes do
/// not share a cursor), never the path again: the file that was checked is
/// the file that is hashed.
///
/// The whole-file digest runs on a second thread fed with the same buffers,
/// so indexing costs one SHA-256 pass of wall time on two cores rather than
/// two. The file's stamp is read before and after; if it moved while we read,
/// the result would describe no real version of the file, so we retry.
pub fn build(file: &File, chunk_size: u32) -> io::Result<FileIndex> {
    build_from(file, chunk_size, &RealDisk, "")
}

/// [`build`], reading through `disk` (`rel` names the file for it).
pub fn build_from(file: &File, chunk_size: u32, disk: &dyn Disk, rel: &str) -> io::Result<FileIndex> {
    for _ in 0..3 {
        let before = Stamp::of(&file.metadata()?);
        let at = || At { file, pos: 0, disk, rel };
        let index = match build_pass(&mut at(), chunk_size, before, false)? {
            Some(index) => index,
            None => build_pass(&mut at(), chunk_size, before, true)?
                .ok_or_else(|| io::Error::other("a binary pass restarted"))?,
        };
        if Stamp::of(&file.metadata()?) == before && index.size() == before.size {
            return Ok(index);
        }
    }
    Err(io::Error::other("the file kept changing while it was indexed"))
}

/// A reader at a position of a shared descriptor (`pread`).
struct At<'a> {
    file: &'a File,
    pos: u64,
    disk: &'a dyn Disk,
    rel: &'a str,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.disk.read_at(self.file, buf, self.pos, self.rel, ReadSite::Index)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// One pass. Returns `None` when the file turned out not to be text after a
/// text chunk had been cut short, meaning the caller must redo it as binary.
fn build_pass(file: &mut At<'_>, chunk_size: u32, stamp: Stamp, force_binary: bool) -> io::Result<Option<FileIndex>> {
    let c = chunk_size as usize;
    let mut text = !force_binary;
    let mut diverged = false; // a text chunk was cut short of C
    let mut offsets = Vec::new();
    let mut hashes = Vec::new();
    let mut offset = 0u64;
    let mut carry: Vec<u8> = Vec::with_capacity(4);

    // Buffers circulate: reader -> whole-file hasher -> back to the reader.
    const BUFFERS: usize = 3;
    let (to_hasher, hasher_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    let (to_reader, pool) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        to_reader.send(Vec::with_capacity(c + 4)).expect("pool has room");
    }

    let result = std::thread::scope(|scope| -> io::Result<Option<Hash>> {
        let whole = scope.spawn(move || {
            let mut h = Sha256::new();
            for buf in hasher_rx {
                h.update(&buf);
                let _ = to_reader.send(buf);
            }
            let digest: Hash = h.finalize().into();
            digest
        });
        let outcome = (|| -> io::Result<bool> {
            loop {
                let mut buf = pool.recv().map_err(io::Error::other)?;
                buf.clear();
                buf.append(&mut carry);
                // One byte of lookahead tells whether a text cut lands inside
                // a character.
                fill(file, &mut buf, c + 1)?;
                if buf.is_empty() {
                    return Ok(true);
                }
                let mut cut = c.min(buf.len());
                if text {
                    cut = text_cut(&buf, cut);
                    if simdutf8::basic::from_utf8(&buf[..cut]).is_err() {
                        if diverged {
                            return Ok(false);
                        }
                        text = false;
                        cut = c.min(buf.len());
                    } else if cut < c && cut < buf.len() {
                        diverged = true;
                    }
                }
                carry.extend_from_slice(&buf[cut..]);
                buf.truncate(cut);
                offsets.push(offset);
                hashes.push(sha256(&buf));
                offset += cut as u64;
                to_hasher.send(buf).map_err(io::Error::other)?;
            }
        })();
        drop(to_hasher);
        let digest = whole.join().map_err(|_| io::Error::other("hasher thread panicked"))?;
        Ok(outcome?.then_some(digest))
    })?;

    let Some(sha256) = result else { return Ok(None) };
    let root = root_of(&hashes);
    let kind = if text { Kind::Text } else { Kind::Binary };
    Ok(Some(FileIndex {
        stamp: Stamp { size: offset, ..stamp },
        kind,
        chunk_size,
        offsets,
        hashes,
        sha256,
        root,
        published_as: None,
        published_end: None,
    }))
}

/// Where a text chunk of at most `cut` bytes ends: at `cut`, or up to three
/// bytes earlier so the next chunk starts on a character's first byte.
fn text_cut(buf: &[u8], cut: usize) -> usize {
    if cut >= buf.len() {
        return cut; // end of file: nothing follows
    }
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    (cut.saturating_sub(3)..=cut).rev().find(|&b| !is_continuation(buf[b])).unwrap_or(cut)
}

/// Reads until `buf` holds `want` bytes or the file ends.
fn fill(file: &mut At<'_>, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    while buf.len() < want {
        let n = (&mut *file).take((want - buf.len()) as u64).read_to_end(buf)?;
        if n == 0 {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(bytes: &[u8], c: u32) -> FileIndex {
        let dir = std::env::temp_dir().join(format!("cc-index-{}", fastrand::u64(..)));
        std::fs::write(&dir, bytes).unwrap();
        let index = build(&File::open(&dir).unwrap(), c).unwrap();
        std::fs::remove_file(&dir).unwrap();
        index
    }

    fn chunks_of(bytes: &[u8], index: &FileIndex) -> Vec<Vec<u8>> {
        (0..index.chunks())
            .map(|i| {
                let (o, l) = index.span(i);
                bytes[o as usize..o as usize + l].to_vec()
            })
            .collect()
    }

    #[test]
    fn empty_file_is_text_with_no_chunks() {
        let index = index_of(b"", 4096);
        assert_eq!(index.kind, Kind::Text);
        assert_eq!(index.chunks(), 0);
        assert_eq!(index.sha256, sha256(b""));
        assert_eq!(index.root, sha256(b""));
    }

    #[test]
    fn text_chunks_end_on_character_boundaries() {
        // 4095 ASCII bytes then a 4-byte emoji: the cut at 4096 falls inside it.
        let mut text = "a".repeat(4095);
        text.push_str("😀中文");
        let index = index_of(text.as_bytes(), 4096);
        assert_eq!(index.kind, Kind::Text);
        assert_eq!(index.offsets, vec![0, 4095]);
        for chunk in chunks_of(text.as_bytes(), &index) {
            assert!(std::str::from_utf8(&chunk).is_ok());
        }
        assert_eq!(index.sha256, sha256(text.as_bytes()));
    }

    #[test]
    fn binary_chunks_are_fixed_size_even_after_a_text_prefix() {
        let mut bytes = "é".repeat(3000).into_bytes(); // 6000 bytes, cut at 4095 as text
        bytes.push(0xFF);
        let index = index_of(&bytes, 4096);
        assert_eq!(index.kind, Kind::Binary);
        assert_eq!(index.offsets, vec![0, 4096]);
        assert_eq!(index.hashes[0], sha256(&bytes[..4096]));
        assert_eq!(index.root, root_of(&index.hashes));
    }

    #[test]
    fn overlong_and_surrogate_encodings_are_binary() {
        assert_eq!(index_of(&[0xC0, 0xAF], 4096).kind, Kind::Binary);
        assert_eq!(index_of(&[0xED, 0xA0, 0x80], 4096).kind, Kind::Binary);
    }

    #[test]
    fn persisted_form_round_trips() {
        let index = index_of(&[1, 2, 3, 4, 5], 4096);
        let json = serde_json::to_string(&index).unwrap();
        assert_eq!(serde_json::from_str::<FileIndex>(&json).unwrap(), index);
    }
}
