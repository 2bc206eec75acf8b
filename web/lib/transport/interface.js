// @ts-check
/** @file The transport interface, in one place: what a download (download.js, scheduler.js) asks of a transport (a stream, a range, whether chunks still wait) and the notices every transport emits back; and the one reading of the server's named stream events for all of them. */
//
// Two transports implement it (transport/index.js picks one):
//   - eventsource.js: the page's EventSource carries the stream, fetch the
//     range refills (range.js); each chunk is decoded, hashed and stored on
//     the page;
//   - worker.js: a worker of its own fetches both (fetch-source.js,
//     range.js, host.js; a stream's chunks raw from `/files` where it can,
//     raw.js), decodes and verifies each chunk (sink.js), and the OPFS
//     store's worker writes it; the page hears only notices.
// Either way the download sees the same things: a stream's events
// (`StreamEvent`), a range's outcome (`RangeResult`), and notices of which
// chunks arrived, were verified (and stored) or failed (`Notice`). It drives
// both through this interface alone: no branch of it depends on the kind.

import { isChangeCode, parseServerError } from '../protocol.js';

/** @typedef {import('../protocol.js').Manifest} Manifest */
/** @typedef {import('../store/index.js').ChunkStore} ChunkStore */
/** @typedef {import('../errors.js').ChunkcastError} ChunkcastError */

/**
 * What happened to an event stream, in order:
 * - `open`: the stream is open (again, after a drop);
 * - `data`: a chunk event arrived (the stream is alive); its chunk comes as a notice;
 * - `meta`: the version the stream announces (null when unreadable), and for a
 *   live text (live.js) `live` and its `state`;
 * - `live`: a live text's producer went away or came back (`event: state`);
 * - `end`: every chunk asked for was sent, or none was left (204); `end` is
 *   the event's data when it came with one (a live text's says why it ended);
 * - `changed`: the server's `event: error` with code `changed` or `corrupt`;
 * - `error`: the server's `event: error` with any other code;
 * - `drop`: the connection dropped; the transport reconnects with Last-Event-ID;
 * - `closed`: closed for good, by a status other than 200 or 204 (0 when unknown);
 * - `broken`: the server broke the protocol (an unbounded line): no retry helps.
 * After `end`, `changed`, `error`, `closed` and `broken` nothing more comes from it.
 * @typedef {{type: 'open'} | {type: 'data'} | {type: 'meta', version: string|null, live?: boolean, state?: string}
 *   | {type: 'live', state: string} | {type: 'end', end?: {chunks: number, root: string, reason?: string}|null}
 *   | {type: 'changed', message: string} | {type: 'error', code: string, message: string}
 *   | {type: 'drop', message: string} | {type: 'closed', status: number, message: string}
 *   | {type: 'broken', message: string}} StreamEvent
 */

/**
 * Which chunks a transport received, verified (and stored) or found bad
 * since its last notice. A chunk is `verified` only once its SHA-256 equals
 * the manifest's and the store has it. An empty notice means that nothing
 * received waits to be verified any more (see `Transport.busy`).
 * @typedef {Object} Notice
 * @property {number[]} received  chunks that arrived and are being checked
 * @property {number[]} verified  chunk numbers, in the order verified
 * @property {Uint8Array} digests  their computed digests, 32 bytes each
 * @property {[number, string][]} failed  chunk number and why
 * @property {[number, string][]} texts  a verified text chunk's text
 * @property {number} bytes  payload bytes received since the last notice
 */

/**
 * One range request's outcome (after its chunks were handed on).
 * @typedef {Object} RangeResult
 * @property {null|'changed'|'gone'|string} failure  null when the range
 *   arrived whole (`end` seen); `changed` (412, or an `error` event with code
 *   changed or corrupt), `gone` (404), else a sentence for the log, with the
 *   server's own words when it sent any
 * @property {string|null} code  the server's error code, when it sent one
 * @property {ChunkcastError|null} broken  the server broke the protocol (an
 *   unbounded line): no retry will help
 * @property {number} status  the HTTP status, 0 when none arrived
 */

/**
 * @typedef {Object} RangeRequest
 * @property {string} url  `/events/chunk/<start>/<end>?...`
 * @property {string} label  `start..end`, for the messages
 * @property {AbortController} ctl  aborting it stops the request (pause, close)
 * @property {number} stallTimeout  ms without a byte before it counts as cut
 * @property {number} maxLine  see sse.js
 */

/**
 * @typedef {Object} StreamOptions
 * @property {number} stallTimeout
 * @property {number} maxLine  see sse.js
 * @property {(ev: StreamEvent) => void} on
 */

/**
 * What carries a download's chunks. Made for one open of the store
 * (transport/index.js); closed when the download closes, reopens its store,
 * or gives the transport up (`broken`).
 * @typedef {Object} Transport
 * @property {'worker'|'eventsource'} kind
 * @property {(url: string, o: StreamOptions) => {close: () => void}} stream  an event stream, kept up
 *   across drops as EventSource does
 * @property {(o: RangeRequest) => Promise<RangeResult>} range  one range request
 * @property {() => boolean} busy  chunks received are still waiting to be verified
 * @property {() => Promise<void>} idle  resolves once every chunk received so far is verified or failed, and told
 * @property {() => void} drop  forgets chunks received and not yet told (a new generation: the file changed,
 *   the download restarts or closes); chunks already stored are still told
 * @property {() => void} close
 * @property {() => Promise<Record<string, number>>} [timing]  milliseconds per step, for the benchmark
 */

/**
 * What a transport needs of the download, given when it is made.
 * @typedef {Object} TransportHost
 * @property {Manifest} manifest
 * @property {Uint8Array} expected  the manifest's digests, 32 bytes per chunk (read it each time: a live
 *   text's grows)
 * @property {ChunkStore} store  open for this manifest
 * @property {(ev: {i: number, off: number, len: number, sha256: string}) => boolean} [extend]  a chunk event
 *   past the manifest's chunks: whether it is a live text's next sealed chunk, now in the manifest (live.js)
 * @property {(i: number) => boolean} isVerified  chunk `i` is verified already (a copy is dropped)
 * @property {(n: Notice) => void} notice
 * @property {(e: ChunkcastError) => void} fail  storing failed: the download cannot go on
 * @property {(why: string) => void} broken  the transport itself failed (its worker did not load): nothing more comes from it
 * @property {(msg: string) => void} log
 */

/**
 * A named event of a stream (`meta`, `end`, `error`) as a {@link StreamEvent}:
 * the one reading of them, for both transports.
 * @param {string} type @param {string} data
 * @returns {StreamEvent|null}  null for a type the protocol does not name
 */
export function serverEvent(type, data) {
  if (type === 'end') {
    const end = readJson(data);
    const ok = end && Number.isSafeInteger(end.chunks) && typeof end.root === 'string';
    return { type: 'end', end: ok ? { chunks: end.chunks, root: end.root, reason: typeof end.reason === 'string' ? end.reason : undefined } : null };
  }
  if (type === 'meta') {
    const meta = readJson(data);
    if (!meta) return { type: 'meta', version: null }; // a meta we cannot read changes nothing
    return { type: 'meta', version: typeof meta.version === 'string' ? meta.version : '', live: meta.live === true,
      state: typeof meta.state === 'string' ? meta.state : undefined };
  }
  if (type === 'state') {
    const st = readJson(data);
    return typeof st?.state === 'string' ? { type: 'live', state: st.state } : null;
  }
  if (type === 'error') {
    const { code, error } = parseServerError(data);
    return isChangeCode(code) ? { type: 'changed', message: error } : { type: 'error', code, message: error };
  }
  return null;
}

/** An event's JSON object, or null. @param {string} data @returns {any} */
function readJson(data) {
  try {
    const v = JSON.parse(data);
    return v && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

/**
 * Whether nothing more comes from a stream after `ev`.
 * @param {StreamEvent} ev
 */
export function isLastWord(ev) {
  return ev.type !== 'open' && ev.type !== 'data' && ev.type !== 'meta' && ev.type !== 'live' && ev.type !== 'drop';
}

/**
 * A notice with nothing in it but `part`.
 * @param {Partial<Notice>} [part]
 * @returns {Notice}
 */
export function notice(part = {}) {
  return { received: [], verified: [], digests: new Uint8Array(0), failed: [], texts: [], bytes: 0, ...part };
}
