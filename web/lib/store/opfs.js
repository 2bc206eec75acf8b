// @ts-check
/** @file Chunks in the Origin Private File System, written by the storage worker (`workers/storage.js`) off the main thread. */

import { ChunkcastError } from '../errors.js';
import { clearStored, opfsDir, opfsSupported, storageKey } from './common.js';

/** @typedef {import('../protocol.js').Manifest} Manifest */

/**
 * Chunks in the Origin Private File System, written by a worker through a
 * sync access handle (no copy through the main thread's event loop, no
 * per-write promise). The worker records which chunks are on disk in a
 * sidecar file, after flushing the data, and re-verifies them on open.
 */
export class OpfsStore {
  /** @param {string} name  the served file's name */
  constructor(name) {
    this.kind = 'opfs';
    this.persistent = true;
    this.name = name;
    this.key = storageKey(name);
    /** @type {Worker|null} */
    this.worker = null;
    this.seq = 0;
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: any) => void}>} */
    this.waiting = new Map();
    this.unacked = 0; // bytes posted and not yet written
    /** @type {(() => void)|null} */
    this.drained = null;
    // Chunks are decoded straight into a staging buffer (`reserve`), and the
    // verified ones posted to the worker a few MiB at a time, the buffer
    // transferred (not cloned) and handed back once written: one message
    // and, for consecutive chunks, one disk write per batch instead of per
    // chunk, and no allocation or copy per chunk. A full buffer whose
    // reserved chunks are still being verified waits in `sealed` until
    // `settle()`.
    /** @type {Uint8Array|null} */
    this.stage = null;
    this.stageUsed = 0;
    /** @type {{i: number, off: number, at: number, len: number}[]} */
    this.stageItems = [];
    this.outstanding = 0; // views reserved and not yet settled
    /** @type {{stage: Uint8Array, items: {i: number, off: number, at: number, len: number}[]}[]} */
    this.sealed = [];
    /** @type {ArrayBuffer[]} */
    this.spare = [];
    this.stageSize = OpfsStore.STAGE;
    /** @type {any} */
    this.stageTimer = null;
    /** @type {Error|null} */
    this.failed = null;
  }

  static supported() {
    return opfsSupported();
  }

  /** @param {string} op @param {object} [msg] @param {Transferable[]} [transfer] */
  _call(op, msg = {}, transfer = []) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      /** @type {Worker} */ (this.worker).postMessage({ op, id, key: this.key, ...msg }, transfer);
    });
  }

  /** @param {Manifest} m */
  async open(m) {
    if (!this.worker) {
      this.worker = new Worker(new URL('../../workers/storage.js', import.meta.url), { type: 'module' });
      this.worker.onmessage = (e) => this._reply(e.data);
      this.worker.onerror = (e) => this._fail(new ChunkcastError('storage', `storage worker failed: ${e.message}`));
    }
    /** @type {{chunks: number[], digests: Uint8Array, stale: string|null}} */
    const r = await this._call('open', { manifest: { name: m.name, version: m.version, size: m.size, chunks: m.chunks, chunk_size: m.chunk_size, offsets: m.offsets || null, hashes: m.hashes } });
    this.staleVersion = r.stale;
    this._dropStage();
    this.stageSize = Math.max(OpfsStore.STAGE, m.chunk_size);
    this.spare = [];
    const out = new Map();
    r.chunks.forEach((i, k) => out.set(i, r.digests.subarray(k * 32, k * 32 + 32)));
    return out;
  }

  /** @param {any} msg */
  _reply(msg) {
    if (msg.op === 'written') {
      this.unacked -= msg.bytes;
      if (msg.buf && msg.buf.byteLength === this.stageSize && this.spare.length < 4) this.spare.push(msg.buf);
      if (this.drained && this.unacked <= OpfsStore.HIGH_WATER / 2) { const d = this.drained; this.drained = null; d(); }
      return;
    }
    if (msg.op === 'fatal') return this._fail(new ChunkcastError('storage', msg.error));
    const w = this.waiting.get(msg.id);
    if (!w) return;
    this.waiting.delete(msg.id);
    if (msg.error) w.reject(new ChunkcastError('storage', msg.error));
    else w.resolve(msg.result);
  }

  /** @param {Error} e */
  _fail(e) {
    this.failed = e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    if (this.drained) { const d = this.drained; this.drained = null; d(); }
  }

  /** @param {number} len */
  reserve(len) {
    if (this.failed || !this.worker || len > this.stageSize) return null;
    const at = this._room(len);
    this.outstanding++;
    return /** @type {Uint8Array} */ (this.stage).subarray(at, at + len);
  }

  /** Every reserved view has been put or abandoned: full buffers can go. */
  settle() {
    this.outstanding = 0;
    for (const { stage, items } of this.sealed.splice(0)) this._send(stage, items);
    this._arm();
  }

  /** Where `len` more bytes go in the current buffer (a new one if full). @param {number} len */
  _room(len) {
    if (this.stage && this.stageUsed + len > this.stage.length) {
      if (this.outstanding) this.sealed.push({ stage: this.stage, items: this.stageItems });
      else this._send(this.stage, this.stageItems);
      this.stage = null;
    }
    if (!this.stage) {
      this.stage = new Uint8Array(this.spare.pop() ?? new ArrayBuffer(this.stageSize));
      this.stageUsed = 0;
      this.stageItems = [];
    }
    const at = this.stageUsed;
    this.stageUsed += len;
    return at;
  }

  /** @param {{i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]} items */
  put(items) {
    if (this.failed) throw this.failed;
    for (const { i, off, bytes } of items) {
      const len = bytes.length;
      this.unacked += len;
      if (this.stage && bytes.buffer === this.stage.buffer) {
        this.stageItems.push({ i, off, at: bytes.byteOffset, len });
        continue;
      }
      const s = this.sealed.find((x) => x.stage.buffer === bytes.buffer);
      if (s) {
        s.items.push({ i, off, at: bytes.byteOffset, len });
        continue;
      }
      const at = this._room(len); // bytes from elsewhere are copied in
      /** @type {Uint8Array} */ (this.stage).set(bytes, at);
      this.stageItems.push({ i, off, at, len });
    }
    this._arm();
    if (this.unacked > OpfsStore.HIGH_WATER) {
      return new Promise((resolve, reject) => {
        this.drained = () => (this.failed ? reject(this.failed) : resolve(undefined));
      });
    }
  }

  /** A slow (paced) stream still reaches the disk promptly. */
  _arm() {
    if (this.stageItems.length && !this.stageTimer) this.stageTimer = setTimeout(() => { this.stageTimer = null; this._post(); }, 50);
  }

  /** Posts the current buffer's chunks, unless views into it are still being verified. */
  _post() {
    clearTimeout(this.stageTimer);
    this.stageTimer = null;
    if (!this.stage) return;
    if (this.outstanding) { this._arm(); return; }
    this._send(this.stage, this.stageItems);
    this.stage = null;
    this.stageUsed = 0;
    this.stageItems = [];
  }

  /** @param {Uint8Array} stage @param {{i: number, off: number, at: number, len: number}[]} items */
  _send(stage, items) {
    if (!this.worker || this.failed) return;
    if (!items.length) {
      if (this.spare.length < 4) this.spare.push(/** @type {ArrayBuffer} */ (stage.buffer));
      return;
    }
    const buf = stage.buffer;
    this.worker.postMessage({ op: 'put', key: this.key, buf, list: items }, [buf]);
  }

  /** Forgets the staged chunks (the file is being discarded or reopened). */
  _dropStage() {
    clearTimeout(this.stageTimer);
    this.stageTimer = null;
    for (const { items } of [...this.sealed, { items: this.stageItems }]) for (const it of items) this.unacked -= it.len;
    this.sealed = [];
    this.outstanding = 0;
    this.stage = null;
    this.stageUsed = 0;
    this.stageItems = [];
  }

  async flush() {
    this._post();
    if (this.worker) await this._call('flush');
  }

  /** @param {number} i @param {number} off @param {number} len */
  async read(i, off, len) {
    this._post();
    return /** @type {Uint8Array} */ (await this._call('read', { off, len }));
  }

  /** @param {string} [type] */
  async blob(type) {
    this._post();
    this.timing = await this._call('finish'); // closes the sync handle, which locks the file
    const dir = await opfsDir();
    const file = await (await dir.getFileHandle(`${this.key}.part`)).getFile();
    return type ? new Blob([file], { type }) : file;
  }

  async discard() {
    this._dropStage();
    if (this.worker) await this._call('discard');
    else await clearStored(this.name);
  }

  async close() {
    if (!this.worker) return;
    this._post();
    try { await this._call('close'); } catch { /* already failed */ }
    this.worker.terminate();
    this.worker = null;
  }
}
/** Bytes posted to the worker and not yet written before `put` makes the caller wait. */
OpfsStore.HIGH_WATER = 64 << 20;
/** Bytes staged per message to the worker (at least one chunk). */
OpfsStore.STAGE = 4 << 20;
