// @ts-check
/** @file Bytes: base64 to and from bytes, hex digests. Pure functions, shared by the page and the storage worker. */

import { ChunkcastError } from './errors.js';

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

/**
 * Bytes to standard base64 (with padding): the native `toBase64` where it
 * exists, else `btoa` over 32 KiB slices (a bounded argument list).
 * @param {Uint8Array} bytes
 */
export function encodeBase64(bytes) {
  // @ts-ignore: Uint8Array.prototype.toBase64 is as new as fromBase64.
  if (typeof bytes.toBase64 === 'function') return /** @type {string} */ (bytes.toBase64());
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Lower-case hex. @param {Uint8Array} bytes */
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
 * Whether the 32-byte digest `d` equals digest number `i` in `all`.
 * @param {Uint8Array} d @param {Uint8Array} all @param {number} i
 */
export function equal32(d, all, i) {
  const o = i * 32;
  for (let k = 0; k < 32; k++) if (d[k] !== all[o + k]) return false;
  return true;
}
