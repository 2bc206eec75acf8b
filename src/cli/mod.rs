//! The command line (clap derive), one module per subcommand. Each turns
//! its flags into that subcommand's checked config once (`serve` →
//! [`crate::server::Config`], `get` → [`crate::client::GetConfig`], `index`
//! → [`index::IndexConfig`], `link` → [`link::LinkConfig`]), so nothing
//! past here sees an unchecked value. `main` parses and dispatches. The top
//! of the crate: it may use every layer, and none uses it.

pub mod get;
pub mod index;
pub mod link;
pub mod serve;

use clap::{Parser, Subcommand};

pub use get::GetArgs;
pub use index::IndexArgs;
pub use link::LinkArgs;
pub use serve::{Bind, ServeArgs};

#[derive(Debug, Parser)]
#[command(name = "chunkcast", version, about = "Resumable, SHA-256-verified file transfer over Server-Sent Events")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a directory (with no subcommand at all: `fixtures/` on 127.0.0.1:8080).
    Serve(Box<ServeArgs>),
    /// Download a file through the event stream, verifying every chunk.
    Get(GetArgs),
    /// Precompute the index of every file under a directory.
    Index(IndexArgs),
    /// Print a signed link that opens one file until it expires (the server
    /// must run with `--link-key` pointing at the same key file).
    Link(LinkArgs),
}

/// `4096`, `256K`, `256KiB`, `1M`, `16MiB`: binary units.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown unit in {s:?} (use K, M or G)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}
