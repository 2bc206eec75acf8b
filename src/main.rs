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
    if let Some(tls) = &config.tls {
        let made = if tls.generated { "made a self-signed certificate" } else { "certificate" };
        let hosts = if tls.hosts.is_empty() { String::new() } else { format!(" for {}", tls.hosts.join(", ")) };
        println!("chunkcast: {made} {}{hosts}", tls.cert_path.display());
        println!("chunkcast: SHA-256 fingerprint {}", tls.fingerprint);
    }
    let (scheme, protocols) = if config.tls.is_some() { ("https", "HTTP/2, HTTP/1.1") } else { ("http", "HTTP/1.1") };
    // The URL stays the line's last word: scripts and tests take it from there.
    println!("chunkcast serving {} ({protocols}) at {scheme}://{}/", config.root.display(), openable(addr));
    actix_web::rt::System::new().block_on(async { chunkcast::server(listener, config)?.await })?;
    Ok(())
}

/// The address a person can open: an unspecified bind (`0.0.0.0`, `::`) is
/// shown as the machine's host name when that name resolves, else loopback.
fn openable(addr: std::net::SocketAddr) -> String {
    use std::net::{Ipv4Addr, Ipv6Addr, ToSocketAddrs as _};
    if !addr.ip().is_unspecified() {
        return addr.to_string();
    }
    if let Some(name) = chunkcast::tls::host_name() {
        if (name.as_str(), addr.port()).to_socket_addrs().is_ok_and(|mut a| a.next().is_some()) {
            return format!("{name}:{}", addr.port());
        }
    }
    let loopback: std::net::IpAddr =
        if addr.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() };
    std::net::SocketAddr::new(loopback, addr.port()).to_string()
}

fn index_dir(args: &chunkcast::cli::IndexArgs) -> anyhow::Result<()> {
    let mut serve = ServeArgs::parse_from(["serve", "--chunk-size", &args.chunk_size.to_string()]);
    serve.root = Some(args.dir.clone());
    serve.index_dir = args.index_dir.clone();
    let config = Config::try_from(serve)?;
    let (_never, shutdown) = tokio::sync::watch::channel(false);
    let state = chunkcast::routes::AppState::new(config, shutdown)?;
    let entries = state.catalog.list()?;
    actix_web::rt::System::new().block_on(async {
        for entry in &entries {
            let file = state.catalog.resolve(&entry.name)?;
            let index = state.store.get(&file).await?;
            println!("{}  {:>6} chunks  {:>12} bytes  {}", index.version(), index.chunks(), entry.size, entry.name);
        }
        anyhow::Ok(())
    })
}
