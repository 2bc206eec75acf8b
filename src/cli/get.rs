//! `chunkcast get`: the flags, checked into a [`GetConfig`] before any
//! network work (the URL parsed, the output path decided).

use std::path::PathBuf;

use clap::Args;

use super::connect::{stall_timeout, ConnectArgs};
use super::size::parse_size;
use crate::client::{target, ClientError, Connect, GetConfig, Output, Transport};
use crate::protocol::limits::MAX_STREAMS_PER_CONNECTION;

/// `--retries` when not given.
const DEFAULT_RETRIES: u32 = 10;

/// The most `--parallel` range requests: what one HTTP/2 connection may hold
/// open on the server.
const MAX_PARALLEL: usize = MAX_STREAMS_PER_CONNECTION;

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Output rules:
  Without -o, the file is saved in the current directory under NAME's last component.
  An existing file is never replaced without --force or --update, unless it already is this
  version of the file (then nothing is downloaded). A regular file is written as PATH.part (with
  PATH.part.json) and renamed once every chunk is verified; if interrupted, running the same
  command again resumes from the verified chunks on disk.
  -o - streams the verified bytes to standard output, in order; -o /dev/null, another device
  or a named pipe is written straight through, in order. Neither keeps a part file: an
  interrupted download starts over.

Updating:
  A new version repeats most chunks of the old one when the file grew or changed in place.
  --update reads the existing output at the new version's chunk offsets, keeps every chunk
  whose SHA-256 matches, fetches only the others into PATH.part and renames it over PATH once
  verified (until then the old file is untouched; a kill leaves it, and a rerun resumes).
  Run it again and again on a log another process appends to: each run transfers what was
  appended since the last (and the last partial chunk again). A part file of an older version,
  or a download whose file changes on the server meanwhile, keeps the same way every verified
  chunk the new version repeats.

Examples:
  chunkcast get http://host:8080 docs/report.pdf
  chunkcast get http://host:8080/files/docs/report.pdf -o ~/Downloads/
  chunkcast get 'http://host:8080/?file=big.iso' -o - | sha256sum
  chunkcast get http://host:8080 logs/app.log --update")]
pub struct GetArgs {
    /// The server: its address (http://HOST:8080) followed by NAME, a file's
    /// /files/NAME URL, or the page's URL opened on a file (?file=NAME).
    pub url: String,
    /// File name as listed by /api/files (not needed when URL names the file).
    pub name: Option<String>,
    /// Where to save: a file, an existing directory (saved inside under NAME's
    /// last component), `-` for standard output, or a device or named pipe
    /// [default: NAME's last component, never a name from the server]
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Bring an existing output file to the server's current version: its
    /// chunks that match the new version at the same offsets are reused,
    /// only the others are fetched (see "Updating" below).
    #[arg(long)]
    pub update: bool,
    /// Ask the server to pace the stream to this many payload bytes per second
    /// (only the event stream is paced: implies --transport events).
    #[arg(long, value_parser = parse_size)]
    pub rate: Option<u64>,
    /// How chunks travel: `auto` reads the file's raw bytes by range from
    /// /files where the server allows it and streams /events otherwise;
    /// `events` only streams /events. Every chunk is verified either way.
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    pub transport: TransportArg,
    /// Seconds without any byte from the server before the stream is reopened.
    #[arg(long, default_value_t = 30)]
    pub stall_timeout: u64,
    /// Retry this many times in a row, then give up (default 10): servers
    /// that went away, streams that dropped without a new chunk. A server
    /// that refuses the very first connection (not running, or a wrong
    /// address) fails at once, unless this is given.
    #[arg(long)]
    pub retries: Option<u32>,
    /// Range requests in flight when refilling missing or bad chunks (1..=128).
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Also read the finished file back and check its whole-file SHA-256
    /// (the chunk digests and root already prove it; this costs one more pass).
    #[arg(long)]
    pub verify_sha256: bool,
    /// Follow a redirect to another host or scheme, as curl's --location does
    /// (never from https:// to plain http://; redirects within the server are
    /// always followed).
    #[arg(short = 'L', long)]
    pub location: bool,
    /// Follow a text that is being published (`serve --publish`) to its end,
    /// writing each chunk as it arrives; without it, get refuses a live one.
    #[arg(long)]
    pub follow: bool,
    /// No progress bar, retry lines or summary (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The values of `--transport` (see [`Transport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportArg {
    Auto,
    Events,
}

impl TryFrom<&GetArgs> for GetConfig {
    type Error = ClientError;

    /// Every check that needs no network: the URL, the output path.
    fn try_from(args: &GetArgs) -> Result<GetConfig, ClientError> {
        let target = target::parse(&args.url, args.name.as_deref())?;
        let output = Output::resolve(args.output.as_deref(), &target.name)?;
        if !(1..=MAX_PARALLEL).contains(&args.parallel) {
            return Err(ClientError::Usage(format!(
                "--parallel must be between 1 and {MAX_PARALLEL}, got {}",
                args.parallel
            )));
        }
        if args.update && output.ordered() {
            return Err(ClientError::Usage(format!(
                "--update needs a regular output file to read, not {}",
                output.display()
            )));
        }
        Ok(GetConfig {
            target,
            output,
            force: args.force,
            update: args.update,
            rate: args.rate,
            stall_timeout: stall_timeout(args.stall_timeout)?,
            retries: args.retries.unwrap_or(DEFAULT_RETRIES),
            retry_refused: args.retries.is_some(),
            parallel: args.parallel,
            verify_sha256: args.verify_sha256,
            location: args.location,
            connect: Connect::try_from(&args.connect)?,
            follow: args.follow,
            transport: match args.transport {
                TransportArg::Auto => Transport::Auto,
                TransportArg::Events => Transport::Events,
            },
        })
    }
}
