// @ts-check
/** @file A streaming SSE parser (for whatever reads an event stream through fetch: the range refills, the worker transport) and the chunk event's data. */

import { ChunkcastError } from './errors.js';

/** The line limit when none is given: enough for 16 MiB chunks (see {@link maxLineFor}). */
export const DEFAULT_MAX_LINE = 100 << 20;

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;

/**
 * The longest line (and event) a well-behaved server sends for chunks of
 * `chunkSize` bytes, plus room to spare: a text chunk's JSON escapes can
 * take 6 characters per byte (`\u0001`), base64 takes 4 per 3, the header
 * a few hundred. Anything longer is a broken or hostile server, and an SSE
 * parser that buffered it would grow without limit.
 * @param {number} chunkSize
 */
export function maxLineFor(chunkSize) {
  return 6 * chunkSize + (4 << 20);
}

/**
 * Follows the HTML standard's rules ("server-sent events", "interpreting an
 * event stream"): the bytes are UTF-8 (decoded as they come, a character
 * split across reads included); lines end in CRLF, LF or CR (a CR at the
 * end of a read may be half of a CRLF); `:` starts a comment; `data` lines
 * join with LF; an event is dispatched at a blank line and only with data;
 * `id` without NUL sets the last event id, which counts once its event has
 * ended (a reconnect after a cut in the middle of an event asks again for
 * that event); `retry` with only digits sets the reconnection time; a
 * partial event at the end of the stream is dropped. A line, or the data of
 * one event, longer than `maxLine` characters is a `protocol` error: the
 * buffer is bounded.
 *
 * Why it is fast (it carries every chunk of the worker transport and the
 * range refills): each read is decoded once, and line ends are found with
 * the string's own `indexOf` from where the last search stopped, so each
 * character is looked at once (V8 searches a string for one character with
 * memchr: 340 MiB in 5 ms in Chromium 148, against 300 ms for
 * Uint8Array.prototype.indexOf, which is why an earlier parser over bytes
 * cost more than the decoding it saved). A line that spans reads is kept as
 * pieces and joined once, when its end arrives; the fields are slices of
 * it, so a chunk's base64 reaches `setFromBase64` without another copy.
 */
export class SseParser {
  /**
   * @param {(ev: {type: string, data: string, id: string}) => void} onEvent
   * @param {{maxLine?: number, onRetry?: (ms: number) => void}} [opts]
   */
  constructor(onEvent, opts = {}) {
    this.onEvent = onEvent;
    this.onRetry = opts.onRetry;
    this.maxLine = opts.maxLine ?? DEFAULT_MAX_LINE;
    this.decoder = new TextDecoder();
    /** @type {string[]} the pieces of a line that continues in the next read */
    this.parts = [];
    this.partsLength = 0;
    this.pendingCR = false; // the last read ended in CR: an LF first in the next is its other half
    this.type = '';
    /** @type {string[]} data lines of the event being read */
    this.data = [];
    this.dataLength = 0;
    this.idBuffer = ''; // set by `id` lines; becomes lastId when an event ends
    this.lastId = '';
    /** @type {number|null} */
    this.retry = null;
  }

  /** @param {Uint8Array} bytes */
  push(bytes) {
    this._feed(this.decoder.decode(bytes, { stream: true }));
  }

  /** The stream ended: an unterminated line is a line; a partial event is dropped. */
  end() {
    this._feed(this.decoder.decode());
    if (this.parts.length) {
      const line = this.parts.join('');
      this.parts = [];
      this.partsLength = 0;
      this._line(line);
    }
    this.data = [];
    this.dataLength = 0;
    this.type = '';
  }

  /** @param {string} s  the text of one read */
  _feed(s) {
    let pos = 0;
    const n = s.length;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (n > 0 && s.charCodeAt(0) === LF) pos = 1;
    }
    // Where the next LF and CR are (-1: none after the scan point): each is
    // searched for again only once passed, so the text is scanned once.
    let lf = s.indexOf('\n', pos);
    let cr = s.indexOf('\r', pos);
    while (pos < n) {
      if (lf >= 0 && lf < pos) lf = s.indexOf('\n', pos);
      if (cr >= 0 && cr < pos) cr = s.indexOf('\r', pos);
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (end < 0) {
        this._gather(pos ? s.slice(pos) : s);
        return;
      }
      let next = end + 1;
      if (s.charCodeAt(end) === CR) {
        if (end + 1 < n) { if (s.charCodeAt(end + 1) === LF) next = end + 2; } else this.pendingCR = true;
      }
      let line = s.slice(pos, end);
      if (this.parts.length) {
        this.parts.push(line);
        line = this.parts.join('');
        this.parts = [];
        this.partsLength = 0;
      }
      this._line(line);
      pos = next;
    }
  }

  /** Keeps part of a line that continues in the next read. @param {string} piece */
  _gather(piece) {
    this.partsLength += piece.length;
    if (this.partsLength > this.maxLine) this._tooLong('a line', this.partsLength);
    this.parts.push(piece);
  }

  /** @param {string} what @param {number} n */
  _tooLong(what, n) {
    this.parts = [];
    this.partsLength = 0;
    this.data = [];
    this.dataLength = 0;
    throw new ChunkcastError('protocol', `the server sent ${what} longer than ${this.maxLine} characters (${n} buffered) in an event stream; it is not speaking the chunkcast protocol`);
  }

  /** One line, without its end. @param {string} line */
  _line(line) {
    if (line === '') return this._dispatch();
    if (line.charCodeAt(0) === COLON) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === SPACE) value = value.slice(1);
    if (field === 'data') {
      // Many short data lines make one long event: bound that too.
      this.dataLength += value.length + 1;
      if (this.dataLength > this.maxLine) this._tooLong('an event', this.dataLength);
      this.data.push(value);
    } else if (field === 'event') {
      this.type = value;
    } else if (field === 'id') {
      if (!value.includes('\0')) this.idBuffer = value;
    } else if (field === 'retry' && /^\d+$/.test(value)) {
      this.retry = Number(value);
      this.onRetry?.(this.retry);
    }
  }

  _dispatch() {
    const parts = this.data;
    const type = this.type || 'message';
    this.data = [];
    this.dataLength = 0;
    this.type = '';
    this.lastId = this.idBuffer;
    if (!parts.length) return;
    this.onEvent({ type, data: parts.length === 1 ? parts[0] : parts.join('\n'), id: this.lastId });
  }
}

/**
 * A chunk event's data: `{"i","off","len","sha256","b64"|"text"}`. The header
 * is parsed with JSON.parse, but the base64 payload (the bulk) is sliced out
 * rather than run through the JSON parser: the base64 alphabet needs no
 * escaping, so the slice is exact.
 * @param {string} data
 * @returns {{i: number, off: number, len: number, sha256: string, b64?: string, text?: string}}
 */
export function parseChunkData(data) {
  const k = data.indexOf(',"b64":"');
  if (k > 0 && data.endsWith('"}')) {
    const head = JSON.parse(data.slice(0, k) + '}');
    head.b64 = data.slice(k + 8, data.length - 2);
    return head;
  }
  return JSON.parse(data);
}
