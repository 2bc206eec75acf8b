//! The API's error type: every failure a request can meet, mapped to an HTTP
//! status and a JSON body `{"error": "<human message>", "code": "<snake_case>"}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use super::slots::{Full, PER_CONNECTION};
use crate::logsafe::Esc;
use crate::protocol::params::ParamError;
use crate::protocol::ErrorBody;
use crate::tree::TreeError;

/// What every address but `/api/publish` answers: the server only reads.
pub const READ_METHODS: &str = "GET, HEAD";
/// What `/api/publish` answers under `serve --publish`.
pub const PUBLISH_METHODS: &str = "GET, HEAD, POST, PUT";

/// Everything a request can fail with. Handlers return `Result<_, ApiError>`
/// and never build error responses by hand, so the mapping below is the one
/// place that decides statuses and codes.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Unknown, hidden or out-of-root names all look the same from outside:
    /// the message never says which, so probing reveals nothing.
    #[error("no such file")]
    NotFound,

    #[error("missing query parameter `{0}`")]
    MissingParam(&'static str),

    #[error("invalid `{name}`: {reason}")]
    BadParam { name: &'static str, reason: String },

    #[error("the `need` list is longer than {max} characters")]
    NeedTooLong { max: usize },

    #[error("version {requested} does not match the file's current version {current}")]
    VersionMismatch { requested: String, current: String },

    #[error("{0}")]
    RangeNotSatisfiable(String),

    /// With the methods the address answers, for `Allow`
    /// ([`READ_METHODS`] or [`PUBLISH_METHODS`]).
    #[error("method not allowed: use one of {0}")]
    MethodNotAllowed(&'static str),

    #[error("server busy: {0} streams and downloads are open, try again shortly")]
    Busy(usize),

    #[error("this connection holds {0} streams and downloads already, the most one connection may; close one or use another connection")]
    ConnectionBusy(usize),

    #[error("authentication required: wrong or missing user name or password")]
    Unauthorized,

    #[error("this link has expired; ask for a new one")]
    LinkExpired,

    #[error("this link is not valid for this request: it opens one file only, and its signature must match")]
    LinkInvalid,
    #[error("this server does not answer for host {0:?}; see --allowed-host")]
    HostNotAllowed(String),

    #[error("a file by this name exists; add replace=1 to publish a new version of it")]
    PublishExists,

    #[error("another producer is publishing to this file now")]
    ProducerActive,

    #[error("this publication is written through another instance of the server; send the producer's requests there (docs/DEPLOY.md)")]
    PublishedElsewhere,

    #[error(
        "the server has acknowledged {offset} bytes of this publication; send offset={offset} and the bytes from there"
    )]
    OffsetMismatch { offset: u64 },

    #[error("the body is not UTF-8 text; the publication keeps the {offset} bytes before the first invalid one")]
    NotText { offset: u64 },

    #[error("the publication would pass --max-publish ({max} bytes); it ended as abandoned with {offset} bytes")]
    TooLarge { offset: u64, max: u64 },

    #[error("could not read the file")]
    Io(#[from] std::io::Error),

    #[error("could not index the file")]
    Index(#[source] std::io::Error),

    /// A task on the blocking pool panicked or was cancelled.
    #[error("a background task failed")]
    Task(#[source] tokio::task::JoinError),

    /// A broken invariant: a bug, named for the log.
    #[error("internal error: {0}")]
    Internal(&'static str),

    #[error("could not serialize the answer")]
    Json(#[from] serde_json::Error),
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Bad { name, reason } => ApiError::BadParam { name, reason },
            ParamError::NeedTooLong { max } => ApiError::NeedTooLong { max },
        }
    }
}

impl From<TreeError> for ApiError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::NotFound => ApiError::NotFound,
            TreeError::Exists => ApiError::PublishExists,
            TreeError::Io(e) => ApiError::Io(e),
            TreeError::Index(e) => ApiError::Index(e),
            TreeError::Task(e) => ApiError::Task(e),
            TreeError::Closed(_) => ApiError::Internal("a semaphore of the file core was closed"),
        }
    }
}

impl From<Full> for ApiError {
    fn from(full: Full) -> Self {
        match full {
            Full::Server(open) => ApiError::Busy(open),
            Full::Connection => ApiError::ConnectionBusy(PER_CONNECTION),
        }
    }
}

impl ApiError {
    /// The stable, machine-readable code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::MissingParam(_) => "missing_parameter",
            ApiError::BadParam { .. } => "bad_parameter",
            ApiError::NeedTooLong { .. } => "need_too_long",
            ApiError::VersionMismatch { .. } => "version_mismatch",
            ApiError::RangeNotSatisfiable(_) => "range_not_satisfiable",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Busy(_) | ApiError::ConnectionBusy(_) => "busy",
            ApiError::Unauthorized => "unauthorized",
            ApiError::LinkExpired => "link_expired",
            ApiError::LinkInvalid => "link_invalid",
            ApiError::HostNotAllowed(_) => "host_not_allowed",
            ApiError::PublishExists => "exists",
            ApiError::ProducerActive | ApiError::PublishedElsewhere => "producer_active",
            ApiError::OffsetMismatch { .. } => "offset_mismatch",
            ApiError::NotText { .. } => "not_text",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::Io(_) => "io_error",
            ApiError::Index(_) => "index_error",
            ApiError::Task(_) | ApiError::Internal(_) | ApiError::Json(_) => "internal_error",
        }
    }

    /// The bytes a publication has acknowledged, for the errors a producer
    /// recovers from.
    pub fn offset(&self) -> Option<u64> {
        match self {
            ApiError::OffsetMismatch { offset } | ApiError::NotText { offset } | ApiError::TooLarge { offset, .. } => {
                Some(*offset)
            }
            _ => None,
        }
    }

    /// A helper for the many "this parameter is malformed" cases.
    pub fn bad(name: &'static str, reason: impl Into<String>) -> Self {
        ApiError::BadParam { name, reason: reason.into() }
    }
}

/// An error body with the publication's acknowledged offset.
#[derive(serde::Serialize)]
struct WithOffset<'a> {
    #[serde(flatten)]
    body: ErrorBody<'a>,
    offset: u64,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MissingParam(_) | ApiError::BadParam { .. } => StatusCode::BAD_REQUEST,
            ApiError::NeedTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Busy(_) | ApiError::ConnectionBusy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::LinkExpired | ApiError::LinkInvalid => StatusCode::FORBIDDEN,
            ApiError::HostNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::PublishExists
            | ApiError::ProducerActive
            | ApiError::PublishedElsewhere
            | ApiError::OffsetMismatch { .. } => StatusCode::CONFLICT,
            ApiError::NotText { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Io(_) | ApiError::Index(_) | ApiError::Task(_) | ApiError::Internal(_) | ApiError::Json(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            let cause = std::error::Error::source(self).map(|c| c.to_string()).unwrap_or_default();
            tracing::error!(error = %Esc(&self.to_string()), cause = %Esc(&cause), "request failed");
        }
        let mut res = HttpResponse::build(status);
        match self {
            ApiError::MethodNotAllowed(allow) => {
                res.insert_header((header::ALLOW, *allow));
            }
            ApiError::Busy(_) => {
                // A refused client does not keep a socket (a descriptor) open.
                res.insert_header((header::RETRY_AFTER, "1")).force_close();
            }
            ApiError::ConnectionBusy(_) => {
                // The connection's other streams go on: it stays open.
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="chunkcast", charset="UTF-8""#));
            }
            _ => {}
        }
        let body = ErrorBody::new(self.code(), self.to_string());
        match self.offset() {
            // A producer resumes from the offset a publishing error carries.
            Some(offset) => res.json(WithOffset { body, offset }),
            None => res.json(body),
        }
    }
}
