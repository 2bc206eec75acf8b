// @ts-check
/** @file Every download a previous page left in this browser's storage (OPFS and IndexedDB), so a reload can offer to resume each one. */

import { findStored, idbDone, idbOpen, idbSupported, opfsDir, opfsSupported } from './common.js';

/**
 * The served names with chunks stored, each with what `findStored` says of
 * it. Names come from the storage keys (`storageKey` percent-encodes them,
 * so decoding gives the name back).
 * @returns {Promise<{name: string, store: string, version: string, chunks: number, size: number}[]>}
 */
export async function listStored() {
  /** @type {Set<string>} */
  const keys = new Set();
  if (opfsSupported()) {
    try {
      const dir = await opfsDir();
      // @ts-ignore: FileSystemDirectoryHandle is async-iterable in every browser with OPFS
      for await (const name of dir.keys()) {
        const m = /^(.*)\.(part|state[01]?)$/.exec(name);
        if (m) keys.add(m[1]);
      }
    } catch { /* no OPFS here */ }
  }
  if (idbSupported()) {
    try {
      const db = await idbOpen();
      const all = await idbDone(db.transaction('files').objectStore('files').getAllKeys());
      db.close();
      for (const k of all) if (typeof k === 'string') keys.add(k);
    } catch { /* no IndexedDB here */ }
  }
  const found = [];
  for (const key of keys) {
    let name;
    try { name = decodeURIComponent(key); } catch { continue; }
    const stored = await findStored(name);
    if (stored) found.push({ name, ...stored });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * How much this origin stores and may store, in bytes; nulls where the
 * browser does not say.
 * @returns {Promise<{usage: number|null, quota: number|null}>}
 */
export async function storageEstimate() {
  try {
    const e = await navigator.storage?.estimate?.();
    return { usage: e?.usage ?? null, quota: e?.quota ?? null };
  } catch {
    return { usage: null, quota: null };
  }
}
