//! TLS for both sides: the server's certificate (loaded from PEM files and
//! checked, or self-signed for a LAN) and rustls `ServerConfig`, the
//! fingerprint a person compares with the browser's certificate warning,
//! and the crypto provider and PEM reading `chunkcast get` shares.
//!
//! Every check runs once at startup so a bad file stops the server with a
//! message naming the file and the problem, instead of every handshake failing
//! later with an opaque alert in the browser.
//!
//! - [`certificate`]: the server's certificate and key, checked into a
//!   rustls `ServerConfig`; [`crypto`]: the provider both sides use, and
//!   fingerprints; [`error`]: what can be wrong, naming the file;
//! - [`pem`]: reading certificate chains and keys;
//! - [`der`]: the two validity dates, read from the DER certificate;
//! - [`self_signed`]: `--tls-self-signed`, made once and reused;
//! - [`interfaces`]: the machine's names and addresses a certificate covers.

pub mod certificate;
pub mod crypto;
pub mod der;
pub mod error;
pub mod interfaces;
pub mod pem;
pub mod self_signed;

pub use certificate::{load, protocols, Tls, TlsSource};
pub use crypto::{fingerprint, provider};
pub use error::TlsError;
pub use interfaces::{default_hosts, host_name};
pub use pem::read_chain;
pub use self_signed::{default_self_signed_dir, generate};
