// @ts-check
/** @file Live text (`serve --publish`, docs/PROTOCOL.md "Live text"): a publication followed while it is written. Its manifest grows as chunks are sealed, the producer's state is told, and at the end the finished file's manifest takes the live one's place, so the download completes, verified and stored, as any file does. */
//
// The same download, ledger and transport as a file (no second protocol
// path); what differs lives here:
//   - a chunk event past the manifest's chunks is the next sealed chunk:
//     the manifest grows by it (`extend`), its digest taken from the event,
//     as nothing earlier names it, and the ledger grows with it;
//   - `event: state` and the `state` of the manifest and `meta` are told to
//     the caller (`onlive`);
//   - the end (`event: end` with a `reason`, or a reconnect that finds the
//     publication finished: a `meta` or manifest without `live`) fetches
//     the finished manifest again, which must announce what the `end` did,
//     hold the digests the download verified (a chunk that differs is
//     fetched again) and replace the live one; the download then proves
//     the whole against its `root` and `size` as for any file.

import { digestsFromHex } from './bytes.js';
import { ChunkcastError, asError } from './errors.js';
import { LIVE } from './state.js';

/** @typedef {import('./protocol.js').Manifest} Manifest */
/**
 * Where a publication is: `live` (its producer is writing), `interrupted`
 * (the producer went away and may come back), `complete` (it ended),
 * `abandoned` (it ended because its producer never came back; the file is
 * what was sealed), `ended` (it ended, but the download did not see how:
 * it reconnected after the `end` event, and a finished manifest does not say).
 * @typedef {'live'|'interrupted'|'complete'|'abandoned'|'ended'} LiveState
 */

/**
 * How long a live stream may be silent before it is reopened, in ms. A
 * producer may pause for minutes; the server sends `: keep-alive` comments
 * every 15 s (`--keep-alive`), which EventSource does not show, so silence
 * alone proves little. Reopening a healthy stream costs one request.
 */
export const LIVE_STALL_MS = 40_000;

/** A live state's name, or null. @param {unknown} s @returns {LiveState|null} */
export function liveState(s) {
  return s === 'live' || s === 'interrupted' || s === 'complete' || s === 'abandoned' ? s : null;
}

/**
 * If chunk event `ev` is the next chunk sealed after those `m` lists, grows
 * `m` by it (in place: every part of the download reads the same manifest)
 * and returns its digest as bytes; else null.
 * @param {Manifest} m @param {{i: number, off: number, len: number, sha256: string}} ev
 * @returns {Uint8Array|null}
 */
export function extendManifest(m, ev) {
  if (!m.live || m.kind !== 'text' || ev.i !== m.chunks || ev.off !== m.size) return null;
  if (!Number.isSafeInteger(ev.len) || ev.len <= 0 || ev.len > m.chunk_size) return null;
  if (typeof ev.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(ev.sha256)) return null;
  (m.offsets ??= []).push(ev.off);
  m.hashes.push(ev.sha256);
  m.chunks += 1;
  m.size += ev.len;
  return digestsFromHex([ev.sha256]);
}

/**
 * What a live download asks of its download (download.js implements it).
 * @typedef {Object} LiveHost
 * @property {string} name
 * @property {number} gen
 * @property {import('./state.js').State} state
 * @property {Manifest|null} manifest
 * @property {import('./ledger.js').ChunkLedger} ledger
 * @property {import('./transport/interface.js').Transport|null} transport
 * @property {import('./scheduler.js').Scheduler} scheduler
 * @property {import('./options.js').DownloadOptions} opts
 * @property {() => Promise<{m: Manifest, expected: Uint8Array}>} fetchManifest
 * @property {(state: import('./state.js').State, message?: string) => void} _setState
 * @property {(err: ChunkcastError) => void} _fatal
 * @property {(msg: string) => void} _log
 */

/** One live download's publication: its state, its growth and its end. */
export class LiveTail {
  /** @param {LiveHost} dl @param {LiveState|null} state  the manifest's */
  constructor(dl, state) {
    this.dl = dl;
    /** @type {LiveState} */
    this.state = state ?? 'live';
    /** more chunks may come: the publication has not ended (as far as the download knows) */
    this.growing = true;
    /** the end is being handled (the finished manifest fetched) */
    this.ending = false;
  }

  /** The publication's state changed (or was read again). @param {LiveState} state */
  set(state) {
    if (state === this.state) return;
    this.state = state;
    this.dl._log(`the publication is ${state}`);
    this.dl.opts.onlive?.(state);
  }

  /**
   * A chunk event past the chunks known: grows the manifest and the ledger
   * when it is the next sealed chunk. @param {{i: number, off: number, len: number, sha256: string}} ev
   */
  extend(ev) {
    const m = this.dl.manifest;
    if (!m || !this.growing) return false;
    const digest = extendManifest(m, ev);
    if (!digest) return false;
    this.dl.ledger.grow(digest);
    return true;
  }

  /**
   * The publication ended: `end` is the `end` event's data (null when the
   * download found out otherwise), `fresh` the finished manifest if it is
   * already fetched. Adopts the finished manifest, then lets the download
   * complete.
   * @param {{chunks: number, root: string, reason?: string}|null} end
   * @param {{m: Manifest, expected: Uint8Array}|null} fresh
   */
  async ended(end, fresh) {
    if (!this.growing || this.ending) return;
    const dl = this.dl;
    const gen = dl.gen;
    this.ending = true;
    const reason = liveState(end?.reason);
    if (reason) this.set(reason);
    dl.scheduler.closeStream();
    if (dl.state !== 'checking') dl._setState('checking', 'the publication ended; fetching the finished file\'s manifest');
    let got = fresh;
    try {
      // The manifest turns ordinary as the end is announced; a server that
      // answers a moment too early is asked again.
      for (let k = 0; !got || got.m.live; k++) {
        if (k === 5) throw new ChunkcastError('protocol', `the stream of ${dl.name} ended, but its manifest still says it is live`);
        if (k) await new Promise((r) => setTimeout(r, 100 * k));
        got = await dl.fetchManifest();
        if (gen !== dl.gen) return;
      }
      await dl.transport?.idle(); // chunks already received are counted first
      if (gen !== dl.gen) return;
      this._adopt(got.m, got.expected, end);
    } catch (e) {
      this.ending = false;
      if (gen !== dl.gen || !LIVE.has(dl.state)) return;
      const err = asError(e);
      if (err.code !== 'server_down' && err.code !== 'http') return dl._fatal(err);
      // Not reachable now: the stream is reopened later, and ends again.
      dl._setState('reconnecting', err.message);
      dl.scheduler.retryLater(err.message);
      return;
    }
    this.growing = false;
    this.ending = false;
    if (this.state === 'live' || this.state === 'interrupted') this.set(liveState(got.m.state) ?? 'ended');
    if (!LIVE.has(dl.state)) return; // paused meanwhile: resume() completes it
    dl._setState('resuming', `the publication ended (${this.state}); completing the file`);
    dl.scheduler.pump();
  }

  /**
   * The finished manifest replaces the live one (in place), after checking
   * it is the end that was announced and extends what was verified.
   * @param {Manifest} m @param {Uint8Array} expected
   * @param {{chunks: number, root: string}|null} end
   */
  _adopt(m, expected, end) {
    const dl = this.dl;
    const live = /** @type {Manifest} */ (dl.manifest);
    const bad = (/** @type {string} */ why) => new ChunkcastError('corrupt', `the finished ${dl.name} ${why}`);
    if (end && (m.root !== end.root || m.chunks !== end.chunks)) {
      throw bad(`has ${m.chunks} chunks with root ${m.root}, not the ${end.chunks} with root ${end.root} its end announced`);
    }
    if (m.kind !== 'text' || m.chunk_size !== live.chunk_size) throw bad('is not the text that was published');
    if (m.chunks < dl.ledger.chunks) throw bad(`has ${m.chunks} chunks, fewer than the ${dl.ledger.chunks} sealed while it was live`);
    for (const k of ['live', 'state']) delete /** @type {any} */ (live)[k];
    Object.assign(live, m);
    const refetch = dl.ledger.adopt(expected);
    if (refetch) dl._log(`${refetch} chunks differ from the finished manifest; fetching them again`);
  }
}
