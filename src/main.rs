//! The `chunkcast` binary: parses the command line and calls into the library.

use std::net::TcpListener;

use anyhow::Context as _;
use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use chunkcast::cli::{Cli, Command, ServeArgs};
use chunkcast::{client, Config};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chunkcast: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        None => serve(ServeArgs::default()),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Get(args)) => {
            client::get(&args)?;
            Ok(())
        }
        Some(Command::Index(args)) => index_dir(&args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::try_from(args)?;
    let listener = TcpListener::bind(config.bind).with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr()?;
    match &config.index_dir {
        Some(dir) => tracing::info!(root = %config.root.display(), index_dir = %dir.display(), "serving"),
        None => tracing::info!(root = %config.root.display(), "serving (indexes in memory only)"),
    }
    println!("chunkcast serving {} at http://{addr}/", config.root.display());
    actix_web::rt::System::new().block_on(async { chunkcast::server(listener, config)?.await })?;
    Ok(())
}

fn index_dir(args: &chunkcast::cli::IndexArgs) -> anyhow::Result<()> {
    let mut serve = ServeArgs::parse_from(["serve", "--chunk-size", &args.chunk_size.to_string()]);
    serve.root = Some(args.dir.clone());
    serve.index_dir = args.index_dir.clone();
    let config = Config::try_from(serve)?;
    let (_never, shutdown) = tokio::sync::watch::channel(false);
    let state = chunkcast::routes::AppState::new(config, shutdown)?;
    let entries = state.catalog.walk()?;
    actix_web::rt::System::new().block_on(async {
        for entry in &entries {
            let file = state.catalog.resolve(&entry.name)?;
            let index = state.store.get(&file).await?;
            println!("{}  {:>6} chunks  {:>12} bytes  {}", index.version(), index.chunks(), entry.size, entry.name);
        }
        anyhow::Ok(())
    })
}
