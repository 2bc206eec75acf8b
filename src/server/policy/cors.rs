//! `--cors-origin`: which other origins' pages may use this server through
//! `chunkcast.js` (manifest, `/events`, the range endpoint, `/files/...` and
//! the web client's own files); `middleware::cors` applies it to every
//! response, rather than headers sprinkled over handlers.
//!
//! Without the flag the middleware adds nothing and `OPTIONS` keeps its 405,
//! so a server nobody configured for CORS stays closed to other origins. A
//! request from an origin not on the list is served as before, with no CORS
//! headers, and the browser refuses to hand the response to the page.

use actix_web::http::header::HeaderValue;

/// Request headers a cross-origin page may send: `Last-Event-ID` (an
/// EventSource resuming, or a fetch-based reader), `Range`/`If-Range`
/// (`/files` resumes) and `Cache-Control` (`cache: 'no-store'` fetches).
pub const ALLOW_HEADERS: &str = "Last-Event-ID, Range, If-Range, Cache-Control, Accept";
/// Response headers the page may read beyond the CORS-safelisted ones.
pub const EXPOSE_HEADERS: &str = "Content-Range, Content-Length, Accept-Ranges, ETag, Last-Modified, Retry-After";
/// How long a browser may cache a preflight answer, in seconds
/// (Chromium caps it at 7200).
pub const MAX_AGE: &str = "600";

/// The origins allowed to read responses. Empty: CORS is off.
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    any: bool,
    /// Lower-cased `scheme://host[:port]`, compared byte for byte with the
    /// request's `Origin` (which browsers send in that serialised form).
    origins: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("--cors-origin must be `*` or an origin like https://example.com:8443 (scheme, host and optional port, no path), got {0:?}")]
pub struct BadOrigin(pub String);

impl CorsPolicy {
    /// Checks each `--cors-origin` value: `*`, or `scheme://host[:port]`.
    pub fn new(list: &[String]) -> Result<Self, BadOrigin> {
        let mut policy = CorsPolicy::default();
        for raw in list {
            let origin = raw.trim().trim_end_matches('/').to_ascii_lowercase();
            if origin == "*" {
                policy.any = true;
                continue;
            }
            let (scheme, rest) = origin.split_once("://").ok_or_else(|| BadOrigin(raw.clone()))?;
            let host_ok = !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
                && !rest.starts_with(':');
            if !matches!(scheme, "http" | "https") || !host_ok {
                return Err(BadOrigin(raw.clone()));
            }
            policy.origins.push(origin);
        }
        Ok(policy)
    }

    pub fn enabled(&self) -> bool {
        self.any || !self.origins.is_empty()
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`,
    /// or `None` when that origin is not allowed.
    pub fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let o = origin.to_str().ok()?;
        self.origins.iter().any(|a| a.eq_ignore_ascii_case(o)).then(|| origin.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str]) -> Result<CorsPolicy, BadOrigin> {
        CorsPolicy::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn origins_are_checked() {
        assert!(policy(&["https://a.example", "http://10.0.0.5:8080/", "*"]).is_ok());
        for bad in ["a.example", "ftp://a.example", "https://", "https://a.example/path", "https://:80", "null"] {
            assert!(policy(&[bad]).is_err(), "{bad}");
        }
        assert!(!policy(&[]).unwrap().enabled());
    }

    #[test]
    fn allow_echoes_listed_origins_only() {
        let p = policy(&["https://A.example"]).unwrap();
        let hv = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(p.allow(&hv("https://a.example")), Some(hv("https://a.example")));
        assert_eq!(p.allow(&hv("https://b.example")), None);
        assert_eq!(p.allow(&hv("https://a.example.evil")), None);
        assert_eq!(policy(&["*"]).unwrap().allow(&hv("https://x")), Some(hv("*")));
    }
}
