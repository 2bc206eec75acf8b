//! DNS-rebinding defence: which `Host` a request may name
//! (`middleware::host` refuses the others).
//!
//! A page on another site can point its own host name at 127.0.0.1 and then
//! read a loopback-only server as "same origin". The browser still sends the
//! attacker's name in `Host`, so a server bound to a loopback address answers
//! only loopback names (`localhost`, `*.localhost`, `127.x.y.z`, `[::1]`, any
//! port) plus the operator's `--allowed-host` names. A server bound to a LAN
//! or unspecified address is meant to be reached by whatever name the network
//! gives it, so it checks nothing unless `--allowed-host` is given (then
//! those names plus the loopback ones).

use std::net::{IpAddr, SocketAddr};

/// Which hosts a server accepts; built once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// `None`: no check at all.
    allowed: Option<Vec<String>>,
}

impl HostPolicy {
    /// `bind`: every address the server listens on; it is a loopback server
    /// when all of them are loopback (`localhost:8080` is).
    pub fn new(bind: &[SocketAddr], allowed_hosts: &[String]) -> HostPolicy {
        let loopback = !bind.is_empty() && bind.iter().all(|a| a.ip().is_loopback());
        let allowed = if loopback || !allowed_hosts.is_empty() {
            Some(allowed_hosts.iter().map(|h| normalize(h)).collect())
        } else {
            None
        };
        HostPolicy { allowed }
    }

    /// Whether a request naming `host` (a `Host` header value: name or
    /// address, optional port) may be answered.
    pub fn allows(&self, host: &str) -> bool {
        let Some(allowed) = &self.allowed else { return true };
        let name = normalize(strip_port(host));
        is_loopback_name(&name) || allowed.contains(&name)
    }
}

/// `name:port`, `[v6]:port`, `[v6]` or `name` → the name part.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(addr, _)| addr);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Lowercase, without the root label's trailing dot or IPv6 brackets.
fn normalize(name: &str) -> String {
    let name = name.trim().trim_start_matches('[').trim_end_matches(']');
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_binds_accept_loopback_names_and_the_allowed_ones() {
        let p = HostPolicy::new(&["127.0.0.1:8080".parse().unwrap()], &["My.Box".into()]);
        for ok in [
            "localhost",
            "LOCALHOST:80",
            "app.localhost:1",
            "127.0.0.1",
            "127.9.9.9:8080",
            "[::1]:8080",
            "[::1]",
            "my.box",
            "my.box.:9",
            "localhost.",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1",
            "[::2]",
            "",
            "my.box.evil",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
    }

    #[test]
    fn other_binds_check_only_when_names_are_given() {
        let open = HostPolicy::new(&["0.0.0.0:8080".parse().unwrap()], &[]);
        assert!(open.allows("anything.example:1"));
        let named = HostPolicy::new(&["192.168.1.5:8080".parse().unwrap()], &["files.lan".into()]);
        assert!(named.allows("files.lan:8080") && named.allows("localhost"));
        assert!(!named.allows("192.168.1.5:8080") && !named.allows("evil.example"));
    }
}
