// @ts-check
/** @file Text assembly: a text file's verified chunks handed to `ontext` in chunk order, whatever order they were verified in. */
//
// A chunk's text comes with its notice (interface.js) and waits here until
// every chunk before it is delivered; one verified without its text (found
// in storage when the download resumed) is read back from the store when
// its turn comes. Text chunks end on a character boundary (the manifest's
// `offsets`), so each decodes alone.

import { asStorageError } from './errors.js';

/** @typedef {import('./ledger.js').ChunkLedger} ChunkLedger */
/** @typedef {import('./store/index.js').ChunkStore} ChunkStore */

export class TextAssembler {
  /**
   * @param {ChunkLedger} ledger  which chunks are verified, and where each lies
   * @param {ChunkStore} store  where a chunk without its text is read back from
   * @param {((text: string, info: {i: number, offset: number}) => void)|undefined} ontext
   */
  constructor(ledger, store, ontext) {
    this.ledger = ledger;
    this.store = store;
    this.ontext = ontext;
    /** the first chunk not yet delivered */
    this.next = 0;
    /** @type {Map<number, string>} verified texts waiting for the chunks before them (one per chunk: bounded by the file) */
    this.pending = new Map();
  }

  /**
   * After the file changed (download.js): delivery goes on after the `told`
   * chunks already delivered when the new version kept every one of them,
   * else starts over from the first chunk.
   * @param {number} told
   */
  carryOver(told) {
    let i = 0;
    while (i < told && this.ledger.isVerified(i)) i++;
    this.next = i === told ? told : 0;
  }

  /** A verified chunk's text. @param {number} i @param {string} text */
  add(i, text) {
    if (i >= this.next) this.pending.set(i, text);
  }

  /**
   * Delivers verified text in order, from the first chunk not yet
   * delivered, while `live()` holds. Safe to call again while it runs: a
   * chunk is delivered once.
   * @param {() => boolean} live
   */
  async emit(live) {
    const ledger = this.ledger;
    while (this.next < ledger.chunks && ledger.isVerified(this.next) && live()) {
      const i = this.next;
      let text = this.pending.get(i);
      if (text === undefined) {
        const { off, len } = ledger.span(i);
        let bytes;
        try {
          bytes = await this.store.read(i, off, len);
        } catch (e) {
          throw asStorageError(e, `reading chunk ${i} back from storage`);
        }
        text = new TextDecoder().decode(bytes);
        if (!live() || this.next !== i) return;
      }
      this.pending.delete(i);
      this.next = i + 1;
      this.ontext?.(text, { i, offset: ledger.span(i).off });
    }
  }
}
