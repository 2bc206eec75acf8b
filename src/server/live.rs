//! What viewers of a live publication get: its manifest (the chunks sealed
//! so far, `"live": true`) and its event stream, which sends the sealed
//! chunks and then each new one as it is sealed.
//!
//! The stream waits on the publication's `watch` channel, so a new chunk is
//! pushed to every viewer the moment it is sealed, with no polling, and a
//! viewer that reads slowly only falls behind: it reads what it missed
//! from the file (sealed bytes never change), in batches, while the
//! producer and the other viewers go on. A sealed chunk was written
//! moments ago and is in the page cache, so it is read on the worker.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde::Serialize;
use tokio::sync::watch;

use super::error::ApiError;
use super::slots::Slot;
use super::stream::{head, jittered};
use crate::live::{Live, Progress};
use crate::protocol::{hex, root_of, sse, End, Kind, Limits, LiveState, ManifestRef, StateEvent};

/// Payload bytes a viewer that is behind gets per write.
const BATCH: usize = 256 * 1024;

/// The whole manifest of a live publication under `name`.
pub fn manifest(name: &str, live: &Live, limits: Limits) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    struct Whole<'a> {
        name: &'a str,
        max_range: u64,
        max_need: usize,
        #[serde(flatten)]
        manifest: ManifestRef<'a>,
    }
    let snap = live.snapshot();
    let manifest = described(live, &snap, true);
    let body = serde_json::to_vec(&Whole { name, max_range: limits.max_range, max_need: limits.max_need, manifest })?;
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

/// The manifest of the chunks in `snap`; `full` adds digests and offsets.
fn described<'a>(live: &Live, snap: &'a crate::live::Snapshot, full: bool) -> ManifestRef<'a> {
    ManifestRef {
        name: None,
        size: snap.size,
        kind: Kind::Text,
        chunk_size: live.chunk_size(),
        chunks: snap.hashes.len() as u64,
        version: live.id.clone(),
        sha256: hex(&snap.sha256),
        root: hex(&root_of(&snap.hashes)),
        hashes: full.then_some(&snap.hashes[..]),
        offsets: full.then_some(&snap.offsets[..]),
        live: Some(true),
        state: Some(snap.state),
    }
}

/// Where a viewer's stream starts and stops.
pub struct View {
    pub name: String,
    /// The first chunk to send.
    pub start: u64,
    /// The range endpoint's end (exclusive); `None` follows to the end.
    pub until: Option<u64>,
    pub retry_ms: u64,
    pub keep_alive: Duration,
}

/// The event stream of `live` for one viewer, holding `slot` until it ends.
pub fn events(
    live: Arc<Live>,
    view: View,
    slot: Slot,
    shutdown: watch::Receiver<bool>,
) -> Result<HttpResponse, ApiError> {
    let mut first = sse::retry(jittered(view.retry_ms));
    if view.until.is_none() {
        let snap = live.snapshot();
        #[derive(Serialize)]
        struct Meta<'a> {
            name: &'a str,
            #[serde(flatten)]
            manifest: ManifestRef<'a>,
        }
        let meta = serde_json::to_string(&Meta { name: &view.name, manifest: described(&live, &snap, false) })?;
        first.extend_from_slice(&sse::named("meta", &meta));
    }
    let rx = live.subscribe();
    let shown = rx.borrow().state;
    let viewer = Viewer {
        live,
        rx,
        next: view.start,
        until: view.until,
        shown,
        keep_alive: view.keep_alive,
        shutdown,
        _slot: slot,
    };
    let body = futures_util::stream::unfold(Some((viewer, Some(first))), |state| async move {
        let (mut viewer, first) = state?;
        if let Some(first) = first {
            return Some((Ok(Bytes::from(first)), Some((viewer, None))));
        }
        match viewer.next_bytes().await {
            Step::More(bytes) => Some((Ok(bytes), Some((viewer, None)))),
            Step::Last(bytes) => Some((Ok(bytes), None)),
            Step::Failed(e) => Some((Err(e), None)),
            Step::Stop => None,
        }
    });
    Ok(head().streaming(body))
}

struct Viewer {
    live: Arc<Live>,
    rx: watch::Receiver<Progress>,
    next: u64,
    until: Option<u64>,
    /// The state this viewer was last told.
    shown: LiveState,
    keep_alive: Duration,
    shutdown: watch::Receiver<bool>,
    _slot: Slot,
}

enum Step {
    More(Bytes),
    Last(Bytes),
    Failed(std::io::Error),
    /// The server is shutting down: end between two events, without `end`,
    /// so the viewer resumes from its last id.
    Stop,
}

impl Viewer {
    async fn next_bytes(&mut self) -> Step {
        loop {
            let now = *self.rx.borrow_and_update();
            let limit = self.until.map_or(now.chunks, |u| u.min(now.chunks));
            if self.next < limit {
                return match self.chunks(limit) {
                    Ok(bytes) => Step::More(bytes),
                    Err(e) => Step::Failed(e),
                };
            }
            if self.until.is_some_and(|u| self.next >= u) || now.state.ended() {
                return Step::Last(self.end(now));
            }
            if now.state != self.shown {
                self.shown = now.state;
                let data = serde_json::to_string(&StateEvent { state: now.state }).unwrap_or_default();
                return Step::More(Bytes::from(sse::named("state", &data)));
            }
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        return Step::Stop;
                    }
                }
                () = tokio::time::sleep(self.keep_alive) => return Step::More(Bytes::from_static(sse::KEEP_ALIVE)),
                _ = self.shutdown.wait_for(|down| *down) => return Step::Stop,
            }
        }
    }

    /// Chunk events from `self.next` on, below `limit`, up to a batch.
    fn chunks(&mut self, limit: u64) -> std::io::Result<Bytes> {
        let mut out = Vec::new();
        let mut payload = 0;
        while self.next < limit && payload < BATCH {
            let chunk = self.live.chunk(self.next).ok_or_else(|| std::io::Error::other("a sealed chunk is missing"))?;
            let bytes = self.live.read(&chunk)?;
            let text = std::str::from_utf8(&bytes).map_err(std::io::Error::other)?;
            sse::chunk(&mut out, self.next, chunk.off, &chunk.sha256, sse::Payload::Text(text));
            payload += bytes.len();
            self.next += 1;
        }
        Ok(Bytes::from(out))
    }

    /// The `end` event: of the publication when it ended (with its reason),
    /// or of the chunks sealed so far at the end of a range.
    fn end(&self, now: Progress) -> Bytes {
        let hashes = self.live.snapshot().hashes;
        let reason = (self.until.is_none() && now.state.ended()).then_some(now.state);
        let end = End { chunks: hashes.len() as u64, root: hex(&root_of(&hashes)), reason };
        Bytes::from(sse::named("end", &serde_json::to_string(&end).unwrap_or_default()))
    }
}
