//! The integration tests: one module per behaviour, each starting real
//! servers (`common`) and talking to them over real sockets.
//!
//! They are one test binary rather than one per file: on 2 cores, linking
//! thirty-odd test executables against actix and rustls took about as long
//! as compiling them. Run one behaviour with `cargo test --test it get::`.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod bad_input;
mod big_manifest;
mod changed;
mod cors;
mod crash;
mod descriptors;
mod download;
mod embed;
mod error_page;
mod fifo;
mod files;
mod flags;
mod full_disk;
mod get;
mod get_cli;
mod get_existing;
mod get_feedback;
mod get_hostile;
mod get_limits;
mod get_output;
mod get_raw;
mod get_special;
mod get_update;
mod h2_limits;
mod head;
mod host;
mod http_errors;
mod index_cache;
mod install;
mod layers;
mod limits;
mod listing;
mod live;
mod live_instances;
mod log;
mod pacing;
mod prune;
mod publish_cli;
mod read_bounds;
mod resume;
mod serve_cli;
mod shutdown;
mod storm;
mod symlink_race;
mod tls;
mod verify_reads;
