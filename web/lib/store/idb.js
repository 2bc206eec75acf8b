// @ts-check
/** @file Chunks in IndexedDB: where OPFS is missing (insecure contexts, older browsers). */

import { ChunkcastError } from '../errors.js';
import { clearStored, idbDone, idbOpen, idbRange, idbSupported, storageKey } from './common.js';

/** @typedef {import('../protocol.js').Manifest} Manifest */

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
    return idbSupported();
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
    const range = idbRange(this.key);
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
    const range = idbRange(this.key);
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
