//! The manifest as the client sees it: [`crate::protocol::Manifest`],
//! parsed and checked for internal consistency, asked for each chunk's span
//! and digest, with the limits it assumes of a server that does not say. A
//! manifest that fails its checks is a protocol error
//! (`ClientError::BadManifest`).

use crate::protocol::limits::{DEFAULT_MAX_RANGE, MAX_NEED_LEN};
pub use crate::protocol::Manifest;

impl Manifest {
    /// Chunks per range request: the server's `max_range`, else its old
    /// fixed default.
    pub fn range_limit(&self) -> u64 {
        self.max_range.unwrap_or(DEFAULT_MAX_RANGE).max(1)
    }

    /// Longest `need` list the server takes, else its old fixed limit.
    pub fn need_limit(&self) -> usize {
        self.max_need.unwrap_or(MAX_NEED_LEN)
    }
}
