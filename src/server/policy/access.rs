//! Who may read what: HTTP Basic users (`--auth`) and signed links that
//! authorize one file until they expire (`--link-key`, `chunkcast link`).
//! Off by default: with neither flag every request passes untouched.
//!
//! What is protected once `--auth` is set: the file list, manifests, streams,
//! ranges, raw files, and the page's entry (`/`). What stays public: the
//! page's own code and styles (the same for everyone, they reveal nothing
//! served) and `/healthz` (for load balancers). A signed link opens the page
//! and authorizes every request for its one file, with or without `--auth`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::{header, Method};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::protocol::limits::{LINK_EXPIRES, LINK_SIGNATURE};
use crate::protocol::{hex, parse_hex, sha256, Hash};
use crate::server::url::Mount;

/// Why a request was refused: no or wrong credentials (401), or a link that
/// is expired, forged, or for something else (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Unauthorized,
    LinkExpired,
    LinkInvalid,
}

/// What access control reads of a request.
pub struct Request<'a> {
    pub method: &'a Method,
    /// The path as sent, still percent-encoded.
    pub path: &'a str,
    /// Where chunkcast is mounted in the app.
    pub mount: &'a Mount,
    pub query: &'a str,
    pub authorization: Option<&'a header::HeaderValue>,
}

/// One `--auth` user. Both the name and the password are kept as SHA-256
/// digests, so checking a request compares fixed-size values in constant
/// time whatever was sent.
#[derive(Debug, Clone)]
struct User {
    name: Hash,
    password: Hash,
}

/// Why a `--auth` value or a link key was refused at startup.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("--auth wants USER:PASSWORD or USER:sha256:HEX (HEX = the SHA-256 of the password), got {0:?}")]
    Auth(String),
    #[error("--auth user {0:?} is given twice")]
    DuplicateUser(String),
    #[error("link key {0}: {1}")]
    Key(PathBuf, String),
    #[error("link key {0}")]
    KeyIo(PathBuf, #[source] std::io::Error),
    #[error("link key {0}")]
    Exposed(#[from] crate::safefile::Exposed),
}

/// The checked access rules, shared by every worker.
#[derive(Debug, Clone, Default)]
pub struct Access {
    users: Vec<User>,
    links: Option<LinkKey>,
}

impl Access {
    /// `auth`: the `--auth` values; `link_key`: the `--link-key` file (created
    /// when missing).
    pub fn new(auth: &[String], link_key: Option<&Path>) -> Result<Self, AccessError> {
        let mut users: Vec<(String, User)> = Vec::new();
        for spec in auth {
            let (name, user) = parse_user(spec)?;
            if users.iter().any(|(n, _)| *n == name) {
                return Err(AccessError::DuplicateUser(name));
            }
            users.push((name, user));
        }
        let links = link_key.map(LinkKey::load_or_create).transpose()?;
        Ok(Access { users: users.into_iter().map(|(_, u)| u).collect(), links })
    }

    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    pub fn links_enabled(&self) -> bool {
        self.links.is_some()
    }

    /// True when an `Authorization: Basic` value names a user with that
    /// password. Every user is compared, in constant time, whether or not an
    /// earlier one matched: an unknown user and a wrong password cost the
    /// same and look the same.
    fn basic_ok(&self, value: Option<&header::HeaderValue>) -> bool {
        let Some((name, password)) = value.and_then(|v| decode_basic(v.as_bytes())) else { return false };
        let (name, password) = (sha256(name.as_bytes()), sha256(password.as_bytes()));
        let mut ok = subtle::Choice::from(0);
        for user in &self.users {
            ok |= user.name.ct_eq(&name) & user.password.ct_eq(&password);
        }
        ok.into()
    }
}

fn parse_user(spec: &str) -> Result<(String, User), AccessError> {
    let bad = || AccessError::Auth(spec.to_owned());
    let (name, secret) = spec.split_once(':').ok_or_else(bad)?;
    if name.is_empty() || secret.is_empty() {
        return Err(bad());
    }
    let password = match secret.strip_prefix("sha256:") {
        Some(hex) => parse_hex(&hex.to_ascii_lowercase()).ok_or_else(bad)?,
        None => sha256(secret.as_bytes()),
    };
    Ok((name.to_owned(), User { name: sha256(name.as_bytes()), password }))
}

/// `Basic base64(user:password)` → (user, password).
fn decode_basic(value: &[u8]) -> Option<(String, String)> {
    let encoded = value.strip_prefix(b"Basic ").or_else(|| value.strip_prefix(b"basic "))?;
    let decoded = base64_simd::STANDARD.decode_to_vec(encoded.trim_ascii()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The secret that signs links: 32 random bytes, kept as hex in a file
/// readable by its owner only.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkKey {
    /// Reads the key (refused when every user can read it), or creates the
    /// file (mode 0600, its missing directories 0700) with a new random key.
    pub fn load_or_create(path: &Path) -> Result<Self, AccessError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |e| AccessError::KeyIo(path.to_owned(), e);
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key = parse_hex(text.trim()).ok_or_else(|| {
                    AccessError::Key(path.to_owned(), "is not 64 hex digits (delete it to make a new key)".into())
                })?;
                crate::safefile::check_private(path, &std::fs::metadata(path).map_err(io)?)?;
                Ok(LinkKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    crate::safefile::private_dir(dir).map_err(io)?;
                }
                let key = random_key().map_err(io)?;
                let mut file =
                    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
                writeln!(file, "{}", hex(&key)).map_err(io)?;
                tracing::info!(path = %path.display(), "created a new link key");
                Ok(LinkKey(key))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The signature of a link to `name` valid until `expires` (Unix seconds).
    /// NUL cannot occur in a file name, so the fields cannot be shifted into
    /// one another.
    pub fn sign(&self, name: &str, expires: u64) -> String {
        hex(&self.mac(name, expires).finalize().into_bytes())
    }

    fn mac(&self, name: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"chunkcast-link-v1\0");
        mac.update(name.as_bytes());
        mac.update(b"\0");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// Checks a link's parameters for `name`: a bad signature is `Invalid`
    /// (whatever the expiry says), a good one past its time is `Expired`.
    fn verify(&self, name: &str, expires: &str, signature: &str) -> Result<(), Denied> {
        let expires: u64 = expires.parse().map_err(|_| Denied::LinkInvalid)?;
        let signature = parse_hex(&signature.to_ascii_lowercase()).ok_or(Denied::LinkInvalid)?;
        self.mac(name, expires).verify_slice(&signature).map_err(|_| Denied::LinkInvalid)?;
        if unix_now() >= expires {
            return Err(Denied::LinkExpired);
        }
        Ok(())
    }
}

fn random_key() -> std::io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    let mut filled = 0;
    while filled < key.len() {
        // SAFETY: getrandom writes at most `len` bytes into the buffer we own.
        let n = unsafe { libc::getrandom(key[filled..].as_mut_ptr().cast(), key.len() - filled, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        filled += n as usize;
    }
    Ok(key)
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What a request reads, as far as access is concerned.
enum Resource {
    /// The page's code and styles, and `/healthz`: never protected.
    Public,
    /// The page's entry: protected (it is where a browser asks for the
    /// password), but opened by anything that looks like a link.
    Page,
    /// One served file, by name (manifest, stream, range, raw bytes).
    File(String),
    /// Anything else that reveals served data (the file list).
    Data,
}

/// Classifies a request by its path, decoded exactly once as `/files` and
/// the router see it: the router also matches `/%66iles/x` as `/files/x`, so
/// classifying the raw text would let an encoded path pass as the page's code.
fn resource(raw_path: &str, mount: &Mount, query: &HashMap<String, String>) -> Resource {
    let Some(path) = mount.route_path(raw_path) else { return Resource::Data };
    let file = || query.get("file").cloned().map_or(Resource::Data, Resource::File);
    match path.as_str() {
        "/healthz" => Resource::Public,
        "/" | "/index.html" => Resource::Page,
        "/api/manifest" | "/events" => file(),
        p if p.starts_with("/events/chunk/") => file(),
        p if p.starts_with("/files/") => Resource::File(p["/files/".len()..].to_owned()),
        p if p.starts_with("/api") || p.starts_with("/events") || p.starts_with("/files") => Resource::Data,
        _ => Resource::Public,
    }
}

impl Access {
    /// Lets a request through, or says why not.
    pub fn check(&self, req: &Request<'_>) -> Result<(), Denied> {
        if self.users.is_empty() && self.links.is_none() {
            return Ok(());
        }
        // CORS preflights carry no credentials by design; they reveal nothing.
        if *req.method == Method::OPTIONS {
            return Ok(());
        }
        if self.requires_auth() && self.basic_ok(req.authorization) {
            return Ok(());
        }
        let query: HashMap<String, String> = actix_web::web::Query::<HashMap<String, String>>::from_query(req.query)
            .map(|q| q.into_inner())
            .unwrap_or_default();
        let resource = resource(req.path, req.mount, &query);
        if let (Some(key), Some(signature)) = (&self.links, query.get(LINK_SIGNATURE)) {
            let name = match &resource {
                Resource::File(name) => name,
                // The page opened from a link is only code, the same for all: it
                // loads even for a stale link, and tells its holder what is wrong
                // when the link's first request (the manifest) is refused.
                Resource::Page | Resource::Public => return Ok(()),
                Resource::Data => return Err(Denied::LinkInvalid),
            };
            let expires = query.get(LINK_EXPIRES).map_or("", String::as_str);
            return key.verify(name, expires, signature);
        }
        match resource {
            Resource::Public => Ok(()),
            _ if !self.requires_auth() => Ok(()),
            _ => Err(Denied::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_values_parse_in_both_forms() {
        let plain = parse_user("ann:s3cret:with:colons").unwrap();
        assert_eq!(plain.0, "ann");
        assert_eq!(plain.1.password, sha256(b"s3cret:with:colons"));
        let hashed = parse_user(&format!("bob:sha256:{}", hex(&sha256(b"pw")).to_uppercase())).unwrap();
        assert_eq!(hashed.1.password, sha256(b"pw"));
        for bad in ["", "ann", "ann:", ":pw", "bob:sha256:zz"] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_signature_covers_the_name_and_the_expiry() {
        let key = LinkKey([7; 32]);
        let exp = unix_now() + 60;
        let sig = key.sign("a.bin", exp);
        assert!(key.verify("a.bin", &exp.to_string(), &sig).is_ok());
        assert!(matches!(key.verify("b.bin", &exp.to_string(), &sig), Err(Denied::LinkInvalid)));
        assert!(matches!(key.verify("a.bin", &(exp + 1).to_string(), &sig), Err(Denied::LinkInvalid)));
        assert!(matches!(LinkKey([8; 32]).verify("a.bin", &exp.to_string(), &sig), Err(Denied::LinkInvalid)));
        let old = unix_now() - 1;
        assert!(matches!(key.verify("a.bin", &old.to_string(), &key.sign("a.bin", old)), Err(Denied::LinkExpired)));
    }
}
