//! The server's certificate: loaded from PEM files (or made self-signed),
//! checked (validity dates, the key matching the certificate), and built
//! into the rustls `ServerConfig` with the suites in the order we want.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use super::crypto::{fingerprint, provider};
use super::error::TlsError;
use super::pem::{self, read_chain};
use super::self_signed;

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

/// The protocols a server offers: ALPN `h2` then `http/1.1` over TLS; plain
/// HTTP is HTTP/1.1 only (browsers speak HTTP/2 only over TLS).
pub fn protocols(tls: bool) -> &'static [&'static str] {
    if tls {
        &["h2", "http/1.1"]
    } else {
        &["http/1.1"]
    }
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
        TlsSource::SelfSigned { dir, hosts } => {
            let pair = self_signed::ensure(dir, hosts, false)?;
            match from_files(&pair.cert, &pair.key, pair.generated, pair.hosts.clone()) {
                // A reused pair that no longer loads (its key swapped, say)
                // is made again, as a missing one would be.
                Err(_) if !pair.generated => {
                    let pair = self_signed::ensure(dir, hosts, true)?;
                    from_files(&pair.cert, &pair.key, pair.generated, pair.hosts)
                }
                loaded => loaded,
            }
        }
    }
}

fn from_files(cert_path: &Path, key_path: &Path, generated: bool, hosts: Vec<String>) -> Result<Tls, TlsError> {
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
