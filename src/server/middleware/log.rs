//! One log line per request, at debug (`RUST_LOG=debug`): a serving
//! process stays quiet by default. Method, path (control characters
//! escaped, it is the client's text), status and time to the response head.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::logsafe::Esc;

/// The middleware (`middleware::from_fn(log::request)`).
pub async fn request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let (method, path, started) = (req.method().clone(), req.path().to_owned(), Instant::now());
    let res = next.call(req).await?;
    let path = Esc(&path);
    tracing::debug!(%method, %path, status = res.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    Ok(res)
}
