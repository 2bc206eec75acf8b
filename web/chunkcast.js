// chunkcast.js: the browser (and Node) client of the chunkcast protocol v1.
//
// How a download flows:
//   manifest (`/api/manifest`) -> store.open() (verified chunks already on
//   disk, if any) -> EventSource on `/events` (`from=` for one missing tail,
//   `need=` for scattered gaps) -> decode -> SHA-256 against the MANIFEST's
//   digest (never only the one in the event) -> store.put() -> ... -> every
//   chunk verified -> the computed digests must hash to `root` and the sizes
//   add up to `size` -> result as a Blob/File.
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
//     download starts over only if asked (`restartOnChange` or `restart()`).
//
// No runtime dependencies, no build step. Types are JSDoc.

/**
 * @typedef {Object} Manifest
 * @property {string} name
 * @property {number} size
 * @property {'text'|'binary'} kind
 * @property {number} chunk_size
 * @property {number} chunks
 * @property {string} version
 * @property {string} sha256
 * @property {string} root
 * @property {string[]} hashes
 * @property {number[]} [offsets]
 */

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
 * The storage interface. A store holds the chunks of one file version.
 * @typedef {Object} ChunkStore
 * @property {string} kind  'memory' | 'opfs' | 'idb'
 * @property {boolean} persistent  survives a page reload
 * @property {(m: Manifest) => Promise<Map<number, Uint8Array>>} open
 *   Chunks of this version already stored and verified, with their computed
 *   digests. Chunks of another version are discarded.
 * @property {(items: {i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]) => (Promise<void>|void)} put
 *   Stores verified chunks; may return a promise to ask the caller to wait.
 * @property {(len: number) => (Uint8Array|null)} [reserve]  optional: room for
 *   one chunk's bytes inside the store's own write buffer, so a chunk is
 *   decoded where it will be written from (no copy). A reserved view is
 *   either passed to `put` or abandoned, and `settle()` says every view
 *   reserved so far has been one or the other.
 * @property {() => void} [settle]
 * @property {() => Promise<void>} flush  data first, then the record of it
 * @property {(i: number, off: number, len: number) => Promise<Uint8Array>} read
 * @property {(type?: string) => Promise<Blob>} blob  the whole file, once complete
 * @property {() => Promise<void>} discard  drops every stored chunk
 * @property {() => Promise<void>} close
 * @property {string|null} [staleVersion]  set by open() when it discarded another version
 */

export const PROTOCOL = 1;

/** An error with a stable `code` a page can branch on. */
export class ChunkcastError extends Error {
  /**
   * @param {string} code  not_found | changed | server_down | protocol |
   *   corrupt | storage | closed | http
   * @param {string} message  a sentence a person can act on
   * @param {{status?: number, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message, extra.cause ? { cause: extra.cause } : undefined);
    this.name = 'ChunkcastError';
    this.code = code;
    this.status = extra.status;
  }
}

// ---------------------------------------------------------------------------
// Bytes: base64, hex, SHA-256

// Index by char code; 255 marks a character outside the alphabet.
const B64 = new Uint8Array(128).fill(255);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  .split('')
  .forEach((c, i) => { B64[c.charCodeAt(0)] = i; });

/**
 * Standard base64 (with or without `=` padding) to bytes, in plain JS. Used
 * where `Uint8Array.fromBase64` is missing (Node 20, older browsers): a table
 * lookup per character, four at a time, ~10× an `atob` loop.
 * @param {string} s
 * @returns {Uint8Array}
 */
export function decodeBase64Fallback(s) {
  let len = s.length;
  if (len % 4 === 0 && len > 0 && s.charCodeAt(len - 1) === 61) len -= s.charCodeAt(len - 2) === 61 ? 2 : 1;
  const rest = len % 4;
  if (rest === 1) throw new ChunkcastError('protocol', 'invalid base64: bad length');
  const full = len - rest;
  const out = new Uint8Array((full / 4) * 3 + (rest ? rest - 1 : 0));
  let o = 0;
  for (let i = 0; i < full; i += 4) {
    const c0 = s.charCodeAt(i), c1 = s.charCodeAt(i + 1), c2 = s.charCodeAt(i + 2), c3 = s.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) & ~127) throw new ChunkcastError('protocol', 'invalid base64 character');
    const a = B64[c0], b = B64[c1], c = B64[c2], d = B64[c3];
    if ((a | b | c | d) & 0xc0) throw new ChunkcastError('protocol', 'invalid base64 character');
    out[o++] = (a << 2) | (b >> 4);
    out[o++] = ((b & 15) << 4) | (c >> 2);
    out[o++] = ((c & 3) << 6) | d;
  }
  if (rest) {
    const c0 = s.charCodeAt(full), c1 = s.charCodeAt(full + 1), c2 = rest === 3 ? s.charCodeAt(full + 2) : 65;
    if ((c0 | c1 | c2) & ~127) throw new ChunkcastError('protocol', 'invalid base64 character');
    const a = B64[c0], b = B64[c1], c = B64[c2];
    if ((a | b | c) & 0xc0) throw new ChunkcastError('protocol', 'invalid base64 character');
    out[o++] = (a << 2) | (b >> 4);
    if (rest === 3) out[o++] = ((b & 15) << 4) | (c >> 2);
  }
  return out;
}

/** @type {((s: string) => Uint8Array) | undefined} */
// @ts-ignore: Uint8Array.fromBase64 is new (TC39 stage 4, Chromium 140+).
const nativeFromBase64 = typeof Uint8Array.fromBase64 === 'function' ? (s) => Uint8Array.fromBase64(s) : undefined;

/**
 * Base64 to bytes: `Uint8Array.fromBase64` where it exists (~2 GB/s in
 * Chromium), else {@link decodeBase64Fallback}.
 * @param {string} s
 * @returns {Uint8Array}
 */
export function decodeBase64(s) {
  if (nativeFromBase64) {
    try {
      return nativeFromBase64(s);
    } catch (e) {
      throw new ChunkcastError('protocol', 'invalid base64', { cause: e });
    }
  }
  return decodeBase64Fallback(s);
}

/** Whether {@link decodeBase64} uses the native decoder. */
export const hasNativeBase64 = !!nativeFromBase64;

// @ts-ignore: Uint8Array.prototype.setFromBase64 is as new as fromBase64.
const hasSetFromBase64 = typeof Uint8Array.prototype.setFromBase64 === 'function';

/**
 * Base64 into `target` (its whole length), without allocating: the native
 * `setFromBase64` where it exists, several times faster than `fromBase64`
 * because nothing is allocated or collected per chunk. Returns the bytes
 * written, or -1 when `s` does not decode to exactly `target.length` bytes.
 * Throws a ChunkcastError on a character outside the alphabet.
 * @param {string} s @param {Uint8Array} target
 */
export function decodeBase64Into(s, target) {
  if (!hasSetFromBase64) {
    const bytes = decodeBase64(s);
    if (bytes.length !== target.length) return -1;
    target.set(bytes);
    return bytes.length;
  }
  let r;
  try {
    // @ts-ignore: see hasSetFromBase64
    r = target.setFromBase64(s);
  } catch (e) {
    throw new ChunkcastError('protocol', 'invalid base64', { cause: e });
  }
  // Input left over means the payload is longer than the chunk.
  return r.read === s.length && r.written === target.length ? r.written : -1;
}

/** @param {Uint8Array} bytes */
export function toHex(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
  return s;
}

/**
 * Concatenated hex digests to one byte array (32 bytes per digest).
 * @param {string[]} list
 */
export function digestsFromHex(list) {
  const out = new Uint8Array(list.length * 32);
  for (let k = 0; k < list.length; k++) {
    const h = list[k];
    if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) throw new ChunkcastError('protocol', `bad digest #${k} in manifest`);
    for (let j = 0; j < 32; j++) out[k * 32 + j] = parseInt(h.substr(j * 2, 2), 16);
  }
  return out;
}

/**
 * SHA-256 with WebCrypto.
 * @param {Uint8Array|ArrayBuffer} bytes
 * @returns {Promise<Uint8Array>}
 */
export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', /** @type {BufferSource} */ (bytes)));
}

/**
 * `root` of a file: SHA-256 of its raw chunk digests, concatenated in order.
 * @param {Uint8Array} digests  32 bytes per chunk
 */
export async function rootOf(digests) {
  return toHex(await sha256(digests));
}

// ---------------------------------------------------------------------------
// Chunk lists

/**
 * Half-open runs `[start, end)` of the indices `0..n` for which `pick` is true.
 * @param {number} n
 * @param {(i: number) => boolean} pick
 * @returns {[number, number][]}
 */
export function runs(n, pick) {
  /** @type {[number, number][]} */
  const out = [];
  let start = -1;
  for (let i = 0; i <= n; i++) {
    const p = i < n && pick(i);
    if (p && start < 0) start = i;
    else if (!p && start >= 0) { out.push([start, i]); start = -1; }
  }
  return out;
}

/**
 * Formats runs the way the server's `need=` parses them: `0-9,15,20-30`
 * (inclusive). Stops before `maxLength` characters; `covered` says how many
 * runs made it in.
 * @param {[number, number][]} list
 * @param {number} [maxLength]
 */
export function formatNeed(list, maxLength = 8000) {
  let s = '';
  let covered = 0;
  for (const [a, b] of list) {
    const part = b - a === 1 ? `${a}` : `${a}-${b - 1}`;
    if (s.length + part.length + 1 > maxLength) break;
    s += (s ? ',' : '') + part;
    covered++;
  }
  return { need: s, covered };
}

// ---------------------------------------------------------------------------
// A streaming SSE parser, for the range endpoint read through fetch.

/**
 * Follows the HTML standard's rules: lines end in CRLF, LF or CR; `:` starts
 * a comment; an event is dispatched at a blank line and only with data; a
 * partial event at the end of the stream is dropped.
 */
export class SseParser {
  /** @param {(ev: {type: string, data: string, id: string}) => void} onEvent */
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.decoder = new TextDecoder();
    this.buf = '';
    this.scan = 0; // where the search for the next line end resumes
    this.type = '';
    /** @type {string[]} */
    this.data = [];
    this.lastId = '';
    /** @type {number|null} */
    this.retry = null;
  }

  /** @param {Uint8Array} bytes */
  push(bytes) {
    this.buf += this.decoder.decode(bytes, { stream: true });
    this._lines(false);
  }

  end() {
    this.buf += this.decoder.decode();
    this._lines(true);
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
      this.type = '';
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
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

// ---------------------------------------------------------------------------
// Stores

/** Chunks in memory: for small files, and for Node. */
export class MemoryStore {
  constructor() {
    this.kind = 'memory';
    this.persistent = false;
    /** @type {Map<number, {bytes: Uint8Array, digest: Uint8Array}>} */
    this.chunks = new Map();
    this.version = '';
  }

  /** @param {Manifest} m */
  async open(m) {
    this.staleVersion = this.version && this.version !== m.version ? this.version : null;
    if (this.version !== m.version) this.chunks.clear();
    this.version = m.version;
    return new Map([...this.chunks].map(([i, c]) => [i, c.digest]));
  }

  /** @param {{i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]} items */
  put(items) {
    for (const { i, bytes, digest } of items) this.chunks.set(i, { bytes, digest });
  }

  async flush() {}

  /** @param {number} i */
  async read(i) {
    const c = this.chunks.get(i);
    if (!c) throw new ChunkcastError('storage', `chunk ${i} is not stored`);
    return c.bytes;
  }

  /** @param {string} [type] */
  async blob(type) {
    const parts = [...this.chunks.keys()].sort((a, b) => a - b).map((i) => /** @type {BlobPart} */ (this.chunks.get(i)?.bytes));
    return new Blob(parts, { type: type || 'application/octet-stream' });
  }

  async discard() {
    this.chunks.clear();
    this.version = '';
  }

  async close() {}
}

/** @param {string} name */
function storageKey(name) {
  return encodeURIComponent(name).replace(/\./g, '%2E');
}

/**
 * Chunks in the Origin Private File System, written by a worker through a
 * sync access handle (no copy through the main thread's event loop, no
 * per-write promise). The worker records which chunks are on disk in a
 * sidecar file, after flushing the data, and re-verifies them on open.
 */
export class OpfsStore {
  /** @param {string} name  the served file's name */
  constructor(name) {
    this.kind = 'opfs';
    this.persistent = true;
    this.name = name;
    this.key = storageKey(name);
    /** @type {Worker|null} */
    this.worker = null;
    this.seq = 0;
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: any) => void}>} */
    this.waiting = new Map();
    this.unacked = 0; // bytes posted and not yet written
    /** @type {(() => void)|null} */
    this.drained = null;
    // Chunks are decoded straight into a staging buffer (`reserve`), and the
    // verified ones posted to the worker a few MiB at a time, the buffer
    // transferred (not cloned) and handed back once written: one message
    // and, for consecutive chunks, one disk write per batch instead of per
    // chunk, and no allocation or copy per chunk. A full buffer whose
    // reserved chunks are still being verified waits in `sealed` until
    // `settle()`.
    /** @type {Uint8Array|null} */
    this.stage = null;
    this.stageUsed = 0;
    /** @type {{i: number, off: number, at: number, len: number}[]} */
    this.stageItems = [];
    this.outstanding = 0; // views reserved and not yet settled
    /** @type {{stage: Uint8Array, items: {i: number, off: number, at: number, len: number}[]}[]} */
    this.sealed = [];
    /** @type {ArrayBuffer[]} */
    this.spare = [];
    this.stageSize = OpfsStore.STAGE;
    /** @type {any} */
    this.stageTimer = null;
    /** @type {Error|null} */
    this.failed = null;
  }

  static supported() {
    return typeof Worker === 'function' && typeof navigator !== 'undefined' && !!navigator.storage?.getDirectory;
  }

  /** @param {string} op @param {object} [msg] @param {Transferable[]} [transfer] */
  _call(op, msg = {}, transfer = []) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      /** @type {Worker} */ (this.worker).postMessage({ op, id, key: this.key, ...msg }, transfer);
    });
  }

  /** @param {Manifest} m */
  async open(m) {
    if (!this.worker) {
      this.worker = new Worker(new URL('./storage-worker.js', import.meta.url), { type: 'module' });
      this.worker.onmessage = (e) => this._reply(e.data);
      this.worker.onerror = (e) => this._fail(new ChunkcastError('storage', `storage worker failed: ${e.message}`));
    }
    /** @type {{chunks: number[], digests: Uint8Array, stale: string|null}} */
    const r = await this._call('open', { manifest: { name: m.name, version: m.version, size: m.size, chunks: m.chunks, chunk_size: m.chunk_size, offsets: m.offsets || null, hashes: m.hashes } });
    this.staleVersion = r.stale;
    this._dropStage();
    this.stageSize = Math.max(OpfsStore.STAGE, m.chunk_size);
    this.spare = [];
    const out = new Map();
    r.chunks.forEach((i, k) => out.set(i, r.digests.subarray(k * 32, k * 32 + 32)));
    return out;
  }

  /** @param {any} msg */
  _reply(msg) {
    if (msg.op === 'written') {
      this.unacked -= msg.bytes;
      if (msg.buf && msg.buf.byteLength === this.stageSize && this.spare.length < 4) this.spare.push(msg.buf);
      if (this.drained && this.unacked <= OpfsStore.HIGH_WATER / 2) { const d = this.drained; this.drained = null; d(); }
      return;
    }
    if (msg.op === 'fatal') return this._fail(new ChunkcastError('storage', msg.error));
    const w = this.waiting.get(msg.id);
    if (!w) return;
    this.waiting.delete(msg.id);
    if (msg.error) w.reject(new ChunkcastError('storage', msg.error));
    else w.resolve(msg.result);
  }

  /** @param {Error} e */
  _fail(e) {
    this.failed = e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    if (this.drained) { const d = this.drained; this.drained = null; d(); }
  }

  /** @param {number} len */
  reserve(len) {
    if (this.failed || !this.worker || len > this.stageSize) return null;
    const at = this._room(len);
    this.outstanding++;
    return /** @type {Uint8Array} */ (this.stage).subarray(at, at + len);
  }

  /** Every reserved view has been put or abandoned: full buffers can go. */
  settle() {
    this.outstanding = 0;
    for (const { stage, items } of this.sealed.splice(0)) this._send(stage, items);
    this._arm();
  }

  /** Where `len` more bytes go in the current buffer (a new one if full). @param {number} len */
  _room(len) {
    if (this.stage && this.stageUsed + len > this.stage.length) {
      if (this.outstanding) this.sealed.push({ stage: this.stage, items: this.stageItems });
      else this._send(this.stage, this.stageItems);
      this.stage = null;
    }
    if (!this.stage) {
      this.stage = new Uint8Array(this.spare.pop() ?? new ArrayBuffer(this.stageSize));
      this.stageUsed = 0;
      this.stageItems = [];
    }
    const at = this.stageUsed;
    this.stageUsed += len;
    return at;
  }

  /** @param {{i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]} items */
  put(items) {
    if (this.failed) throw this.failed;
    for (const { i, off, bytes } of items) {
      const len = bytes.length;
      this.unacked += len;
      if (this.stage && bytes.buffer === this.stage.buffer) {
        this.stageItems.push({ i, off, at: bytes.byteOffset, len });
        continue;
      }
      const s = this.sealed.find((x) => x.stage.buffer === bytes.buffer);
      if (s) {
        s.items.push({ i, off, at: bytes.byteOffset, len });
        continue;
      }
      const at = this._room(len); // bytes from elsewhere are copied in
      /** @type {Uint8Array} */ (this.stage).set(bytes, at);
      this.stageItems.push({ i, off, at, len });
    }
    this._arm();
    if (this.unacked > OpfsStore.HIGH_WATER) {
      return new Promise((resolve, reject) => {
        this.drained = () => (this.failed ? reject(this.failed) : resolve(undefined));
      });
    }
  }

  /** A slow (paced) stream still reaches the disk promptly. */
  _arm() {
    if (this.stageItems.length && !this.stageTimer) this.stageTimer = setTimeout(() => { this.stageTimer = null; this._post(); }, 50);
  }

  /** Posts the current buffer's chunks, unless views into it are still being verified. */
  _post() {
    clearTimeout(this.stageTimer);
    this.stageTimer = null;
    if (!this.stage) return;
    if (this.outstanding) { this._arm(); return; }
    this._send(this.stage, this.stageItems);
    this.stage = null;
    this.stageUsed = 0;
    this.stageItems = [];
  }

  /** @param {Uint8Array} stage @param {{i: number, off: number, at: number, len: number}[]} items */
  _send(stage, items) {
    if (!this.worker || this.failed) return;
    if (!items.length) {
      if (this.spare.length < 4) this.spare.push(/** @type {ArrayBuffer} */ (stage.buffer));
      return;
    }
    const buf = stage.buffer;
    this.worker.postMessage({ op: 'put', key: this.key, buf, list: items }, [buf]);
  }

  /** Forgets the staged chunks (the file is being discarded or reopened). */
  _dropStage() {
    clearTimeout(this.stageTimer);
    this.stageTimer = null;
    for (const { items } of [...this.sealed, { items: this.stageItems }]) for (const it of items) this.unacked -= it.len;
    this.sealed = [];
    this.outstanding = 0;
    this.stage = null;
    this.stageUsed = 0;
    this.stageItems = [];
  }

  async flush() {
    this._post();
    if (this.worker) await this._call('flush');
  }

  /** @param {number} i @param {number} off @param {number} len */
  async read(i, off, len) {
    this._post();
    return /** @type {Uint8Array} */ (await this._call('read', { off, len }));
  }

  /** @param {string} [type] */
  async blob(type) {
    this._post();
    this.timing = await this._call('finish'); // closes the sync handle, which locks the file
    const dir = await opfsDir();
    const file = await (await dir.getFileHandle(`${this.key}.part`)).getFile();
    return type ? new Blob([file], { type }) : file;
  }

  async discard() {
    this._dropStage();
    if (this.worker) await this._call('discard');
    else await clearStored(this.name);
  }

  async close() {
    if (!this.worker) return;
    this._post();
    try { await this._call('close'); } catch { /* already failed */ }
    this.worker.terminate();
    this.worker = null;
  }
}
/** Bytes posted to the worker and not yet written before `put` makes the caller wait. */
OpfsStore.HIGH_WATER = 64 << 20;
/** Bytes staged per message to the worker (at least one chunk). */
OpfsStore.STAGE = 4 << 20;

async function opfsDir() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle('chunkcast', { create: true });
}

const IDB_NAME = 'chunkcast';

/** @returns {Promise<IDBDatabase>} */
function idbOpen() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(IDB_NAME, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore('chunks');
      req.result.createObjectStore('files');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new ChunkcastError('storage', `IndexedDB: ${req.error?.message}`));
  });
}

/** @param {IDBRequest|IDBTransaction} r */
function idbDone(r) {
  return new Promise((resolve, reject) => {
    if ('oncomplete' in r) {
      r.oncomplete = () => resolve(undefined);
      r.onabort = r.onerror = () => reject(new ChunkcastError('storage', `IndexedDB: ${r.error?.message || 'aborted'}`));
    } else {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(new ChunkcastError('storage', `IndexedDB: ${r.error?.message}`));
    }
  });
}

/**
 * Chunks in IndexedDB, where OPFS is missing. Each chunk is a Blob record
 * (Chromium keeps large blobs on disk), so the assembled file is a Blob of
 * Blobs and is never copied into memory. A record is written with its digest
 * in one transaction, so a stored chunk is always a whole, verified chunk.
 */
export class IdbStore {
  /** @param {string} name */
  constructor(name) {
    this.kind = 'idb';
    this.persistent = true;
    this.name = name;
    this.key = storageKey(name);
    /** @type {IDBDatabase|null} */
    this.db = null;
    /** @type {{i: number, bytes: Uint8Array, digest: Uint8Array}[]} */
    this.pending = [];
    this.pendingBytes = 0;
    /** @type {Promise<void>} */
    this.writing = Promise.resolve();
  }

  static supported() {
    return typeof indexedDB !== 'undefined';
  }

  /** @param {number} i */
  _k(i) {
    return `${this.key}/${String(i).padStart(10, '0')}`;
  }

  /** @param {Manifest} m */
  async open(m) {
    this.db = await idbOpen();
    const tx = this.db.transaction(['files', 'chunks'], 'readwrite');
    const info = await idbDone(tx.objectStore('files').get(this.key));
    const range = IDBKeyRange.bound(`${this.key}/`, `${this.key}/\uffff`);
    const out = new Map();
    this.staleVersion = info && info.version !== m.version ? info.version : null;
    if (!info || info.version !== m.version) {
      tx.objectStore('chunks').delete(range);
      tx.objectStore('files').put({ version: m.version, size: m.size, name: m.name }, this.key);
    } else {
      /** @type {{i: number, digest: Uint8Array}[]} */
      const recs = await idbDone(tx.objectStore('chunks').getAll(range));
      for (const r of recs) out.set(r.i, r.digest);
    }
    await idbDone(tx);
    return out;
  }

  /** @param {{i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]} items */
  put(items) {
    for (const it of items) { this.pending.push(it); this.pendingBytes += it.bytes.length; }
    if (this.pendingBytes >= 8 << 20) return this.flush();
  }

  async flush() {
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const db = /** @type {IDBDatabase} */ (this.db);
    this.writing = this.writing.then(async () => {
      if (!batch.length) return;
      const tx = db.transaction('chunks', 'readwrite');
      const os = tx.objectStore('chunks');
      for (const { i, bytes, digest } of batch) os.put({ i, digest, blob: new Blob([/** @type {BlobPart} */ (bytes)]) }, this._k(i));
      await idbDone(tx);
    });
    await this.writing;
  }

  /** @param {number} i */
  async read(i) {
    const db = /** @type {IDBDatabase} */ (this.db);
    const rec = await idbDone(db.transaction('chunks').objectStore('chunks').get(this._k(i)));
    if (!rec) throw new ChunkcastError('storage', `chunk ${i} is not stored`);
    return new Uint8Array(await rec.blob.arrayBuffer());
  }

  /** @param {string} [type] */
  async blob(type) {
    await this.flush();
    const db = /** @type {IDBDatabase} */ (this.db);
    const range = IDBKeyRange.bound(`${this.key}/`, `${this.key}/\uffff`);
    const recs = await idbDone(db.transaction('chunks').objectStore('chunks').getAll(range));
    return new Blob(recs.map((/** @type {any} */ r) => r.blob), { type: type || 'application/octet-stream' });
  }

  async discard() {
    this.pending = [];
    this.pendingBytes = 0;
    await this.writing.catch(() => {});
    await clearStored(this.name);
  }

  async close() {
    await this.flush().catch(() => {});
    this.db?.close();
    this.db = null;
  }
}

/**
 * What a previous page left on disk for `name`, if anything: the version
 * and how many chunks are recorded (not yet re-verified).
 * @param {string} name
 * @returns {Promise<{store: string, version: string, chunks: number, size: number}|null>}
 */
export async function findStored(name) {
  const key = storageKey(name);
  if (OpfsStore.supported()) {
    try {
      const dir = await opfsDir();
      const text = await (await (await dir.getFileHandle(`${key}.state`)).getFile()).text();
      const st = JSON.parse(text);
      const bits = decodeBase64(st.bitmap || '');
      let n = 0;
      for (const b of bits) for (let x = b; x; x &= x - 1) n++;
      return { store: 'opfs', version: st.version, chunks: n, size: st.size };
    } catch { /* none */ }
  }
  if (IdbStore.supported()) {
    try {
      const db = await idbOpen();
      const tx = db.transaction(['files', 'chunks']);
      const info = await idbDone(tx.objectStore('files').get(key));
      const n = await idbDone(tx.objectStore('chunks').count(IDBKeyRange.bound(`${key}/`, `${key}/\uffff`)));
      db.close();
      if (info) return { store: 'idb', version: info.version, chunks: n, size: info.size };
    } catch { /* none */ }
  }
  return null;
}

/**
 * Removes whatever is stored for `name` (every store kind).
 * @param {string} name
 */
export async function clearStored(name) {
  const key = storageKey(name);
  if (typeof navigator !== 'undefined' && navigator.storage?.getDirectory) {
    try {
      const dir = await opfsDir();
      for (const f of [`${key}.part`, `${key}.state`]) await dir.removeEntry(f).catch(() => {});
    } catch { /* no OPFS */ }
  }
  if (IdbStore.supported()) {
    const db = await idbOpen();
    const tx = db.transaction(['files', 'chunks'], 'readwrite');
    tx.objectStore('chunks').delete(IDBKeyRange.bound(`${key}/`, `${key}/\uffff`));
    tx.objectStore('files').delete(key);
    await idbDone(tx);
    db.close();
  }
}

/**
 * The store for a file of `size` bytes: memory up to `memoryLimit`, else OPFS,
 * else IndexedDB, else memory.
 * @param {string} name @param {number} size
 * @param {{store?: string|ChunkStore, memoryLimit?: number}} opts
 * @returns {ChunkStore}
 */
export function chooseStore(name, size, opts) {
  const want = opts.store ?? 'auto';
  if (typeof want === 'object') return want;
  const limit = opts.memoryLimit ?? 32 << 20;
  if (want === 'memory' || (want === 'auto' && size <= limit)) return new MemoryStore();
  if ((want === 'auto' || want === 'opfs') && OpfsStore.supported()) return new OpfsStore(name);
  if ((want === 'auto' || want === 'idb' || want === 'opfs') && IdbStore.supported()) return new IdbStore(name);
  return new MemoryStore();
}

// ---------------------------------------------------------------------------
// The download

/**
 * @typedef {Object} DownloadOptions
 * @property {string} [base]  server URL; defaults to the page's origin
 * @property {any} [EventSource]  constructor; defaults to the global one
 * @property {typeof fetch} [fetch]
 * @property {string|ChunkStore} [store]  'auto' | 'memory' | 'opfs' | 'idb' | a store
 * @property {number} [memoryLimit]  largest file kept in memory with 'auto'
 * @property {number} [stallTimeout]  ms without any event before reopening
 * @property {number} [parallel]  range requests in flight at most
 * @property {number} [batch]  chunks per range request (server allows 256)
 * @property {number} [rate]  ask the server to pace to this many bytes/s
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
 */

const CHUNK_MISSING = 0, CHUNK_VERIFIED = 1, CHUNK_QUEUED = 2, CHUNK_INFLIGHT = 3;

/**
 * One file's download. `start()` runs it; `done` settles with the result.
 */
export class Download {
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
    this.batch = Math.min(opts.batch ?? 64, 256);
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
    this.state = 'idle';
    this.gen = 0; // bumped on changed/close: work of an older generation is dropped
    this._newDone();
    this._reset();
    this._onOnline = () => this._online();
    this._onOffline = () => this._offline();
  }

  _newDone() {
    /** @type {Promise<{blob: Blob, manifest: Manifest}>} */
    this.done = new Promise((resolve, reject) => { this._resolve = resolve; this._reject = reject; });
    this.done.catch(() => {}); // callers may ignore it; the failure also goes to onerror
  }

  _reset() {
    /** @type {Uint8Array} */
    this.status = new Uint8Array(0);
    /** @type {Uint8Array} */
    this.digests = new Uint8Array(0); // the digests we computed, 32 bytes per chunk
    /** @type {Uint8Array} */
    this.expected = new Uint8Array(0);
    /** @type {Uint8Array} */
    this.failures = new Uint8Array(0);
    this.verified = 0;
    this.bytesVerified = 0;
    this.bytesReceived = 0;
    this.chunksResumed = 0;
    this.bytesResumed = 0;
    this.chunksFailed = 0;
    this.chunksRefetched = 0;
    this.reconnects = 0;
    /** @type {any} */
    this.es = null;
    this.esFailures = 0; // native reconnect errors in a row, without progress
    this.attempt = 0; // our reconnects in a row, without progress
    /** @type {Set<AbortController>} */
    this.ranges = new Set();
    /** @type {{data: string, gen: number, source: string}[]} */
    this.queue = [];
    this.draining = false;
    /** @type {any} */
    this.stallTimer = null;
    /** @type {any} */
    this.retryTimer = null;
    this.nextText = 0;
    /** @type {Map<number, string>} */
    this.textPending = new Map();
    this.paused = false;
    this.finished = false;
    this.checking = false;
    /** @type {{t: number, b: number}[]} */
    this.samples = [];
    this.startedAt = nowMs();
    /** @type {number|null} */
    this.finishedAt = null;
    this.lastProgress = 0;
  }

  _log(/** @type {string} */ msg) {
    this.opts.log?.(msg);
  }

  /** @param {string} state @param {string} [message] */
  _setState(state, message = '') {
    this.state = state;
    this.opts.onstate?.(state, message);
  }

  /** @param {string} path @param {Record<string, string|number|undefined>} q */
  _url(path, q) {
    const u = new URL(path, this.base);
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    return u.href;
  }

  /** Fetches and checks the manifest. */
  async fetchManifest() {
    // A manifest cut or stalled mid-body is the server being unreachable,
    // not a hang: the whole request gets `stallTimeout` ms.
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.stallTimeout);
    const down = (/** @type {string} */ why, /** @type {unknown} */ e) =>
      new ChunkcastError('server_down', `cannot reach the server at ${this.base.origin} (${why})`, { cause: e });
    let res;
    /** @type {Manifest} */
    let m;
    try {
      try {
        res = await this.fetch(this._url('api/manifest', { file: this.name }), { cache: 'no-store', signal: ctl.signal });
      } catch (e) {
        throw down(ctl.signal.aborted ? `no answer for ${this.stallTimeout} ms` : 'the connection failed', e);
      }
      if (res.status === 404) throw new ChunkcastError('not_found', `${this.name} is no longer on the server`, { status: 404 });
      if (!res.ok) throw new ChunkcastError('http', `the server answered ${res.status} for the manifest: ${await errorText(res)}`, { status: res.status });
      let body;
      try {
        body = await res.text();
      } catch (e) {
        throw down(ctl.signal.aborted ? `the manifest stalled for ${this.stallTimeout} ms` : 'the manifest was cut short', e);
      }
      try {
        m = JSON.parse(body);
      } catch (e) {
        throw new ChunkcastError('protocol', `the manifest of ${this.name} is not JSON`, { cause: e });
      }
    } finally {
      clearTimeout(timer);
    }
    const bad = (/** @type {string} */ why) => new ChunkcastError('protocol', `inconsistent manifest for ${this.name}: ${why}`);
    if (!Array.isArray(m.hashes) || m.hashes.length !== m.chunks) throw bad('digest count differs from chunk count');
    if (!(m.chunk_size > 0)) throw bad('zero chunk size');
    if (m.kind === 'text') {
      const o = m.offsets;
      if (!Array.isArray(o) || o.length !== m.chunks || (m.chunks && o[0] !== 0)) throw bad('offsets do not tile the file');
      for (let i = 0; i < m.chunks; i++) {
        const end = i + 1 < m.chunks ? o[i + 1] : m.size;
        if (!(end > o[i] && end - o[i] <= m.chunk_size)) throw bad('offsets do not tile the file');
      }
    } else if (m.chunks !== Math.ceil(m.size / m.chunk_size)) {
      throw bad('chunk count');
    }
    const expected = digestsFromHex(m.hashes);
    if ((await rootOf(expected)) !== m.root) throw bad('digests do not hash to root');
    return { m, expected };
  }

  /** @param {number} i */
  span(i) {
    const m = /** @type {Manifest} */ (this.manifest);
    if (m.kind === 'text' && m.offsets) {
      const off = m.offsets[i];
      return { off, len: (i + 1 < m.chunks ? m.offsets[i + 1] : m.size) - off };
    }
    const off = i * m.chunk_size;
    return { off, len: Math.min(m.chunk_size, m.size - off) };
  }

  /**
   * Runs the download. Resolves once it is under way (or finished); the
   * outcome is `done`.
   */
  async start() {
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
        have = await this.store.open(m);
      } else {
        throw new ChunkcastError('storage', `cannot open storage: ${asError(e).message}`, { cause: e });
      }
    }
    if (gen !== this.gen) return;
    for (const [i, digest] of have) {
      if (i >= m.chunks || this.status[i] === CHUNK_VERIFIED) continue;
      if (!equal32(digest, this.expected, i)) continue; // the store's own check
      this.status[i] = CHUNK_VERIFIED;
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
    if (this.chunksResumed) this._log(`resumed ${this.chunksResumed} verified chunks from ${this.store.kind}`);
    if (m.kind === 'text') await this._emitText(gen);
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this._onOnline);
      globalThis.addEventListener('offline', this._onOffline);
    }
    this.startedAt = nowMs(); // the speed counts the network, not opening storage
    this._progress(true);
    this._pump();
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
    if (!m || this.finished || this.paused || this.checking || this.state === 'changed' || this.state === 'error' || this.state === 'closed') return;
    if (this.verified === m.chunks) {
      if (!this.draining && this.queue.length === 0) this._finish();
      return;
    }
    if (this._isOffline()) {
      this._setState('offline', 'the browser is offline; waiting for the network');
      return;
    }
    if (this.retryTimer) return;
    // Refill failed chunks by range, `parallel` requests at most, once the
    // event stream is over: by then the failures are collected, so
    // neighbouring ones go in one request.
    while (!this.es && this.ranges.size < this.parallel) {
      let a = -1;
      for (let i = 0; i < m.chunks; i++) if (this.status[i] === CHUNK_QUEUED) { a = i; break; }
      if (a < 0) break;
      let b = a + 1;
      while (b < m.chunks && b - a < this.batch && this.status[b] === CHUNK_QUEUED) b++;
      this._range(a, b);
    }
    // Chunks still queued for verification count as missing until checked.
    if (this.es || this.draining || this.queue.length) return;
    // Whatever is neither verified nor being refilled goes through the event stream.
    const gaps = runs(m.chunks, (i) => this.status[i] === CHUNK_MISSING);
    if (gaps.length === 0) {
      if (this.ranges.size === 0 && !this.draining && this.queue.length === 0) {
        // Nothing missing, nothing in flight, yet not all verified: cannot happen; re-plan.
        for (let i = 0; i < m.chunks; i++) if (this.status[i] !== CHUNK_VERIFIED) this.status[i] = CHUNK_MISSING;
      }
      return;
    }
    this._openStream(gaps);
  }

  /** @param {[number, number][]} gaps */
  _openStream(gaps) {
    const m = /** @type {Manifest} */ (this.manifest);
    /** @type {Record<string, string|number|undefined>} */
    const q = { file: this.name, v: m.version, rate: this.rate || undefined };
    if (gaps.length === 1 && gaps[0][1] === m.chunks) {
      if (gaps[0][0] > 0) q.from = gaps[0][0];
    } else {
      q.need = formatNeed(gaps).need;
    }
    const url = this._url('events', q);
    this._log(`open ${url}`);
    const es = new this.ES(url);
    this.es = es;
    const gen = this.gen;
    const mine = () => es === this.es && gen === this.gen;
    this._setState(this.verified ? 'resuming' : 'connecting', this.verified ? `resuming from chunk ${gaps[0][0]}` : 'connecting');
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
        if (info.code === 'changed') this._changed(info.error || 'the file changed on the server', null);
        else this._retryLater(`the server reported: ${info.error || info.code}`);
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
    if (this.checking) return;
    this.checking = true;
    const gen = this.gen;
    try {
      const { m } = await this.fetchManifest();
      if (gen !== this.gen) return;
      this.checking = false;
      if (m.version !== this.manifest?.version) return this._changed('the manifest has a new version', m);
      this._retryLater(why);
    } catch (e) {
      if (gen !== this.gen) return;
      this.checking = false;
      const err = asError(e);
      if (err.code === 'server_down' || err.code === 'http') this._retryLater(`${why}: ${err.message}`);
      else this._fatal(err);
    }
  }

  /**
   * Reopens after an exponential backoff with full jitter: a random delay in
   * [0, min(max, base × 2^attempt)], so clients dropped together do not
   * return together.
   * @param {string} why @param {number} [delay]
   */
  _retryLater(why, delay) {
    if (this.retryTimer || this.finished) return;
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
   * One range request `[a, b)` through fetch and our SSE parser.
   * @param {number} a @param {number} b
   */
  async _range(a, b) {
    const m = /** @type {Manifest} */ (this.manifest);
    const gen = this.gen;
    for (let i = a; i < b; i++) this.status[i] = CHUNK_INFLIGHT;
    const ctl = new AbortController();
    this.ranges.add(ctl);
    if (!this.es) this._setState('refilling', `refetching chunks ${a}..${b - 1}`);
    let stall = setTimeout(() => ctl.abort(), this.stallTimeout);
    /** @type {string|null} */
    let failure = null;
    let ended = false;
    try {
      const res = await this.fetch(this._url(`events/chunk/${a}/${b}`, { file: this.name, v: m.version }), { signal: ctl.signal, cache: 'no-store' });
      if (res.status === 412) {
        failure = 'changed';
      } else if (res.status === 404) {
        failure = 'gone';
      } else if (!res.ok || !res.body) {
        failure = `range ${a}..${b} answered ${res.status}: ${await errorText(res)}`;
        if (res.status === 416 && this.batch > 1) this.batch = Math.max(1, this.batch >> 1);
      } else {
        const parser = new SseParser((ev) => {
          if (gen !== this.gen) return;
          if (ev.type === 'chunk') {
            this.queue.push({ data: ev.data, gen, source: 'range' });
            this._drain();
          } else if (ev.type === 'end') {
            ended = true;
          } else if (ev.type === 'error') {
            failure = ev.data.includes('"changed"') ? 'changed' : `the server reported: ${ev.data}`;
          }
        });
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          clearTimeout(stall);
          stall = setTimeout(() => ctl.abort(), this.stallTimeout);
          parser.push(value);
        }
        parser.end();
        if (!ended && !failure) failure = `range ${a}..${b} ended early`;
      }
    } catch (e) {
      failure = ctl.signal.aborted ? `range ${a}..${b} stalled or was cut` : `range ${a}..${b}: ${asError(e).message}`;
    } finally {
      clearTimeout(stall);
      this.ranges.delete(ctl);
    }
    if (gen !== this.gen) return;
    // Let the chunks already parsed be verified before judging what is missing.
    await this._drained();
    if (gen !== this.gen) return;
    for (let i = a; i < b; i++) if (this.status[i] === CHUNK_INFLIGHT) this.status[i] = CHUNK_QUEUED;
    if (failure === 'changed') return this._changed('the range endpoint refused the version (412)', null);
    if (failure === 'gone') return this._fatal(new ChunkcastError('not_found', `${this.name} is no longer on the server`, { status: 404 }));
    if (failure && !this.paused) {
      this._log(failure);
      return this._retryLater(failure);
    }
    this._pump();
  }

  /** Resolves once every queued event has been processed. */
  _drained() {
    if (!this.draining && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => (!this.draining && this.queue.length === 0 ? resolve(undefined) : setTimeout(check, 5));
      check();
    });
  }

  /**
   * Processes queued chunk events in batches: decode all, hash all at once
   * (WebCrypto runs digests off the main thread), then compare and store.
   */
  async _drain() {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length) {
        // Views reserved in the store by this batch are all put or dropped by
        // the end of it, whichever way it ends.
        try { await this._batch(); } finally { this.store?.settle?.(); }
      }
    } catch (e) {
      this.draining = false;
      this._fatal(asError(e));
      return;
    }
    this.draining = false;
    this._pump();
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
    const digests = await Promise.all(items.map((it) => sha256(it.bytes)));
    if (this.stats) { addStat(this.stats, 'hashWait', nowMs() - t0); addStat(this.stats, 'batches', 1); addStat(this.stats, 'items', items.length); }
    if (gen !== this.gen) return;
    const good = [];
    for (let k = 0; k < items.length; k++) {
      const it = items[k];
      if (this.status[it.i] === CHUNK_VERIFIED) continue;
      if (equal32(digests[k], this.expected, it.i)) {
        const again = this.failures[it.i] > 0;
        this.status[it.i] = CHUNK_VERIFIED;
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
      const wait = store.put(good);
      store.settle?.();
      const t2 = this.stats ? nowMs() : 0;
      if (wait) await wait;
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
    if (this.status[i] === CHUNK_VERIFIED) return null;
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
    if (this.status[i] !== CHUNK_INFLIGHT) this.status[i] = CHUNK_QUEUED;
  }

  /** Delivers verified text in order, from the first chunk not yet delivered. @param {number} gen */
  async _emitText(gen) {
    const m = /** @type {Manifest} */ (this.manifest);
    while (this.nextText < m.chunks && this.status[this.nextText] === CHUNK_VERIFIED && gen === this.gen) {
      const i = this.nextText;
      let text = this.textPending.get(i);
      if (text === undefined) {
        const { off, len } = this.span(i);
        text = new TextDecoder().decode(await /** @type {ChunkStore} */ (this.store).read(i, off, len));
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
    if (this.finished) return;
    this.finished = true;
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
      await store.flush();
      const blob = await store.blob(this.opts.type);
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
    if (this.state === 'changed') return;
    const old = this.manifest?.version ?? '';
    this.gen++;
    this._stopNetwork();
    this._setState('changed', `${this.name} changed on the server (${why})`);
    try { await this.store?.discard(); } catch (e) { this._log(`discard failed: ${asError(e).message}`); }
    let newVersion = fresh?.version ?? null;
    if (!fresh) {
      try { newVersion = (await this.fetchManifest()).m.version; } catch { /* reported below if we restart */ }
    }
    this.opts.onchanged?.({ why, oldVersion: old, newVersion });
    if (this.opts.restartOnChange) {
      this._restartNow();
    } else {
      const err = new ChunkcastError('changed', `${this.name} changed on the server while downloading; the stale chunks were discarded. Restart to download the new version.`);
      this.opts.onerror?.(err);
      this._reject?.(err);
    }
  }

  _restartNow() {
    this.gen++;
    this._stopNetwork();
    this.finished = false;
    this.state = 'idle';
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
    if (this.state === 'error' || this.state === 'closed') return;
    this._stopNetwork();
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

  _detach() {
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this._onOnline);
      globalThis.removeEventListener('offline', this._onOffline);
    }
  }

  _offline() {
    if (this.finished || this.paused) return;
    this._stopNetwork();
    this._setState('offline', 'the browser is offline; waiting for the network');
  }

  _online() {
    if (this.finished || this.paused || this.state !== 'offline') return;
    this.attempt = 0;
    this._setState('reconnecting', 'back online; resuming');
    this._pump();
  }

  /** Stops the network without losing anything; `resume()` continues. */
  pause() {
    if (this.finished || this.paused) return;
    this.paused = true;
    this._stopNetwork();
    this.store?.flush().catch(() => {});
    this._setState('paused', 'paused');
    this._progress(true);
  }

  resume() {
    if (this.state === 'error' && this.manifest) {
      // After giving up (e.g. server down), resuming tries again from what is verified.
      this._newDone();
      this.state = 'paused';
    }
    if (!this.paused && this.state !== 'paused') return;
    this.paused = false;
    this.attempt = 0;
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
    const wasDone = this.finished;
    this.finished = true;
    this._setState('closed', 'closed');
    if (!wasDone) this._reject?.(new ChunkcastError('closed', 'the download was closed'));
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

/**
 * Saves a Blob through an `<a download>` click.
 * @param {Blob} blob @param {string} filename
 */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The save reads the Blob after the click; revoking at once can cut it short.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return url;
}

/** @param {string} name */
function baseName(name) {
  return name.split('/').pop() || 'download';
}

/** @param {Uint8Array} d @param {Uint8Array} all @param {number} i */
function equal32(d, all, i) {
  const o = i * 32;
  for (let k = 0; k < 32; k++) if (d[k] !== all[o + k]) return false;
  return true;
}

/** @param {Record<string, number>} stats @param {string} k @param {number} v */
function addStat(stats, k, v) {
  stats[k] = (stats[k] || 0) + v;
}

function nowMs() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

/** @param {unknown} e @returns {ChunkcastError} */
function asError(e) {
  if (e instanceof ChunkcastError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new ChunkcastError('storage', msg, { cause: e });
}

/** @param {Response} res */
async function errorText(res) {
  try {
    const body = await res.text();
    try { return JSON.parse(body).error || body; } catch { return body.slice(0, 200); }
  } catch {
    return res.statusText;
  }
}

/**
 * The files the server offers.
 * @param {string} [base] @param {typeof fetch} [f]
 * @returns {Promise<{name: string, size: number, modified: string}[]>}
 */
export async function listFiles(base, f = globalThis.fetch.bind(globalThis)) {
  const loc = typeof location !== 'undefined' ? location.href : undefined;
  let res;
  try {
    res = await f(new URL('api/files', new URL(base ?? loc ?? '', loc)).href, { cache: 'no-store' });
  } catch (e) {
    throw new ChunkcastError('server_down', 'cannot reach the server', { cause: e });
  }
  if (!res.ok) throw new ChunkcastError('http', `the file list failed: ${res.status} ${await errorText(res)}`, { status: res.status });
  return res.json();
}

/** Human-readable bytes: 1.5 MiB. @param {number} n */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return `${u ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : n} ${units[u]}`;
}
