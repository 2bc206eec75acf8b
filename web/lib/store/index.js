// @ts-check
/** @file The storage interface every store implements, and the choice of a store for a file. */

import { asError, asStorageError } from '../errors.js';
import { IdbStore } from './idb.js';
import { MemoryStore } from './memory.js';
import { OpfsStore } from './opfs.js';

/** @typedef {import('../protocol.js').Manifest} Manifest */

/**
 * The storage interface. A store holds the chunks of one file version.
 * @typedef {Object} ChunkStore
 * @property {string} kind  'memory' | 'opfs' | 'idb'
 * @property {boolean} persistent  survives a page reload
 * @property {(m: Manifest) => Promise<Map<number, Uint8Array>>} open
 *   Chunks of this version already stored and verified, with their computed
 *   digests. Holding another version (the file grew or changed on the
 *   server), the store moves to `m`'s: it keeps each chunk `m` repeats (same
 *   index, offset, length and SHA-256, see delta.js) without rewriting its
 *   bytes, and drops the rest. Called again on an open store (a change found
 *   while downloading), after `flush()`.
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
 * @property {string|null} [staleVersion]  set by open() to the version it held when that was another one
 * @property {Record<string, number>} [timing]  the store's own timings, if it keeps any
 */

/**
 * The store for a file of `size` bytes: memory up to `memoryLimit`, else OPFS,
 * else IndexedDB, else memory. A live text (`live`, see live.js) has no size
 * yet and is followed to be read: IndexedDB, which keeps each chunk as its
 * own record and so grows a chunk at a time (the OPFS store's record is
 * sized by the manifest when it opens), so a reload resumes it; else memory.
 * @param {string} name @param {number} size
 * @param {{store?: string|ChunkStore, memoryLimit?: number}} opts
 * @param {boolean} [live]
 * @returns {ChunkStore}
 */
export function chooseStore(name, size, opts, live = false) {
  const want = opts.store ?? 'auto';
  if (typeof want === 'object') return want;
  if (live) return want !== 'memory' && IdbStore.supported() ? new IdbStore(name) : new MemoryStore();
  const limit = opts.memoryLimit ?? 32 << 20;
  if (want === 'memory' || (want === 'auto' && size <= limit)) return new MemoryStore();
  if ((want === 'auto' || want === 'opfs') && OpfsStore.supported()) return new OpfsStore(name);
  if ((want === 'auto' || want === 'idb' || want === 'opfs') && IdbStore.supported()) return new IdbStore(name);
  return new MemoryStore();
}

/**
 * Opens `store` for `m`: the verified chunks it holds, with their digests.
 * OPFS can fail (the file open in another tab, say): when it was chosen
 * automatically (`opts.store` unset or 'auto'), IndexedDB takes over, and
 * the store that opened comes back with them.
 * @param {Manifest} m @param {ChunkStore} store
 * @param {{store?: string|ChunkStore}} opts @param {(msg: string) => void} log
 * @returns {Promise<{store: ChunkStore, have: Map<number, Uint8Array>}>}
 */
export async function openStore(m, store, opts, log) {
  try {
    return { store, have: await store.open(m) };
  } catch (e) {
    if (store.kind !== 'opfs' || (opts.store ?? 'auto') !== 'auto' || !IdbStore.supported()) throw asStorageError(e, 'opening storage');
    log(`OPFS unavailable (${asError(e).message}); using IndexedDB`);
    const idb = new IdbStore(m.name);
    try {
      return { store: idb, have: await idb.open(m) };
    } catch (e2) {
      throw asStorageError(e2, 'opening storage (IndexedDB)');
    }
  }
}

export { IdbStore, MemoryStore, OpfsStore };
export { clearStored, findStored } from './common.js';
