//! The state every worker shares: the checked config, the catalog of served
//! files, the index store and the stream slots. Routes, `/files` and the
//! middlewares all read it from the app data; it depends on none of them.

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::HttpRequest;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::ApiError;
use crate::store::IndexStore;
use crate::stream::{Slot, Streams};

/// Shared by every worker.
pub struct AppState {
    pub config: Config,
    pub catalog: Catalog,
    pub store: Arc<IndexStore>,
    pub streams: Streams,
}

impl AppState {
    /// `shutdown` turns true when the server starts shutting down; open
    /// streams then end between two events.
    pub fn new(config: Config, shutdown: watch::Receiver<bool>) -> std::io::Result<Self> {
        let (catalog, store) = catalog_and_store(config.root.clone(), config.chunk_size, config.index_dir.clone())?;
        let store = Arc::new(store.with_builds(config.index_builds).with_read_hook(config.hooks.read.clone()));
        let streams = Streams::new(store.clone(), config.max_connections, shutdown)
            .with_reads(config.verify_reads, config.hooks.read.clone());
        Ok(AppState { config, catalog, store, streams })
    }

    /// A slot for a `GET` that will hold a file (503 when none is left),
    /// taken before the file is opened; a `HEAD` holds nothing and needs none.
    pub fn slot_for(&self, req: &HttpRequest) -> Result<Option<Slot>, ApiError> {
        if req.method() == actix_web::http::Method::HEAD {
            return Ok(None);
        }
        self.streams.take().map(Some)
    }
}

/// The catalog of `root` (canonical) and the index store behind it, as the
/// server and `chunkcast index` both use them (the server then adds its
/// bounds and hooks).
pub fn catalog_and_store(
    root: PathBuf,
    chunk_size: u32,
    index_dir: Option<PathBuf>,
) -> std::io::Result<(Catalog, IndexStore)> {
    let catalog = Catalog::new(root)?;
    let store = IndexStore::new(chunk_size, index_dir).for_root(catalog.fs().clone());
    Ok((catalog, store))
}
