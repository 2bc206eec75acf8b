//! Server-Sent Events on the wire: the framing the server writes, and the
//! streaming parser the Rust client reads it with.
//!
//! Every event the server sends is one of:
//! ```text
//! retry: <ms>\n\n
//! event: meta\ndata: {...}\n\n
//! id: <i>\nevent: chunk\ndata: {"i":..,"off":..,"len":..,"sha256":"..","b64":".."}\n\n
//! event: end\ndata: {"chunks":N,"root":".."}\n\n
//! event: error\ndata: {"code":"changed","error":".."}\n\n
//! : keep-alive\n\n
//! ```
//! `data` is always a single line of JSON (serde_json escapes newlines), so no
//! event needs multi-line `data:` framing.

use std::io::{self, BufRead};

use super::digest::{hex, Hash};

pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

pub fn retry(ms: u64) -> Vec<u8> {
    format!("retry: {ms}\n\n").into_bytes()
}

/// A named event without an id. `data` must not contain a newline.
pub fn named(event: &str, data: &str) -> Vec<u8> {
    debug_assert!(!data.contains(['\n', '\r']));
    format!("event: {event}\ndata: {data}\n\n").into_bytes()
}

/// The payload of a chunk event: raw bytes (sent as base64) or UTF-8 text
/// (sent as a JSON string, so a page can show it without decoding).
pub enum Payload<'a> {
    Binary(&'a [u8]),
    Text(&'a str),
}

/// Appends one whole `chunk` event to `out`: [`chunk_head`], the payload
/// ([`base64_fragment`] or [`text_fragment`]), [`chunk_tail`]. The server
/// writes the same pieces slice by slice (see `stream`).
pub fn chunk(out: &mut Vec<u8>, i: u64, off: u64, hash: &Hash, payload: Payload<'_>) {
    match payload {
        Payload::Binary(bytes) => {
            chunk_head(out, i, off, bytes.len(), hash, false);
            base64_fragment(out, bytes);
        }
        Payload::Text(text) => {
            chunk_head(out, i, off, text.len(), hash, true);
            text_fragment(out, text.as_bytes());
        }
    }
    chunk_tail(out);
}

/// The start of a chunk event, up to and including the payload's opening
/// quote. The JSON is written by hand: every field but the payload is a
/// number or hex, so nothing needs escaping.
pub fn chunk_head(out: &mut Vec<u8>, i: u64, off: u64, len: usize, hash: &Hash, text: bool) {
    use std::io::Write as _;
    let field = if text { "text" } else { "b64" };
    let _ = write!(
        out,
        "id: {i}\nevent: chunk\ndata: {{\"i\":{i},\"off\":{off},\"len\":{len},\"sha256\":\"{}\",\"{field}\":\"",
        hex(hash)
    );
}

/// Base64 of `bytes`, encoded straight into `out` (the alphabet needs no
/// JSON escaping). Consecutive fragments join into one valid base64 string
/// as long as every fragment but the last has a length divisible by 3.
pub fn base64_fragment(out: &mut Vec<u8>, bytes: &[u8]) {
    base64_simd::STANDARD.encode_append(bytes, out);
}

/// UTF-8 `text` escaped as the inside of a JSON string, exactly as
/// `serde_json` escapes it (see [`super::escape`]).
///
/// It works on bytes rather than `&str` so the stream can escape a slice
/// that ends inside a character, and never has to validate UTF-8 a second
/// time: only ASCII bytes are ever escaped, so multi-byte characters pass
/// through whole. Bytes that are not the indexed text (rotted on disk) fail
/// the client's check of the chunk's digest.
pub fn text_fragment(out: &mut Vec<u8>, text: &[u8]) {
    super::escape::json_text(out, text);
}

/// The end of a chunk event: the payload's closing quote, the object's brace
/// and the blank line that dispatches the event.
pub fn chunk_tail(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"}\n\n");
}

/// One dispatched event, as an `EventSource` would deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The last event id seen so far on this stream (ids persist across events).
    pub id: Option<String>,
    /// The event type; `message` when the event had no `event:` field.
    pub event: String,
    pub data: String,
}

/// An event borrowed from the parser's buffers: no copy, no allocation and
/// no UTF-8 check of `data`, which for a chunk is hundreds of KiB that the
/// JSON parser and the digest check look at anyway.
#[derive(Debug)]
pub struct RawEvent<'a> {
    pub id: Option<&'a str>,
    pub event: &'a str,
    pub data: &'a [u8],
}

impl RawEvent<'_> {
    pub fn to_owned(&self) -> Event {
        Event {
            id: self.id.map(str::to_owned),
            event: self.event.to_owned(),
            data: String::from_utf8_lossy(self.data).into_owned(),
        }
    }
}

/// A streaming SSE parser following the HTML standard's rules: lines end in
/// CRLF, LF or CR; `:` starts a comment; an event is dispatched at a blank
/// line, and only if it has data.
#[derive(Debug, Default)]
pub struct Parser {
    last_id: Option<String>,
    event: String,
    /// The event's data; the first `data_start` bytes are a dead prefix (the
    /// `data: ` of the first line, which we keep instead of moving the rest).
    data: Vec<u8>,
    data_start: usize,
    has_data: bool,
    /// The last event was handed out; clear its fields before the next line.
    dispatched: bool,
    /// The last `retry:` value the server sent, in milliseconds.
    pub retry_ms: Option<u64>,
    line: Vec<u8>,
    skip_lf: bool,
    /// Longest line (and event data) accepted; `None`: unbounded.
    max_line: Option<usize>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps the line buffer: a longer line (or event data) is an
    /// `InvalidData` error instead of memory that grows with the input.
    pub fn with_max_line(mut self, max: usize) -> Self {
        self.max_line = Some(max);
        self
    }

    fn too_long(&self, len: usize) -> io::Result<()> {
        match self.max_line {
            Some(max) if len > max => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the server sent an SSE line or event longer than {max} bytes (the most a chunk can take)"),
            )),
            _ => Ok(()),
        }
    }

    /// Reads until the next dispatched event; `Ok(None)` at a clean end of
    /// stream. A partial event at the end is discarded, as browsers do.
    pub fn next_event(&mut self, r: &mut impl BufRead) -> io::Result<Option<Event>> {
        Ok(self.next_raw(r)?.map(|e| e.to_owned()))
    }

    /// Like [`Parser::next_event`], borrowing the event from the parser.
    pub fn next_raw(&mut self, r: &mut impl BufRead) -> io::Result<Option<RawEvent<'_>>> {
        if std::mem::take(&mut self.dispatched) {
            self.event.clear();
            self.data.clear();
            self.data_start = 0;
            self.has_data = false;
        }
        loop {
            if !self.read_line(r)? {
                return Ok(None);
            }
            if self.line.is_empty() {
                if self.has_data {
                    self.dispatched = true;
                    return Ok(Some(RawEvent {
                        id: self.last_id.as_deref(),
                        event: if self.event.is_empty() { "message" } else { &self.event },
                        data: &self.data[self.data_start..],
                    }));
                }
                self.event.clear();
                continue;
            }
            self.process_field();
            self.too_long(self.data.len())?;
        }
    }

    /// Reads one line into `self.line` (without its terminator). Returns
    /// false at end of stream with no terminated line pending.
    fn read_line(&mut self, r: &mut impl BufRead) -> io::Result<bool> {
        self.line.clear();
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            let mut start = 0;
            if self.skip_lf {
                self.skip_lf = false;
                if buf[0] == b'\n' {
                    start = 1;
                }
            }
            match memchr::memchr2(b'\n', b'\r', &buf[start..]) {
                Some(pos) => {
                    let end = start + pos;
                    self.line.extend_from_slice(&buf[start..end]);
                    self.skip_lf = buf[end] == b'\r';
                    r.consume(end + 1);
                    return Ok(true);
                }
                None => {
                    self.line.extend_from_slice(&buf[start..]);
                    let n = buf.len();
                    r.consume(n);
                    self.too_long(self.line.len())?;
                }
            }
        }
    }

    fn process_field(&mut self) {
        let line = &self.line;
        if line[0] == b':' {
            return;
        }
        let (field_end, value_start) = match memchr::memchr(b':', line) {
            Some(p) if line.get(p + 1) == Some(&b' ') => (p, p + 2),
            Some(p) => (p, p + 1),
            None => (line.len(), line.len()),
        };
        let value = &line[value_start..];
        match &line[..field_end] {
            b"data" if !self.has_data => {
                // Take the whole line as the data buffer, skipping its prefix.
                std::mem::swap(&mut self.data, &mut self.line);
                self.data_start = value_start;
                self.has_data = true;
            }
            b"data" => {
                self.data.push(b'\n');
                self.data.extend_from_slice(value);
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"id" if !value.contains(&0) => self.last_id = Some(String::from_utf8_lossy(value).into_owned()),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry_ms = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_byte_exact() {
        assert_eq!(retry(1500), b"retry: 1500\n\n");
        assert_eq!(named("end", r#"{"chunks":2}"#), b"event: end\ndata: {\"chunks\":2}\n\n");
        let mut out = Vec::new();
        chunk(&mut out, 7, 28, &[0xab; 32], Payload::Binary(b"hi!"));
        let want = format!(
            "id: 7\nevent: chunk\ndata: {{\"i\":7,\"off\":28,\"len\":3,\"sha256\":\"{}\",\"b64\":\"aGkh\"}}\n\n",
            "ab".repeat(32)
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn text_escaping_matches_serde_json() {
        let all: String = (0u32..0x80).filter_map(char::from_u32).chain("é中😀\u{2028}".chars()).collect();
        for text in [all.as_str(), "", "plain", "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}"] {
            let mut ours = Vec::new();
            text_fragment(&mut ours, text.as_bytes());
            let theirs = serde_json::to_string(text).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), theirs[1..theirs.len() - 1]);
        }
    }

    #[test]
    fn text_payload_is_a_json_string() {
        let mut out = Vec::new();
        chunk(&mut out, 0, 0, &[0; 32], Payload::Text("a\"b\n中😀"));
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with(",\"text\":\"a\\\"b\\n中😀\"}\n\n"), "{s}");
        assert_eq!(s.matches('\n').count(), 4);
    }

    #[test]
    fn parser_handles_every_line_ending_comments_and_multiline_data() {
        let wire = b": hello\r\nretry: 300\n\nid: 4\r\nevent: chunk\rdata: a\ndata: b\n\ndata: c\n\nid: 9\nevent: x\n";
        let mut r = io::BufReader::with_capacity(3, &wire[..]);
        let mut p = Parser::new();
        let e1 = p.next_event(&mut r).unwrap().unwrap();
        assert_eq!(e1, Event { id: Some("4".into()), event: "chunk".into(), data: "a\nb".into() });
        let e2 = p.next_event(&mut r).unwrap().unwrap();
        assert_eq!(e2, Event { id: Some("4".into()), event: "message".into(), data: "c".into() });
        assert_eq!(p.next_event(&mut r).unwrap(), None, "a partial event is dropped");
        assert_eq!(p.retry_ms, Some(300));
    }

    #[test]
    fn parser_reads_what_the_framing_writes() {
        let mut wire = retry(10);
        chunk(&mut wire, 3, 0, &[1; 32], Payload::Binary(&[0, 255, 7]));
        wire.extend(named("end", "{}"));
        let mut r = io::BufReader::new(&wire[..]);
        let mut p = Parser::new();
        let e = p.next_event(&mut r).unwrap().unwrap();
        assert_eq!((e.id.as_deref(), e.event.as_str()), (Some("3"), "chunk"));
        assert!(e.data.contains("\"b64\":\"AP8H\""));
        assert_eq!(p.next_event(&mut r).unwrap().unwrap().event, "end");
    }
}
