//! The file core, without HTTP: what is served and how it is cut. The
//! server and `chunkcast index` use it; it uses the protocol (chunk layout,
//! digests, the manifest's shape) and nothing of the server.
//!
//! - [`root`]: names opened in one step beneath a descriptor of the root
//!   (`openat2` with `RESOLVE_BENEATH`), never followed out of it.
//! - [`catalog`]: a client's name → a file opened inside the root (or a 404
//!   that reveals nothing); one directory listed at a time.
//! - [`index`]: a file's chunks and their SHA-256s, the whole-file digest
//!   and the `root`, computed in one pass from the opened descriptor.
//! - [`store`]: each file's index computed once per version, kept in memory
//!   and on disk so restarts do not rehash; [`manifest`] writes its JSON once.
//! - [`published`]: the durable layout of a live publication, which stays
//!   the finished file's index.
//! - [`disk`]: how files are read (the real disk, or a test's stand-in), the
//!   identity a stream trusts its index by, how many builds run at once.
//! - [`error`]: what all of it can fail with.

pub mod catalog;
pub mod disk;
pub mod error;
pub mod index;
pub mod manifest;
pub mod published;
pub mod root;
pub mod store;

pub use catalog::{Catalog, Entry, EntryKind, Resolved};
pub use error::TreeError;
pub use index::FileIndex;
pub use store::IndexStore;

use std::path::PathBuf;

/// The catalog of `root` (canonical) and the index store behind it, as the
/// server and `chunkcast index` both use them (the server then adds its
/// bounds and its disk).
pub fn catalog_and_store(
    root: PathBuf,
    chunk_size: u32,
    index_dir: Option<PathBuf>,
) -> std::io::Result<(Catalog, IndexStore)> {
    let catalog = Catalog::new(root)?;
    let store = IndexStore::new(chunk_size, index_dir).for_root(catalog.fs().clone());
    Ok((catalog, store))
}
