//! The HTTP agent of `chunkcast get`, and what its errors mean.
//!
//! `https://` URLs are verified against the operating system's trust store
//! (what `update-ca-certificates`, `SSL_CERT_FILE` and `SSL_CERT_DIR` manage)
//! plus the certificates of `--cacert`. A certificate that does not verify,
//! or a server that speaks the other protocol than the URL says, is a
//! configuration problem no retry can fix, so it is reported at once.

use std::path::Path;
use std::time::Duration;

use super::error::ClientError;
use super::trust;

/// An agent for `url` that reads error statuses as responses (the JSON body
/// explains them), follows no redirect by itself ([`send`] does, by its
/// rules), trusts the system roots plus `cacert`, and gives up on a read
/// after `stall` without a byte. `location`: redirects may lead to other
/// hosts (and so to https from http).
pub fn build(url: &str, cacert: Option<&Path>, stall: Duration, location: bool) -> Result<ureq::Agent, ClientError> {
    let mut roots = Vec::new();
    // Parsing the system store costs milliseconds per client: only for
    // https. Unreadable entries in it are skipped, as curl does; an empty
    // store still works with --cacert.
    if url.starts_with("https://") || location {
        roots.extend(rustls_native_certs::load_native_certs().certs);
    }
    let mut pinned = Vec::new();
    if let Some(path) = cacert {
        let chain = crate::tls::read_chain(path).map_err(ClientError::CaCert)?;
        roots.extend(chain.iter().cloned());
        pinned.extend(chain);
    }
    let tls = trust::client_config(roots, pinned)
        .map_err(|source| ClientError::Handshake { host: "the TLS set-up".into(), source })?;
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(stall.max(Duration::from_secs(1))))
        .build();
    Ok(ureq::Agent::with_parts(config, trust::connector(tls), ureq::unversioned::resolver::DefaultResolver::default()))
}

/// Most redirects one request follows.
const MAX_REDIRECTS: usize = 5;

/// A GET of `url` with `headers`, following redirects by `get`'s rules
/// (curl's, with `--location` for `location`): never from https to plain
/// http, never to another scheme or host unless `location`, at most
/// [`MAX_REDIRECTS`]. A redirect it refuses is an error that says why.
pub fn send(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    location: bool,
) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
    let mut url = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = agent.get(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.call().map_err(|e| classify(e, &url))?;
        if !res.status().is_redirection() || res.status() == 304 {
            return Ok(res);
        }
        let target = res.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let next = resolve(&url, target).ok_or_else(|| ClientError::Redirect {
            from: url.clone(),
            to: target.to_owned(),
            why: "its Location is not a URL",
        })?;
        let refuse = |why| ClientError::Redirect { from: url.clone(), to: next.clone(), why };
        let (from_scheme, to_scheme) = (scheme(&url), scheme(&next));
        if from_scheme == "https" && to_scheme != "https" {
            return Err(refuse("it would leave https for plain http"));
        }
        if (from_scheme != to_scheme || host_of(&url) != host_of(&next)) && !location {
            return Err(refuse("it leads to another host; pass --location to follow it"));
        }
        url = next;
    }
    Err(ClientError::Redirect { from: url, to: String::new(), why: "too many redirects" })
}

fn scheme(url: &str) -> String {
    url.split_once("://").map_or("", |(s, _)| s).to_ascii_lowercase()
}

/// A `Location` value made absolute against the URL it answered: an
/// absolute `http(s)://` URL, an absolute path, or a path relative to it.
fn resolve(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.is_empty() || location.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(location.to_owned());
    }
    if location.contains("://") || location.starts_with("//") {
        return None; // another scheme, or a scheme-relative URL: not followed
    }
    let origin_end = base.find("://")? + 3 + host_of(base).len();
    let (origin, path) = base.split_at(origin_end);
    if location.starts_with('/') {
        return Some(format!("{origin}{location}"));
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{origin}{}{location}", if dir.is_empty() { "/" } else { dir }))
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
        // A record that fails its MAC was damaged on the way (or forged):
        // the connection is lost, as after a cut, and worth a retry.
        (
            Some(
                e
                @ (rustls::Error::DecryptError | rustls::Error::AlertReceived(rustls::AlertDescription::BadRecordMac)),
            ),
            true,
        ) => ClientError::Unreachable {
            why: format!("the TLS connection to {host} was damaged ({e})"),
            source: Box::new(e.clone().into()),
        },
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
        // std's resolver says so in an error of no stable kind.
        ureq::Error::Io(io) if io.to_string().starts_with("failed to lookup address") => {
            return ClientError::HostNotFound(host.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_url_they_answered() {
        let base = "http://a:1/dl/api/manifest?file=x";
        assert_eq!(resolve(base, "https://b/x").as_deref(), Some("https://b/x"));
        assert_eq!(resolve(base, "/other?file=x").as_deref(), Some("http://a:1/other?file=x"));
        assert_eq!(resolve(base, "manifest2").as_deref(), Some("http://a:1/dl/api/manifest2"));
        assert_eq!(resolve("http://a:1", "x").as_deref(), Some("http://a:1/x"));
        for refused in ["", "ftp://b/x", "//b/x", "/x\r\nSet-Cookie: y"] {
            assert_eq!(resolve(base, refused), None, "{refused:?}");
        }
    }
}
