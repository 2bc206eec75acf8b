//! The client commands: `chunkcast get`, which downloads a file through
//! the event stream (or follows a live text to its end), and `chunkcast
//! publish`, which sends a text to a server while it is produced. They use
//! the protocol and TLS modules only, never the server's.
//!
//! 1. Fetch the manifest; open (or resume) `OUT.part`.
//! 2. Fetch what is missing as the file's raw bytes, by `Range` from
//!    `/files` ([`raw`]), or stream it from `/events` (`from=` for one
//!    tail, `need=` for scattered gaps): with `--transport events`, with
//!    `--rate`, or once a range answer was not what was asked. Every chunk
//!    is checked against the manifest's digest (never only the one in the
//!    event) before it is written.
//! 3. A dropped or stalled stream is reopened with `Last-Event-ID`, after an
//!    exponential backoff with full jitter.
//! 4. Chunks that failed verification are refilled through
//!    `/events/chunk/<start>/<end>`, several requests in flight.
//! 5. Once every chunk is verified, the digests must hash to `root` and the
//!    size must match (`--verify-sha256` also re-reads the whole file); only
//!    then is `OUT.part` renamed to `OUT`.
//!
//! Chunks already on this side are never fetched again: those intact in
//! `OUT.part` (of this version, or of an older one the new manifest repeats
//! at the same offsets), those of an existing `OUT` that match (`--update`),
//! and, when the file changes on the server mid-download (412 or `event:
//! error` `changed`), the verified ones the new version repeats.
//!
//! A live text (`"live": true` in the manifest) is refused without
//! `--follow`; with it, [`follow`] streams it in order, checks each chunk
//! against the manifest's digest or, for chunks sealed later, its event's,
//! and at the end checks the finished file's manifest names exactly the
//! digests verified.
//!
//! [`download`] runs those steps; [`target`] reads the URL forms, [`output`]
//! decides where the file goes, [`manifest`] adds the client's limits to the
//! protocol's manifest, [`raw`] reads the file's bytes by range, [`sink`]
//! verifies and stores chunks, [`part`] keeps
//! the part file resumable, [`delta`] finds the chunks of a new version
//! already on this side, [`follow`] follows a live text; [`publish`]
//! sends one in acknowledged parts and resumes after drops and restarts;
//! [`remote`] is the server both commands talk to (credentials, URLs,
//! backoff), [`agent`] sets up HTTP and tells retryable failures from fatal
//! ones, [`trust`] decides which certificates to trust; [`config`] holds the
//! checked command lines, [`report`] is what a command tells its caller,
//! [`term`] the terminal reporter the binary uses.

mod agent;
pub mod config;
mod delta;
pub mod download;
pub mod error;
mod follow;
mod manifest;
pub mod output;
mod part;
pub mod publish;
mod raw;
mod remote;
pub mod report;
mod sink;
pub mod target;
pub mod term;
mod trust;

pub use config::{Connect, GetConfig, Input, PublishConfig, Transport};
pub use download::{get, max_event_len};
pub use error::ClientError;
pub use manifest::Manifest;
pub use output::Output;
pub use publish::publish;
pub use report::Summary;
pub use target::Target;
