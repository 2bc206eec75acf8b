// @ts-check
/**
 * @file chunkcast.js: the browser (and Node) client of the chunkcast protocol
 * v1, as one public entry. Import from here; the modules under `lib/` are the
 * implementation and may move.
 *
 * Map of `lib/` (data flows top to bottom):
 *   protocol.js  the server's limits, the manifest and its checks, a chunk's span,
 *                `need=`, the server's errors, the file list
 *   plan.js      from the chunks' states, what to stream and what to refill (pure)
 *   sse.js       the SSE parser (bounded) for range responses and the worker
 *                transport's streams; chunk event data
 *   bytes.js     base64 and hex
 *   sha256.js    SHA-256: WebCrypto, or the vendored WebAssembly build where
 *                the page is not a secure context (plain HTTP from another host)
 *   hasher.js    many chunks' SHA-256 at once; the fallback runs in
 *                workers/hash.js workers
 *   store/       where verified chunks go: memory, OPFS (through
 *                workers/storage.js), IndexedDB; `index.js` picks one
 *   download.js  one file's download: lifecycle and public API, from manifest
 *                to verified Blob
 *   scheduler.js what to fetch next, the stream's events, ranges, stalls,
 *                reconnects with backoff
 *   ledger.js    the chunks' states, digests, counters and progress (the one
 *                place a chunk becomes verified)
 *   text.js      a text file's chunks to `ontext`, in order
 *   options.js   DownloadOptions and their defaults
 *   transport/   what carries the chunks, behind one interface (interface.js;
 *                index.js picks one): eventsource.js (the page's EventSource),
 *                worker.js (the worker transport: host.js and sink.js in its
 *                worker), fetch-source.js (EventSource's rules over fetch),
 *                range.js (the one range reader, for both)
 *   stats.js     the clock and the benchmark's counters
 *   state.js     the download's states and the transitions between them
 *   errors.js    ChunkcastError and the classification of unknown failures
 *   format.js, save.js  byte counts for people; saving the result
 *
 * No runtime dependencies beyond `vendor/`, no build step. Types are JSDoc,
 * checked by `tsc` (jsconfig.json); `chunkcast.d.ts` declares this entry.
 */

export { MAX_NEED, MAX_RANGE, PROTOCOL, checkManifest, formatNeed, listFiles, span } from './lib/protocol.js';
export { ChunkcastError, asError } from './lib/errors.js';
export { decodeBase64, decodeBase64Fallback, decodeBase64Into, digestsFromHex, encodeBase64, hasNativeBase64, toHex } from './lib/bytes.js';
export { hasWebCrypto, rootOf, sha256, sha256Fallback } from './lib/sha256.js';
export { CHUNK, plan, runs } from './lib/plan.js';
export { SseParser, maxLineFor, parseChunkData } from './lib/sse.js';
export { chooseStore, clearStored, findStored, IdbStore, MemoryStore, OpfsStore } from './lib/store/index.js';
export { Download } from './lib/download.js';
export { formatBytes } from './lib/format.js';
export { saveBlob } from './lib/save.js';

/** @typedef {import('./lib/protocol.js').Manifest} Manifest */
/** @typedef {import('./lib/ledger.js').Progress} Progress */
/** @typedef {import('./lib/options.js').DownloadOptions} DownloadOptions */
/** @typedef {import('./lib/store/index.js').ChunkStore} ChunkStore */
/** @typedef {import('./lib/errors.js').ErrorCode} ErrorCode */
