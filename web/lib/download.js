// @ts-check
/** @file One file's download: manifest, stored chunks, the event stream and range refills, verification, the verified whole. */
//
// How a download flows:
//   manifest (`/api/manifest`) -> store.open() (verified chunks already on
//   disk, if any) -> the event stream on `/events` (`from=` for one missing tail,
//   `need=` for scattered gaps; see plan.js) -> decode -> SHA-256 against the
//   MANIFEST's digest (never only the one in the event) -> store.put() -> ...
//   -> every chunk verified -> the computed digests must hash to `root` and
//   the sizes add up to `size` -> result as a Blob/File.
//
// Two transports carry the stream and the ranges (option `transport`):
//   - 'worker' (transport/worker.js): with the OPFS store, a worker of its
//     own fetches the stream and ranges and decodes and verifies each chunk,
//     and the OPFS store's worker writes it; this file then only hears which
//     chunks were verified (`_notice`), and the page's main thread never
//     touches a chunk's bytes;
//   - 'eventsource': the browser's EventSource on the page and fetchRange
//     (range.js), each chunk decoded, hashed and stored from here (`_drain`).
//   'auto' (the default) takes the worker where it can run (the OPFS store
//   in a secure context, no EventSource or fetch of the caller's own), else
//   EventSource. Everything else below (the plan, reconnects, stalls,
//   `changed`, refills, text order) is the same for both.
//
// Failures and how they are met:
//   - a dropped stream: the native EventSource reconnects by itself with
//     Last-Event-ID (the primary resume path); if that fails twice in a row,
//     or the connection is closed for good (204, 412, 404, 5xx), we take over
//     and reopen from the first missing chunk after an exponential backoff
//     with full jitter;
//   - silence: no event for `stallTimeout` ms -> reopen from the first missing;
//   - a chunk that fails verification: refetched through the range endpoint
//     `/events/chunk/<start>/<end>` in batches, `parallel` requests at most;
//   - a changed file (412, `event: error` code `changed`, a manifest whose
//     version differs): stale chunks are discarded and the caller told; the
//     download starts over only if asked (`restartOnChange` or `restart()`);
//   - the worker transport's worker failing (its script did not load, say):
//     the download goes on through EventSource (`_transportBroken`).

import { decodeBase64, decodeBase64Into, equal32 } from './bytes.js';
import { ChunkcastError, asError, asStorageError } from './errors.js';
import { CHUNK, plan } from './plan.js';
import { MAX_RANGE, fetchManifest, span } from './protocol.js';
import { baseName, saveBlob } from './save.js';
import { digestAll } from './hasher.js';
import { rootOf } from './sha256.js';
import { fetchRange } from './range.js';
import { maxLineFor, parseChunkData } from './sse.js';
import { LIVE, canMove, checkMove } from './state.js';
import { chooseStore, IdbStore } from './store/index.js';
import { WorkerTransport } from './transport/worker.js';

/** @typedef {import('./protocol.js').Manifest} Manifest */
/** @typedef {import('./store/index.js').ChunkStore} ChunkStore */

/**
 * @typedef {Object} Progress
 * @property {string} name
 * @property {string} state
 * @property {number} size
 * @property {number} chunks
 * @property {number} chunksVerified
 * @property {number} bytesVerified
 * @property {number} chunksResumed   chunks found verified in storage at start
 * @property {number} chunksFailed    verification failures seen
 * @property {number} chunksRefetched chunks verified after a failure
 * @property {number} bytesReceived   payload bytes received over the network
 * @property {number} reconnects
 * @property {number} bytesPerSecond  verified bytes per second, recent window
 * @property {number|null} eta        seconds left at that speed
 * @property {number} percent
 * @property {number} elapsed  seconds since the download (re)started
 * @property {number} averageBytesPerSecond  bytes verified from the network / elapsed
 */

/**
 * @typedef {Object} DownloadOptions
 * @property {string} [base]  server URL; defaults to the page's origin
 * @property {any} [EventSource]  constructor; defaults to the global one
 * @property {typeof fetch} [fetch]
 * @property {string|ChunkStore} [store]  'auto' | 'memory' | 'opfs' | 'idb' | a store
 * @property {'auto'|'worker'|'eventsource'} [transport]  who reads the stream: 'worker' (a
 *   worker fetches, decodes and verifies, the OPFS store's worker writes; needs the OPFS store), 'eventsource'
 *   (the page's EventSource); 'auto' (default): the worker where it can run, else EventSource
 * @property {number} [memoryLimit]  largest file kept in memory with 'auto'
 * @property {number} [stallTimeout]  ms without any event before reopening
 * @property {number} [parallel]  range requests in flight at most
 * @property {number} [batch]  chunks per range request (at most the manifest's `max_range`, MAX_RANGE when it has none)
 * @property {number} [rate]  ask the server to pace to this many bytes/s
 * @property {Record<string, string>} [params]  query parameters sent with every request (manifest,
 *   stream and its reconnects, ranges): a signed link's `exp` and `sig`
 * @property {boolean} [restartOnChange]
 * @property {number} [backoffBase]  ms
 * @property {number} [backoffMax]  ms
 * @property {number} [retries]  failed reconnects in a row before giving up
 * @property {number} [maxChunkFailures]  failed verifications of one chunk before giving up
 * @property {number} [progressInterval]  ms between onprogress calls
 * @property {string} [type]  MIME type of the result
 * @property {(p: Progress) => void} [onprogress]
 * @property {(text: string, info: {i: number, offset: number}) => void} [ontext]
 * @property {(i: number, status: 'received'|'verified'|'failed'|'refetched'|'missing') => void} [onchunk]
 * @property {(state: string, message: string) => void} [onstate]
 * @property {(info: {why: string, oldVersion: string, newVersion: string|null}) => void} [onchanged]
 * @property {(e: ChunkcastError) => void} [onerror]
 * @property {(r: {blob: Blob, manifest: Manifest}) => void} [ondone]
 * @property {(msg: string) => void} [log]
 * @property {Record<string, number>} [stats]  filled with per-stage timings (for the benchmark)
 */

/**
 * One file's download. `start()` runs it; `done` settles with the result.
 */
export class Download {
  // Per-run fields, set by _reset() (declared here for their types).
  /** @type {Uint8Array} */ status;
  /** @type {Uint8Array} */ digests; // the digests we computed, 32 bytes per chunk
  /** @type {Uint8Array} */ expected;
  /** @type {Uint8Array} */ failures;
  /** @type {number} */ verified;
  /** @type {number} */ bytesVerified;
  /** @type {number} */ bytesReceived;
  /** @type {number} */ chunksResumed;
  /** @type {number} */ bytesResumed;
  /** @type {number} */ chunksFailed;
  /** @type {number} */ chunksRefetched;
  /** @type {number} */ reconnects;
  /** @type {any} */ es;
  /** @type {number} */ esFailures; // native reconnect errors in a row, without progress
  /** @type {number} */ attempt; // our reconnects in a row, without progress
  /** @type {Set<AbortController>} */ ranges;
  /** @type {{data: string, gen: number, source: string}[]} */ queue;
  /** @type {Promise<void>|null} */ drainRun;
  /** @type {any} */ stallTimer;
  /** @type {any} */ retryTimer;
  /** @type {number} */ nextText;
  /** @type {Map<number, string>} */ textPending;
  /** @type {{t: number, b: number}[]} */ samples;
  /** @type {number} */ startedAt;
  /** @type {number|null} */ finishedAt;
  /** @type {number} */ lastProgress;
  /** @type {Promise<{blob: Blob, manifest: Manifest}>} settles with the verified file; see _newDone() */ done;
  /** @type {(r: {blob: Blob, manifest: Manifest}) => void} */ _resolve;
  /** @type {(e: ChunkcastError) => void} */ _reject;
  /** @type {Blob|undefined} the verified file, once done */ blob;

  /** @param {string} name  the file's name as `/api/files` lists it @param {DownloadOptions} [opts] */
  constructor(name, opts = {}) {
    this.name = name;
    this.opts = opts;
    const loc = typeof location !== 'undefined' ? location.href : undefined;
    this.base = new URL(opts.base ?? loc ?? 'http://localhost/', loc);
    this.ES = opts.EventSource ?? globalThis.EventSource;
    this.fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.stallTimeout = opts.stallTimeout ?? 15000;
    this.parallel = opts.parallel ?? 4;
    this.batch = Math.min(opts.batch ?? 64, MAX_RANGE);
    this.rate = opts.rate ?? 0;
    this.backoffBase = opts.backoffBase ?? 500;
    this.backoffMax = opts.backoffMax ?? 30000;
    this.retries = opts.retries ?? 10;
    this.maxChunkFailures = opts.maxChunkFailures ?? 5;
    /** @type {Record<string, number>|null} */
    this.stats = opts.stats ?? null;
    /** @type {Manifest|null} */
    this.manifest = null;
    /** @type {ChunkStore|null} */
    this.store = null;
    /** @type {WorkerTransport|null} the worker transport, when it carries this download */
    this.transport = null;
    /** @type {import('./state.js').State} the one state; see state.js for the transitions */
    this.state = 'idle';
    this.gen = 0; // bumped on changed/close: work of an older generation is dropped
    this._newDone();
    this._reset();
    this._onOnline = () => this._online();
    this._onOffline = () => this._offline();
  }

  _newDone() {
    this.done = new Promise((resolve, reject) => { this._resolve = resolve; this._reject = reject; });
    this.done.catch(() => {}); // callers may ignore it; the failure also goes to onerror
  }

  _reset() {
    this.status = new Uint8Array(0);
    this.digests = new Uint8Array(0);
    this.expected = new Uint8Array(0);
    this.failures = new Uint8Array(0);
    this.verified = 0;
    this.bytesVerified = 0;
    this.bytesReceived = 0;
    this.chunksResumed = 0;
    this.bytesResumed = 0;
    this.chunksFailed = 0;
    this.chunksRefetched = 0;
    this.reconnects = 0;
    this.es = null;
    this.esFailures = 0;
    this.attempt = 0;
    this.ranges = new Set();
    this.queue = [];
    this.drainRun = null;
    this.stallTimer = null;
    this.retryTimer = null;
    this.nextText = 0;
    this.textPending = new Map();
    this.samples = [];
    this.startedAt = nowMs();
    this.finishedAt = null;
    this.lastProgress = 0;
    this.noticesOn = false; // the worker's notices are for this run's store (see _notice)
  }

  /** Which transport carries the download: 'worker' or 'eventsource'. */
  get transportKind() {
    return this.transport ? 'worker' : 'eventsource';
  }

  _log(/** @type {string} */ msg) {
    this.opts.log?.(msg);
  }

  /**
   * Moves to `state` (throws on a transition state.js does not allow) and
   * tells the caller.
   * @param {import('./state.js').State} state @param {string} [message]
   */
  _setState(state, message = '') {
    checkMove(this.state, state);
    this.state = state;
    this.opts.onstate?.(state, message);
  }

  /** @param {string} path @param {Record<string, string|number|undefined>} q */
  _url(path, q) {
    const u = new URL(path, this.base);
    for (const [k, v] of Object.entries(this.opts.params ?? {})) u.searchParams.set(k, v);
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    return u.href;
  }

  /** Fetches and checks the manifest (see protocol.js). */
  async fetchManifest() {
    return fetchManifest({ fetch: this.fetch, url: this._url('api/manifest', { file: this.name }), origin: this.base.origin, name: this.name, timeout: this.stallTimeout });
  }


  /** @param {number} i */
  span(i) {
    return span(/** @type {Manifest} */ (this.manifest), i);
  }

  /**
   * Runs the download. Resolves once it is under way (or finished); the
   * outcome is `done`. Only an idle download starts: call `restart()` to
   * start over, `resume()` to continue after a pause or an error.
   */
  async start() {
    if (this.state !== 'idle') return;
    const gen = this.gen;
    this._setState('manifest', 'fetching the manifest');
    try {
      const { m, expected } = await this.fetchManifest();
      if (gen !== this.gen) return;
      await this._begin(m, expected);
    } catch (e) {
      if (gen === this.gen) this._fatal(asError(e));
    }
  }

  /** @param {Manifest} m @param {Uint8Array} expected */
  async _begin(m, expected) {
    const gen = this.gen;
    this._reset();
    this.manifest = m;
    this.expected = expected;
    this.status = new Uint8Array(m.chunks);
    this.digests = new Uint8Array(m.chunks * 32);
    this.failures = new Uint8Array(m.chunks);
    this._setState('opening', 'opening storage');
    if (!this.store) {
      this.store = chooseStore(m.name, m.size, this.opts);
    }
    /** @type {Map<number, Uint8Array>} */
    let have;
    try {
      have = await this.store.open(m);
    } catch (e) {
      // OPFS can fail (e.g. the file is open in another tab): fall back if we chose it.
      if (this.store.kind === 'opfs' && (this.opts.store ?? 'auto') === 'auto' && IdbStore.supported()) {
        this._log(`OPFS unavailable (${asError(e).message}); using IndexedDB`);
        this.store = new IdbStore(m.name);
        try {
          have = await this.store.open(m);
        } catch (e2) {
          throw asStorageError(e2, 'opening storage (IndexedDB)');
        }
      } else {
        throw asStorageError(e, 'opening storage');
      }
    }
    if (gen !== this.gen) return;
    for (const [i, digest] of have) {
      if (i >= m.chunks || this.status[i] === CHUNK.VERIFIED) continue;
      if (!equal32(digest, this.expected, i)) continue; // the store's own check
      this.status[i] = CHUNK.VERIFIED;
      this.digests.set(digest, i * 32);
      this.verified++;
      this.bytesVerified += this.span(i).len;
      this.chunksResumed++;
      this.bytesResumed += this.span(i).len;
      this.opts.onchunk?.(i, 'verified');
    }
    const stale = /** @type {any} */ (this.store).staleVersion;
    if (stale) {
      this.opts.onchanged?.({ why: 'the stored chunks were of an older version and were discarded', oldVersion: stale, newVersion: m.version });
    }
    this._chooseTransport(); // after the stored chunks are known: the worker transport skips them
    if (this.chunksResumed) this._log(`resumed ${this.chunksResumed} verified chunks from ${this.store.kind}`);
    if (m.kind === 'text') await this._emitText(gen);
    this._attach();
    this.startedAt = nowMs(); // the speed counts the network, not opening storage
    this._progress(true);
    this._pump();
  }

  /** Picks the transport for the open store (see the file comment). */
  _chooseTransport() {
    // 'auto' by default: where it can run, the worker transport downloads
    // faster into OPFS than EventSource (145 against 121 MB/s, 256 MiB,
    // scripts/bench-browser.mjs on 2 cores) and leaves the page's main
    // thread nearly idle; EventSource is the reference, always selectable.
    const want = this.opts.transport ?? 'auto';
    const store = /** @type {any} */ (this.store);
    // A new one for each open: the storage worker lets go of a transport's port when the file closes.
    this.transport?.close();
    this.transport = null;
    if (want === 'eventsource' || (want === 'auto' && (this.opts.EventSource || this.opts.fetch))) return;
    const m = /** @type {Manifest} */ (this.manifest);
    const onDisk = new Uint8Array(Math.ceil(m.chunks / 8));
    this.status.forEach((st, i) => { if (st === CHUNK.VERIFIED) onDisk[i >> 3] |= 1 << (i & 7); });
    const t = WorkerTransport.on(store, (n) => this._notice(n), { manifest: m, expected: this.expected, onDisk }, (why) => this._transportBroken(t, why));
    this.transport = t;
    if (t) this.noticesOn = true;
    else if (want === 'worker') this._log(`the worker transport needs the OPFS store (a secure context with OPFS), not ${store?.kind}; using EventSource`);
  }

  /**
   * The worker transport's worker failed (its script did not load, say):
   * the download goes on through EventSource. What it had in hand and not
   * yet reported is fetched again; its ranges are stopped and requeued.
   * @param {WorkerTransport|null} t @param {string} why
   */
  _transportBroken(t, why) {
    if (!t || this.transport !== t) return;
    this._log(`the worker transport failed (${why}); using EventSource`);
    t.close();
    this.transport = null;
    this._closeStream();
    for (const c of this.ranges) c.abort();
    if (LIVE.has(this.state)) this._pump();
  }

  /**
   * Chunks the worker transport verified (and wrote) or found bad. Taken
   * whatever the state, once the store is open for this run: a chunk the
   * worker has recorded as verified is never reported again, so ignoring
   * one (say, while paused) would leave it missing for good. Notices from
   * before the store was (re)opened are dropped (`noticesOn`).
   * @param {import('./transport/sink.js').Notice} n
   */
  _notice(n) {
    const m = this.manifest;
    if (!m || !this.noticesOn) return;
    this.bytesReceived += n.bytes;
    const gen = this.gen;
    n.verified.forEach((i, k) => {
      if (i >= m.chunks || this.status[i] === CHUNK.VERIFIED) return;
      const again = this.failures[i] > 0;
      this.status[i] = CHUNK.VERIFIED;
      this.digests.set(n.digests.subarray(k * 32, k * 32 + 32), i * 32);
      this.verified++;
      this.bytesVerified += this.span(i).len;
      this.attempt = 0;
      this.esFailures = 0;
      if (again) this.chunksRefetched++;
      this.opts.onchunk?.(i, 'received');
      this.opts.onchunk?.(i, again ? 'refetched' : 'verified');
    });
    for (const [i, text] of n.texts) this.textPending.set(i, text);
    for (const [i, why] of n.failed) if (i < m.chunks && this.status[i] !== CHUNK.VERIFIED) this._failed(i, why);
    if (this.es && n.verified.length) this._armStall();
    if (this.stats) addStat(this.stats, 'notices', 1);
    const next = () => { if (gen === this.gen) { this._progress(false); this._pump(); } };
    if (m.kind === 'text' && n.texts.length) this._emitText(gen).then(next, (e) => this._fatal(asError(e)));
    else next();
  }

  /** Whether the browser says it is offline. */
  _isOffline() {
    return typeof navigator !== 'undefined' && navigator.onLine === false;
  }

  /**
   * The scheduler: decides what to fetch next. Called after every change.
   */
  _pump() {
    const m = this.manifest;
    // Only a live download fetches, and not while the manifest is asked why a stream stopped.
    if (!m || !LIVE.has(this.state) || this.state === 'checking') return;
    const busy = this.drainRun !== null || this.queue.length > 0;
    if (this.verified === m.chunks) {
      if (!busy) this._finish();
      return;
    }
    if (this._isOffline()) {
      this._setState('offline', 'the browser is offline; waiting for the network');
      return;
    }
    if (this.retryTimer) return;
    const next = plan(this.status, { streaming: !!this.es, ranges: this.ranges.size, parallel: this.parallel, batch: this.batch, maxRange: m.max_range, maxNeed: m.max_need, busy });
    for (const [a, b] of next.ranges) this._range(a, b);
    if (next.stuck) {
      // Nothing missing, nothing in flight, yet not all verified: cannot happen; re-plan.
      for (let i = 0; i < m.chunks; i++) if (this.status[i] !== CHUNK.VERIFIED) this.status[i] = CHUNK.MISSING;
    }
    if (next.stream) this._openStream(next.stream);
  }

  /** @param {{first: number, from?: number, need?: string}} what  see plan.js */
  _openStream(what) {
    const m = /** @type {Manifest} */ (this.manifest);
    const q = { file: this.name, v: m.version, rate: this.rate || undefined, from: what.from, need: what.need };
    const url = this._url('events', q);
    this._log(`open ${url}${this.transport ? ' (worker)' : ''}`);
    const es = this.transport
      ? this.transport.stream(url, { stallTimeout: this.stallTimeout, maxLine: maxLineFor(m.chunk_size) })
      : new this.ES(url);
    this.es = es;
    const gen = this.gen;
    const mine = () => es === this.es && gen === this.gen;
    this._setState(this.verified ? 'resuming' : 'connecting', this.verified ? `resuming from chunk ${what.first}` : 'connecting');
    this._armStall();
    es.onopen = () => {
      if (!mine()) return;
      this._armStall();
      this._setState('streaming', 'receiving');
    };
    es.addEventListener('meta', (/** @type {MessageEvent} */ e) => {
      if (!mine()) return;
      this._armStall();
      try {
        const meta = JSON.parse(e.data);
        if (meta.version !== m.version) this._changed('the stream announced another version', null);
      } catch { /* a meta we cannot read changes nothing */ }
    });
    es.addEventListener('chunk', (/** @type {MessageEvent} */ e) => {
      if (!mine()) return;
      if (this.stats) {
        const t = nowMs();
        if (this.stats.lastEvent) addStat(this.stats, 'eventGap', t - this.stats.lastEvent);
        this.stats.lastEvent = t;
        addStat(this.stats, 'events', 1);
      }
      this._armStall();
      this.esFailures = 0;
      this.queue.push({ data: e.data, gen, source: 'stream' });
      this._drain();
    });
    es.addEventListener('end', () => {
      if (!mine()) return;
      this._closeStream();
      this._log('stream ended');
      this._pump();
    });
    es.addEventListener('error', (/** @type {any} */ e) => {
      if (!mine()) return;
      if (typeof e.data === 'string') {
        // The server's own `event: error`.
        let info = { code: 'unknown', error: e.data };
        try { info = JSON.parse(e.data); } catch { /* keep raw */ }
        this._closeStream();
        // `corrupt`: the server found its copy no longer matches the index it
        // served (bit rot); the manifest it builds next differs, as for a change.
        if (info.code === 'changed' || info.code === 'corrupt') this._changed(info.error || 'the file changed on the server', null);
        else this._retryLater(`the server reported: ${info.error || info.code}`);
        return;
      }
      if (e.broken) { // the worker transport: the server broke the protocol
        this._closeStream();
        this._fatal(e.broken);
        return;
      }
      if (es.readyState === 0 /* CONNECTING: the native reconnect is under way */ && ++this.esFailures < 2) {
        this.reconnects++;
        this._setState('reconnecting', 'connection lost; reconnecting');
        this._armStall();
        return;
      }
      // Closed for good (204, 412, 404, 5xx, ...) or failing again: find out why.
      this._closeStream();
      this._check('the stream stopped');
    });
  }

  _closeStream() {
    clearTimeout(this.stallTimer);
    this.stallTimer = null;
    if (this.es) {
      this.es.close();
      this.es = null;
    }
  }

  _armStall() {
    clearTimeout(this.stallTimer);
    const m = this.manifest;
    // A paced stream may legitimately be silent for a whole chunk's time
    // (keep-alive comments are invisible to EventSource).
    const paced = this.rate && m ? (2 * m.chunk_size * 1000) / this.rate + 1000 : 0;
    const ms = Math.max(this.stallTimeout, paced);
    this.stallTimer = setTimeout(() => {
      if (!this.es) return;
      this._log(`no event for ${ms} ms: reopening`);
      this._closeStream();
      this.reconnects++;
      this._setState('stalled', `no data for ${Math.round(ms / 1000)} s; reopening the stream`);
      this._retryLater('the stream stalled', 0);
    }, ms);
  }

  /**
   * After the stream stopped for good, the manifest tells why: gone (404),
   * changed (another version), or the server is down (network error).
   * @param {string} why
   */
  async _check(why) {
    if (this.state === 'checking') return;
    this._setState('checking', `${why}; asking the server why`);
    const gen = this.gen;
    // Paused, closed or failed meanwhile: the answer no longer matters.
    const stale = () => gen !== this.gen || !LIVE.has(this.state);
    try {
      const { m } = await this.fetchManifest();
      if (stale()) return;
      if (m.version !== this.manifest?.version) return this._changed('the manifest has a new version', m);
      this._retryAfterCheck(why);
    } catch (e) {
      if (stale()) return;
      const err = asError(e);
      if (err.code === 'server_down' || err.code === 'http') this._retryAfterCheck(`${why}: ${err.message}`);
      else this._fatal(err);
    }
  }

  /** Leaves `checking` (the scheduler waits while in it), then retries. @param {string} why */
  _retryAfterCheck(why) {
    if (this.state === 'checking') this._setState('reconnecting', why);
    this._retryLater(why);
  }

  /**
   * Reopens after an exponential backoff with full jitter: a random delay in
   * [0, min(max, base × 2^attempt)], so clients dropped together do not
   * return together.
   * @param {string} why @param {number} [delay]
   */
  _retryLater(why, delay) {
    if (this.retryTimer || !LIVE.has(this.state)) return;
    this.attempt++;
    if (this.attempt > this.retries) {
      this._fatal(new ChunkcastError('server_down', `${why}; gave up after ${this.retries} attempts without progress. Resume to try again.`));
      return;
    }
    const ms = delay ?? Math.random() * Math.min(this.backoffMax, this.backoffBase * 2 ** (this.attempt - 1));
    if (this.state !== 'stalled' && !this.es) this._setState('reconnecting', `${why}; retrying in ${(ms / 1000).toFixed(1)} s (attempt ${this.attempt})`);
    this._log(`${why}; retry in ${Math.round(ms)} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this._pump();
    }, ms);
  }

  /**
   * One range request `[a, b)` (see range.js), then what its outcome means for the download.
   * @param {number} a @param {number} b
   */
  async _range(a, b) {
    const m = /** @type {Manifest} */ (this.manifest);
    const gen = this.gen;
    for (let i = a; i < b; i++) this.status[i] = CHUNK.INFLIGHT;
    const ctl = new AbortController();
    this.ranges.add(ctl);
    if (!this.es) this._setState('refilling', `refetching chunks ${a}..${b - 1}`);
    let result;
    const url = this._url(`events/chunk/${a}/${b}`, { file: this.name, v: m.version });
    const common = { url, label: `${a}..${b}`, ctl, stallTimeout: this.stallTimeout, maxLine: maxLineFor(m.chunk_size) };
    try {
      result = this.transport
        ? await this.transport.range(common)
        : await fetchRange({
          ...common, fetch: this.fetch,
          onChunk: (data) => {
            if (gen !== this.gen) return;
            this.queue.push({ data, gen, source: 'range' });
            this._drain();
          },
        });
    } finally {
      this.ranges.delete(ctl);
    }
    const { failure, broken } = result;
    // Too many chunks for one response (the server's --max-range): ask for fewer.
    if (result.status === 416 && this.batch > 1) this.batch = Math.max(1, this.batch >> 1);
    if (gen !== this.gen) return;
    // Let the chunks already parsed be verified before judging what is missing.
    await this._drained();
    if (gen !== this.gen) return;
    for (let i = a; i < b; i++) if (this.status[i] === CHUNK.INFLIGHT) this.status[i] = CHUNK.QUEUED;
    if (broken) return this._fatal(broken);
    if (failure === 'changed') return this._changed('the range endpoint refused the version (412)', null);
    if (failure === 'gone') return this._fatal(new ChunkcastError('not_found', `${this.name} is no longer on the server`, { status: 404 }));
    if (failure && this.state !== 'paused') {
      this._log(failure);
      return this._retryLater(failure);
    }
    this._pump();
  }

  /**
   * Resolves once every queued event has been processed: waits on the
   * running drain (it ends only with the queue empty), no polling.
   */
  async _drained() {
    while (this.drainRun) await this.drainRun;
  }

  /**
   * Processes queued chunk events in batches: decode all, hash all at once
   * (WebCrypto runs digests off the main thread), then compare and store.
   * One drain runs at a time; `drainRun` is its promise while it runs.
   */
  _drain() {
    if (this.drainRun || this.queue.length === 0) return;
    this.drainRun = (async () => {
      try {
        while (this.queue.length) {
          // Views reserved in the store by this batch are all put or dropped by
          // the end of it, whichever way it ends.
          try { await this._batch(); } finally { this.store?.settle?.(); }
        }
      } catch (e) {
        this.drainRun = null;
        this._fatal(asError(e));
        return;
      }
      this.drainRun = null;
      this._pump();
    })();
  }

  /** Decodes, verifies and stores the next queued events. */
  async _batch() {
    const batch = this.queue.splice(0, 64);
    const gen = batch[0].gen;
    /** @type {{i: number, off: number, bytes: Uint8Array, source: string, text?: string}[]} */
    const items = [];
    for (const { data, gen: g, source } of batch) {
      if (g !== this.gen || !this.manifest) continue;
      const item = this._decode(data, source);
      if (item) items.push(item);
    }
    if (!items.length) return;
    const t0 = this.stats ? nowMs() : 0;
    const digests = await digestAll(items);
    if (this.stats) { addStat(this.stats, 'hashWait', nowMs() - t0); addStat(this.stats, 'batches', 1); addStat(this.stats, 'items', items.length); }
    if (gen !== this.gen) return;
    const good = [];
    for (let k = 0; k < items.length; k++) {
      const it = items[k];
      if (this.status[it.i] === CHUNK.VERIFIED) continue;
      if (equal32(digests[k], this.expected, it.i)) {
        const again = this.failures[it.i] > 0;
        this.status[it.i] = CHUNK.VERIFIED;
        this.digests.set(digests[k], it.i * 32);
        this.verified++;
        this.bytesVerified += it.bytes.length;
        this.attempt = 0;
        this.esFailures = 0;
        if (again) this.chunksRefetched++;
        good.push({ i: it.i, off: it.off, bytes: it.bytes, digest: digests[k] });
        if (it.text !== undefined) this.textPending.set(it.i, it.text);
        this.opts.onchunk?.(it.i, again ? 'refetched' : 'verified');
      } else {
        this._failed(it.i, `chunk ${it.i} failed verification`);
      }
    }
    if (good.length) {
      const t1 = this.stats ? nowMs() : 0;
      const store = /** @type {ChunkStore} */ (this.store);
      const t2 = this.stats ? nowMs() : 0;
      try {
        const wait = store.put(good);
        store.settle?.();
        if (wait) await wait;
      } catch (e) {
        throw asStorageError(e, 'storing verified chunks');
      }
      if (this.stats) { addStat(this.stats, 'put', t2 - t1); addStat(this.stats, 'putWait', nowMs() - t2); }
    }
    if (this.manifest?.kind === 'text') await this._emitText(gen);
    this._progress(false);
  }

  /**
   * Decodes one chunk event and checks its place; `null` for a duplicate.
   * @param {string} data @param {string} source
   */
  _decode(data, source) {
    const m = /** @type {Manifest} */ (this.manifest);
    let ev;
    const t0 = this.stats ? nowMs() : 0;
    try {
      ev = parseChunkData(data);
    } catch {
      this._log('unreadable chunk event');
      return null;
    }
    const i = ev.i;
    if (!Number.isInteger(i) || i < 0 || i >= m.chunks) {
      this._log(`chunk number ${i} is out of range`);
      return null;
    }
    if (this.status[i] === CHUNK.VERIFIED) return null;
    this.opts.onchunk?.(i, 'received');
    const { off, len } = this.span(i);
    /** @type {Uint8Array} */
    let bytes;
    /** @type {string|undefined} */
    let text;
    const room = typeof ev.b64 === 'string' ? this.store?.reserve?.(len) : null;
    try {
      if (room) {
        // Decoded where the store will write it from (see ChunkStore.reserve).
        bytes = decodeBase64Into(/** @type {string} */ (ev.b64), room) < 0 ? decodeBase64(/** @type {string} */ (ev.b64)) : room;
      } else if (typeof ev.b64 === 'string') bytes = decodeBase64(ev.b64);
      else if (typeof ev.text === 'string') { text = ev.text; bytes = new TextEncoder().encode(ev.text); }
      else throw new Error('no payload');
    } catch {
      this._failed(i, `chunk ${i} could not be decoded`);
      return null;
    }
    this.bytesReceived += bytes.length;
    if (this.stats) addStat(this.stats, 'parseDecode', nowMs() - t0);
    if (ev.off !== off || bytes.length !== len) {
      this._failed(i, `chunk ${i} has the wrong place or length`);
      return null;
    }
    return { i, off, bytes, source, text };
  }

  /**
   * A chunk failed: queue it for the range endpoint, unless it keeps failing.
   * @param {number} i @param {string} why
   */
  _failed(i, why) {
    this.chunksFailed++;
    this.failures[i] = Math.min(255, this.failures[i] + 1);
    this._log(why);
    this.opts.onchunk?.(i, 'failed');
    if (this.failures[i] >= this.maxChunkFailures) {
      this._fatal(new ChunkcastError('corrupt', `chunk ${i} failed verification ${this.failures[i]} times; the server's copy may be damaged`));
      return;
    }
    // A chunk still being delivered by the range request that asked for it is
    // requeued when that request completes.
    if (this.status[i] !== CHUNK.INFLIGHT) this.status[i] = CHUNK.QUEUED;
  }

  /** Delivers verified text in order, from the first chunk not yet delivered. @param {number} gen */
  async _emitText(gen) {
    const m = /** @type {Manifest} */ (this.manifest);
    while (this.nextText < m.chunks && this.status[this.nextText] === CHUNK.VERIFIED && gen === this.gen) {
      const i = this.nextText;
      let text = this.textPending.get(i);
      if (text === undefined) {
        const { off, len } = this.span(i);
        let bytes;
        try {
          bytes = await /** @type {ChunkStore} */ (this.store).read(i, off, len);
        } catch (e) {
          throw asStorageError(e, `reading chunk ${i} back from storage`);
        }
        text = new TextDecoder().decode(bytes);
        if (gen !== this.gen || this.nextText !== i) return;
      }
      this.textPending.delete(i);
      this.nextText = i + 1;
      this.opts.ontext?.(text, { i, offset: this.span(i).off });
    }
  }

  /** @param {boolean} force */
  _progress(force) {
    const now = nowMs();
    if (!force && now - this.lastProgress < (this.opts.progressInterval ?? 100)) return;
    if (this.stats) addStat(this.stats, 'progress', 1);
    this.lastProgress = now;
    this.opts.onprogress?.(this.progress());
  }

  /** @returns {Progress} */
  progress() {
    const m = this.manifest;
    const now = nowMs();
    const net = this.bytesVerified;
    this.samples.push({ t: now, b: net });
    while (this.samples.length > 2 && now - this.samples[0].t > 3000) this.samples.shift();
    const first = this.samples[0];
    const dt = (now - first.t) / 1000;
    const resumedBytes = this.samples.length > 1 ? net - first.b : 0;
    const speed = dt > 0.05 ? resumedBytes / dt : 0;
    const size = m?.size ?? 0;
    const left = size - this.bytesVerified;
    const elapsed = ((this.finishedAt ?? now) - this.startedAt) / 1000;
    const fresh = this.bytesVerified - this.bytesResumed;
    return {
      name: this.name,
      state: this.state,
      size,
      chunks: m?.chunks ?? 0,
      chunksVerified: this.verified,
      bytesVerified: this.bytesVerified,
      chunksResumed: this.chunksResumed,
      chunksFailed: this.chunksFailed,
      chunksRefetched: this.chunksRefetched,
      bytesReceived: this.bytesReceived,
      reconnects: this.reconnects,
      bytesPerSecond: speed,
      eta: left <= 0 ? 0 : speed > 0 ? left / speed : null,
      percent: size ? (100 * this.bytesVerified) / size : m ? 100 : 0,
      elapsed,
      averageBytesPerSecond: elapsed > 0 ? fresh / elapsed : 0,
    };
  }

  /** Every chunk is verified: prove the whole, then hand out the result. */
  async _finish() {
    if (this.state === 'verifying' || this.state === 'done') return;
    const m = /** @type {Manifest} */ (this.manifest);
    const gen = this.gen;
    this._closeStream();
    this._setState('verifying', 'proving the whole file');
    try {
      const root = await rootOf(this.digests);
      if (root !== m.root) throw new ChunkcastError('corrupt', `the verified chunks hash to ${root}, not the manifest's root ${m.root}`);
      let total = 0;
      for (let i = 0; i < m.chunks; i++) total += this.span(i).len;
      if (total !== m.size) throw new ChunkcastError('corrupt', `the chunks add up to ${total} bytes, not ${m.size}`);
      const store = /** @type {ChunkStore} */ (this.store);
      let blob;
      try {
        await store.flush();
        blob = await store.blob(this.opts.type);
      } catch (e) {
        throw asStorageError(e, 'assembling the file from storage');
      }
      if (blob.size !== m.size) throw new ChunkcastError('corrupt', `the assembled file has ${blob.size} bytes, not ${m.size}`);
      if (gen !== this.gen) return;
      this.blob = blob;
      this.finishedAt = nowMs();
      this._detach();
      this._setState('done', 'verified');
      this._progress(true);
      const result = { blob, manifest: m };
      this.opts.ondone?.(result);
      this._resolve?.(result);
    } catch (e) {
      this._fatal(asError(e));
    }
  }

  /**
   * The file changed on the server: drop what we have, tell the caller, and
   * start over only if asked.
   * @param {string} why @param {Manifest|null} fresh
   */
  async _changed(why, fresh) {
    if (!LIVE.has(this.state) && this.state !== 'paused') return;
    // A deleted file also stops the stream as "changed": only the manifest
    // tells gone (404) from changed (another version), so ask it first.
    if (!fresh && (await this._gone())) return;
    const old = this.manifest?.version ?? '';
    this.gen++;
    this._stopNetwork();
    this._detach();
    this._setState('changed', `${this.name} changed on the server (${why})`);
    try { await this.store?.discard(); } catch (e) { this._log(`discard failed: ${asError(e).message}`); }
    let newVersion = fresh?.version ?? null;
    if (!fresh) {
      try { newVersion = (await this.fetchManifest()).m.version; } catch { /* reported below if we restart */ }
    }
    if (this.state !== 'changed') return; // closed meanwhile
    this.opts.onchanged?.({ why, oldVersion: old, newVersion });
    if (this.opts.restartOnChange) {
      this._restartNow();
    } else {
      const err = new ChunkcastError('changed', `${this.name} changed on the server while downloading; the stale chunks were discarded. Restart to download the new version.`);
      this.opts.onerror?.(err);
      this._reject?.(err);
    }
  }

  /**
   * Whether the file is gone from the server (its manifest answers 404); if
   * so the download ends with `not_found`, its chunks kept for the caller to
   * clear. Network stops while asking, so nothing more arrives meanwhile.
   */
  async _gone() {
    const gen = ++this.gen;
    this._stopNetwork();
    if (this.state !== 'paused') this._setState('checking', 'the server stopped the stream; asking whether the file changed or is gone');
    let err = null;
    try { await this.fetchManifest(); } catch (e) { err = asError(e); }
    if (gen !== this.gen) return true; // closed meanwhile
    if (err?.code !== 'not_found') return false;
    this._fatal(err);
    return true;
  }

  _restartNow() {
    this.gen++;
    this._stopNetwork();
    checkMove(this.state, 'idle');
    this.state = 'idle'; // silently: start() announces 'manifest' at once
    this.start();
  }

  /** Starts over from the manifest (after `changed`, or an error). */
  restart() {
    this._newDone();
    this._restartNow();
    return this.done;
  }

  /** @param {ChunkcastError} err */
  _fatal(err) {
    // Already ended (done, changed, closed, error): a late failure changes nothing.
    if (!canMove(this.state, 'error')) return;
    this._stopNetwork();
    this._detach();
    this._setState('error', err.message);
    this.store?.flush().catch(() => {});
    this.opts.onerror?.(err);
    this._reject?.(err);
  }

  _stopNetwork() {
    this._closeStream();
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const c of this.ranges) c.abort();
  }

  /** Follows the browser's online/offline events while the download is live. */
  _attach() {
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this._onOnline);
      globalThis.addEventListener('offline', this._onOffline);
    }
  }

  /**
   * Stops following them: on EVERY terminal state (done, error, changed,
   * closed). A listener left behind after a failure once turned an
   * `offline` -> `online` pair into a restart against a discarded store.
   */
  _detach() {
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this._onOnline);
      globalThis.removeEventListener('offline', this._onOffline);
    }
  }

  _offline() {
    if (!LIVE.has(this.state)) return;
    this._stopNetwork();
    this._setState('offline', 'the browser is offline; waiting for the network');
  }

  _online() {
    if (this.state !== 'offline') return;
    this.attempt = 0;
    this._setState('reconnecting', 'back online; resuming');
    this._pump();
  }

  /** Stops the network without losing anything; `resume()` continues. */
  pause() {
    if (!LIVE.has(this.state)) return;
    this._stopNetwork();
    this.store?.flush().catch(() => {});
    this._setState('paused', 'paused');
    this._progress(true);
  }

  resume() {
    if (this.state === 'error' && this.manifest) {
      // After giving up (e.g. server down), resuming tries again from what is verified.
      this._newDone();
    } else if (this.state !== 'paused') {
      return;
    }
    this.attempt = 0;
    this._attach();
    this._setState('resuming', 'resuming');
    if (this.manifest) this._pump();
  }

  /**
   * Cuts the live connection as a network drop would; the download then
   * resumes by itself from the first missing chunk. For demonstrations.
   */
  dropConnection() {
    if (!this.es && this.ranges.size === 0) return false;
    this._stopNetwork();
    this.reconnects++;
    this._retryLater('the connection was dropped', Math.random() * this.backoffBase);
    return true;
  }

  /**
   * Changes the pace asked of the server (bytes/s, 0 = as fast as possible);
   * the stream is reopened from the first missing chunk.
   * @param {number} rate
   */
  setRate(rate) {
    this.rate = rate > 0 ? rate : 0;
    if (this.es) {
      this._closeStream();
      this._pump();
    }
  }

  /** Stops everything; stored chunks stay for a later resume. */
  async close() {
    if (this.state === 'closed') return;
    this.gen++;
    this._stopNetwork();
    this._detach();
    const wasDone = this.state === 'done';
    this._setState('closed', 'closed');
    if (!wasDone) this._reject?.(new ChunkcastError('closed', 'the download was closed'));
    this.transport?.close();
    this.transport = null;
    try { await this.store?.flush(); await this.store?.close(); } catch { /* nothing left to save */ }
  }

  /** The verified file. */
  async result() {
    const { blob, manifest } = await this.done;
    return typeof File === 'function' ? new File([blob], baseName(manifest.name), { type: blob.type }) : blob;
  }

  /**
   * Starts the browser's save of the verified file. The object URL points at
   * the stored Blob (on disk for OPFS/IndexedDB), so nothing is copied into
   * memory.
   * @param {string} [filename]
   */
  async save(filename) {
    const { blob, manifest } = await this.done;
    return saveBlob(blob, filename || baseName(manifest.name));
  }
}

/** @param {Record<string, number>} stats @param {string} k @param {number} v */
function addStat(stats, k, v) {
  stats[k] = (stats[k] || 0) + v;
}

function nowMs() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
