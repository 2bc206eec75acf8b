//! The server's validated configuration. `cli` parses flags into
//! `ServeArgs` and checks them once into a [`Config`] with the checks here,
//! so handlers never see unchecked values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::policy::access::{Access, AccessError};
use super::policy::cors::{BadOrigin, CorsPolicy};
use super::policy::host::HostPolicy;
use crate::protocol::limits::{MAX_CHUNK, MAX_RANGE, MIN_CHUNK};
use crate::tls::{Tls, TlsError};
/// `--retry-ms`: a client told to wait more than an hour before it
/// reconnects is a typo, and the jitter (`+50%`) must not overflow.
pub const RETRY_MS: std::ops::RangeInclusive<u64> = 1..=3_600_000;
/// `--keep-alive` seconds: zero would send a comment between every two
/// events of a paced stream; past an hour every proxy has long hung up.
pub const KEEP_ALIVE_S: std::ops::RangeInclusive<u64> = 1..=3_600;
/// `--max-connections`: a stream holds two descriptors, and no kernel hands
/// out two million of them to one process.
pub const MAX_CONNECTIONS: std::ops::RangeInclusive<usize> = 1..=1 << 20;

/// `--seal-ms`: at least a millisecond; past a minute a live text is not live.
pub const SEAL_MS: std::ops::RangeInclusive<u64> = 1..=60_000;
/// `--publish-timeout`: a producer may be gone for up to a week.
pub const MAX_PUBLISH_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

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
    pub hosts: HostPolicy,
    /// `--verify-reads`.
    pub verify_reads: VerifyReads,
    /// First-time index builds at once; more wait their turn.
    pub index_builds: usize,
    /// `--publish`: live texts may be published, with these settings.
    pub publish: Option<crate::live::Settings>,
}

/// `--verify-reads`: which streamed chunks the server hashes again before
/// sending them. Every client verifies every chunk against the manifest, so
/// hashing on the server only decides *where* a chunk that rotted on disk
/// (bytes changed behind an unchanged size, mtime and ctime) is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum VerifyReads {
    /// Every chunk on every endpoint: rot is refused before it is sent, at
    /// the cost of one SHA-256 pass per byte served (about half the
    /// server's CPU per byte).
    Always,
    /// Chunks of the range endpoint only (refills, which usually follow a
    /// failed verification on the client): `/events` trusts the index while
    /// the open file's identity is unchanged, and rot is caught where the
    /// client asks for the chunk again.
    #[default]
    Refills,
    /// No chunk: clients still verify, but a rotted chunk is sent again on
    /// every refill until the file's identity changes.
    Never,
}

impl VerifyReads {
    /// Whether a stream of this endpoint hashes its chunks.
    pub fn hashes(self, refill: bool) -> bool {
        match self {
            VerifyReads::Always => true,
            VerifyReads::Refills => refill,
            VerifyReads::Never => false,
        }
    }
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
    #[error("--index-dir {0} is inside the served root; indexes must not be served (put them outside it, or under a hidden folder of it such as .cache)")]
    IndexInsideRoot(PathBuf),
    #[error("--link-key {0} is inside the served root, where anyone could download it; keep it outside")]
    LinkKeyInsideRoot(PathBuf),
    #[error("--tls-self-signed takes host names, and {0:?} is a path: give the directory first (chunkcast serve DIR --tls-self-signed NAME,...) or with --root")]
    NameIsPath(String),
    #[error("--port: {0}")]
    Bind(String),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("--web-dir {0} is not a directory with an index.html (leave the flag out to serve the page built into the binary)")]
    WebDir(PathBuf),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Cors(#[from] BadOrigin),
    #[error("--publish needs --auth: only the listed users may publish")]
    PublishWithoutAuth,
    #[error("--publish keeps the layouts of live texts in the index directory: drop --no-index-dir")]
    PublishWithoutIndexDir,
    #[error("--seal-ms must be between {lo} and {hi} milliseconds, got {0}", lo = SEAL_MS.start(), hi = SEAL_MS.end())]
    SealMs(u64),
    #[error("--publish-timeout must be more than 0 and at most 7 days, got {}", humantime::format_duration(*.0))]
    PublishTimeout(Duration),
    #[error("--max-publish must be more than 0 bytes")]
    MaxPublish,
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

/// Indexes name every file and chunk digest: they must not be served. One
/// under a hidden folder of the root is never served (`cd ~ && chunkcast
/// serve` keeps them in `~/.cache`), so only a visible one is refused.
pub fn check_index_dir(dir: Option<&Path>, root: &Path) -> Result<(), ConfigError> {
    match dir {
        Some(dir) if served(dir, root) => Err(ConfigError::IndexInsideRoot(dir.to_owned())),
        _ => Ok(()),
    }
}

/// The link key signs every link: served, it would let anyone forge them.
pub fn check_link_key(file: Option<&Path>, root: &Path) -> Result<(), ConfigError> {
    match file {
        Some(file) if served(file, root) => Err(ConfigError::LinkKeyInsideRoot(file.to_owned())),
        _ => Ok(()),
    }
}

/// Whether `path` is inside `root` where it could be served: not beneath a
/// hidden entry (a name starting with `.`), which is never listed or served.
fn served(path: &Path, root: &Path) -> bool {
    let path = absolute(path);
    let Ok(rel) = path.strip_prefix(root) else { return false };
    !rel.components().any(|c| c.as_os_str().to_str().is_some_and(|s| s.starts_with('.')))
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

/// `<user cache dir>/chunkcast/index`, e.g. `~/.cache/chunkcast/index`
/// (`serve` and `index` default to it).
pub fn default_index_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("chunkcast").join("index"))
}

/// The path may not exist yet, so compare the canonical form of its deepest
/// existing ancestor (a symlink into the root is caught too).
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
