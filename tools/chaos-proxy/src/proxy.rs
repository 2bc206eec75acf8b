//! The proxy itself: accepts connections, asks the planner what each one
//! meets, pumps bytes both ways (the server -> client side through a
//! [`Scanner`], or through a [`Framer`] when the connection carries TLS),
//! and keeps the counters, the ledger and the manual controls.
//!
//! One thread accepts; each connection has one thread per direction. Plain
//! blocking sockets keep it simple and make a stall easy (stop reading).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::blind::{BlindPlan, Framer, BLIND_WHERE};
use crate::plan::{Decision, Faults, Kind, Plan, Planner, Step, WHERE};
use crate::scan::{find, Done, Manual, Scanner};

/// Counters, all cumulative since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub connections: u64,
    /// Connections reset on accept because the proxy was "down".
    pub refused: u64,
    /// Connections reset because the upstream server did not answer.
    pub upstream_down: u64,
    /// Planned cuts, and manual cuts before `end`.
    pub cuts: u64,
    pub stalls: u64,
    /// Stalls that ended because the client closed its side.
    pub stalls_detected: u64,
    /// Longest time from a stall's start to the client closing, in ms.
    pub stall_detect_max_ms: u64,
    /// Characters flipped (bits, on TLS connections).
    pub corruptions: u64,
    /// Corrupted chunk events that reached the client whole.
    pub corrupt_delivered: u64,
    /// Of those, forged ones (their own `sha256` rewritten to match).
    pub forged: u64,
    /// Bytes forwarded server -> client, everything on the wire.
    pub wire_bytes: u64,
    /// Chunk events that reached the client whole (corrupted or not).
    pub chunk_events: u64,
    /// Sum of the `len` of those events: payload bytes the client received.
    pub payload_bytes: u64,
    /// Planned cuts and stalls by where they hit: [`WHERE`].
    pub at: [u64; 6],
    /// TLS connections (forwarded blind): records forwarded whole.
    pub records: u64,
    /// Of those, records with a flipped bit, which the client must reject.
    pub records_corrupted: u64,
    /// Their planned cuts and stalls by where they hit: [`BLIND_WHERE`].
    pub blind_at: [u64; 4],
}

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
            forged: self.forged - o.forged,
            wire_bytes: self.wire_bytes - o.wire_bytes,
            chunk_events: self.chunk_events - o.chunk_events,
            payload_bytes: self.payload_bytes - o.payload_bytes,
            at: std::array::from_fn(|i| self.at[i] - o.at[i]),
            records: self.records - o.records,
            records_corrupted: self.records_corrupted - o.records_corrupted,
            blind_at: std::array::from_fn(|i| self.blind_at[i] - o.blind_at[i]),
        }
    }
}

/// What reached the client, chunk by chunk (ids from the events' `id:`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    /// Chunks that arrived whole and unmodified at least once.
    pub intact: BTreeSet<u64>,
    /// Their payload lengths.
    pub lens: BTreeMap<u64, u64>,
    /// Chunks that arrived whole but corrupted on an `/events` stream.
    pub corrupt_on_stream: BTreeSet<u64>,
    /// Corrupted arrivals of a chunk not (yet) delivered intact: each must
    /// fail the client's verification.
    pub must_fail: u64,
    /// Payload bytes of the corrupted chunks that arrived whole.
    pub corrupt_bytes: u64,
    /// Whole, intact arrivals of a chunk already in `intact`.
    pub intact_repeats: u64,
    /// Request targets, in the order they reached the proxy.
    pub requests: Vec<String>,
}

/// What the proxy reports as it goes, to [`Options::events`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// A connection is forwarded (`conn` counts accepted connections from 1).
    Open { conn: u64 },
    /// It ended.
    Close { conn: u64 },
    /// A request head, before it is forwarded. Header names are lower case;
    /// `at` is milliseconds since the Unix epoch.
    Request { conn: u64, line: String, headers: BTreeMap<String, String>, at: u64 },
    /// A forged chunk event reached the client whole.
    Forged { conn: u64, id: u64 },
    /// Range requests (`/events/chunk/`) whose response has not ended.
    Ranges {
        #[serde(rename = "inFlight")]
        in_flight: u64,
    },
    // The rest only with `Options::verbose`.
    /// What the planner decided for a connection.
    Plan { conn: u64, plan: String },
    /// A chunk event went out whole.
    Chunk { conn: u64, id: u64, corrupted: bool, range: bool },
    /// A cut or stall hit.
    Fault { conn: u64, kind: String, at: String, path: String },
}

pub type Sink = Box<dyn Fn(Event) + Send + Sync>;

/// How the proxy runs, beyond its faults.
#[derive(Default)]
pub struct Options {
    /// Where to listen; 127.0.0.1:0 when `None`.
    pub bind: Option<SocketAddr>,
    /// Feed the scanner in pieces of at most this many bytes (0: whole
    /// reads), to check that what it does does not depend on read sizes.
    pub feed_size: usize,
    /// Receives [`Event`]s (from the connections' threads).
    pub events: Option<Sink>,
    /// Also report plans, chunk events and faults.
    pub verbose: bool,
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
    forged: AtomicU64,
    wire_bytes: AtomicU64,
    chunk_events: AtomicU64,
    payload_bytes: AtomicU64,
    at: [AtomicU64; 6],
    records: AtomicU64,
    records_corrupted: AtomicU64,
    blind_at: [AtomicU64; 4],
}

#[derive(Debug, Clone, Copy)]
enum Refusing {
    No,
    Yes,
    Until(Instant),
}

/// One live connection's shared state.
#[derive(Default)]
struct Ctl {
    /// Request targets whose response has not started, in order.
    paths: Mutex<VecDeque<String>>,
    /// In the middle of a response.
    mid_response: AtomicBool,
    /// Drop the plan before the next bytes (see [`Proxy::settle`]).
    clear_plan: AtomicBool,
    /// Stop forwarding (see [`Proxy::stall_all`]).
    stall: AtomicBool,
    client_closed: AtomicBool,
    /// A range request on it awaits the end of its response.
    range_open: AtomicBool,
}

struct Live {
    id: u64,
    client: TcpStream,
    server: TcpStream,
    ctl: Arc<Ctl>,
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    planner: Mutex<Planner>,
    manual: Arc<Manual>,
    refusing: Mutex<Refusing>,
    counters: Counters,
    ledger: Mutex<Ledger>,
    accepted: Mutex<Vec<Instant>>,
    ranges: Mutex<u64>,
    stop: AtomicBool,
    live: Mutex<Vec<Live>>,
    feed_size: AtomicUsize,
    events: Option<Sink>,
    verbose: bool,
    /// Writes to clients whose bytes are not in the books yet (between
    /// `write_all` and the counters): the books wait for them (see
    /// [`Proxy::books`]), so a client that has its chunks finds them there.
    writing: AtomicUsize,
}

/// One write to a client and its booking, counted in [`Shared::writing`]
/// for as long as it lives.
struct Writing<'a>(&'a AtomicUsize);

impl<'a> Writing<'a> {
    fn start(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, SeqCst);
        Writing(n)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl Shared {
    fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(sink) = &self.events {
            sink(event());
        }
    }

    fn emit_verbose(&self, event: impl FnOnce() -> Event) {
        if self.verbose {
            self.emit(event);
        }
    }

    /// A range request opened (`+1`) or its response ended (`-1`).
    fn ranges(&self, delta: i64) {
        let mut n = self.ranges.lock().unwrap();
        *n = n.saturating_add_signed(delta);
        self.emit(|| Event::Ranges { in_flight: *n });
    }
}

/// A running proxy; dropping it cuts every connection and stops it.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// A proxy on 127.0.0.1, port 0, in front of `upstream`, drawing its
    /// faults from `seed`.
    pub fn start(upstream: SocketAddr, seed: u64, faults: Faults) -> Proxy {
        Proxy::start_with(upstream, seed, faults, Options::default()).expect("the proxy binds 127.0.0.1:0")
    }

    pub fn start_with(upstream: SocketAddr, seed: u64, faults: Faults, o: Options) -> std::io::Result<Proxy> {
        let bind = o.bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            planner: Mutex::new(Planner::new(seed, faults)),
            manual: Arc::default(),
            refusing: Mutex::new(Refusing::No),
            counters: Counters::default(),
            ledger: Mutex::new(Ledger::default()),
            accepted: Mutex::new(Vec::new()),
            ranges: Mutex::new(0),
            stop: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
            feed_size: AtomicUsize::new(o.feed_size),
            events: o.events,
            verbose: o.verbose,
            writing: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || accept_loop(listener, s));
        Ok(Proxy { addr, shared, accept: Some(accept) })
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
        self.shared.planner.lock().unwrap().script.extend(steps.iter().cloned());
    }

    /// Refuses (resets) every new connection while `on`, as a server that
    /// is down.
    pub fn refuse(&self, on: bool) {
        *self.shared.refusing.lock().unwrap() = if on { Refusing::Yes } else { Refusing::No };
    }

    /// Refuses every new connection for `down` from now.
    pub fn refuse_for(&self, down: Duration) {
        *self.shared.refusing.lock().unwrap() = Refusing::Until(Instant::now() + down);
    }

    /// Cuts every open connection (both sides), as a network drop. Returns
    /// how many there were.
    pub fn drop_all(&self) -> usize {
        let live = self.shared.live.lock().unwrap();
        for l in live.iter() {
            let _ = l.client.shutdown(Shutdown::Both);
            let _ = l.server.shutdown(Shutdown::Both);
        }
        live.len()
    }

    /// Stops forwarding the server's bytes on every open connection, without
    /// closing it, until the client gives up.
    pub fn stall_all(&self) {
        for l in self.shared.live.lock().unwrap().iter() {
            l.ctl.stall.store(true, SeqCst);
        }
    }

    /// Forges chunk `id` the next `times` it passes: one payload character
    /// flipped and the event's own `sha256` rewritten to match, so only a
    /// check against the manifest can catch it.
    pub fn forge(&self, id: u64, times: u32) {
        let mut forge = self.shared.manual.forge.lock().unwrap();
        if times == 0 {
            forge.remove(&id);
        } else {
            forge.insert(id, times);
        }
    }

    /// Feeds the scanner in pieces of at most `n` bytes (0: whole reads) on
    /// the reads from now on, as [`Options::feed_size`].
    pub fn set_feed_size(&self, n: usize) {
        self.shared.feed_size.store(n, SeqCst);
    }

    /// Cuts the next stream that reaches an `end` event just before it.
    pub fn cut_before_end(&self, on: bool) {
        self.shared.manual.cut_before_end.store(on, SeqCst);
    }

    /// Closes the books between two downloads: waits a moment for what the
    /// client already closed to arrive, then cuts every connection still in
    /// the middle of a response (a late chunk must not count for the next
    /// download) and clears the plan of the idle keep-alive ones (clients
    /// reuse them; cutting them would fail the next request on them).
    pub fn settle(&self) {
        std::thread::sleep(Duration::from_millis(50));
        for l in self.shared.live.lock().unwrap().iter() {
            let idle = !l.ctl.mid_response.load(SeqCst) && l.ctl.paths.lock().unwrap().is_empty();
            if idle {
                l.ctl.clear_plan.store(true, SeqCst);
            } else {
                let _ = l.client.shutdown(Shutdown::Both);
                let _ = l.server.shutdown(Shutdown::Both);
            }
        }
    }

    /// Waits (at most 200 ms: a write to a client that stopped reading may
    /// never end) until every write has booked what it wrote.
    fn books(&self) {
        let started = Instant::now();
        while self.shared.writing.load(SeqCst) > 0 && started.elapsed() < Duration::from_millis(200) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn stats(&self) -> Stats {
        self.books();
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
            forged: c.forged.load(SeqCst),
            wire_bytes: c.wire_bytes.load(SeqCst),
            chunk_events: c.chunk_events.load(SeqCst),
            payload_bytes: c.payload_bytes.load(SeqCst),
            at: std::array::from_fn(|i| c.at[i].load(SeqCst)),
            records: c.records.load(SeqCst),
            records_corrupted: c.records_corrupted.load(SeqCst),
            blind_at: std::array::from_fn(|i| c.blind_at[i].load(SeqCst)),
        }
    }

    /// When each connection arrived (refused ones included), from `t` on,
    /// as offsets from `t`.
    pub fn accepted_since(&self, t: Instant) -> Vec<Duration> {
        self.shared.accepted.lock().unwrap().iter().filter(|a| **a >= t).map(|a| *a - t).collect()
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
        self.books();
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
        for l in self.shared.live.lock().unwrap().drain(..) {
            let _ = l.client.shutdown(Shutdown::Both);
            let _ = l.server.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        shared.accepted.lock().unwrap().push(Instant::now());
        let id = shared.counters.connections.fetch_add(1, SeqCst) + 1;
        let refusing = match *shared.refusing.lock().unwrap() {
            Refusing::No => false,
            Refusing::Yes => true,
            Refusing::Until(t) => Instant::now() < t,
        };
        let decision = if refusing { Decision::Refuse } else { shared.planner.lock().unwrap().decide() };
        let route = match decision {
            Decision::Refuse => {
                shared.emit_verbose(|| Event::Plan { conn: id, plan: "refused".into() });
                shared.counters.refused.fetch_add(1, SeqCst);
                std::thread::spawn(move || reset(client));
                continue;
            }
            Decision::Pass(plan) => Route::Scan(plan),
            Decision::Blind(plan) => Route::Blind(plan),
        };
        shared.emit_verbose(|| Event::Plan { conn: id, plan: format!("{route:?}") });
        let upstream = *shared.upstream.lock().unwrap();
        let server = match TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) {
            Ok(s) => s,
            Err(_) => {
                shared.counters.upstream_down.fetch_add(1, SeqCst);
                std::thread::spawn(move || reset(client));
                continue;
            }
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let ctl = Arc::new(Ctl::default());
        let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) else { continue };
        shared.live.lock().unwrap().push(Live { id, client: a, server: b, ctl: ctl.clone() });
        shared.emit(|| Event::Open { conn: id });
        let s = shared.clone();
        std::thread::spawn(move || {
            connection(id, client, server, route, &s, &ctl);
            if ctl.range_open.swap(false, SeqCst) {
                s.ranges(-1);
            }
            s.live.lock().unwrap().retain(|l| l.id != id);
            s.emit(|| Event::Close { conn: id });
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

/// How a connection's bytes are followed.
#[derive(Debug)]
enum Route {
    /// Plain HTTP/1.1: scanned, faults aimed at HTTP and SSE landmarks.
    Scan(Plan),
    /// TLS: forwarded blind, faults aimed at byte counts and records.
    Blind(BlindPlan),
}

fn connection(id: u64, client: TcpStream, server: TcpStream, route: Route, shared: &Arc<Shared>, ctl: &Arc<Ctl>) {
    let blind = matches!(route, Route::Blind(_));
    let upstream_pump = {
        let (Ok(from), Ok(to)) = (client.try_clone(), server.try_clone()) else { return };
        let (shared, ctl) = (shared.clone(), ctl.clone());
        std::thread::spawn(move || requests(id, from, to, blind, &shared, &ctl))
    };
    match route {
        Route::Scan(plan) => downstream(id, &client, &server, plan, shared, ctl),
        Route::Blind(plan) => downstream_blind(id, &client, &server, plan, shared, ctl),
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = upstream_pump.join();
}

/// Client -> server: forward, and note each request before the server can
/// answer it (unless `blind`: TLS hides them).
fn requests(id: u64, mut from: TcpStream, mut to: TcpStream, blind: bool, shared: &Shared, ctl: &Ctl) {
    let mut heads = RequestHeads::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let found = if blind { Vec::new() } else { heads.feed(&buf[..n]) };
                for head in found {
                    let target = head.line.split(' ').nth(1).unwrap_or("").to_owned();
                    if target.starts_with("/events/chunk/") {
                        // A new range on this connection ends the last one.
                        if !ctl.range_open.swap(true, SeqCst) {
                            shared.ranges(1);
                        }
                    }
                    ctl.paths.lock().unwrap().push_back(target.clone());
                    shared.ledger.lock().unwrap().requests.push(target);
                    shared.emit(|| Event::Request { conn: id, line: head.line, headers: head.headers, at: now_ms() });
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    ctl.client_closed.store(true, SeqCst);
    let _ = to.shutdown(Shutdown::Write);
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Server -> client: forward, scan, inject.
fn downstream(id: u64, mut client: &TcpStream, mut server: &TcpStream, plan: Plan, shared: &Shared, ctl: &Ctl) {
    let c = &shared.counters;
    let mut scan = Scanner::with_manual(plan, shared.manual.clone());
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes scanned but held back by the scanner, then the new ones.
    let mut work: Vec<u8> = Vec::new();
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => {
                // What was held is what the server sent: let it go.
                let _ = client.write_all(&work);
                return;
            }
            Ok(n) => n,
        };
        if ctl.clear_plan.swap(false, SeqCst) {
            scan.plan = Plan::default();
        }
        if ctl.stall.load(SeqCst) {
            return hold_until_closed(shared, ctl);
        }
        let held = work.len();
        work.extend_from_slice(&buf[..n]);
        let piece = match shared.feed_size.load(SeqCst) {
            0 => work.len(),
            n => n,
        };
        let mut done = Vec::new();
        let (mut from, mut release, mut stop) = (held, 0, None);
        while from < work.len() {
            let end = (from + piece).min(work.len());
            let fed = scan.feed(&mut work[..end], from, &ctl.paths, &mut done);
            release = fed.release;
            if fed.stop.is_some() {
                stop = fed.stop;
                break;
            }
            from = end;
        }
        ctl.mid_response.store(!scan.between_responses(), SeqCst);
        let upto = stop.map_or(release, |(at, _)| at);
        let writing = Writing::start(&shared.writing);
        if client.write_all(&work[..upto]).is_err() {
            return;
        }
        work.drain(..upto);
        c.wire_bytes.fetch_add(upto as u64, SeqCst);
        c.corruptions.fetch_add(std::mem::take(&mut scan.flipped), SeqCst);
        record(id, shared, &done);
        drop(writing);
        if std::mem::take(&mut scan.range_ended) && ctl.range_open.swap(false, SeqCst) {
            shared.ranges(-1);
        }
        let Some((_, kind)) = stop else { continue };
        if scan.manual_stop {
            c.cuts.fetch_add(1, SeqCst);
            shared.emit_verbose(|| Event::Fault {
                conn: id,
                kind: "cut".into(),
                at: "before `end`".into(),
                path: scan.path.clone(),
            });
            return;
        }
        let place = scan.plan.fault.map(|(_, p)| (&c.at[p.index()], WHERE[p.index()]));
        return hit(id, kind, place, &scan.path, shared, ctl);
    }
}

/// Server -> client on a TLS connection: forward as it comes, flip the
/// planned bit, stop at the planned spot.
fn downstream_blind(
    id: u64,
    mut client: &TcpStream,
    mut server: &TcpStream,
    plan: BlindPlan,
    shared: &Shared,
    ctl: &Ctl,
) {
    let c = &shared.counters;
    let mut framer = Framer::new(plan);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if ctl.stall.load(SeqCst) {
            return hold_until_closed(shared, ctl);
        }
        let stop = framer.feed(&mut buf[..n]);
        let upto = stop.map_or(n, |(at, _)| at);
        let writing = Writing::start(&shared.writing);
        if client.write_all(&buf[..upto]).is_err() {
            return;
        }
        c.wire_bytes.fetch_add(upto as u64, SeqCst);
        c.corruptions.fetch_add(std::mem::take(&mut framer.flipped), SeqCst);
        c.records.fetch_add(std::mem::take(&mut framer.records), SeqCst);
        c.records_corrupted.fetch_add(std::mem::take(&mut framer.corrupted), SeqCst);
        drop(writing);
        let Some((_, kind)) = stop else { continue };
        let place = framer.plan.fault.map(|(_, s)| (&c.blind_at[s.index()], BLIND_WHERE[s.index()]));
        return hit(id, kind, place, "", shared, ctl);
    }
}

/// A stall of every open connection ([`Proxy::stall_all`]): forward nothing
/// more until the client gives up (or the proxy stops).
fn hold_until_closed(shared: &Shared, ctl: &Ctl) {
    while !ctl.client_closed.load(SeqCst) && !shared.stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A planned fault hit, at `place` (its counter and its name), on a
/// response to `path`: count a cut (the caller then closes the connection),
/// or hold a stall until the client notices (or `stall_max`).
fn hit(id: u64, kind: Kind, place: Option<(&AtomicU64, &str)>, path: &str, shared: &Shared, ctl: &Ctl) {
    let c = &shared.counters;
    if let Some((counter, at)) = place {
        counter.fetch_add(1, SeqCst);
        shared.emit_verbose(|| Event::Fault {
            conn: id,
            kind: format!("{kind:?}").to_lowercase(),
            at: at.into(),
            path: path.to_owned(),
        });
    }
    match kind {
        Kind::Cut => {
            c.cuts.fetch_add(1, SeqCst);
        }
        Kind::Stall => {
            c.stalls.fetch_add(1, SeqCst);
            let started = Instant::now();
            let max = shared.planner.lock().unwrap().faults.stall_max;
            while started.elapsed() < max && !ctl.client_closed.load(SeqCst) && !shared.stop.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            if ctl.client_closed.load(SeqCst) {
                c.stalls_detected.fetch_add(1, SeqCst);
                c.stall_detect_max_ms.fetch_max(started.elapsed().as_millis() as u64, SeqCst);
            }
        }
    }
}

/// Counts the chunk events that went out whole, and books them.
fn record(id: u64, shared: &Shared, done: &[Done]) {
    if done.is_empty() {
        return;
    }
    let c = &shared.counters;
    let mut ledger = shared.ledger.lock().unwrap();
    for ev in done {
        c.chunk_events.fetch_add(1, SeqCst);
        c.payload_bytes.fetch_add(ev.len, SeqCst);
        if ev.corrupted {
            c.corrupt_delivered.fetch_add(1, SeqCst);
            ledger.corrupt_bytes += ev.len;
            if !ledger.intact.contains(&ev.id) {
                ledger.must_fail += 1;
            }
            if !ev.range {
                ledger.corrupt_on_stream.insert(ev.id);
            }
        } else if ledger.intact.insert(ev.id) {
            ledger.lens.insert(ev.id, ev.len);
        } else {
            ledger.intact_repeats += 1;
        }
        if ev.forged {
            c.forged.fetch_add(1, SeqCst);
            shared.emit(|| Event::Forged { conn: id, id: ev.id });
        }
        shared.emit_verbose(|| Event::Chunk { conn: id, id: ev.id, corrupted: ev.corrupted, range: ev.range });
    }
}

/// One request head: its request line and its headers.
struct Head {
    line: String,
    headers: BTreeMap<String, String>,
}

/// Request heads out of the client's bytes (GET requests without bodies,
/// as the clients under test send them).
#[derive(Default)]
struct RequestHeads {
    pending: Vec<u8>,
}

impl RequestHeads {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Head> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = find(&self.pending, b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            self.pending.drain(..end + 4);
            let mut lines = text.split("\r\n");
            let line = lines.next().unwrap_or("").to_owned();
            let headers = lines
                .filter_map(|h| h.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            out.push(Head { line, headers });
        }
        out
    }
}
