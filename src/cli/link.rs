//! `chunkcast link BASE_URL NAME`: the flags, checked into a [`LinkConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct LinkArgs {
    /// The server's public base URL, e.g. https://files.example.com
    pub base_url: String,
    /// File name as listed by /api/files.
    pub name: String,
    /// How long the link works: 30m, 12h, 7days ...
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub expires: std::time::Duration,
    /// The key file the server's `--link-key` names [default: the user's config dir]
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// A checked `link` command line: the key file found, the expiry set.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub base_url: String,
    pub name: String,
    pub expires: Duration,
    pub key_file: PathBuf,
}

/// The longest a link may work: long enough for any share, short enough
/// that the expiry stays a real date (and a typo of `1000000000years` is
/// not a link that never expires).
pub const MAX_EXPIRES: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Why a `link` command line was refused.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no --key-file given and no config directory to find the default key in")]
    NoKeyFile,
    #[error("BASE_URL must be the server's address with its scheme, e.g. https://nas.lan:8443; got {0:?}")]
    BaseUrl(String),
    #[error("--expires must be between 1 second and 3650 days (10 years), got {}", in_days(*.0))]
    Expires(Duration),
}

/// `0 s`, `90 s`, `3651 days`: a duration as the error names it.
fn in_days(d: Duration) -> String {
    match d.as_secs() {
        s if s < 86_400 => format!("{s} s"),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s => format!("{:.1} days", s as f64 / 86_400.0),
    }
}

impl TryFrom<&LinkArgs> for LinkConfig {
    type Error = LinkError;

    fn try_from(args: &LinkArgs) -> Result<Self, LinkError> {
        if args.expires.is_zero() || args.expires > MAX_EXPIRES {
            return Err(LinkError::Expires(args.expires));
        }
        let base_url = args.base_url.trim_end_matches('/');
        let host = ["http://", "https://"].iter().find_map(|s| strip_prefix_ignore_case(base_url, s));
        if host.is_none_or(|h| h.is_empty() || h.starts_with('/') || h.contains(['?', '#'])) {
            return Err(LinkError::BaseUrl(args.base_url.clone()));
        }
        Ok(LinkConfig {
            base_url: base_url.to_owned(),
            name: args.name.clone(),
            expires: args.expires,
            key_file: args.key_file.clone().or_else(default_link_key).ok_or(LinkError::NoKeyFile)?,
        })
    }
}

/// `s` without `prefix`, compared without regard to ASCII case (`HTTPS://`).
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// `<user config dir>/chunkcast/link-key`, where `chunkcast link` looks for
/// the key by default.
pub fn default_link_key() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("chunkcast").join("link-key"))
}
