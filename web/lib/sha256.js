// @ts-check
/** @file SHA-256: WebCrypto where the page is a secure context, else the vendored WebAssembly build of hash-wasm. */

import { ChunkcastError } from './errors.js';
import { toHex } from './bytes.js';

/**
 * A page served over plain HTTP from another host (a NAS, a LAN box) is not
 * a secure context: `crypto.subtle` is undefined there. Chunks must still be
 * verified, so SHA-256 then comes from `web/vendor/` (see its README for the
 * choice and the measured speeds). The fallback is loaded on first use only,
 * so a secure page never fetches it.
 */
const subtle = typeof crypto !== 'undefined' && crypto.subtle ? crypto.subtle : null;

/** Whether SHA-256 runs on WebCrypto (fast, off the main thread) here. */
export const hasWebCrypto = !!subtle;

/** @typedef {{init(): Hasher, update(b: Uint8Array): Hasher, digest(type: 'binary'): Uint8Array}} Hasher */

/** @type {Promise<Hasher>|null} */
let loading = null;
/** Failed loads so far: a retry asks for the file under another URL. */
let failures = 0;

/** The vendored hasher, loaded once. @returns {Promise<Hasher>} */
function fallbackHasher() {
  if (!loading) {
    loading = (async () => {
      // A browser may remember a module that failed to load under its URL
      // (Chromium 148 does), so a retry after the network came back asks
      // again under a URL of its own (the server ignores the query).
      const again = failures ? `?attempt=${failures}` : '';
      await import(`../vendor/hash-wasm-sha256.umd.min.js${again}`);
      /** @type {any} */
      const hw = /** @type {any} */ (globalThis).hashwasm;
      if (!hw?.createSHA256) throw new Error('the vendored hash-wasm did not load');
      return /** @type {Hasher} */ (await hw.createSHA256());
    })().catch((e) => {
      loading = null; // a later call may try again
      failures++;
      throw new ChunkcastError('unsupported', `this browser cannot compute SHA-256 here (no WebCrypto, and WebAssembly failed: ${e instanceof Error ? e.message : e}). Open the page over HTTPS.`, { cause: e });
    });
  }
  return loading;
}

/**
 * SHA-256 without WebCrypto (the insecure-context path), synchronous once
 * loaded: the hasher is shared, so no two calls may interleave, and none
 * does (no await between init and digest).
 * @param {Uint8Array} bytes
 * @returns {Promise<Uint8Array>}
 */
export async function sha256Fallback(bytes) {
  const h = await fallbackHasher();
  return h.init().update(bytes).digest('binary');
}

/**
 * SHA-256 of `bytes`.
 * @param {Uint8Array|ArrayBuffer} bytes
 * @returns {Promise<Uint8Array>}
 */
export async function sha256(bytes) {
  if (subtle) return new Uint8Array(await subtle.digest('SHA-256', /** @type {BufferSource} */ (bytes)));
  return sha256Fallback(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
}

/**
 * `root` of a file: SHA-256 of its raw chunk digests, concatenated in order.
 * @param {Uint8Array} digests  32 bytes per chunk
 */
export async function rootOf(digests) {
  return toHex(await sha256(digests));
}
