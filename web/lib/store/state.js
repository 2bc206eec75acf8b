// @ts-check
/** @file The OPFS store's record of which chunks are on disk: two alternating slots, so a crash mid-write never loses the last good record. */

/**
 * The record used to be one file rewritten in place (truncate, then write):
 * a crash between the two left it empty or torn, and every chunk on disk
 * was downloaded again. Now each save goes to the slot NOT holding the
 * newest record, with a sequence number one higher; a reader takes the
 * highest-numbered record that parses. A torn write can only damage the
 * slot being written, and the other still holds the previous record (the
 * data it describes was flushed before it was written, so it is still
 * true: chunks are only ever added to the file while a version lasts).
 */

/**
 * @typedef {Object} StateRecord
 * @property {number} seq  higher is newer
 * @property {string} version
 * @property {number} size
 * @property {number} chunks
 * @property {string} [name]
 * @property {string} bitmap  base64, bit `i` set when chunk `i` is on disk
 */

/** The two slot files of `key`, in the OPFS directory `chunkcast/`. @param {string} key */
export function stateSlots(key) {
  return [`${key}.state0`, `${key}.state1`];
}

/** The file name the record had before the slots (removed on discard). @param {string} key */
export function legacyState(key) {
  return `${key}.state`;
}

/**
 * A slot's text as a record, or null when it is empty, torn or not one.
 * @param {string} text
 * @returns {StateRecord|null}
 */
export function parseRecord(text) {
  if (!text) return null;
  try {
    const r = JSON.parse(text);
    if (r && Number.isSafeInteger(r.seq) && typeof r.version === 'string' && Number.isSafeInteger(r.chunks)
      && typeof r.bitmap === 'string') return r;
  } catch { /* torn */ }
  return null;
}

/**
 * The newest valid record of the slots' texts, and the slot to write next
 * (the other one).
 * @param {string[]} texts  one per slot, '' for a missing or empty slot
 * @returns {{record: StateRecord|null, slot: number, next: number}}
 */
export function newest(texts) {
  /** @type {StateRecord|null} */
  let record = null;
  let slot = -1;
  texts.forEach((t, k) => {
    const r = parseRecord(t);
    if (r && (!record || r.seq > /** @type {StateRecord} */ (record).seq)) { record = r; slot = k; }
  });
  return { record, slot, next: slot === 0 ? 1 : 0 };
}

/** Set bits in a bitmap: how many chunks a record lists. @param {Uint8Array} bits */
export function countBits(bits) {
  let n = 0;
  for (const b of bits) for (let x = b; x; x &= x - 1) n++;
  return n;
}
