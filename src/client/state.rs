//! The on-disk side of a download: `OUT.part` (the file being filled, at its
//! final size from the start) and `OUT.part.json` (which server version it
//! belongs to). Which chunks are already verified is not trusted to the state
//! file: on resume every chunk in `OUT.part` is hashed against the manifest,
//! so a kill at any instant, or a damaged part file, never yields a wrong
//! result and never re-downloads a chunk that is intact on disk.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Manifest;
use crate::index::sha256;

/// What a part file must match to be resumed.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub version: String,
    pub root: String,
    pub size: u64,
    pub chunk_size: u32,
}

impl Identity {
    pub fn of(m: &Manifest) -> Self {
        Identity {
            name: m.name.clone(),
            version: m.version.clone(),
            root: m.root.clone(),
            size: m.size,
            chunk_size: m.chunk_size,
        }
    }
}

pub struct PartFile {
    pub file: File,
    part_path: PathBuf,
    state_path: PathBuf,
}

/// How an existing part file was taken up.
pub enum Resumed {
    Fresh,
    /// Same version: `have` marks the chunks found intact on disk.
    Found {
        have: Vec<bool>,
    },
    /// A part file of another version was discarded.
    Discarded {
        old_version: String,
    },
}

impl PartFile {
    pub fn open(out: &Path, manifest: &Manifest) -> io::Result<(PartFile, Resumed)> {
        let part_path = with_suffix(out, ".part");
        let state_path = with_suffix(out, ".part.json");
        let identity = Identity::of(manifest);
        let previous: Option<Identity> = std::fs::read(&state_path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let resumable = previous.as_ref() == Some(&identity) && part_path.exists();
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(!resumable).open(&part_path)?;
        file.set_len(manifest.size)?;
        let part = PartFile { file, part_path, state_path };
        let resumed = match previous {
            _ if resumable => Resumed::Found { have: part.scan(manifest)? },
            Some(old) => Resumed::Discarded { old_version: old.version },
            None => Resumed::Fresh,
        };
        std::fs::write(&part.state_path, serde_json::to_vec(&identity)?)?;
        Ok((part, resumed))
    }

    /// Hashes every chunk on disk; intact ones count as verified.
    fn scan(&self, m: &Manifest) -> io::Result<Vec<bool>> {
        let mut buf = Vec::new();
        (0..m.chunks)
            .map(|i| {
                let (off, len) = m.span(i);
                buf.resize(len, 0);
                self.file.read_exact_at(&mut buf, off)?;
                Ok(sha256(&buf) == m.hash(i))
            })
            .collect()
    }

    /// Moves the verified file to its final name and removes the state file.
    pub fn finish(self, out: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.part_path, out)?;
        let _ = std::fs::remove_file(&self.state_path);
        Ok(())
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
