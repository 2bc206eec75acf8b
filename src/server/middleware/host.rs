//! Applies the host policy ([`crate::server::policy::host`]): a request
//! that names a foreign `Host` gets 403 before anything else runs.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use crate::logsafe::Esc;
use crate::server::error::ApiError;
use crate::server::state::AppState;

/// The middleware: 403 `host_not_allowed` for a foreign `Host`. A request
/// without one (HTTP/1.0) is not a browser's and passes.
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| req.headers().get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()));
    let allowed = match (&host, req.app_data::<web::Data<AppState>>()) {
        (Some(host), Some(state)) => state.config.hosts.allows(host),
        _ => true,
    };
    if !allowed {
        let host = host.unwrap_or_default();
        tracing::debug!(host = %Esc(&host), "refused a request for a foreign host name");
        let res = ApiError::HostNotAllowed(host).error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
