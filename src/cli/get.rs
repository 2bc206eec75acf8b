//! `chunkcast get`: the flags, checked into a [`GetConfig`] before any
//! network work (the URL parsed, the output path decided).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::size::parse_size;
use crate::client::{target, ClientError, GetConfig, Output};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Output rules:
  Without -o, the file is saved in the current directory under NAME's last component.
  An existing file is never replaced without --force, unless it already is this version of
  the file (then nothing is downloaded). A regular file is written as PATH.part (with
  PATH.part.json) and renamed once every chunk is verified; if interrupted, running the same
  command again resumes from the verified chunks on disk.
  -o - streams the verified bytes to standard output, in order; -o /dev/null, another device
  or a named pipe is written straight through, in order. Neither keeps a part file: an
  interrupted download starts over.

Examples:
  chunkcast get http://host:8080 docs/report.pdf
  chunkcast get http://host:8080/files/docs/report.pdf -o ~/Downloads/
  chunkcast get 'http://host:8080/?file=big.iso' -o - | sha256sum")]
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
    /// Ask the server to pace the stream to this many payload bytes per second.
    #[arg(long, value_parser = parse_size)]
    pub rate: Option<u64>,
    /// Seconds without any byte from the server before the stream is reopened.
    #[arg(long, default_value_t = 30)]
    pub stall_timeout: u64,
    /// Give up after this many failed attempts in a row (refused
    /// connections, streams that dropped without a new chunk).
    #[arg(long, default_value_t = 10)]
    pub retries: u32,
    /// Range requests in flight when refilling missing or bad chunks.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Also read the finished file back and check its whole-file SHA-256
    /// (the chunk digests and root already prove it; this costs one more pass).
    #[arg(long)]
    pub verify_sha256: bool,
    /// The user name and password for a server that runs with --auth; without
    /// `:PASSWORD`, get asks for it on the terminal (not echoed), as curl does.
    /// A URL's own `http://USER:PASSWORD@HOST` works too.
    #[arg(short = 'u', long, value_name = "USER[:PASSWORD]")]
    pub user: Option<String>,
    /// Follow a redirect to another host or scheme, as curl's --location does
    /// (never from https:// to plain http://; redirects within the server are
    /// always followed).
    #[arg(short = 'L', long)]
    pub location: bool,
    /// No progress bar, retry lines or summary (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
    /// Also trust the certificate(s) in this PEM file for https:// URLs
    /// (e.g. a server's --tls-self-signed certificate).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

impl TryFrom<&GetArgs> for GetConfig {
    type Error = ClientError;

    /// Every check that needs no network: the URL, the output path.
    fn try_from(args: &GetArgs) -> Result<GetConfig, ClientError> {
        let target = target::parse(&args.url, args.name.as_deref())?;
        let output = Output::resolve(args.output.as_deref(), &target.name)?;
        Ok(GetConfig {
            target,
            output,
            force: args.force,
            rate: args.rate,
            stall_timeout: Duration::from_secs(args.stall_timeout),
            retries: args.retries,
            parallel: args.parallel.max(1),
            verify_sha256: args.verify_sha256,
            location: args.location,
            user: args.user.as_deref().map(credentials).transpose()?,
            cacert: args.cacert.clone(),
        })
    }
}

/// `USER:PASSWORD`, or `USER` and the password asked for on the terminal.
fn credentials(spec: &str) -> Result<(String, String), ClientError> {
    match spec.split_once(':') {
        Some((user, password)) => Ok((user.to_owned(), password.to_owned())),
        None => {
            let password = ask_password(&format!("Enter the password of {spec}: ")).map_err(|e| {
                ClientError::Usage(format!(
                    "--user {spec}: no password given and no terminal to ask for it ({e}); give it as {spec}:PASSWORD"
                ))
            })?;
            Ok((spec.to_owned(), password))
        }
    }
}

/// Asks on the controlling terminal (`/dev/tty`, so it works with `-o -`
/// piped), with echo off, and reads one line.
fn ask_password(prompt: &str) -> std::io::Result<String> {
    use std::io::{BufRead as _, Write as _};
    use std::os::fd::AsRawFd as _;
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    // SAFETY: an all-zero termios is valid; tcgetattr fills it for our tty.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: sets attributes we read from the same descriptor.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    let mut line = String::new();
    let read = (|| {
        (&tty).write_all(prompt.as_bytes())?;
        std::io::BufReader::new(&tty).read_line(&mut line)
    })();
    // SAFETY: restores what tcgetattr returned, whatever happened.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
