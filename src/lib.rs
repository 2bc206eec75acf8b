//! chunkcast: resumable, SHA-256-verified file and text transfer over
//! Server-Sent Events.
//!
//! How a download flows through the modules:
//!
//! - [`cli`] parses flags; [`config`] checks server flags once into a `Config`.
//! - [`routes`] wires every endpoint (used by `main` and the tests alike);
//!   [`state`] is what every handler shares (config, catalog, index store,
//!   stream slots).
//! - [`access`] lets a request through, or not: `--auth` users, signed links;
//!   [`host`] refuses foreign `Host` names on a loopback server (DNS
//!   rebinding); [`http_errors`] turns errors we did not write into JSON.
//! - [`catalog`] turns a client's file name into a file opened inside the
//!   root through [`fsroot`] (or a 404 that reveals nothing), and lists one
//!   directory at a time.
//! - [`store`] returns the file's [`index`] (chunk offsets and SHA-256s, the
//!   whole-file digest and the `root`), computing it once per file version and
//!   persisting it so restarts do not rehash.
//! - [`params`] parses chunk numbers, `Last-Event-ID`, `need` lists and versions.
//! - [`reads`] says which reads are verified (`--verify-reads`), what file
//!   identity a stream trusts its index by, and bounds index builds.
//! - [`escape`] escapes text chunks as JSON strings, a word at a time.
//! - [`protocol`] holds the wire shapes (manifest, `chunk`/`end`/`error`
//!   event data, health) and the chunk layout, for the server and clients;
//!   [`manifest`] writes the manifest JSON, once per index version.
//! - [`stream`] reads, verifies and frames the chunks with [`sse`] into an
//!   SSE body, one chunk ahead, never holding more than a few per connection;
//!   it and `/files` share the slots that bound open descriptors, and
//!   [`peer`] notices a client that hung up while a paced stream waits.
//! - [`files`] serves raw bytes (`/files/NAME`) with Range and `If-Range`;
//!   [`assets`] serves the page, built into the binary.
//! - [`client`] is `chunkcast get`: it downloads through the same protocol,
//!   verifies every chunk, refills gaps by range and resumes after a kill.
//! - [`error`] maps every failure to a status and a JSON body; [`logsafe`]
//!   escapes client-controlled text in log lines.
//! - [`tls`] loads and checks the certificate (or makes a self-signed one)
//!   for HTTPS with HTTP/2; [`cors`] adds the headers `--cors-origin` allows.

pub mod access;
pub mod assets;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod cors;
pub mod error;
pub mod escape;
pub mod files;
pub mod fsroot;
pub mod host;
pub mod http_errors;
pub mod index;
pub mod logsafe;
pub mod manifest;
pub mod params;
pub mod peer;
pub mod protocol;
pub mod reads;
pub mod routes;
pub mod sse;
pub mod state;
pub mod store;
pub mod stream;
pub mod tls;

use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service as _};
use actix_web::{web, App, HttpServer};
use tokio::sync::watch;

pub use config::Config;

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
    let web_dir = config.web_dir.clone();
    let workers = config.hooks.workers;
    let tls = config.tls.as_ref().map(|t| (*t.server_config).clone());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = web::Data::new(state::AppState::new(config, shutdown_rx)?);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // The last `wrap` runs first. From the outside in: the Host check
            // (a rebinding page gets nothing, not even CORS headers); CORS,
            // so preflights (which carry no credentials) are answered and
            // every answer below, errors rewritten to JSON included, reaches
            // an allowed cross-origin page readable; then access control.
            .wrap(actix_web::middleware::from_fn(access::guard))
            .wrap(http_errors::json())
            .wrap(actix_web::middleware::from_fn(cors::middleware))
            .wrap(actix_web::middleware::from_fn(host::check))
            .wrap_fn(|req, srv| {
                let (method, path, started) = (req.method().clone(), req.path().to_owned(), Instant::now());
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let path = logsafe::Esc(&path);
                    tracing::info!(%method, %path, status = res.status().as_u16(),
                        ms = started.elapsed().as_millis() as u64, "request");
                    Ok(res)
                }
            })
            .configure(|cfg| routes::configure(cfg, web_dir.as_deref()))
    })
    // Idle keep-alive connections are closed after 15 s, requests whose
    // headers take longer than 5 s are dropped, and half-open peers are found
    // by TCP keepalive (see `reap_half_open`).
    .keep_alive(Duration::from_secs(15))
    // actix polls the body until this much is buffered before it writes.
    // Each of our slices is one write on its own anyway, and a low threshold
    // keeps an idle paced stream's write buffer at actix's initial 8 KiB.
    .h1_write_buffer_size(4 * 1024)
    .client_request_timeout(Duration::from_secs(5))
    .on_connect(|conn, ext| {
        if let Some(socket) = socket_of(conn) {
            reap_half_open(socket);
            peer::record(socket, ext);
        }
    })
    .disable_signals()
    .shutdown_timeout(5);
    let mut server = match workers {
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

/// The TCP socket under an accepted connection, plain or TLS.
fn socket_of(conn: &dyn std::any::Any) -> Option<std::os::fd::RawFd> {
    use actix_web::rt::net::TcpStream;
    use std::os::fd::AsRawFd;
    if let Some(tcp) = conn.downcast_ref::<TcpStream>() {
        return Some(tcp.as_raw_fd());
    }
    let tls = conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()?;
    Some(tls.get_ref().0.as_raw_fd())
}

/// Turns on TCP keepalive (first probe after 30 s idle, then every 10 s, 3
/// misses) and a 60 s `TCP_USER_TIMEOUT`, so a peer that vanished without a
/// FIN (a laptop closed mid-download) is dropped instead of holding a stream
/// slot. A live client that merely reads slowly still acks, and stays.
fn reap_half_open(fd: std::os::fd::RawFd) {
    let set = |level, name, value: libc::c_int| {
        // SAFETY: setsockopt reads `value` for its size; fd is a live socket.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 60_000);
}
