//! Error answers for people: a browser that opens an address which fails
//! (a file that is gone, a mistyped page, an expired `/files` link, a busy
//! server) shows a short page in the page's own style, saying what went
//! wrong and linking back to the file list, instead of the API's JSON.
//!
//! Only navigations are rewritten: `GET` with `text/html` in `Accept`, which
//! a browser's address bar and links send and `fetch`, `EventSource`, `get`
//! and curl do not. The machine endpoints (`/api/`, `/events`, `/healthz`)
//! always answer JSON. The page keeps the status and the headers that carry
//! meaning (`WWW-Authenticate`, `Retry-After`, …), repeats the JSON error's
//! sentence and code, and runs no script (`Content-Security-Policy`).

use actix_web::body::{to_bytes_limited, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use super::json_errors::is_json;
use crate::protocol::params::encode_query_value;
use crate::protocol::ErrorBody;
use crate::server::state::AppState;
use crate::server::url::Mount;

/// An API error body is a sentence and a code; anything longer is not one.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// The middleware (`middleware::from_fn(error_page::for_people)`); it wraps
/// `json_errors`, so every error it sees is already JSON.
pub async fn for_people(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    let page = page_path(&req);
    let wants_html = accepts_html(&req);
    let mut res = next.call(req).await?;
    let Some(nav) = page else { return Ok(res.map_into_left_body()) };
    let status = res.status();
    if !is_json(res.headers()) || !(status.is_client_error() || status.is_server_error()) {
        return Ok(res.map_into_left_body());
    }
    // The answer depends on `Accept` from here on: a cache must not hand
    // the JSON to a browser's navigation, nor the page to a script.
    res.headers_mut().append(header::VARY, HeaderValue::from_static("Accept"));
    if !wants_html {
        return Ok(res.map_into_left_body());
    }
    let (req, old) = res.into_parts();
    let (head, body) = old.into_parts();
    let error = match to_bytes_limited(body, MAX_ERROR_BODY).await {
        Ok(Ok(bytes)) => {
            serde_json::from_slice::<ErrorBody>(&bytes).ok().map(|e| (e.code.into_owned(), e.error.into_owned()))
        }
        _ => None,
    };
    let (code, sentence) = error.unwrap_or_else(|| (String::new(), String::new()));
    let mut new = HttpResponse::build(status);
    for (name, value) in head.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.append_header((name.clone(), value.clone()));
        }
    }
    if head.head().connection_type() == ConnectionType::Close {
        new.force_close(); // a busy server's refusal still frees its socket
    }
    new.insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'self'"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    let folder = if code == "not_found" { folder_at(&req, &nav.route) } else { None };
    let html = render(&Said { status, code: &code, sentence: &sentence, path: req.path() }, &nav.root, folder);
    let res = new.content_type("text/html; charset=utf-8").body(html);
    Ok(ServiceResponse::new(req, res).map_into_boxed_body().map_into_right_body())
}

/// A request for a page path.
struct Navigation {
    /// The file list's URL relative to the page (`./`, `../`, …, so it holds
    /// behind a proxy that strips a prefix too).
    root: String,
    /// The path as the routes see it (decoded, without the mount prefix).
    route: String,
}

/// A `GET` of a page path (not `/api/`, `/events` or `/healthz`, which
/// always answer JSON); `None` for anything else.
fn page_path(req: &ServiceRequest) -> Option<Navigation> {
    if req.method() != Method::GET {
        return None;
    }
    let mount = req.app_data::<web::Data<Mount>>()?;
    let route = mount.route_path(req.path())?;
    let machine =
        route.starts_with("/api/") || route == "/events" || route.starts_with("/events/") || route == "/healthz";
    (!machine).then(|| Navigation { root: mount.root_from(req.path()), route })
}

/// Whether the request is a browser's navigation: `text/html` in `Accept`.
fn accepts_html(req: &ServiceRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().starts_with("text/html")))
}

/// `/files/DIR` (or `/files/DIR/`) that misses because `DIR` is a folder:
/// its name, so the page can open it in the file list instead.
fn folder_at(req: &actix_web::HttpRequest, route: &str) -> Option<String> {
    let dir = route.strip_prefix("/files/")?.trim_end_matches('/');
    let state = req.app_data::<web::Data<AppState>>()?;
    state.catalog.is_dir(dir).then(|| dir.to_owned())
}

/// What the error said, and where.
struct Said<'a> {
    status: StatusCode,
    code: &'a str,
    sentence: &'a str,
    /// The request's path, as sent.
    path: &'a str,
}

/// What the page says for each kind of error: a heading, and whether the
/// address is worth repeating.
fn heading(status: StatusCode, code: &str) -> (&'static str, bool) {
    match code {
        "not_found" => ("Nothing here", true),
        "link_expired" => ("This link has expired", false),
        "link_invalid" => ("This link does not work here", false),
        "unauthorized" => ("Sign-in needed", false),
        "busy" => ("The server is busy", false),
        _ if status.is_server_error() => ("The server could not answer", true),
        _ => ("This address does not work", true),
    }
}

fn render(e: &Said, root: &str, folder: Option<String>) -> String {
    let Said { status, code, sentence, path } = *e;
    let (mut title, show_path) = heading(status, code);
    let mut said = String::new();
    let path = escape(&crate::server::url::decode_path(path).unwrap_or_else(|| path.to_owned()));
    let root = escape(root);
    let mut back = format!(r#"<a href="{root}">Open the file list</a>"#);
    if let Some(dir) = folder {
        title = "This is a folder";
        said.push_str(&format!(
            "<p><code>{}</code> is a folder; its files are downloaded one by one.</p>",
            escape(&dir)
        ));
        back = format!(r#"<a href="{root}?dir={}">Open it in the file list</a>"#, escape(&encode_query_value(&dir)));
    } else if code == "not_found" {
        said.push_str(&format!("<p>There is no file or page at <code>{path}</code> on this server.</p>"));
    } else if show_path {
        let why = escape(sentence.trim_end_matches('.'));
        said.push_str(&format!("<p><code>{path}</code> could not be opened: {why}.</p>"));
    } else if !sentence.is_empty() {
        let mut s = escape(sentence);
        if let Some(first) = s.get(..1) {
            s.replace_range(..1, &first.to_uppercase());
        }
        said.push_str(&format!("<p>{s}{}</p>", if s.ends_with('.') { "" } else { "." }));
    }
    let detail =
        if code.is_empty() { status.as_u16().to_string() } else { format!("{} · {}", status.as_u16(), escape(code)) };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <title>{title} · chunkcast</title>
  <link rel="stylesheet" href="{root}style.css">
</head>
<body>
  <header>
    <h1>chunkcast</h1>
  </header>
  <main>
    <section class="error-page">
      <h2>{title}</h2>
      {said}
      <p>{back}</p>
      <p class="error-detail">HTTP {detail}</p>
    </section>
  </main>
</body>
</html>
"#
    )
}

/// Text into HTML, as element content or a quoted attribute.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_sent_is_text_never_markup() {
        let said = |status, code, sentence, path| Said { status, code, sentence, path };
        let html =
            render(&said(StatusCode::NOT_FOUND, "not_found", "no such file", "/<script>alert(1)</script>"), "./", None);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        let html = render(&said(StatusCode::FORBIDDEN, "x\"><b>", "a \"quoted\" <i>sentence</i>", "/p"), "./", None);
        assert!(!html.contains("<b>") && !html.contains("<i>"), "{html}");
        let html = render(&said(StatusCode::NOT_FOUND, "not_found", "", "/files/a"), "../", Some("<a>&\"".into()));
        assert!(!html.contains("<b>") && !html.contains("<i>"), "{html}");
    }
}
