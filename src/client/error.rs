//! What `chunkcast get` and `chunkcast publish` can fail with, each a sentence for the terminal.
//! Text that came from the server is escaped where it enters a message
//! (`logsafe::Esc`), so no server can drive the user's terminal.

use std::path::PathBuf;

use crate::logsafe::Esc;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot use {0:?} as a URL: {1}")]
    BadUrl(String, String),
    /// A command line that cannot be used as given.
    #[error("{0}")]
    Usage(String),
    #[error("the server has no file named {0:?}")]
    NotFound(String),
    #[error("{}", if *.given { "the server refused this user name or password" } else { "the server asks for a user name and password: pass --user USER (chunkcast asks for the password)" })]
    Unauthorized { given: bool },
    /// 403: an expired or foreign link, or a host name the server does not
    /// answer for; the server's own sentence says which.
    #[error("the server refused: {0}")]
    Refused(String),
    #[error("{0:?} is a folder on the server; name a file in it ({0}/NAME)")]
    IsFolder(String),
    #[error("{error}; removed {}, which could never complete", .part.display())]
    PartRemoved { error: Box<ClientError>, part: PathBuf },
    #[error("{0:?} was removed from the server during the download (the manifest now answers 404)")]
    Gone(String),
    #[error("{0:?} changed on the server during the download; run again to fetch the new version")]
    Changed(String),
    /// Worth retrying: the server is down or restarting, or the network
    /// dropped. `why` is the sentence shown while retrying.
    #[error("{why}")]
    Unreachable {
        why: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("cannot find the host {0} (name lookup failed)")]
    HostNotFound(String),
    /// The very first request found nothing listening: most likely the
    /// server is not running or the address is wrong, so `get` says so at
    /// once instead of retrying (a server that answered once is retried).
    #[error("{0}; is the server running, and is the address right?")]
    NotListening(String),
    #[error("{0:?} is binary and standard output is a terminal: pass -o FILE, or pipe it into a program")]
    BinaryToTerminal(String),
    #[error("bad request to {host}: {source}")]
    BadRequest {
        host: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("the certificate of {host} is not trusted ({reason}); if it is self-signed, pass it with --cacert FILE")]
    Untrusted {
        host: String,
        reason: String,
        /// `InvalidCertificate`.
        #[source]
        source: rustls::Error,
    },
    #[error("{0} did not answer with TLS: is it a plain-HTTP server? Try http:// instead of https://")]
    NotTls(String),
    #[error("{0} answered with TLS, not plain HTTP: use https:// instead of http://")]
    SpeaksTls(String),
    #[error("TLS handshake with {host} failed: {source}")]
    Handshake {
        host: String,
        #[source]
        source: rustls::Error,
    },
    #[error("--cacert: {0}")]
    CaCert(#[source] crate::tls::TlsError),
    #[error("server error: {0}")]
    Server(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    /// serde's messages quote what they refused: the server's text, escaped.
    #[error("protocol error: {}", Esc(&.0.to_string()))]
    BadManifest(#[from] crate::protocol::BadManifest),
    #[error("protocol error: bad {what} event: {}", Esc(&.source.to_string()))]
    BadEvent {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A broken invariant of the client itself (a worker thread panicked).
    #[error("internal error: {0}")]
    Internal(&'static str),
    #[error("gave up after {0} attempts: {1}")]
    GaveUp(u32, String),
    #[error("verification failed: {0}")]
    Verify(String),
    #[error("cannot name the output file after {0:?}: {1}; pass -o PATH")]
    OutputName(String, &'static str),
    #[error("{}: {}", .0.display(), .1)]
    Output(PathBuf, String),
    #[error("refused the redirect from {} to {}: {why}", Esc(.from), Esc(.to))]
    Redirect { from: String, to: String, why: &'static str },
    #[error("{} already exists and is not this file; pass --update to bring it to this version (only the chunks that differ are fetched), or --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("{}: the file needs {} more, and its filesystem has {} free", .path.display(), indicatif::BinaryBytes(*.needed), indicatif::BinaryBytes(*.free))]
    NoSpace { path: PathBuf, needed: u64, free: u64 },
    /// A local file operation failed; the message names the path once
    /// (the error is not a `source`, so no chain repeats it).
    #[error("{}: {}", .0.display(), .1)]
    File(PathBuf, std::io::Error),
    /// A live publication, and `get` was not told to follow it.
    #[error("{} is being published (live, {chunks} chunks so far); add --follow to follow it to its end", Esc(.name))]
    Live { name: String, chunks: u64 },
    /// `POST /api/publish` answered 404.
    #[error("{host} does not take {}: it runs without --publish, or the folder of that name does not exist there", Esc(.name))]
    NotPublishing { host: String, name: String },
    #[error("{} already exists on the server as a finished file; pass --replace to publish a new version of it", Esc(.0))]
    PublishExists(String),
    #[error("{} is already being published ({offset} bytes so far, {}): if another producer is sending it, wait for it to end; if this command was killed, run again with --resume and the same input", Esc(.name), .state.as_str())]
    AlreadyLive { name: String, offset: u64, state: crate::protocol::LiveState },
    #[error("another producer is publishing {} right now; wait for it to end", Esc(.0))]
    ProducerActive(String),
    #[error("{} has ended ({}): there is nothing to resume; pass --replace to publish a new version of it", Esc(.name), .state.as_str())]
    NothingToResume { name: String, state: crate::protocol::LiveState },
    #[error("the input is not UTF-8 text (the first invalid byte is at offset {offset}); publish sends text only: the server kept the {offset} bytes before it and ended the publication (pass --replace to publish it again)")]
    NotText { offset: u64 },
    #[error("{} passed the server's --max-publish: it kept the first {offset} bytes and ended the publication", Esc(.name))]
    TooLarge { name: String, offset: u64 },
    #[error("the publication of {} ended on the server ({}) at {offset} bytes, before all of the input was sent", Esc(.name), .state.as_str())]
    PublicationEnded { name: String, state: crate::protocol::LiveState, offset: u64 },
    /// The server's offset is outside the bytes the producer still holds.
    #[error("the server has {server} bytes of {}, but this run holds bytes {from} to {to}; was it restarted from an older copy, or is another producer publishing it?", Esc(.name))]
    OffsetLost { name: String, server: u64, from: u64, to: u64 },
    #[error(
        "--resume: the input ends after {read} bytes, but the server already has {offset}: it is not the same input"
    )]
    InputShort { read: u64, offset: u64 },
    #[error("--resume: the input differs from the {offset} bytes the server already has (chunk {chunk} does not match): it is not the same input")]
    InputDiffers { offset: u64, chunk: u64 },
    /// The disk (or the user's quota) filled up while writing `0`.
    #[error("no space left on the device of {}; free some and run the same command again (the verified chunks are kept)", .0.display())]
    DiskFull(PathBuf, #[source] std::io::Error),
}

impl ClientError {
    /// A connection refused outright (nothing listens at the address).
    pub fn is_refused(&self) -> bool {
        matches!(self, ClientError::Unreachable { source, .. }
            if matches!(source.as_ref(), ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused))
    }

    /// Standard output's reader went away (`get -o - NAME | head`): not a
    /// failure to report, as for `cat`.
    pub fn is_reader_gone(&self) -> bool {
        matches!(self, ClientError::File(_, e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// A failed operation on a local file: [`ClientError::DiskFull`] when
    /// the device is full, else [`ClientError::File`].
    pub fn file(path: PathBuf, e: std::io::Error) -> ClientError {
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => ClientError::DiskFull(path, e),
            _ => ClientError::File(path, e),
        }
    }
}
