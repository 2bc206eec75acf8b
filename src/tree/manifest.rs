//! The manifest's JSON bytes (its shape is [`ManifestRef`]):
//! the whole one (`GET /api/manifest`, every chunk
//! digest) and the short one in a stream's `meta` event.
//!
//! A whole manifest grows with the file (a 4 GiB file at 4 KiB chunks lists
//! a million digests, ~70 MB), so it is serialized once per index version,
//! on the blocking pool, and the bytes are shared by every request
//! ([`super::store::IndexStore::manifest`]). Only the `name` differs between
//! requests (two names can reach one file through a symlink), so the shared
//! bytes are everything after it: a response is `{"name":<name>,` followed by
//! the shared tail, sent as two buffers without copying the tail.

use bytes::Bytes;

use super::index::FileIndex;
use crate::protocol::{hex, Kind, Limits, ManifestRef};

/// The manifest of `index`, under `name` when given; `full` adds the
/// digests (and a text file's offsets).
pub fn manifest_of<'a>(name: Option<&'a str>, index: &'a FileIndex, full: bool) -> ManifestRef<'a> {
    ManifestRef {
        name,
        size: index.size(),
        kind: index.kind,
        chunk_size: index.chunk_size,
        chunks: index.chunks(),
        version: index.version(),
        sha256: hex(&index.sha256),
        root: hex(&index.root),
        hashes: full.then_some(&index.hashes[..]),
        offsets: (full && index.kind == Kind::Text).then_some(&index.offsets[..]),
        live: None,
        // A finished publication says how it ended.
        state: index.published_end,
    }
}

/// The `meta` event's data: the manifest without digests or offsets.
pub fn meta(name: &str, index: &FileIndex) -> serde_json::Result<String> {
    serde_json::to_string(&manifest_of(Some(name), index, false))
}

/// Everything of the whole manifest but its `name`: `"size":…}` (the
/// opening brace and the name are per request; see [`with_name`]).
pub fn tail(index: &FileIndex) -> serde_json::Result<Bytes> {
    let mut json = serde_json::to_vec(&manifest_of(None, index, true))?;
    json.remove(0); // the `{`
    Ok(Bytes::from(json))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{root_of, sha256, Manifest};
    use crate::tree::index::Stamp;

    /// A two-chunk text file, "héllo wörld" cut after "héllo ".
    fn sample() -> FileIndex {
        let text = "héllo wörld";
        let (a, b) = text.as_bytes().split_at("héllo ".len());
        let hashes = vec![sha256(a), sha256(b)];
        FileIndex {
            stamp: Stamp { size: text.len() as u64, mtime_ns: 0 },
            kind: Kind::Text,
            chunk_size: 4096,
            offsets: vec![0, a.len() as u64],
            sha256: sha256(text.as_bytes()),
            root: root_of(&hashes),
            hashes,
            published_as: None,
            published_end: None,
        }
    }

    #[test]
    fn a_whole_manifest_is_its_name_then_the_shared_tail_and_reads_back() {
        let idx = sample();
        let limits = Limits { max_range: 256, max_need: 8192 };
        let [head, tail] = with_name("a b.txt", limits, &tail(&idx).unwrap()).unwrap();
        let whole = [&head[..], &tail[..]].concat();
        let m = Manifest::parse(&whole).unwrap();
        assert_eq!((m.name.as_str(), m.size, m.chunks, m.version.as_str()), ("a b.txt", 13, 2, idx.version().as_str()));
        assert_eq!((m.max_range, m.max_need), (Some(256), Some(8192)));
        assert_eq!((m.span(0), m.span(1)), (idx.span(0), idx.span(1)));
        assert_eq!(m.digests, idx.hashes);
        assert_eq!(m.offsets.as_deref(), Some(&idx.offsets[..]));
    }

    #[test]
    fn meta_leaves_out_digests_and_offsets() {
        let meta = meta("a", &sample()).unwrap();
        assert!(meta.starts_with(r#"{"name":"a","size":13,"kind":"text","chunk_size":4096,"chunks":2,"#), "{meta}");
        assert!(!meta.contains("hashes") && !meta.contains("offsets"), "{meta}");
    }
}
