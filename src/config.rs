//! The server's validated configuration. `cli` parses flags into `ServeArgs`;
//! `Config::try_from` checks them once, so handlers never see unchecked values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::ServeArgs;

pub const MIN_CHUNK: u32 = 4 * 1024;
pub const MAX_CHUNK: u32 = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// Canonical served directory.
    pub root: PathBuf,
    pub bind: SocketAddr,
    pub chunk_size: u32,
    /// Where indexes persist; `None` keeps them in memory only.
    pub index_dir: Option<PathBuf>,
    /// Most chunks one range request may ask for.
    pub max_range: u64,
    /// Base reconnection delay sent as `retry:` (jittered per connection).
    pub retry_ms: u64,
    /// Silence after which a paced stream sends `: keep-alive`.
    pub keep_alive: Duration,
    /// Directory holding the web client (`index.html`, `chunkcast.js`, ...).
    pub web_dir: Option<PathBuf>,
    /// Responses holding a file (streams and `/files` downloads) beyond
    /// which new ones get 503 with `Retry-After`.
    pub max_connections: usize,
    /// Which `Host` names are answered (from `bind` and `--allowed-host`).
    pub hosts: crate::host::HostPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("root {0} is not a readable directory")]
    Root(PathBuf, #[source] std::io::Error),
    #[error("--chunk-size must be between {MIN_CHUNK} and {MAX_CHUNK} bytes, got {0}")]
    ChunkSize(u64),
    #[error("--max-range must be at least 1")]
    MaxRange,
    #[error("--index-dir {0} is inside the served root; indexes must not be served")]
    IndexInsideRoot(PathBuf),
}

impl TryFrom<ServeArgs> for Config {
    type Error = ConfigError;

    fn try_from(args: ServeArgs) -> Result<Self, Self::Error> {
        let root_arg = args.root.unwrap_or_else(|| in_project("fixtures"));
        let root = root_arg.canonicalize().map_err(|e| ConfigError::Root(root_arg.clone(), e))?;
        if !root.is_dir() {
            return Err(ConfigError::Root(root_arg, std::io::Error::other("not a directory")));
        }
        let chunk_size = u32::try_from(args.chunk_size)
            .ok()
            .filter(|c| (MIN_CHUNK..=MAX_CHUNK).contains(c))
            .ok_or(ConfigError::ChunkSize(args.chunk_size))?;
        if args.max_range == 0 {
            return Err(ConfigError::MaxRange);
        }
        let index_dir = if args.no_index_dir { None } else { args.index_dir.or_else(default_index_dir) };
        if let Some(dir) = &index_dir {
            if absolute(dir).starts_with(&root) {
                return Err(ConfigError::IndexInsideRoot(dir.clone()));
            }
        }
        let web_dir = args.web_dir.or_else(|| Some(in_project("web"))).filter(|d| d.is_dir());
        Ok(Config {
            root,
            bind: args.bind,
            chunk_size,
            index_dir,
            max_range: args.max_range,
            retry_ms: args.retry_ms,
            keep_alive: Duration::from_secs(args.keep_alive.max(1)),
            web_dir,
            max_connections: args.max_connections.unwrap_or_else(default_max_connections),
            hosts: crate::host::HostPolicy::new(args.bind, &args.allowed_hosts),
        })
    }
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

/// `<user cache dir>/chunkcast/index`, e.g. `~/.cache/chunkcast/index`.
pub fn default_index_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("chunkcast").join("index"))
}

/// `name` relative to the working directory when it exists there, else next
/// to the crate's sources, so `cargo run` works from any directory.
fn in_project(name: &str) -> PathBuf {
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
