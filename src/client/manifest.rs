//! The manifest as the client sees it: [`crate::protocol::Manifest`],
//! parsed and checked for internal consistency, asked for each chunk's span
//! and digest. A manifest that fails its checks is a protocol error.

use super::ClientError;
pub use crate::protocol::Manifest;

impl From<crate::protocol::BadManifest> for ClientError {
    fn from(e: crate::protocol::BadManifest) -> Self {
        ClientError::Protocol(e.to_string())
    }
}
