//! chunkcast inside an actix-web app of your own: the app serves its own
//! page at `/` and chunkcast's (the file list, the manifest, the event
//! streams, `/files`, the browser page) under `/dl/`, mounted with
//! `chunkcast::mount`.
//!
//! ```sh
//! cargo run --example embed -- fixtures 127.0.0.1:8090
//! chunkcast get http://127.0.0.1:8090/dl story.txt
//! ```
//!
//! Its flags are `serve`'s, checked the same way (`Config::try_from`), so
//! `--auth`, `--chunk-size` and the rest work under the prefix too.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use chunkcast::cli::ServeArgs;
use chunkcast::tree::disk::RealDisk;
use chunkcast::{AppState, Config};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let root = args.next().unwrap_or_else(|| "fixtures".to_owned());
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    // Any further arguments are chunkcast's `serve` flags.
    let mut flags = vec!["serve".to_owned(), "--root".to_owned(), root, "--no-index-dir".to_owned()];
    flags.extend(args);
    let config = Config::try_from(ServeArgs::parse_from(flags))?;

    let listener = TcpListener::bind(&bind)?;
    println!("embed example serving at http://{}/ (chunkcast under /dl/)", listener.local_addr()?);
    actix_web::rt::System::new().block_on(async move {
        // One state for every worker: one catalog, index store and slot
        // count. The sender ends open streams cleanly when it says `true`;
        // this example keeps it until the process exits.
        let (_shutdown, shutting_down) = tokio::sync::watch::channel(false);
        let state = web::Data::new(AppState::new(config, Arc::new(RealDisk), shutting_down)?);
        HttpServer::new(move || {
            App::new()
                .route("/", web::get().to(home))
                // The page's addresses are relative: it must be opened as `/dl/`.
                .route(
                    "/dl",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect().insert_header(("Location", "/dl/")).finish()
                    }),
                )
                .configure(|cfg| chunkcast::mount(cfg, "/dl", state.clone()))
        })
        .listen(listener)?
        .run()
        .await?;
        anyhow::Ok(())
    })
}

/// The app's own page.
async fn home() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body("<!doctype html><title>My app</title><h1>My app</h1><p>Downloads: <a href=\"/dl/\">/dl/</a></p>\n")
}
