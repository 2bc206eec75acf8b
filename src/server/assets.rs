//! The web client built into the binary: every file of `web/` (embedded by
//! `build.rs`), served with a strong ETag and `Cache-Control: no-cache`.
//!
//! `no-cache` rather than a long max-age: the page and its modules load each
//! other by plain names (`chunkcast.js`, `lib/...`), with no build step to
//! fingerprint them, so a browser must revalidate each file. The ETag is the
//! file's SHA-256, so the revalidation is a 304 unless the binary changed,
//! and a new version is never mixed with a cached older module.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use crate::protocol::{hex, sha256};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// One embedded file, ready to serve.
struct Asset {
    bytes: &'static [u8],
    etag: String,
    content_type: String,
}

/// The embedded files by path, hashed once on first use.
fn assets() -> &'static HashMap<&'static str, Asset> {
    static ASSETS: OnceLock<HashMap<&'static str, Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        embedded::FILES
            .iter()
            .map(|&(path, bytes)| {
                let ext = path.rsplit_once('.').map_or("", |(_, ext)| ext);
                let asset = Asset {
                    bytes,
                    etag: format!("\"{}\"", &hex(&sha256(bytes))[..32]),
                    content_type: content_type(ext).to_owned(),
                };
                (path, asset)
            })
            .collect()
    })
}

/// Paths of every embedded file, e.g. `index.html`, `lib/sse.js`.
pub fn paths() -> impl Iterator<Item = &'static str> {
    embedded::FILES.iter().map(|&(path, _)| path)
}

/// `GET /` and `GET /<path>` for the embedded page. 404 (JSON, like every
/// other miss) for anything that is not one of its files.
pub async fn serve(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.match_info().query("path");
    let path = if path.is_empty() { "index.html" } else { path };
    let asset = assets().get(path).ok_or(ApiError::NotFound)?;
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag || t.trim() == "*"));
    let mut res = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    res.insert_header((header::ETAG, asset.etag.as_str())).insert_header((header::CACHE_CONTROL, "no-cache"));
    if fresh {
        return Ok(res.finish());
    }
    let mut res = res.content_type(asset.content_type.as_str()).body(asset.bytes);
    res.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(res)
}

/// The types the page uses; module scripts must come as JavaScript and
/// WebAssembly as `application/wasm`, or the browser refuses them.
fn content_type(ext: &str) -> &'static str {
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" | "md" | "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_web_file_is_embedded_with_its_bytes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    on_disk.push(e.path().strip_prefix(&dir).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<_> = paths().map(str::to_owned).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
        for path in &on_disk {
            assert_eq!(assets()[path.as_str()].bytes, std::fs::read(dir.join(path)).unwrap(), "{path}");
        }
        assert!(on_disk.iter().any(|p| p == "index.html"));
    }
}
