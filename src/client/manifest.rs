//! The manifest as the client sees it: parsed, checked for internal
//! consistency, and asked for each chunk's span and digest.

use serde::Deserialize;

use super::ClientError;
use crate::index::{self, parse_hex, Hash, Kind};

/// The manifest as `GET /api/manifest` returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub size: u64,
    pub kind: Kind,
    pub chunk_size: u32,
    pub chunks: u64,
    pub version: String,
    pub sha256: String,
    pub root: String,
    pub hashes: Vec<String>,
    #[serde(default)]
    pub offsets: Option<Vec<u64>>,
    /// The server's limits (absent from servers older than them): the most
    /// chunks one range request may ask for, and the longest `need` list.
    #[serde(default)]
    pub max_range: Option<u64>,
    #[serde(default)]
    pub max_need: Option<usize>,
    #[serde(skip)]
    pub(super) digests: Vec<Hash>,
}

impl Manifest {
    /// Parses and checks internal consistency: one digest per chunk, offsets
    /// that tile the file, and digests that hash to `root`.
    pub(super) fn parse(body: &[u8]) -> Result<Manifest, ClientError> {
        let mut m: Manifest =
            serde_json::from_slice(body).map_err(|e| ClientError::Protocol(format!("bad manifest: {e}")))?;
        let bad = |why: &str| ClientError::Protocol(format!("inconsistent manifest: {why}"));
        m.digests = m.hashes.iter().map(|h| parse_hex(h)).collect::<Option<_>>().ok_or_else(|| bad("bad digest"))?;
        if m.digests.len() as u64 != m.chunks {
            return Err(bad("digest count differs from chunk count"));
        }
        if index::hex(&index::root_of(&m.digests)) != m.root {
            return Err(bad("digests do not hash to root"));
        }
        if m.chunk_size == 0 {
            return Err(bad("zero chunk size"));
        }
        match &m.offsets {
            Some(o) => {
                let ok = o.len() as u64 == m.chunks
                    && o.first().is_none_or(|&f| f == 0)
                    && o.windows(2).all(|w| w[0] < w[1] && w[1] - w[0] <= m.chunk_size as u64)
                    && o.last().is_none_or(|&l| l < m.size && m.size - l <= m.chunk_size as u64);
                if !ok {
                    return Err(bad("offsets do not tile the file"));
                }
            }
            None if m.chunks != m.size.div_ceil(m.chunk_size as u64) => return Err(bad("chunk count")),
            None => {}
        }
        Ok(m)
    }

    pub fn span(&self, i: u64) -> (u64, usize) {
        let c = self.chunk_size as u64;
        let (start, end) = match &self.offsets {
            Some(o) => (o[i as usize], o.get(i as usize + 1).copied().unwrap_or(self.size)),
            None => (i * c, ((i + 1) * c).min(self.size)),
        };
        (start, (end - start) as usize)
    }

    /// Chunks per range request: the server's `max_range`, else its old
    /// fixed default (256).
    pub fn range_limit(&self) -> u64 {
        self.max_range.unwrap_or(256).max(1)
    }

    /// Longest `need` list the server takes, else its old fixed limit.
    pub fn need_limit(&self) -> usize {
        self.max_need.unwrap_or(crate::params::MAX_NEED_LEN)
    }

    pub fn hash(&self, i: u64) -> Hash {
        self.digests[i as usize]
    }
}
