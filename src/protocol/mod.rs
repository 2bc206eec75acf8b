//! The chunkcast protocol v1 (`docs/PROTOCOL.md`), pure and shared: the
//! server writes it, `chunkcast get` and the benchmark read it. A leaf: it
//! imports nothing else from the crate and does no I/O beyond the readers
//! it is handed, so every side agrees on one copy of each rule.
//!
//! - [`limits`]: chunk sizes, the most a range or a `need` list may ask for,
//!   a signed link's parameter names.
//! - [`digest`]: SHA-256, hex, and the `root` over the chunk digests.
//! - [`layout`]: text or binary, and where chunk `i` lies.
//! - [`params`]: the strict parsers of chunk numbers, versions, rates and
//!   `need` lists, with their own error type.
//! - [`wire`]: the JSON shapes (manifest, `chunk`/`end`/`error` data, health).
//! - [`live`]: a live text's publication state and its `state` event.
//! - [`sse`]: the SSE framing around them, and the client's parser;
//!   [`escape`] writes text chunks as JSON strings a word at a time.

pub mod digest;
pub mod escape;
pub mod layout;
pub mod limits;
pub mod live;
pub mod params;
pub mod sse;
pub mod wire;

pub use digest::{hex, parse_hex, root_of, sha256, Hash};
pub use layout::{chunk_count, span, Kind};
pub use live::{LiveState, Publication, StateEvent};
pub use wire::{BadManifest, ChunkEvent, End, ErrorBody, Health, Limits, Manifest, ManifestRef, Meta};
