//! The HTTP agent of `chunkcast get`, and what its errors mean.
//!
//! `https://` URLs are verified against the operating system's trust store
//! (what `update-ca-certificates`, `SSL_CERT_FILE` and `SSL_CERT_DIR` manage)
//! plus the certificates of `--cacert`. A certificate that does not verify,
//! or a server that speaks the other protocol than the URL says, is a
//! configuration problem no retry can fix, so it is reported at once.

use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use super::error::ClientError;

/// An agent for `url` that reads error statuses as responses (the JSON body
/// explains them), trusts the system roots plus `cacert`, and gives up on a
/// read after `stall` without a byte.
pub fn build(url: &str, cacert: Option<&Path>, stall: Duration) -> Result<ureq::Agent, ClientError> {
    let mut roots: Vec<Certificate<'static>> = Vec::new();
    // Parsing the system store costs milliseconds per client: only for https.
    // Unreadable entries in it are skipped, as curl does; an empty store
    // still works with --cacert.
    if url.starts_with("https://") {
        let native = rustls_native_certs::load_native_certs();
        roots.extend(native.certs.iter().map(|c| Certificate::from_der(c).to_owned()));
    }
    if let Some(path) = cacert {
        let chain = crate::tls::read_chain(path).map_err(ClientError::CaCert)?;
        roots.extend(chain.iter().map(|c| Certificate::from_der(c).to_owned()));
    }
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(crate::tls::provider())
        .root_certs(RootCerts::new_with_certs(&roots))
        .build();
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(stall.max(Duration::from_secs(1))))
        .tls_config(tls)
        .build()
        .into())
}

/// Sorts a failed request into what is worth retrying (the server is down,
/// restarting or the network dropped: [`ClientError::Unreachable`]) and what
/// is not (a certificate that does not verify, a URL whose scheme does not
/// match what the server speaks, a host that does not resolve).
pub fn classify(e: ureq::Error, url: &str) -> ClientError {
    let host = host_of(url);
    let https = url.starts_with("https://");
    let rustls_error = match &e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match (rustls_error, https) {
        (Some(rustls::Error::InvalidCertificate(why)), _) => {
            let reason = certificate_reason(why);
            ClientError::Untrusted {
                host: host.to_owned(),
                reason,
                source: rustls::Error::InvalidCertificate(why.clone()),
            }
        }
        (Some(rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateHandshakeMessage { .. }), true) => {
            ClientError::NotTls(host.to_owned())
        }
        (Some(other), true) => ClientError::Handshake { host: host.to_owned(), source: other.clone() },
        (_, false) if speaks_tls(&e, host) => ClientError::SpeaksTls(host.to_owned()),
        _ => retryable_or_not(e, host),
    }
}

/// The rest, in words a person reads while the client retries:
/// `cannot connect to HOST: connection refused`. A name that does not
/// resolve or a URL ureq cannot use is not worth retrying.
fn retryable_or_not(e: ureq::Error, host: &str) -> ClientError {
    use std::io::ErrorKind as K;
    let why = match &e {
        ureq::Error::HostNotFound => return ClientError::HostNotFound(host.to_owned()),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
            return ClientError::BadRequest { host: host.to_owned(), source: Box::new(e) }
        }
        ureq::Error::Io(io) => match io.kind() {
            K::ConnectionRefused => format!("cannot connect to {host}: connection refused"),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => format!("the connection to {host} was reset"),
            K::TimedOut | K::WouldBlock => format!("{host} did not answer in time"),
            K::UnexpectedEof => format!("{host} closed the connection"),
            _ => format!("cannot connect to {host}: {io}"),
        },
        ureq::Error::Timeout(ureq::Timeout::PerRead) => format!("{host} sent nothing within the stall timeout"),
        ureq::Error::Timeout(what) => format!("{host} did not answer in time ({what})"),
        ureq::Error::ConnectionFailed => format!("cannot connect to {host}"),
        other => format!("{host}: {other}"),
    };
    ClientError::Unreachable { why, source: Box::new(e) }
}

/// Whether a plain-HTTP request failed because the server speaks TLS. ureq
/// only says the reply was not HTTP, so ask again on a fresh connection and
/// look at the first bytes: a TLS server answers plaintext with an alert
/// record (`0x15 0x03 ...`).
fn speaks_tls(e: &ureq::Error, host: &str) -> bool {
    use std::io::{Read as _, Write as _};
    use std::net::ToSocketAddrs as _;
    if !matches!(e, ureq::Error::Protocol(_)) {
        return false;
    }
    let probe = || -> std::io::Result<[u8; 2]> {
        // `host` has no port when the URL uses the default one.
        let has_port = host.rsplit_once(':').is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()));
        let target = if has_port { host.to_owned() } else { format!("{host}:80") };
        let addr = target.to_socket_addrs()?.next().ok_or(std::io::ErrorKind::NotFound)?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: chunkcast\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 2];
        s.read_exact(&mut head)?;
        Ok(head)
    };
    probe().is_ok_and(|head| head == [0x15, 0x03])
}

fn certificate_reason(why: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match why {
        C::UnknownIssuer => "unknown issuer: not signed by any certificate this machine trusts".into(),
        C::Expired | C::ExpiredContext { .. } => "the certificate has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "the certificate is not valid yet".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "the certificate is for another host name; connect with a name it lists".into()
        }
        other => format!("{other:?}"),
    }
}

/// Words for an error while reading a response body (ureq wraps its own
/// errors in `io::Error` there).
pub fn describe_read(e: std::io::Error, url: &str) -> String {
    let host = host_of(url);
    match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
        Some(Ok(ureq)) => retryable_or_not(*ureq, host).to_string(),
        Some(Err(other)) => format!("{host}: {other}"),
        None => format!("{host}: the connection failed"),
    }
}

/// `host:port` of a URL, for messages.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}
