// @ts-check
/** @file A download's scheduler: what to fetch next (plan.js), the open event stream and what it says, range refills, stalls, and reconnecting with backoff; the download's lifecycle (download.js) is told what it must decide. */
//
// It drives the download's transport through the transport interface
// (transport/interface.js) and reads the chunks' states in its ledger
// (ledger.js); the states it moves the download through are state.js's.

import { ChunkcastError, asError } from './errors.js';
import { CHUNK, plan } from './plan.js';
import { LIVE_STALL_MS, liveState } from './live.js';
import { maxLineFor } from './sse.js';
import { LIVE } from './state.js';

/** @typedef {import('./protocol.js').Manifest} Manifest */
/** @typedef {import('./transport/interface.js').Transport} Transport */
/** @typedef {import('./transport/interface.js').StreamEvent} StreamEvent */

/**
 * What the scheduler reads of its download, and asks of it (download.js
 * implements it).
 * @typedef {Object} Lifecycle
 * @property {string} name
 * @property {import('./state.js').State} state
 * @property {number} gen  work started in an older generation is dropped
 * @property {Manifest|null} manifest
 * @property {import('./ledger.js').ChunkLedger} ledger
 * @property {Transport|null} transport
 * @property {import('./options.js').Settings} set
 * @property {(state: import('./state.js').State, message?: string) => void} _setState
 * @property {(path: string, q: Record<string, string|number|undefined>) => string} _url
 * @property {(msg: string) => void} _log
 * @property {() => Promise<{m: Manifest, expected: Uint8Array}>} fetchManifest
 * @property {import('./live.js').LiveTail|null} live  a live text's publication (live.js), else null
 * @property {(err: ChunkcastError) => void} _fatal
 * @property {(why: string, fresh: {m: Manifest, expected: Uint8Array}) => Promise<void>} _changed  another version: move to it
 * @property {() => Promise<void>} _finish  every chunk is verified
 */

export class Scheduler {
  // Per-run fields, set by reset() (declared here for their types).
  /** @type {{close: () => void}|null} the open event stream */ es;
  /** @type {number} */ esFailures; // drops in a row the transport is reconnecting from, without progress
  /** @type {number} */ attempt; // our reconnects in a row, without progress
  /** @type {Set<AbortController>} */ ranges; // range requests in flight
  /** @type {any} */ stallTimer;
  /** @type {any} */ retryTimer;

  /** @param {Lifecycle} dl */
  constructor(dl) {
    this.dl = dl;
    /** chunks per range request: halved when the server refuses a range as too large (416) */
    this.batch = dl.set.batch;
    /** bytes/s asked of the server, 0 for as fast as it goes */
    this.rate = dl.set.rate;
    this.reset();
  }

  /** A new run: nothing open, nothing in flight. */
  reset() {
    this.es = null;
    this.esFailures = 0;
    this.attempt = 0;
    this.ranges = new Set();
    this.stallTimer = null;
    this.retryTimer = null;
  }

  /** A chunk was verified: the failures in a row are over. */
  progressed() {
    this.attempt = 0;
    this.esFailures = 0;
  }

  /** Whether the browser says it is offline. */
  _isOffline() {
    return typeof navigator !== 'undefined' && navigator.onLine === false;
  }

  /** Decides what to fetch next (plan.js), and asks for it. Called after every change. */
  pump() {
    const m = this.dl.manifest;
    // Only a live download fetches, and not while the manifest is asked why a stream stopped.
    if (!m || !this.dl.transport || !LIVE.has(this.dl.state) || this.dl.state === 'checking') return;
    const busy = this.dl.transport.busy();
    if (this.dl.ledger.complete()) {
      if (!busy) this.dl._finish();
      return;
    }
    if (this._isOffline()) {
      this.dl._setState('offline', 'the browser is offline; waiting for the network');
      return;
    }
    if (this.retryTimer) return;
    const next = plan(this.dl.ledger.status, {
      streaming: !!this.es, ranges: this.ranges.size, parallel: this.dl.set.parallel, batch: this.batch,
      maxRange: m.max_range, maxNeed: m.max_need, busy, tail: !!this.dl.live?.growing,
    });
    for (const [a, b] of next.ranges) this._range(a, b);
    // Nothing missing, nothing in flight, yet not all verified: cannot happen; re-plan.
    if (next.stuck) this.dl.ledger.replan();
    if (next.stream) this._openStream(next.stream);
  }

  /** @param {{first: number, from?: number, need?: string}} what  see plan.js */
  _openStream(what) {
    const m = /** @type {Manifest} */ (this.dl.manifest);
    const t = /** @type {Transport} */ (this.dl.transport);
    const url = this.dl._url('events', { file: this.dl.name, v: m.version, rate: this.rate || undefined, from: what.from, need: what.need });
    this.dl._log(`open ${url} (${t.kind})`);
    const gen = this.dl.gen;
    /** @type {{close: () => void}|null} */
    let es = null;
    es = t.stream(url, {
      stallTimeout: this.dl.set.stallTimeout,
      maxLine: maxLineFor(m.chunk_size),
      on: (ev) => { if (es === this.es && gen === this.dl.gen) this._streamEvent(ev); },
    });
    this.es = es;
    const resumed = this.dl.ledger.verified > 0;
    this.dl._setState(resumed ? 'resuming' : 'connecting', resumed ? `resuming from chunk ${what.first}` : 'connecting');
    this.armStall();
  }

  /** What the open stream said. @param {StreamEvent} ev */
  _streamEvent(ev) {
    const m = /** @type {Manifest} */ (this.dl.manifest);
    switch (ev.type) {
      case 'open':
        this.armStall();
        this.dl._setState('streaming', 'receiving');
        return;
      case 'data':
        this.armStall();
        this.esFailures = 0;
        return;
      case 'meta': {
        this.armStall();
        const live = this.dl.live;
        if (live?.growing && ev.version !== null) {
          // The server answers: waiting on a quiet producer is no failure.
          this.attempt = 0;
          this.esFailures = 0;
          // A publication that ended meanwhile is served as the finished file.
          if (ev.version !== m.version && !ev.live) { live.ended(null, null); return; }
          const st = liveState(ev.state);
          if (st) live.set(st);
        }
        if (ev.version !== null && ev.version !== m.version) {
          this.closeStream();
          this.check('the stream announced another version');
        }
        return;
      }
      case 'live': {
        const st = liveState(ev.state);
        if (st) this.dl.live?.set(st);
        return;
      }
      case 'end':
        this.closeStream();
        this.dl._log('stream ended');
        if (this.dl.live?.growing) this.dl.live.ended(ev.end ?? null, null);
        else this.pump();
        return;
      case 'changed': // or gone: the manifest tells
        this.closeStream();
        this.check(ev.message);
        return;
      case 'error':
        this.closeStream();
        this.retryLater(`the server reported: ${ev.message}`);
        return;
      case 'broken':
        this.closeStream();
        this.dl._fatal(new ChunkcastError('protocol', ev.message));
        return;
      case 'drop':
        if (++this.esFailures < 2) {
          this.dl.ledger.reconnects++;
          this.dl._setState('reconnecting', 'connection lost; reconnecting');
          this.armStall();
          return;
        }
        break; // failing again: find out why
      default: // 'closed': for good (204, 412, 404, 5xx, ...): find out why
        break;
    }
    this.closeStream();
    this.check('the stream stopped');
  }

  closeStream() {
    clearTimeout(this.stallTimer);
    this.stallTimer = null;
    if (this.es) {
      this.es.close();
      this.es = null;
    }
  }

  armStall() {
    clearTimeout(this.stallTimer);
    const m = this.dl.manifest;
    // A paced stream may legitimately be silent for a whole chunk's time
    // (keep-alive comments are invisible to EventSource).
    const paced = this.rate && m ? (2 * m.chunk_size * 1000) / this.rate + 1000 : 0;
    const ms = Math.max(this.dl.set.stallTimeout, paced, this.dl.live?.growing ? LIVE_STALL_MS : 0);
    this.stallTimer = setTimeout(() => {
      if (!this.es) return;
      this.dl._log(`no event for ${ms} ms: reopening`);
      this.closeStream();
      this.dl.ledger.reconnects++;
      this.dl._setState('stalled', `no data for ${Math.round(ms / 1000)} s; reopening the stream`);
      this.retryLater('the stream stalled', 0);
    }, ms);
  }

  /**
   * After the stream stopped for good, or the server said the file changed
   * (412, `event: error` code `changed`, another version announced), the
   * manifest tells why: gone (404: the download ends `not_found`), changed
   * (another version: the download moves to it), or the server is down
   * (network error: retried later).
   * @param {string} why
   */
  async check(why) {
    if (this.dl.state === 'checking' || !LIVE.has(this.dl.state)) return; // asking already, or paused: resume() meets it again
    this.dl._setState('checking', `${why}; asking the server why`);
    const gen = this.dl.gen;
    // Paused, closed or failed meanwhile: the answer no longer matters.
    const stale = () => gen !== this.dl.gen || !LIVE.has(this.dl.state);
    try {
      const fresh = await this.dl.fetchManifest();
      const { m } = fresh;
      if (stale()) return;
      // A live text that ended: the stream had nothing more (204).
      if (this.dl.live?.growing && !m.live) return this.dl.live.ended(null, fresh);
      if (m.version !== this.dl.manifest?.version) return this.dl._changed(`${why}; the manifest has a new version`, fresh);
      this._retryAfterCheck(why);
    } catch (e) {
      if (stale()) return;
      const err = asError(e);
      if (err.code === 'server_down' || err.code === 'http') this._retryAfterCheck(`${why}: ${err.message}`);
      else this.dl._fatal(err);
    }
  }

  /** Leaves `checking` (the scheduler waits while in it), then retries. @param {string} why */
  _retryAfterCheck(why) {
    if (this.dl.state === 'checking') this.dl._setState('reconnecting', why);
    this.retryLater(why);
  }

  /**
   * Reopens after an exponential backoff with full jitter: a random delay in
   * [0, min(max, base × 2^attempt)], so clients dropped together do not
   * return together.
   * @param {string} why @param {number} [delay]
   */
  retryLater(why, delay) {
    if (this.retryTimer || !LIVE.has(this.dl.state)) return;
    this.attempt++;
    const { retries, backoffBase, backoffMax } = this.dl.set;
    if (this.attempt > retries) {
      this.dl._fatal(new ChunkcastError('server_down', `${why}; gave up after ${retries} attempts without progress. Resume to try again.`));
      return;
    }
    const ms = delay ?? Math.random() * Math.min(backoffMax, backoffBase * 2 ** (this.attempt - 1));
    if (this.dl.state !== 'stalled' && !this.es) this.dl._setState('reconnecting', `${why}; retrying in ${(ms / 1000).toFixed(1)} s (attempt ${this.attempt})`);
    this.dl._log(`${why}; retry in ${Math.round(ms)} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, ms);
  }

  /**
   * A person asked to try again now: the backoff's wait ends and starts
   * over from its first step. False when no retry was waiting.
   */
  retryNow() {
    if (!this.retryTimer) return false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempt = 0;
    this.pump();
    return true;
  }

  /**
   * One range request `[a, b)` (transport/range.js), then what its outcome means for the download.
   * @param {number} a @param {number} b
   */
  async _range(a, b) {
    const m = /** @type {Manifest} */ (this.dl.manifest);
    const t = /** @type {Transport} */ (this.dl.transport);
    const { status } = this.dl.ledger;
    const gen = this.dl.gen;
    for (let i = a; i < b; i++) status[i] = CHUNK.INFLIGHT;
    const ctl = new AbortController();
    this.ranges.add(ctl);
    if (!this.es) this.dl._setState('refilling', `refetching chunks ${a}..${b - 1}`);
    let result;
    try {
      result = await t.range({ url: this.dl._url(`events/chunk/${a}/${b}`, { file: this.dl.name, v: m.version }), label: `${a}..${b}`,
        ctl, stallTimeout: this.dl.set.stallTimeout, maxLine: maxLineFor(m.chunk_size) });
    } finally {
      this.ranges.delete(ctl);
    }
    const { failure, broken } = result;
    // Too many chunks for one response (the server's --max-range): ask for fewer.
    if (result.status === 416 && this.batch > 1) this.batch = Math.max(1, this.batch >> 1);
    if (gen !== this.dl.gen) return;
    // Let the chunks already received be verified before judging what is missing.
    await this.dl.transport?.idle();
    if (gen !== this.dl.gen) return;
    // Read again: a live text's ledger may have grown into new arrays meanwhile.
    const now = this.dl.ledger.status;
    for (let i = a; i < b; i++) if (now[i] === CHUNK.INFLIGHT) now[i] = CHUNK.QUEUED;
    if (broken) return this.dl._fatal(broken);
    if (failure === 'changed') return this.check('the range endpoint refused the version (412)');
    if (failure === 'gone') return this.dl._fatal(new ChunkcastError('not_found', `${this.dl.name} is no longer on the server`, { status: 404 }));
    if (failure && this.dl.state !== 'paused') {
      this.dl._log(failure);
      return this.retryLater(failure);
    }
    this.pump();
  }

  /** Closes the stream and aborts the ranges in flight (their chunks are asked for again). */
  cut() {
    this.closeStream();
    for (const c of this.ranges) c.abort();
  }

  /** Stops the network: nothing open, nothing in flight, no retry pending. */
  stop() {
    this.cut();
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /**
   * Cuts the live connection as a network drop would; the download then
   * resumes by itself from the first missing chunk.
   */
  dropConnection() {
    if (!this.es && this.ranges.size === 0) return false;
    this.stop();
    this.dl.ledger.reconnects++;
    this.retryLater('the connection was dropped', Math.random() * this.dl.set.backoffBase);
    return true;
  }

  /**
   * Changes the pace asked of the server; the stream is reopened from the
   * first missing chunk. @param {number} rate  bytes/s, 0 = as fast as possible
   */
  setRate(rate) {
    this.rate = rate > 0 ? rate : 0;
    if (this.es) {
      this.closeStream();
      this.pump();
    }
  }
}
