// @ts-check
/** @file A download's options (`DownloadOptions`, what a caller passes) and `settings()`, which fills in the defaults once so the rest never sees an unset value. */

/** @typedef {import('./protocol.js').Manifest} Manifest */
/** @typedef {import('./store/index.js').ChunkStore} ChunkStore */
/** @typedef {import('./errors.js').ChunkcastError} ChunkcastError */
/** @typedef {import('./ledger.js').Progress} Progress */

/**
 * @typedef {Object} DownloadOptions
 * @property {string} [base]  server URL; defaults to the page's origin
 * @property {any} [EventSource]  constructor; defaults to the global one
 * @property {typeof fetch} [fetch]
 * @property {string|ChunkStore} [store]  'auto' | 'memory' | 'opfs' | 'idb' | a store
 * @property {'auto'|'worker'|'eventsource'} [transport]  who reads the stream: 'worker' (a
 *   worker fetches, decodes and verifies, the OPFS store's worker writes; needs the OPFS store), 'eventsource'
 *   (the page's EventSource); 'auto' (default): the worker where it can run, else EventSource
 *   (see transport/index.js)
 * @property {boolean} [raw]  whether the 'worker' transport reads a file's bytes raw from `/files/NAME` with
 *   Range requests where it can (default true: faster, no SSE parsing or base64; every chunk still verified
 *   against the manifest's digest); false keeps it on the event stream. Never raw: a paced download
 *   (`rate`), a live text, the 'eventsource' transport; anything unexpected falls back to the event stream
 *   (see transport/raw.js)
 * @property {number} [memoryLimit]  largest file kept in memory with 'auto'
 * @property {number} [stallTimeout]  ms without any event before reopening
 * @property {number} [parallel]  range requests in flight at most
 * @property {number} [batch]  chunks per range request (at most the manifest's `max_range`, 256 when it has none)
 * @property {number} [rate]  ask the server to pace to this many bytes/s
 * @property {Record<string, string>} [params]  query parameters sent with every request (manifest,
 *   stream and its reconnects, ranges): a signed link's `exp` and `sig`
 * @property {boolean} [restartOnChange]  no longer needed: a download whose file changes on the server
 *   always goes on with the new version, keeping the chunks it repeats (see `onchanged`)
 * @property {number} [backoffBase]  ms
 * @property {number} [backoffMax]  ms
 * @property {number} [retries]  failed reconnects in a row before giving up
 * @property {number} [maxChunkFailures]  failed verifications of one chunk before giving up
 * @property {number} [progressInterval]  ms between onprogress calls
 * @property {string} [type]  MIME type of the result
 * @property {(p: Progress) => void} [onprogress]
 * @property {(text: string, info: {i: number, offset: number}) => void} [ontext]
 * @property {(i: number, status: 'received'|'verified'|'failed'|'refetched'|'missing') => void} [onchunk]
 * @property {(state: string, message: string) => void} [onstate]
 * @property {(info: import('./download.js').Change) => void} [onchanged]  the file changed on the server while
 *   downloading (`stored` false), or the chunks stored were of an older version (`stored` true, on resume):
 *   the download goes on with `newVersion`, keeping the `kept` of its `total` chunks it repeats (same index,
 *   offset, length and SHA-256) and fetching the rest. For a text, `textFrom` is the chunk `ontext` goes on
 *   from: where it was when every chunk it delivered was kept, else 0 (it starts over)
 * @property {(state: import('./live.js').LiveState) => void} [onlive]  a live text's publication changed
 *   state: `interrupted` (its producer went away), `live` (back), and at its end `complete`,
 *   `abandoned` or `ended` (see live.js); the manifest's first state is in `manifest.state`
 * @property {(e: ChunkcastError) => void} [onerror]
 * @property {(r: {blob: Blob, manifest: Manifest}) => void} [ondone]
 * @property {(msg: string) => void} [log]
 * @property {Record<string, number>} [stats]  filled with per-stage timings (for the benchmark)
 */

/**
 * The options with their defaults filled in.
 * @param {DownloadOptions} opts
 */
export function settings(opts) {
  const loc = typeof location !== 'undefined' ? location.href : undefined;
  return {
    base: new URL(opts.base ?? loc ?? 'http://localhost/', loc),
    EventSource: opts.EventSource ?? globalThis.EventSource,
    fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
    /** the caller brought an EventSource or fetch of its own: only the EventSource transport uses them */
    own: !!(opts.EventSource || opts.fetch),
    stallTimeout: opts.stallTimeout ?? 15000,
    parallel: opts.parallel ?? 4,
    batch: opts.batch ?? 64,
    rate: opts.rate ?? 0,
    raw: opts.raw !== false,
    backoffBase: opts.backoffBase ?? 500,
    backoffMax: opts.backoffMax ?? 30000,
    retries: opts.retries ?? 10,
    maxChunkFailures: opts.maxChunkFailures ?? 5,
    progressInterval: opts.progressInterval ?? 100,
    /** @type {Record<string, number>|null} */
    stats: opts.stats ?? null,
  };
}

/** @typedef {ReturnType<typeof settings>} Settings */
