// @ts-check
/** @file Chunks in memory: for small files, and for Node. */

import { repeats } from '../delta.js';
import { ChunkcastError } from '../errors.js';

/** @typedef {import('../protocol.js').Manifest} Manifest */

/** Chunks in memory: for small files, and for Node. Nothing survives a reload. */
export class MemoryStore {
  constructor() {
    this.kind = 'memory';
    this.persistent = false;
    /** @type {Map<number, {off: number, bytes: Uint8Array, digest: Uint8Array}>} */
    this.chunks = new Map();
    this.version = '';
    /** @type {string|null} */
    this.staleVersion = null;
  }

  /**
   * Another version's chunks stay where `m` repeats them (delta.js); the rest are dropped.
   * @param {Manifest} m
   */
  async open(m) {
    this.staleVersion = this.version && this.version !== m.version ? this.version : null;
    if (this.version !== m.version) {
      for (const [i, c] of this.chunks) if (!repeats(m, i, c.off, c.bytes.length, c.digest)) this.chunks.delete(i);
    }
    this.version = m.version;
    return new Map([...this.chunks].map(([i, c]) => [i, c.digest]));
  }

  /** @param {{i: number, off: number, bytes: Uint8Array, digest: Uint8Array}[]} items */
  put(items) {
    for (const { i, off, bytes, digest } of items) this.chunks.set(i, { off, bytes, digest });
  }

  async flush() {}

  /** @param {number} i */
  async read(i) {
    const c = this.chunks.get(i);
    if (!c) throw new ChunkcastError('storage', `chunk ${i} is not stored`);
    return c.bytes;
  }

  /** @param {string} [type] */
  async blob(type) {
    const parts = [...this.chunks.keys()].sort((a, b) => a - b).map((i) => /** @type {BlobPart} */ (this.chunks.get(i)?.bytes));
    return new Blob(parts, { type: type || 'application/octet-stream' });
  }

  async discard() {
    this.chunks.clear();
    this.version = '';
  }

  async close() {}
}
