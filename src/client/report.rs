//! How a download tells its caller what is happening: progress, retries and
//! notices go to a [`Reporter`], never to the terminal. The binary's
//! [`super::term::Term`] draws them; tests and embedders pass [`Silent`] or
//! their own.

use std::path::PathBuf;
use std::time::Duration;

use crate::protocol::LiveState;

/// What the download is about to do, once the manifest is in.
#[derive(Debug, Clone)]
pub struct Start<'a> {
    pub name: &'a str,
    /// The file's size.
    pub size: u64,
    /// Bytes already verified on disk (a resumed part file), or already
    /// acknowledged by the server (a resumed publication).
    pub have: u64,
    /// A live text: `size` is what exists so far, more is to come.
    pub live: bool,
}

/// Why the next request waits, and how long.
#[derive(Debug, Clone)]
pub struct Retry<'a> {
    /// What failed, in words: `cannot connect to HOST: connection refused`.
    pub why: &'a str,
    /// The attempt about to be made (2 for the first retry).
    pub attempt: u32,
    /// The most attempts that will be made in a row without progress.
    pub of: u32,
    pub delay: Duration,
    /// A stream that was receiving dropped (rather than a request failing).
    pub reconnect: bool,
}

/// Receives a download's progress. Every method may be called from several
/// threads (range refills run in parallel), hence `Sync`.
pub trait Reporter: Sync {
    /// The manifest is in and the output is open.
    fn start(&self, _start: &Start<'_>) {}
    /// `new` more bytes were verified in this run; `verified` in all.
    fn progress(&self, _verified: u64, _new: u64) {}
    /// A request failed or a stream dropped; the next attempt follows after
    /// `retry.delay`.
    fn retry(&self, _retry: &Retry<'_>) {}
    /// A live publication's producer went (`Interrupted`) or came back
    /// (`Live`).
    fn live_state(&self, _state: LiveState) {}
    /// Something the user should know that is not an error (a new version
    /// on the server and the chunks kept of the old one, a file already
    /// downloaded).
    fn notice(&self, _message: &str) {}
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {}

/// What a finished download reports.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub path: PathBuf,
    pub bytes: u64,
    /// The `root` over the digests every chunk was checked against, which
    /// `get` recomputed: what it proved of the bytes it wrote.
    pub root: String,
    /// The whole file's SHA-256, computed by `get` over the bytes it wrote
    /// (with `--verify-sha256`); never the manifest's claim.
    pub sha256: Option<String>,
    /// The file's chunks (of the version downloaded).
    pub chunks: u64,
    /// Chunks found intact in a part file and not downloaded again.
    pub resumed_chunks: u64,
    /// `get --update` ran on an existing output file: `reused_chunks`
    /// (`reused_bytes`) of it matched the new version and were copied.
    pub updated: bool,
    pub reused_chunks: u64,
    pub reused_bytes: u64,
    /// The file changed on the server during the download this many times;
    /// `kept_chunks` verified chunks (over all the changes) were kept
    /// because the new version repeated them.
    pub new_versions: u64,
    pub kept_chunks: u64,
    /// Chunks (and bytes) verified from the network in this run, across
    /// every version the download went through.
    pub fetched_chunks: u64,
    pub fetched_bytes: u64,
    /// Bytes verified in this run (fetched, not resumed or reused from disk).
    pub bytes_this_run: u64,
    pub reconnects: u64,
    pub corrupt_chunks: u64,
    pub refilled_chunks: u64,
    /// Payload bytes received beyond one copy of each chunk.
    pub bytes_resent: u64,
    pub seconds: f64,
    /// The output already was this version: nothing was transferred.
    pub already_there: bool,
}
