// @ts-check
/** @file The worker transport's raw path: the bulk of a download read as plain bytes from `/files/NAME` with `Range` (and `If-Range`), cut at the manifest's chunk boundaries and handed to the ChunkSink, which verifies each chunk against the manifest's digest as it does the event stream's; anything unexpected hands the rest to the event stream. */
//
// Why: the event stream costs the transport worker a UTF-8 decoding of
// every byte, the SSE parsing, base64 decoding and 1.37× the bytes on the
// wire; with them the library downloaded into OPFS at half the speed of
// Chromium's own download manager (194 against 394 MB/s, 1 GiB,
// scripts/bench-browser.mjs on 2 cores). The raw bytes need none of that:
// they are read into a buffer of our own, copied into the sink's staging
// buffer and hashed there (same bench: 403-442 MB/s, 0.94-1.12× the
// download manager's speed in eight runs; per GiB, CPU seconds: reading 0.67,
// SHA-256 0.8, the copy 0.16, writing 0.54; docs/BENCHMARKS.md). The event stream
// stays the protocol's stream: the raw path is only an optimisation of its
// transfer, and every doubt goes back to it.
//
// One raw stream (host.js runs it in place of the event stream the page
// asked for, `/events?file=NAME[&from=N | &need=LIST]`, see RawState.carries):
//   - the chunks that URL asks for and the sink does not hold, a run of
//     consecutive ones per request (at most SEGMENT_BYTES), each asked as
//     `Range: bytes=<first byte>-<last byte>` of `/files/NAME` (a signed
//     link's parameters carried over), with `If-Range:` the ETag of the
//     first raw response of this open of the file;
//   - the body read into a buffer of our own (cutter.js) and cut where the
//     manifest's chunks end (protocol.js `span`: chunk_size, or a text's
//     `offsets`); each whole chunk is copied into the sink's stage (`raw`),
//     which hashes it, compares it with the manifest's digest, puts it to
//     storage and tells the page, as for the event stream;
//   - a drop (a network error, the body ending early, no byte for
//     `stallTimeout` ms): told to the page as the event stream's `drop`
//     (the scheduler counts it, as it counts the event stream's), then the
//     next request after the event stream's default retry time, from the
//     next chunk not in hand: whole chunks already read are kept;
//   - anything unexpected: a status other than 206 (200 included: an
//     `If-Range` that no longer matches, or a server that ignores Range;
//     but 200 is what actix-files answers to a range of the whole file, so
//     there it is taken, the ETag still checked), a
//     `Content-Range` other than the one asked for or another total than
//     the manifest's size, another ETag, a longer body, or a chunk that
//     failed verification (the sink reports it as failed, as always): raw
//     is off for the rest of this open (RawState.off) and the chunks not
//     yet in hand go through the event stream with `v=` (host.js), which
//     tells a changed file (412, `event: error` code `changed`) from a
//     corrupt transfer (the chunk arrives and verifies);
//   - every chunk asked for in hand: `end`, once the sink has told the page.

import { formatNeed, span } from '../protocol.js';
import { BodyCutter } from './cutter.js';

/** @typedef {import('./sink.js').ChunkSink} ChunkSink */
/** @typedef {import('./interface.js').StreamEvent} StreamEvent */

/**
 * Bytes per request at most. Each request carries `If-Range`, so a file
 * replaced or grown on the server is noticed at the next one, and the
 * download moves to the new version (the event stream checks the file
 * before every chunk; a response of actix-files does not; bytes rewritten
 * in place are caught anyway, by the digests). Each new request costs a
 * pause in the flow: 1 GiB in requests of 256 MiB went ~4% faster than in
 * requests of 64 MiB (scripts/bench-browser.mjs, six A/B runs).
 */
const SEGMENT_BYTES = 256 << 20;

/** The buffer a body is read into (cutter.js): reads of up to this much at a time. */
const LANDING_BYTES = 4 << 20;

/** After a drop, the next request after this long, jittered ×0.5..1.5 (an event stream's time before the server sends `retry:`). */
const RETRY_MS = 1000;

/** Query parameters of `/events` that `/files` does not take; the others (a signed link's `exp`, `sig`) go along. */
const EVENTS_ONLY = new Set(['file', 'v', 'rate', 'from', 'need', 'lastEventId']);

/** Milliseconds and counts of the raw path, for the benchmark. */
export const rawTiming = { rawRequests: 0, rawFallbacks: 0, rawReads: 0, rawReadWaitMs: 0, rawCopyMs: 0, rawRoomWaitMs: 0 };

/** @param {string} url */
const parse = (url) => new URL(url, globalThis.location?.href);

/**
 * The half-open runs of chunks an `/events` URL asks for: `need=` (merged,
 * ascending), else from `from=` (or 0) to the end.
 * @param {string} url @param {number} chunks
 * @returns {[number, number][]|null}  null when `need=` cannot be read
 */
export function askedRuns(url, chunks) {
  const q = parse(url).searchParams;
  const need = q.get('need');
  if (need === null) {
    const from = Number(q.get('from') ?? 0);
    if (!Number.isSafeInteger(from) || from < 0) return null;
    return from < chunks ? [[from, chunks]] : [];
  }
  /** @type {[number, number][]} */
  const list = [];
  for (const part of need.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return null;
    const a = Number(m[1]);
    const b = Math.min(Number(m[2] ?? m[1]) + 1, chunks);
    if (a < b) list.push([a, b]);
  }
  list.sort((x, y) => x[0] - y[0]);
  /** @type {[number, number][]} */
  const out = [];
  for (const [a, b] of list) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/**
 * The `/files/NAME` URL beside an `/events?file=NAME` URL: the name's path
 * segments percent-encoded (the `/` between them kept, as the page's own
 * links do), and the parameters `/events` alone takes left out (a signed
 * link's `exp` and `sig` go along: they authorize `/files/NAME` too).
 * @param {string} url
 */
export function filesUrl(url) {
  const u = parse(url);
  const name = u.searchParams.get('file') ?? '';
  const out = new URL(`files/${name.split('/').map(encodeURIComponent).join('/')}`, u);
  for (const [k, v] of u.searchParams) if (!EVENTS_ONLY.has(k)) out.searchParams.append(k, v);
  return out.href;
}

/**
 * `Content-Range: bytes A-B/TOTAL` (RFC 9110 §14.4), or null.
 * @param {string|null} value
 * @returns {{first: number, last: number, total: number}|null}
 */
export function parseContentRange(value) {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value?.trim() ?? '');
  if (!m) return null;
  const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return first <= last && last < total && Number.isSafeInteger(total) ? { first, last, total } : null;
}

/**
 * The `/events` URL `url` was, asking for `runs` instead (`from=` for one
 * tail, else `need=`, as long as `maxNeed` allows: the rest is asked for
 * when that stream ends, as plan.js does).
 * @param {string} url @param {[number, number][]} runs  not empty @param {number} chunks @param {number} maxNeed
 */
export function eventsUrlFor(url, runs, chunks, maxNeed) {
  const u = parse(url);
  u.searchParams.delete('from');
  u.searchParams.delete('need');
  if (runs.length === 1 && runs[0][1] === chunks) {
    if (runs[0][0] > 0) u.searchParams.set('from', String(runs[0][0]));
  } else {
    u.searchParams.set('need', formatNeed(runs, maxNeed).need);
  }
  return u.href;
}

/** What the raw streams of one open of a file share: the ETag every request after the first names, and whether raw is off. */
export class RawState {
  /** @param {{maxNeed: number}} o  the manifest's `max_need` (or the protocol's default) */
  constructor(o) {
    this.maxNeed = o.maxNeed;
    /** @type {string|null} the first raw response's strong ETag: the version every later request must still be */
    this.etag = null;
    /** @type {string|null} why raw is off for the rest of this open (null while it is on) */
    this.off = null;
  }

  /**
   * Whether a stream on `url` goes raw: not once raw is off, and not when
   * it is paced (`rate=`: the server paces the event stream only).
   * @param {string} url
   */
  carries(url) {
    if (this.off) return false;
    const q = parse(url).searchParams;
    return q.has('file') && !q.has('rate');
  }
}

/**
 * @typedef {Object} RawOptions
 * @property {string} url  the `/events` URL the page asked for
 * @property {ChunkSink} sink
 * @property {RawState} state
 * @property {typeof fetch} fetch
 * @property {number} stallTimeout  ms without a byte before a request counts as dropped
 * @property {(ev: StreamEvent) => void} say  `open` (a response is read), `drop`
 * @property {() => void} end  every chunk asked for is in hand, and told
 * @property {(why: string, url: string|null) => void} fallback  the rest goes through the event
 *   stream on `url` (null: nothing is left), because of `why`
 */

/** One raw stream: the page's event stream, carried by `/files` Range requests (see the file comment). */
export class RawStream {
  /** @param {RawOptions} o */
  constructor(o) {
    this.o = o;
    this.sink = o.sink;
    this.m = o.sink.t.manifest;
    this.files = filesUrl(o.url);
    this.asked = askedRuns(o.url, this.m.chunks);
    /** the run of `asked` the requests have reached (runs before it are in hand or failed) */
    this.k = 0;
    /** failures the sink had counted when this stream began: more means one of ours failed */
    this.failures = o.sink.rawFailures;
    this.closed = false;
    /** @type {AbortController|null} */
    this.ctl = null;
    /** @type {any} */
    this.timer = null;
    /** @type {Uint8Array|null} the buffer bodies are read into, from one request to the next */
    this.landing = null;
  }

  start() {
    this._run().catch((e) => this._fallback(`raw transfer failed: ${e instanceof Error ? e.message : String(e)}`));
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.ctl?.abort();
  }

  async _run() {
    if (!this.asked) return this._fallback('the stream asked for chunks the raw path cannot read');
    for (;;) {
      if (this.closed || this.sink.closed) return;
      const next = this._next();
      if (!next) break;
      const r = await this._request(next[0], next[1]);
      if (this.closed) return;
      if (r?.bad) return this._fallback(r.bad);
      if (r?.drop) {
        this.o.say({ type: 'drop', message: r.drop });
        await new Promise((resolve) => { this.timer = setTimeout(resolve, RETRY_MS * (0.5 + Math.random())); });
      }
    }
    await this.sink.idle(); // every chunk read is verified or failed, and told
    if (this.closed) return;
    if (this.sink.rawFailures !== this.failures) return this._fallback('a chunk read raw failed verification');
    this.o.end();
  }

  /** The next request: a run of consecutive chunks asked for and not in hand, at most SEGMENT_BYTES. @returns {[number, number]|null} */
  _next() {
    const asked = /** @type {[number, number][]} */ (this.asked);
    for (; this.k < asked.length; this.k++) {
      const [a, b] = asked[this.k];
      let i = a;
      while (i < b && this.sink.inHand(i)) i++;
      if (i === b) continue;
      let j = i + 1;
      let bytes = span(this.m, i).len;
      while (j < b && !this.sink.inHand(j) && bytes < SEGMENT_BYTES) bytes += span(this.m, j++).len;
      return [i, j];
    }
    return null;
  }

  /** The chunks asked for and not in hand, as runs. */
  _left() {
    /** @type {[number, number][]} */
    const out = [];
    for (const [a, b] of this.asked ?? []) {
      for (let i = a; i < b; i++) {
        if (this.sink.inHand(i)) continue;
        const last = out[out.length - 1];
        if (last && last[1] === i) last[1] = i + 1;
        else out.push([i, i + 1]);
      }
    }
    return out;
  }

  /**
   * Raw is off for the rest of this open; what is left goes through the
   * event stream, once the chunks read so far are verified (a chunk that
   * failed is then among those left).
   * @param {string} why
   */
  async _fallback(why) {
    if (this.closed) return;
    this.o.state.off = why;
    rawTiming.rawFallbacks++;
    await this.sink.idle();
    if (this.closed) return;
    const left = this._left();
    this.o.fallback(why, left.length ? eventsUrlFor(this.o.url, left, this.m.chunks, this.o.state.maxNeed) : null);
  }

  /**
   * Why a response cannot be read as the bytes `first..last` of the
   * manifest's version, or null when it can (the first strong ETag is kept).
   * @param {Response} res @param {number} first @param {number} last
   */
  _refuse(res, first, last) {
    const said = res.headers.get('content-range');
    const cr = parseContentRange(said);
    // actix-files answers a range that spans the whole file with 200 (and
    // its Content-Range): the bytes asked for, as a server that ignores
    // Range would send them. A 200 to any other range is a refusal: an
    // If-Range that no longer matches, or Range ignored.
    const whole = res.status === 200 && first === 0 && last === this.m.size - 1 && (!said || !!cr)
      && Number(res.headers.get('content-length') ?? this.m.size) === this.m.size;
    if (res.status !== 206 && !whole) return `/files answered ${res.status} to bytes ${first}-${last}${res.status === 200 ? ' (the file changed, or Range was ignored)' : ''}`;
    if (cr ? cr.first !== first || cr.last !== last || cr.total !== this.m.size : !whole) {
      return `/files answered Content-Range ${JSON.stringify(said)} to bytes ${first}-${last} of ${this.m.size}`;
    }
    const etag = res.headers.get('etag');
    if (this.o.state.etag && etag !== this.o.state.etag) return `/files answered ETag ${etag}, not ${this.o.state.etag}`;
    if (!this.o.state.etag && etag && !etag.startsWith('W/')) this.o.state.etag = etag;
    return null;
  }

  /**
   * One Range request for chunks `[a, b)`: each whole chunk of its body
   * handed to the sink. Null when it was read whole (or the stream closed).
   * @param {number} a @param {number} b
   * @returns {Promise<{bad?: string, drop?: string}|null>}
   */
  async _request(a, b) {
    const { m, sink } = this;
    const first = span(m, a).off;
    const end = span(m, b - 1);
    const last = end.off + end.len - 1;
    /** @type {Record<string, string>} */
    const headers = { Range: `bytes=${first}-${last}` };
    if (this.o.state.etag) headers['If-Range'] = this.o.state.etag;
    const ctl = new AbortController();
    this.ctl = ctl;
    let stalled = false;
    /** @type {any} */
    let timer = null;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { stalled = true; ctl.abort(); }, this.o.stallTimeout);
    };
    /** @type {BodyCutter|null} */
    let cut = null;
    let whole = false;
    arm();
    rawTiming.rawRequests++;
    try {
      const res = await this.o.fetch(this.files, { headers, signal: ctl.signal, cache: 'no-store', credentials: 'same-origin' });
      const refused = this._refuse(res, first, last) ?? (res.body ? null : '/files answered without a body');
      if (refused) return { bad: refused };
      this.o.say({ type: 'open' });
      cut = new BodyCutter(/** @type {ReadableStream<Uint8Array>} */ (res.body), this._landing(), arm);
      let took = 0;
      for (let i = a; i < b; i++) {
        const bytes = await cut.take(span(m, i).len);
        if (this.closed || sink.closed) return null;
        if (!bytes) return { drop: `the body of bytes ${first}-${last} ended early` };
        const t0 = performance.now();
        if (sink.raw(i, bytes)) took++;
        rawTiming.rawCopyMs += performance.now() - t0;
        if (sink.rawFailures !== this.failures) return { bad: 'a chunk read raw failed verification' };
        // Back-pressure, as for the event stream: the stall clock does not run while we wait on our own work.
        const w = sink.room();
        if (w) {
          clearTimeout(timer);
          const t1 = performance.now();
          await w;
          rawTiming.rawRoomWaitMs += performance.now() - t1;
          arm();
        }
      }
      if (!(await cut.ended())) return { bad: `/files sent more than bytes ${first}-${last}` };
      whole = true;
      // Read whole yet nothing taken (the sink refused every chunk): asking again would loop.
      return took ? null : { bad: `the sink took none of chunks ${a}..${b - 1}` };
    } catch (e) {
      if (this.closed) return null;
      return { drop: stalled ? `no data for ${this.o.stallTimeout} ms` : e instanceof Error ? e.message : String(e) };
    } finally {
      clearTimeout(timer);
      if (!whole) ctl.abort(); // a body not read to its end is let go
      if (cut) {
        cut.release();
        rawTiming.rawReadWaitMs += cut.waitMs;
        rawTiming.rawReads += cut.reads;
        // The buffer goes on to the next request, unless a read that failed took it with it.
        this.landing = cut.buffer.byteLength ? cut.buffer : null;
      }
      if (this.ctl === ctl) this.ctl = null;
    }
  }

  /** The buffer bodies are read into: at least 4 MiB and two chunks (see cutter.js). */
  _landing() {
    this.landing ??= new Uint8Array(Math.max(LANDING_BYTES, 2 * this.m.chunk_size));
    return this.landing;
  }
}
