//! The durable layout of a published (live) text: one file per publication
//! under `<index-dir>/live/`, a header line and then one JSON line per
//! sealed chunk (offset, length, SHA-256), appended and flushed before the
//! chunk is announced, and an end line when the publication ends.
//!
//! It is what makes a publication survive a crash or a restart (the server
//! reopens unfinished layouts, and cuts the file back to the last sealed
//! chunk), and it stays the finished file's index: chunk boundaries of a
//! live text fall where the producer paused, not where an indexing pass of
//! the finished file would cut, so the store asks here before it hashes a
//! file again ([`finished_index`]), and viewers keep the chunks and `root`
//! they saw.
//!
//! A line cut short by a crash is never trusted: reading stops at the first
//! line that does not parse, and a reopened layout is truncated there.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::index::{FileIndex, Stamp};
use super::root::FileId;
use crate::protocol::digest::serde_hex;
use crate::protocol::{hex, root_of, sha256, Hash, Kind, LiveState};

/// Bumped when the lines below change meaning.
pub const FORMAT: u32 = 1;

/// The first line: what is published, where, under which id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// The served root (canonical) and the file's canonical path in it.
    pub root: PathBuf,
    pub rel: String,
    /// The publication's id, its `version` while live (16 hex digits).
    pub id: String,
    pub chunk_size: u32,
    /// The file appended to, so a file replaced behind the layout's back is
    /// never described by it.
    pub file: FileId,
}

/// A sealed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub off: u64,
    pub len: u64,
    #[serde(with = "serde_hex::one")]
    pub sha256: Hash,
}

/// The last line of an ended publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub end: LiveState,
    /// The finished file as it was then; a later change makes it a new
    /// version that is indexed as usual.
    pub stamp: Stamp,
    #[serde(with = "serde_hex::one")]
    pub sha256: Hash,
}

/// Where the layout of `rel` under `root` lives in the index directory.
pub fn path_for(index_dir: &Path, root: &Path, rel: &str) -> PathBuf {
    let key = format!("{}\0{rel}", root.display());
    index_dir.join("live").join(format!("{}.layout", &hex(&sha256(key.as_bytes()))[..32]))
}

/// Every layout file in the index directory.
pub fn all(index_dir: &Path) -> Vec<PathBuf> {
    let Ok(listing) = std::fs::read_dir(index_dir.join("live")) else { return Vec::new() };
    listing.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "layout")).collect()
}

/// A layout open for appending.
pub struct Writer {
    file: File,
}

impl Writer {
    /// Starts a new layout at `path` (replacing one a finished publication
    /// of the same name left), flushed with its folder before it is used.
    pub fn create(path: &Path, header: &Header) -> io::Result<Writer> {
        let dir = path.parent().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension(format!("tmp.{}.{:x}", std::process::id(), fastrand::u64(..)));
        let mut line = serde_json::to_vec(header)?;
        line.push(b'\n');
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            file.write_all(&line)?;
            file.sync_data()?;
            std::fs::rename(&tmp, path)?;
            File::open(dir)?.sync_all()?;
            locked(OpenOptions::new().append(true).open(path)?)
        })();
        match written {
            Ok(file) => Ok(Writer { file }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Takes the layout at `path` to write it again (after a restart, or
    /// from an instance that is gone): fails with `WouldBlock` while another
    /// process writes it. Read it with [`load`] after this, not before, and
    /// [`Writer::cut`] it to its intact part.
    pub fn take(path: &Path) -> io::Result<Writer> {
        Ok(Writer { file: locked(OpenOptions::new().append(true).open(path)?)? })
    }

    /// Cuts the layout back to its last intact line ([`Loaded::intact`]).
    pub fn cut(&mut self, intact: u64) -> io::Result<()> {
        self.file.set_len(intact)?;
        self.file.sync_data()
    }

    pub fn seal(&mut self, chunk: &Sealed) -> io::Result<()> {
        self.line(serde_json::to_vec(chunk)?)
    }

    pub fn end(&mut self, ended: &Ended) -> io::Result<()> {
        self.line(serde_json::to_vec(ended)?)
    }

    /// One whole line in one write, flushed before the caller announces it.
    fn line(&mut self, mut line: Vec<u8>) -> io::Result<()> {
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
}

/// Takes the layout's lock, which its writer holds for as long as it
/// writes it (the lock goes with the descriptor, so a process that dies
/// drops it): two instances sharing an index directory never write one
/// layout at once, and one takes over a publication only when the other
/// is gone.
fn locked(file: File) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    // SAFETY: a live descriptor; flock only reads its arguments.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// A layout as read back.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub header: Header,
    pub chunks: Vec<Sealed>,
    pub ended: Option<Ended>,
    /// Bytes of the file up to the end of its last intact line.
    pub intact: u64,
}

/// Reads a layout; lines past the first torn or inconsistent one (a chunk
/// that does not start where the previous ended, or is empty) are left out.
pub fn load(path: &Path) -> io::Result<Loaded> {
    let bytes = std::fs::read(path)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a chunkcast layout");
    let first = memchr::memchr(b'\n', &bytes).ok_or_else(bad)?;
    let header: Header = serde_json::from_slice(&bytes[..first]).map_err(|_| bad())?;
    if header.format != FORMAT {
        return Err(bad());
    }
    let mut loaded =
        Loaded { path: path.to_owned(), header, chunks: Vec::new(), ended: None, intact: first as u64 + 1 };
    let (ended, used) = more(&bytes[first + 1..], &mut loaded.chunks);
    loaded.ended = ended;
    loaded.intact += used as u64;
    Ok(loaded)
}

/// Parses the whole lines of `bytes` (a layout's tail) onto `chunks`, up to
/// the first one that is torn or does not follow them; the end, if it came,
/// and how many bytes were used. A follower on another instance calls it
/// on what was appended since it last looked.
pub fn more(bytes: &[u8], chunks: &mut Vec<Sealed>) -> (Option<Ended>, usize) {
    let mut size = chunks.last().map_or(0, |c| c.off + c.len);
    let mut at = 0;
    while let Some(n) = memchr::memchr(b'\n', &bytes[at..]) {
        // Two tries rather than an untagged enum: serde's untagged
        // buffering cannot hold the stamp's u128.
        let line = &bytes[at..at + n];
        if let Ok(c) = serde_json::from_slice::<Sealed>(line) {
            if c.off != size || c.len == 0 {
                break;
            }
            size += c.len;
            chunks.push(c);
        } else {
            match serde_json::from_slice::<Ended>(line) {
                Ok(e) if e.stamp.size == size => return (Some(e), at + n + 1),
                _ => break,
            }
        }
        at += n + 1;
    }
    (None, at)
}

impl Loaded {
    /// The finished file's index, as the publication's viewers saw it.
    pub fn index(&self, ended: &Ended) -> FileIndex {
        let hashes: Vec<Hash> = self.chunks.iter().map(|c| c.sha256).collect();
        FileIndex {
            stamp: ended.stamp,
            kind: Kind::Text,
            chunk_size: self.header.chunk_size,
            offsets: self.chunks.iter().map(|c| c.off).collect(),
            root: root_of(&hashes),
            hashes,
            sha256: ended.sha256,
            published_as: Some(self.header.id.clone()),
            published_end: Some(ended.end),
        }
    }
}

/// The index of `rel` if it is a finished publication whose file is still
/// exactly as it ended (same file, size and mtime, same chunk size).
pub fn finished_index(
    index_dir: &Path,
    root: &Path,
    rel: &str,
    id: FileId,
    stamp: Stamp,
    chunk_size: u32,
) -> Option<FileIndex> {
    let loaded = load(&path_for(index_dir, root, rel)).ok()?;
    let ended = loaded.ended?;
    let h = &loaded.header;
    let same = h.rel == rel && h.root == root && h.file == id && h.chunk_size == chunk_size && ended.stamp == stamp;
    same.then(|| loaded.index(&ended))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT,
            root: "/srv".into(),
            rel: "a.txt".into(),
            id: "0123456789abcdef".into(),
            chunk_size: 4096,
            file: FileId { dev: 1, ino: 2 },
        }
    }

    #[test]
    fn a_torn_line_is_never_trusted_and_is_cut_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), Path::new("/srv"), "a.txt");
        let mut w = Writer::create(&path, &header()).unwrap();
        w.seal(&Sealed { off: 0, len: 5, sha256: sha256(b"hello") }).unwrap();
        w.seal(&Sealed { off: 5, len: 1, sha256: sha256(b"!") }).unwrap();
        drop(w);
        let whole = std::fs::read(&path).unwrap();
        // A crash in the middle of the second record.
        std::fs::write(&path, &whole[..whole.len() - 10]).unwrap();
        let mut w = Writer::take(&path).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.chunks.len(), 1);
        w.cut(loaded.intact).unwrap();
        // While one writer holds it, nobody else takes it.
        assert_eq!(Writer::take(&path).err().map(|e| e.kind()), Some(io::ErrorKind::WouldBlock));
        w.seal(&Sealed { off: 5, len: 2, sha256: sha256(b"!!") }).unwrap();
        let stamp = Stamp { size: 7, mtime_ns: 9 };
        w.end(&Ended { end: LiveState::Complete, stamp, sha256: sha256(b"hello!!") }).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.chunks.iter().map(|c| c.len).collect::<Vec<_>>(), [5, 2]);
        assert!(loaded.ended.is_some());
        let index = finished_index(dir.path(), Path::new("/srv"), "a.txt", FileId { dev: 1, ino: 2 }, stamp, 4096);
        let index = index.unwrap();
        assert_eq!(index.offsets, [0, 5]);
        assert_eq!(index.root, root_of(&[sha256(b"hello"), sha256(b"!!")]));
        // Another file, another size, another chunk size: not this layout's.
        let other = FileId { dev: 1, ino: 3 };
        assert!(finished_index(dir.path(), Path::new("/srv"), "a.txt", other, stamp, 4096).is_none());
        let grown = Stamp { size: 8, mtime_ns: 9 };
        assert!(
            finished_index(dir.path(), Path::new("/srv"), "a.txt", FileId { dev: 1, ino: 2 }, grown, 4096).is_none()
        );
    }

    #[test]
    fn chunks_that_do_not_tile_end_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.layout");
        let mut w = Writer::create(&path, &header()).unwrap();
        w.seal(&Sealed { off: 0, len: 5, sha256: [0; 32] }).unwrap();
        w.seal(&Sealed { off: 6, len: 5, sha256: [0; 32] }).unwrap();
        assert_eq!(load(&path).unwrap().chunks.len(), 1);
    }
}
