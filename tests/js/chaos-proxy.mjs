// A seeded, fault-injecting TCP proxy between web/chunkcast.js (in Node) and
// a real server: the JavaScript twin of tests/chaos/proxy.rs. It can cut,
// stall, corrupt or refuse connections.
//
// Every decision comes from one mulberry32 stream seeded per run and drawn in
// the order connections are accepted, so a client that opens its connections
// in the same order meets the same faults at the same bytes when the seed is
// replayed. (The library's refills run in parallel and its backoff jitter is
// its own, so a replay is exact per connection, not always per run.)
//
// The proxy understands just enough HTTP/1.1 (status line, Content-Length,
// chunked framing, several responses on one keep-alive connection, which is
// how Node's fetch reuses sockets) and SSE (`id:`, `event: chunk`, the
// `"b64"`/`"text"` string in `data:`) to aim its faults at the interesting
// places: the middle of an event, the middle of a chunk's payload, the gap
// between two events. A corruption replaces one payload character with
// another of the same alphabet (base64, or ASCII alphanumerics inside a JSON
// string and outside any escape), so the event still parses and decodes and
// only the manifest's digest can catch it. A base64 character is always
// changed in its top bit, so even the last character before `=` padding (of
// which a decoder keeps only the top bits) changes the decoded bytes. HTTP
// framing is never touched: that would be a broken connection, not bad data.
//
// Besides counters it keeps a ledger of which chunks went out whole and
// intact, which whole but corrupted, and how many payload bytes that was, so
// a test can check the client's own figures against what really crossed.

import net from 'node:net';

/**
 * mulberry32: a tiny, fast, well-mixed 32-bit PRNG; good enough to place
 * faults, and the same sequence on every platform.
 * @param {number} seed
 */
export function mulberry32(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** A float in [0, 1). */
    f64: next,
    /** An integer in [lo, hi). */
    int: (/** @type {number} */ lo, /** @type {number} */ hi) => lo + Math.floor(next() * Math.max(1, hi - lo)),
    /** One element of `xs`. @template T @param {T[]} xs @returns {T} */
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    bool: () => next() < 0.5,
  };
}

/** Mixes a run's seed with a salt, so streams drawn for different purposes are not correlated. */
export function mix(/** @type {number} */ seed, /** @type {number} */ salt) {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt >>> 0, 0xc2b2ae35);
  h ^= h >>> 16; h = Math.imul(h, 0x7feb352d); h ^= h >>> 15;
  return h >>> 0;
}

/**
 * How often faults happen; probabilities are per accepted connection.
 * @typedef {Object} Faults
 * @property {number} cut      cut the connection at a random point
 * @property {number} stall    stop forwarding at a random point until the client gives up
 * @property {number} corrupt  flip a character in 1..3 chunk payloads
 * @property {number} down     start refusing: this and the next few connections are reset
 * @property {number} maxDown  a down period refuses 1..=maxDown connections
 * @property {number} chunks   chunk events a stream of the file carries (where faults are aimed)
 * @property {number} payloadChars  payload characters of one whole chunk event
 * @property {number} stallMax ms: a stall the client has not noticed by then ends anyway, undetected
 */

/** @returns {Faults} */
export const noFaults = (stallMax = 5000) => ({ cut: 0, stall: 0, corrupt: 0, down: 0, maxDown: 1, chunks: 0, payloadChars: 0, stallMax });

/** Where a cut or stall hit, in the order of `stats.at`. */
export const WHERE = ['anywhere on the wire', 'after `event:`', 'in `data: {`', 'mid-payload', 'after `data:`', 'between events'];
const BYTES = 0, AFTER_EVENT_LINE = 1, IN_DATA_PREFIX = 2, IN_PAYLOAD = 3, AFTER_DATA_LINE = 4, BETWEEN = 5;
/** Where a fault can be aimed (`Fault.w`), for tests of the scanner itself. */
export const POINT = { BYTES, AFTER_EVENT_LINE, IN_DATA_PREFIX, IN_PAYLOAD, AFTER_DATA_LINE, BETWEEN };

const CUT = 'cut', STALL = 'stall';

const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const ALNUM = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789');
const B64_INDEX = new Int16Array(256).fill(-1);
B64.forEach((c, i) => { B64_INDEX[c] = i; });
const ALNUM_INDEX = new Int16Array(256).fill(-1);
ALNUM.forEach((c, i) => { ALNUM_INDEX[c] = i; });

// HTTP states of the server -> client bytes.
const H_HEAD = 0, H_BODY = 1, H_CHUNK_SIZE = 2, H_CHUNK_DATA = 3, H_CHUNK_END = 4, H_TRAILER = 5, H_TO_CLOSE = 6;
// Payload states: none, base64, or a JSON string (with `esc` below).
const P_NONE = 0, P_B64 = 1, P_TEXT = 2;
// Inside a JSON string: right after a backslash, or hex digits of `\uXXXX` still to come.
const ESC = 9, HEX4 = 4;

/**
 * @typedef {{kind: string, w: number, k: number, n: number}} Fault  `w` is one of the WHERE indices
 * @typedef {{k: number, at: number, delta: number}} Corrupt
 *   the first eligible character at or after `at` in the payload of chunk event `k` or later
 * @typedef {{fault: Fault|null, corrupt: Corrupt[]}} Plan
 * @typedef {{id: number, len: number, corrupted: boolean, range: boolean}} Done  a chunk event that went out whole
 */

/** Draws what happens to each new connection. */
class Planner {
  /** @param {number} seed @param {Faults} faults */
  constructor(seed, faults) {
    this.rng = mulberry32(seed);
    this.faults = faults;
    this.downLeft = 0;
    /** @type {(Plan|null)[]} fixed plans for the next connections, before random ones */
    this.script = [];
  }

  /** @returns {Plan|null} null: refuse the connection */
  decide() {
    if (this.script.length) return /** @type {Plan|null} */ (this.script.shift());
    const f = this.faults;
    const rng = this.rng;
    if (this.downLeft === 0 && f.down > 0 && rng.f64() < f.down) this.downLeft = rng.int(1, Math.max(1, f.maxDown) + 1);
    if (this.downLeft > 0) {
      this.downLeft--;
      return null;
    }
    /** @type {Plan} */
    const plan = { fault: null, corrupt: [] };
    const chunks = Math.max(1, f.chunks);
    const chars = Math.max(1, f.payloadChars);
    const roll = rng.f64();
    const kind = roll < f.cut ? CUT : roll < f.cut + f.stall ? STALL : null;
    if (kind) {
      const k = rng.int(0, chunks);
      const w = rng.int(0, 6);
      // BYTES: anywhere on the wire, up to about one stream's worth.
      const n = w === BYTES ? rng.int(0, chunks * (chars + 200) + 600) : w === IN_DATA_PREFIX ? rng.int(1, 8) : w === IN_PAYLOAD ? rng.int(0, chars) : 0;
      plan.fault = { kind, w, k, n };
    }
    if (f.corrupt > 0 && rng.f64() < f.corrupt) {
      const ks = Array.from({ length: rng.int(1, 4) }, () => rng.int(0, chunks)).sort((a, b) => a - b);
      for (const k of ks) plan.corrupt.push({ k, at: rng.int(0, chars), delta: rng.int(1, 1000) });
    }
    return plan;
  }
}

/**
 * Follows the server -> client bytes of one connection: HTTP framing, then
 * SSE lines inside `text/event-stream` bodies. A port of proxy.rs's Scanner,
 * with a bulk path over payload characters so 64 MiB streams stay cheap.
 */
export class Scanner {
  /** @param {Plan} plan @param {string[]} paths  request paths, in order, shared with the request side */
  constructor(plan, paths) {
    this.plan = plan;
    this.paths = paths;
    this.wire = 0;
    /** the request whose response is passing */
    this.path = '';
    this.http = H_HEAD;
    this.httpN = 0;
    /** @type {number[]} */
    this.line = [];
    this.sse = false;
    this.rangeRequest = false;
    /** @type {number[]} */
    this.sseLine = [];
    this.sseLineLen = 0;
    this.chunkEvents = 0;
    this.flipped = 0;
    this.resetEvent();
  }

  resetEvent() {
    this.evChunk = false;
    /** @type {number|null} */
    this.evId = null;
    this.evLen = 0;
    this.evData = false;
    this.evCorrupted = false;
    this.linesAfterEvent = 0;
    this.payload = P_NONE;
    this.esc = 0;
    this.payloadPos = 0;
    this.payloadDone = false;
  }

  /** Between responses, with no request waiting for one. */
  idle() {
    return this.http === H_HEAD && this.line.length === 0 && this.paths.length === 0;
  }

  /** The index of the current chunk event on this connection, or -1. */
  current() {
    return this.evChunk ? this.chunkEvents - 1 : -1;
  }

  /**
   * Scans `buf`, possibly flipping a payload byte in place. Returns where to
   * stop forwarding (bytes [0, at) go out) and which fault follows, or null.
   * @param {Buffer} buf @param {Done[]} done
   * @returns {{at: number, kind: string}|null}
   */
  feed(buf, done) {
    const fault = this.plan.fault;
    let i = 0;
    while (i < buf.length) {
      if (fault && fault.w === BYTES && this.wire === fault.n) return { at: i, kind: fault.kind };
      // The byte about to be forwarded: stop before it for points inside a payload.
      if (fault && fault.w === IN_PAYLOAD && this.payload !== P_NONE && this.current() === fault.k &&
          (this.payloadPos === fault.n || (buf[i] === 0x22 && !(this.payload === P_TEXT && this.esc > 0)))) {
        return { at: i, kind: fault.kind };
      }
      const skip = this.skippable(buf, i);
      if (skip > 0) {
        this.wire += skip;
        this.payloadPos += skip;
        this.sseLineLen += skip;
        if (this.http === H_BODY || this.http === H_CHUNK_DATA) {
          this.httpN -= skip;
          if (this.httpN === 0) this.http = this.http === H_BODY ? H_HEAD : H_CHUNK_END;
          if (this.http === H_CHUNK_END) this.httpN = 2;
        }
        i += skip;
        continue;
      }
      this.wire++;
      if (this.byte(buf, i, done)) return { at: i + 1, kind: /** @type {Fault} */ (fault).kind };
      i++;
    }
    return null;
  }

  /**
   * How many bytes from `i` are plain payload characters that no fault,
   * corruption or framing rule cares about (0: go byte by byte).
   * @param {Buffer} buf @param {number} i
   */
  skippable(buf, i) {
    if (!this.sse || this.payload === P_NONE || (this.payload === P_TEXT && this.esc > 0)) return 0;
    if (this.http !== H_BODY && this.http !== H_CHUNK_DATA && this.http !== H_TO_CLOSE) return 0;
    let avail = buf.length - i;
    if (this.http !== H_TO_CLOSE) avail = Math.min(avail, this.httpN);
    const fault = this.plan.fault;
    if (fault && fault.w === BYTES && fault.n > this.wire) avail = Math.min(avail, fault.n - this.wire);
    if (fault && fault.w === IN_PAYLOAD && this.current() === fault.k && fault.n >= this.payloadPos) {
      avail = Math.min(avail, fault.n - this.payloadPos);
    }
    const c = this.plan.corrupt[0];
    if (c && !this.evCorrupted) {
      const k = Math.max(0, this.current());
      if (k > c.k) return 0;
      if (k === c.k) avail = Math.min(avail, Math.max(0, c.at - this.payloadPos));
    }
    if (avail <= 0) return 0;
    const view = buf.subarray(i, i + avail);
    let stop = view.indexOf(0x22);
    if (this.payload === P_TEXT) {
      const bs = view.indexOf(0x5c);
      if (bs >= 0 && (stop < 0 || bs < stop)) stop = bs;
    }
    const nl = view.indexOf(0x0a);
    if (nl >= 0 && (stop < 0 || nl < stop)) stop = nl;
    return stop >= 0 ? stop : avail;
  }

  /**
   * One byte of HTTP. Returns whether a planned point is right after it.
   * @param {Buffer} buf @param {number} i @param {Done[]} done
   */
  byte(buf, i, done) {
    const b = buf[i];
    switch (this.http) {
      case H_HEAD:
        this.line.push(b);
        if (b === 0x0a && this.line.length >= 4 && this.line[this.line.length - 2] === 0x0d &&
            this.line[this.line.length - 3] === 0x0a && this.line[this.line.length - 4] === 0x0d) {
          this.startResponse();
        }
        return false;
      case H_BODY:
        if (this.httpN <= 1) this.http = H_HEAD; else this.httpN--;
        return this.bodyByte(buf, i, done);
      case H_TO_CLOSE:
        return this.bodyByte(buf, i, done);
      case H_CHUNK_SIZE:
        this.line.push(b);
        if (b === 0x0a) {
          const hex = Buffer.from(this.line).toString('latin1').trim().split(';')[0].trim();
          const n = parseInt(hex, 16) || 0;
          this.line = [];
          if (n === 0) this.http = H_TRAILER; else { this.http = H_CHUNK_DATA; this.httpN = n; }
        }
        return false;
      case H_CHUNK_DATA:
        if (this.httpN <= 1) { this.http = H_CHUNK_END; this.httpN = 2; } else this.httpN--;
        return this.bodyByte(buf, i, done);
      case H_CHUNK_END:
        if (this.httpN <= 1) this.http = H_CHUNK_SIZE; else this.httpN--;
        return false;
      case H_TRAILER:
        this.line.push(b);
        if (b === 0x0a) {
          if (this.line.length === 2) this.http = H_HEAD;
          this.line = [];
        }
        return false;
    }
    return false;
  }

  startResponse() {
    const head = Buffer.from(this.line).toString('latin1').toLowerCase();
    this.line = [];
    const status = Number(head.split(' ')[1]) || 0;
    if (status >= 100 && status < 200) return;
    const path = this.paths.shift() ?? '';
    this.path = path;
    this.rangeRequest = path.startsWith('/events/chunk/');
    const header = (/** @type {string} */ name) => {
      for (const l of head.split('\r\n')) if (l.startsWith(`${name}:`)) return l.slice(name.length + 1).trim();
      return undefined;
    };
    this.sse = (header('content-type') ?? '').startsWith('text/event-stream');
    this.sseLine = [];
    this.sseLineLen = 0;
    this.resetEvent();
    const length = header('content-length');
    if (status === 204 || status === 304) this.http = H_HEAD;
    else if ((header('transfer-encoding') ?? '').includes('chunked')) this.http = H_CHUNK_SIZE;
    else if (length !== undefined && /^\d+$/.test(length)) {
      this.httpN = Number(length);
      this.http = this.httpN === 0 ? H_HEAD : H_BODY;
    } else this.http = H_TO_CLOSE;
  }

  /**
   * One byte of a response body. Returns whether a planned point is right after it.
   * @param {Buffer} buf @param {number} i @param {Done[]} done
   */
  bodyByte(buf, i, done) {
    if (!this.sse) return false;
    const fault = this.plan.fault;
    const b = buf[i];
    if (b === 0x0a) {
      let hit;
      if (this.sseLineLen === 0) {
        // A blank line: the event is dispatched.
        const ended = this.current();
        if (this.evChunk && this.evData && this.evId !== null) {
          done.push({ id: this.evId, len: this.evLen, corrupted: this.evCorrupted, range: this.rangeRequest });
        }
        this.resetEvent();
        hit = ended >= 0 && !!fault && fault.w === BETWEEN && fault.k === ended;
      } else {
        hit = this.endLine();
      }
      this.sseLine = [];
      this.sseLineLen = 0;
      return hit;
    }
    this.sseLineLen++;
    if (this.payload !== P_NONE) {
      this.payloadByte(buf, i);
    } else if (this.sseLine.length < 1024) {
      this.sseLine.push(b);
      if (this.evChunk && !this.payloadDone && startsWith(this.sseLine, 'data:')) {
        if (endsWith(this.sseLine, '"b64":"')) this.payload = P_B64;
        else if (endsWith(this.sseLine, '"text":"')) { this.payload = P_TEXT; this.esc = 0; }
      }
    }
    return !!fault && fault.w === IN_DATA_PREFIX && this.current() === fault.k && this.linesAfterEvent === 0 && this.sseLineLen === fault.n;
  }

  /** @param {Buffer} buf @param {number} i */
  payloadByte(buf, i) {
    const b = buf[i];
    let eligible = false;
    if (this.payload === P_B64) {
      if (b === 0x22) { this.payload = P_NONE; this.payloadDone = true; return; }
      eligible = B64_INDEX[b] >= 0;
    } else {
      const esc = this.esc;
      if (esc === ESC) this.esc = b === 0x75 /* u */ ? HEX4 : 0;
      else if (esc > 0) this.esc = esc - 1;
      else if (b === 0x5c) this.esc = ESC;
      else if (b === 0x22) { this.payload = P_NONE; this.payloadDone = true; return; }
      else eligible = ALNUM_INDEX[b] >= 0;
    }
    const c = this.plan.corrupt[0];
    if (eligible && !this.evCorrupted && c) {
      const k = Math.max(0, this.current());
      if (k > c.k || (k === c.k && this.payloadPos >= c.at)) {
        if (this.payload === P_B64) {
          // Always flip the top bit: a decoder keeps at least that bit of every character.
          buf[i] = B64[B64_INDEX[b] ^ 32 ^ (c.delta & 31)];
        } else {
          const step = 1 + (c.delta % (ALNUM.length - 1));
          buf[i] = ALNUM[(ALNUM_INDEX[b] + step) % ALNUM.length];
        }
        this.evCorrupted = true;
        this.flipped++;
        this.plan.corrupt.shift();
      }
    }
    this.payloadPos++;
  }

  /** A non-blank SSE line ended. Returns whether a planned point follows. */
  endLine() {
    const line = Buffer.from(this.sseLine).toString('latin1');
    this.payload = P_NONE;
    const fault = this.plan.fault;
    if (this.evChunk) this.linesAfterEvent++;
    if (line.startsWith('id:')) {
      const v = line.slice(3).trim();
      this.evId = /^\d+$/.test(v) ? Number(v) : null;
    } else if (line === 'event: chunk' || line === 'event:chunk') {
      this.evChunk = true;
      this.chunkEvents++;
      this.linesAfterEvent = 0;
      return !!fault && fault.w === AFTER_EVENT_LINE && fault.k === this.chunkEvents - 1;
    } else if (line.startsWith('data:')) {
      this.evData = true;
      if (this.evChunk) {
        const m = /"len":(\d+)/.exec(line);
        this.evLen = m ? Number(m[1]) : 0;
        return !!fault && fault.w === AFTER_DATA_LINE && this.current() === fault.k;
      }
    }
    return false;
  }
}

/** @param {number[]} a @param {string} s */
function startsWith(a, s) {
  if (a.length < s.length) return false;
  for (let k = 0; k < s.length; k++) if (a[k] !== s.charCodeAt(k)) return false;
  return true;
}

/** @param {number[]} a @param {string} s */
function endsWith(a, s) {
  if (a.length < s.length) return false;
  const o = a.length - s.length;
  for (let k = 0; k < s.length; k++) if (a[o + k] !== s.charCodeAt(k)) return false;
  return true;
}

function newStats() {
  return {
    connections: 0,
    /** connections reset on accept because the proxy was "down" */
    refused: 0,
    /** connections reset because the upstream server did not answer */
    upstreamDown: 0,
    cuts: 0,
    stalls: 0,
    /** stalls that ended because the client closed its side */
    stallsDetected: 0,
    /** longest time from a stall's start to the client closing, ms */
    stallDetectMaxMs: 0,
    /** characters flipped */
    corruptions: 0,
    /** corrupted chunk events that reached the client whole */
    corruptDelivered: 0,
    /** bytes forwarded server -> client */
    wireBytes: 0,
    /** chunk events that reached the client whole (corrupted or not) */
    chunkEvents: 0,
    /** sum of their `len`: payload bytes the client received */
    payloadBytes: 0,
    /** cuts and stalls by where they hit, in WHERE's order */
    at: [0, 0, 0, 0, 0, 0],
  };
}

function newLedger() {
  return {
    /** @type {Set<number>} chunks that arrived whole and unmodified at least once */
    intact: new Set(),
    /** @type {Map<number, number>} their payload lengths */
    lens: new Map(),
    /** @type {Set<number>} chunks that arrived whole but corrupted on an `/events` stream */
    corruptOnStream: new Set(),
    /** corrupted arrivals of a chunk not (yet) delivered intact: each must fail verification */
    mustFail: 0,
    /** payload bytes of corrupted chunks that arrived whole */
    corruptBytes: 0,
    /** whole, intact arrivals of a chunk already in `intact` */
    intactRepeats: 0,
    /** @type {string[]} request targets, in the order they reached the proxy */
    requests: [],
  };
}

/** @typedef {ReturnType<typeof newStats>} Stats @typedef {ReturnType<typeof newLedger>} Ledger */

/** Request targets out of the client's bytes (GETs without bodies). */
class RequestLines {
  constructor() { this.pending = ''; }
  /** @param {Buffer} bytes @param {string[]} out */
  feed(bytes, out) {
    this.pending += bytes.toString('latin1');
    let end;
    const found = [];
    while ((end = this.pending.indexOf('\r\n\r\n')) >= 0) {
      found.push(this.pending.slice(0, end).split(' ')[1] ?? '');
      this.pending = this.pending.slice(end + 4);
    }
    out.push(...found);
    return found;
  }
}

export class ChaosProxy {
  /**
   * @param {string} upstream  the server's http://host:port/ URL
   * @param {number} seed @param {Faults} faults
   */
  static async start(upstream, seed, faults) {
    const p = new ChaosProxy(upstream, seed, faults);
    await new Promise((r) => p.server.listen(0, '127.0.0.1', () => r(undefined)));
    const addr = /** @type {net.AddressInfo} */ (p.server.address());
    p.url = `http://127.0.0.1:${addr.port}/`;
    return p;
  }

  /** @param {string} upstream @param {number} seed @param {Faults} faults */
  constructor(upstream, seed, faults) {
    const u = new URL(upstream);
    this.upstream = { host: u.hostname, port: Number(u.port) };
    this.planner = new Planner(seed, faults);
    this.stats = newStats();
    this.ledger = newLedger();
    /** @type {Set<{client: net.Socket, server: net.Socket, scan: Scanner, finish: () => void}>} */
    this.live = new Set();
    this.url = '';
    /** @type {((msg: string) => void)|null} set to follow each connection's plan, faults and events */
    this.log = null;
    this.server = net.createServer({ noDelay: true }, (client) => this.accept(client));
  }

  /** Changes the fault rates for connections accepted from now on. @param {Faults} faults */
  setFaults(faults) {
    this.planner.faults = faults;
    this.planner.downLeft = 0;
  }

  /**
   * The next connections get these plans, in order, before random ones
   * (null refuses one), for tests that need one exact sequence of faults.
   * @param {(Plan|null)[]} plans
   */
  script(plans) {
    this.planner.script.push(...plans);
  }

  /**
   * Closes the books between two downloads: waits a moment for what the
   * client already closed or aborted to arrive, then cuts every connection
   * still in the middle of a response (a late chunk must not count for the
   * next download) and clears the plan of the idle keep-alive ones (Node's
   * fetch reuses them; cutting them would fail the next request on them).
   */
  async settle() {
    await new Promise((r) => setTimeout(r, 50));
    for (const c of [...this.live]) {
      if (c.scan.idle()) c.scan.plan = { fault: null, corrupt: [] };
      else c.finish();
    }
  }

  /** The ledger so far, leaving an empty one in its place. */
  takeLedger() {
    const l = this.ledger;
    this.ledger = newLedger();
    return l;
  }

  /** @param {net.Socket} client */
  accept(client) {
    const s = this.stats;
    s.connections++;
    client.on('error', () => {});
    const plan = this.planner.decide();
    const cid = s.connections;
    this.log?.(`conn ${cid}: ${plan ? `pass ${JSON.stringify(plan)}` : 'refused'}`);
    if (!plan) {
      // A server that is down: reset, as a closed port would.
      s.refused++;
      client.resetAndDestroy();
      return;
    }
    const server = net.connect({ ...this.upstream, noDelay: true });
    server.on('error', () => {});
    /** @type {string[]} */
    const paths = [];
    const scan = new Scanner(plan, paths);
    let connected = false;
    let over = false;
    const finish = () => {
      if (over) return;
      over = true;
      this.live.delete(conn);
      client.destroy();
      server.destroy();
    };
    const conn = { client, server, scan, finish };
    this.live.add(conn);
    server.once('connect', () => { connected = true; });
    server.once('close', () => {
      if (!connected && !over) {
        s.upstreamDown++;
        over = true;
        this.live.delete(conn);
        client.resetAndDestroy();
        return;
      }
      // Let what is already written reach the client, then close.
      if (!stalled) client.end();
      setTimeout(finish, 2000).unref();
    });
    const requests = new RequestLines();
    client.on('data', (d) => {
      this.ledger.requests.push(...requests.feed(d, paths));
      if (!over) server.write(d);
    });
    let stalled = false;
    /** @type {number} */
    let stallStart = 0;
    /** @type {NodeJS.Timeout|undefined} */
    let stallTimer;
    client.once('close', () => {
      if (stalled && !over) {
        s.stallsDetected++;
        s.stallDetectMaxMs = Math.max(s.stallDetectMaxMs, Date.now() - stallStart);
        clearTimeout(stallTimer);
      }
      finish();
    });
    client.once('end', () => { if (stalled) client.destroy(); else server.end(); });
    client.on('drain', () => { if (!stalled && !over) server.resume(); });
    server.on('data', (/** @type {Buffer} */ buf) => {
      if (over || stalled) return;
      /** @type {Done[]} */
      const done = [];
      const stop = scan.feed(buf, done);
      const upto = stop ? stop.at : buf.length;
      const ok = client.write(upto === buf.length ? buf : buf.subarray(0, upto));
      s.wireBytes += upto;
      s.corruptions += scan.flipped;
      scan.flipped = 0;
      for (const ev of done) {
        this.record(ev);
        this.log?.(`conn ${cid}: chunk ${ev.id}${ev.corrupted ? ' CORRUPTED' : ''}${ev.range ? ' (range)' : ''}`);
      }
      if (!stop) {
        if (!ok) server.pause();
        return;
      }
      s.at[/** @type {Fault} */ (plan.fault).w]++;
      this.log?.(`conn ${cid}: ${stop.kind} ${WHERE[/** @type {Fault} */ (plan.fault).w]} (response to ${scan.path})`);
      if (stop.kind === CUT) {
        s.cuts++;
        over = true;
        this.live.delete(conn);
        server.destroy();
        client.end(); // what was written still arrives, then FIN
        setTimeout(() => client.destroy(), 1000).unref();
      } else {
        s.stalls++;
        stalled = true;
        stallStart = Date.now();
        server.pause();
        stallTimer = setTimeout(finish, this.planner.faults.stallMax || 5000);
        stallTimer.unref();
      }
    });
  }

  /** @param {Done} ev */
  record(ev) {
    const s = this.stats;
    const l = this.ledger;
    s.chunkEvents++;
    s.payloadBytes += ev.len;
    if (ev.corrupted) {
      s.corruptDelivered++;
      l.corruptBytes += ev.len;
      if (!l.intact.has(ev.id)) l.mustFail++;
      if (!ev.range) l.corruptOnStream.add(ev.id);
    } else if (!l.intact.has(ev.id)) {
      l.intact.add(ev.id);
      l.lens.set(ev.id, ev.len);
    } else {
      l.intactRepeats++;
    }
  }

  /** Cuts every connection and stops listening. */
  async close() {
    for (const { client, server } of this.live) { client.destroy(); server.destroy(); }
    this.live.clear();
    await new Promise((r) => this.server.close(() => r(undefined)));
  }
}
