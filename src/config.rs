//! The server's validated configuration. `cli` parses flags into `ServeArgs`;
//! `Config::try_from` checks them once, so handlers never see unchecked values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::access::{Access, AccessError};
use crate::cli::{Bind, ServeArgs};
use crate::cors::{BadOrigin, CorsPolicy};
use crate::tls::{Tls, TlsError, TlsSource};

pub const MIN_CHUNK: u32 = 4 * 1024;
pub const MAX_CHUNK: u32 = 16 * 1024 * 1024;
/// `--max-range`: at most 2^32 chunks, so the value stays exact as a
/// JavaScript number wherever a client reads it.
pub const MAX_RANGE: u64 = 1 << 32;
/// `--retry-ms`: a client told to wait more than an hour before it
/// reconnects is a typo, and the jitter (`+50%`) must not overflow.
pub const RETRY_MS: std::ops::RangeInclusive<u64> = 1..=3_600_000;
/// `--keep-alive` seconds: zero would send a comment between every two
/// events of a paced stream; past an hour every proxy has long hung up.
pub const KEEP_ALIVE_S: std::ops::RangeInclusive<u64> = 1..=3_600;
/// `--max-connections`: a stream holds two descriptors, and no kernel hands
/// out two million of them to one process.
pub const MAX_CONNECTIONS: std::ops::RangeInclusive<usize> = 1..=1 << 20;

#[derive(Debug, Clone)]
pub struct Config {
    /// Canonical served directory.
    pub root: PathBuf,
    /// Every address to listen on (a host name may resolve to several).
    pub bind: Vec<SocketAddr>,
    pub chunk_size: u32,
    /// Where indexes persist; `None` keeps them in memory only.
    pub index_dir: Option<PathBuf>,
    /// Most chunks one range request may ask for.
    pub max_range: u64,
    /// Base reconnection delay sent as `retry:` (jittered per connection).
    pub retry_ms: u64,
    /// Silence after which a paced stream sends `: keep-alive`.
    pub keep_alive: Duration,
    /// Serve the web client from this directory instead of the copy built
    /// into the binary (for development).
    pub web_dir: Option<PathBuf>,
    /// Responses holding a file (streams and `/files` downloads) beyond
    /// which new ones get 503 with `Retry-After`.
    pub max_connections: usize,
    /// `--auth` users and the `--link-key` (open to all by default).
    pub access: Access,
    /// HTTPS (HTTP/2 and HTTP/1.1) when set; plain HTTP/1.1 otherwise.
    pub tls: Option<Tls>,
    /// Origins whose pages may read responses (`--cors-origin`).
    pub cors: CorsPolicy,
    /// Which `Host` names are answered (from `bind` and `--allowed-host`).
    pub hosts: crate::host::HostPolicy,
    /// `--verify-reads`.
    pub verify_reads: crate::reads::VerifyReads,
    /// First-time index builds at once; more wait their turn.
    pub index_builds: usize,
    /// Set by tests only.
    pub hooks: crate::reads::TestHooks,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("root {0} is not a readable directory")]
    Root(PathBuf, #[source] std::io::Error),
    #[error("--chunk-size must be between {MIN_CHUNK} and {MAX_CHUNK} bytes, got {0}")]
    ChunkSize(u64),
    #[error("--max-range must be between 1 and {MAX_RANGE} chunks, got {0}")]
    MaxRange(u64),
    #[error("--retry-ms must be between {lo} and {hi} milliseconds, got {0}", lo = RETRY_MS.start(), hi = RETRY_MS.end())]
    RetryMs(u64),
    #[error("--keep-alive must be between {lo} and {hi} seconds, got {0}", lo = KEEP_ALIVE_S.start(), hi = KEEP_ALIVE_S.end())]
    KeepAlive(u64),
    #[error("--max-connections must be between {lo} and {hi}, got {0}", lo = MAX_CONNECTIONS.start(), hi = MAX_CONNECTIONS.end())]
    MaxConnections(usize),
    #[error("--index-dir {0} is inside the served root; indexes must not be served")]
    IndexInsideRoot(PathBuf),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("--web-dir {0} is not a directory with an index.html (leave the flag out to serve the page built into the binary)")]
    WebDir(PathBuf),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Cors(#[from] BadOrigin),
}

impl TryFrom<ServeArgs> for Config {
    type Error = ConfigError;

    fn try_from(args: ServeArgs) -> Result<Self, Self::Error> {
        let root_arg = match args.root_arg.or(args.root) {
            Some(root) => root,
            None => std::env::current_dir().map_err(|e| ConfigError::Root(".".into(), e))?,
        };
        let root = checked_root(&root_arg)?;
        let chunk_size = checked_chunk_size(args.chunk_size)?;
        if !(1..=MAX_RANGE).contains(&args.max_range) {
            return Err(ConfigError::MaxRange(args.max_range));
        }
        if !RETRY_MS.contains(&args.retry_ms) {
            return Err(ConfigError::RetryMs(args.retry_ms));
        }
        if !KEEP_ALIVE_S.contains(&args.keep_alive) {
            return Err(ConfigError::KeepAlive(args.keep_alive));
        }
        let max_connections = args.max_connections.unwrap_or_else(default_max_connections);
        if !MAX_CONNECTIONS.contains(&max_connections) {
            return Err(ConfigError::MaxConnections(max_connections));
        }
        let index_dir = if args.no_index_dir { None } else { args.index_dir.or_else(default_index_dir) };
        check_index_dir(index_dir.as_deref(), &root)?;
        if let Some(dir) = &args.web_dir {
            if !dir.join("index.html").is_file() {
                return Err(ConfigError::WebDir(dir.clone()));
            }
        }
        let cors = CorsPolicy::new(&args.cors_origin)?;
        let tls = tls_source(args.tls_cert, args.tls_key, args.tls_self_signed, &args.bind)?
            .map(|source| crate::tls::load(&source))
            .transpose()?;
        Ok(Config {
            root,
            hosts: crate::host::HostPolicy::new(&args.bind.addrs, &args.allowed_hosts),
            bind: args.bind.addrs,
            chunk_size,
            index_dir,
            max_range: args.max_range,
            retry_ms: args.retry_ms,
            keep_alive: Duration::from_secs(args.keep_alive),
            web_dir: args.web_dir,
            max_connections,
            access: Access::new(&args.auth, args.link_key.as_deref())?,
            tls,
            cors,
            verify_reads: args.verify_reads,
            index_builds: crate::reads::default_index_builds(),
            hooks: Default::default(),
        })
    }
}

/// The canonical form of a directory to serve or index.
pub fn checked_root(dir: &Path) -> Result<PathBuf, ConfigError> {
    let root = dir.canonicalize().map_err(|e| ConfigError::Root(dir.to_owned(), e))?;
    if !root.is_dir() {
        return Err(ConfigError::Root(dir.to_owned(), std::io::Error::other("not a directory")));
    }
    Ok(root)
}

/// `--chunk-size`, within [`MIN_CHUNK`]..=[`MAX_CHUNK`].
pub fn checked_chunk_size(bytes: u64) -> Result<u32, ConfigError> {
    u32::try_from(bytes).ok().filter(|c| (MIN_CHUNK..=MAX_CHUNK).contains(c)).ok_or(ConfigError::ChunkSize(bytes))
}

/// Indexes name every file and chunk digest: they must not be served.
pub fn check_index_dir(dir: Option<&Path>, root: &Path) -> Result<(), ConfigError> {
    match dir {
        Some(dir) if absolute(dir).starts_with(root) => Err(ConfigError::IndexInsideRoot(dir.to_owned())),
        _ => Ok(()),
    }
}

/// Which TLS flags were given (clap already rejects `--tls-cert` without
/// `--tls-key` and either with `--tls-self-signed`).
fn tls_source(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: Option<Vec<String>>,
    bind: &Bind,
) -> Result<Option<TlsSource>, TlsError> {
    Ok(match (cert, key, self_signed) {
        (Some(cert), Some(key), _) => Some(TlsSource::Files { cert, key }),
        (_, _, Some(hosts)) => {
            let hosts = if hosts.is_empty() {
                let mut hosts = crate::tls::default_hosts(bind.addrs[0].ip());
                // `--bind files.lan:8443`: the name people type goes in too.
                if bind.host().parse::<std::net::IpAddr>().is_err() && !hosts.iter().any(|h| h == bind.host()) {
                    hosts.push(bind.host().to_owned());
                }
                hosts
            } else {
                hosts
            };
            Some(TlsSource::SelfSigned { dir: crate::tls::default_self_signed_dir()?, hosts })
        }
        _ => None,
    })
}

/// Sized for the machine: a stream or a download holds two descriptors (its
/// socket and its file), so half of what is left of the open-file limit
/// once a reserve is set aside. The reserve (a quarter of the limit, at
/// least 64) is for everything that holds no file: the listener, `/healthz`,
/// the page, `/api/*`, refused clients on their way out, index files, logs;
/// so those keep answering when every slot is taken.
pub fn default_max_connections() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct we pass.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 { limit.rlim_cur } else { 1024 };
    let soft = soft.min(1 << 20) as usize;
    let reserve = (soft / 4).max(64);
    (soft.saturating_sub(reserve) / 2).max(8)
}

/// `<user config dir>/chunkcast/link-key`, where `chunkcast link` looks for
/// the key by default.
pub fn default_link_key() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("chunkcast").join("link-key"))
}

/// `<user cache dir>/chunkcast/index`, e.g. `~/.cache/chunkcast/index`.
pub fn default_index_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("chunkcast").join("index"))
}

/// `name` relative to the working directory when it exists there, else next
/// to the crate's sources, so `cargo run` works from any directory.
pub fn in_project(name: &str) -> PathBuf {
    let here = PathBuf::from(name);
    if here.exists() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
    }
}

/// The index dir may not exist yet, so compare the canonical form of its
/// deepest existing ancestor.
fn absolute(dir: &Path) -> PathBuf {
    let mut existing = dir.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    out.extend(rest.iter().rev());
    out
}
