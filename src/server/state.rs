//! The state every worker shares: the checked config, the catalog of served
//! files, the index store, the stream slots and what streams share. Routes,
//! `/files` and the middlewares all read it from the app data; it depends
//! on none of them.

use std::sync::Arc;

use actix_web::HttpRequest;
use tokio::sync::watch;

use super::config::Config;
use super::error::ApiError;
use super::slots::{ConnectionSlots, Slot, Slots};
use super::stream::Streams;
use crate::live::Registry;
use crate::tree::disk::Disk;
use crate::tree::{catalog_and_store, Catalog, IndexStore};

/// Shared by every worker.
pub struct AppState {
    pub config: Config,
    pub catalog: Catalog,
    pub store: Arc<IndexStore>,
    pub slots: Slots,
    pub streams: Streams,
    /// The open live publications (`--publish`); `None` without it.
    pub live: Option<Arc<Registry>>,
}

impl AppState {
    /// `disk` is how served files are read (the real disk but in tests);
    /// `shutdown` turns true when the server starts shutting down, and open
    /// streams then end between two events.
    pub fn new(config: Config, disk: Arc<dyn Disk>, shutdown: watch::Receiver<bool>) -> std::io::Result<Self> {
        let (catalog, store) = catalog_and_store(config.root.clone(), config.chunk_size, config.index_dir.clone())?;
        let store = Arc::new(store.with_builds(config.index_builds).with_disk(disk.clone()));
        let streams = Streams::new(store.clone(), shutdown, config.verify_reads, disk);
        let slots = Slots::new(config.max_connections);
        let live = match (config.publish, store.dir()) {
            (None, _) => None,
            (Some(settings), Some(dir)) => {
                let registry = Registry::open(settings, catalog.clone(), store.clone(), dir.to_owned());
                registry.start();
                Some(registry)
            }
            (Some(_), None) => {
                return Err(std::io::Error::other(
                    "--publish keeps the layouts of live texts in the index directory, and it is not writable",
                ))
            }
        };
        Ok(AppState { config, catalog, store, slots, streams, live })
    }

    /// A slot for a `GET` that will hold a file (503 when none is left),
    /// taken before the file is opened; a `HEAD` holds nothing and needs none.
    pub fn slot_for(&self, req: &HttpRequest) -> Result<Option<Slot>, ApiError> {
        if req.method() == actix_web::http::Method::HEAD {
            return Ok(None);
        }
        Ok(Some(self.slots.take(req.conn_data::<ConnectionSlots>())?))
    }
}
