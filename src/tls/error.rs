//! Everything a certificate, a key or their files can be wrong with, each
//! naming the file, so the server stops at startup with a sentence instead
//! of failing every handshake later.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}: file not found")]
    Missing(PathBuf),
    /// A file a flag names (`--tls-cert`, `--tls-key`) is not there.
    #[error("{flag} {path}: file not found")]
    MissingFor { flag: &'static str, path: PathBuf },
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
    #[error(transparent)]
    Exposed(#[from] crate::safefile::Exposed),
    #[error("TLS set-up failed: {0}")]
    Rustls(#[from] rustls::Error),
}
