//! The client's socket: dropping peers that vanished without a FIN, and
//! noticing that a client hung up while its response is idle.
//!
//! actix only learns of a closed connection when it next writes to it, and a
//! paced stream may not write for a whole keep-alive interval (15 s by
//! default), holding a stream slot and two descriptors for a client that is
//! long gone. So each connection's socket descriptor is recorded when it is
//! accepted ([`record`]), and a waiting stream peeks at it every
//! [`CHECK_EVERY`]: end-of-file means the client closed its side.

use std::os::fd::RawFd;
use std::time::Duration;

/// How often an idle paced stream looks at its socket.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The socket of the connection a request came on. Valid for as long as the
/// connection, so for as long as any response body on it is being polled.
#[derive(Debug, Clone, Copy)]
pub struct PeerFd(RawFd);

/// For `HttpServer::on_connect`: turns on the half-open checks of the
/// connection's TCP socket and remembers it (under TLS too: a peer that
/// closed its side reads end-of-file either way).
pub fn on_connect(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    if let Some(socket) = socket_of(conn) {
        reap_half_open(socket);
        ext.insert(PeerFd(socket));
    }
    ext.insert(crate::server::slots::ConnectionSlots::default());
}

impl PeerFd {
    /// True when the peer closed the connection (or it failed): a peek
    /// without waiting reads end-of-file or an error. Bytes waiting to be
    /// read (a pipelined request) mean the peer is still there.
    pub fn hung_up(self) -> bool {
        let mut byte = 0u8;
        // SAFETY: peeks at most one byte into `byte`; `self.0` is the live
        // socket of the connection whose response is asking.
        let n = unsafe { libc::recv(self.0, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
        match n {
            0 => true,
            n if n > 0 => false,
            _ => {
                let e = std::io::Error::last_os_error().raw_os_error();
                !matches!(e, Some(libc::EAGAIN | libc::EINTR))
            }
        }
    }
}

/// The TCP socket under an accepted connection, plain or TLS.
fn socket_of(conn: &dyn std::any::Any) -> Option<std::os::fd::RawFd> {
    use actix_web::rt::net::TcpStream;
    use std::os::fd::AsRawFd;
    if let Some(tcp) = conn.downcast_ref::<TcpStream>() {
        return Some(tcp.as_raw_fd());
    }
    let tls = conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()?;
    Some(tls.get_ref().0.as_raw_fd())
}

/// Turns on TCP keepalive (first probe after 30 s idle, then every 10 s, 3
/// misses) and a 60 s `TCP_USER_TIMEOUT`, so a peer that vanished without a
/// FIN (a laptop closed mid-download) is dropped instead of holding a stream
/// slot. A live client that merely reads slowly still acks, and stays.
fn reap_half_open(fd: std::os::fd::RawFd) {
    let set = |level, name, value: libc::c_int| {
        // SAFETY: setsockopt reads `value` for its size; fd is a live socket.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 60_000);
}
