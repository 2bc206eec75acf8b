// @ts-check
/** @file The chunk ledger of one download run: each chunk's state, the digests computed, the counters, and the progress they make; the one place a chunk becomes verified. */
//
// What changes it: the chunks storage already holds (`resume`), and the
// transports' notices (`take`: received, verified, failed; interface.js),
// whichever transport sends them; the scheduler (scheduler.js) marks
// chunks in flight and queued through `status` (plan.js's states) and
// reads it to plan what to fetch next.

import { equal32 } from './bytes.js';
import { ChunkcastError } from './errors.js';
import { CHUNK } from './plan.js';
import { span } from './protocol.js';
import { rootOf } from './sha256.js';
import { nowMs } from './stats.js';

/** @typedef {import('./protocol.js').Manifest} Manifest */
/** @typedef {import('./transport/interface.js').Notice} Notice */
/** @typedef {'received'|'verified'|'failed'|'refetched'|'missing'} ChunkNews */

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
 * @property {import('./live.js').LiveState|null} live  a live text's state (live.js): `size` and
 *   `chunks` are what was sealed so far while it is `live` or `interrupted`; null for a file
 */

/** How far back the speed looks, in ms. */
const SPEED_WINDOW_MS = 3000;

export class ChunkLedger {
  // The counters, as Progress reports them.
  /** chunks verified, from storage or the network */ verified = 0;
  /** their bytes */ bytesVerified = 0;
  /** payload bytes received over the network */ bytesReceived = 0;
  /** chunks found verified in storage at the start */ chunksResumed = 0;
  /** their bytes */ bytesResumed = 0;
  /** verification failures seen */ chunksFailed = 0;
  /** chunks verified after a failure */ chunksRefetched = 0;
  /** reconnects and reopened streams */ reconnects = 0;
  /** @type {{t: number, b: number}[]} recent (time, bytes verified) samples for the speed; at most a window's worth */ samples = [];
  /** when the network part started (see startClock) */ startedAt = nowMs();
  /** @type {number|null} when the download was done */ finishedAt = null;
  /** @type {{expected: Uint8Array, status: Uint8Array, digests: Uint8Array, failures: Uint8Array}} the buffers, `room` chunks each */ bufs;
  /** @type {Uint8Array} the manifest's digests (for a live chunk, its event's), 32 bytes per chunk */ expected;
  /** @type {Uint8Array} a {@link CHUNK} state per chunk */ status;
  /** @type {Uint8Array} the digests we computed, 32 bytes per chunk: they must hash to the manifest's root */ digests;
  /** @type {Uint8Array} failed verifications per chunk (at most 255) */ failures;

  /**
   * @param {Manifest|null} m  null before the manifest is known (everything is zero)
   * @param {Uint8Array} expected  the manifest's digests, 32 bytes per chunk
   * @param {{maxChunkFailures: number, onchunk?: (i: number, news: ChunkNews) => void, log: (msg: string) => void}} o
   */
  constructor(m, expected, o) {
    this.m = m;
    this.chunks = m?.chunks ?? 0;
    this.o = o;
    /**
     * More chunks may come (a live text, see live.js): the download is not
     * complete when every chunk known is verified, and the arrays grow.
     */
    this.growing = !!m?.live;
    // The arrays below are views of buffers with room to grow (a live text
    // adds a chunk at a time; copying them each time would cost O(n²)).
    this.room = this.chunks;
    this._buffers(expected, new Uint8Array(this.chunks), new Uint8Array(this.chunks * 32), new Uint8Array(this.chunks));
  }

  /**
   * Sets the buffers (`room` chunks each) and the views of their first `chunks`.
   * @param {Uint8Array} expected @param {Uint8Array} status @param {Uint8Array} digests @param {Uint8Array} failures
   */
  _buffers(expected, status, digests, failures) {
    this.bufs = { expected, status, digests, failures };
    const n = this.chunks;
    this.expected = expected.subarray(0, n * 32);
    this.status = status.subarray(0, n);
    this.digests = digests.subarray(0, n * 32);
    this.failures = failures.subarray(0, n);
  }

  /** Room for `n` chunks, then `n` chunks. @param {number} n */
  _resize(n) {
    const b = this.bufs;
    if (n > this.room) {
      this.room = Math.max(n, 2 * this.room, 64);
      const copy = (/** @type {Uint8Array} */ a, /** @type {number} */ per) => { const x = new Uint8Array(this.room * per); x.set(a); return x; };
      this.chunks = n;
      this._buffers(copy(b.expected, 32), copy(b.status, 1), copy(b.digests, 32), copy(b.failures, 1));
    } else {
      this.chunks = n;
      this._buffers(b.expected, b.status, b.digests, b.failures);
    }
  }

  /**
   * One more chunk, sealed after those known (a live text): missing, its
   * digest `digest`. The manifest has grown already (live.js).
   * @param {Uint8Array} digest
   */
  grow(digest) {
    const i = this.chunks;
    this._resize(i + 1);
    this.expected.set(digest, i * 32);
  }

  /**
   * The finished file's digests replace the live ones (live.js): chunks
   * past those known are missing; a verified chunk whose digest differs is
   * missing again (the stream's digest was the only one it was checked
   * against). No more chunks come. Returns how many were verified and differ.
   * @param {Uint8Array} expected  32 bytes per chunk, at least as many as known
   */
  adopt(expected) {
    this._resize(expected.length / 32);
    this.expected.set(expected);
    this.growing = false;
    let differ = 0;
    for (let i = 0; i < this.chunks; i++) {
      if (this.status[i] !== CHUNK.VERIFIED || equal32(this.digests.subarray(i * 32, i * 32 + 32), expected, i)) continue;
      this.status[i] = CHUNK.MISSING;
      this.verified--;
      this.bytesVerified -= this.span(i).len;
      this.o.onchunk?.(i, 'missing');
      differ++;
    }
    return differ;
  }

  /** @param {number} i */
  span(i) {
    return span(/** @type {Manifest} */ (this.m), i);
  }

  /** @param {number} i */
  isVerified(i) {
    return this.status[i] === CHUNK.VERIFIED;
  }

  /** Every chunk is verified, and no more will come. */
  complete() {
    return !this.growing && this.verified === this.chunks;
  }

  /**
   * The one place a chunk becomes verified: its digest (already compared
   * with the manifest's) recorded, the counters moved, the caller told.
   * False when it was verified already (a second copy changes nothing).
   * @param {number} i @param {Uint8Array} digest @param {'network'|'storage'} from
   */
  markVerified(i, digest, from) {
    if (i >= this.chunks || this.status[i] === CHUNK.VERIFIED) return false;
    const again = this.failures[i] > 0;
    const { len } = this.span(i);
    this.status[i] = CHUNK.VERIFIED;
    this.digests.set(digest, i * 32);
    this.verified++;
    this.bytesVerified += len;
    if (from === 'storage') {
      this.chunksResumed++;
      this.bytesResumed += len;
    } else if (again) {
      this.chunksRefetched++;
    }
    this.o.onchunk?.(i, again ? 'refetched' : 'verified');
    return true;
  }

  /**
   * What storage already holds, with the digests it computed on reading it
   * back: each that equals the manifest's counts as verified.
   * @param {Map<number, Uint8Array>} have
   */
  resume(have) {
    for (const [i, digest] of have) {
      if (i < this.chunks && equal32(digest, this.expected, i)) this.markVerified(i, digest, 'storage');
    }
  }

  /**
   * A chunk failed (decoding, its place, its digest): queued for the range
   * endpoint, unless it keeps failing; then the error to end the download with.
   * @param {number} i @param {string} why
   * @returns {ChunkcastError|null}
   */
  fail(i, why) {
    this.chunksFailed++;
    this.failures[i] = Math.min(255, this.failures[i] + 1);
    this.o.log(why);
    this.o.onchunk?.(i, 'failed');
    if (this.failures[i] >= this.o.maxChunkFailures) {
      return new ChunkcastError('corrupt', `chunk ${i} failed verification ${this.failures[i]} times; the server's copy may be damaged`);
    }
    // A chunk still being delivered by the range request that asked for it is
    // requeued when that request completes.
    if (this.status[i] !== CHUNK.INFLIGHT) this.status[i] = CHUNK.QUEUED;
    return null;
  }

  /**
   * A transport's notice. Returns how many chunks it verified that were not
   * verified before, and the error to end with if a chunk kept failing.
   * @param {Notice} n
   * @returns {{fresh: number, fatal: ChunkcastError|null}}
   */
  take(n) {
    this.bytesReceived += n.bytes;
    for (const i of n.received) if (i < this.chunks && !this.isVerified(i)) this.o.onchunk?.(i, 'received');
    let fresh = 0;
    n.verified.forEach((i, k) => { if (this.markVerified(i, n.digests.subarray(k * 32, k * 32 + 32), 'network')) fresh++; });
    /** @type {ChunkcastError|null} */
    let fatal = null;
    for (const [i, why] of n.failed) if (i < this.chunks && !this.isVerified(i)) fatal = this.fail(i, why) ?? fatal;
    return { fresh, fatal };
  }

  /**
   * The whole file's proof, once every chunk is verified: the digests
   * computed hash to the manifest's `root`, and the chunks' sizes add up
   * to its `size`. Rejects with `corrupt` otherwise.
   */
  async prove() {
    const m = /** @type {Manifest} */ (this.m);
    const root = await rootOf(this.digests);
    if (root !== m.root) throw new ChunkcastError('corrupt', `the verified chunks hash to ${root}, not the manifest's root ${m.root}`);
    let total = 0;
    for (let i = 0; i < m.chunks; i++) total += this.span(i).len;
    if (total !== m.size) throw new ChunkcastError('corrupt', `the chunks add up to ${total} bytes, not ${m.size}`);
  }

  /** Marks every chunk not verified as missing again (the plan found nothing to do, yet not all are verified). */
  replan() {
    for (let i = 0; i < this.chunks; i++) if (this.status[i] !== CHUNK.VERIFIED) this.status[i] = CHUNK.MISSING;
  }

  /** The speed counts the network from now, not opening storage. */
  startClock() {
    this.startedAt = nowMs();
  }

  stopClock() {
    this.finishedAt = nowMs();
  }

  /**
   * @param {string} name @param {string} state @param {import('./live.js').LiveState|null} [live]
   * @returns {Progress}
   */
  progress(name, state, live = null) {
    const m = this.m;
    const now = nowMs();
    const net = this.bytesVerified;
    this.samples.push({ t: now, b: net });
    while (this.samples.length > 2 && now - this.samples[0].t > SPEED_WINDOW_MS) this.samples.shift();
    const first = this.samples[0];
    const dt = (now - first.t) / 1000;
    const resumedBytes = this.samples.length > 1 ? net - first.b : 0;
    const speed = dt > 0.05 ? resumedBytes / dt : 0;
    const size = m?.size ?? 0;
    const left = size - this.bytesVerified;
    const elapsed = ((this.finishedAt ?? now) - this.startedAt) / 1000;
    const fresh = this.bytesVerified - this.bytesResumed;
    return {
      name,
      state,
      size,
      chunks: this.chunks,
      chunksVerified: this.verified,
      bytesVerified: this.bytesVerified,
      chunksResumed: this.chunksResumed,
      chunksFailed: this.chunksFailed,
      chunksRefetched: this.chunksRefetched,
      bytesReceived: this.bytesReceived,
      reconnects: this.reconnects,
      bytesPerSecond: speed,
      eta: this.growing ? null : left <= 0 ? 0 : speed > 0 ? left / speed : null,
      percent: size ? (100 * this.bytesVerified) / size : m ? 100 : 0,
      elapsed,
      averageBytesPerSecond: elapsed > 0 ? fresh / elapsed : 0,
      live,
    };
  }
}
