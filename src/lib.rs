//! chunkcast: resumable, SHA-256-verified file and text transfer over
//! Server-Sent Events.
//!
//! How a download flows through the modules:
//!
//! - [`cli`] parses flags; [`config`] checks server flags once into a `Config`.
//! - [`routes`] wires every endpoint (used by `main` and the tests alike).
//! - [`catalog`] turns a client's file name into a path proven to be inside
//!   the root (or a 404 that reveals nothing), and lists the served files.
//! - [`store`] returns the file's [`index`] (chunk offsets and SHA-256s, the
//!   whole-file digest and the `root`), computing it once per file version and
//!   persisting it so restarts do not rehash.
//! - [`params`] parses chunk numbers, `Last-Event-ID`, `need` lists and versions.
//! - [`stream`] reads, verifies and frames the chunks with [`events`] into an
//!   SSE body, one chunk ahead, never holding more than a few per connection.
//! - [`files`] serves raw bytes (`/files/NAME`) with Range and `If-Range`.
//! - [`client`] is `chunkcast get`: it downloads through the same protocol,
//!   verifies every chunk, refills gaps by range and resumes after a kill.
//! - [`error`] maps every failure to a status and a JSON body.

pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod files;
pub mod index;
pub mod params;
pub mod routes;
pub mod store;
pub mod stream;

use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::{Server, Service as _};
use actix_web::{web, App, HttpServer};

pub use config::Config;

/// Builds the server on an already bound listener (tests bind port 0 and read
/// the address back). The returned `Server` runs when awaited or spawned; its
/// handle stops it.
pub fn server(listener: TcpListener, config: Config) -> std::io::Result<Server> {
    let web_dir = config.web_dir.clone();
    let state = web::Data::new(routes::AppState::new(config)?);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap_fn(|req, srv| {
                let (method, path, started) = (req.method().clone(), req.path().to_owned(), Instant::now());
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    tracing::info!(%method, %path, status = res.status().as_u16(),
                        ms = started.elapsed().as_millis() as u64, "request");
                    Ok(res)
                }
            })
            .configure(|cfg| routes::configure(cfg, web_dir.as_deref()))
    })
    .listen(listener)?
    .shutdown_timeout(5)
    .run();
    Ok(server)
}
