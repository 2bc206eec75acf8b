//! The `chunkcast` binary: parses the command line and calls into the library.

use std::net::TcpListener;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use chunkcast::cli::index::IndexConfig;
use chunkcast::cli::link::LinkConfig;
use chunkcast::cli::serve::in_project;
use chunkcast::cli::{Cli, Command, ServeArgs};
use chunkcast::client::ClientError;
use chunkcast::protocol::limits::{LINK_EXPIRES, LINK_SIGNATURE};
use chunkcast::protocol::params::encode_query_value;
use chunkcast::server::policy::access::{unix_now, LinkKey};
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
    raise_open_file_limit();
    let cli = parse_command_line();
    // Quiet by default: startup, index builds, warnings and errors; requests
    // and actix's own start-up lines at debug. Colours only on a terminal.
    // `link` and `index` are one-shot commands that say what they did in
    // plain lines on standard output; their log keeps to warnings.
    let one_shot = matches!(cli.command, Some(Command::Link(_) | Command::Index(_)));
    let default_log = if one_shot { "warn" } else { DEFAULT_LOG };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_log)))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        // Bare `chunkcast` (`cargo run`): the bundled fixtures, for a first try.
        None => serve(ServeArgs { root: Some(in_project("fixtures")), ..ServeArgs::default() }),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Get(args)) => get(&args),
        Some(Command::Publish(args)) => publish(&args),
        Some(Command::Index(args)) => index_dir(&args),
        Some(Command::Link(args)) => link(&args),
    }
}

/// The command line, or the process ends: help and version as clap prints
/// them; a usage error in one plain line (`chunkcast: error: ...; see
/// chunkcast get --help`), with clap's status 2, as every other error of
/// the command line is one line.
fn parse_command_line() -> Cli {
    use clap::error::ErrorKind;
    let e = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(e) => e,
    };
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    eprintln!("chunkcast: {}", one_line(&e.render().to_string()));
    std::process::exit(2);
}

/// clap's message up to its usage lines, joined: `error: the following
/// required arguments were not provided: --tls-key <FILE>; see chunkcast
/// serve --help`.
fn one_line(message: &str) -> String {
    let mut said = String::new();
    let lines = message.lines().map(str::trim).take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"));
    for line in lines.filter(|l| !l.is_empty()) {
        if !said.is_empty() {
            said.push_str(if said.ends_with(':') { " " } else { "; " });
        }
        said.push_str(line);
    }
    // The subcommand the user typed, if any, for the help to look at.
    let sub = std::env::args().nth(1).filter(|a| <Cli as clap::CommandFactory>::command().find_subcommand(a).is_some());
    match sub {
        Some(sub) => format!("{said}; see chunkcast {sub} --help"),
        None => format!("{said}; see chunkcast --help"),
    }
}

/// `chunkcast get`: checks the command line before any network work, then
/// downloads with the terminal reporter. Errors are printed as their own
/// message (no cause chain: a path or an OS error is named once).
fn get(args: &chunkcast::cli::GetArgs) -> anyhow::Result<()> {
    let config = client::GetConfig::try_from(args).map_err(|e| anyhow::anyhow!("{e}"))?;
    let term = client::term::Term::new(&config, args.quiet);
    term.exit_on_ctrl_c();
    let result = client::get(&config, &*term);
    term.finish(&result);
    if result.as_ref().is_err_and(ClientError::is_reader_gone) {
        // `| head` had what it wanted: exit quietly, with the status a
        // shell reports for a program stopped by SIGPIPE.
        std::process::exit(141);
    }
    result.map(drop).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `chunkcast publish`: checks the command line, then publishes with the
/// terminal reporter; errors are one line, as for `get`.
fn publish(args: &chunkcast::cli::PublishArgs) -> anyhow::Result<()> {
    let config = client::PublishConfig::try_from(args).map_err(|e| anyhow::anyhow!("{e}"))?;
    let term = client::term::Term::for_publish(args.quiet);
    term.exit_on_ctrl_c();
    let result = client::publish(&config, &*term);
    term.finish_publish(&result);
    result.map(drop).map_err(|e| anyhow::anyhow!("{e}"))
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::try_from(args)?;
    let listeners = bind_all(&config.bind)?;
    if let Some(tls) = &config.tls {
        let made = if tls.generated { "made a self-signed certificate" } else { "certificate" };
        let hosts = if tls.hosts.is_empty() { String::new() } else { format!(" for {}", tls.hosts.join(", ")) };
        println!("chunkcast: {made} {}{hosts}", tls.cert_path.display());
        println!("chunkcast: SHA-256 fingerprint {}", tls.fingerprint);
    }
    let (scheme, protocols) = if config.tls.is_some() { ("https", "HTTP/2, HTTP/1.1") } else { ("http", "HTTP/1.1") };
    let indexes = match &config.index_dir {
        Some(dir) => format!("indexes in {}", std::path::absolute(dir).unwrap_or_else(|_| dir.clone()).display()),
        None => "indexes in memory".to_owned(),
    };
    // One line, the URLs last: scripts and tests take the first from there.
    let urls = listeners
        .iter()
        .map(|l| Ok(format!("{scheme}://{}/", openable(l.local_addr()?))))
        .collect::<std::io::Result<Vec<_>>>()?;
    println!("chunkcast serving {} ({protocols}; {indexes}) at {}", config.root.display(), urls.join(" "));
    actix_web::rt::System::new().block_on(async { chunkcast::server_on(listeners, config, signals())?.await })?;
    Ok(())
}

/// The default log filter: our own `info` (startup, index builds, warnings),
/// actix's at `warn` (its worker start-up lines are for `RUST_LOG=debug`).
const DEFAULT_LOG: &str = "info,actix_server=warn,actix_web=warn,actix_http=warn";

/// One listener per address. With port 0 the later addresses take the port
/// the first one got, so `localhost:0` is one port on both 127.0.0.1 and ::1.
fn bind_all(addrs: &[std::net::SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners: Vec<TcpListener> = Vec::new();
    for &addr in addrs {
        let addr = match listeners.first() {
            Some(first) if addr.port() == 0 => std::net::SocketAddr::new(addr.ip(), first.local_addr()?.port()),
            _ => addr,
        };
        let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                anyhow::anyhow!("cannot listen on {addr}: another program uses that port; pick another with -p PORT")
            }
            _ => anyhow::Error::new(e).context(format!("cannot listen on {addr}")),
        })?;
        listeners.push(listener);
    }
    Ok(listeners)
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

/// Resolves on the first SIGTERM or SIGINT: the server then closes every
/// stream between two events and exits. (The library takes any future, so
/// tests shut an in-process server down without a signal.)
async fn signals() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // No handler could be installed: the default action (exit) stays.
        _ => std::future::pending().await,
    }
}

/// `chunkcast index DIR`: the catalog walks the tree, the index store hashes
/// and persists every file the way a server with the same flags would find it.
fn index_dir(args: &chunkcast::cli::IndexArgs) -> anyhow::Result<()> {
    let IndexConfig { root, chunk_size, index_dir } = IndexConfig::try_from(args)?;
    let (catalog, store) = chunkcast::tree::catalog_and_store(root, chunk_size, index_dir)?;
    let entries = catalog.walk()?;
    actix_web::rt::System::new().block_on(async {
        for entry in &entries {
            let file = catalog.resolve(&entry.name)?;
            let index = store.get(&file).await?;
            println!("{}  {:>6} chunks  {:>12} bytes  {}", index.version(), index.chunks(), entry.size, entry.name);
        }
        anyhow::Ok(())
    })
}

/// `chunkcast link BASE_URL NAME`: the page's URL opened on one file, with
/// the expiry and the signature the server's `--link-key` checks.
fn link(args: &chunkcast::cli::LinkArgs) -> anyhow::Result<()> {
    let LinkConfig { base_url, name, expires, key_file } = LinkConfig::try_from(args)?;
    let new_key = !key_file.exists();
    let key = LinkKey::load_or_create(&key_file)?;
    if new_key {
        eprintln!("created a new link key in {}", key_file.display());
    }
    let expires = unix_now().saturating_add(expires.as_secs());
    println!(
        "{base_url}/?file={}&{LINK_EXPIRES}={expires}&{LINK_SIGNATURE}={}",
        encode_query_value(&name),
        key.sign(&name, expires)
    );
    eprintln!(
        "valid until {} (UTC); the server must run with --link-key {}",
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires)),
        key_file.display()
    );
    Ok(())
}

/// Raises the soft open-file limit to the hard one, as servers do: the soft
/// default (often 1,024) would cap streams and sockets far below what the
/// system allows, and an idle flood would fill it. `--max-connections`
/// defaults from the raised value.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
