//! HTTPS for `serve`: loads and checks a PEM certificate chain and key (or
//! makes a self-signed pair for a LAN), builds the rustls `ServerConfig`, and
//! computes the SHA-256 fingerprint a person compares with the browser's
//! certificate warning.
//!
//! Every check runs once at startup so a bad file stops the server with a
//! message naming the file and the problem, instead of every handshake failing
//! later with an opaque alert in the browser.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest as _, Sha256};

/// A self-signed certificate is remade this long before it expires, so a
/// server restarted now does not start failing handshakes next week.
const RENEW_BEFORE: Duration = Duration::from_secs(7 * 24 * 3600);
/// 397 days: the longest validity Apple platforms and browsers accept for a
/// server certificate, even one the user trusts by hand.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(397 * 24 * 3600);

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
        TlsSource::SelfSigned { dir, hosts } => self_signed(dir, hosts),
    }
}

fn from_files(cert_path: &Path, key_path: &Path, generated: bool, hosts: Vec<String>) -> Result<Tls, TlsError> {
    let chain = read_chain(cert_path)?;
    let key = read_key(key_path)?;
    check_validity(cert_path, &chain[0], SystemTime::now())?;
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

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey(path.to_owned()),
        e => TlsError::BadPem(path.to_owned(), e.to_string()),
    })
}

/// Rejects a leaf certificate outside its validity period: browsers would
/// refuse it with an error that never names the file.
fn check_validity(path: &Path, cert: &CertificateDer<'_>, now: SystemTime) -> Result<(), TlsError> {
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

/// `<config dir>/chunkcast/tls`, e.g. `~/.config/chunkcast/tls`.
pub fn default_self_signed_dir() -> Result<PathBuf, TlsError> {
    dirs::config_dir().map(|d| d.join("chunkcast").join("tls")).ok_or(TlsError::NoConfigDir)
}

/// The names a self-signed certificate covers when none are given:
/// `localhost`, the machine's host name and the bind address; bound to every
/// interface (`0.0.0.0`, `::`), the address of each one, since that is what
/// a person on the LAN types when the host name does not resolve there.
pub fn default_hosts(bind: IpAddr) -> Vec<String> {
    let mut hosts = vec!["localhost".to_owned()];
    if let Some(name) = host_name() {
        hosts.push(name);
    }
    if bind.is_unspecified() {
        hosts.extend(interface_addrs().iter().map(IpAddr::to_string));
    } else {
        hosts.push(bind.to_string());
    }
    hosts
}

/// The machine's IPv4 and global IPv6 interface addresses (link-local IPv6
/// needs a zone no URL in a browser can carry).
fn interface_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we walk read-only and free once.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: `ifa_addr` points to a sockaddr whose family says its type.
        let ip: IpAddr = unsafe {
            match (*ifa.ifa_addr).sa_family as libc::c_int {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into()
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).into()
                }
                _ => continue,
            }
        };
        let link_local = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
        if !link_local && !out.contains(&ip) {
            out.push(ip);
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// The machine's host name, if it has a usable one.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(&buf[..end]).ok()?.trim().to_owned();
    (!name.is_empty() && name != "localhost").then_some(name)
}

/// Reuses `dir/cert.pem` + `dir/key.pem` when they were made for exactly
/// these hosts and stay valid a while longer; otherwise makes a new pair.
fn self_signed(dir: &Path, hosts: &[String]) -> Result<Tls, TlsError> {
    let mut hosts: Vec<String> = hosts.to_vec();
    hosts.sort();
    hosts.dedup();
    let (cert_path, key_path, hosts_path) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("hosts"));
    let recorded = std::fs::read_to_string(&hosts_path).ok();
    if recorded.as_deref() == Some(hosts_file(&hosts).as_str()) {
        let renew_at = SystemTime::now() + RENEW_BEFORE;
        if let Ok(tls) = from_files(&cert_path, &key_path, false, hosts.clone()) {
            if read_chain(&cert_path).is_ok_and(|c| check_validity(&cert_path, &c[0], renew_at).is_ok()) {
                return Ok(tls);
            }
        }
    }
    let (cert_pem, key_pem) = generate(&hosts)?;
    std::fs::create_dir_all(dir).map_err(|e| TlsError::Write(dir.to_owned(), e))?;
    write_private(&key_path, key_pem.as_bytes())?;
    std::fs::write(&cert_path, cert_pem).map_err(|e| TlsError::Write(cert_path.clone(), e))?;
    std::fs::write(&hosts_path, hosts_file(&hosts)).map_err(|e| TlsError::Write(hosts_path.clone(), e))?;
    from_files(&cert_path, &key_path, true, hosts)
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

/// Writes a private key readable by its owner only (0600 from creation, so
/// it is never briefly world-readable).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |e| TlsError::Write(path.to_owned(), e);
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)
}

/// The `notBefore` and `notAfter` of a DER X.509 certificate.
///
/// A few lines of DER walking instead of an X.509 crate: these two fields
/// are all we read, and rustls itself checks everything else.
pub fn validity(cert: &[u8]) -> Option<(SystemTime, SystemTime)> {
    let (tag, certificate, _) = der(cert)?;
    let (tag2, mut tbs, _) = der(certificate)?;
    if tag != 0x30 || tag2 != 0x30 {
        return None;
    }
    // TBSCertificate: [0] version (optional), serial, signature, issuer, validity.
    let (tag, _, rest) = der(tbs)?;
    if tag == 0xA0 {
        tbs = rest;
    }
    for _ in 0..3 {
        tbs = der(tbs)?.2;
    }
    let (tag, validity, _) = der(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (t1, before, rest) = der(validity)?;
    let (t2, after, _) = der(rest)?;
    Some((asn1_time(t1, before)?, asn1_time(t2, after)?))
}

/// One DER element: `(tag, contents, rest)`.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`, tag 0x18), as X.509 requires them.
fn asn1_time(tag: u8, bytes: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(bytes).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let field = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (month, day, hour, min, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    Some(if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn asn1_times() {
        assert_eq!(asn1_time(0x17, b"250102030405Z"), Some(at("2025-01-02T03:04:05Z")));
        assert_eq!(asn1_time(0x17, b"750101000000Z"), Some(at("1975-01-01T00:00:00Z")));
        assert_eq!(asn1_time(0x18, b"40960101000000Z"), Some(at("4096-01-01T00:00:00Z")));
        assert_eq!(asn1_time(0x17, b"251302030405Z"), None);
        assert_eq!(asn1_time(0x17, b"2501020304Z"), None);
        assert_eq!(asn1_time(0x18, b"20250102030405"), None);
    }

    #[test]
    fn generated_certificate_round_trips() {
        let hosts = vec!["localhost".to_owned(), "192.168.1.5".to_owned()];
        let (cert_pem, _key) = generate(&hosts).unwrap();
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let (before, after) = validity(&cert).unwrap();
        let now = SystemTime::now();
        assert!(before < now && now < after);
        let days = after.duration_since(before).unwrap().as_secs() / 86_400;
        assert_eq!(days, 398, "a day of skew plus 397 days");
        assert!(check_validity(Path::new("c.pem"), &cert, now + SELF_SIGNED_VALIDITY * 2).is_err());
    }

    #[test]
    fn default_hosts_name_what_a_person_can_open() {
        let bound = default_hosts("192.168.1.5".parse().unwrap());
        assert_eq!(bound[0], "localhost");
        assert!(bound.contains(&"192.168.1.5".to_owned()));
        // Every interface: loopback at least, as an IP entry.
        let any = default_hosts("0.0.0.0".parse().unwrap());
        assert!(any.contains(&"127.0.0.1".to_owned()), "{any:?}");
        assert!(!any.iter().any(|h| h == "0.0.0.0"), "{any:?}");
    }

    #[test]
    fn fingerprint_form() {
        let f = fingerprint(b"abc");
        assert_eq!(f.len(), 32 * 3 - 1);
        assert!(f.starts_with("BA:78:16:BF:"), "{f}");
    }

    #[test]
    fn truncated_der_is_rejected() {
        assert_eq!(validity(&[]), None);
        assert_eq!(validity(&[0x30, 0x82, 0xFF]), None);
        assert_eq!(validity(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
    }
}
