// @ts-check
/**
 * @file chunkcast.js: the browser (and Node) client of the chunkcast protocol
 * v1, as one public entry (the package's `"."`, see package.json). Import
 * from here, as the page does (app.js, page/); the modules under `lib/` are
 * the implementation and may move.
 *
 * Map of `web/` (dependencies point down: the pure protocol is a leaf):
 *   app.js, page/   the page: file browser, download rows, resume offers
 *                   (imports only this entry)
 *   chunkcast.js    this entry; chunkcast.d.ts declares it
 *   lib/download.js one file's download: lifecycle and public API, from
 *                   manifest to verified Blob
 *   lib/scheduler.js  what to fetch next, the stream's events, ranges,
 *                   stalls, reconnects with backoff
 *   lib/ledger.js   the chunks' states, digests, counters and progress (the
 *                   one place a chunk becomes verified)
 *   lib/text.js     a text file's chunks to `ontext`, in order
 *   lib/options.js  DownloadOptions and their defaults
 *   lib/state.js    the download's states and the transitions between them
 *   lib/transport/  what carries the chunks, behind one interface
 *                   (interface.js; index.js picks one):
 *     eventsource.js  the page's EventSource; chunks decoded, hashed and
 *                     stored on the page
 *     worker.js       the page's side of the worker transport, whose
 *                     worker runs host.js (streams and ranges) and sink.js
 *                     (decode, verify, hand to the storage worker)
 *     fetch-source.js EventSource's rules over fetch(), and the bounded
 *                     read both readers share
 *     raw.js          the worker's raw path: a stream's chunks read as
 *                     plain bytes from /files with Range, cut at the
 *                     manifest's boundaries (cutter.js), verified by the
 *                     sink; the event stream takes over on anything
 *                     unexpected
 *     range.js        one range request: the one range reader, for both
 *   lib/protocol.js the manifest and its checks, the server's limits, a
 *                   chunk's span, `need=`, the server's errors, the file list
 *   lib/plan.js     from the chunks' states, what to stream and what to
 *                   refill (pure)
 *   lib/delta.js    a file that grew or changed: which verified chunks the
 *                   new version repeats, kept instead of fetched (pure)
 *   lib/sse.js      the SSE parser (bounded); chunk event data
 *   lib/bytes.js    base64 and hex
 *   lib/sha256.js   SHA-256: WebCrypto, or the vendored WebAssembly build where
 *                   the page is not a secure context (plain HTTP from another host)
 *   lib/hasher.js   many chunks' SHA-256 at once; the fallback runs in
 *                   workers/hash.js
 *   lib/store/      where verified chunks go: memory, OPFS (through
 *                   workers/storage.js), IndexedDB, a picked file
 *                   (file-handle.js); `index.js` picks one, `list.js` finds
 *                   what is stored
 *   lib/errors.js   ChunkcastError and the classification of unknown failures
 *   lib/stats.js    the clock and the benchmark's counters
 *   lib/format.js, lib/save.js  byte counts for people; saving the result
 *   workers/        the module workers: storage.js (OPFS writes),
 *                   transport.js (the worker transport), hash.js (the
 *                   fallback SHA-256)
 *   vendor/         hash-wasm's SHA-256 (see vendor/README.md)
 *
 * No runtime dependencies beyond `vendor/`, no build step. Types are JSDoc,
 * checked by `tsc` (jsconfig.json, jsconfig.worker.json).
 */

export { MAX_NEED, MAX_RANGE, PROTOCOL, checkManifest, formatNeed, listFiles, span } from './lib/protocol.js';
export { ChunkcastError, asError } from './lib/errors.js';
export { decodeBase64, decodeBase64Fallback, decodeBase64Into, digestsFromHex, encodeBase64, hasNativeBase64, toHex } from './lib/bytes.js';
export { hasWebCrypto, rootOf, sha256, sha256Fallback } from './lib/sha256.js';
export { CHUNK, plan, runs } from './lib/plan.js';
export { SseParser, maxLineFor, parseChunkData } from './lib/sse.js';
export { LIVE, RUNNING, TERMINAL } from './lib/state.js';
export { chooseStore, clearStored, findStored, IdbStore, MemoryStore, OpfsStore } from './lib/store/index.js';
export { allowWriting, fileHandleSupported, findHandle, FileHandleStore, forgetHandle, listHandles } from './lib/store/file-handle.js';
export { listStored, storageEstimate } from './lib/store/list.js';
export { Download } from './lib/download.js';
export { formatBytes } from './lib/format.js';
export { saveBlob } from './lib/save.js';

/** @typedef {import('./lib/protocol.js').Manifest} Manifest */
/** @typedef {import('./lib/ledger.js').Progress} Progress */
/** @typedef {import('./lib/options.js').DownloadOptions} DownloadOptions */
/** @typedef {import('./lib/download.js').Change} Change */
/** @typedef {import('./lib/store/index.js').ChunkStore} ChunkStore */
/** @typedef {import('./lib/errors.js').ErrorCode} ErrorCode */
/** @typedef {import('./lib/state.js').State} State */
