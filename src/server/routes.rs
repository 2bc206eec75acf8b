//! HTTP routes: the one place that wires every endpoint, used by the binary
//! and the tests alike. Handlers validate input in the protocol's order
//! (404 name, 400 malformed, 412 version, then 416 or 204) and hand streams
//! to [`super::stream`].

use std::ops::Range;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{guard, web, HttpRequest, HttpResponse, Resource};
use serde::Deserialize;

use super::error::{ApiError, READ_METHODS};
use super::peer::PeerFd;
use super::slots::Slot;
use super::state::AppState;
use super::stream::{self, Plan};
use super::{assets, files, live, publish};
use crate::protocol::limits::MAX_NEED_LEN;
use crate::protocol::{params, Health, Limits};
use crate::tls;
use crate::tree::{manifest, FileIndex, Resolved};

type State = web::Data<AppState>;

/// Registers every route. `state` must also be registered as app data.
/// The page comes from `web_dir` on disk when given (for development), else
/// from the copy built into the binary.
pub fn configure(cfg: &mut web::ServiceConfig, web_dir: Option<&std::path::Path>) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| ApiError::bad("query", e.to_string()).into()))
        .app_data(web::PathConfig::default().error_handler(|e, _| ApiError::bad("path", e.to_string()).into()))
        .service(read_only("/healthz").to(healthz))
        .service(read_only("/api/files").to(list_files))
        .service(read_only("/api/manifest").to(manifest))
        .service(read_only("/events").to(events))
        .service(read_only("/events/chunk/{start}/{end}").to(range))
        .service(
            web::resource("/api/publish")
                .route(web::route().guard(guard::Any(guard::Get()).or(guard::Head())).to(publish::status))
                .route(web::route().guard(guard::Any(guard::Post()).or(guard::Put())).to(publish::append))
                .default_service(web::to(publish::other_method)),
        )
        .service(read_only("/files/{name:.*}").to(files::serve));
    match web_dir {
        Some(dir) => {
            cfg.service(actix_files::Files::new("/", dir).index_file("index.html").default_handler(web::to(not_found)));
        }
        None => {
            cfg.service(read_only("/{path:.*}").to(assets::serve));
        }
    }
    cfg.default_service(web::to(fallback));
}

/// A resource answering GET and HEAD, and 405 with a JSON body otherwise.
fn read_only(path: &str) -> ReadOnly {
    ReadOnly(path.to_owned())
}

struct ReadOnly(String);

impl ReadOnly {
    fn to<F, Args>(self, handler: F) -> Resource
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        web::resource(self.0)
            .route(web::route().guard(guard::Any(guard::Get()).or(guard::Head())).to(handler))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(READ_METHODS)) }))
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn fallback(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    match *req.method() {
        actix_web::http::Method::GET | actix_web::http::Method::HEAD => Err(ApiError::NotFound),
        _ => Err(ApiError::MethodNotAllowed(READ_METHODS)),
    }
}

/// 200 while serving, with the number of responses holding a file (event
/// streams and `/files` downloads; for load balancers and for watching
/// `--max-connections`) and the protocols served.
async fn healthz(state: State) -> HttpResponse {
    let tls = state.config.tls.is_some();
    HttpResponse::Ok().json(Health {
        protocols: tls::protocols(tls).to_vec(),
        status: "ok",
        streams: state.slots.open(),
        tls,
    })
}

/// Entries per page of a streamed listing: ~20 KiB of JSON, small enough
/// that 500 listings nobody reads hold little, large enough that a page's
/// hop to the blocking pool is amortized.
const LISTING_PAGE: usize = 200;

/// `GET /api/files[?dir=SUB]`: one directory (the root without `dir`), a
/// JSON array written a page at a time as the client reads it. A missing
/// directory is a 404 before the first byte; a response never holds more
/// than the page being written (an HTTP/2 client may open hundreds of
/// listings and read none).
async fn list_files(state: State, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let dir = q.into_inner().dir.unwrap_or_default();
    let catalog = state.catalog.clone();
    let listing = catalog.listing(&dir)?;
    let pages = futures_util::stream::unfold(Some((listing, true)), move |state| {
        let catalog = catalog.clone();
        async move {
            let (listing, first) = state?;
            let (listing, page) = match catalog.next_page(listing, LISTING_PAGE).await {
                Ok(next) => next,
                Err(e) => return Some((Err(std::io::Error::other(e)), None)),
            };
            let mut json = Vec::with_capacity(page.len() * 110 + 2);
            if first {
                json.push(b'[');
            }
            for (i, entry) in page.iter().enumerate() {
                if i > 0 || !first {
                    json.push(b',');
                }
                if let Err(e) = serde_json::to_writer(&mut json, entry) {
                    return Some((Err(std::io::Error::other(e)), None));
                }
            }
            if page.is_empty() {
                json.push(b']');
                return Some((Ok(web::Bytes::from(json)), None));
            }
            Some((Ok(web::Bytes::from(json)), Some((listing, false))))
        }
    });
    Ok(HttpResponse::Ok().content_type("application/json").streaming(pages))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    dir: Option<String>,
}

/// Query parameters of the stream endpoints. Every field is a raw string so
/// our parsers, not serde, decide what is malformed; unknown parameters are
/// ignored (cache-busters, polyfills).
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    file: Option<String>,
    from: Option<String>,
    v: Option<String>,
    rate: Option<String>,
    need: Option<String>,
    /// Polyfills (and Mercure) send the last id as a query parameter.
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
}

/// The whole manifest, from bytes serialized once per index version.
async fn manifest(state: State, q: web::Query<StreamQuery>) -> Result<HttpResponse, ApiError> {
    let file = resolve(&state, &q)?;
    let limits = Limits { max_range: state.config.max_range, max_need: MAX_NEED_LEN };
    if let Some(open) = live_of(&state, &file) {
        return live::manifest(&file.name, &open, limits);
    }
    let (_, tail) = state.store.manifest(&file).await?;
    let parts = manifest::with_name(&file.name, limits, &tail)?;
    let len = parts.iter().map(|p| p.len() as u64).sum();
    let body = futures_util::stream::iter(parts.map(Ok::<_, std::io::Error>));
    Ok(HttpResponse::Ok().content_type("application/json").body(actix_web::body::SizedStream::new(len, body)))
}

/// A stream request that passed every check but the 416/204 ones.
struct Admitted {
    file: Resolved,
    index: Arc<FileIndex>,
    /// Chunk after the client's last event id, if it sent one.
    resume: Option<u64>,
    rate: Option<u64>,
    slot: Slot,
}

/// The open live publication `file` is, if any.
fn live_of(state: &AppState, file: &Resolved) -> Option<Arc<crate::live::Live>> {
    state.live.as_ref()?.find(file)
}

/// Step 412 for a live publication: `v` must be its id.
fn check_live(open: &crate::live::Live, version: Option<&str>) -> Result<(), ApiError> {
    match version {
        Some(v) if v != open.id => Err(ApiError::VersionMismatch { requested: v.to_owned(), current: open.id.clone() }),
        _ => Ok(()),
    }
}

/// Step 404: the `file` parameter names a servable file.
fn resolve(state: &AppState, q: &StreamQuery) -> Result<Resolved, ApiError> {
    let name = q.file.as_deref().ok_or(ApiError::MissingParam("file"))?;
    Ok(state.catalog.resolve(name)?)
}

/// The parameters every stream endpoint shares, parsed (step 400).
struct Shared<'q> {
    last_id: Option<u64>,
    rate: Option<u64>,
    version: Option<&'q str>,
}

fn shared<'q>(req: &HttpRequest, q: &'q StreamQuery) -> Result<Shared<'q>, ApiError> {
    // The header wins over the query parameter when both are present.
    let last_id = match req.headers().get("Last-Event-ID") {
        Some(h) => Some(params::last_event_id(h.as_bytes())?),
        None => q.last_event_id.as_deref().map(|s| params::chunk_number("lastEventId", s)).transpose()?,
    };
    let rate = q.rate.as_deref().map(params::rate).transpose()?;
    let version = q.v.as_deref().map(params::version).transpose()?;
    Ok(Shared { last_id, rate, version })
}

/// A `HEAD` of a stream endpoint, once the name and the parameters passed:
/// the headers a `GET` would get, without indexing, reading or a stream slot
/// (the version, range and end checks need the index, so they are `GET`'s).
fn head_only(req: &HttpRequest) -> Option<HttpResponse> {
    (req.method() == actix_web::http::Method::HEAD).then(|| stream::head().finish())
}

/// Steps index and 412, for an already resolved file.
async fn check(state: &AppState, p: Shared<'_>, file: Resolved, slot: Option<Slot>) -> Result<Admitted, ApiError> {
    let Shared { last_id, rate, version } = p;
    let index = state.store.get(&file).await?;
    if let Some(v) = version {
        let current = index.version();
        if v != current && index.published_as.as_deref() != Some(v) {
            return Err(ApiError::VersionMismatch { requested: v.to_owned(), current });
        }
    }
    // u64::MAX + 1 is past any file's end, which the caller answers with 416.
    let resume = last_id.map(|id| id.saturating_add(1));
    let slot = slot.ok_or(ApiError::Internal("a GET without a stream slot"))?;
    Ok(Admitted { file, index, resume, rate, slot })
}

/// `GET /events?file=NAME[&from=N][&need=RANGES][&v=VERSION][&rate=BPS]`
async fn events(state: State, req: HttpRequest, q: web::Query<StreamQuery>) -> Result<HttpResponse, ApiError> {
    let slot = state.slot_for(&req)?;
    let file = resolve(&state, &q)?;
    let from = q.from.as_deref().map(|s| params::chunk_number("from", s)).transpose()?;
    let need = q.need.as_deref().map(params::need).transpose()?;
    let p = shared(&req, &q)?;
    if let Some(head) = head_only(&req) {
        return Ok(head);
    }
    if let Some(open) = live_of(&state, &file) {
        check_live(&open, p.version)?;
        if need.is_some() {
            return Err(ApiError::bad("need", "a live publication is refilled through /events/chunk, not `need`"));
        }
        let chunks = open.progress().chunks;
        let start = p.last_id.map(|id| id.saturating_add(1)).or(from).unwrap_or(0);
        if start > chunks {
            return Err(ApiError::RangeNotSatisfiable(format!("chunk {start} is not sealed yet ({chunks} so far)")));
        }
        let view = live::View {
            name: file.name,
            start,
            until: None,
            retry_ms: state.config.retry_ms,
            keep_alive: state.config.keep_alive,
        };
        let slot = slot.ok_or(ApiError::Internal("a GET without a stream slot"))?;
        return live::events(open, view, slot, state.streams.shutdown());
    }
    let c = check(&state, p, file, slot).await?;
    let chunks = c.index.chunks();
    let start = c.resume.or(from).unwrap_or(0);
    if start > chunks {
        return Err(ApiError::RangeNotSatisfiable(format!("chunk {start} is past the end ({chunks} chunks)")));
    }
    let list = match need {
        Some(need) => {
            if need.last().is_some_and(|r| r.end > chunks) {
                return Err(ApiError::RangeNotSatisfiable(format!(
                    "`need` names chunks past the end ({chunks} chunks)"
                )));
            }
            clip(&need, start..chunks)
        }
        None => std::iter::once(start..chunks).collect(),
    };
    let meta = manifest::meta(&c.file.name, &c.index)?;
    start_stream(&state, &req, c, list, Some(meta))
}

/// `GET /events/chunk/<start>/<end>?file=NAME[&v=VERSION]`
async fn range(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let slot = state.slot_for(&req)?;
    let file = resolve(&state, &q)?;
    let start = params::chunk_number("start", &path.0)?;
    let end = params::chunk_number("end", &path.1)?;
    let p = shared(&req, &q)?;
    if let Some(head) = head_only(&req) {
        return Ok(head);
    }
    if let Some(open) = live_of(&state, &file) {
        check_live(&open, p.version)?;
        let from = check_range(start, end, open.progress().chunks, state.config.max_range, p.last_id)?;
        if from == end {
            return Ok(HttpResponse::NoContent().insert_header((header::CACHE_CONTROL, "no-cache")).finish());
        }
        let view = live::View {
            name: file.name,
            start: from,
            until: Some(end),
            retry_ms: state.config.retry_ms,
            keep_alive: state.config.keep_alive,
        };
        let slot = slot.ok_or(ApiError::Internal("a GET without a stream slot"))?;
        return live::events(open, view, slot, state.streams.shutdown());
    }
    let last_id = p.last_id;
    let c = check(&state, p, file, slot).await?;
    let from = check_range(start, end, c.index.chunks(), state.config.max_range, last_id)?;
    start_stream(&state, &req, c, std::iter::once(from..end).collect(), None)
}

/// Step 416 of a range request: `start..end` within the `chunks` there are
/// and at most `max` long; the chunk it starts from (after `Last-Event-ID`).
fn check_range(start: u64, end: u64, chunks: u64, max: u64, last_id: Option<u64>) -> Result<u64, ApiError> {
    if start >= end {
        return Err(ApiError::RangeNotSatisfiable(format!("empty range {start}..{end}: start must be below end")));
    }
    if end > chunks {
        return Err(ApiError::RangeNotSatisfiable(format!("end {end} is past the end ({chunks} chunks)")));
    }
    if end - start > max {
        return Err(ApiError::RangeNotSatisfiable(format!("{} chunks asked, at most {max} per request", end - start)));
    }
    let from = last_id.map_or(start, |id| id.saturating_add(1));
    if from < start || from > end {
        return Err(ApiError::RangeNotSatisfiable(format!("Last-Event-ID is outside {start}..{end}")));
    }
    Ok(from)
}

/// 204 when nothing is left (which stops a browser's EventSource), else the stream.
/// Beyond `--max-connections` open streams: 503 with `Retry-After`.
fn start_stream(
    state: &AppState,
    req: &HttpRequest,
    c: Admitted,
    list: Vec<Range<u64>>,
    meta: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let list: Vec<_> = list.into_iter().filter(|r| !r.is_empty()).collect();
    if list.is_empty() {
        return Ok(HttpResponse::NoContent().insert_header((header::CACHE_CONTROL, "no-cache")).finish());
    }
    let slot = c.slot;
    let peer = req.conn_data::<PeerFd>().copied();
    let plan = Plan {
        name: c.file.name,
        file: c.file.file,
        id: c.file.id,
        fs: state.catalog.fs().clone(),
        rel: c.file.rel,
        index: c.index,
        chunks: list,
        // The range endpoint (no `meta`) serves refills.
        refill: meta.is_none(),
        meta,
        rate: c.rate,
        retry_ms: state.config.retry_ms,
        keep_alive: state.config.keep_alive,
        peer,
    };
    state.streams.respond(plan, slot)
}

/// The part of `ranges` inside `within`.
fn clip(ranges: &[Range<u64>], within: Range<u64>) -> Vec<Range<u64>> {
    ranges.iter().map(|r| r.start.max(within.start)..r.end.min(within.end)).filter(|r| !r.is_empty()).collect()
}
