// @ts-check
/** @file Errors with a stable `code`, and the one place unknown exceptions are classified by their real cause. */

/**
 * What went wrong, for a page to branch on:
 * - `not_found`: the file is no longer on the server;
 * - `changed`: the file changed on the server while downloading;
 * - `server_down`: the server could not be reached (network, timeouts);
 * - `http`: the server answered with an unexpected status;
 * - `protocol`: the server sent something the protocol does not allow;
 * - `corrupt`: a chunk kept failing verification, or the whole did not add up;
 * - `storage`: the browser's storage failed (quota, OPFS, IndexedDB);
 * - `unsupported`: this browser lacks something the download needs;
 * - `closed`: the caller closed the download;
 * - `internal`: a bug in chunkcast.js (an exception nobody expected).
 * @typedef {'not_found'|'changed'|'server_down'|'http'|'protocol'|'corrupt'|'storage'|'unsupported'|'closed'|'internal'} ErrorCode
 */

/** An error with a stable `code` a page can branch on. */
export class ChunkcastError extends Error {
  /**
   * @param {ErrorCode} code
   * @param {string} message  a sentence a person can act on
   * @param {{status?: number, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message, extra.cause ? { cause: extra.cause } : undefined);
    this.name = 'ChunkcastError';
    /** @type {ErrorCode} */
    this.code = code;
    /** @type {number|undefined} */
    this.status = extra.status;
  }
}

/** @param {unknown} e */
function describe(e) {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

/**
 * Any exception as a ChunkcastError, labelled by its real cause. Only what
 * is known to come from storage is called `storage` (the quota, and the
 * stores' own errors, which they label themselves): a programming error
 * used to be reported as "the browser's storage failed", which sent people
 * looking in the wrong place.
 * @param {unknown} e
 * @returns {ChunkcastError}
 */
export function asError(e) {
  if (e instanceof ChunkcastError) return e;
  const name = e instanceof Error || (typeof e === 'object' && e !== null && 'name' in e) ? String(/** @type {any} */ (e).name) : '';
  const msg = describe(e);
  if (name === 'QuotaExceededError') return new ChunkcastError('storage', `the browser's storage is full: ${msg}`, { cause: e });
  // fetch() rejects with a TypeError ("Failed to fetch", "fetch failed",
  // "NetworkError when attempting to fetch resource") when the network fails.
  if (name === 'AbortError' || name === 'NetworkError' || (e instanceof TypeError && /fetch|network/i.test(msg))) {
    return new ChunkcastError('server_down', `the network failed: ${msg}`, { cause: e });
  }
  return new ChunkcastError('internal', `unexpected error in chunkcast.js (please report it): ${msg}`, { cause: e });
}

/**
 * An exception raised by a store operation, labelled `storage` (the store
 * is the one part that failed), unless it already carries a code.
 * @param {unknown} e @param {string} [what]  the operation, for the message
 */
export function asStorageError(e, what = 'storage') {
  if (e instanceof ChunkcastError) return e;
  return new ChunkcastError('storage', `${what} failed: ${describe(e)}`, { cause: e });
}
