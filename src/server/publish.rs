//! `POST`/`PUT`/`GET /api/publish?file=NAME`: a producer appends a live
//! text, and learns how much of it the server has acknowledged.
//!
//! The body is read as it arrives and appended piece by piece on the
//! blocking pool (each seal flushes to disk); the answer comes once the
//! body is over and its whole characters are sealed, so its `offset` is
//! exactly what a producer resumes from.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use futures_util::{FutureExt as _, StreamExt};
use serde::Deserialize;

use super::error::{ApiError, PUBLISH_METHODS};
use super::state::AppState;
use crate::live::{PublishError, Registry};
use crate::protocol::params;

/// The most body bytes handed to the blocking pool at once.
const BATCH: usize = 256 * 1024;

#[derive(Debug, Deserialize)]
pub struct PublishQuery {
    file: Option<String>,
    offset: Option<String>,
    end: Option<String>,
    replace: Option<String>,
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::ProducerActive => ApiError::ProducerActive,
            PublishError::Elsewhere => ApiError::PublishedElsewhere,
            PublishError::OffsetMismatch { offset } => ApiError::OffsetMismatch { offset },
            PublishError::NotText { offset } => ApiError::NotText { offset },
            PublishError::TooLarge { offset, max } => ApiError::TooLarge { offset, max },
            PublishError::Ended | PublishError::Exists => ApiError::PublishExists,
            PublishError::NotFound => ApiError::NotFound,
            PublishError::Io(e) => ApiError::Io(e),
        }
    }
}

/// The registry, or 404 when the server does not publish.
fn registry(state: &AppState) -> Result<Arc<Registry>, ApiError> {
    state.live.clone().ok_or(ApiError::NotFound)
}

/// Any other method on `/api/publish`: 405 naming the four it answers, or
/// 404 when the server does not publish (as every method then is).
pub async fn other_method(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    registry(&state)?;
    Err(ApiError::MethodNotAllowed(PUBLISH_METHODS))
}

/// `end=1`, `replace=1` (or `0`; absent is `0`).
fn flag(name: &'static str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(_) => Err(ApiError::bad(name, "must be 1 or 0")),
    }
}

/// Runs a blocking step of the registry on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PublishError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(ApiError::Task)??)
}

/// `GET`/`HEAD`: the publication's acknowledged offset and state, open or
/// finished.
pub async fn status(state: web::Data<AppState>, q: web::Query<PublishQuery>) -> Result<HttpResponse, ApiError> {
    let registry = registry(&state)?;
    let name = q.into_inner().file.ok_or(ApiError::MissingParam("file"))?;
    let answer = blocking(move || match registry.find_name(&name) {
        Ok(live) => Ok(live.ack(&name)),
        Err(_) => registry.finished(&name).ok_or(PublishError::NotFound),
    })
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// `POST`/`PUT`: appends the body from `offset`; `end=1` ends the
/// publication once the body is sealed.
pub async fn append(
    state: web::Data<AppState>,
    q: web::Query<PublishQuery>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let registry = registry(&state)?;
    let q = q.into_inner();
    let name = q.file.ok_or(ApiError::MissingParam("file"))?;
    let offset = q.offset.as_deref().map(|s| params::chunk_number("offset", s)).transpose()?;
    let end = flag("end", q.end.as_deref())?;
    let replace = flag("replace", q.replace.as_deref())?;
    let (live, token, created) = {
        let (registry, name) = (registry.clone(), name.clone());
        blocking(move || registry.begin(&name, offset, replace)).await?
    };
    if created {
        registry.started(&live);
    }
    let mut refused = None;
    let mut broken = false;
    while let Some(piece) = body.next().await {
        let Ok(first) = piece else {
            broken = true;
            break;
        };
        // What else has arrived already goes along, up to a batch: one hop
        // to the blocking pool per batch, not per piece the socket gave
        // (a fast producer's pieces are a few KiB each); a slow one's piece
        // goes alone, at once.
        let mut batch = first.to_vec();
        while batch.len() < BATCH {
            match body.next().now_or_never() {
                Some(Some(Ok(more))) => batch.extend_from_slice(&more),
                Some(Some(Err(_))) => {
                    broken = true;
                    break;
                }
                Some(None) | None => break,
            }
        }
        let (r, l) = (registry.clone(), live.clone());
        if let Err(e) = blocking(move || r.append(&l, token, &batch)).await {
            refused = Some(e);
            break;
        }
        if broken {
            break;
        }
    }
    let finished = {
        let (r, l) = (registry.clone(), live.clone());
        let end = end && refused.is_none();
        blocking(move || r.finish(&l, token, broken, end)).await
    };
    if let Some(e) = refused {
        return Err(e);
    }
    finished?;
    if broken {
        return Err(ApiError::bad("body", "the request body ended before it was complete"));
    }
    Ok(HttpResponse::Ok().json(live.ack(&name)))
}
