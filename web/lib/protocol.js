// @ts-check
/** @file The chunkcast protocol v1 as the browser sees it: the server's limits, the manifest and its checks, a chunk's span, `need=` lists, the server's error bodies and `error` events, the file list. */

import { digestsFromHex } from './bytes.js';
import { ChunkcastError } from './errors.js';
import { rootOf } from './sha256.js';

export const PROTOCOL = 1;

/**
 * Most chunks one range request may ask for, unless the manifest's
 * `max_range` says otherwise: the server's `DEFAULT_MAX_RANGE`
 * (src/protocol/limits.rs), which a manifest without `max_range` means.
 */
export const MAX_RANGE = 256;

/**
 * Longest `need=` list (in characters) the server accepts, unless the
 * manifest's `max_need` says otherwise: the server's `MAX_NEED_LEN`
 * (src/protocol/limits.rs); a longer one is answered 414.
 */
export const MAX_NEED = 8192;

/** The chunk sizes the protocol allows (src/protocol/limits.rs). */
export const MIN_CHUNK = 4096;
export const MAX_CHUNK = 16 * 1024 * 1024;

/**
 * The largest manifest a client reads (src/protocol/limits.rs): about a
 * million chunks; more is a broken or hostile server, not a file.
 */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

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
 * @property {number} [max_range]  most chunks per range request (the server's --max-range); {@link MAX_RANGE} when absent
 * @property {number} [max_need]   longest `need=` list the server accepts; {@link MAX_NEED} when absent
 * @property {boolean} [live]  a live text still being written (docs/PROTOCOL.md "Live text"): the
 *   chunks sealed so far; more follow on the stream (see live.js)
 * @property {string} [state]  a live text's state: `live` or `interrupted`
 */

/**
 * Where chunk `i` lies in the file. Binary chunks are `chunk_size` bytes
 * (the last one shorter); text chunks end on a character boundary, so their
 * starts are listed in `offsets`.
 * @param {{kind: string, size: number, chunks: number, chunk_size: number, offsets?: number[]|null}} m
 * @param {number} i
 * @returns {{off: number, len: number}}
 */
export function span(m, i) {
  if (m.kind === 'text' && m.offsets) {
    const off = m.offsets[i];
    return { off, len: (i + 1 < m.chunks ? m.offsets[i + 1] : m.size) - off };
  }
  const off = i * m.chunk_size;
  return { off, len: Math.min(m.chunk_size, m.size - off) };
}

/**
 * Checks a manifest's inner consistency (digest count, chunk tiling, that
 * the digests hash to `root`) and returns its digests as bytes.
 * @param {Manifest} m @param {string} name  for the messages
 * @returns {Promise<Uint8Array>}  32 bytes per chunk
 */
export async function checkManifest(m, name) {
  const bad = (/** @type {string} */ why) => new ChunkcastError('protocol', `inconsistent manifest for ${name}: ${why}`);
  if (typeof m !== 'object' || m === null) throw bad('not an object');
  if (!(m.chunk_size >= MIN_CHUNK && m.chunk_size <= MAX_CHUNK)) throw bad('chunk size outside 4 KiB..16 MiB');
  if (!Array.isArray(m.hashes) || m.hashes.length !== m.chunks) throw bad('digest count differs from chunk count');
  if (typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(m.sha256)) throw bad('bad file digest');
  if (!Number.isSafeInteger(m.size) || m.size < 0 || (m.chunks === 0) !== (m.size === 0)) throw bad('chunk count');
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
  return expected;
}

/**
 * A response body as text, or `undefined` once it passes `max` bytes (the
 * rest is never read, so an endless body costs `max` at most).
 * @param {Response} res  @param {number} max
 * @returns {Promise<string|undefined>}
 */
async function boundedText(res, max) {
  if (Number(res.headers.get('content-length') ?? 0) > max) return undefined;
  if (!res.body) return res.text();
  const reader = res.body.getReader();
  /** @type {Uint8Array[]} */
  const pieces = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    pieces.push(value);
  }
  const all = new Uint8Array(length);
  let at = 0;
  for (const p of pieces) {
    all.set(p, at);
    at += p.length;
  }
  return new TextDecoder().decode(all);
}

/**
 * Fetches `url` (the manifest of `name`) and checks it. A manifest cut or
 * stalled mid-body is the server being unreachable, not a hang: the whole
 * request gets `timeout` ms.
 * @param {{fetch: typeof fetch, url: string, origin: string, name: string, timeout: number}} o
 * @returns {Promise<{m: Manifest, expected: Uint8Array}>}  `expected`: the digests as bytes
 */
export async function fetchManifest(o) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), o.timeout);
  const down = (/** @type {string} */ why, /** @type {unknown} */ e) =>
    new ChunkcastError('server_down', `cannot reach the server at ${o.origin} (${why})`, { cause: e });
  let res;
  /** @type {Manifest} */
  let m;
  try {
    try {
      res = await o.fetch(o.url, { cache: 'no-store', signal: ctl.signal });
    } catch (e) {
      throw down(ctl.signal.aborted ? `no answer for ${o.timeout} ms` : 'the connection failed', e);
    }
    if (res.status === 404) throw new ChunkcastError('not_found', `${o.name} is no longer on the server`, { status: 404 });
    if (!res.ok) throw new ChunkcastError('http', `the server answered ${res.status} for the manifest: ${await errorText(res)}`, { status: res.status });
    let body;
    try {
      body = await boundedText(res, MAX_MANIFEST_BYTES);
    } catch (e) {
      if (e instanceof ChunkcastError) throw e;
      throw down(ctl.signal.aborted ? `the manifest stalled for ${o.timeout} ms` : 'the manifest was cut short', e);
    }
    if (body === undefined) {
      ctl.abort();
      throw new ChunkcastError('protocol', `the manifest of ${o.name} is larger than ${MAX_MANIFEST_BYTES >> 20} MiB`);
    }
    try {
      m = JSON.parse(body);
    } catch (e) {
      throw new ChunkcastError('protocol', `the manifest of ${o.name} is not JSON`, { cause: e });
    }
  } finally {
    clearTimeout(timer);
  }
  return { m, expected: await checkManifest(m, o.name) };
}

/**
 * Formats runs the way the server's `need=` parses them: `0-9,15,20-30`
 * (inclusive). Stops before `maxLength` characters; `covered` says how many
 * runs made it in.
 * @param {[number, number][]} list  half-open runs `[start, end)`
 * @param {number} [maxLength]
 */
export function formatNeed(list, maxLength = MAX_NEED) {
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

/**
 * What the server says went wrong, from one of its JSON errors
 * `{"code": "...", "error": "..."}`: an error response's body, or the data
 * of an `event: error` in a stream (docs/PROTOCOL.md). Anything else is
 * kept as the text, its start at most, with code `unknown`.
 * @param {string} text
 * @returns {{code: string, error: string}}
 */
export function parseServerError(text) {
  try {
    const j = JSON.parse(text);
    if (j && typeof j === 'object') {
      return { code: typeof j.code === 'string' ? j.code : 'unknown', error: typeof j.error === 'string' && j.error ? j.error : text.slice(0, 200) };
    }
  } catch { /* not JSON: the text itself */ }
  return { code: 'unknown', error: text.slice(0, 200) };
}

/**
 * Whether the server's error `code` means the file is no longer the version
 * asked for: `changed`, or `corrupt` (the server found its copy no longer
 * matches the index it served, bit rot; the manifest it builds next differs,
 * as for a change).
 * @param {string} code
 */
export function isChangeCode(code) {
  return code === 'changed' || code === 'corrupt';
}

/**
 * An error response's code and message (see {@link parseServerError}); its
 * status text when the body cannot be read.
 * @param {Response} res
 * @returns {Promise<{code: string, error: string}>}
 */
export async function errorBody(res) {
  try {
    return parseServerError(await res.text());
  } catch {
    return { code: 'unknown', error: res.statusText };
  }
}

/**
 * The `error` of a JSON error body, or the start of whatever the body is.
 * @param {Response} res
 */
export async function errorText(res) {
  return (await errorBody(res)).error;
}

/**
 * One folder of what the server offers (`dir`: a folder's name as listed;
 * the top without it). Names are relative to the served root.
 * @param {string} [base] @param {typeof fetch} [f] @param {string} [dir]
 * @returns {Promise<{name: string, size: number, modified: string, type: 'file'|'dir'}[]>}
 */
export async function listFiles(base, f = globalThis.fetch.bind(globalThis), dir = '') {
  const loc = typeof location !== 'undefined' ? location.href : undefined;
  const url = new URL('api/files', new URL(base ?? loc ?? '', loc));
  if (dir) url.searchParams.set('dir', dir);
  let res;
  try {
    res = await f(url.href, { cache: 'no-store' });
  } catch (e) {
    throw new ChunkcastError('server_down', 'cannot reach the server', { cause: e });
  }
  if (!res.ok) throw new ChunkcastError('http', `the file list failed: ${res.status} ${await errorText(res)}`, { status: res.status });
  return res.json();
}
