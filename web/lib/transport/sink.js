// @ts-check
/** @file Where the worker transport's chunk events go: decoded from the event's bytes into a reused staging buffer, hashed with WebCrypto, written at their place a few MiB at a time, and reported to the page in batches. */
//
// One chunk event, in the worker:
//   data bytes -> the header `{"i","off","len","sha256"` parsed as JSON (a
//   few hundred bytes) -> the base64 after `"b64":"` decoded into the next
//   free span of the staging buffer (`setFromBase64`: no allocation per
//   chunk) -> SHA-256 started (WebCrypto copies its input when called) ->
//   when the buffer is full, or the stream pauses, its chunks are written
//   (consecutive ones in one write through the OPFS sync handle: a write
//   costs about as much per call as per MiB, measured 3.5 ms for one 256 KiB
//   chunk against 84 ms for 64 MiB in 4 MiB writes) -> a chunk whose digest
//   equals the MANIFEST's and whose bytes are written is marked verified
//   (and only then recorded as on disk; see storage-worker.js).
// Writing before the digest is in is safe: a chunk's bytes land only in its
// own span, only while that chunk is neither verified nor being verified
// (a second copy arriving meanwhile is dropped), and nothing trusts the
// span until the record says it is verified; a chunk that fails is written
// again by its refill. The page hears only which chunks were verified or
// failed (and a text chunk's text, for `ontext`), a few times a second.

import { decodeBase64Into, equal32 } from '../bytes.js';
import { span } from '../protocol.js';

/** Bytes of digests in flight at most (at least two chunks) before the reader waits: bounds the copies WebCrypto holds. */
const MAX_IN_FLIGHT_BYTES = 8 << 20;
/** Bytes staged per write (at least one chunk). */
const STAGE_BYTES = 4 << 20;
/** A stage not yet full is written this soon anyway (a paced stream still reaches the disk). */
const STAGE_MS = 30;
/** How often the page hears about verified chunks while they stream in. */
const NOTICE_MS = 40;

const ascii = new TextDecoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });
const B64_KEY = ',"b64":"';

// @ts-ignore: Uint8Array.prototype.setFromBase64 is new (Chromium 140+)
const hasSetFromBase64 = typeof Uint8Array.prototype.setFromBase64 === 'function';

/**
 * @typedef {Object} Notice  what the page is told, batched
 * @property {number[]} verified  chunk numbers, in the order verified
 * @property {Uint8Array} digests  their computed digests, 32 bytes each
 * @property {[number, string][]} failed  chunk number and why
 * @property {[number, string][]} texts  a verified text chunk's text
 * @property {number} bytes  payload bytes received since the last notice
 */

/**
 * @typedef {Object} Staged  a chunk in the staging buffer
 * @property {number} i
 * @property {number} off  in the file
 * @property {number} at  in the stage
 * @property {number} len
 * @property {string|undefined} text
 * @property {boolean|null} ok  its digest matched the manifest's; null while being computed
 * @property {Uint8Array} [digest]
 * @property {boolean} written
 */

/**
 * @typedef {Object} SinkTarget  the storage the sink writes through
 * @property {{kind: string, size: number, chunks: number, chunk_size: number, offsets?: number[]|null}} manifest
 * @property {Uint8Array} expected  the manifest's digests, 32 bytes per chunk
 * @property {(i: number) => boolean} isVerified
 * @property {(off: number, bytes: Uint8Array) => void} write
 * @property {(i: number) => void} markVerified  after the digest matched
 * @property {(n: Notice) => void} post
 * @property {(bytes: Uint8Array) => Promise<ArrayBuffer>} [digest]  SHA-256; WebCrypto by default
 */

export class ChunkSink {
  // What the next notice carries, reset by _clear().
  /** @type {number[]} */ verified;
  /** @type {Uint8Array[]} */ digestParts;
  /** @type {[number, string][]} */ failed;
  /** @type {[number, string][]} */ texts;
  /** @type {number} */ bytes;

  /** @param {SinkTarget} t */
  constructor(t) {
    this.t = t;
    this.digest = t.digest ?? ((/** @type {Uint8Array} */ b) => crypto.subtle.digest('SHA-256', /** @type {BufferSource} */ (b)));
    /** @type {Set<number>} chunks whose digest is being computed */
    this.pending = new Set();
    /** @type {Set<Promise<void>>} */
    this.inflight = new Set();
    this.inflightBytes = 0;
    this.maxInflight = Math.max(MAX_IN_FLIGHT_BYTES, 2 * t.manifest.chunk_size);
    this.stage = new Uint8Array(Math.max(STAGE_BYTES, t.manifest.chunk_size));
    this.used = 0;
    /** @type {Staged[]} the chunks in the stage, in order */
    this.staged = [];
    /** @type {any} */
    this.stageTimer = null;
    this._clear();
    /** @type {any} */
    this.timer = null;
    this.closed = false;
    /** Milliseconds in each step, for the benchmark. */
    this.timing = { parseMs: 0, decodeMs: 0, writeMs: 0, writes: 0, chunks: 0 };
  }

  _clear() {
    this.verified = [];
    this.digestParts = [];
    this.failed = [];
    this.texts = [];
    this.bytes = 0;
  }

  /**
   * One `chunk` event's data, as bytes.
   * @param {Uint8Array} data
   */
  chunk(data) {
    if (this.closed) return;
    const m = this.t.manifest;
    const t0 = performance.now();
    /** @type {{i: number, off: number}} */
    let head;
    /** @type {Uint8Array|null} */
    let b64 = null;
    /** @type {string|undefined} */
    let text;
    /** @type {string|undefined} */
    let b64s;
    try {
      const k = indexOfAscii(data, B64_KEY, 1024);
      if (k > 0 && data[data.length - 2] === 34 && data[data.length - 1] === 125) {
        head = JSON.parse(`${ascii.decode(data.subarray(0, k))}}`);
        b64 = data.subarray(k + B64_KEY.length, data.length - 2);
      } else {
        const ev = JSON.parse(utf8.decode(data));
        head = ev;
        if (typeof ev.b64 === 'string') b64s = ev.b64;
        else if (typeof ev.text === 'string') text = ev.text;
      }
    } catch {
      return; // unreadable: as the page's parser, dropped (the chunk stays missing)
    }
    const i = head.i;
    if (!Number.isInteger(i) || i < 0 || i >= m.chunks) return;
    if (this.t.isVerified(i) || this.pending.has(i)) return; // a copy already in hand
    const { off, len } = span(m, i);
    if (this.used + len > this.stage.length) this._write();
    const at = this.used;
    const target = this.stage.subarray(at, at + len);
    const t1 = performance.now();
    let ok = false;
    let got = 0;
    try {
      if (b64 || b64s !== undefined) {
        const s = b64s ?? ascii.decode(/** @type {Uint8Array} */ (b64));
        got = (s.length >> 2) * 3; // about; exact when it decodes
        if (hasSetFromBase64) {
          // @ts-ignore: see hasSetFromBase64
          const r = target.setFromBase64(s);
          ok = r.read === s.length && r.written === len;
          got = r.written;
        } else {
          ok = decodeBase64Into(s, target) === len;
        }
      } else if (text !== undefined) {
        const r = new TextEncoder().encodeInto(text, target);
        got = r.written;
        ok = r.read === text.length && r.written === len;
      } else {
        this._fail(i, `chunk ${i} could not be decoded`);
        return;
      }
    } catch {
      this._fail(i, `chunk ${i} could not be decoded`);
      return;
    }
    this.bytes += got;
    const t2 = performance.now();
    this.timing.parseMs += t1 - t0;
    this.timing.decodeMs += t2 - t1;
    if (!ok || /** @type {any} */ (head).off !== off) {
      this._fail(i, `chunk ${i} has the wrong place or length`);
      return;
    }
    const digest = this.digest(target); // copies `target` now
    /** @type {Staged} */
    const e = { i, off, at, len, text, ok: null, written: false };
    this.used += len;
    this.staged.push(e);
    this.pending.add(i);
    this.inflightBytes += len;
    this.timing.chunks++;
    if (!this.stageTimer) this.stageTimer = setTimeout(() => { this.stageTimer = null; this._write(); }, STAGE_MS);
    // The digest's outcome is recorded and acted on in one step: with the
    // two apart (a `.then` and a `.finally`), a write running between them
    // saw the outcome and settled the chunk, and the `.finally` settled it
    // again, so a bad chunk was reported failed twice.
    const done = (/** @type {Uint8Array|null} */ dg) => {
      this.inflight.delete(p);
      this.inflightBytes -= len;
      e.ok = dg !== null && equal32(dg, this.t.expected, i);
      if (dg) e.digest = dg;
      if (e.written) this._settle(e);
    };
    const p = digest.then((d) => done(new Uint8Array(d)), () => done(null));
    this.inflight.add(p);
  }

  /** Writes the staged chunks (consecutive ones in one write) and settles those whose digest is in. */
  _write() {
    clearTimeout(this.stageTimer);
    this.stageTimer = null;
    const list = this.staged;
    if (!list.length || this.closed) return;
    const t0 = performance.now();
    for (let k = 0; k < list.length;) {
      const first = list[k];
      let end = k + 1;
      let len = first.len;
      while (end < list.length && list[end].at === first.at + len && list[end].off === first.off + len) len += list[end++].len;
      this.t.write(first.off, this.stage.subarray(first.at, first.at + len));
      k = end;
    }
    this.timing.writeMs += performance.now() - t0;
    this.timing.writes++;
    // The digests copied their bytes when started: the stage is free again.
    this.staged = [];
    this.used = 0;
    for (const e of list) {
      e.written = true;
      if (e.ok !== null) this._settle(e);
    }
  }

  /** A chunk both written and hashed: verified, or failed. @param {Staged} e */
  _settle(e) {
    this.pending.delete(e.i);
    if (this.closed) return;
    if (e.ok && e.digest) {
      this.t.markVerified(e.i);
      this.verified.push(e.i);
      this.digestParts.push(e.digest);
      if (e.text !== undefined) this.texts.push([e.i, e.text]);
      this._soon();
    } else {
      this._fail(e.i, `chunk ${e.i} failed verification`);
    }
  }

  /** @param {number} i @param {string} why */
  _fail(i, why) {
    this.failed.push([i, why]);
    this._soon();
  }

  /** A promise to wait on when too many digests are in flight, else null. */
  room() {
    if (this.inflightBytes <= this.maxInflight || !this.inflight.size) return null;
    return Promise.race(this.inflight).then(() => {});
  }

  /** Resolves once every chunk received so far is written and hashed, and the page told. */
  async idle() {
    this._write();
    while (this.inflight.size) await Promise.all(this.inflight);
    this.flush();
  }

  _soon() {
    if (this.verified.length >= 64 || this.failed.length) { this.flush(); return; }
    if (!this.timer) this.timer = setTimeout(() => { this.timer = null; this.flush(); }, NOTICE_MS);
  }

  /** Tells the page now. */
  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.closed || (!this.verified.length && !this.failed.length && !this.bytes)) return;
    const digests = new Uint8Array(this.digestParts.length * 32);
    this.digestParts.forEach((d, k) => digests.set(d, k * 32));
    this.t.post({ verified: this.verified, digests, failed: this.failed, texts: this.texts, bytes: this.bytes });
    this._clear();
  }

  /** Drops what is in flight (storage closed or discarded): nothing more is written or reported. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.stageTimer);
  }
}

/**
 * Where the ASCII `key` starts in the first `limit` bytes of `data`, or -1.
 * @param {Uint8Array} data @param {string} key @param {number} limit
 */
export function indexOfAscii(data, key, limit) {
  const first = key.charCodeAt(0);
  // Searched within the limit only: an indexOf over the whole event would
  // run through the payload (no comma in base64) once per chunk.
  const head = data.subarray(0, Math.min(data.length, limit));
  const stop = head.length - key.length;
  for (let k = head.indexOf(first); k >= 0 && k <= stop; k = head.indexOf(first, k + 1)) {
    let j = 1;
    while (j < key.length && data[k + j] === key.charCodeAt(j)) j++;
    if (j === key.length) return k;
  }
  return -1;
}
