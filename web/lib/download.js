// @ts-check
/** @file One file's download: its lifecycle and public API (start, pause, resume, restart, close, the result), and what a change or a failure means for it; the scheduler, the ledger and the transport do the rest. */
//
// How a download flows:
//   manifest (`/api/manifest`) -> store.open() (verified chunks already on
//   disk, if any) -> the event stream on `/events` (`from=` for one missing tail,
//   `need=` for scattered gaps; see plan.js) -> a transport decodes each
//   chunk, checks its SHA-256 against the MANIFEST's digest (never only the
//   one in the event) and stores it -> its notice marks it verified in the
//   ledger -> ... -> every chunk verified -> the computed digests must hash
//   to `root` and the sizes add up to `size` -> result as a Blob/File.
//
// Who does what:
//   - this file: the state (state.js), starting, pausing, resuming and
//     closing, what a change or a failure means (`changed`, `gone`), the
//     whole-file proof and the result;
//   - scheduler.js: what to fetch next (plan.js), the stream and its
//     events, range refills, stalls, reconnects with backoff;
//   - ledger.js: each chunk's state, digests, counters and progress;
//   - text.js: a text file's chunks to `ontext`, in order;
//   - transport/: what carries the chunks ('worker' or 'eventsource', see
//     transport/index.js), behind one interface (transport/interface.js):
//     this file never asks which one it drives.
//
// Failures and how they are met:
//   - a dropped stream: the transport reconnects by itself with
//     Last-Event-ID (the primary resume path); if that fails twice in a row,
//     or the connection is closed for good (204, 412, 404, 5xx), we take over
//     and reopen from the first missing chunk after an exponential backoff
//     with full jitter;
//   - silence: no event for `stallTimeout` ms -> reopen from the first missing;
//   - a chunk that fails verification: refetched through the range endpoint
//     `/events/chunk/<start>/<end>` in batches, `parallel` requests at most;
//   - a changed file (412, `event: error` code `changed`, another version):
//     the download moves to the new manifest, keeping every verified chunk
//     it repeats (delta.js) and fetching the rest (`onchanged` says how many
//     were kept), as on resuming stored chunks of an older version; a file
//     that is gone (the manifest answers 404) ends with `not_found`;
//   - a transport that fails (the worker transport's script did not load,
//     say): the download goes on through EventSource (`broken`).

import { ChunkcastError, asError, asStorageError } from './errors.js';
import { ChunkLedger } from './ledger.js';
import { LiveTail, liveState } from './live.js';
import { settings } from './options.js';
import { fetchManifest, span } from './protocol.js';
import { baseName, saveBlob } from './save.js';
import { Scheduler } from './scheduler.js';
import { addStat, nowMs } from './stats.js';
import { LIVE, canMove, checkMove } from './state.js';
import { chooseStore, openStore } from './store/index.js';
import { TextAssembler } from './text.js';
import { openTransport } from './transport/index.js';

/** @typedef {import('./protocol.js').Manifest} Manifest */
/** @typedef {import('./store/index.js').ChunkStore} ChunkStore */
/** @typedef {import('./options.js').DownloadOptions} DownloadOptions */
/** @typedef {import('./ledger.js').Progress} Progress */
/** @typedef {import('./transport/interface.js').Transport} Transport */
/** @typedef {import('./transport/interface.js').Notice} Notice */

/**
 * Changes in a row, without a chunk fetched in between, before the download
 * gives up with `changed`: a file rewritten faster than one chunk arrives
 * would otherwise keep it moving from version to version for ever.
 */
const MAX_CHANGES = 8;

/**
 * What `onchanged` is told: the download moved from `oldVersion` to
 * `newVersion`, keeping `kept` of the new version's `total` chunks.
 * @typedef {{why: string, oldVersion: string, newVersion: string, kept: number, total: number, stored: boolean, textFrom?: number}} Change
 */

/**
 * One file's download. `start()` runs it; `done` settles with the result.
 */
export class Download {
  /** @type {ChunkLedger} this run's chunks; see _newRun() */ ledger;
  /** @type {number} when onprogress was last called */ lastProgress;
  /** @type {Promise<{blob: Blob, manifest: Manifest}>} settles with the verified file; see _newDone() */ done;
  /** @type {(r: {blob: Blob, manifest: Manifest}) => void} */ _resolve;
  /** @type {(e: ChunkcastError) => void} */ _reject;
  /** @type {Blob|undefined} the verified file, once done */ blob;

  /** @param {string} name  the file's name as `/api/files` lists it @param {DownloadOptions} [opts] */
  constructor(name, opts = {}) {
    this.name = name;
    this.opts = opts;
    this.set = settings(opts);
    this.base = this.set.base;
    /** @type {Record<string, number>|null} */
    this.stats = this.set.stats;
    /** @type {Manifest|null} */
    this.manifest = null;
    /** @type {ChunkStore|null} */
    this.store = null;
    /** @type {Transport|null} what carries this run's chunks (transport/index.js) */
    this.transport = null;
    /** @type {LiveTail|null} a live text's publication (live.js): its state, growth and end; null for a file */
    this.live = null;
    /** @type {import('./state.js').State} the one state; see state.js for the transitions */
    this.state = 'idle';
    this.gen = 0; // bumped on changed/close: work of an older generation is dropped
    this.changes = 0; // changes in a row without a chunk fetched (see MAX_CHANGES)
    /** what to fetch next, and the connections that fetch it */
    this.scheduler = new Scheduler(this);
    this._newDone();
    this._newRun(null, new Uint8Array(0));
    this._onOnline = () => this._online();
    this._onOffline = () => this._offline();
  }

  _newDone() {
    this.done = new Promise((resolve, reject) => { this._resolve = resolve; this._reject = reject; });
    this.done.catch(() => {}); // callers may ignore it; the failure also goes to onerror
  }

  /** A fresh run's bookkeeping. @param {Manifest|null} m @param {Uint8Array} expected */
  _newRun(m, expected) {
    this.ledger = new ChunkLedger(m, expected, { maxChunkFailures: this.set.maxChunkFailures, onchunk: this.opts.onchunk, log: (s) => this._log(s) });
    /** @type {TextAssembler|null} */
    this.text = null;
    this.scheduler.reset();
    this.lastProgress = 0;
  }

  /** Which transport carries the download: 'worker' or 'eventsource'. */
  get transportKind() {
    return this.transport?.kind ?? 'eventsource';
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
    return fetchManifest({ fetch: this.set.fetch, url: this._url('api/manifest', { file: this.name }), origin: this.base.origin, name: this.name, timeout: this.set.stallTimeout });
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

  /**
   * A run on `m`: storage opened (verified chunks already there count), then
   * the network. `from` is the version a change found while downloading
   * moves from (see _changed).
   * @param {Manifest} m @param {Uint8Array} expected
   * @param {{why: string, oldVersion: string}|null} [from]
   */
  async _begin(m, expected, from = null) {
    const gen = this.gen;
    const was = { ledger: this.ledger, told: this.text?.next ?? 0 };
    this._newRun(m, expected);
    if (from) { // the network's counters go on across the change
      this.ledger.bytesReceived = was.ledger.bytesReceived;
      this.ledger.reconnects = was.ledger.reconnects;
    }
    this.manifest = m;
    this.live = m.live ? new LiveTail(this, liveState(m.state)) : null;
    if (!m.live && m.state === 'abandoned') this.opts.onlive?.('abandoned'); // a finished publication says how it ended
    this.transport?.close(); // the last run's transport served the last open of the store; its news is not this run's
    this.transport = null;
    this._setState('opening', 'opening storage');
    this.store ??= chooseStore(m.name, m.size, this.opts, !!m.live);
    const store = await openStore(m, this.store, this.opts, (s) => this._log(s));
    this.store = store.store;
    if (gen !== this.gen) return;
    this.ledger.resume(store.have);
    this.text = new TextAssembler(this.ledger, store.store, this.opts.ontext);
    if (from) this.text.carryOver(was.told);
    const stale = /** @type {any} */ (this.store).staleVersion;
    const change = from ?? (stale ? { why: 'the stored chunks were of an older version', oldVersion: stale } : null);
    if (change && change.oldVersion !== m.version) {
      /** @type {Change} */
      const info = { ...change, newVersion: m.version, kept: this.ledger.chunksResumed, total: m.chunks, stored: !from };
      if (m.kind === 'text') info.textFrom = this.text.next;
      this._log(`${this.name} changed (${change.why}): kept ${info.kept} of ${info.total} chunks`);
      this.opts.onchanged?.(info);
    }
    this._useTransport(this.opts.transport); // after the stored chunks are known: the worker transport skips them
    if (this.ledger.chunksResumed) this._log(`resumed ${this.ledger.chunksResumed} verified chunks from ${store.store.kind}`);
    if (m.kind === 'text') await this.text.emit(() => gen === this.gen);
    this._attach();
    this.ledger.startClock(); // the speed counts the network, not opening storage
    this._progress(true);
    this.scheduler.pump();
  }

  /**
   * Makes this run's transport (transport/index.js). Its notices count only
   * while it is the one in use; if it breaks, EventSource takes over.
   * @param {import('./transport/index.js').TransportKind|undefined} want
   */
  _useTransport(want) {
    const m = /** @type {Manifest} */ (this.manifest);
    const ledger = this.ledger;
    /** @type {Transport|null} */
    let t = null;
    t = openTransport(want, {
      manifest: m,
      get expected() { return ledger.expected; }, // a live text's grows
      extend: (ev) => this.live?.extend(ev) ?? false,
      store: /** @type {ChunkStore} */ (this.store),
      isVerified: (i) => ledger.isVerified(i),
      notice: (n) => { if (t === this.transport) this._notice(n); },
      fail: (e) => { if (t === this.transport) this._fatal(e); },
      broken: (why) => { if (t === this.transport) this._transportBroken(why); },
      log: (s) => this._log(s),
    }, { EventSource: this.set.EventSource, fetch: this.set.fetch, own: this.set.own, stats: this.stats, raw: this.set.raw });
    this.transport = t;
  }

  /**
   * The transport failed (the worker transport's script did not load, say):
   * the download goes on through EventSource. What it had in hand and not
   * yet reported is fetched again; its ranges are stopped and requeued.
   * @param {string} why
   */
  _transportBroken(why) {
    this._log(`the ${this.transportKind} transport failed (${why}); using EventSource`);
    this.transport?.close();
    this._useTransport('eventsource');
    this.scheduler.cut();
    if (LIVE.has(this.state)) this.scheduler.pump();
  }

  /**
   * Chunks the transport received, verified (and stored) or found bad.
   * Taken whatever the state: a chunk the worker transport has stored is
   * never reported again, so ignoring one (say, while paused) would leave
   * it missing for good.
   * @param {Notice} n
   */
  _notice(n) {
    const m = this.manifest;
    if (!m) return;
    const gen = this.gen;
    const { fresh, fatal } = this.ledger.take(n);
    for (const [i, text] of n.texts) this.text?.add(i, text);
    if (fresh) { this.scheduler.progressed(); this.changes = 0; }
    if (this.scheduler.es && n.verified.length) this.scheduler.armStall();
    if (this.stats) addStat(this.stats, 'notices', 1);
    if (fatal) this._fatal(fatal);
    // Planned again once nothing received waits to be verified (until then
    // those chunks count as missing, and would be asked for twice).
    const next = () => { if (gen === this.gen) { this._progress(false); if (!this.transport?.busy()) this.scheduler.pump(); } };
    if (m.kind === 'text' && n.texts.length && this.text) this.text.emit(() => gen === this.gen).then(next, (e) => this._fatal(asError(e)));
    else next();
  }

  /** @param {boolean} force */
  _progress(force) {
    const now = nowMs();
    if (!force && now - this.lastProgress < this.set.progressInterval) return;
    if (this.stats) addStat(this.stats, 'progress', 1);
    this.lastProgress = now;
    this.opts.onprogress?.(this.progress());
  }

  /** @returns {Progress} */
  progress() {
    return this.ledger.progress(this.name, this.state, this.live?.state ?? null);
  }

  /** Every chunk is verified: prove the whole, then hand out the result. */
  async _finish() {
    if (this.state === 'verifying' || this.state === 'done') return;
    const m = /** @type {Manifest} */ (this.manifest);
    const gen = this.gen;
    this.scheduler.closeStream();
    this._setState('verifying', 'proving the whole file');
    try {
      await this.ledger.prove();
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
      this.ledger.stopClock();
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
   * The file changed on the server: `fresh` is its new manifest (the
   * scheduler asked for it, and so told a change from a file that is gone).
   * The download moves to the new version (_begin), the store keeping each
   * verified chunk the new manifest repeats (delta.js), and fetches the rest.
   * @param {string} why @param {{m: Manifest, expected: Uint8Array}} fresh
   */
  async _changed(why, fresh) {
    if (!LIVE.has(this.state)) return; // paused meanwhile: resume() meets the change again
    const old = /** @type {Manifest} */ (this.manifest);
    const gen = this._nextGen();
    this.scheduler.stop();
    if (++this.changes > MAX_CHANGES) {
      return this._fatal(new ChunkcastError('changed', `${this.name} changed on the server ${MAX_CHANGES} times in a row before another chunk could be fetched. Try again once it stops changing.`));
    }
    this._setState('changed', `${this.name} changed on the server (${why}); keeping the chunks the new version repeats`);
    // What was verified is on disk before the store moves to the new version.
    try { await this.store?.flush(); } catch (e) { this._log(`flush failed: ${asError(e).message}`); }
    if (gen !== this.gen) return;
    try {
      await this._begin(fresh.m, fresh.expected, { why, oldVersion: old.version });
    } catch (e) {
      if (gen === this.gen) this._fatal(asError(e));
    }
  }

  /** A new generation: what is under way for the old one is dropped. */
  _nextGen() {
    this.transport?.drop();
    return ++this.gen;
  }

  _restartNow() {
    this._nextGen();
    this.changes = 0;
    this.scheduler.stop();
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
    // Already ended (done, closed, error): a late failure changes nothing.
    if (!canMove(this.state, 'error')) return;
    this.scheduler.stop();
    this._detach();
    this._setState('error', err.message);
    this.store?.flush().catch(() => {});
    this.opts.onerror?.(err);
    this._reject?.(err);
  }

  /** Follows the browser's online/offline events while the download is live. */
  _attach() {
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this._onOnline);
      globalThis.addEventListener('offline', this._onOffline);
    }
  }

  /**
   * Stops following them: on EVERY terminal state (done, error, closed).
   * A listener left behind after a failure once turned an `offline` ->
   * `online` pair into a restart against a discarded store.
   */
  _detach() {
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this._onOnline);
      globalThis.removeEventListener('offline', this._onOffline);
    }
  }

  _offline() {
    if (!LIVE.has(this.state)) return;
    this.scheduler.stop();
    this._setState('offline', 'the browser is offline; waiting for the network');
  }

  _online() {
    if (this.state !== 'offline') return;
    this.scheduler.attempt = 0;
    this._setState('reconnecting', 'back online; resuming');
    this.scheduler.pump();
  }

  /** Stops the network without losing anything; `resume()` continues. */
  pause() {
    if (!LIVE.has(this.state)) return;
    this.scheduler.stop();
    this.store?.flush().catch(() => {});
    this._setState('paused', 'paused');
    this._progress(true);
  }

  resume() {
    if (this.state === 'reconnecting' && this.scheduler.retryNow()) return; // waiting out a backoff: try now
    if (this.state === 'error' && this.manifest) {
      // After giving up (e.g. server down), resuming tries again from what is verified.
      this._newDone();
    } else if (this.state !== 'paused') {
      return;
    }
    this.scheduler.attempt = 0;
    this._attach();
    this._setState('resuming', 'resuming');
    if (this.manifest) this.scheduler.pump();
  }

  /** Cuts the live connection as a network drop would; the download then resumes by itself from the first missing chunk. For demonstrations. */
  dropConnection() {
    return this.scheduler.dropConnection();
  }

  /**
   * Changes the pace asked of the server (bytes/s, 0 = as fast as possible);
   * the stream is reopened from the first missing chunk.
   * @param {number} rate
   */
  setRate(rate) {
    this.scheduler.setRate(rate);
  }

  /** Stops everything; stored chunks stay for a later resume. */
  async close() {
    if (this.state === 'closed') return;
    this._nextGen();
    this.scheduler.stop();
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
