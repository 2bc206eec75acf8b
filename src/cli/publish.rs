//! `chunkcast publish`: the flags, checked into a [`PublishConfig`] before
//! any network work (the URL parsed, the input opened by name only).

use std::path::PathBuf;

use clap::Args;

use super::connect::{stall_timeout, ConnectArgs};
use crate::client::{target, ClientError, Connect, Input, PublishConfig};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
The server must run with --publish (and --auth). The text is sent as it is produced, in parts
the server acknowledges once they are on its disk; viewers follow it live
(chunkcast get --follow, or the page). If the connection drops or the server restarts, publish
waits and continues from the server's offset: no byte is sent twice or lost. The input must be
UTF-8 text.

Examples:
  make 2>&1 | chunkcast publish http://host:8080 logs/build.txt -u ann
  chunkcast publish http://host:8080 notes.txt notes.txt --replace -u ann
  generate | chunkcast publish http://host:8080 answer.txt --resume -u ann   (after a kill)")]
pub struct PublishArgs {
    /// The server: its address (http://HOST:8080).
    pub url: String,
    /// The name to publish under (its folder must exist on the server).
    pub name: String,
    /// The text to send [default: standard input, also `-`].
    pub file: Option<PathBuf>,
    /// Replace a finished file of that name with a new version.
    #[arg(long, conflicts_with = "resume")]
    pub replace: bool,
    /// Continue a publication that is still live (after this command was
    /// killed): the input must be the same; the bytes the server already has
    /// are read, checked against its digests and skipped.
    #[arg(long)]
    pub resume: bool,
    /// Retry this many times in a row, then give up.
    #[arg(long, default_value_t = 10)]
    pub retries: u32,
    /// Seconds without an answer before a request is given up and retried.
    #[arg(long, default_value_t = 30)]
    pub stall_timeout: u64,
    /// No progress line, retry lines or summary (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl TryFrom<&PublishArgs> for PublishConfig {
    type Error = ClientError;

    /// Every check that needs no network: the URL, the name, the input.
    fn try_from(args: &PublishArgs) -> Result<PublishConfig, ClientError> {
        if args.name.is_empty() {
            return Err(ClientError::Usage("NAME is empty: give the name to publish under".into()));
        }
        let target = target::parse(&args.url, Some(&args.name))?;
        let input = match &args.file {
            None => Input::Stdin,
            Some(p) if p.as_os_str() == "-" => Input::Stdin,
            Some(p) if p.is_dir() => return Err(ClientError::Output(p.clone(), "is a folder, not a text".into())),
            Some(p) => Input::File(p.clone()),
        };
        Ok(PublishConfig {
            target,
            input,
            replace: args.replace,
            resume: args.resume,
            retries: args.retries,
            stall_timeout: stall_timeout(args.stall_timeout)?,
            connect: Connect::try_from(&args.connect)?,
        })
    }
}
