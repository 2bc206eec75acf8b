// @ts-check
/** @file A response body cut into pieces of the lengths asked for (raw.js: a `/files` body into the manifest's chunks), read into one reusable buffer. */
//
// Why one buffer of our own, read into with a BYOB reader: a default
// reader hands out every read in a new ArrayBuffer, which the browser
// allocates, fills and we then copy from; reading into the same buffer
// again and again leaves the copy into the sink's stage as the only one.
// Measured in Chromium 156, in a worker, 1 GiB from /files: 2.1 s with
// the default reader, 1.5 s into a 4 MiB buffer. A read into a buffer
// transfers it (the old ArrayBuffer is detached, its memory comes back in
// the read's view), so a piece handed out is valid only until the next
// `take`. Where a body cannot be read BYOB (not a byte stream) its reads
// are copied in.
// Why not read straight into the sink's stage and save that copy: a read
// takes its buffer, and one that fails (a cut, a stall, a pause) never
// gives it back, so the whole chunks staged there would be lost and asked
// for again; the copy costs 0.16 CPU s per GiB (reading in place went 3%
// faster in an A/B run of scripts/bench-browser.mjs).

/** @typedef {{done: boolean, value?: Uint8Array}} Read */

export class BodyCutter {
  /**
   * @param {ReadableStream<Uint8Array>} body
   * @param {Uint8Array} buf  the buffer to read into; at least twice the longest piece asked for
   *   (the caller keeps `buffer` for the next body: it may be another ArrayBuffer by then)
   * @param {() => void} [onRead]  after each read that brought bytes (the caller's stall clock)
   */
  constructor(body, buf, onRead) {
    this.buffer = buf;
    this.onRead = onRead;
    /** bytes [start, fill) of `buffer` are read and not yet handed out */
    this.start = 0;
    this.fill = 0;
    this.done = false;
    /** @type {Uint8Array|null} the part of a default reader's read that did not fit */
    this.carry = null;
    /** Milliseconds spent waiting for reads, and their count. */
    this.waitMs = 0;
    this.reads = 0;
    try {
      /** @type {ReadableStreamBYOBReader|null} */
      this.byob = body.getReader({ mode: 'byob' });
      this.reader = null;
    } catch {
      this.byob = null;
      this.reader = body.getReader();
    }
  }

  /**
   * The next `len` bytes, or null when the body ends first (the bytes short
   * of `len` are dropped). The view is valid until the next call.
   * @param {number} len
   * @returns {Promise<Uint8Array|null>}
   */
  async take(len) {
    while (this.fill - this.start < len) {
      if (this.done) return null;
      await this._read();
    }
    const piece = this.buffer.subarray(this.start, this.start + len);
    this.start += len;
    return piece;
  }

  /** Whether the body ends here (false: more bytes follow). */
  async ended() {
    while (this.fill === this.start && !this.done) await this._read();
    return this.fill === this.start;
  }

  /** Lets the body go (the request is aborted by its caller). */
  release() {
    try { (this.byob ?? this.reader)?.releaseLock(); } catch { /* a read is pending: the abort ends it */ }
  }

  async _read() {
    const size = this.buffer.length;
    // Room at the end: what is left unread moves to the front when little remains.
    if (size - this.fill < size / 4 || this.start === this.fill) {
      this.buffer.copyWithin(0, this.start, this.fill);
      this.fill -= this.start;
      this.start = 0;
    }
    const t0 = performance.now();
    if (this.byob) {
      /** @type {Read} */
      const r = await this.byob.read(new Uint8Array(this.buffer.buffer, this.fill, size - this.fill));
      this.waitMs += performance.now() - t0;
      this.reads++;
      if (r.value) this.buffer = new Uint8Array(r.value.buffer, 0, size); // the same memory, handed back
      if (r.done) { this.done = true; return; }
      this.fill += /** @type {Uint8Array} */ (r.value).length;
    } else {
      let value = this.carry;
      this.carry = null;
      if (!value) {
        /** @type {Read} */
        const r = await /** @type {ReadableStreamDefaultReader<Uint8Array>} */ (this.reader).read();
        this.waitMs += performance.now() - t0;
        this.reads++;
        if (r.done) { this.done = true; return; }
        value = /** @type {Uint8Array} */ (r.value);
      }
      const n = Math.min(value.length, size - this.fill);
      this.buffer.set(value.subarray(0, n), this.fill);
      this.fill += n;
      if (n < value.length) this.carry = value.subarray(n);
    }
    this.onRead?.();
  }
}
