// @ts-check
/** @file Which transport carries a download (option `transport`): the worker where it can run and is wanted, else EventSource. The interface both implement is in interface.js. */

import { EventSourceTransport } from './eventsource.js';
import { WorkerTransport } from './worker.js';

/** @typedef {import('./interface.js').Transport} Transport */
/** @typedef {import('./interface.js').TransportHost} TransportHost */
/** @typedef {'auto'|'worker'|'eventsource'} TransportKind */

/**
 * The transport for one open of the host's store. `'auto'` (the default)
 * takes the worker where it can run (the OPFS store in a secure context)
 * and the caller brought no EventSource or fetch of its own (they would go
 * unused); `'worker'` takes it wherever it can run; else EventSource. The
 * worker reads the bytes raw from `/files` where it can (raw.js) unless
 * `raw` is false.
 * @param {TransportKind|undefined} want
 * @param {TransportHost} host
 * @param {import('./eventsource.js').EventSourceOptions & {own: boolean, raw?: boolean}} o  `own`: the caller gave an EventSource or fetch
 * @returns {Transport}
 */
export function openTransport(want = 'auto', host, o) {
  // Where it can run, the worker transport downloads faster into OPFS than
  // EventSource and leaves the page's main thread nearly idle; EventSource
  // is the reference, always selectable.
  // A live text's manifest grows as chunks are sealed (live.js); the worker's
  // sink verifies against the digests it was given when it opened.
  // The worker reads the bytes raw from /files where it can (raw.js): 1 GiB
  // into OPFS at 438 MB/s against 259 through its event stream, 266 for
  // EventSource and 413 for Chromium's own download manager
  // (scripts/bench-browser.mjs 1024, 2 cores).
  // The transport kind stays 'worker' either way: raw is how it reads.
  const worker = !host.manifest.live && (want === 'worker' || (want === 'auto' && !o.own)) ? WorkerTransport.on(host, o.raw !== false) : null;
  if (!worker && want === 'worker') host.log(host.manifest.live ? 'a live text grows as it is read, which the worker transport cannot follow; using EventSource'
    : `the worker transport needs the OPFS store (a secure context with OPFS), not ${host.store.kind}; using EventSource`);
  return worker ?? new EventSourceTransport(host, o);
}
