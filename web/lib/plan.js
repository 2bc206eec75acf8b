// @ts-check
/** @file Gap planning: from the chunks' states, what to ask the server for next. Pure, so it is unit-tested without a server. */

import { MAX_RANGE, formatNeed } from './protocol.js';

/** A chunk's state in a download. */
export const CHUNK = Object.freeze({
  /** neither stored nor asked for: the event stream fetches it */
  MISSING: 0,
  /** its SHA-256 matched the manifest and it is stored */
  VERIFIED: 1,
  /** failed verification: to refetch through the range endpoint */
  QUEUED: 2,
  /** asked for by a range request that has not finished */
  INFLIGHT: 3,
});

/**
 * Half-open runs `[start, end)` of the indices `0..n` for which `pick` is true.
 * @param {number} n
 * @param {(i: number) => boolean} pick
 * @returns {[number, number][]}
 */
export function runs(n, pick) {
  /** @type {[number, number][]} */
  const out = [];
  let start = -1;
  for (let i = 0; i <= n; i++) {
    const p = i < n && pick(i);
    if (p && start < 0) start = i;
    else if (!p && start >= 0) { out.push([start, i]); start = -1; }
  }
  return out;
}

/**
 * @typedef {Object} PlanInput
 * @property {boolean} streaming  an event stream is open
 * @property {number} ranges      range requests in flight
 * @property {number} parallel    range requests allowed in flight at most
 * @property {number} batch       chunks per range request at most
 * @property {number} [maxRange]   the manifest's `max_range`: caps `batch` (protocol.js's MAX_RANGE when absent)
 * @property {number} [maxNeed]    the manifest's `max_need`: caps a `need` list (protocol.js's MAX_NEED when absent)
 * @property {boolean} busy       received chunks are still waiting to be verified
 * @property {boolean} [tail]     more chunks will follow the last one (a live text, see
 *   live.js): the stream stays open, from the first missing chunk or past the last, and
 *   failed chunks are refilled while it runs
 */

/**
 * @typedef {Object} Plan
 * @property {[number, number][]} ranges  range requests to send now, `[start, end)`
 * @property {{first: number, from?: number, need?: string}|null} stream
 *   the event stream to open: `from=` when one tail is missing (nothing when
 *   that is the whole file), else `need=` with the gaps (as many as fit in
 *   a URL; the rest is asked for when that stream ends)
 * @property {boolean} stuck  nothing missing, nothing in flight, yet not all
 *   verified: every chunk not verified should be marked missing again
 */

/**
 * What to fetch next. Failed chunks (`QUEUED`) are refilled by range once
 * the event stream is over: by then the failures are collected, so
 * neighbouring ones share a request. Missing chunks go through one event
 * stream, and only once every received chunk is verified (until then they
 * count as missing, and would be asked for twice).
 * @param {Uint8Array} status  a {@link CHUNK} value per chunk
 * @param {PlanInput} now
 * @returns {Plan}
 */
export function plan(status, now) {
  const n = status.length;
  /** @type {[number, number][]} */
  const ranges = [];
  if (!now.streaming || now.tail) {
    const room = Math.max(0, now.parallel - now.ranges);
    const batch = Math.max(1, Math.min(now.batch, now.maxRange ?? MAX_RANGE));
    for (let i = 0; i < n && ranges.length < room; i++) {
      if (status[i] !== CHUNK.QUEUED) continue;
      let b = i + 1;
      while (b < n && b - i < batch && status[b] === CHUNK.QUEUED) b++;
      ranges.push([i, b]);
      i = b - 1;
    }
  }
  if (now.streaming || now.busy) return { ranges, stream: null, stuck: false };
  if (now.tail) {
    // A live stream serves no `need=`: it runs from the first missing chunk
    // (copies of verified ones after it are dropped), or waits past the last.
    let first = status.indexOf(CHUNK.MISSING);
    if (first < 0) first = n;
    return { ranges, stream: first > 0 ? { first, from: first } : { first }, stuck: false };
  }
  const gaps = runs(n, (i) => status[i] === CHUNK.MISSING);
  if (gaps.length === 0) {
    const inFlight = now.ranges > 0 || ranges.length > 0;
    const stuck = !inFlight && status.some((s) => s !== CHUNK.VERIFIED);
    return { ranges, stream: null, stuck };
  }
  const first = gaps[0][0];
  if (gaps.length === 1 && gaps[0][1] === n) return { ranges, stream: first > 0 ? { first, from: first } : { first }, stuck: false };
  return { ranges, stream: { first, need: formatNeed(gaps, now.maxNeed).need }, stuck: false };
}
