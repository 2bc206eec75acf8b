//! Noticing that a client hung up while its response is idle.
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

/// For `HttpServer::on_connect`: remembers a connection's TCP socket (under
/// TLS too: a peer that closed its side reads end-of-file either way).
pub fn record(socket: RawFd, ext: &mut actix_web::dev::Extensions) {
    ext.insert(PeerFd(socket));
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
