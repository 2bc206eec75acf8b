//! The crypto provider the server and `get` share (ring), and the SHA-256
//! fingerprint of a certificate as browsers show it.

use std::fmt::Write as _;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use sha2::{Digest as _, Sha256};

/// The crypto provider for both the server and `get`: ring, chosen over
/// aws-lc-rs (rustls's default) to avoid a C/cmake build.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `AB:CD:...`: the SHA-256 of the DER certificate in the form browsers show.
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = Sha256::digest(cert);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_form() {
        let f = fingerprint(b"abc");
        assert_eq!(f.len(), 32 * 3 - 1);
        assert!(f.starts_with("BA:78:16:BF:"), "{f}");
    }
}
