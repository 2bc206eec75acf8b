//! TLS for both sides: the server's certificate (loaded from PEM files and
//! checked, or self-signed for a LAN) and rustls `ServerConfig`, the
//! fingerprint a person compares with the browser's certificate warning,
//! and the crypto provider and PEM reading `chunkcast get` shares.
//!
//! Every check runs once at startup so a bad file stops the server with a
//! message naming the file and the problem, instead of every handshake failing
//! later with an opaque alert in the browser.
//!
//! - [`pem`]: reading certificate chains and keys, with errors naming the file;
//! - [`der`]: the two validity dates, read from the DER certificate;
//! - [`self_signed`]: `--tls-self-signed`, made once and reused;
//! - [`interfaces`]: the machine's names and addresses a certificate covers.

pub mod der;
pub mod interfaces;
pub mod pem;
pub mod self_signed;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use sha2::{Digest as _, Sha256};

pub use interfaces::{default_hosts, host_name};
pub use pem::read_chain;
pub use self_signed::{default_self_signed_dir, generate};

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// `--tls-cert FILE --tls-key FILE`.
    Files { cert: PathBuf, key: PathBuf },
    /// `--tls-self-signed [HOST...]`: made once into `dir`, reused while it
    /// still covers `hosts` and is not about to expire.
    SelfSigned { dir: PathBuf, hosts: Vec<String> },
}

/// A checked certificate and key, ready to serve.
#[derive(Debug, Clone)]
pub struct Tls {
    /// ALPN is left empty: actix-web offers `h2` then `http/1.1` itself.
    pub server_config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, `AB:CD:...` as browsers show it.
    pub fingerprint: String,
    /// The certificate file served (for the startup message).
    pub cert_path: PathBuf,
    /// Whether `--tls-self-signed` made a new certificate on this start.
    pub generated: bool,
    /// The names a self-signed certificate covers (empty for `--tls-cert`).
    pub hosts: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}: file not found")]
    Missing(PathBuf),
    #[error("{0}: cannot read: {1}")]
    Unreadable(PathBuf, #[source] std::io::Error),
    #[error("{0}: no certificate in it (expected a PEM file with a \"BEGIN CERTIFICATE\" block)")]
    NoCertificate(PathBuf),
    #[error("{0}: not valid PEM: {1}")]
    BadPem(PathBuf, String),
    #[error("{0}: not a readable certificate: {1}")]
    BadCertificate(PathBuf, String),
    #[error("{0}: no private key in it (expected a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)")]
    NoKey(PathBuf),
    #[error("{0}: unsupported or damaged private key: {1}")]
    BadKey(PathBuf, String),
    #[error("{key}: this key does not match the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{0}: the certificate expired on {1}")]
    Expired(PathBuf, String),
    #[error("{0}: the certificate is not valid until {1}")]
    NotYetValid(PathBuf, String),
    #[error("no configuration directory to keep a self-signed certificate in (set $HOME or $XDG_CONFIG_HOME)")]
    NoConfigDir,
    #[error("cannot make a self-signed certificate for {0:?}: {1}")]
    Generate(Vec<String>, String),
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("TLS set-up failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The protocols a server offers: ALPN `h2` then `http/1.1` over TLS; plain
/// HTTP is HTTP/1.1 only (browsers speak HTTP/2 only over TLS).
pub fn protocols(tls: bool) -> &'static [&'static str] {
    if tls {
        &["h2", "http/1.1"]
    } else {
        &["http/1.1"]
    }
}

/// The crypto provider for both the server and `get`: ring, chosen over
/// aws-lc-rs (rustls's default) to avoid a C/cmake build.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's suites with AES-128-GCM first (clients usually ask for
/// AES-256 first). Both are safe here; AES-128 runs 10 rounds instead of 14,
/// and encryption is most of what TLS adds to a stream's CPU cost: on a
/// machine whose AES-GCM runs near 1 GB/s it is a third of the server's
/// work per byte.
fn aes128_first(provider: &CryptoProvider) -> CryptoProvider {
    use rustls::CipherSuite as C;
    let mut p = provider.clone();
    p.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            C::TLS13_AES_128_GCM_SHA256
                | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    p
}

/// Loads (or makes) the certificate and key and checks them.
pub fn load(source: &TlsSource) -> Result<Tls, TlsError> {
    match source {
        TlsSource::Files { cert, key } => from_files(cert, key, false, Vec::new()),
        TlsSource::SelfSigned { dir, hosts } => self_signed::load(dir, hosts),
    }
}

pub(crate) fn from_files(
    cert_path: &Path,
    key_path: &Path,
    generated: bool,
    hosts: Vec<String>,
) -> Result<Tls, TlsError> {
    let chain = read_chain(cert_path)?;
    let key = pem::read_key(key_path)?;
    pem::check_validity(cert_path, &chain[0], SystemTime::now())?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::BadKey(key_path.to_owned(), e.to_string()))?;
    let certified = CertifiedKey::new(chain.clone(), signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch { cert: cert_path.to_owned(), key: key_path.to_owned() })
        }
        Err(e) => return Err(TlsError::BadCertificate(cert_path.to_owned(), e.to_string())),
    }
    let fingerprint = fingerprint(&chain[0]);
    let mut server_config = rustls::ServerConfig::builder_with_provider(Arc::new(aes128_first(&provider)))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    server_config.ignore_client_order = true;
    Ok(Tls { server_config: Arc::new(server_config), fingerprint, cert_path: cert_path.to_owned(), generated, hosts })
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
