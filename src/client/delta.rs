//! Deltas between versions of a file: which chunks of a new manifest are
//! already on this side, so that only the others cross the network (like
//! zsync, from digests both sides already have, but only at the same
//! offsets: a file that grows or changes in place keeps its boundaries, and
//! no rolling hash is needed to find them).
//!
//! Two sources: the chunks a download verified before the file changed on
//! the server ([`carry`], pure: the digests decide, no byte is read), and an
//! existing output file that `get --update` brings to the new version
//! ([`reuse`]: read once, a chunk at a time, and copied into the part file
//! where it matches). The old output is only ever read: the part file is
//! renamed over it once every chunk is verified, so a kill at any moment
//! leaves either the old file or the whole new one.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use super::error::ClientError;
use super::manifest::Manifest;
use super::part::PartFile;
use crate::protocol::sha256;

/// The chunks verified under `old` (`have`) that `new` repeats: the same
/// index, offset, length and digest. Their bytes are already where `new`
/// wants them, and proven; every other chunk of `new` is to fetch.
pub(super) fn carry(old: &Manifest, have: &[bool], new: &Manifest) -> Vec<bool> {
    (0..new.chunks)
        .map(|i| i < old.chunks && have[i as usize] && old.span(i) == new.span(i) && old.hash(i) == new.hash(i))
        .collect()
}

/// What [`reuse`] took from the existing file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reused {
    pub chunks: u64,
    pub bytes: u64,
}

/// Reads `source` (the existing output) at the new manifest's spans and
/// copies every chunk whose SHA-256 is the manifest's digest into `part`,
/// at the same offset, marking it in `have`. Chunks already in `have` (from
/// a part file resumed) are not read again, nor are spans past the end of
/// `source` (it is shorter than the new version). Memory is one chunk
/// (at most 16 MiB) whatever the file's size.
///
/// The bytes written are the bytes hashed, from one read: a `source` that
/// changes meanwhile can only make a chunk miss, never put an unproven one
/// in the part file.
pub(super) fn reuse(source: &Path, part: &PartFile, m: &Manifest, have: &mut [bool]) -> Result<Reused, ClientError> {
    let on = |e| ClientError::file(source.to_owned(), e);
    let file = File::open(source).map_err(on)?;
    let len = file.metadata().map_err(on)?.len();
    let mut buf = Vec::new();
    let mut reused = Reused::default();
    for i in 0..m.chunks {
        if have[i as usize] {
            continue;
        }
        let (off, size) = m.span(i);
        if off + size as u64 > len {
            break; // offsets ascend: every later span is past the end too
        }
        buf.resize(size, 0);
        if !read_span(&file, &mut buf, off).map_err(on)? || sha256(&buf) != m.hash(i) {
            continue;
        }
        part.file.write_all_at(&buf, off).map_err(|e| ClientError::file(part.part_path.clone(), e))?;
        have[i as usize] = true;
        reused.chunks += 1;
        reused.bytes += size as u64;
    }
    Ok(reused)
}

/// Fills `buf` from `off`; `false` when the file ended first (it shrank
/// since its length was read).
fn read_span(file: &File, buf: &mut [u8], off: u64) -> io::Result<bool> {
    match file.read_exact_at(buf, off) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{hex, root_of};

    /// A binary manifest of `bytes` in 4 KiB chunks, or a text one with
    /// these `offsets`.
    fn manifest(bytes: &[u8], offsets: Option<Vec<u64>>) -> Manifest {
        let c = 4096usize;
        let starts: Vec<u64> =
            offsets.clone().unwrap_or_else(|| (0..bytes.len()).step_by(c).map(|o| o as u64).collect());
        let digests: Vec<_> = starts
            .iter()
            .enumerate()
            .map(|(k, &s)| {
                let end = starts.get(k + 1).map_or(bytes.len(), |&e| e as usize);
                sha256(&bytes[s as usize..end])
            })
            .collect();
        let json = serde_json::json!({
            "name": "f", "size": bytes.len(), "kind": if offsets.is_some() { "text" } else { "binary" },
            "chunk_size": c, "chunks": digests.len(), "version": hex(&root_of(&digests))[..16],
            "sha256": hex(&sha256(bytes)), "root": hex(&root_of(&digests)),
            "hashes": digests.iter().map(|d| hex(d)).collect::<Vec<_>>(), "offsets": offsets,
        });
        Manifest::parse(json.to_string().as_bytes()).unwrap()
    }

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| rng.u8(..)).collect()
    }

    #[test]
    fn an_append_keeps_every_whole_chunk_and_drops_the_partial_last_one() {
        let old = bytes(3 * 4096 + 100, 1);
        let mut new = old.clone();
        new.extend_from_slice(&bytes(5000, 2));
        let (m_old, m_new) = (manifest(&old, None), manifest(&new, None));
        let kept = carry(&m_old, &[true; 4], &m_new);
        assert_eq!(kept, [true, true, true, false, false]);
        // Only what was verified is kept.
        assert_eq!(carry(&m_old, &[true, false, true, true], &m_new), [true, false, true, false, false]);
    }

    #[test]
    fn a_change_in_place_or_a_shift_drops_exactly_the_chunks_it_touches() {
        let old = bytes(5 * 4096, 3);
        let mut new = old.clone();
        new[2 * 4096 + 7] ^= 1;
        assert_eq!(carry(&manifest(&old, None), &[true; 5], &manifest(&new, None)), [true, true, false, true, true]);
        // A shorter file: the chunks past its end are gone, the last one shortened.
        let short = &old[..2 * 4096 + 10];
        assert_eq!(carry(&manifest(&old, None), &[true; 5], &manifest(short, None)), [true, true, false]);
    }

    #[test]
    fn text_chunks_match_only_at_the_same_offset_and_length() {
        let old = b"aaaa".repeat(2048); // 8 KiB of text
        let m_old = manifest(&old, Some(vec![0, 4096]));
        // The same bytes, cut elsewhere: nothing matches, although every
        // chunk is a run of the same letter.
        let m_new = manifest(&old, Some(vec![0, 4000, 8000]));
        assert_eq!(carry(&m_old, &[true, true], &m_new), [false, false, false]);
        assert_eq!(carry(&m_old, &[true, true], &manifest(&old, Some(vec![0, 4096]))), [true, true]);
    }

    #[test]
    fn reuse_copies_the_matching_spans_of_a_shorter_or_longer_file() {
        let dir = tempfile::tempdir().unwrap();
        let new = bytes(6 * 4096 + 300, 4);
        let m = manifest(&new, None);
        for (old, want) in [
            // Shorter (the version before an append): 6 whole chunks.
            (new[..6 * 4096 + 10].to_vec(), vec![true, true, true, true, true, true, false]),
            // Longer, one chunk changed in place.
            (
                {
                    let mut o = new.clone();
                    o[4096] ^= 0xff;
                    o.extend_from_slice(b"tail");
                    o
                },
                vec![true, false, true, true, true, true, true],
            ),
            // Empty.
            (Vec::new(), vec![false; 7]),
        ] {
            let source = dir.path().join("out");
            std::fs::write(&source, &old).unwrap();
            let (part, _) = PartFile::open(&dir.path().join("new"), &m).unwrap();
            let mut have = vec![false; 7];
            let got = reuse(&source, &part, &m, &mut have).unwrap();
            assert_eq!(have, want);
            let n = want.iter().filter(|&&h| h).count() as u64;
            let size = (0..7).filter(|&i| want[i]).map(|i| m.span(i as u64).1 as u64).sum();
            assert_eq!(got, Reused { chunks: n, bytes: size });
            let on_disk = std::fs::read(&part.part_path).unwrap();
            for i in (0..7).filter(|&i| want[i]) {
                let (off, len) = m.span(i as u64);
                let span = off as usize..off as usize + len;
                assert_eq!(on_disk[span.clone()], new[span], "chunk {i}");
            }
            drop(part);
            crate::client::part::remove(&dir.path().join("new"));
        }
    }
}
