//! The on-disk side of a download: `OUT.part` (the file being filled, at its
//! final size from the start) and `OUT.part.json` (which server version it
//! belongs to). Which chunks are already verified is not trusted to the state
//! file: on resume every chunk in `OUT.part` is hashed against the manifest,
//! so a kill at any instant, or a damaged part file, never yields a wrong
//! result and never re-downloads a chunk that is intact on disk. For the
//! same reason a part file of an older version is not thrown away: the
//! chunks the new manifest repeats at the same offsets hash right and are
//! kept, the others are fetched again.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sha2::{Digest as _, Sha256};

use super::error::ClientError;
use super::manifest::Manifest;
use crate::protocol::{hex, sha256};

/// What a part file must match to be resumed.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartVersion {
    pub name: String,
    pub version: String,
    pub root: String,
    pub size: u64,
    pub chunk_size: u32,
    /// A live publication's part file: known by the publication's id
    /// (`version`) alone, as its size and root grow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
}

impl PartVersion {
    pub fn of(m: &Manifest) -> Self {
        PartVersion {
            name: m.name.clone(),
            version: m.version.clone(),
            root: m.root.clone(),
            size: m.size,
            chunk_size: m.chunk_size,
            live: false,
        }
    }

    /// A live publication's: its name, id and chunk size, nothing that grows.
    pub fn live(m: &Manifest) -> Self {
        PartVersion { root: String::new(), size: 0, live: true, ..PartVersion::of(m) }
    }
}

pub struct PartFile {
    pub file: File,
    pub part_path: PathBuf,
    state_path: PathBuf,
}

/// How an existing part file was taken up.
pub enum Resumed {
    Fresh,
    /// Same version: `have` marks the chunks found intact on disk.
    Found {
        have: Vec<bool>,
    },
    /// A part file of another version: `have` marks its chunks that the
    /// new manifest repeats (intact, at the same offset), kept.
    Carried {
        have: Vec<bool>,
        old_version: String,
    },
}

impl PartFile {
    pub fn open(out: &Path, manifest: &Manifest) -> Result<(PartFile, Resumed), ClientError> {
        let part_path = with_suffix(out, ".part");
        let state_path = with_suffix(out, ".part.json");
        let on = |path: &Path| {
            let path = path.to_owned();
            move |e: io::Error| ClientError::file(path, e)
        };
        let version = PartVersion::of(manifest);
        let previous: Option<PartVersion> =
            std::fs::read(&state_path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        // Any part file whose state file is ours is worth scanning: every
        // chunk is checked against this manifest, whatever version wrote it.
        // Without a state file, `OUT.part` is not ours to read.
        let resumable = previous.is_some() && part_path.exists();
        check_space(&part_path, resumable, manifest.size)?;
        let file = open_part(&part_path, resumable).map_err(on(&part_path))?;
        file.set_len(manifest.size).map_err(on(&part_path))?;
        let part = PartFile { file, part_path, state_path };
        let resumed = match previous {
            Some(old) if resumable => {
                let have = scan(&part.file, manifest).map_err(on(&part.part_path))?;
                if old == version {
                    Resumed::Found { have }
                } else {
                    Resumed::Carried { have, old_version: old.version }
                }
            }
            _ => Resumed::Fresh,
        };
        part.write_state(&version)?;
        Ok((part, resumed))
    }

    /// The file changed on the server during the download: the part file
    /// takes the new version's size and state. Chunks the new version
    /// repeats stay where they are (`super::delta::carry` says which); a kill
    /// at any moment is safe, as a rerun scans whatever is on disk.
    pub fn retarget(&self, manifest: &Manifest) -> Result<(), ClientError> {
        check_space(&self.part_path, true, manifest.size)?;
        self.file.set_len(manifest.size).map_err(|e| ClientError::file(self.part_path.clone(), e))?;
        self.write_state(&PartVersion::of(manifest))
    }

    /// Whole or not at all: a kill mid-write must not leave a state file
    /// that no longer parses, which would throw the verified chunks away.
    fn write_state(&self, version: &PartVersion) -> Result<(), ClientError> {
        let on = |e| ClientError::file(self.state_path.clone(), e);
        let json = serde_json::to_vec(version).map_err(io::Error::from).map_err(on)?;
        crate::safefile::replace(&self.state_path, &json, 0o644).map_err(on)
    }

    /// `OUT.part` of a live publication, which grows as chunks come: kept
    /// as it is when its state file names the same publication (`true`:
    /// the caller checks its chunks against the manifest), else emptied.
    pub fn open_live(out: &Path, manifest: &Manifest) -> Result<(PartFile, bool), ClientError> {
        let part_path = with_suffix(out, ".part");
        let state_path = with_suffix(out, ".part.json");
        let version = PartVersion::live(manifest);
        let previous: Option<PartVersion> =
            std::fs::read(&state_path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let resumable = previous.as_ref() == Some(&version) && part_path.exists();
        let file = open_part(&part_path, resumable).map_err(|e| ClientError::file(part_path.clone(), e))?;
        let json = serde_json::to_vec(&version).map_err(io::Error::from);
        json.and_then(|json| crate::safefile::replace(&state_path, &json, 0o644))
            .map_err(|e| ClientError::file(state_path.clone(), e))?;
        Ok((PartFile { file, part_path, state_path }, resumable))
    }

    /// The whole-file SHA-256 of the part file, read back from disk.
    pub fn read_back_sha256(&self, size: u64) -> Result<String, ClientError> {
        file_sha256(&self.file, size).map_err(|e| ClientError::file(self.part_path.clone(), e))
    }

    /// Moves the verified file to its final name and removes the state file.
    pub fn finish(self, out: &Path) -> Result<(), ClientError> {
        self.file.sync_all().map_err(|e| ClientError::file(self.part_path.clone(), e))?;
        std::fs::rename(&self.part_path, out).map_err(|e| ClientError::file(out.to_owned(), e))?;
        forget_state(out);
        Ok(())
    }
}

/// Removes the part file and state file of a download into `out`; the part
/// file's path when there was one.
pub fn remove(out: &Path) -> Option<PathBuf> {
    let part = with_suffix(out, ".part");
    let had = std::fs::remove_file(&part).is_ok();
    forget_state(out);
    had.then_some(part)
}

/// Removes the state file of a download into `out`, if one is left.
pub fn forget_state(out: &Path) {
    let _ = std::fs::remove_file(with_suffix(out, ".part.json"));
}

/// Whether the file at `path` already is the manifest's version (every
/// chunk matches its digest): the result of an earlier run of the same
/// download, which needs no `--force` and no transfer.
pub fn is_this_version(path: &Path, m: &Manifest) -> Result<bool, ClientError> {
    let on = |e| ClientError::file(path.to_owned(), e);
    let file = File::open(path).map_err(on)?;
    if file.metadata().map_err(on)?.len() != m.size {
        return Ok(false);
    }
    // Stops at the first chunk that differs: `get --update` of a file
    // changed in place reads the rest once, when it reuses what matches.
    let mut buf = Vec::new();
    for i in 0..m.chunks {
        if !chunk_matches(&file, m, i, &mut buf).map_err(on)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Refuses to start a download its filesystem cannot hold, before the part
/// file is created: it is made at its final size at once (sparse), so a
/// disk that fills up would otherwise only show half-way. What a resumed
/// part file already holds counts as written.
fn check_space(part: &Path, resumed: bool, size: u64) -> Result<(), ClientError> {
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::MetadataExt as _;
    let held = if resumed { std::fs::metadata(part).map_or(0, |m| m.blocks().saturating_mul(512)) } else { 0 };
    let needed = size.saturating_sub(held);
    let dir = match part.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(dir_c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return Ok(()) };
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs reads the NUL-terminated path and fills the struct we own.
    if unsafe { libc::statvfs(dir_c.as_ptr(), &mut st) } != 0 {
        return Ok(()); // the kernel cannot say: the writes will tell
    }
    let free = (st.f_bavail as u64).saturating_mul(st.f_frsize as u64);
    if needed > free {
        return Err(ClientError::NoSpace { path: part.to_owned(), needed, free });
    }
    Ok(())
}

/// The whole-file SHA-256 of an existing output, read back, which must be
/// the manifest's (`--verify-sha256` on a file that already is this version).
pub fn checked_sha256(path: &Path, m: &Manifest) -> Result<String, ClientError> {
    let on = |e| ClientError::file(path.to_owned(), e);
    let sha = file_sha256(&File::open(path).map_err(on)?, m.size).map_err(on)?;
    if sha != m.sha256 {
        return Err(ClientError::Verify(format!("file digest {sha} differs from the manifest's {}", m.sha256)));
    }
    Ok(sha)
}

/// The SHA-256 of the first `size` bytes of `file`, read in 1 MiB pieces.
fn file_sha256(file: &File, size: u64) -> io::Result<String> {
    let mut whole = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], pos)?;
        whole.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(hex(&whole.finalize()))
}

/// Hashes every chunk of `file`; intact ones count as verified.
fn scan(file: &File, m: &Manifest) -> io::Result<Vec<bool>> {
    let mut buf = Vec::new();
    (0..m.chunks).map(|i| chunk_matches(file, m, i, &mut buf)).collect()
}

/// Whether chunk `i` of `file` hashes to the manifest's digest.
fn chunk_matches(file: &File, m: &Manifest, i: u64, buf: &mut Vec<u8>) -> io::Result<bool> {
    let (off, len) = m.span(i);
    buf.resize(len, 0);
    file.read_exact_at(buf, off)?;
    Ok(sha256(buf) == m.hash(i))
}

pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Opens `OUT.part` to read and write: kept as it is when it is resumed,
/// else emptied (or made).
fn open_part(path: &Path, resumed: bool) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(!resumed).open(path)
}
