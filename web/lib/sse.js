// @ts-check
/** @file A streaming SSE parser (for the range endpoint, read through fetch) and the chunk event's data. */

import { ChunkcastError } from './errors.js';

/** The line limit when none is given: enough for 16 MiB chunks (see {@link maxLineFor}). */
export const DEFAULT_MAX_LINE = 100 << 20;

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
 * Follows the HTML standard's rules: lines end in CRLF, LF or CR; `:` starts
 * a comment; an event is dispatched at a blank line and only with data; a
 * partial event at the end of the stream is dropped. A line, or the data of
 * one event, longer than `maxLine` characters is a `protocol` error.
 */
export class SseParser {
  /**
   * @param {(ev: {type: string, data: string, id: string}) => void} onEvent
   * @param {{maxLine?: number}} [opts]
   */
  constructor(onEvent, opts = {}) {
    this.onEvent = onEvent;
    this.maxLine = opts.maxLine ?? DEFAULT_MAX_LINE;
    this.decoder = new TextDecoder();
    this.buf = '';
    this.scan = 0; // where the search for the next line end resumes
    this.type = '';
    /** @type {string[]} */
    this.data = [];
    this.dataLength = 0;
    this.lastId = '';
    /** @type {number|null} */
    this.retry = null;
  }

  /** @param {Uint8Array} bytes */
  push(bytes) {
    this.buf += this.decoder.decode(bytes, { stream: true });
    this._lines(false);
    // What is left is one line without its end yet: bound it.
    if (this.buf.length > this.maxLine) this._tooLong('a line');
  }

  end() {
    this.buf += this.decoder.decode();
    this._lines(true);
  }

  /** @param {string} what */
  _tooLong(what) {
    const n = this.buf.length;
    this.buf = '';
    this.scan = 0;
    this.data = [];
    this.dataLength = 0;
    throw new ChunkcastError('protocol', `the server sent ${what} longer than ${this.maxLine} characters (${n} buffered) in an event stream; it is not speaking the chunkcast protocol`);
  }

  /** @param {boolean} final */
  _lines(final) {
    const buf = this.buf;
    const re = /\r\n|\r|\n/g;
    let start = 0;
    re.lastIndex = this.scan;
    for (;;) {
      const m = re.exec(buf);
      if (!m) {
        this.scan = buf.length;
        break;
      }
      // A CR at the very end may be the first half of a CRLF split across reads.
      if (m[0] === '\r' && m.index === buf.length - 1 && !final) {
        this.scan = m.index;
        break;
      }
      this._line(buf.slice(start, m.index));
      start = re.lastIndex;
    }
    if (start > 0) {
      this.buf = buf.slice(start);
      this.scan -= start;
    }
  }

  /** @param {string} line */
  _line(line) {
    if (line === '') {
      if (this.data.length) {
        const data = this.data.length === 1 ? this.data[0] : this.data.join('\n');
        this.onEvent({ type: this.type || 'message', data, id: this.lastId });
      }
      this.data = [];
      this.dataLength = 0;
      this.type = '';
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') {
      // Many short data lines make one long event: bound that too.
      this.dataLength += value.length + 1;
      if (this.dataLength > this.maxLine) this._tooLong('an event');
      this.data.push(value);
    } else if (field === 'event') this.type = value;
    else if (field === 'id') { if (!value.includes('\0')) this.lastId = value; }
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
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
