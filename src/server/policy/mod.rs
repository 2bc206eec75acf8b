//! The server's policies as plain values, checked once from the flags and
//! tested without a request: who may read what ([`access`]), which origins
//! may read responses ([`cors`]) and which host names are answered
//! ([`host`]). `server::middleware` applies them.

pub mod access;
pub mod cors;
pub mod host;
