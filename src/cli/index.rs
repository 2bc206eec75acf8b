//! `chunkcast index DIR`: the flags, checked into an [`IndexConfig`] with
//! the same checks as `serve`'s.

use std::path::PathBuf;

use clap::Args;

use super::size::parse_size;
use crate::server::config::{check_index_dir, checked_chunk_size, checked_root, default_index_dir, ConfigError};

#[derive(Debug, Clone, Args)]
pub struct IndexArgs {
    /// Directory whose files to index.
    pub dir: PathBuf,
    /// Chunk size, as for `serve`.
    #[arg(long, default_value = "256K", value_parser = parse_size)]
    pub chunk_size: u64,
    /// Where to write the indexes [default: the user's cache dir]
    #[arg(long)]
    pub index_dir: Option<PathBuf>,
}

/// A checked `index` command line.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// Canonical.
    pub root: PathBuf,
    pub chunk_size: u32,
    /// Never inside `root`.
    pub index_dir: Option<PathBuf>,
}

impl TryFrom<&IndexArgs> for IndexConfig {
    type Error = ConfigError;

    fn try_from(args: &IndexArgs) -> Result<Self, ConfigError> {
        let root = checked_root(&args.dir)?;
        let chunk_size = checked_chunk_size(args.chunk_size)?;
        let index_dir = args.index_dir.clone().or_else(default_index_dir);
        check_index_dir(index_dir.as_deref(), &root)?;
        Ok(IndexConfig { root, chunk_size, index_dir })
    }
}
