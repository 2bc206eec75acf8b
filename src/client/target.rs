//! What `chunkcast get URL [NAME]` asks for: the server's base URL and the
//! file name, from the URLs people paste. Checked before any network work,
//! so `get notaurl` fails at once instead of after a minute of retries.
//!
//! Accepted forms (the base may carry a path, for a server behind a proxy):
//! - `http://host:8080 NAME` (or with a trailing `/`),
//! - `http://host:8080/files/NAME` (the direct download URL),
//! - `http://host:8080/?file=NAME` (the page opened on a file; a signed
//!   link's `exp` and `sig` are kept and sent with every request).

use percent_encoding::percent_decode_str;

use super::error::ClientError;
use crate::protocol::limits::{LINK_EXPIRES, LINK_SIGNATURE};

/// The server and file a download is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `scheme://authority[/prefix]`, without a trailing `/`.
    pub base: String,
    pub name: String,
    /// Query parameters every request carries (a signed link's `exp`, `sig`).
    pub link: Vec<(String, String)>,
}

impl Target {
    /// `host:port` for messages.
    pub fn host(&self) -> &str {
        let rest = self.base.split_once("://").map_or(self.base.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest)
    }
}

/// Reads `url` (and `name`, which wins over a name found in the URL).
pub fn parse(url: &str, name: Option<&str>) -> Result<Target, ClientError> {
    let bad = |why: &str| ClientError::BadUrl(url.to_owned(), why.to_owned());
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("it has no http:// or https:// in front; write e.g. http://HOST:8080/"));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad("only http:// and https:// are supported"));
    }
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    check_authority(authority).map_err(bad)?;
    let tail = tail.split('#').next().unwrap_or_default();
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut found = None;
    let mut link = Vec::new();
    let prefix = match path.find("/files/") {
        Some(at) => {
            found = Some(decode(&path[at + "/files/".len()..], false));
            &path[..at]
        }
        None => path.strip_suffix("index.html").unwrap_or(path),
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "file" if found.is_none() => found = Some(decode(v, true)),
            LINK_EXPIRES | LINK_SIGNATURE => link.push((k.to_owned(), decode(v, true))),
            _ => {}
        }
    }
    // Names are relative to the served root: `/story.txt` means `story.txt`.
    let name = name.map(|n| Some(n.trim_start_matches('/')).filter(|t| !t.is_empty()).unwrap_or(n));
    let name = match (name, found) {
        (Some(n), _) => n.to_owned(),
        (None, Some(n)) if !n.is_empty() => n,
        _ => {
            return Err(bad("it names no file: give the file's NAME after the URL, or paste its /files/NAME URL"));
        }
    };
    let base = format!("{scheme}://{authority}{}", prefix.trim_end_matches('/'));
    Ok(Target { base, name, link })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, with an optional `user@`.
fn check_authority(authority: &str) -> Result<(), &'static str> {
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']').ok_or("its IPv6 address has no closing ]")?;
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("its IPv6 address is not valid");
            }
            (addr, after.strip_prefix(':'))
        }
        None => match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        return Err("it has no host name");
    }
    if !hostport.starts_with('[') && !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
        return Err("its host name has characters a host name cannot have");
    }
    match port {
        Some(p) if p.parse::<u16>().map_or(true, |p| p == 0) => Err("its port is not a number from 1 to 65535"),
        _ => Ok(()),
    }
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let s = if plus_is_space { s.replace('+', " ") } else { s.to_owned() };
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str, name: Option<&str>) -> (String, String) {
        let t = parse(url, name).unwrap();
        (t.base, t.name)
    }

    #[test]
    fn the_urls_people_paste_name_the_server_and_the_file() {
        let want = ("http://h:8080".to_owned(), "a b/é.txt".to_owned());
        assert_eq!(ok("http://h:8080", Some("a b/é.txt")), want);
        assert_eq!(ok("http://h:8080/", Some("a b/é.txt")), want);
        assert_eq!(ok("http://h:8080/files/a%20b/%C3%A9.txt", None), want);
        assert_eq!(ok("http://h:8080/?file=a+b%2F%C3%A9.txt", None), want);
        assert_eq!(ok("http://h:8080/index.html?file=a%20b/%C3%A9.txt#x", None), want);
        assert_eq!(ok("HTTPS://[::1]:9/cc/files/x", None), ("https://[::1]:9/cc".to_owned(), "x".to_owned()));
        assert_eq!(ok("http://h/files/x", Some("y")).1, "y", "an explicit NAME wins");
        assert_eq!(ok("http://h:8080", Some("/a b/é.txt")), want, "a leading slash is the root's");
    }

    #[test]
    fn a_signed_links_parameters_travel_with_every_request() {
        let t = parse("https://h/?file=x&exp=99&sig=ab_c", None).unwrap();
        assert_eq!(t.link, [("exp".to_owned(), "99".to_owned()), ("sig".to_owned(), "ab_c".to_owned())]);
        assert_eq!(t.host(), "h");
    }

    #[test]
    fn malformed_urls_are_refused_with_a_reason() {
        for (url, why) in [
            ("notaurl", "http://"),
            ("ftp://h/x", "only http"),
            ("http://", "no host"),
            ("http://:80/x", "no host"),
            ("http://h:99999/x", "port"),
            ("http://h:abc/x", "port"),
            ("http://h h/x", "host name"),
            ("http://[::1/x", "closing"),
            ("http://h:8080", "names no file"),
            ("http://h:8080/?file=", "names no file"),
        ] {
            match parse(url, None) {
                Err(ClientError::BadUrl(u, reason)) => {
                    assert_eq!(u, url);
                    assert!(reason.contains(why), "{url}: {reason}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
