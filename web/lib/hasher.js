// @ts-check
/** @file SHA-256 of many chunks at once: WebCrypto (already off the main thread), else the fallback in a small pool of workers. */

import { hasWebCrypto, sha256, sha256Fallback } from './sha256.js';

/**
 * Without WebCrypto (a page served over plain HTTP from another host), the
 * fallback SHA-256 would run on the page's main thread, which also parses
 * the event stream and decodes base64: the two would take turns. Hashing in
 * workers lets them overlap on a second core. Each chunk is copied to its
 * worker (a memcpy is ~100× cheaper than hashing it), so the page keeps its
 * bytes whatever happens to the worker: one that fails (a Content Security
 * Policy without `worker-src 'self'`, say) is retired and its chunks are
 * hashed on the page instead.
 */

/** @typedef {{worker: Worker, busy: number}} Slot */

/** @type {Slot[]|null} */
let pool = null;
let nextId = 0;
/** @type {Map<number, {resolve: (d: Uint8Array) => void, reject: (e: unknown) => void, slot: Slot, bytes: Uint8Array}>} */
const waiting = new Map();

/** The workers, started on first use; none where workers are missing (Node). */
function workers() {
  if (pool) return pool;
  pool = [];
  if (typeof Worker !== 'function') return pool;
  const hw = typeof navigator !== 'undefined' && navigator.hardwareConcurrency ? navigator.hardwareConcurrency : 2;
  const n = Math.max(1, Math.min(4, hw - 1)); // leave a core to the page
  for (let k = 0; k < n; k++) {
    /** @type {Slot} */
    const slot = { worker: new Worker(new URL('../workers/hash.js', import.meta.url), { type: 'module' }), busy: 0 };
    slot.worker.onmessage = (e) => {
      const w = waiting.get(e.data.id);
      if (!w) return;
      waiting.delete(e.data.id);
      slot.busy--;
      if (e.data.error) sha256Fallback(w.bytes).then(w.resolve, w.reject); // the page reports its own failure
      else w.resolve(e.data.digest);
    };
    slot.worker.onerror = () => retire(slot);
    pool.push(slot);
  }
  return pool;
}

/** A worker that failed: its chunks are hashed on the page, and it gets no more. @param {Slot} slot */
function retire(slot) {
  slot.worker.terminate();
  pool = (pool ?? []).filter((s) => s !== slot);
  for (const [id, w] of waiting) {
    if (w.slot !== slot) continue;
    waiting.delete(id);
    sha256Fallback(w.bytes).then(w.resolve, w.reject);
  }
}

/**
 * The SHA-256 of each chunk, in order.
 * @param {{bytes: Uint8Array}[]} items
 * @returns {Promise<Uint8Array[]>}
 */
export function digestAll(items) {
  if (hasWebCrypto) return Promise.all(items.map((it) => sha256(it.bytes)));
  const slots = workers();
  if (!slots.length) return Promise.all(items.map((it) => sha256Fallback(it.bytes)));
  return Promise.all(items.map((it) => {
    const slot = slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = ++nextId;
    slot.busy++;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject, slot, bytes: it.bytes });
      slot.worker.postMessage({ id, bytes: it.bytes });
    });
  }));
}
