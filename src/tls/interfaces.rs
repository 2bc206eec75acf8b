//! The names and addresses a person can reach this machine by: its host
//! name and every interface's address.

use std::net::IpAddr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
