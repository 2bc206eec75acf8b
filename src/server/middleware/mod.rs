//! What runs around every request, in the order `server::mount` wraps them
//! (outside in): [`log`], [`host`] (DNS rebinding), [`cors`],
//! [`error_page`] (errors a browser navigated to, as a page), [`json_errors`]
//! (others' error pages as JSON), [`access`]. Each applies a
//! policy value from `server::policy`, read from the app state.

pub mod access;
pub mod cors;
pub mod error_page;
pub mod host;
pub mod json_errors;
pub mod log;
