//! One server as the client commands reach it (`get` and `publish` alike):
//! the agent, the `--user` credentials sent with every request, URLs that
//! carry a signed link's parameters, the backoff between retries and a
//! server's JSON error answer in words. Kept apart from the commands so
//! that both retry and authenticate the same way.

use std::sync::Mutex;
use std::time::Duration;

use super::agent;
use super::config::Connect;
use super::error::ClientError;
use super::target::Target;
use crate::logsafe::Esc;
use crate::protocol::params::encode_query_value;
use crate::protocol::ErrorBody;

/// The agent, the target and the credentials of one command's requests.
pub struct Remote<'a> {
    pub agent: ureq::Agent,
    pub target: &'a Target,
    /// `Basic …` from `--user`, sent with every request.
    authorization: Option<String>,
    /// `--location`: redirects may lead to other hosts.
    location: bool,
}

impl<'a> Remote<'a> {
    pub fn new(target: &'a Target, connect: &Connect, stall: Duration, location: bool) -> Result<Self, ClientError> {
        let agent = agent::build(&target.base, connect.cacert.as_deref(), stall, location)?;
        let authorization = connect.user.as_ref().map(|(user, password)| {
            format!("Basic {}", base64_simd::STANDARD.encode_to_string(format!("{user}:{password}")))
        });
        Ok(Remote { agent, target, authorization, location })
    }

    /// Whether `--user` was given (a 401 then means wrong credentials).
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    /// `base` + `path` + the query, values percent-encoded, with a signed
    /// link's `exp` and `sig` appended.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{path}", self.target.base);
        let link = self.target.link.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        for (i, (k, v)) in query.iter().copied().chain(link).enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode_query_value(v));
        }
        url
    }

    /// The `Authorization` header of `--user`, if given.
    pub fn auth_headers(&self) -> Vec<(&str, &str)> {
        self.authorization.iter().map(|v| ("Authorization", v.as_str())).collect()
    }

    /// A GET with the credentials and `extra` headers, following redirects
    /// by `get`'s rules ([`agent::send`]).
    pub fn get(&self, url: &str, extra: &[(&str, &str)]) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let mut headers = self.auth_headers();
        headers.extend_from_slice(extra);
        agent::send(&self.agent, url, &headers, self.location)
    }

    /// A POST of `body` with the credentials. Redirects are not followed: a
    /// body sent again to wherever a server points is not what the user
    /// asked for.
    pub fn post(&self, url: &str, body: &[u8]) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let mut req = self.agent.post(url).header("Content-Type", "text/plain; charset=utf-8");
        for (k, v) in self.auth_headers() {
            req = req.header(k, v);
        }
        req.send(body).map_err(|e| agent::classify(e, url))
    }
}

/// How long to wait before attempt `failures + 1`: full jitter, a uniform
/// random time in [0, min(15 s, base·2^n)] (`base` is the server's `retry:`,
/// else 250 ms), so clients dropped together come back spread out.
pub fn backoff_delay(retry_ms: Option<u64>, failures: u32) -> Duration {
    let base = retry_ms.unwrap_or(250).clamp(50, 5_000);
    let ceiling = base.saturating_mul(1 << failures.min(10)).min(15_000);
    Duration::from_millis(fastrand::u64(0..=ceiling))
}

/// A server's error answer in words for the terminal, its text escaped (a
/// server must not set the window title or clear the screen).
pub fn error_message(status: u16, body: &[u8]) -> String {
    match error_body(body) {
        Some(e) => format!("{status}: {}", Esc(&e.error)),
        None => format!("HTTP {status}"),
    }
}

/// A 403's sentence and code (escaped), or a plain one when the body has none.
pub fn refusal(body: &[u8]) -> String {
    match error_body(body) {
        Some(e) => format!("{} ({})", Esc(&e.error), Esc(&e.code)),
        None => "403 Forbidden".into(),
    }
}

/// The protocol's JSON error body, if that is what `body` is.
fn error_body(body: &[u8]) -> Option<ErrorBody<'_>> {
    serde_json::from_slice(body).ok()
}

/// Reads an event's data as its wire type.
pub fn wire<'a, T: serde::Deserialize<'a>>(what: &'static str, data: &'a [u8]) -> Result<T, ClientError> {
    serde_json::from_slice(data).map_err(|source| ClientError::BadEvent { what, source })
}

/// Locks, recovering from a poisoned lock: the data it guards (a bitmap of
/// verified chunks, a queue, a buffer) stays consistent between statements.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` until it answers or fails with something waiting cannot help: a
/// failure in transit or a 5xx is tried again, up to `retries` more times,
/// with `wait(state, attempt, why)` between tries (which says so and sleeps).
pub fn retrying<S, T>(
    state: &mut S,
    retries: u32,
    mut f: impl FnMut(&mut S) -> Result<T, ClientError>,
    wait: impl Fn(&S, u32, &str),
) -> Result<T, ClientError> {
    let mut attempt = 1;
    loop {
        match f(state) {
            Err(e @ (ClientError::Unreachable { .. } | ClientError::Server(_))) => {
                if attempt > retries {
                    return Err(ClientError::GaveUp(attempt, e.to_string()));
                }
                wait(state, attempt, &e.to_string());
                attempt += 1;
            }
            other => return other,
        }
    }
}
