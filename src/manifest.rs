//! The manifest's JSON: the whole one (`GET /api/manifest`, every chunk
//! digest) and the short one in a stream's `meta` event.
//!
//! A whole manifest grows with the file (a 4 GiB file at 4 KiB chunks lists
//! a million digests, ~70 MB), so it is serialized once per index version,
//! on the blocking pool, and the bytes are shared by every request
//! ([`crate::store::IndexStore::manifest`]). Only the `name` differs between
//! requests (two names can reach one file through a symlink), so the shared
//! bytes are everything after it: a response is `{"name":<name>,` followed by
//! the shared tail, sent as two buffers without copying the tail.

use actix_web::web::Bytes;
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use crate::index::{hex, FileIndex, Hash, Kind};

/// The manifest; `hashes`/`offsets` are left out of the `meta` event.
#[derive(Serialize)]
pub struct Manifest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    size: u64,
    kind: Kind,
    chunk_size: u32,
    chunks: u64,
    version: String,
    sha256: String,
    root: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hashes: Option<HexList<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offsets: Option<&'a [u64]>,
}

impl<'a> Manifest<'a> {
    fn of(name: Option<&'a str>, index: &'a FileIndex, full: bool) -> Self {
        Manifest {
            name,
            size: index.size(),
            kind: index.kind,
            chunk_size: index.chunk_size,
            chunks: index.chunks(),
            version: index.version(),
            sha256: hex(&index.sha256),
            root: hex(&index.root),
            hashes: full.then_some(HexList(&index.hashes)),
            offsets: (full && index.kind == Kind::Text).then_some(&index.offsets[..]),
        }
    }
}

/// The `meta` event's data: the manifest without digests or offsets.
pub fn meta(name: &str, index: &FileIndex) -> serde_json::Result<String> {
    serde_json::to_string(&Manifest::of(Some(name), index, false))
}

/// Everything of the whole manifest but its `name`: `"size":…}` (the
/// opening brace and the name are per request; see [`with_name`]).
pub fn tail(index: &FileIndex) -> serde_json::Result<Bytes> {
    let mut json = serde_json::to_vec(&Manifest::of(None, index, true))?;
    json.remove(0); // the `{`
    Ok(Bytes::from(json))
}

/// The server's limits a client must respect, sent in the whole manifest
/// (they come from the server's flags, not the index, so they are per
/// request like the name): the most chunks per range request, and the
/// longest `need` list.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_range: u64,
    pub max_need: usize,
}

/// The parts of a whole manifest for `name`, given its shared tail.
pub fn with_name(name: &str, limits: Limits, tail: &Bytes) -> serde_json::Result<[Bytes; 2]> {
    let head = format!(
        "{{\"name\":{},\"max_range\":{},\"max_need\":{},",
        serde_json::to_string(name)?,
        limits.max_range,
        limits.max_need
    );
    Ok([Bytes::from(head), tail.clone()])
}

/// Digests as a JSON array of hex strings, written one by one (no vector of
/// a million strings in between).
struct HexList<'a>(&'a [Hash]);

impl Serialize for HexList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for h in self.0 {
            seq.serialize_element(&hex(h))?;
        }
        seq.end()
    }
}
