//! A checked `get` command line (`cli::get` builds it before any network
//! work): the target parsed, the output decided, every number bounded.

use std::path::PathBuf;
use std::time::Duration;

use super::output::Output;
use super::target::Target;

/// A checked `get` command line: the target parsed, the output decided.
#[derive(Debug, Clone)]
pub struct GetConfig {
    pub target: Target,
    pub output: Output,
    /// Replace an existing regular file.
    pub force: bool,
    pub rate: Option<u64>,
    pub stall_timeout: Duration,
    pub retries: u32,
    pub parallel: usize,
    pub verify_sha256: bool,
    /// Follow redirects to other hosts (`--location`).
    pub location: bool,
    /// `--user`: a user name and password for the server's `--auth`.
    pub user: Option<(String, String)>,
    pub cacert: Option<PathBuf>,
}
