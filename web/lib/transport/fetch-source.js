// @ts-check
/** @file EventSource's behaviour over fetch() (for the worker transport): Last-Event-ID on reconnect, `retry:`, 204 and other statuses end it, a stall is a drop; and `readEvents`, the bounded read of one response that it and the range reader (range.js) share. */
//
// EventSource gives its events to the page's main thread; in a worker the
// body is read with fetch() and parsed by sse.js, and EventSource's rules
// are kept here (the HTML standard, "server-sent events"):
//   - the request carries `Accept: text/event-stream`, no cache, and after a
//     drop `Last-Event-ID` with the id of the last event that ended, to the
//     same URL (so a signed link's `exp`/`sig` stay on it; a same-origin
//     fetch sends the browser's Basic credentials as EventSource does);
//   - 200 with `text/event-stream` opens it; any other status (204 "nothing
//     left" included) or type closes it for good, and the caller is told
//     the status;
//   - a network error, or the body ending, is a drop: the caller is told,
//     and the source reconnects after the `retry:` time the server sent
//     (which the server already jitters per connection); what happens
//     after repeated drops (backoff with full jitter) is the caller's;
//   - our addition: no byte for `stallTimeout` ms is a drop too (keep-alive
//     comments count as bytes), so a half-open connection does not hang.

import { ChunkcastError } from '../errors.js';
import { SseParser } from '../sse.js';

/** Milliseconds this worker's reads spent waiting and parsing, for the benchmark. */
export const readTiming = { readWaitMs: 0, pushMs: 0, roomWaitMs: 0, reads: 0 };

/** Before the server sends `retry:` (it always does, first). */
const DEFAULT_RETRY_MS = 1000;

/**
 * @typedef {Object} SourceOptions
 * @property {typeof fetch} [fetch]
 * @property {number} stallTimeout  ms without a byte before the connection counts as dropped
 * @property {number} [maxLine]  see sse.js
 * @property {(ev: {type: string, data: string, id: string}) => void} onevent
 * @property {() => (Promise<void>|null)} [wait]  a promise to wait on before the next read (back-pressure)
 * @property {() => void} [onopen]
 * @property {(e: {status: number, message: string, closed: boolean, broken?: ChunkcastError}) => void} onerror
 *   `closed`: for good (a status, a protocol error); else a drop, and a reconnect follows
 */

export class FetchEventSource {
  /** @param {string} url @param {SourceOptions} o */
  constructor(url, o) {
    this.url = url;
    this.o = o;
    this.fetch = o.fetch ?? globalThis.fetch.bind(globalThis);
    /** 0 connecting, 1 open, 2 closed: EventSource's readyState */
    this.readyState = 0;
    this.lastEventId = '';
    this.retry = DEFAULT_RETRY_MS;
    /** @type {AbortController|null} */
    this.ctl = null;
    /** @type {any} */
    this.timer = null;
    this._connect();
  }

  close() {
    this.readyState = 2;
    clearTimeout(this.timer);
    this.ctl?.abort();
    this.ctl = null;
  }

  async _connect() {
    if (this.readyState === 2) return;
    this.readyState = 0;
    const ctl = new AbortController();
    this.ctl = ctl;
    /** @type {Record<string, string>} */
    const headers = { Accept: 'text/event-stream' };
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    const parser = new SseParser((ev) => { if (ctl === this.ctl) this.o.onevent(ev); }, { maxLine: this.o.maxLine, onRetry: (ms) => { this.retry = ms; } });
    parser.idBuffer = parser.lastId = this.lastEventId;
    let status = 0;
    try {
      const res = await readEvents({ fetch: this.fetch, url: this.url, headers, ctl, stallTimeout: this.o.stallTimeout, parser,
        onresponse: (r) => {
          status = r.status;
          const type = r.headers.get('content-type') ?? '';
          if (r.status !== 200 || !type.startsWith('text/event-stream')) return false;
          this.readyState = 1;
          this.o.onopen?.();
          return true;
        },
        after: () => { this.lastEventId = parser.lastId; }, wait: this.o.wait });
      this.lastEventId = parser.lastId;
      if (ctl !== this.ctl) return; // closed meanwhile
      if (!res.read) {
        this.close();
        this.o.onerror({ status, message: `the stream answered ${status}`, closed: true });
        return;
      }
      this._dropped(res.stalled ? `no data for ${this.o.stallTimeout} ms` : 'the stream ended');
    } catch (e) {
      this.lastEventId = parser.lastId;
      if (ctl !== this.ctl) return;
      if (e instanceof ChunkcastError && e.code === 'protocol') {
        this.close();
        this.o.onerror({ status, message: e.message, closed: true, broken: e });
        return;
      }
      this._dropped(e instanceof Error ? e.message : String(e));
    }
  }

  /** A drop: tell the caller, reconnect after `retry` ms. @param {string} why */
  _dropped(why) {
    if (this.readyState === 2) return;
    this.readyState = 0;
    this.ctl?.abort();
    this.o.onerror({ status: 0, message: why, closed: false });
    if (this.readyState === 2) return; // the caller closed it
    this.timer = setTimeout(() => this._connect(), this.retry);
  }
}

/**
 * Fetches `url` and feeds its body to `parser`, one read at a time, waiting
 * on `wait()` after each. `onresponse` says whether to read the body
 * (false: `{read: false}` comes back with the body let go; it may read the
 * body itself first, an error's text say, still under the stall clock).
 * The request is aborted when no byte arrives for `stallTimeout` ms
 * (`stalled`). Rejects on a network error or a parser error.
 * @param {{fetch: typeof fetch, url: string, headers?: Record<string, string>, ctl: AbortController, stallTimeout: number,
 *          parser: SseParser, onresponse: (r: Response) => (boolean|Promise<boolean>), after?: () => void, wait?: () => (Promise<void>|null)}} o
 * @returns {Promise<{read: boolean, stalled: boolean, response: Response}>}
 */
export async function readEvents(o) {
  const { ctl } = o;
  let stalled = false;
  /** @type {any} */
  let timer = null;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { stalled = true; ctl.abort(); }, o.stallTimeout);
  };
  arm();
  try {
    const res = await o.fetch(o.url, { headers: o.headers, signal: ctl.signal, cache: 'no-store', credentials: 'same-origin' });
    if (!(await o.onresponse(res)) || !res.body) {
      await res.body?.cancel().catch(() => {});
      return { read: false, stalled, response: res };
    }
    const reader = res.body.getReader();
    try {
      for (;;) {
        const t0 = performance.now();
        const { done, value } = await reader.read();
        const t1 = performance.now();
        readTiming.readWaitMs += t1 - t0;
        readTiming.reads++;
        if (done) break;
        arm();
        o.parser.push(value);
        o.after?.();
        readTiming.pushMs += performance.now() - t1;
        // Back-pressure: the consumer may have too much in flight (digests);
        // the stall clock does not run while we wait on our own work.
        const w = o.wait?.();
        if (w) {
          clearTimeout(timer);
          const t2 = performance.now();
          await w;
          readTiming.roomWaitMs += performance.now() - t2;
          arm();
        }
      }
    } finally {
      reader.releaseLock();
    }
    o.parser.end();
    return { read: true, stalled: false, response: res };
  } catch (e) {
    if (stalled) return { read: true, stalled: true, response: /** @type {any} */ (null) };
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
