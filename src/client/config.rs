//! Checked command lines of the client commands (`cli::get` and
//! `cli::publish` build them before any network work): the target parsed,
//! the output or input decided, every number bounded, and the connection
//! options both share.

use std::path::PathBuf;
use std::time::Duration;

use super::output::Output;
use super::target::Target;

/// How to reach a server, the same for every client command.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// `--user`: a user name and password for the server's `--auth`.
    pub user: Option<(String, String)>,
    /// `--cacert`: more certificates to trust for `https://`.
    pub cacert: Option<PathBuf>,
}

/// A checked `get` command line: the target parsed, the output decided.
#[derive(Debug, Clone)]
pub struct GetConfig {
    pub target: Target,
    pub output: Output,
    /// Replace an existing regular file.
    pub force: bool,
    /// `--update`: bring an existing output file to the server's version,
    /// reusing its chunks that match the new manifest at the same offsets.
    pub update: bool,
    pub rate: Option<u64>,
    pub stall_timeout: Duration,
    pub retries: u32,
    /// `--retries` was given: a first connection that is refused is
    /// retried too (a server about to start); else it fails at once.
    pub retry_refused: bool,
    pub parallel: usize,
    pub verify_sha256: bool,
    /// Follow redirects to other hosts (`--location`).
    pub location: bool,
    pub connect: Connect,
    /// `--follow`: a live publication is followed to its end (else refused).
    pub follow: bool,
    /// `--transport`: how the chunks travel.
    pub transport: Transport,
}

/// How `get` fetches a file's chunks. Either way each is checked against
/// the manifest's digest before it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// The file's raw bytes by `Range` from `/files` (`client::raw`), the
    /// event stream where that is not possible or something is unexpected.
    #[default]
    Auto,
    /// Only the event stream (`/events`) and its range refills.
    Events,
}

/// Where `publish` reads its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

/// A checked `publish` command line.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// The server and the name to publish under.
    pub target: Target,
    pub input: Input,
    /// `--replace`: a finished file by that name is replaced by a new version.
    pub replace: bool,
    /// `--resume`: continue a live publication from the server's offset,
    /// skipping that many bytes of the (same) input.
    pub resume: bool,
    pub retries: u32,
    /// A request that receives nothing for this long is given up and retried.
    pub stall_timeout: Duration,
    pub connect: Connect,
}
