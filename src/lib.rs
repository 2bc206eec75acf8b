//! chunkcast: resumable, SHA-256-verified file and text transfer over
//! Server-Sent Events.
//!
//! The folders are the layers; dependencies point one way (down this list,
//! never up), and `tests/it/layers.rs` checks it:
//!
//! ```text
//! cli ──────────────► server ──► live ──► tree ──► protocol
//!  │                    │                    ▲
//!  └──► client ─────────┼────────────────────┘
//!         │             ▼
//!         └────────►  tls ──► safefile  logsafe (used by all)
//!         └──────────────────► safefile (the part file's state)
//! ```
//!
//! - [`protocol`]: the wire protocol, pure and shared by every side: chunk
//!   layout, digests, the `need` lists and other parameters, the limits, the
//!   JSON shapes and the SSE framing. It imports nothing else of the crate.
//! - [`tree`]: the file core, without HTTP: names opened inside the root,
//!   listings, each file's index (chunk digests, `root`) computed once and
//!   kept on disk, and how files are read.
//! - [`live`]: live text: publications still being written, sealed chunk
//!   by chunk into a durable layout, pushed to their viewers; a finished
//!   one's layout is its file's index.
//! - [`server`]: HTTP with actix-web: the checked config, the shared state,
//!   the routes, the chunk streams and `/files`, the policies (access, CORS,
//!   host names) and the middlewares that apply them, errors as JSON.
//! - [`tls`]: certificates (from PEM, or self-signed), for the server, and
//!   the crypto provider and PEM reading `chunkcast get` shares.
//! - [`client`]: `chunkcast get`, which downloads through the protocol,
//!   verifies every chunk, refills gaps by range and resumes after a kill.
//! - [`cli`]: the command line, each subcommand's flags checked into its
//!   config; only the binary (`main.rs`) uses it.
//! - [`logsafe`]: escaping of text from clients and servers in logs and on
//!   the terminal; [`safefile`]: files written whole (new, then renamed),
//!   keys private and refused when anyone can read them.
//!
//! A download's path through them: a request passes `server::middleware`
//! (host, CORS, access), `server::routes` resolves the name through
//! `tree::catalog` and gets the index from `tree::store`, and
//! `server::stream` reads the chunks and frames them with `protocol::sse`;
//! on the other end `client` (or the browser library in `web/`) parses
//! them with the same protocol and checks each against the manifest.

pub mod cli;
pub mod client;
pub mod live;
pub mod logsafe;
pub mod protocol;
pub mod safefile;
pub mod server;
pub mod tls;
pub mod tree;

pub use server::{mount, server, server_on, server_on_with, AppState, Config, Hooks};
