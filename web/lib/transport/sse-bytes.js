// @ts-check
/** @file An SSE parser over bytes (for the worker transport): each byte is scanned once, and an event's data is handed on as bytes, never as a string built by concatenation. Pure, no I/O. */
//
// Why not lib/sse.js here: it decodes every read into a string and appends
// it to what is buffered, so a 350 KB chunk event arriving in 64 KiB reads is
// copied into a new string at each read, then sliced, then parsed. This
// parser keeps the reads as they are (the body's reader hands out a fresh
// buffer each time, so views into it stay valid), finds line ends with
// `indexOf` from where the last search stopped, and copies a line only when
// it spans reads, once, into a buffer that is reused. The consumer gets the
// data as a Uint8Array view and decodes only what it needs (the chunk
// header as JSON, the base64 straight into its target).
//
// The rules are the HTML standard's, as in sse.js: lines end in CRLF, LF or
// CR (a CR at the end of a read may be half of a CRLF); `:` starts a
// comment; `data` lines join with LF; an event is dispatched at a blank line
// and only with data; `id` without NUL sets the last event id (kept across
// events); `retry` with only digits sets the reconnection time; a partial
// event at the end of the stream is dropped, and the last event id is the
// one of the last event that ended (a blank line), not of a cut one. A line, or one event's data,
// longer than `maxLine` bytes is a `protocol` error: the buffer is bounded.

import { ChunkcastError } from '../errors.js';

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;

/** The longest line by default: enough for 16 MiB chunks (see sse.js maxLineFor). */
export const DEFAULT_MAX_LINE = 100 << 20;

const ascii = new TextDecoder();

/**
 * @typedef {Object} ByteEvent
 * @property {string} type  `message` when the event names none
 * @property {Uint8Array} data  a view, valid only during the callback (the
 *   buffer behind it may be reused for the next event)
 * @property {string} id  the last event id (of this event, or of an earlier one)
 */

export class ByteSseParser {
  /**
   * @param {(ev: ByteEvent) => void} onEvent
   * @param {{maxLine?: number, onRetry?: (ms: number) => void}} [opts]
   */
  constructor(onEvent, opts = {}) {
    this.onEvent = onEvent;
    this.onRetry = opts.onRetry;
    this.maxLine = opts.maxLine ?? DEFAULT_MAX_LINE;
    /** @type {Uint8Array} a line that spans reads is gathered here */
    this.line = new Uint8Array(0);
    this.lineLen = 0;
    /** @type {Uint8Array|null} a spare line buffer, handed back after an event used the other */
    this.spare = null;
    /** @type {WeakSet<ArrayBufferLike>} the line buffers this parser made (the others are the reads) */
    this.mine = new WeakSet();
    this.pendingCR = false; // the last read ended in CR: an LF first in the next is its other half
    this.type = '';
    /** @type {Uint8Array[]} data lines of the event being read */
    this.data = [];
    this.dataLength = 0;
    this.idBuffer = ''; // set by `id` lines; becomes lastId when an event ends
    this.lastId = '';
    /** @type {number|null} */
    this.retry = null;
  }

  /** @param {Uint8Array} bytes  one read; must not be modified afterwards (views into it may be kept) */
  push(bytes) {
    let pos = 0;
    const n = bytes.length;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (n > 0 && bytes[0] === LF) pos = 1;
    }
    // Where the next LF and CR are in this read (-1: none after the scan point):
    // each is searched for again only once passed, so a read is scanned once.
    let lf = bytes.indexOf(LF, pos);
    let cr = bytes.indexOf(CR, pos);
    while (pos < n) {
      if (lf >= 0 && lf < pos) lf = bytes.indexOf(LF, pos);
      if (cr >= 0 && cr < pos) cr = bytes.indexOf(CR, pos);
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (end < 0) {
        this._gather(bytes.subarray(pos));
        return;
      }
      let next = end + 1;
      if (bytes[end] === CR) {
        if (end + 1 < n) { if (bytes[end + 1] === LF) next = end + 2; } else this.pendingCR = true;
      }
      if (this.lineLen) {
        this._gather(bytes.subarray(pos, end));
        const whole = this.line.subarray(0, this.lineLen);
        this.lineLen = 0;
        this._line(whole, true);
      } else {
        this._line(bytes.subarray(pos, end), false);
      }
      pos = next;
    }
  }

  /** The stream ended: an unterminated line is a line; a partial event is dropped. */
  end() {
    if (this.lineLen) {
      const whole = this.line.subarray(0, this.lineLen);
      this.lineLen = 0;
      this._line(whole, true);
    }
    this.data = [];
    this.dataLength = 0;
    this.type = '';
  }

  /** Appends part of a line that continues in the next read. @param {Uint8Array} part */
  _gather(part) {
    const need = this.lineLen + part.length;
    if (need > this.maxLine) this._tooLong('a line', need);
    if (need > this.line.length) {
      // Grows by doubling (amortized linear), from a size that fits one chunk event.
      const bigger = new Uint8Array(Math.min(this.maxLine, Math.max(need, 2 * this.line.length, 64 << 10)));
      bigger.set(this.line.subarray(0, this.lineLen));
      this.mine.add(bigger.buffer);
      this.line = bigger;
    }
    this.line.set(part, this.lineLen);
    this.lineLen = need;
  }

  /** @param {string} what @param {number} n */
  _tooLong(what, n) {
    this.lineLen = 0;
    this.data = [];
    this.dataLength = 0;
    throw new ChunkcastError('protocol', `the server sent ${what} longer than ${this.maxLine} bytes (${n} buffered) in an event stream; it is not speaking the chunkcast protocol`);
  }

  /**
   * One line, without its end. `owned`: it lies in `this.line`, which is
   * then given to the event (if it is data) and replaced by the spare.
   * @param {Uint8Array} line @param {boolean} owned
   */
  _line(line, owned) {
    if (line.length === 0) return this._dispatch();
    if (line[0] === COLON) return; // a comment (keep-alive)
    let colon = line.indexOf(COLON);
    if (colon < 0) colon = line.length;
    let v = colon + 1;
    if (v < line.length && line[v] === SPACE) v++;
    const value = line.subarray(Math.min(v, line.length));
    const f = line.subarray(0, colon);
    if (isField(f, 'data')) {
      this.dataLength += value.length + 1;
      if (this.dataLength > this.maxLine) this._tooLong('an event', this.dataLength);
      this.data.push(value);
      if (owned) {
        // The value is a view into the line buffer: the buffer goes with it.
        this.line = this.spare ?? new Uint8Array(0);
        this.spare = null;
      }
    } else if (isField(f, 'event')) {
      this.type = ascii.decode(value);
    } else if (isField(f, 'id')) {
      if (value.indexOf(0) < 0) this.idBuffer = ascii.decode(value);
    } else if (isField(f, 'retry')) {
      if (value.length && value.every((b) => b >= 48 && b <= 57)) {
        this.retry = Number(ascii.decode(value));
        this.onRetry?.(this.retry);
      }
    }
  }

  _dispatch() {
    const parts = this.data;
    const type = this.type || 'message';
    this.data = [];
    this.dataLength = 0;
    this.type = '';
    // The id counts only once its event is whole: a reconnect after a cut in
    // the middle of an event asks again for that event (the standard's rule).
    this.lastId = this.idBuffer;
    if (!parts.length) return;
    let data = parts[0];
    if (parts.length > 1) {
      data = new Uint8Array(parts.reduce((s, p) => s + p.length + 1, -1));
      let o = 0;
      parts.forEach((p, k) => { if (k) data[o++] = LF; data.set(p, o); o += p.length; });
    }
    this.onEvent({ type, data, id: this.lastId });
    // The line buffer that held the data serves the next long line.
    const back = parts[0].buffer;
    if (parts.length === 1 && !this.spare && this.mine.has(back) && back !== this.line.buffer) this.spare = new Uint8Array(back);
  }
}

/** Whether the bytes `f` spell the ASCII `name`. @param {Uint8Array} f @param {string} name */
function isField(f, name) {
  if (f.length !== name.length) return false;
  for (let k = 0; k < f.length; k++) if (f[k] !== name.charCodeAt(k)) return false;
  return true;
}
