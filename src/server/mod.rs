//! The HTTP server: actix-web in front of the file core. Handlers never see
//! an unchecked value: flags become a [`Config`] once, requests are parsed
//! with the protocol's strict parsers, and every failure is an [`ApiError`]
//! with one status and one JSON body.
//!
//! - [`config`]: the checked configuration; [`state`]: what every handler
//!   shares (config, catalog, index store, stream slots, streams).
//! - [`routes`]: the one place that wires every endpoint, used by the binary,
//!   the tests and an app that mounts chunkcast under a prefix ([`mount`]).
//! - [`stream`]: the chunk stream behind `/events` and the range endpoint;
//!   [`slots`] bounds the responses that hold a file; [`peer`] notices a
//!   client that hung up while a paced stream waits.
//! - [`files`]: raw bytes (`/files/NAME`) with Range; [`assets`]: the page.
//! - [`policy`]: who may read what (`--auth`, signed links), which origins
//!   (`--cors-origin`) and host names are answered, as plain values;
//!   [`middleware`] applies them to requests, rewrites others' errors to
//!   JSON and logs every request.
//! - [`error`]: every failure, mapped to a status and a JSON body.

pub mod assets;
pub mod config;
pub mod error;
pub mod files;
pub mod live;
pub mod middleware;
pub mod peer;
pub mod policy;
pub mod publish;
pub mod routes;
pub mod slots;
pub mod state;
pub mod stream;
pub mod url;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tokio::sync::watch;

use crate::tree::disk::{Disk, RealDisk};
use url::Mount;

/// TLS handshakes in progress at once per worker (see `server_on_with`).
pub const HANDSHAKES_PER_WORKER: usize = 16_384;

/// Streams one HTTP/2 connection may have open at once, advertised in the
/// server's `SETTINGS_MAX_CONCURRENT_STREAMS`; h2 refuses a stream past it
/// with `REFUSED_STREAM`. hyper's default; above [`slots::PER_CONNECTION`] so
/// a connection holding its share of event streams can still ask for pages
/// and listings. actix-http has no setting for it: `vendor/h2` (h2 0.3.27
/// with one changed line, see its `CHUNKCAST.md`) makes it h2's server
/// default, and `tests/it/h2_limits.rs` checks the two agree.
pub const MAX_CONCURRENT_STREAMS: u32 = 200;

/// Knobs only tests set, through [`server_on_with`]: no flag reaches them.
#[derive(Default, Clone)]
pub struct Hooks {
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    /// How served files are read (default: the real disk); a test passes a
    /// [`crate::tree::disk::WatchedDisk`] to stand in for a slow disk or to
    /// watch how many builds run at once.
    pub disk: Option<Arc<dyn Disk>>,
}

/// Registers chunkcast on an app under `prefix` (`""` for the whole app,
/// `"/dl"` to serve beside the app's own routes; see `examples/embed.rs`):
/// its shared `state`, the middlewares (request log, Host check, CORS, JSON
/// errors, access control) and every route, all inside one scope so the
/// app's other routes are left alone. One chunkcast per app.
///
/// Build the state with [`AppState::new`] once, outside the app factory,
/// so every worker shares one catalog, index store and slot count.
pub fn mount(cfg: &mut web::ServiceConfig, prefix: &str, state: web::Data<AppState>) {
    let web_dir = state.config.web_dir.clone();
    let prefix = prefix.trim_end_matches('/');
    // The last `wrap` runs first. From the outside in: the request log;
    // the Host check (a rebinding page gets nothing, not even CORS headers);
    // CORS, so preflights (which carry no credentials) are answered and
    // every answer below, errors rewritten to JSON included, reaches an
    // allowed cross-origin page readable; errors a browser navigated to, as
    // a page; then access control.
    cfg.app_data(state).app_data(web::Data::new(Mount::new(prefix))).service(
        web::scope(prefix)
            .wrap(from_fn(middleware::access::guard))
            .wrap(middleware::json_errors::json())
            .wrap(from_fn(middleware::error_page::for_people))
            .wrap(from_fn(middleware::cors::middleware))
            .wrap(from_fn(middleware::host::check))
            .wrap(from_fn(middleware::log::request))
            .configure(|cfg| routes::configure(cfg, web_dir.as_deref())),
    );
}

/// Builds the server on an already bound listener (tests bind port 0 and read
/// the address back). Call it inside an actix `System`; the returned `Server`
/// runs when awaited, and its handle stops it.
///
/// When `shutdown` completes (the binary passes SIGTERM or SIGINT, tests a
/// channel of their own) the server stops accepting, every open stream ends
/// cleanly between two events (clients resume from their `Last-Event-ID`),
/// and the server returns once they are closed (at most `shutdown_timeout`).
pub fn server(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + 'static,
) -> std::io::Result<Server> {
    server_on(vec![listener], config, shutdown)
}

/// [`server`] on several listeners at once (a `--bind` name that resolves to
/// more than one address).
pub fn server_on(
    listeners: Vec<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + 'static,
) -> std::io::Result<Server> {
    server_on_with(listeners, config, Hooks::default(), shutdown)
}

/// [`server_on`] with test hooks no flag reaches (see [`Hooks`]). The binary
/// never calls it: what the hooks change is chosen here, once, not checked
/// in the request path.
pub fn server_on_with(
    listeners: Vec<TcpListener>,
    config: Config,
    hooks: Hooks,
    shutdown: impl Future<Output = ()> + 'static,
) -> std::io::Result<Server> {
    let tls = config.tls.as_ref().map(|t| (*t.server_config).clone());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let disk = hooks.disk.unwrap_or_else(|| Arc::new(RealDisk));
    let state = web::Data::new(AppState::new(config, disk, shutdown_rx)?);
    let server = HttpServer::new(move || App::new().configure(|cfg| mount(cfg, "", state.clone())))
        // Idle keep-alive connections are closed after 15 s, requests whose
        // headers take longer than 5 s are dropped, and half-open peers are found
        // by TCP keepalive (see `peer::on_connect`).
        .keep_alive(Duration::from_secs(15))
        // actix polls the body until this much is buffered before it writes.
        // Each of our slices is one write on its own anyway, and a low threshold
        // keeps an idle paced stream's write buffer at actix's initial 8 KiB.
        .h1_write_buffer_size(4 * 1024)
        .client_request_timeout(Duration::from_secs(5))
        // TLS handshakes at once per worker. actix's default (256) let
        // idle sockets that never send a ClientHello hold every slot for
        // the handshake timeout, so 600 of them made each new client wait
        // 2.5 s and 2,500 made them time out. A handshake that waits for
        // bytes costs a socket and a small future, not CPU, so the bound is
        // set far above what an idle flood holds; `--max-connections`-sized
        // descriptors and the timeout below bound the rest.
        .max_connection_rate(HANDSHAKES_PER_WORKER)
        // A ClientHello and the replies take one or two round trips: a
        // socket silent for 3 s is dropped, freeing its slot.
        .tls_handshake_timeout(Duration::from_secs(3))
        .on_connect(|conn, ext| {
            peer::on_connect(conn, ext);
        })
        .disable_signals()
        .shutdown_timeout(5);
    let mut server = match hooks.workers {
        Some(n) => server.workers(n),
        None => server,
    };
    for listener in listeners {
        server = match &tls {
            // ALPN offers h2 then http/1.1 (actix adds both).
            Some(tls) => server.listen_rustls_0_23(listener, tls.clone())?,
            None => server.listen(listener)?,
        };
    }
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: closing streams between events");
        let _ = shutdown_tx.send(true);
        handle.stop(true).await;
    });
    Ok(server)
}
