//! Error responses we did not write ourselves (actix-files' 405 and 416,
//! actix-web's own 4xx) rewritten into the API's JSON shape
//! `{"error", "code"}`, so a client never has to parse `text/plain`; a 405
//! always says what is allowed.
//!
//! Out of reach: a malformed request line (400) and oversized headers (431)
//! are answered by actix-http's HTTP/1 dispatcher itself, with an empty body,
//! before any application code (and so this middleware) runs.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::HttpResponse;

/// The middleware: every error response that is not JSON already becomes JSON.
pub fn json<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(to_json)
}

fn to_json<B: MessageBody + 'static>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let status = res.status();
    if is_json(res.headers()) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status);
    // Headers that carry meaning for the error are kept.
    for name in [header::ALLOW, header::CONTENT_RANGE, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = old.headers().get(&name) {
            new.insert_header((name, v.clone()));
        }
    }
    if status == StatusCode::METHOD_NOT_ALLOWED && !old.headers().contains_key(header::ALLOW) {
        new.insert_header((header::ALLOW, crate::server::error::READ_METHODS));
    }
    let reason = status.canonical_reason().unwrap_or("error");
    let body = crate::protocol::ErrorBody::new(code(status), reason.to_ascii_lowercase());
    let res = ServiceResponse::new(req, new.json(body)).map_into_boxed_body().map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// Whether a response's body is JSON (an API error already, then).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"))
}

/// The same codes the API's own errors use where they overlap
/// (`crate::error::ApiError::code`), else the status's reason in snake case.
pub fn code(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "not_found".into(),
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed".into(),
        StatusCode::RANGE_NOT_SATISFIABLE => "range_not_satisfiable".into(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large".into(),
        StatusCode::INTERNAL_SERVER_ERROR => "internal_error".into(),
        s => s
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect(),
    }
}
