//! Reading PEM certificate chains and private keys, with errors that name
//! the file and say what is wrong with it.

use std::path::Path;
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::der::validity;
use super::error::TlsError;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => TlsError::Missing(path.to_owned()),
        _ => TlsError::Unreadable(path.to_owned(), e),
    })
}

/// The certificate chain in `path`, leaf first.
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem(path.to_owned(), e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    for cert in &chain {
        validity(cert).ok_or_else(|| TlsError::BadCertificate(path.to_owned(), "not an X.509 certificate".into()))?;
    }
    Ok(chain)
}

/// The private key in `path`, refused when every user can read the file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey(path.to_owned()),
        e => TlsError::BadPem(path.to_owned(), e.to_string()),
    })?;
    let meta = std::fs::metadata(path).map_err(|e| TlsError::Unreadable(path.to_owned(), e))?;
    crate::safefile::check_private(path, &meta)?;
    Ok(key)
}

/// Rejects a leaf certificate outside its validity period: browsers would
/// refuse it with an error that never names the file.
pub fn check_validity(path: &Path, cert: &CertificateDer<'_>, now: SystemTime) -> Result<(), TlsError> {
    let (not_before, not_after) =
        validity(cert).ok_or_else(|| TlsError::BadCertificate(path.to_owned(), "no validity period".into()))?;
    if now > not_after {
        return Err(TlsError::Expired(path.to_owned(), humantime::format_rfc3339_seconds(not_after).to_string()));
    }
    if now < not_before {
        return Err(TlsError::NotYetValid(path.to_owned(), humantime::format_rfc3339_seconds(not_before).to_string()));
    }
    Ok(())
}
