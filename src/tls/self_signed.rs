//! `--tls-self-signed`: a certificate for this machine's names, made once
//! into the user's config directory (the key readable by its owner only)
//! and reused while it covers the same names and is not about to expire.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::TlsError;
use super::pem::{check_validity, read_chain};
use crate::safefile;

/// A self-signed certificate is remade this long before it expires, so a
/// server restarted now does not start failing handshakes next week.
const RENEW_BEFORE: Duration = Duration::from_secs(7 * 24 * 3600);
/// 397 days: the longest validity Apple platforms and browsers accept for a
/// server certificate, even one the user trusts by hand.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(397 * 24 * 3600);

/// `<config dir>/chunkcast/tls`, e.g. `~/.config/chunkcast/tls`.
pub fn default_self_signed_dir() -> Result<PathBuf, TlsError> {
    dirs::config_dir().map(|d| d.join("chunkcast").join("tls")).ok_or(TlsError::NoConfigDir)
}

/// A self-signed pair on disk, for `certificate::load` to check and serve.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Made on this start (rather than reused).
    pub generated: bool,
    /// The names it covers, sorted.
    pub hosts: Vec<String>,
}

/// Reuses `dir/cert.pem` + `dir/key.pem` when they were made for exactly
/// these hosts and stay valid a while longer (unless `remake`); otherwise
/// makes a new pair.
pub fn ensure(dir: &Path, hosts: &[String], remake: bool) -> Result<Pair, TlsError> {
    let mut hosts: Vec<String> = hosts.to_vec();
    hosts.sort();
    hosts.dedup();
    let (cert_path, key_path, hosts_path) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("hosts"));
    let recorded = std::fs::read_to_string(&hosts_path).ok();
    if !remake && recorded.as_deref() == Some(hosts_file(&hosts).as_str()) {
        let renew_at = SystemTime::now() + RENEW_BEFORE;
        if read_chain(&cert_path).is_ok_and(|c| check_validity(&cert_path, &c[0], renew_at).is_ok()) {
            return Ok(Pair { cert: cert_path, key: key_path, generated: false, hosts });
        }
    }
    let (cert_pem, key_pem) = generate(&hosts)?;
    safefile::private_dir(dir).map_err(|e| TlsError::Write(dir.to_owned(), e))?;
    // Each a new private file renamed into place: a symlink planted in the
    // directory is replaced, never written through.
    for (path, bytes) in [(&key_path, key_pem), (&cert_path, cert_pem), (&hosts_path, hosts_file(&hosts))] {
        safefile::write_private(path, bytes.as_bytes()).map_err(|e| TlsError::Write(path.clone(), e))?;
    }
    Ok(Pair { cert: cert_path, key: key_path, generated: true, hosts })
}

fn hosts_file(hosts: &[String]) -> String {
    hosts.iter().map(|h| format!("{h}\n")).collect()
}

/// A fresh ECDSA P-256 key and a certificate for `hosts` (IP addresses
/// become IP SANs), valid from a day ago (clock skew between machines) for
/// [`SELF_SIGNED_VALIDITY`]. Returns `(cert_pem, key_pem)`.
pub fn generate(hosts: &[String]) -> Result<(String, String), TlsError> {
    let fail = |e: rcgen::Error| TlsError::Generate(hosts.to_vec(), e.to_string());
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(fail)?;
    let now = SystemTime::now();
    params.not_before = offset_date_time(now - Duration::from_secs(24 * 3600));
    params.not_after = offset_date_time(now + SELF_SIGNED_VALIDITY);
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, format!("chunkcast self-signed ({})", hosts.join(", ")));
    params.distinguished_name = name;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key).map_err(fail)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn offset_date_time(t: SystemTime) -> time::OffsetDateTime {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;

    #[test]
    fn generated_certificate_round_trips() {
        let hosts = vec!["localhost".to_owned(), "192.168.1.5".to_owned()];
        let (cert_pem, _key) = generate(&hosts).unwrap();
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let (before, after) = super::super::der::validity(&cert).unwrap();
        let now = SystemTime::now();
        assert!(before < now && now < after);
        let days = after.duration_since(before).unwrap().as_secs() / 86_400;
        assert_eq!(days, 398, "a day of skew plus 397 days");
        assert!(check_validity(Path::new("c.pem"), &cert, now + SELF_SIGNED_VALIDITY * 2).is_err());
    }
}
