// @ts-check
/** @file A file that grew or changed in place: which verified chunks of an older version the new manifest repeats (same index, offset, length and SHA-256), so they are kept and only the rest fetched, a delta from the hashes both sides already have (as zsync does, without its rolling search: a chunk is compared at its own place only). Pure, so it is unit-tested without a server. */
//
// Who uses it: the stores, when they open for another version than the one
// they hold (store/*.js: memory and IndexedDB compare what they recorded of
// each chunk; OPFS and a picked file keep bytes at their offsets, and so
// hash the bytes at each new chunk's place instead, which proves the same
// thing from the bytes themselves); the download (download.js) reports
// what was kept in `onchanged`.

import { toHex } from './bytes.js';
import { span } from './protocol.js';

/** @typedef {import('./protocol.js').Manifest} Manifest */

/**
 * Whether chunk `i` of `m` is exactly the chunk that was verified and
 * stored: at `off`, `len` bytes long, with SHA-256 `digest`. A chunk past
 * the new version's end, or moved, resized or rewritten, is not.
 * @param {Manifest} m @param {number} i @param {number|undefined} off @param {number} len @param {Uint8Array} digest
 */
export function repeats(m, i, off, len, digest) {
  if (!Number.isSafeInteger(i) || i < 0 || i >= m.chunks || digest?.length !== 32) return false;
  const s = span(m, i);
  return s.off === off && s.len === len && toHex(digest) === m.hashes[i];
}

