// @ts-check
/** @file A module worker that computes SHA-256 with the vendored fallback, off the page's main thread (insecure contexts only). */

import { sha256Fallback } from '../lib/sha256.js';

// {id, bytes} -> {id, digest}, or {id, error} when hashing is impossible here.
onmessage = async (/** @type {MessageEvent<{id: number, bytes: Uint8Array}>} */ e) => {
  const { id, bytes } = e.data;
  try {
    const digest = await sha256Fallback(bytes);
    postMessage({ id, digest });
  } catch (err) {
    postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
