//! Applies the access policy ([`crate::server::policy::access`]): lets a
//! request through, or answers 401 (no or wrong credentials) or 403 (a link
//! that is expired, forged, or for another file).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};

use crate::server::error::ApiError;
use crate::server::policy::access::{Denied, Request};
use crate::server::state::AppState;
use crate::server::url::Mount;

/// The middleware (`middleware::from_fn(access::guard)`).
pub async fn guard<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let verdict = match (req.app_data::<web::Data<AppState>>(), req.app_data::<web::Data<Mount>>()) {
        (Some(state), Some(mount)) => state.config.access.check(&Request {
            method: req.method(),
            path: req.path(),
            mount,
            query: req.query_string(),
            authorization: req.headers().get(header::AUTHORIZATION),
        }),
        _ => Err(Denied::Unauthorized),
    };
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(denied) => Ok(req.into_response(ApiError::from(denied).error_response()).map_into_right_body()),
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Unauthorized => ApiError::Unauthorized,
            Denied::LinkExpired => ApiError::LinkExpired,
            Denied::LinkInvalid => ApiError::LinkInvalid,
        }
    }
}
