//! `GET /files/NAME`: the raw bytes through actix-files (Range, ETag,
//! Last-Modified), plus the `If-Range` rule actix-files leaves out: a range
//! request whose validator no longer matches gets the whole current file with
//! 200, never a 206 spliced from two versions. Every file is sent inert
//! (`Content-Security-Policy: sandbox`, `nosniff`), so it cannot script the app.
//! `?download=1` asks for `Content-Disposition: attachment` (a "save as"
//! link), with the name in RFC 6266 form so non-ASCII names survive.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_files::NamedFile;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::{header, StatusCode};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::slots::Slot;
use super::state::AppState;
use super::url::Mount;

pub async fn serve(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    // A download holds a descriptor for as long as its client reads: it
    // counts against `--max-connections` like a stream.
    let slot = state.slot_for(&req)?;
    let asked = name(&req)?;
    let file = state.catalog.resolve(&asked)?;
    // actix-files takes the open descriptor (a duplicate per response, as
    // `whole_file` may need a second one); the path only picks the
    // Content-Type.
    let path = state.catalog.root().join(&file.rel);
    let open = || {
        let fd = file.file.try_clone().map_err(ApiError::Io)?;
        NamedFile::from_file(fd, &path).map(|f| f.disable_content_disposition()).map_err(ApiError::Io)
    };
    let res = open()?.into_response(&req);
    let if_range = req.headers().get(header::IF_RANGE).and_then(|v| v.to_str().ok());
    let mut res = match if_range {
        Some(validator) if res.status() == StatusCode::PARTIAL_CONTENT && !matches(validator, &res) => {
            whole_file(open()?, &req, &res)
        }
        _ => res,
    };
    inert(&mut res);
    if wants_attachment(&req) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, attachment(&asked));
    }
    Ok(match slot {
        Some(slot) => res.map_body(|_, body| Holding { body, _slot: slot }).map_into_boxed_body(),
        None => res,
    })
}

/// A response body that keeps a slot until actix is done with it.
struct Holding {
    body: BoxBody,
    _slot: Slot,
}

impl MessageBody for Holding {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// Served files are untrusted content on the app's own origin: an HTML page
/// or an SVG with a script must never run as the app (read its API, its
/// storage). `sandbox` gives the document an opaque origin and no scripts;
/// `nosniff` stops a browser from promoting a `text/plain` file to HTML.
/// (No `Cross-Origin-Resource-Policy`: other origins may still fetch files.)
fn inert(res: &mut HttpResponse) {
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static("sandbox"));
}

/// Whether the query asks for a download rather than a view: `download=1`
/// (other parameters, such as a signed link's `exp` and `sig`, may come too).
fn wants_attachment(req: &HttpRequest) -> bool {
    req.query_string().split('&').any(|p| p == "download=1")
}

/// `attachment` with the base name of the name asked for (not the
/// canonical path, which may be a link's target) twice (RFC 6266 §4.3): `filename*`
/// in UTF-8, percent-encoded (RFC 8187), which every current browser reads,
/// and before it a plain `filename` for older clients, where every byte that
/// is not printable ASCII (or is a quote or backslash) becomes `_`.
fn attachment(asked: &str) -> header::HeaderValue {
    let name = asked.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("download");
    let plain = |c: char| (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ';
    let ascii: String = name.chars().map(|c| if plain(c) { c } else { '_' }).collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        // attr-char of RFC 8187: ALPHA / DIGIT / "!#$&+-.^_`|~"
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let value = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    // Only printable ASCII went in, so this cannot fail; fall back to a bare
    // `attachment` rather than panic in a request path.
    header::HeaderValue::from_str(&value).unwrap_or_else(|_| header::HeaderValue::from_static("attachment"))
}

/// The file name in the request path, percent-decoded exactly once.
/// actix's router leaves `%25`, `%2F` and `%2B` encoded in `match_info`, so
/// `100%25.txt` would reach the catalog as `100%25.txt`; we decode the raw
/// path ourselves instead, the same way `file=` and `/api/files` names are
/// decoded (a literal `+` is a `+` in a path).
fn name(req: &HttpRequest) -> Result<String, ApiError> {
    let mount = req.app_data::<web::Data<Mount>>().ok_or(ApiError::Internal("chunkcast is not mounted"))?;
    let decoded = mount.route_path(req.uri().path()).ok_or(ApiError::NotFound)?;
    decoded.strip_prefix("/files/").map(str::to_owned).ok_or(ApiError::NotFound)
}

/// RFC 9110 §13.1.5: an entity tag must match strongly; a date must equal
/// Last-Modified exactly.
fn matches(validator: &str, res: &HttpResponse) -> bool {
    let header_str = |name| res.headers().get(name).and_then(|v| v.to_str().ok());
    if validator.starts_with('"') || validator.starts_with("W/") {
        !validator.starts_with("W/") && header_str(header::ETAG) == Some(validator)
    } else {
        header_str(header::LAST_MODIFIED) == Some(validator)
    }
}

/// The whole file with 200. actix-files only skips its Range handling for a
/// non-200 status, so we ask for another status and set 200 afterwards,
/// carrying over the validators of the current version.
// `set_status_code` is deprecated in favour of `customize()`, but only it
// bypasses the Range handling; `customize()` applies Range first.
#[allow(deprecated)]
fn whole_file(file: NamedFile, req: &HttpRequest, ranged: &HttpResponse) -> HttpResponse {
    let mut res = file.set_status_code(StatusCode::NON_AUTHORITATIVE_INFORMATION).into_response(req);
    *res.status_mut() = StatusCode::OK;
    for name in [header::ETAG, header::LAST_MODIFIED, header::ACCEPT_RANGES] {
        if let Some(v) = ranged.headers().get(&name) {
            res.headers_mut().insert(name, v.clone());
        }
    }
    res
}
