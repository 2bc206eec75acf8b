//! A seeded, fault-injecting TCP proxy that sits between `chunkcast get` and
//! a real server and can cut, stall, corrupt or refuse connections.
//!
//! Every decision comes from one `fastrand::Rng` seeded per run and drawn in
//! the order connections are accepted, so a sequential client meets the same
//! faults at the same bytes when the seed is replayed. (Refill workers run in
//! parallel, and the client's backoff jitter is its own: the faults of a run
//! with `--parallel 1` replay exactly, the others replay per connection.)
//!
//! The proxy understands just enough HTTP/1.1 (status line, `Content-Length`,
//! chunked framing) and SSE (`id:`, `event: chunk`, the `"b64"`/`"text"`
//! string in `data:`) to aim its faults at the interesting places: the middle
//! of an event, the middle of a chunk's payload, the gap between two events.
//! A corruption replaces one payload character with another character of the
//! same alphabet (base64, or ASCII alphanumerics inside a JSON string and
//! outside any escape), so the event still parses and only the manifest's
//! digest can catch it. It never touches HTTP framing bytes, which would be a
//! different failure (a broken connection, not bad data).
//!
//! Besides counters it keeps a [`Ledger`] of which chunks went out whole and
//! intact, which whole but corrupted, and how many payload bytes that was, so
//! a test can predict what the client must have verified and written.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often faults happen. Probabilities are per accepted connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Cut the connection at a random point.
    pub cut: f64,
    /// Stop forwarding at a random point until the client gives up.
    pub stall: f64,
    /// Flip one character of a chunk's payload.
    pub corrupt: f64,
    /// Start refusing: this and the next few connections are reset.
    pub down: f64,
    /// A down period refuses 1..=max_down connections.
    pub max_down: u32,
    /// Chunk events a stream of the file carries (where cuts are aimed).
    pub chunks: u64,
    /// Payload characters of one whole chunk event (where in-payload faults
    /// are aimed).
    pub payload_chars: usize,
    /// A stall that the client has not noticed after this long ends the
    /// connection anyway, and counts as not detected.
    pub stall_max: Duration,
}

/// Counters, all cumulative since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: u64,
    /// Connections reset on accept because the proxy was "down".
    pub refused: u64,
    /// Connections reset because the upstream server did not answer.
    pub upstream_down: u64,
    pub cuts: u64,
    pub stalls: u64,
    /// Stalls that ended because the client closed its side.
    pub stalls_detected: u64,
    /// Longest time from a stall's start to the client closing, in ms.
    pub stall_detect_max_ms: u64,
    /// Characters flipped.
    pub corruptions: u64,
    /// Corrupted chunk events that reached the client whole.
    pub corrupt_delivered: u64,
    /// Bytes forwarded server -> client, everything on the wire.
    pub wire_bytes: u64,
    /// Chunk events that reached the client whole (corrupted or not).
    pub chunk_events: u64,
    /// Sum of the `len` of those events: payload bytes the client received.
    pub payload_bytes: u64,
    /// Cuts and stalls by where they hit: [`WHERE`].
    pub at: [u64; 6],
}

/// Where a cut or stall hit, in the order of [`Stats::at`].
pub const WHERE: [&str; 6] =
    ["anywhere on the wire", "after `event:`", "in `data: {`", "mid-payload", "after `data:`", "between events"];

impl std::ops::Sub for Stats {
    type Output = Stats;
    fn sub(self, o: Stats) -> Stats {
        Stats {
            connections: self.connections - o.connections,
            refused: self.refused - o.refused,
            upstream_down: self.upstream_down - o.upstream_down,
            cuts: self.cuts - o.cuts,
            stalls: self.stalls - o.stalls,
            stalls_detected: self.stalls_detected - o.stalls_detected,
            stall_detect_max_ms: self.stall_detect_max_ms,
            corruptions: self.corruptions - o.corruptions,
            corrupt_delivered: self.corrupt_delivered - o.corrupt_delivered,
            wire_bytes: self.wire_bytes - o.wire_bytes,
            chunk_events: self.chunk_events - o.chunk_events,
            payload_bytes: self.payload_bytes - o.payload_bytes,
            at: std::array::from_fn(|i| self.at[i] - o.at[i]),
        }
    }
}

/// What reached the client, chunk by chunk (ids from the events' `id:`).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Chunks that arrived whole and unmodified at least once.
    pub intact: BTreeSet<u64>,
    /// Their payload lengths.
    pub lens: BTreeMap<u64, u64>,
    /// Chunks that arrived whole but corrupted on an `/events` stream.
    pub corrupt_on_stream: BTreeSet<u64>,
    /// Payload bytes of the corrupted chunks that arrived whole.
    pub corrupt_bytes: u64,
    /// Whole, intact arrivals of a chunk already in `intact`.
    pub intact_repeats: u64,
    /// Request targets, in the order they reached the proxy.
    pub requests: Vec<String>,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    upstream_down: AtomicU64,
    cuts: AtomicU64,
    stalls: AtomicU64,
    stalls_detected: AtomicU64,
    stall_detect_max_ms: AtomicU64,
    corruptions: AtomicU64,
    corrupt_delivered: AtomicU64,
    wire_bytes: AtomicU64,
    chunk_events: AtomicU64,
    payload_bytes: AtomicU64,
    at: [AtomicU64; 6],
}

struct Planner {
    rng: fastrand::Rng,
    faults: Faults,
    /// Connections still to refuse in the current down period.
    down_left: u32,
    /// Fixed steps for the next connections, before any random ones.
    script: VecDeque<Step>,
}

/// A scripted connection, for tests that need one exact sequence of faults.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Refuse,
    /// Corrupt the payload of this chunk event and/or cut the connection
    /// right after that one (counting chunk events on the connection from 0).
    Pass {
        corrupt: Option<u64>,
        cut_after: Option<u64>,
    },
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    planner: Mutex<Planner>,
    counters: Counters,
    ledger: Mutex<Ledger>,
    stop: AtomicBool,
    /// Both sockets of every live connection, to cut them all on drop.
    live: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, seed: u64, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            planner: Mutex::new(Planner {
                rng: fastrand::Rng::with_seed(seed),
                faults,
                down_left: 0,
                script: VecDeque::new(),
            }),
            counters: Counters::default(),
            ledger: Mutex::new(Ledger::default()),
            stop: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || accept_loop(listener, s));
        Proxy { addr, shared, accept: Some(accept) }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Points new connections at another server (e.g. a restarted one).
    pub fn set_upstream(&self, addr: SocketAddr) {
        *self.shared.upstream.lock().unwrap() = addr;
    }

    /// Changes the fault rates for connections accepted from now on.
    pub fn set_faults(&self, faults: Faults) {
        let mut p = self.shared.planner.lock().unwrap();
        p.faults = faults;
        p.down_left = 0;
    }

    /// The next connections get these steps, in order, before random ones.
    pub fn script(&self, steps: &[Step]) {
        self.shared.planner.lock().unwrap().script.extend(steps);
    }

    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            connections: c.connections.load(SeqCst),
            refused: c.refused.load(SeqCst),
            upstream_down: c.upstream_down.load(SeqCst),
            cuts: c.cuts.load(SeqCst),
            stalls: c.stalls.load(SeqCst),
            stalls_detected: c.stalls_detected.load(SeqCst),
            stall_detect_max_ms: c.stall_detect_max_ms.load(SeqCst),
            corruptions: c.corruptions.load(SeqCst),
            corrupt_delivered: c.corrupt_delivered.load(SeqCst),
            wire_bytes: c.wire_bytes.load(SeqCst),
            chunk_events: c.chunk_events.load(SeqCst),
            payload_bytes: c.payload_bytes.load(SeqCst),
            at: std::array::from_fn(|i| c.at[i].load(SeqCst)),
        }
    }

    /// Waits until every connection has ended, so that the counters include
    /// everything a client that has exited received. Returns whether it did.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let started = Instant::now();
        while !self.shared.live.lock().unwrap().is_empty() {
            if started.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// The ledger so far, leaving an empty one in its place.
    pub fn take_ledger(&self) -> Ledger {
        std::mem::take(&mut *self.shared.ledger.lock().unwrap())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for (_, a, b) in self.shared.live.lock().unwrap().drain(..) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

/// Where on a connection's server -> client bytes a cut or stall happens.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Point {
    /// After this many bytes on the wire (possibly inside headers).
    Bytes(u64),
    /// Right after the `event: chunk` line of the k-th chunk event.
    AfterEventLine(u64),
    /// After this many bytes of the k-th chunk event's `data:` line.
    InDataPrefix(u64, usize),
    /// After this many characters of the k-th chunk event's payload (or
    /// just before its closing quote if it is shorter).
    InPayload(u64, usize),
    /// After the `data:` line, before the blank line that dispatches it.
    AfterDataLine(u64),
    /// After the blank line that ends the k-th chunk event.
    Between(u64),
}

impl Point {
    fn index(self) -> usize {
        match self {
            Point::Bytes(_) => 0,
            Point::AfterEventLine(_) => 1,
            Point::InDataPrefix(..) => 2,
            Point::InPayload(..) => 3,
            Point::AfterDataLine(_) => 4,
            Point::Between(_) => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Cut,
    Stall,
}

#[derive(Debug, Clone, Copy)]
struct Corrupt {
    /// First eligible character at or after `at` in a chunk payload of event
    /// `k` or later (later when event `k` has none that far in).
    k: u64,
    at: usize,
    /// Added to the character's index in its alphabet (never 0 mod its size).
    delta: usize,
}

#[derive(Debug, Clone, Default)]
struct Plan {
    fault: Option<(Kind, Point)>,
    /// Up to three, in stream order, at most one per chunk event.
    corrupt: VecDeque<Corrupt>,
}

enum Decision {
    Refuse,
    Pass(Plan),
}

impl Planner {
    fn decide(&mut self) -> Decision {
        match self.script.pop_front() {
            Some(Step::Refuse) => return Decision::Refuse,
            Some(Step::Pass { corrupt, cut_after }) => {
                return Decision::Pass(Plan {
                    fault: cut_after.map(|k| (Kind::Cut, Point::Between(k))),
                    corrupt: corrupt.map(|k| Corrupt { k, at: 0, delta: 1 }).into_iter().collect(),
                })
            }
            None => {}
        }
        let f = self.faults;
        let rng = &mut self.rng;
        if self.down_left == 0 && f.down > 0.0 && rng.f64() < f.down {
            self.down_left = rng.u32(1..=f.max_down.max(1));
        }
        if self.down_left > 0 {
            self.down_left -= 1;
            return Decision::Refuse;
        }
        let mut plan = Plan::default();
        let chunks = f.chunks.max(1);
        let chars = f.payload_chars.max(1);
        let roll = rng.f64();
        let kind = if roll < f.cut {
            Some(Kind::Cut)
        } else if roll < f.cut + f.stall {
            Some(Kind::Stall)
        } else {
            None
        };
        if let Some(kind) = kind {
            let k = rng.u64(0..chunks);
            let point = match rng.u32(0..6) {
                // Anywhere on the wire, up to about one stream's worth.
                0 => Point::Bytes(rng.u64(0..(chunks * (chars as u64 + 200) + 600))),
                1 => Point::AfterEventLine(k),
                2 => Point::InDataPrefix(k, rng.usize(1..8)),
                3 => Point::InPayload(k, rng.usize(0..chars)),
                4 => Point::AfterDataLine(k),
                _ => Point::Between(k),
            };
            plan.fault = Some((kind, point));
        }
        if f.corrupt > 0.0 && rng.f64() < f.corrupt {
            let mut ks: Vec<u64> = (0..rng.usize(1..=3)).map(|_| rng.u64(0..chunks)).collect();
            ks.sort_unstable();
            for k in ks {
                plan.corrupt.push_back(Corrupt { k, at: rng.usize(0..chars), delta: rng.usize(1..1000) });
            }
        }
        Decision::Pass(plan)
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    for client in listener.incoming() {
        if shared.stop.load(SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        shared.counters.connections.fetch_add(1, SeqCst);
        let decision = shared.planner.lock().unwrap().decide();
        let plan = match decision {
            Decision::Refuse => {
                shared.counters.refused.fetch_add(1, SeqCst);
                reset(client);
                continue;
            }
            Decision::Pass(plan) => plan,
        };
        let upstream = *shared.upstream.lock().unwrap();
        let server = match TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) {
            Ok(s) => s,
            Err(_) => {
                shared.counters.upstream_down.fetch_add(1, SeqCst);
                reset(client);
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
            shared.live.lock().unwrap().push((id, a, b));
        }
        let s = shared.clone();
        std::thread::spawn(move || {
            connection(client, server, plan, s.clone());
            s.live.lock().unwrap().retain(|(i, _, _)| *i != id);
        });
    }
}

/// Closes a fresh connection with a reset, as a server that is down would:
/// closing a socket with unread data makes the kernel send RST, so wait
/// (briefly) for the request to arrive and do not read it.
fn reset(client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = client.peek(&mut [0u8; 1]);
    drop(client);
}

fn connection(client: TcpStream, server: TcpStream, plan: Plan, shared: Arc<Shared>) {
    let paths: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let client_closed = Arc::new(AtomicBool::new(false));
    let upstream_pump = {
        let (mut from, mut to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let (paths, closed, shared) = (paths.clone(), client_closed.clone(), shared.clone());
        std::thread::spawn(move || {
            let mut requests = RequestLines::default();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        // Record the request paths before the server can answer.
                        let mut paths = paths.lock().unwrap();
                        let known = paths.len();
                        requests.feed(&buf[..n], &mut paths);
                        shared.ledger.lock().unwrap().requests.extend(paths.iter().skip(known).cloned());
                        drop(paths);
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            closed.store(true, SeqCst);
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    downstream(&client, &server, plan, &shared, &paths, &client_closed);
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = upstream_pump.join();
}

/// Server -> client: forward, scan, inject.
fn downstream(
    mut client: &TcpStream,
    mut server: &TcpStream,
    plan: Plan,
    shared: &Shared,
    paths: &Mutex<VecDeque<String>>,
    client_closed: &AtomicBool,
) {
    let c = &shared.counters;
    let mut scan = Scanner::new(plan);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut done = Vec::new();
        let stop = scan.feed(&mut buf[..n], paths, &mut done);
        let upto = stop.map_or(n, |(at, _)| at);
        if client.write_all(&buf[..upto]).is_err() {
            return;
        }
        c.wire_bytes.fetch_add(upto as u64, SeqCst);
        c.corruptions.fetch_add(std::mem::take(&mut scan.flipped), SeqCst);
        {
            let mut ledger = shared.ledger.lock().unwrap();
            for ev in &done {
                c.chunk_events.fetch_add(1, SeqCst);
                c.payload_bytes.fetch_add(ev.len, SeqCst);
                if ev.corrupted {
                    c.corrupt_delivered.fetch_add(1, SeqCst);
                    ledger.corrupt_bytes += ev.len;
                    if !ev.range {
                        ledger.corrupt_on_stream.insert(ev.id);
                    }
                } else if ledger.intact.insert(ev.id) {
                    ledger.lens.insert(ev.id, ev.len);
                } else {
                    ledger.intact_repeats += 1;
                }
            }
        }
        let Some((_, kind)) = stop else { continue };
        if let Some((_, point)) = scan.plan.fault {
            c.at[point.index()].fetch_add(1, SeqCst);
        }
        match kind {
            Kind::Cut => {
                c.cuts.fetch_add(1, SeqCst);
            }
            Kind::Stall => {
                c.stalls.fetch_add(1, SeqCst);
                let started = Instant::now();
                let max = shared.planner.lock().unwrap().faults.stall_max;
                while started.elapsed() < max && !client_closed.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if client_closed.load(SeqCst) {
                    c.stalls_detected.fetch_add(1, SeqCst);
                    c.stall_detect_max_ms.fetch_max(started.elapsed().as_millis() as u64, SeqCst);
                }
            }
        }
        return;
    }
}

/// Pulls the path out of each request line the client sends (GET requests
/// without bodies, as `chunkcast get` sends them).
#[derive(Default)]
struct RequestLines {
    pending: Vec<u8>,
}

impl RequestLines {
    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<String>) {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = find(&self.pending, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            out.push_back(path);
            self.pending.drain(..end + 4);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A chunk event that went out whole.
struct Done {
    id: u64,
    len: u64,
    corrupted: bool,
    /// It came from the range endpoint, not from `/events`.
    range: bool,
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

/// Follows the server -> client bytes of one connection: HTTP framing, then
/// SSE lines inside `text/event-stream` bodies.
struct Scanner {
    plan: Plan,
    wire: u64,
    http: Http,
    line: Vec<u8>,
    sse: bool,
    range_request: bool,
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
    flipped: u64,
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Scanner {
    fn new(plan: Plan) -> Scanner {
        Scanner {
            plan,
            wire: 0,
            http: Http::Head,
            line: Vec::new(),
            sse: false,
            range_request: false,
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
        }
    }

    /// The index of the current chunk event, if the current event is one.
    fn current(&self) -> Option<u64> {
        self.ev_chunk.then(|| self.chunk_events - 1)
    }

    /// Scans `buf`, possibly flipping a payload byte in place. Returns where
    /// to stop forwarding (bytes `[0, at)` go out) and which fault follows.
    fn feed(&mut self, buf: &mut [u8], paths: &Mutex<VecDeque<String>>, done: &mut Vec<Done>) -> Option<(usize, Kind)> {
        let fault = self.plan.fault;
        for i in 0..buf.len() {
            if let Some((kind, Point::Bytes(n))) = fault {
                if self.wire == n {
                    return Some((i, kind));
                }
            }
            // The byte about to be forwarded: stop before it for points that
            // lie inside a payload.
            if let (Some((kind, Point::InPayload(k, at))), Some(_)) = (fault, self.payload) {
                if self.current() == Some(k) && (self.payload_pos == at || buf[i] == b'"' && self.at_string_end()) {
                    return Some((i, kind));
                }
            }
            self.wire += 1;
            let stop_after = self.byte(buf, i, paths, done);
            if let Some(true) = stop_after {
                return Some((i + 1, fault.unwrap().0));
            }
        }
        None
    }

    fn at_string_end(&self) -> bool {
        !matches!(self.payload, Some(Payload::Text { esc }) if esc > 0)
    }

    /// One byte of HTTP. Returns `Some(true)` when a planned point is right
    /// after this byte.
    fn byte(
        &mut self,
        buf: &mut [u8],
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
                self.body_byte(buf, i, done)
            }
            Http::ToClose => self.body_byte(buf, i, done),
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
                self.body_byte(buf, i, done)
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
        let path = paths.lock().unwrap().pop_front().unwrap_or_default();
        self.range_request = path.starts_with("/events/chunk/");
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
    }

    /// One byte of a response body. Returns `Some(true)` when a planned
    /// point is right after this byte.
    fn body_byte(&mut self, buf: &mut [u8], i: usize, done: &mut Vec<Done>) -> Option<bool> {
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
                        done.push(Done {
                            id,
                            len: self.ev_len,
                            corrupted: self.ev_corrupted,
                            range: self.range_request,
                        });
                    }
                }
                self.reset_event();
                ended.is_some() && fault == Some(Point::Between(ended.unwrap()))
            } else {
                self.end_line()
            };
            self.sse_line.clear();
            self.sse_line_len = 0;
            return Some(hit);
        }
        self.sse_line_len += 1;
        if let Some(mode) = self.payload {
            self.payload_byte(buf, i, mode);
        } else if self.sse_line.len() < 1024 {
            self.sse_line.push(b);
            if self.ev_chunk && self.sse_line.starts_with(b"data:") && !self.payload_done {
                if self.sse_line.ends_with(b"\"b64\":\"") {
                    self.payload = Some(Payload::Base64);
                } else if self.sse_line.ends_with(b"\"text\":\"") {
                    self.payload = Some(Payload::Text { esc: 0 });
                }
            }
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
                eligible = B64.contains(&b);
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
            if let Some(&c) = self.plan.corrupt.front() {
                let k = self.current().unwrap_or(0);
                if k > c.k || (k == c.k && self.payload_pos >= c.at) {
                    let alphabet = if mode == Payload::Base64 { B64 } else { ALNUM };
                    let idx = alphabet.iter().position(|&a| a == b).unwrap();
                    let step = 1 + c.delta % (alphabet.len() - 1);
                    buf[i] = alphabet[(idx + step) % alphabet.len()];
                    self.ev_corrupted = true;
                    self.flipped += 1;
                    self.plan.corrupt.pop_front();
                }
            }
        }
        self.payload_pos += 1;
    }

    /// A non-blank SSE line ended. Returns whether a planned point follows.
    fn end_line(&mut self) -> bool {
        let line = std::mem::take(&mut self.sse_line);
        self.payload = None;
        let fault = self.plan.fault.map(|(_, p)| p);
        if self.ev_chunk {
            self.lines_after_event += 1;
        }
        if let Some(v) = line.strip_prefix(b"id:") {
            self.ev_id = std::str::from_utf8(v).ok().and_then(|s| s.trim().parse().ok());
        } else if line == b"event: chunk" || line == b"event:chunk" {
            self.ev_chunk = true;
            self.chunk_events += 1;
            self.lines_after_event = 0;
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
                return self.current().is_some_and(|k| fault == Some(Point::AfterDataLine(k)));
            }
        }
        false
    }
}

/// The scanner aims where it says it aims, on real server output.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{fixture_root, sha256_hex, TestServer};

    /// The raw HTTP response to `GET target`.
    fn wire(server: &TestServer, target: &str) -> Vec<u8> {
        let mut s = TcpStream::connect(server.addr).unwrap();
        write!(s, "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    }

    /// Feeds `wire` in pieces of `piece` bytes, as reads would deliver it.
    /// Returns what would be forwarded, the fault hit, and the whole events.
    fn scan(wire: &[u8], plan: Plan, path: &str, piece: usize) -> (Vec<u8>, Option<Kind>, Vec<Done>) {
        let paths = Mutex::new(VecDeque::from([path.to_owned()]));
        let mut scanner = Scanner::new(plan);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        for part in wire.chunks(piece) {
            let mut buf = part.to_vec();
            if let Some((at, kind)) = scanner.feed(&mut buf, &paths, &mut done) {
                out.extend_from_slice(&buf[..at]);
                return (out, Some(kind), done);
            }
            out.extend_from_slice(&buf);
        }
        (out, None, done)
    }

    /// The body of a (possibly truncated) chunked response.
    fn body(http: &[u8]) -> Vec<u8> {
        let mut rest = &http[find(http, b"\r\n\r\n").unwrap() + 4..];
        let mut out = Vec::new();
        while let Some(eol) = find(rest, b"\r\n") {
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            let data = &rest[eol + 2..];
            out.extend_from_slice(&data[..n.min(data.len())]);
            if n == 0 || data.len() < n + 2 {
                break;
            }
            rest = &data[n + 2..];
        }
        out
    }

    fn chunk_events(body: &[u8]) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(body)
            .split("\n\n")
            .filter(|e| e.contains("event: chunk\n"))
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")).and_then(|d| serde_json::from_str(d).ok()))
            .collect()
    }

    fn with(fault: Option<(Kind, Point)>) -> Plan {
        Plan { fault, corrupt: VecDeque::new() }
    }

    #[test]
    fn cuts_land_on_events_lines_and_payload_characters() {
        let root = fixture_root();
        let server = TestServer::start(root.path(), &[]);
        for (file, chars) in [("story.txt", 4096), ("all-bytes.bin", 5464), ("utf8-boundaries.txt", 4096)] {
            let path = format!("/events?file={file}&from=1");
            let full = wire(&server, &path);
            let total = chunk_events(&body(&full)).len() as u64;
            assert!(total >= 1);
            for piece in [1, 7, 4096, 1 << 20] {
                for k in 0..total {
                    let at = |p: Point| {
                        let (out, hit, done) = scan(&full, with(Some((Kind::Cut, p))), &path, piece);
                        assert_eq!(hit, Some(Kind::Cut), "{file} {p:?}");
                        (body(&out), done)
                    };
                    let ends = |b: &[u8], tail: &str| {
                        assert!(
                            b.ends_with(tail.as_bytes()),
                            "{file} k={k}: ends with {:?}",
                            String::from_utf8_lossy(&b[b.len().saturating_sub(40)..])
                        );
                    };
                    let (b, done) = at(Point::Between(k));
                    ends(&b, "}\n\n");
                    assert_eq!(done.len() as u64, k + 1);
                    assert_eq!(done.last().unwrap().id, k + 1, "ids from `id:` (the stream starts at 1)");
                    assert_eq!(chunk_events(&b).len() as u64, k + 1);
                    let (b, done) = at(Point::AfterEventLine(k));
                    ends(&b, &format!("id: {}\nevent: chunk\n", k + 1));
                    assert_eq!(done.len() as u64, k);
                    let (b, _) = at(Point::InDataPrefix(k, 3));
                    ends(&b, "event: chunk\ndat");
                    let (b, done) = at(Point::AfterDataLine(k));
                    ends(&b, "\"}\n");
                    assert!(!b.ends_with(b"\n\n"));
                    assert_eq!(done.len() as u64, k, "an undispatched event is not delivered");
                    // The payload of event k, whole and as cut.
                    let payload = |b: &[u8]| -> Vec<u8> {
                        let mut rest = b;
                        for _ in 0..=k {
                            rest = &rest[find(rest, b"event: chunk\n").unwrap() + 13..];
                        }
                        let start =
                            find(rest, b"\"b64\":\"").map(|i| i + 7).or(find(rest, b"\"text\":\"").map(|i| i + 8));
                        rest[start.unwrap()..].to_vec()
                    };
                    let whole = payload(&body(&full));
                    let whole_len = whole.iter().position(|&c| c == b'\n').unwrap() - 2;
                    for n in [0, 1, 1000, chars - 1, chars + 10] {
                        let (b, _) = at(Point::InPayload(k, n));
                        assert_eq!(payload(&b).len(), n.min(whole_len), "{file} k={k} n={n}: cut inside the string");
                    }
                }
            }
            let (out, hit, done) = scan(&full, with(Some((Kind::Stall, Point::Bytes(100)))), &path, 64);
            assert_eq!((out.len(), hit, done.len()), (100, Some(Kind::Stall), 0));
            let (out, hit, done) = scan(&full, with(None), &path, 999);
            assert_eq!((out, hit, done.len() as u64), (full.clone(), None, total));
        }
    }

    #[test]
    fn a_corruption_keeps_the_framing_and_the_json_and_breaks_only_the_digest() {
        let root = fixture_root();
        // Escapes next to the payload's edges: `\"`, `\\`, `\u0001`, `\n`.
        let text: String = (0..3000).map(|i| ["a\"", "\\b", "\u{1}c", "\nd", "é9", "😀Z"][i % 6]).collect();
        std::fs::write(root.path().join("escapes.txt"), &text).unwrap();
        let server = TestServer::start(root.path(), &[]);
        let mut rng = fastrand::Rng::with_seed(11);
        for file in ["all-bytes.bin", "one-byte.bin", "story.txt", "utf8-boundaries.txt", "escapes.txt"] {
            let path = format!("/events?file={file}");
            let full = wire(&server, &path);
            let clean = chunk_events(&body(&full));
            for _ in 0..40 {
                let k = rng.u64(0..clean.len() as u64);
                let plan = Plan {
                    fault: None,
                    corrupt: VecDeque::from([Corrupt { k, at: rng.usize(0..5000), delta: rng.usize(1..1000) }]),
                };
                let (out, _, done) = scan(&full, plan, &path, rng.usize(1..3000));
                assert_eq!(out.len(), full.len());
                let flipped: Vec<usize> = (0..out.len()).filter(|&i| out[i] != full[i]).collect();
                let events = chunk_events(&body(&out));
                assert_eq!(events.len(), clean.len(), "{file}: every event still parses");
                let hit: Vec<u64> = done.iter().filter(|d| d.corrupted).map(|d| d.id).collect();
                if flipped.is_empty() {
                    // Nothing eligible at or after the target (e.g. a
                    // payload of escapes only): nothing counted either.
                    assert!(hit.is_empty());
                    continue;
                }
                assert_eq!(flipped.len(), 1);
                assert_eq!(hit.len(), 1);
                for (e, c) in events.iter().zip(&clean) {
                    let bytes = |v: &serde_json::Value| match (v["b64"].as_str(), v["text"].as_str()) {
                        (Some(b), _) => {
                            use base64::Engine as _;
                            base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default()
                        }
                        (_, Some(t)) => t.as_bytes().to_vec(),
                        _ => panic!("no payload"),
                    };
                    let changed = sha256_hex(&bytes(e)) != c["sha256"].as_str().unwrap();
                    assert_eq!(changed, e["i"] == hit[0], "{file}: only chunk {} is damaged", hit[0]);
                    assert_eq!(e["i"], c["i"]);
                    assert_eq!(e["len"], c["len"]);
                }
            }
        }
    }
}
