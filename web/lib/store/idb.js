// @ts-check
/** @file Chunks in IndexedDB: where OPFS is missing (insecure contexts, older browsers). */

import { repeats } from '../delta.js';
import { ChunkcastError, asStorageError } from '../errors.js';
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
    /** @type {{i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]} */
    this.pending = [];
    this.pendingBytes = 0;
    /** @type {Promise<void>} the chain of write transactions */
    this.writing = Promise.resolve();
    this.writingBytes = 0; // handed to a transaction, not yet committed
    /** @type {any} the pending chunks' write, due in LINGER_MS */
    this.timer = null;
    /** @type {unknown} the first failed write: every later put or flush reports it */
    this.failed = null;
  }

  static supported() {
    return idbSupported();
  }

  /** @param {number} i */
  _k(i) {
    return `${this.key}/${String(i).padStart(10, '0')}`;
  }

  /**
   * The chunks stored for `m`. Another version's stay where `m` repeats
   * them (same index, offset, length and SHA-256, see delta.js): records
   * are keyed by chunk number, not version, so a kept chunk's bytes are
   * not rewritten, only the file's record moves to `m`'s version; the
   * others are deleted in the same transaction.
   * @param {Manifest} m
   */
  async open(m) {
    this.db?.close();
    this.db = await idbOpen();
    const tx = this.db.transaction(['files', 'chunks'], 'readwrite');
    const files = tx.objectStore('files');
    const chunks = tx.objectStore('chunks');
    const info = await idbDone(files.get(this.key));
    const out = new Map();
    const moved = !!info && info.version !== m.version;
    // A live text that finished meanwhile has its finished version now
    // (live.js): the same text, not a change.
    this.staleVersion = moved && !(info.live && m.kind === 'text') ? info.version : null;
    if (!info || moved) files.put({ version: m.version, size: m.size, name: m.name, live: !!m.live }, this.key);
    if (info) {
      /** @type {{i: number, off?: number, digest: Uint8Array, blob: Blob}[]} */
      const recs = await idbDone(chunks.getAll(idbRange(this.key)));
      for (const r of recs) {
        if (!moved || repeats(m, r.i, r.off, r.blob.size, r.digest)) out.set(r.i, r.digest);
        else chunks.delete(this._k(r.i));
      }
    }
    await idbDone(tx);
    return out;
  }

  /**
   * Queues verified chunks; every BATCH bytes go out in one transaction.
   * The caller waits only when more than HIGH_WATER bytes are being
   * written: waiting on each transaction left the page idle while IndexedDB
   * wrote (measured: two thirds of a 256 MiB download over plain HTTP).
   * @param {{i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]} items
   */
  put(items) {
    if (this.failed) throw asStorageError(this.failed, 'writing to IndexedDB');
    for (const it of items) { this.pending.push(it); this.pendingBytes += it.bytes.length; }
    if (this.pendingBytes >= IdbStore.BATCH) this._write();
    // A slow stream (a live text, a paced one) still reaches the disk
    // promptly, so a reload finds it.
    else if (!this.timer) this.timer = setTimeout(() => { this.timer = null; this._write(); }, IdbStore.LINGER_MS);
    if (this.writingBytes > IdbStore.HIGH_WATER) return this.writing;
  }

  /** Hands the pending chunks to a transaction, after the ones before it. */
  _write() {
    clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (!batch.length) return;
    const db = /** @type {IDBDatabase} */ (this.db);
    this.writingBytes += bytes;
    this.writing = this.writing.then(async () => {
      if (this.failed) return;
      const tx = db.transaction('chunks', 'readwrite');
      const os = tx.objectStore('chunks');
      for (const { i, off, bytes: b, digest } of batch) os.put({ i, off, digest, blob: new Blob([/** @type {BlobPart} */ (b)]) }, this._k(i));
      await idbDone(tx);
    }).catch((e) => {
      this.failed ??= e;
    }).finally(() => {
      this.writingBytes -= bytes;
    });
  }

  async flush() {
    this._write();
    await this.writing;
    if (this.failed) throw asStorageError(this.failed, 'writing to IndexedDB');
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
    clearTimeout(this.timer);
    this.pending = [];
    this.pendingBytes = 0;
    await this.writing;
    this.failed = null;
    await clearStored(this.name);
  }

  async close() {
    await this.flush().catch(() => {});
    this.db?.close();
    this.db = null;
  }
}
/** Bytes of chunks written per IndexedDB transaction. */
IdbStore.BATCH = 8 << 20;
/** Longest a verified chunk waits for its batch before it is written, in ms. */
IdbStore.LINGER_MS = 250;
/** Bytes handed to transactions and not yet committed before `put` makes the caller wait. */
IdbStore.HIGH_WATER = 32 << 20;
