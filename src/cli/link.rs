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

/// `link` needs a key file: the one given, or the default one.
#[derive(Debug, thiserror::Error)]
#[error("no --key-file given and no config directory to find the default key in")]
pub struct NoKeyFile;

impl TryFrom<&LinkArgs> for LinkConfig {
    type Error = NoKeyFile;

    fn try_from(args: &LinkArgs) -> Result<Self, NoKeyFile> {
        Ok(LinkConfig {
            base_url: args.base_url.trim_end_matches('/').to_owned(),
            name: args.name.clone(),
            expires: args.expires,
            key_file: args.key_file.clone().or_else(default_link_key).ok_or(NoKeyFile)?,
        })
    }
}

/// `<user config dir>/chunkcast/link-key`, where `chunkcast link` looks for
/// the key by default.
pub fn default_link_key() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("chunkcast").join("link-key"))
}
