//! The command line (clap derive), one module per subcommand. Each turns
//! its flags into that subcommand's checked config once (`serve` →
//! [`crate::server::Config`], `get` → [`crate::client::GetConfig`],
//! `publish` → [`crate::client::PublishConfig`], `index` →
//! [`index::IndexConfig`], `link` → [`link::LinkConfig`]); [`connect`] holds
//! the options `get` and `publish` share to reach a server. Nothing
//! past here sees an unchecked value. `main` parses and dispatches. The top
//! of the crate: it may use every layer, and none uses it.

pub mod connect;
pub mod get;
pub mod index;
pub mod link;
pub mod publish;
pub mod serve;
pub mod size;

use clap::{Parser, Subcommand};

pub use get::{GetArgs, TransportArg};
pub use index::IndexArgs;
pub use link::LinkArgs;
pub use publish::PublishArgs;
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
    /// Download a file, verifying every chunk against the manifest (resumes where it stopped).
    Get(GetArgs),
    /// Publish a text while it is produced (from standard input or a file),
    /// for viewers to follow live; resumes after drops and server restarts.
    Publish(PublishArgs),
    /// Precompute the index of every file under a directory.
    Index(IndexArgs),
    /// Print a signed link that opens one file until it expires (the server
    /// must run with `--link-key` pointing at the same key file).
    Link(LinkArgs),
}
