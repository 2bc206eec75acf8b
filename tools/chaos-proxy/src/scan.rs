//! The server -> client byte scanner: follows HTTP/1.1 framing and the SSE
//! lines inside `text/event-stream` bodies, finds where a planned cut or
//! stall lands, flips payload characters, and reports which chunk events went
//! out whole.
//!
//! It understands just enough HTTP/1.1 (status line, `Content-Length`,
//! chunked framing, several responses on one keep-alive connection) and SSE
//! (`id:`, `event: chunk`, the `"b64"`/`"text"` string in `data:`) to aim at
//! the interesting places: the middle of an event, the middle of a chunk's
//! payload, the gap between two events. A corruption replaces one payload
//! character with another of the same alphabet (base64, or ASCII
//! alphanumerics inside a JSON string and outside any escape), so the event
//! still parses and decodes and only a digest can catch it. A base64
//! character always changes in its top bit, which every decoder keeps, so
//! even the last character before `=` padding changes the decoded bytes.
//! HTTP framing bytes are never touched: that would be a broken connection,
//! not bad data.
//!
//! Two faults need bytes held back until later ones arrive, so [`Scanner::feed`]
//! says how much of its buffer may go out ([`Fed::release`]): a *forged*
//! chunk (its payload corrupted and its own `sha256` rewritten to match, so
//! only the manifest can catch it) holds its `data:` line until the payload
//! ends, and a cut before `end` holds each line that may be `event: end`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use crate::plan::{Corrupt, Kind, Plan, Point};

/// Faults switched on while the proxy runs, shared by every connection.
#[derive(Debug, Default)]
pub struct Manual {
    /// Chunk id -> how many more times to forge it (see the module comment).
    pub forge: Mutex<BTreeMap<u64, u32>>,
    /// Cut the next stream that reaches an `end` event just before it.
    pub cut_before_end: AtomicBool,
}

/// A chunk event that went out whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub id: u64,
    pub len: u64,
    pub corrupted: bool,
    /// Corrupted with its own `sha256` rewritten to match.
    pub forged: bool,
    /// It came from the range endpoint, not from `/events`.
    pub range: bool,
}

/// What [`Scanner::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// `buf[..release]` may be forwarded; the rest is held for later.
    pub release: usize,
    /// Forward `buf[..at]`, then this fault (it overrides `release`).
    pub stop: Option<(usize, Kind)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Http {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd(u8),
    Trailer,
    ToClose,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Payload {
    Base64,
    /// A JSON string: `esc` is [`ESC`] right after a backslash, the number
    /// of hex digits still to come inside `\uXXXX`, or 0.
    Text {
        esc: u8,
    },
}

const ESC: u8 = 9;
const HEX4: u8 = 4;
pub const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Each byte's index in [`B64`], or -1.
const B64_INDEX: [i8; 256] = index_of(B64);
/// Each byte's index in [`ALNUM`], or -1.
const ALNUM_INDEX: [i8; 256] = index_of(ALNUM);

const fn index_of(alphabet: &[u8]) -> [i8; 256] {
    let mut table = [-1i8; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as i8;
        i += 1;
    }
    table
}

/// Longer SSE lines are not kept whole (payload characters never are).
const LINE_CAP: usize = 1024;

/// The `data:` line of a chunk event being forged, with the wire offset of
/// each of its bytes (HTTP framing may lie between them).
#[derive(Debug, Default)]
struct Forge {
    line: Vec<u8>,
    wire: Vec<u64>,
    /// The first eligible payload character is still to flip.
    flip: bool,
}

/// Follows the server -> client bytes of one connection.
pub struct Scanner {
    pub plan: Plan,
    manual: Option<Arc<Manual>>,
    /// Bytes scanned so far.
    wire: u64,
    http: Http,
    line: Vec<u8>,
    sse: bool,
    range_request: bool,
    /// A range response just ended (its `end` event, or an error status).
    pub range_ended: bool,
    /// The request whose response is passing.
    pub path: String,
    // SSE state.
    sse_line: Vec<u8>,
    sse_line_len: usize,
    /// Chunk events seen so far on this connection (the current one included).
    chunk_events: u64,
    ev_chunk: bool,
    ev_id: Option<u64>,
    ev_len: u64,
    ev_data: bool,
    ev_corrupted: bool,
    /// Lines since the `event: chunk` line of the current event.
    lines_after_event: u32,
    payload: Option<Payload>,
    payload_pos: usize,
    payload_done: bool,
    /// Characters flipped since the owner last took the count.
    pub flipped: u64,
    /// Wire offset of the first byte not yet releasable.
    hold: Option<u64>,
    forge: Option<Forge>,
    /// The current line may be `event: end`, and a cut before it is wanted.
    end_probe: bool,
    /// Wire offset to cut at (a manual cut before `end`).
    cut_at: Option<u64>,
    /// The last stop was a manual fault, not the plan's.
    pub manual_stop: bool,
}

impl Scanner {
    pub fn new(plan: Plan) -> Scanner {
        Scanner {
            plan,
            manual: None,
            wire: 0,
            http: Http::Head,
            line: Vec::new(),
            sse: false,
            range_request: false,
            range_ended: false,
            path: String::new(),
            sse_line: Vec::new(),
            sse_line_len: 0,
            chunk_events: 0,
            ev_chunk: false,
            ev_id: None,
            ev_len: 0,
            ev_data: false,
            ev_corrupted: false,
            lines_after_event: 0,
            payload: None,
            payload_pos: 0,
            payload_done: false,
            flipped: 0,
            hold: None,
            forge: None,
            end_probe: false,
            cut_at: None,
            manual_stop: false,
        }
    }

    /// A scanner that also applies the proxy's manual faults.
    pub fn with_manual(plan: Plan, manual: Arc<Manual>) -> Scanner {
        Scanner { manual: Some(manual), ..Scanner::new(plan) }
    }

    /// Between responses, in no response's middle.
    pub fn between_responses(&self) -> bool {
        self.http == Http::Head && self.line.is_empty()
    }

    /// The index of the current chunk event, if the current event is one.
    fn current(&self) -> Option<u64> {
        self.ev_chunk.then(|| self.chunk_events - 1)
    }

    /// Scans `buf[from..]` (`buf[..from]` are bytes held back by an earlier
    /// call, which it may still rewrite), possibly flipping payload bytes in
    /// place. `paths` are the request targets in order, shared with the
    /// request side; `done` receives the chunk events that went out whole.
    pub fn feed(&mut self, buf: &mut [u8], from: usize, paths: &Mutex<VecDeque<String>>, done: &mut Vec<Done>) -> Fed {
        // Wire offset of buf[0].
        let base = self.wire - from as u64;
        let fault = self.plan.fault;
        self.manual_stop = false;
        let mut i = from;
        while i < buf.len() {
            let skip = self.skippable(buf, i);
            if skip > 0 {
                self.skip(skip);
                i += skip;
                continue;
            }
            if let Some((kind, Point::Bytes(n))) = fault {
                if self.wire == n {
                    return Fed { release: i, stop: Some((i, kind)) };
                }
            }
            // The byte about to be forwarded: stop before it for points that
            // lie inside a payload.
            if let (Some((kind, Point::InPayload(k, at))), Some(_)) = (fault, self.payload) {
                if self.current() == Some(k) && (self.payload_pos == at || buf[i] == b'"' && self.at_string_end()) {
                    return Fed { release: i, stop: Some((i, kind)) };
                }
            }
            self.wire += 1;
            let stop_after = self.byte(buf, base, i, paths, done);
            if let Some(at) = self.cut_at.take() {
                self.manual_stop = true;
                let at = (at - base) as usize;
                return Fed { release: at, stop: Some((at, Kind::Cut)) };
            }
            if let Some(true) = stop_after {
                return Fed { release: i + 1, stop: Some((i + 1, fault.unwrap().0)) };
            }
            i += 1;
        }
        let release = self.hold.map_or(buf.len(), |h| (h - base) as usize);
        Fed { release, stop: None }
    }

    /// How many bytes from `buf[i]` on are plain payload characters that no
    /// fault, corruption or framing rule cares about (0: go byte by byte).
    /// Most of a stream is payload; this keeps 64 MiB runs cheap.
    fn skippable(&self, buf: &[u8], i: usize) -> usize {
        if !self.sse || self.forge.is_some() {
            return 0;
        }
        let text = match self.payload {
            Some(Payload::Base64) => false,
            Some(Payload::Text { esc: 0 }) => true,
            _ => return 0,
        };
        let mut avail = buf.len() - i;
        match self.http {
            Http::Body(n) | Http::ChunkData(n) => avail = avail.min(n as usize),
            Http::ToClose => {}
            _ => return 0,
        }
        match self.plan.fault {
            Some((_, Point::Bytes(n))) if n >= self.wire => avail = avail.min((n - self.wire) as usize),
            Some((_, Point::InPayload(k, at))) if self.current() == Some(k) && at >= self.payload_pos => {
                avail = avail.min(at - self.payload_pos)
            }
            _ => {}
        }
        if let (Some(c), false) = (self.plan.corrupt.front(), self.ev_corrupted) {
            let k = self.current().unwrap_or(0);
            if k > c.k {
                return 0;
            }
            if k == c.k {
                avail = avail.min(c.at.saturating_sub(self.payload_pos));
            }
        }
        buf[i..i + avail].iter().position(|&b| b == b'"' || b == b'\n' || (text && b == b'\\')).unwrap_or(avail)
    }

    /// Moves over `n` bytes [`Scanner::skippable`] allowed.
    fn skip(&mut self, n: usize) {
        self.wire += n as u64;
        self.payload_pos += n;
        self.sse_line_len += n;
        self.http = match self.http {
            Http::Body(left) if left == n as u64 => Http::Head,
            Http::Body(left) => Http::Body(left - n as u64),
            Http::ChunkData(left) if left == n as u64 => Http::ChunkEnd(2),
            Http::ChunkData(left) => Http::ChunkData(left - n as u64),
            other => other,
        };
    }

    fn at_string_end(&self) -> bool {
        !matches!(self.payload, Some(Payload::Text { esc }) if esc > 0)
    }

    /// One byte of HTTP. Returns `Some(true)` when a planned point is right
    /// after this byte.
    fn byte(
        &mut self,
        buf: &mut [u8],
        base: u64,
        i: usize,
        paths: &Mutex<VecDeque<String>>,
        done: &mut Vec<Done>,
    ) -> Option<bool> {
        let b = buf[i];
        match self.http {
            Http::Head => {
                self.line.push(b);
                if self.line.ends_with(b"\r\n\r\n") {
                    self.start_response(paths);
                }
                None
            }
            Http::Body(n) => {
                self.http = if n <= 1 { Http::Head } else { Http::Body(n - 1) };
                self.body_byte(buf, base, i, done)
            }
            Http::ToClose => self.body_byte(buf, base, i, done),
            Http::ChunkSize => {
                self.line.push(b);
                if b == b'\n' {
                    let text = String::from_utf8_lossy(&self.line).into_owned();
                    let hex = text.trim().split(';').next().unwrap_or("").trim().to_owned();
                    let n = u64::from_str_radix(&hex, 16).unwrap_or(0);
                    self.line.clear();
                    self.http = if n == 0 { Http::Trailer } else { Http::ChunkData(n) };
                }
                None
            }
            Http::ChunkData(n) => {
                self.http = if n <= 1 { Http::ChunkEnd(2) } else { Http::ChunkData(n - 1) };
                self.body_byte(buf, base, i, done)
            }
            Http::ChunkEnd(left) => {
                self.http = if left <= 1 { Http::ChunkSize } else { Http::ChunkEnd(left - 1) };
                None
            }
            Http::Trailer => {
                self.line.push(b);
                if self.line.ends_with(b"\r\n") {
                    if self.line.len() == 2 {
                        self.http = Http::Head;
                    }
                    self.line.clear();
                }
                None
            }
        }
    }

    fn start_response(&mut self, paths: &Mutex<VecDeque<String>>) {
        let head = String::from_utf8_lossy(&self.line).to_ascii_lowercase();
        self.line.clear();
        let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        if (100..200).contains(&status) {
            return;
        }
        self.path = paths.lock().unwrap().pop_front().unwrap_or_default();
        self.range_request = self.path.starts_with("/events/chunk/");
        if self.range_request && !(200..300).contains(&status) {
            self.range_ended = true;
        }
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')).map(|v| v.trim().to_owned()))
        };
        self.sse = header("content-type").is_some_and(|t| t.starts_with("text/event-stream"));
        self.sse_line.clear();
        self.sse_line_len = 0;
        self.reset_event();
        self.http = if status == 204 || status == 304 {
            Http::Head
        } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            Http::ChunkSize
        } else if let Some(n) = header("content-length").and_then(|v| v.parse::<u64>().ok()) {
            if n == 0 {
                Http::Head
            } else {
                Http::Body(n)
            }
        } else {
            Http::ToClose
        };
    }

    fn reset_event(&mut self) {
        self.ev_chunk = false;
        self.ev_id = None;
        self.ev_len = 0;
        self.ev_data = false;
        self.ev_corrupted = false;
        self.lines_after_event = 0;
        self.payload = None;
        self.payload_pos = 0;
        self.payload_done = false;
        self.forge = None;
        self.end_probe = false;
        self.hold = None;
    }

    /// One byte of a response body. Returns `Some(true)` when a planned
    /// point is right after this byte.
    fn body_byte(&mut self, buf: &mut [u8], base: u64, i: usize, done: &mut Vec<Done>) -> Option<bool> {
        if !self.sse {
            return None;
        }
        let fault = self.plan.fault.map(|(_, p)| p);
        let b = buf[i];
        if b == b'\n' {
            let hit = if self.sse_line_len == 0 {
                // Blank line: the event is dispatched.
                let ended = self.current();
                if self.ev_chunk && self.ev_data {
                    if let Some(id) = self.ev_id {
                        let forged = self.forge.is_some() && self.ev_corrupted;
                        done.push(Done {
                            id,
                            len: self.ev_len,
                            corrupted: self.ev_corrupted,
                            forged,
                            range: self.range_request,
                        });
                    }
                }
                self.reset_event();
                ended.is_some() && fault == Some(Point::Between(ended.unwrap()))
            } else {
                self.end_line(buf, base)
            };
            self.sse_line.clear();
            self.sse_line_len = 0;
            return Some(hit);
        }
        if self.sse_line_len == 0 && b == b'e' && self.hold.is_none() {
            if let Some(m) = &self.manual {
                if m.cut_before_end.load(SeqCst) {
                    self.end_probe = true;
                    self.hold = Some(self.wire - 1);
                }
            }
        }
        self.sse_line_len += 1;
        if let Some(mode) = self.payload {
            self.payload_byte(buf, i, mode);
        } else if self.sse_line.len() < LINE_CAP {
            self.sse_line.push(b);
            if self.end_probe && !b"event: end".starts_with(&self.sse_line) && !b"event:end".starts_with(&self.sse_line)
            {
                self.end_probe = false;
                self.hold = None;
            }
            if self.ev_chunk && self.sse_line.starts_with(b"data:") && !self.payload_done {
                if self.sse_line.ends_with(b"\"b64\":\"") {
                    self.payload = Some(Payload::Base64);
                } else if self.sse_line.ends_with(b"\"text\":\"") {
                    self.payload = Some(Payload::Text { esc: 0 });
                }
            }
        }
        if let Some(f) = &mut self.forge {
            f.line.push(buf[i]);
            f.wire.push(self.wire - 1);
        }
        let hit = match (fault, self.current()) {
            (Some(Point::InDataPrefix(k, n)), Some(cur)) => {
                cur == k && self.lines_after_event == 0 && self.sse_line_len == n
            }
            _ => false,
        };
        Some(hit)
    }

    fn payload_byte(&mut self, buf: &mut [u8], i: usize, mode: Payload) {
        let b = buf[i];
        let mut eligible = false;
        match mode {
            Payload::Base64 => {
                if b == b'"' {
                    self.payload = None;
                    self.payload_done = true;
                    return;
                }
                eligible = B64_INDEX[b as usize] >= 0;
            }
            Payload::Text { esc } => {
                let next = match (esc, b) {
                    // After a backslash: `\uXXXX` has four hex digits to go.
                    (ESC, b'u') => HEX4,
                    (ESC, _) => 0,
                    (1..=HEX4, _) => esc - 1,
                    (0, b'\\') => ESC,
                    (0, b'"') => {
                        self.payload = None;
                        self.payload_done = true;
                        return;
                    }
                    (0, _) => {
                        eligible = b.is_ascii_alphanumeric();
                        0
                    }
                    _ => 0,
                };
                self.payload = Some(Payload::Text { esc: next });
            }
        }
        if eligible && !self.ev_corrupted {
            let forging = self.forge.as_ref().is_some_and(|f| f.flip);
            let planned = self.plan.corrupt.front().copied().filter(|c| {
                let k = self.current().unwrap_or(0);
                k > c.k || (k == c.k && self.payload_pos >= c.at)
            });
            let delta = if forging {
                Some(1)
            } else {
                planned.map(|c: Corrupt| {
                    self.plan.corrupt.pop_front();
                    c.delta
                })
            };
            if let Some(delta) = delta {
                buf[i] = flip(b, mode == Payload::Base64, delta);
                self.ev_corrupted = true;
                self.flipped += 1;
                if let Some(f) = &mut self.forge {
                    f.flip = false;
                }
            }
        }
        self.payload_pos += 1;
    }

    /// A non-blank SSE line ended. Returns whether a planned point follows.
    fn end_line(&mut self, buf: &mut [u8], base: u64) -> bool {
        let line = std::mem::take(&mut self.sse_line);
        self.payload = None;
        let fault = self.plan.fault.map(|(_, p)| p);
        if self.ev_chunk {
            self.lines_after_event += 1;
        }
        if self.end_probe {
            self.end_probe = false;
            let hold = self.hold.take();
            let is_end = line == b"event: end" || line == b"event:end";
            let wanted = is_end && self.manual.as_ref().is_some_and(|m| m.cut_before_end.swap(false, SeqCst));
            if is_end && wanted {
                self.cut_at = hold;
                return false;
            }
        }
        if (line == b"event: end" || line == b"event:end") && self.range_request {
            self.range_ended = true;
        }
        if let Some(v) = line.strip_prefix(b"id:") {
            self.ev_id = std::str::from_utf8(v).ok().and_then(|s| s.trim().parse().ok());
        } else if line == b"event: chunk" || line == b"event:chunk" {
            self.ev_chunk = true;
            self.chunk_events += 1;
            self.lines_after_event = 0;
            self.start_forge();
            return fault == Some(Point::AfterEventLine(self.chunk_events - 1));
        } else if line.starts_with(b"data:") {
            self.ev_data = true;
            if self.ev_chunk {
                let text = String::from_utf8_lossy(&line);
                self.ev_len = text
                    .split("\"len\":")
                    .nth(1)
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                self.finish_forge(buf, base);
                return self.current().is_some_and(|k| fault == Some(Point::AfterDataLine(k)));
            }
        }
        false
    }

    /// After `event: chunk`: whether this chunk is to be forged. If so, hold
    /// everything from here until its `data:` line is rewritten.
    fn start_forge(&mut self) {
        let (Some(id), Some(m)) = (self.ev_id, &self.manual) else { return };
        let mut forge = m.forge.lock().unwrap();
        let Some(left) = forge.get_mut(&id) else { return };
        *left -= 1;
        if *left == 0 {
            forge.remove(&id);
        }
        drop(forge);
        self.forge = Some(Forge { flip: true, ..Forge::default() });
        if self.hold.is_none() {
            self.hold = Some(self.wire);
        }
    }

    /// The forged `data:` line is whole: give it the digest of its
    /// corrupted payload, then let it go.
    fn finish_forge(&mut self, buf: &mut [u8], base: u64) {
        let Some(forge) = self.forge.take() else { return };
        self.hold = None;
        if !self.ev_corrupted {
            return; // nothing eligible to flip
        }
        let Some(digest) = forged_digest(&forge.line) else { return };
        let Some(at) = find(&forge.line, b"\"sha256\":\"").map(|i| i + 10) else { return };
        for (j, &h) in digest.as_bytes().iter().enumerate() {
            if let Some(&w) = forge.wire.get(at + j) {
                buf[(w - base) as usize] = h;
            }
        }
        // The event still counts as forged when it completes.
        self.forge = Some(Forge { flip: false, ..Forge::default() });
    }
}

/// Replaces one payload character with another of its alphabet: base64
/// always in its top bit (kept by every decoder, even before `=` padding),
/// text within the ASCII alphanumerics.
pub fn flip(b: u8, base64: bool, delta: usize) -> u8 {
    if base64 {
        let idx = B64_INDEX[b as usize].max(0) as usize;
        B64[idx ^ 32 ^ (delta & 31)]
    } else {
        let idx = ALNUM_INDEX[b as usize].max(0) as usize;
        let step = 1 + delta % (ALNUM.len() - 1);
        ALNUM[(idx + step) % ALNUM.len()]
    }
}

/// The hex SHA-256 of the payload in a chunk event's `data:` line.
fn forged_digest(line: &[u8]) -> Option<String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let json: serde_json::Value = serde_json::from_slice(line.strip_prefix(b"data:")?).ok()?;
    let bytes = match (json["b64"].as_str(), json["text"].as_str()) {
        (Some(b), _) => base64::engine::general_purpose::STANDARD.decode(b).ok()?,
        (_, Some(t)) => t.as_bytes().to_vec(),
        _ => return None,
    };
    Some(sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
