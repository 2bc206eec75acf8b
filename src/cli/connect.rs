//! The options every client subcommand shares to reach a server (`get`,
//! `publish`): the `--auth` credentials (asked for on the terminal when only
//! a user is given) and extra certificates to trust, checked into a
//! [`Connect`] once so both commands read them the same way.

use std::path::PathBuf;

use clap::Args;

use crate::client::{ClientError, Connect};

#[derive(Debug, Clone, Default, Args)]
pub struct ConnectArgs {
    /// The user name and password for a server that runs with --auth; without
    /// `:PASSWORD`, chunkcast asks for it on the terminal (not echoed), as curl
    /// does. A URL's own `http://USER:PASSWORD@HOST` works too.
    #[arg(short = 'u', long, value_name = "USER[:PASSWORD]")]
    pub user: Option<String>,
    /// Also trust the certificate(s) in this PEM file for https:// URLs
    /// (e.g. a server's --tls-self-signed certificate).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// `--stall-timeout SECS`, which both commands take: at least a second (0
/// would give up on every request before its first byte).
pub fn stall_timeout(secs: u64) -> Result<std::time::Duration, ClientError> {
    if secs == 0 {
        return Err(ClientError::Usage("--stall-timeout must be at least 1 second".into()));
    }
    Ok(std::time::Duration::from_secs(secs))
}

impl TryFrom<&ConnectArgs> for Connect {
    type Error = ClientError;

    fn try_from(args: &ConnectArgs) -> Result<Connect, ClientError> {
        Ok(Connect { user: args.user.as_deref().map(credentials).transpose()?, cacert: args.cacert.clone() })
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
