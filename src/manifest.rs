//! The manifest's JSON bytes (its shape is [`crate::protocol::ManifestRef`]):
//! the whole one (`GET /api/manifest`, every chunk
//! digest) and the short one in a stream's `meta` event.
//!
//! A whole manifest grows with the file (a 4 GiB file at 4 KiB chunks lists
//! a million digests, ~70 MB), so it is serialized once per index version,
//! on the blocking pool, and the bytes are shared by every request
//! ([`crate::store::IndexStore::manifest`]). Only the `name` differs between
//! requests (two names can reach one file through a symlink), so the shared
//! bytes are everything after it: a response is `{"name":<name>,` followed by
//! the shared tail, sent as two buffers without copying the tail.

use crate::index::FileIndex;
pub use crate::protocol::Limits;
use crate::protocol::ManifestRef;
use actix_web::web::Bytes;

/// The `meta` event's data: the manifest without digests or offsets.
pub fn meta(name: &str, index: &FileIndex) -> serde_json::Result<String> {
    serde_json::to_string(&ManifestRef::of(Some(name), index, false))
}

/// Everything of the whole manifest but its `name`: `"size":…}` (the
/// opening brace and the name are per request; see [`with_name`]).
pub fn tail(index: &FileIndex) -> serde_json::Result<Bytes> {
    let mut json = serde_json::to_vec(&ManifestRef::of(None, index, true))?;
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
