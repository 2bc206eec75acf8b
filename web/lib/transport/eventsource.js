// @ts-check
/** @file The EventSource transport: the page's own EventSource carries the stream, fetch the range refills (range.js); each chunk is decoded, hashed and stored on the page, then told as the worker transport tells its own (interface.js). */
//
// One chunk event, on the page:
//   data (a string from EventSource, or from range.js's parser) -> queued
//   -> taken in batches of up to 64: the header parsed (parseChunkData),
//   the base64 decoded where the store will write it from (`reserve`, see
//   ChunkStore) -> `received` told -> SHA-256 of the whole batch at once
//   (hasher.js: WebCrypto, already off the main thread; the fallback in
//   workers) -> compared with the MANIFEST's digest (never only the one in
//   the event) -> the good ones put to the store -> `verified` told (a
//   chunk is verified once stored, as with the worker transport).
// One batch runs at a time: the next is decoded only after the one before
// is told, so a chunk told verified is never taken again. It is the
// reference transport: every browser and Node can run it.

import { decodeBase64, decodeBase64Into, equal32 } from '../bytes.js';
import { asError, asStorageError } from '../errors.js';
import { digestAll } from '../hasher.js';
import { span } from '../protocol.js';
import { parseChunkData } from '../sse.js';
import { addStat, nowMs } from '../stats.js';
import { notice, serverEvent } from './interface.js';
import { readRange } from './range.js';

/** @typedef {import('./interface.js').Transport} Transport */
/** @typedef {import('./interface.js').TransportHost} TransportHost */
/** @typedef {import('./interface.js').RangeRequest} RangeRequest */
/** @typedef {import('./interface.js').StreamOptions} StreamOptions */
/** @typedef {import('./interface.js').Notice} Notice */

/** Chunk events decoded, then hashed together, per batch. */
const BATCH = 64;

/**
 * @typedef {Object} EventSourceOptions
 * @property {any} EventSource  the constructor (the browser's, or one given for Node)
 * @property {typeof fetch} fetch
 * @property {Record<string, number>|null} stats  filled with per-stage timings (for the benchmark)
 */

/** @implements {Transport} */
export class EventSourceTransport {
  /** @param {TransportHost} host @param {EventSourceOptions} o */
  constructor(host, o) {
    /** @type {'eventsource'} */
    this.kind = 'eventsource';
    this.host = host;
    this.o = o;
    this.stats = o.stats;
    /** @type {string[]} chunk events waiting to be decoded */
    this.queue = [];
    /** @type {Promise<void>|null} the running drain, while it runs */
    this.drainRun = null;
    this.gen = 0; // bumped by drop(): chunks of an older generation are not told
  }

  /**
   * An event stream on `url`, through EventSource (which reconnects by
   * itself with Last-Event-ID).
   * @param {string} url @param {StreamOptions} o
   */
  stream(url, o) {
    const es = new this.o.EventSource(url);
    const gen = this.gen;
    let open = true;
    const on = (/** @type {import('./interface.js').StreamEvent|null} */ ev) => { if (open && ev) o.on(ev); };
    es.onopen = () => on({ type: 'open' });
    for (const type of ['meta', 'end', 'state']) es.addEventListener(type, (/** @type {MessageEvent} */ e) => on(serverEvent(type, e.data)));
    es.addEventListener('chunk', (/** @type {MessageEvent} */ e) => {
      if (!open) return;
      if (this.stats) {
        const t = nowMs();
        if (this.stats.lastEvent) addStat(this.stats, 'eventGap', t - this.stats.lastEvent);
        this.stats.lastEvent = t;
        addStat(this.stats, 'events', 1);
      }
      on({ type: 'data' });
      this._queue(e.data, gen);
    });
    es.addEventListener('error', (/** @type {any} */ e) => {
      // The server's own `event: error` carries data; a connection's error does not.
      if (typeof e.data === 'string') on(serverEvent('error', e.data));
      else if (es.readyState === 0) on({ type: 'drop', message: 'connection lost' }); // CONNECTING: the native reconnect is under way
      else on({ type: 'closed', status: 0, message: 'the stream closed' }); // for good: 204, 412, 404, 5xx, ...
    });
    return { close: () => { open = false; es.close(); } };
  }

  /**
   * One range request (range.js); its chunks join the queue.
   * @param {RangeRequest} o
   */
  range(o) {
    const gen = this.gen;
    return readRange({ ...o, fetch: this.o.fetch, onChunk: (data) => this._queue(data, gen) });
  }

  busy() {
    return this.drainRun !== null || this.queue.length > 0;
  }

  /** Waits on the running drain (it ends only with the queue empty), no polling. */
  async idle() {
    while (this.drainRun) await this.drainRun;
  }

  drop() {
    this.gen++;
    this.queue = [];
  }

  close() {
    this.drop();
  }

  /** @param {string} data @param {number} gen */
  _queue(data, gen) {
    if (gen !== this.gen) return;
    this.queue.push(data);
    this._drain();
  }

  /** Runs batches until the queue is empty; then tells the host, with an empty notice, that nothing waits. */
  _drain() {
    if (this.drainRun || this.queue.length === 0) return;
    const store = this.host.store;
    this.drainRun = (async () => {
      try {
        while (this.queue.length) {
          // Views reserved in the store by this batch are all put or dropped by
          // the end of it, whichever way it ends.
          try { await this._batch(); } finally { store.settle?.(); }
        }
      } catch (e) {
        this.drainRun = null;
        this.host.fail(asError(e));
        return;
      }
      this.drainRun = null;
      this.host.notice(notice());
    })();
  }

  /** Decodes, verifies and stores the next queued events, and tells what became of them. */
  async _batch() {
    const gen = this.gen;
    const batch = this.queue.splice(0, BATCH);
    const told = notice();
    /** @type {{i: number, off: number, bytes: Uint8Array, text?: string}[]} */
    const items = [];
    for (const data of batch) {
      const item = this._decode(data, told);
      if (item) items.push(item);
    }
    if (told.received.length || told.failed.length || told.bytes) this.host.notice(told);
    if (!items.length) return;
    const t0 = this.stats ? nowMs() : 0;
    const digests = await digestAll(items);
    if (this.stats) { addStat(this.stats, 'hashWait', nowMs() - t0); addStat(this.stats, 'batches', 1); addStat(this.stats, 'items', items.length); }
    if (gen !== this.gen) return;
    const done = notice();
    /** @type {{i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]} */
    const good = [];
    /** @type {Uint8Array[]} */
    const goodDigests = [];
    /** @type {Set<number>} */
    const taken = new Set();
    items.forEach((it, k) => {
      if (this.host.isVerified(it.i) || taken.has(it.i)) return; // a second copy
      if (!equal32(digests[k], this.host.expected, it.i)) {
        done.failed.push([it.i, `chunk ${it.i} failed verification`]);
        return;
      }
      taken.add(it.i);
      good.push({ i: it.i, off: it.off, bytes: it.bytes, digest: digests[k] });
      goodDigests.push(digests[k]);
      done.verified.push(it.i);
      if (it.text !== undefined) done.texts.push([it.i, it.text]);
    });
    if (good.length) await this._put(good);
    done.digests = new Uint8Array(goodDigests.length * 32);
    goodDigests.forEach((d, k) => done.digests.set(d, k * 32));
    if (done.verified.length || done.failed.length) this.host.notice(done); // stored: told even if dropped meanwhile
  }

  /**
   * Stores verified chunks: `put` is the store's own work (a copy, a post to
   * its worker), `putWait` the wait it asks for (its writes catching up).
   * @param {{i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]} good
   */
  async _put(good) {
    const store = this.host.store;
    const t0 = this.stats ? nowMs() : 0;
    let t1 = t0;
    try {
      const wait = store.put(good);
      store.settle?.();
      t1 = this.stats ? nowMs() : 0;
      if (wait) await wait;
    } catch (e) {
      throw asStorageError(e, 'storing verified chunks');
    }
    if (this.stats) { addStat(this.stats, 'put', t1 - t0); addStat(this.stats, 'putWait', nowMs() - t1); }
  }

  /**
   * Decodes one chunk event and checks its place; `null` for a copy of a
   * verified chunk, or one that failed (told in `told`).
   * @param {string} data @param {Notice} told
   */
  _decode(data, told) {
    const m = this.host.manifest;
    let ev;
    const t0 = this.stats ? nowMs() : 0;
    try {
      ev = parseChunkData(data);
    } catch {
      this.host.log('unreadable chunk event');
      return null;
    }
    const i = ev.i;
    // Past the chunks known: a live text's next sealed chunk grows the manifest (live.js).
    if (Number.isInteger(i) && i >= m.chunks) this.host.extend?.(ev);
    if (!Number.isInteger(i) || i < 0 || i >= m.chunks) {
      this.host.log(`chunk number ${i} is out of range`);
      return null;
    }
    if (this.host.isVerified(i)) return null;
    told.received.push(i);
    const { off, len } = span(m, i);
    /** @type {Uint8Array} */
    let bytes;
    /** @type {string|undefined} */
    let text;
    const room = typeof ev.b64 === 'string' ? this.host.store.reserve?.(len) : null;
    try {
      if (room) {
        // Decoded where the store will write it from (see ChunkStore.reserve).
        bytes = decodeBase64Into(/** @type {string} */ (ev.b64), room) < 0 ? decodeBase64(/** @type {string} */ (ev.b64)) : room;
      } else if (typeof ev.b64 === 'string') bytes = decodeBase64(ev.b64);
      else if (typeof ev.text === 'string') { text = ev.text; bytes = new TextEncoder().encode(ev.text); }
      else throw new Error('no payload');
    } catch {
      told.failed.push([i, `chunk ${i} could not be decoded`]);
      return null;
    }
    told.bytes += bytes.length;
    if (this.stats) addStat(this.stats, 'parseDecode', nowMs() - t0);
    if (ev.off !== off || bytes.length !== len) {
      told.failed.push([i, `chunk ${i} has the wrong place or length`]);
      return null;
    }
    return { i, off, bytes, text };
  }
}
