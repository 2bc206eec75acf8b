//! The manifest as the client sees it: [`crate::protocol::Manifest`],
//! parsed and checked for internal consistency, asked for each chunk's span
//! and digest. A manifest that fails its checks is a protocol error.

use super::error::ClientError;
use crate::protocol::limits::{DEFAULT_MAX_RANGE, MAX_NEED_LEN};
pub use crate::protocol::Manifest;

impl From<crate::protocol::BadManifest> for ClientError {
    fn from(e: crate::protocol::BadManifest) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

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
