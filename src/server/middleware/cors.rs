//! Applies the `--cors-origin` policy ([`crate::server::policy::cors`]):
//! answers allowed preflights and adds the CORS headers to every response.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::server::policy::cors::{ALLOW_HEADERS, EXPOSE_HEADERS, MAX_AGE};
use crate::server::state::AppState;

/// The middleware (`middleware::from_fn(cors::middleware)`); the policy is
/// the checked config's, in the app state.
pub async fn middleware<B: MessageBody>(
    state: web::Data<AppState>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let policy = &state.config.cors;
    if !policy.enabled() {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let allowed = req.headers().get(header::ORIGIN).and_then(|o| policy.allow(o));
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (true, Some(allow)) = (preflight, &allowed) {
        let mut res = HttpResponse::NoContent();
        res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, allow.clone()))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE))
            .insert_header((header::VARY, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"));
        // Chromium's Private Network Access asks before a public page may
        // reach a LAN address; an origin the operator allowed may.
        if req.headers().contains_key("access-control-request-private-network") {
            res.insert_header(("access-control-allow-private-network", "true"));
        }
        return Ok(req.into_response(res.finish()).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    add_headers(res.headers_mut(), allowed);
    Ok(res.map_into_left_body())
}

/// `Vary: Origin` on every response (a shared cache must not hand one
/// origin's answer to another), and the allow/expose pair when allowed.
fn add_headers(headers: &mut HeaderMap, allowed: Option<HeaderValue>) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(allow) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    }
}
