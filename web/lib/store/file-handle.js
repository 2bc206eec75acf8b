// @ts-check
/**
 * @file Verified chunks written straight into a file the person picked
 * (File System Access API: `showSaveFilePicker`), so a finished download is
 * already saved, with no second copy in the browser's storage. The handle
 * and the record of which chunks are written are kept in IndexedDB, so a
 * reload can resume into the same file (after asking permission again).
 *
 * How writes become durable: a `FileSystemWritableFileStream` writes into a
 * swap file that replaces the real one only on `close()`. So the store
 * commits (closes) every `commitBytes` written, on `flush()` (pause, close,
 * the end) and at least every `commitMs`, and records the chunks only after
 * their commit: the record never names a chunk the file does not hold, and a
 * reload loses at most the last few seconds. Chromium copies the existing
 * file into the swap file when a writable is reopened with
 * `keepExistingData`, so commits are spaced rather than made per chunk.
 */

import { toHex } from '../bytes.js';
import { ChunkcastError } from '../errors.js';
import { digestAll } from '../hasher.js';
import { span } from '../protocol.js';

/** @typedef {import('../protocol.js').Manifest} Manifest */

const DB = 'chunkcast-files';

/**
 * @typedef {Object} HandleRecord
 * @property {string} name  the served name
 * @property {FileSystemFileHandle} handle
 * @property {string} version
 * @property {number} size
 * @property {number} chunks
 * @property {number[]} written  chunk numbers committed to the file
 */

/** @returns {Promise<IDBDatabase>} */
function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => { req.result.createObjectStore('handles'); };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new ChunkcastError('storage', `IndexedDB: ${req.error?.message}`));
  });
}

/**
 * One IndexedDB operation on the records, as a promise.
 * @param {IDBTransactionMode} mode @param {(s: IDBObjectStore) => IDBRequest} op
 * @returns {Promise<any>}
 */
async function withRecords(mode, op) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction('handles', mode);
      const req = op(tx.objectStore('handles'));
      tx.oncomplete = () => resolve(req.result);
      tx.onabort = tx.onerror = () => reject(new ChunkcastError('storage', `IndexedDB: ${tx.error?.message ?? 'aborted'}`));
    });
  } finally {
    db.close();
  }
}

/** Whether this browser can save straight to a picked file. */
export function fileHandleSupported() {
  return typeof /** @type {any} */ (globalThis).showSaveFilePicker === 'function' && typeof indexedDB !== 'undefined';
}

/** Every download that writes into a picked file, as recorded. @returns {Promise<HandleRecord[]>} */
export async function listHandles() {
  if (typeof indexedDB === 'undefined') return [];
  try { return await withRecords('readonly', (s) => s.getAll()); } catch { return []; }
}

/** The record of `name`, if any. @param {string} name @returns {Promise<HandleRecord|undefined>} */
export async function findHandle(name) {
  if (typeof indexedDB === 'undefined') return undefined;
  try { return await withRecords('readonly', (s) => s.get(name)); } catch { return undefined; }
}

/** Forgets `name`'s picked file (the file itself stays where it is). @param {string} name */
export async function forgetHandle(name) {
  if (typeof indexedDB === 'undefined') return;
  await withRecords('readwrite', (s) => s.delete(name)).catch(() => {});
}

/**
 * Asks for write access to a kept handle again (a reload loses it); needs a
 * click to have just happened.
 * @param {FileSystemFileHandle} handle
 */
export async function allowWriting(handle) {
  const h = /** @type {any} */ (handle);
  const opts = { mode: 'readwrite' };
  if (typeof h.queryPermission !== 'function') return true;
  if ((await h.queryPermission(opts)) === 'granted') return true;
  return typeof h.requestPermission === 'function' && (await h.requestPermission(opts)) === 'granted';
}

/** The ChunkStore that writes into a picked file. */
export class FileHandleStore {
  /**
   * @param {string} name  the served name (the record's key)
   * @param {FileSystemFileHandle} handle
   * @param {{commitBytes?: number, commitMs?: number}} [opts]
   */
  constructor(name, handle, opts = {}) {
    this.kind = 'file';
    this.persistent = true;
    this.name = name;
    this.handle = handle;
    this.commitBytes = opts.commitBytes ?? 64 << 20;
    this.commitMs = opts.commitMs ?? 3000;
    this.lastCommit = performance.now();
    /** @type {Manifest|null} */
    this.manifest = null;
    /** @type {FileSystemWritableFileStream|null} */
    this.writable = null;
    /** @type {Set<number>} committed to the file and recorded */
    this.written = new Set();
    /** @type {Set<number>} written to the open writable, not committed yet */
    this.pending = new Set();
    this.pendingBytes = 0;
    /** @type {string|null} */
    this.staleVersion = null;
    /** @type {Promise<void>} writes and commits run one after another */
    this.chain = Promise.resolve();
  }

  /**
   * The chunks of this version already in the file, each hashed again from
   * the file's bytes (the record says where to look; the bytes decide). For
   * another version (the file grew or changed on the server), a recorded
   * chunk is kept when the bytes at the new chunk's place hash to the new
   * manifest's digest (lib/delta.js): they are not rewritten.
   * @param {Manifest} m
   */
  async open(m) {
    this.manifest = m;
    const rec = await findHandle(this.name);
    /** @type {Map<number, Uint8Array>} */
    const have = new Map();
    this.written.clear();
    this.staleVersion = rec && rec.version !== m.version ? rec.version : null;
    if (rec) {
      const file = await this.handle.getFile();
      const ids = rec.written.filter((i) => i < m.chunks);
      for (let k = 0; k < ids.length; k += 64) {
        const batch = (await Promise.all(ids.slice(k, k + 64).map(async (i) => {
          const { off, len } = span(m, i);
          return { i, bytes: new Uint8Array(await file.slice(off, off + len).arrayBuffer()) };
        }))).filter((b) => b.bytes.length === span(m, b.i).len);
        const digests = await digestAll(batch);
        batch.forEach((b, j) => { if (toHex(digests[j]) === m.hashes[b.i]) { have.set(b.i, digests[j]); this.written.add(b.i); } });
      }
    } else {
      // Nothing yet: the file starts empty.
      const w = await this.handle.createWritable({ keepExistingData: false });
      await w.close();
    }
    await this._record();
    return have;
  }

  /** @param {{i: number, off: number, bytes: Uint8Array}[]} items */
  put(items) {
    this.chain = this.chain.then(async () => {
      if (!this.writable) this.writable = await this.handle.createWritable({ keepExistingData: true });
      for (const { i, off, bytes } of items) {
        await this.writable.write({ type: 'write', position: off, data: /** @type {BufferSource} */ (bytes) });
        this.pending.add(i);
        this.pendingBytes += bytes.length;
      }
      if (this.pendingBytes >= this.commitBytes || performance.now() - this.lastCommit >= this.commitMs) await this._commit();
    });
    return this.chain;
  }

  /** Makes what was written part of the file, then records it. */
  async _commit() {
    this.lastCommit = performance.now();
    if (this.writable) {
      const w = this.writable;
      this.writable = null;
      await w.close();
    }
    if (!this.pending.size) return;
    for (const i of this.pending) this.written.add(i);
    this.pending.clear();
    this.pendingBytes = 0;
    await this._record();
  }

  async _record() {
    const m = /** @type {Manifest} */ (this.manifest);
    /** @type {HandleRecord} */
    const rec = { name: this.name, handle: this.handle, version: m.version, size: m.size, chunks: m.chunks, written: [...this.written] };
    await withRecords('readwrite', (s) => s.put(rec, this.name));
  }

  flush() {
    this.chain = this.chain.then(() => this._commit());
    return this.chain;
  }

  /** @param {number} i @param {number} off @param {number} len */
  async read(i, off, len) {
    if (this.pending.has(i)) await this.flush();
    const file = await this.handle.getFile();
    return new Uint8Array(await file.slice(off, off + len).arrayBuffer());
  }

  /**
   * The finished file: the picked file itself. Its record is dropped, since
   * nothing is left to resume.
   * @param {string} [type]
   */
  async blob(type) {
    await this.flush();
    const m = /** @type {Manifest} */ (this.manifest);
    const file = await this.handle.getFile();
    // A file that held more before (a longer older version) is cut to size.
    if (file.size !== m.size) {
      const w = await this.handle.createWritable({ keepExistingData: true });
      await w.truncate(m.size);
      await w.close();
    }
    await forgetHandle(this.name);
    const done = await this.handle.getFile();
    return type ? done.slice(0, done.size, type) : done;
  }

  async discard() {
    await this.chain.catch(() => {});
    if (this.writable) { await this.writable.abort().catch(() => {}); this.writable = null; }
    this.written.clear();
    this.pending.clear();
    this.pendingBytes = 0;
    const w = await this.handle.createWritable({ keepExistingData: false });
    await w.close();
    await forgetHandle(this.name);
  }

  async close() {
    await this.flush().catch(() => {});
  }

  /**
   * Gives up the download: empties the picked file and removes it where the
   * browser allows (Chromium's `FileSystemHandle.remove()`), and forgets it.
   */
  async drop() {
    await this.discard().catch(() => {});
    try { await /** @type {any} */ (this.handle).remove?.(); } catch { /* an empty file stays */ }
  }
}
