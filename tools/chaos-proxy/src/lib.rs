//! chunkcast's fault-injecting test proxy: it sits between a client
//! (`chunkcast get`, or `web/chunkcast.js` in Node or Chromium) and a real
//! server and can cut, stall, corrupt, forge or refuse connections, plain
//! HTTP/1.1 or TLS (HTTP/1.1 or HTTP/2, forwarded blind). The Rust tests use
//! it as a library; the Node tests spawn its binary (`src/main.rs`) and
//! drive it over standard input.
//!
//! - [`plan`]: the fault rates ([`Faults`]) and the seeded planner that draws
//!   one [`Plan`] per accepted connection, or a scripted [`Step`].
//! - [`scan`]: the server -> client byte scanner that aims each fault at
//!   HTTP and SSE landmarks, flips payload characters and forges digests.
//! - [`blind`]: TLS pass-through ([`Faults::tls`]): the bytes forwarded as
//!   they are, cuts and stalls aimed at byte counts and TLS records, and a
//!   bit flipped inside an encrypted record (which TLS must reject).
//! - [`proxy`]: the sockets, threads, counters ([`Stats`]), the [`Ledger`]
//!   of what reached the client whole, manual controls (refuse, drop all,
//!   stall all, forge a chunk, cut before `end`) and [`Event`]s.
//!
//! Every decision comes from one `fastrand::Rng` seeded per run and drawn in
//! the order connections are accepted, so a sequential client meets the same
//! faults at the same bytes when the seed is replayed. (Parallel refills and
//! the clients' backoff jitter are their own: a run with one connection at a
//! time replays exactly, the others replay per connection.)
//!
//! Besides counters it keeps a [`Ledger`] of which chunks went out whole and
//! intact, which whole but corrupted, and how many payload bytes that was, so
//! a test can predict what the client must have verified and written.

pub mod blind;
pub mod plan;
pub mod proxy;
pub mod scan;

pub use blind::{BlindPlan, Flip, Framer, Spot, BLIND_WHERE};
pub use plan::{Corrupt, Faults, Kind, Plan, Point, Step, WHERE};
pub use proxy::{Event, Ledger, Options, Proxy, Sink, Stats};
pub use scan::{Done, Fed, Manual, Scanner};
