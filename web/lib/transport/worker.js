// @ts-check
/** @file The page side of the worker transport: event streams and range requests run in a worker of their own (workers/transport.js), which decodes and verifies each chunk and puts it to the OPFS storage worker; the page hears only which chunks were verified. */
//
// Why: on the page, every chunk event costs the main thread the event's
// dispatch, a string of ~350 KB, base64 decoding and handing the bytes to
// storage; with WebCrypto's digests that thread was the bottleneck (the
// download reached about half of what the page could merely receive). In
// the transport worker the same bytes are read with fetch(), parsed (one
// decoding per read, see sse.js), decoded into a staging buffer and hashed
// (see transport/host.js and transport/sink.js); the verified ones go to
// the storage worker over a MessagePort, without the page in between, and
// are written there while the transport worker reads on. The page gets a
// few small messages a second: the worker posts each stream's events and
// each range's result already in the interface's terms (interface.js).
// Where it can (option `raw`, on by default: raw.js), the worker reads a
// stream's chunks as plain bytes from `/files` with Range instead, with no
// text decoding, parsing or base64 at all; the page cannot tell but by the
// speed and the log.
//
// Requirements: a secure context with OPFS and module workers (the OPFS
// store's worker), fetch() in workers, WebCrypto there. transport/index.js
// uses it only with the OPFS store, and falls back to EventSource otherwise.
// One transport serves one open of the store: the storage worker closes the
// port when the file closes, so a new open needs a new transport.

import { ChunkcastError } from '../errors.js';
import { MAX_NEED } from '../protocol.js';
import { isLastWord } from './interface.js';

/** @typedef {import('./interface.js').Transport} Transport */
/** @typedef {import('./interface.js').TransportHost} TransportHost */
/** @typedef {import('./interface.js').RangeRequest} RangeRequest */
/** @typedef {import('./interface.js').RangeResult} RangeResult */
/** @typedef {import('./interface.js').StreamOptions} StreamOptions */

/** @implements {Transport} */
export class WorkerTransport {
  /**
   * @param {Worker} worker  the transport's own worker (workers/transport.js)
   * @param {TransportHost} host
   */
  constructor(worker, host) {
    /** @type {'worker'} */
    this.kind = 'worker';
    this.worker = worker;
    this.host = host;
    worker.addEventListener('error', (e) => { e.preventDefault(); host.broken(e.message || 'its script did not load'); });
    this.tid = 0;
    /** @type {Map<number, (msg: any) => void>} */
    this.requests = new Map();
    this.listener = (/** @type {MessageEvent} */ e) => this._message(e.data);
    worker.addEventListener('message', this.listener);
  }

  /**
   * A transport for the host's store, when it can carry one: an OPFS store
   * whose worker has the file open. The transport worker gets what it needs
   * to verify: the manifest's shape and digests, and which chunks are on disk;
   * and whether it may read the bytes raw from `/files` (raw.js).
   * @param {TransportHost} host @param {boolean} [raw]
   * @returns {WorkerTransport|null}
   */
  static on(host, raw = true) {
    const store = /** @type {any} */ (host.store);
    if (!store || store.kind !== 'opfs' || !store.worker || typeof store.key !== 'string') return null;
    const worker = new Worker(new URL('../../workers/transport.js', import.meta.url), { type: 'module' });
    const { port1, port2 } = new MessageChannel();
    // The storage worker takes the port after the `open` already sent (its messages are handled in order).
    store.worker.postMessage({ op: 'port', key: store.key, port: port1 }, [port1]);
    const { kind, size, chunks, chunk_size, offsets } = host.manifest;
    const onDisk = new Uint8Array(Math.ceil(chunks / 8));
    for (let i = 0; i < chunks; i++) if (host.isVerified(i)) onDisk[i >> 3] |= 1 << (i & 7);
    worker.postMessage({ op: 'n-open', port: port2, manifest: { kind, size, chunks, chunk_size, offsets: offsets ?? null }, expected: host.expected, onDisk,
      raw: raw ? { maxNeed: host.manifest.max_need ?? MAX_NEED } : null }, [port2]);
    return new WorkerTransport(worker, host);
  }

  /** @param {any} msg */
  _message(msg) {
    if (!msg) return;
    if (msg.op === 't-notice') this.host.notice(msg.notice);
    else if (msg.op === 't-log') this.host.log(msg.message);
    else if (msg.op === 't') this.requests.get(msg.tid)?.(msg);
    else if (msg.op === 'n-timing') this.requests.get(msg.id)?.(msg);
  }

  /** @param {object} msg */
  _post(msg) {
    this.worker.postMessage(msg);
  }

  /** Milliseconds the transport worker spent in each step (for the benchmark). @returns {Promise<Record<string, number>>} */
  timing() {
    return new Promise((resolve) => {
      const id = ++this.tid;
      this.requests.set(id, (msg) => { this.requests.delete(id); resolve(msg.timing); });
      this._post({ op: 'n-timing', id });
    });
  }

  /**
   * An event stream on `url`, kept up by the worker as EventSource would.
   * @param {string} url @param {StreamOptions} o
   */
  stream(url, o) {
    const tid = ++this.tid;
    const end = () => { this.requests.delete(tid); };
    this.requests.set(tid, (msg) => {
      const ev = msg.event;
      if (!ev) return;
      if (isLastWord(ev)) end();
      o.on(ev);
    });
    this._post({ op: 't-stream', tid, url, stallTimeout: o.stallTimeout, maxLine: o.maxLine });
    return {
      close: () => {
        if (!this.requests.has(tid)) return;
        end();
        this._post({ op: 't-abort', tid });
      },
    };
  }

  /** Chunks in the worker are told before a stream's end or a range's result: nothing waits on the page. */
  busy() {
    return false;
  }

  async idle() {}

  /** Chunks the worker stored are told whatever happens (the worker never tells them again); nothing else waits here. */
  drop() {}

  /**
   * One range request.
   * @param {RangeRequest} o
   * @returns {Promise<RangeResult>}
   */
  range(o) {
    return new Promise((resolve) => {
      const tid = ++this.tid;
      const finish = (/** @type {RangeResult} */ r) => {
        this.requests.delete(tid);
        o.ctl.signal.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const onAbort = () => {
        this._post({ op: 't-abort', tid });
        finish({ failure: `range ${o.label} stalled or was cut`, code: null, broken: null, status: 0 });
      };
      if (o.ctl.signal.aborted) { onAbort(); return; }
      o.ctl.signal.addEventListener('abort', onAbort);
      this.requests.set(tid, (msg) => {
        const r = msg.range;
        if (r) finish({ ...r, broken: r.broken ? new ChunkcastError('protocol', r.broken) : null });
      });
      this._post({ op: 't-range', tid, url: o.url, label: o.label, stallTimeout: o.stallTimeout, maxLine: o.maxLine });
    });
  }

  /** Stops the transport worker, and with it every request it runs. */
  close() {
    this.worker.removeEventListener('message', this.listener);
    this.worker.terminate();
    this.requests.clear();
  }
}
