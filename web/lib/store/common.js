// @ts-check
/** @file Where the persistent stores keep a file's chunks (OPFS files, IndexedDB records), and finding or removing them. */

import { decodeBase64 } from '../bytes.js';
import { ChunkcastError } from '../errors.js';
import { countBits, legacyState, newest, stateSlots } from './state.js';

/**
 * A served file's name as a storage key: percent-encoded, dots too, so no
 * name can be `.`, `..` or collide with the `.part`/`.state` suffixes.
 * @param {string} name
 */
export function storageKey(name) {
  return encodeURIComponent(name).replace(/\./g, '%2E');
}

/** Whether the Origin Private File System and workers exist (secure contexts only). */
export function opfsSupported() {
  return typeof Worker === 'function' && typeof navigator !== 'undefined' && !!navigator.storage?.getDirectory;
}

/** Whether IndexedDB exists (also in insecure contexts). */
export function idbSupported() {
  return typeof indexedDB !== 'undefined';
}

/** The OPFS directory of chunkcast's files. */
export async function opfsDir() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle('chunkcast', { create: true });
}

/** The OPFS files of `key`: the data, the record slots, and the record's old name. @param {string} key */
export function opfsFiles(key) {
  return [`${key}.part`, ...stateSlots(key), legacyState(key)];
}

const IDB_NAME = 'chunkcast';

/** @returns {Promise<IDBDatabase>} */
export function idbOpen() {
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

/**
 * A request's result or a transaction's completion, as a promise.
 * @param {IDBRequest|IDBTransaction} r
 * @returns {Promise<any>}
 */
export function idbDone(r) {
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

/** The IndexedDB key range of `key`'s chunks. @param {string} key */
export function idbRange(key) {
  return IDBKeyRange.bound(`${key}/`, `${key}/\uffff`);
}

/**
 * What a previous page left on disk for `name`, if anything: the version
 * and how many chunks are recorded (not yet re-verified).
 * @param {string} name
 * @returns {Promise<{store: string, version: string, chunks: number, size: number}|null>}
 */
export async function findStored(name) {
  const key = storageKey(name);
  if (opfsSupported()) {
    try {
      const dir = await opfsDir();
      const texts = await Promise.all(stateSlots(key).map(async (f) => {
        try { return await (await (await dir.getFileHandle(f)).getFile()).text(); } catch { return ''; }
      }));
      const { record } = newest(texts);
      if (record) return { store: 'opfs', version: record.version, chunks: countBits(decodeBase64(record.bitmap)), size: record.size };
    } catch { /* none */ }
  }
  if (idbSupported()) {
    try {
      const db = await idbOpen();
      const tx = db.transaction(['files', 'chunks']);
      const info = await idbDone(tx.objectStore('files').get(key));
      const n = await idbDone(tx.objectStore('chunks').count(idbRange(key)));
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
  if (opfsSupported()) {
    try {
      const dir = await opfsDir();
      for (const f of opfsFiles(key)) await dir.removeEntry(f).catch(() => {});
    } catch { /* no OPFS */ }
  }
  if (idbSupported()) {
    const db = await idbOpen();
    const tx = db.transaction(['files', 'chunks'], 'readwrite');
    tx.objectStore('chunks').delete(idbRange(key));
    tx.objectStore('files').delete(key);
    await idbDone(tx);
    db.close();
  }
}
