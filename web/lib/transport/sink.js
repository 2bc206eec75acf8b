// @ts-check
/** @file Where the worker transport's chunk events go: decoded into a staging buffer, hashed with WebCrypto, handed a few MiB at a time to the storage worker to write, and reported to the page in batches. */
//
// One chunk event, in the transport worker (workers/transport.js):
//   data (a string from sse.js) -> the header `{"i","off","len","sha256"`
//   parsed as JSON (a few hundred bytes; parseChunkData) -> the base64
//   after `"b64":"` (a slice of the event, not a copy) decoded into the next
//   free span of the staging buffer (`setFromBase64`: no allocation per
//   chunk) -> SHA-256 (Chromium 156 hashes within the `digest` call, 0.2 ms
//   per 256 KiB here; the promise only brings the result) ->
//   when the buffer is full, or the stream pauses, the chunks in it whose
//   digest equals the MANIFEST's are handed to the storage worker (`put`,
//   the buffer transferred, no copy), which writes them through the OPFS
//   sync handle (consecutive ones in one write), records them as on disk
//   and hands the buffer back (`written`) -> only then is the page told the
//   chunk is verified.
// Why two workers: a write through the sync handle, and the flush that
// precedes each record of what is on disk, block the thread that makes
// them; with the reading, parsing, decoding and hashing on the same thread,
// the stream stood still meanwhile (the write alone took a third of that
// thread's time here). Now the storage worker writes while this one reads.
// The raw path (raw.js) skips the first steps: a chunk's bytes, cut from a
// `/files` body, are copied into the stage (`raw`), and the rest is the
// same: hashed, compared with the manifest's digest, put, told.
// A chunk counts as in hand (a second copy is dropped) from the moment it is
// staged until the storage worker has written it or its digest failed; the
// page hears only which chunks were verified or failed (and a text chunk's
// text, for `ontext`), a few times a second.

import { decodeBase64Into, equal32 } from '../bytes.js';
import { span } from '../protocol.js';
import { parseChunkData } from '../sse.js';

/** Bytes of digests in flight at most (at least two chunks) before the reader waits: bounds the copies a WebCrypto that hashes later holds (Chromium's hashes within the call). */
const MAX_IN_FLIGHT_BYTES = 8 << 20;
/** Bytes staged per put (at least one chunk). */
const STAGE_BYTES = 4 << 20;
/**
 * Bytes of staging buffers handed to the storage worker and not yet back,
 * at most, before the reader waits (at least 3 buffers). Enough to read on
 * while the storage worker flushes the file (every 500 ms, ~75 ms here at
 * ~400 MB/s: 30 MB arrive meanwhile); 12 MiB stalled the whole pipeline at
 * each flush (the CPU idle for it), 32 MiB went ~3% faster on 1 GiB
 * (scripts/bench-browser.mjs, A/B runs).
 */
const MAX_SHIPPED_BYTES = 32 << 20;
/** A stage not yet full is handed over this soon anyway (a paced stream still reaches the disk). */
const STAGE_MS = 30;
/** How often the page hears about verified chunks while they stream in. */
const NOTICE_MS = 40;

/** @typedef {import('./interface.js').Notice} Notice  what the page is told, batched */

/**
 * @typedef {Object} Staged  a chunk in a staging buffer
 * @property {number} i
 * @property {number} off  in the file
 * @property {number} at  in the buffer
 * @property {number} len
 * @property {string|undefined} text
 * @property {boolean} raw  read raw (raw.js)
 * @property {Promise<Uint8Array|null>} digest  null when it could not be computed
 */

/** @typedef {{i: number, off: number, at: number, len: number}} PutItem  as the storage worker's `put` takes it */

/**
 * @typedef {Object} SinkTarget
 * @property {{kind: string, size: number, chunks: number, chunk_size: number, offsets?: number[]|null}} manifest
 * @property {Uint8Array} expected  the manifest's digests, 32 bytes per chunk
 * @property {Uint8Array} [onDisk]  a bitmap of the chunks already verified on disk when the sink was made
 * @property {(buf: ArrayBuffer, list: PutItem[]) => void} put  hands verified chunks to storage, the buffer transferred; `written(buf)` follows
 * @property {(n: Notice) => void} post
 * @property {(bytes: Uint8Array) => Promise<ArrayBuffer>} [digest]  SHA-256; WebCrypto by default
 */

export class ChunkSink {
  // What the next notice carries, reset by _clear().
  /** @type {number[]} */ received;
  /** @type {number[]} */ verified;
  /** @type {Uint8Array[]} */ digestParts;
  /** @type {[number, string][]} */ failed;
  /** @type {[number, string][]} */ texts;
  /** @type {number} */ bytes;

  /** @param {SinkTarget} t */
  constructor(t) {
    this.t = t;
    this.digest = t.digest ?? ((/** @type {Uint8Array} */ b) => crypto.subtle.digest('SHA-256', /** @type {BufferSource} */ (b)));
    const m = t.manifest;
    /** Chunks written and verified (by this sink or before it). */
    this.onDisk = new Uint8Array(Math.ceil(m.chunks / 8));
    if (t.onDisk) this.onDisk.set(t.onDisk.subarray(0, this.onDisk.length));
    /** @type {Set<number>} chunks staged, being hashed or being written */
    this.pending = new Set();
    this.inflightBytes = 0;
    this.maxInflight = Math.max(MAX_IN_FLIGHT_BYTES, 2 * m.chunk_size);
    this.stageSize = Math.max(STAGE_BYTES, m.chunk_size);
    this.maxShipped = Math.max(3, Math.floor(MAX_SHIPPED_BYTES / this.stageSize));
    /** @type {ArrayBuffer[]} staging buffers back from the storage worker */
    this.spare = [];
    this.stage = new Uint8Array(this.stageSize);
    this.used = 0;
    /** @type {Staged[]} the chunks in the stage, in order */
    this.staged = [];
    /** @type {any} */
    this.stageTimer = null;
    /** @type {{verified: Staged[], digests: Uint8Array[], settled: Promise<void>, done: () => void}[]} stages handed over and not yet written, in order: each with what settles it */
    this.shipped = [];
    /** Stages whose digests are still being awaited before their put. */
    this.hashing = 0;
    /** @type {Promise<void>} puts go out in stage order (each waits for its digests, not for the put before it to be written) */
    this.chain = Promise.resolve();
    /** @type {(() => void)[]} who waits for room */
    this.roomWaiters = [];
    /** chunks read raw that failed verification so far (raw.js falls back to the event stream when this grows) */
    this.rawFailures = 0;
    this.decoder = new TextDecoder();
    this._clear();
    /** @type {any} */
    this.timer = null;
    this.closed = false;
    /** Milliseconds in each step, for the benchmark. */
    this.timing = { parseMs: 0, decodeMs: 0, digestMs: 0, puts: 0, chunks: 0 };
  }

  _clear() {
    this.received = [];
    this.verified = [];
    this.digestParts = [];
    this.failed = [];
    this.texts = [];
    this.bytes = 0;
  }

  /** @param {number} i */
  isVerified(i) {
    return (this.onDisk[i >> 3] & (1 << (i & 7))) !== 0;
  }

  /** Chunk `i` is verified, or being hashed or written: a copy of it is dropped. @param {number} i */
  inHand(i) {
    return this.isVerified(i) || this.pending.has(i);
  }

  /**
   * One `chunk` event's data (see sse.js: the base64 in it is a slice, not a copy).
   * @param {string} data
   */
  chunk(data) {
    if (this.closed) return;
    const m = this.t.manifest;
    const t0 = performance.now();
    /** @type {{i: number, off: number, b64?: string, text?: string}} */
    let head;
    try {
      head = parseChunkData(data);
    } catch {
      return; // unreadable: as the page's parser, dropped (the chunk stays missing)
    }
    const { b64, text } = head;
    const i = head.i;
    if (!Number.isInteger(i) || i < 0 || i >= m.chunks) return;
    if (this.isVerified(i) || this.pending.has(i)) return; // a copy already in hand
    this.received.push(i);
    this._soon();
    const { off, len } = span(m, i);
    this.timing.parseMs += performance.now() - t0;
    if (this.used + len > this.stage.length) this._ship();
    const at = this.used;
    const target = this.stage.subarray(at, at + len);
    const t1 = performance.now();
    let ok = false;
    let got = 0;
    try {
      if (typeof b64 === 'string') {
        const n = decodeBase64Into(b64, target); // -1: not exactly `len` bytes
        ok = n === len;
        got = n >= 0 ? n : (b64.length >> 2) * 3; // about, when it does not fit
      } else if (typeof text === 'string') {
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
    this.timing.decodeMs += performance.now() - t1;
    if (!ok || /** @type {any} */ (head).off !== off) {
      this._fail(i, `chunk ${i} has the wrong place or length`);
      return;
    }
    this._stage(i, off, len, text, false);
  }

  /**
   * Chunk `i`'s bytes, read raw (raw.js cuts them from a `/files` body):
   * copied into the stage, then hashed, verified and put as a decoded
   * chunk. False when the chunk is in hand already, out of range, or
   * `bytes` is not its length.
   * @param {number} i @param {Uint8Array} bytes
   */
  raw(i, bytes) {
    const m = this.t.manifest;
    if (this.closed || !Number.isInteger(i) || i < 0 || i >= m.chunks || this.inHand(i)) return false;
    const { off, len } = span(m, i);
    if (bytes.length !== len) return false;
    if (this.used + len > this.stage.length) this._ship();
    const t1 = performance.now();
    this.stage.set(bytes, this.used);
    this.timing.decodeMs += performance.now() - t1;
    this.received.push(i);
    this.bytes += len;
    this._soon();
    this._stage(i, off, len, undefined, true);
    return true;
  }

  /**
   * Chunk `i`, its bytes in the stage at `used`: its SHA-256 started, and
   * staged for the next put.
   * @param {number} i @param {number} off @param {number} len @param {string|undefined} text
   * @param {boolean} raw  read raw: a failure counts in `rawFailures`
   */
  _stage(i, off, len, text, raw) {
    const t2 = performance.now();
    const at = this.used;
    this.inflightBytes += len;
    const digest = this.digest(this.stage.subarray(at, at + len)).then( // copies its input now
      (d) => new Uint8Array(d),
      () => null,
    ).finally(() => { this.inflightBytes -= len; this._roomMaybe(); });
    this.timing.digestMs += performance.now() - t2;
    this.used += len;
    this.staged.push({ i, off, at, len, text, raw, digest });
    this.pending.add(i);
    this.timing.chunks++;
    if (!this.stageTimer) this.stageTimer = setTimeout(() => { this.stageTimer = null; this._ship(); }, STAGE_MS);
  }

  /**
   * Hands the stage over: once its digests are in, the chunks that match
   * go to the storage worker in one put (the others fail and are let go);
   * the page hears of them when the storage worker has written them.
   */
  _ship() {
    clearTimeout(this.stageTimer);
    this.stageTimer = null;
    const list = this.staged;
    if (!list.length || this.closed) return;
    const buf = this.stage.buffer;
    this.staged = [];
    this.used = 0;
    this.stage = new Uint8Array(this.spare.pop() ?? new ArrayBuffer(this.stageSize));
    this.hashing++;
    const digests = Promise.all(list.map((e) => e.digest));
    // In stage order: every put goes out after the one before it.
    this.chain = this.chain.then(() => digests).then((dgs) => {
      this.hashing--;
      if (this.closed) return;
      /** @type {Staged[]} */
      const good = [];
      /** @type {Uint8Array[]} */
      const goodDigests = [];
      const text = this.t.manifest.kind === 'text';
      list.forEach((e, k) => {
        const dg = dgs[k];
        if (dg && equal32(dg, this.t.expected, e.i)) {
          // A raw text chunk's text, for `ontext` (chunks end on a character boundary), before the buffer goes.
          if (text && e.text === undefined) e.text = this.decoder.decode(new Uint8Array(buf, e.at, e.len));
          good.push(e);
          goodDigests.push(dg);
        } else {
          this.pending.delete(e.i);
          if (e.raw) this.rawFailures++;
          this._fail(e.i, `chunk ${e.i} failed verification`);
        }
      });
      if (!good.length) {
        this.spare.push(buf);
        this._roomMaybe();
        return;
      }
      /** @type {() => void} */
      let done = () => {};
      /** @type {Promise<void>} */
      const settled = new Promise((resolve) => { done = () => resolve(undefined); });
      this.shipped.push({ verified: good, digests: goodDigests, settled, done });
      this.timing.puts++;
      this.t.put(buf, good.map(({ i, off, at, len }) => ({ i, off, at, len })));
    });
  }

  /**
   * The storage worker wrote the oldest put still out (puts are answered
   * in order): its chunks are verified, and its buffer free again.
   * @param {ArrayBuffer} [buf]
   */
  written(buf) {
    const s = this.shipped.shift();
    if (buf && buf.byteLength === this.stageSize && this.spare.length < this.maxShipped) this.spare.push(buf);
    if (!s) return;
    s.done();
    this._roomMaybe();
    if (this.closed) return;
    s.verified.forEach((e, k) => {
      this.pending.delete(e.i);
      this.onDisk[e.i >> 3] |= 1 << (e.i & 7);
      this.verified.push(e.i);
      this.digestParts.push(s.digests[k]);
      if (e.text !== undefined) this.texts.push([e.i, e.text]);
    });
    this._soon();
  }

  /** @param {number} i @param {string} why */
  _fail(i, why) {
    this.failed.push([i, why]);
    this._soon();
  }

  _full() {
    return this.inflightBytes > this.maxInflight || this.shipped.length + this.hashing >= this.maxShipped;
  }

  /** A promise to wait on before reading more (too many digests or puts out), else null. */
  room() {
    if (this.closed || !this._full()) return null;
    return new Promise((resolve) => { this.roomWaiters.push(() => resolve(undefined)); });
  }

  _roomMaybe() {
    if (this.roomWaiters.length && (this.closed || !this._full())) for (const w of this.roomWaiters.splice(0)) w();
  }

  /** Resolves once every chunk received so far is hashed, written and the page told (or the sink is closed). */
  async idle() {
    this._ship();
    await this.chain;
    await Promise.all(this.shipped.map((s) => s.settled));
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
    if (this.closed || (!this.received.length && !this.verified.length && !this.failed.length && !this.bytes)) return;
    const digests = new Uint8Array(this.digestParts.length * 32);
    this.digestParts.forEach((d, k) => digests.set(d, k * 32));
    this.t.post({ received: this.received, verified: this.verified, digests, failed: this.failed, texts: this.texts, bytes: this.bytes });
    this._clear();
  }

  /** Drops what is in flight (storage closed or discarded): nothing more is handed over or reported. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.stageTimer);
    for (const s of this.shipped.splice(0)) s.done();
    this._roomMaybe();
  }
}
