// @ts-check
/** @file The page side of the worker transport: event streams and range requests run in a worker of their own (workers/transport.js), which decodes and verifies each chunk and puts it to the OPFS storage worker; the page hears only which chunks were verified. */
//
// Why: on the page, every chunk event costs the main thread the event's
// dispatch, a string of ~350 KB, base64 decoding and handing the bytes to
// storage; with WebCrypto's digests that thread was the bottleneck (the
// download reached about half of what the page could merely receive). In
// the transport worker the same bytes are read with fetch(), parsed (one
// decoding per read, see sse.js), decoded into a staging buffer and hashed (see transport/host.js and
// transport/sink.js); the verified ones go to the storage worker over a
// MessagePort, without the page in between, and are written there while the
// transport worker reads on. The page gets a few small messages a second.
//
// A stream is handed back as an object that behaves as the EventSource
// download.js already drives (`onopen`, `meta`, `end`, `error` with
// `data` for the server's own error event, `readyState` 0 while a
// reconnect is under way and 2 when closed for good), except that `chunk`
// events never reach the page: they arrive as notices instead. A 204 ("no
// chunk left after Last-Event-ID") is reported as `end`, which is what it
// means; a stream that broke the protocol (an unbounded line) as `error`
// with `broken` set.
//
// Requirements: a secure context with OPFS and module workers (the OPFS
// store's worker), fetch() in workers, WebCrypto there. download.js uses it
// only with the OPFS store it chose, and falls back to EventSource otherwise.
// One transport serves one open of the store: the storage worker closes the
// port when the file closes, so a new open needs a new transport.

import { ChunkcastError } from '../errors.js';

/** @typedef {import('../range.js').RangeResult} RangeResult */
/** @typedef {import('./sink.js').Notice} Notice */

export class WorkerTransport {
  /**
   * @param {Worker} worker  the transport's own worker (workers/transport.js)
   * @param {(n: Notice) => void} onNotice
   * @param {(why: string) => void} [onBroken]  the worker failed (it could not load, say): nothing more will come from it
   */
  constructor(worker, onNotice, onBroken) {
    this.kind = 'worker';
    this.worker = worker;
    this.onNotice = onNotice;
    worker.addEventListener('error', (e) => { e.preventDefault(); onBroken?.(e.message || 'its script did not load'); });
    this.tid = 0;
    /** @type {Map<number, (msg: any) => void>} */
    this.requests = new Map();
    this.listener = (/** @type {MessageEvent} */ e) => this._message(e.data);
    worker.addEventListener('message', this.listener);
  }

  /**
   * A transport for `store`, when it can carry one: an OPFS store whose
   * worker has the file open. `file` is what the transport worker needs to
   * verify: the manifest's shape and digests, and which chunks are on disk.
   * @param {any} store @param {(n: Notice) => void} onNotice
   * @param {{manifest: {kind: string, size: number, chunks: number, chunk_size: number, offsets?: number[]|null}, expected: Uint8Array, onDisk: Uint8Array}} file
   * @param {(why: string) => void} [onBroken]  see the constructor
   * @returns {WorkerTransport|null}
   */
  static on(store, onNotice, file, onBroken) {
    if (!store || store.kind !== 'opfs' || !store.worker || typeof store.key !== 'string') return null;
    const worker = new Worker(new URL('../../workers/transport.js', import.meta.url), { type: 'module' });
    const { port1, port2 } = new MessageChannel();
    // The storage worker takes the port after the `open` already sent (its messages are handled in order).
    store.worker.postMessage({ op: 'port', key: store.key, port: port1 }, [port1]);
    const { kind, size, chunks, chunk_size, offsets } = file.manifest;
    worker.postMessage({ op: 'n-open', port: port2, manifest: { kind, size, chunks, chunk_size, offsets: offsets ?? null }, expected: file.expected, onDisk: file.onDisk }, [port2]);
    return new WorkerTransport(worker, onNotice, onBroken);
  }

  /** @param {any} msg */
  _message(msg) {
    if (!msg) return;
    if (msg.op === 't-notice') this.onNotice(msg.notice);
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
   * @param {string} url @param {{stallTimeout: number, maxLine: number}} o
   */
  stream(url, o) {
    return new WorkerStream(this, url, o);
  }

  /**
   * One range request, as range.js's fetchRange answers it.
   * @param {{url: string, label: string, ctl: AbortController, stallTimeout: number, maxLine: number}} o
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
        finish({ failure: `range ${o.label} stalled or was cut`, broken: null, status: 0 });
      };
      if (o.ctl.signal.aborted) { onAbort(); return; }
      o.ctl.signal.addEventListener('abort', onAbort);
      this.requests.set(tid, (msg) => {
        if (msg.kind !== 'range') return;
        const r = msg.result;
        finish({ failure: r.failure, broken: r.broken ? new ChunkcastError('protocol', r.broken) : null, status: r.status });
      });
      this._post({ op: 't-range', tid, url: o.url, stallTimeout: o.stallTimeout, maxLine: o.maxLine });
    });
  }

  /** Stops the transport worker, and with it every request it runs. */
  close() {
    this.worker.removeEventListener('message', this.listener);
    this.worker.terminate();
    this.requests.clear();
  }
}

/** An event stream run by the worker, shaped as the EventSource download.js drives. */
class WorkerStream {
  /** @param {WorkerTransport} t @param {string} url @param {{stallTimeout: number, maxLine: number}} o */
  constructor(t, url, o) {
    this.t = t;
    this.url = url;
    /** 0 connecting, 1 open, 2 closed */
    this.readyState = 0;
    /** @type {(() => void)|null} */
    this.onopen = null;
    /** @type {Map<string, ((e: any) => void)[]>} */
    this.listeners = new Map();
    this.tid = ++t.tid;
    t.requests.set(this.tid, (msg) => this._on(msg));
    t._post({ op: 't-stream', tid: this.tid, url, stallTimeout: o.stallTimeout, maxLine: o.maxLine });
  }

  /** @param {string} type @param {(e: any) => void} fn */
  addEventListener(type, fn) {
    const list = this.listeners.get(type) ?? [];
    list.push(fn);
    this.listeners.set(type, list);
  }

  /** @param {string} type @param {object} ev */
  _emit(type, ev) {
    for (const fn of this.listeners.get(type) ?? []) fn(ev);
  }

  /** @param {any} msg */
  _on(msg) {
    if (this.readyState === 2) return;
    switch (msg.kind) {
      case 'open': this.readyState = 1; this.onopen?.(); break;
      case 'meta': this._emit('meta', { data: msg.data }); break;
      case 'end': this._end(); this._emit('end', { data: msg.data }); break;
      case 'error': this._end(); this._emit('error', { data: msg.data }); break;
      case 'drop': this.readyState = 0; this._emit('error', { message: msg.message }); break;
      case 'closed':
        this._end();
        if (msg.status === 204) this._emit('end', { status: 204 });
        else this._emit('error', { status: msg.status, message: msg.message, broken: msg.broken ? new ChunkcastError('protocol', msg.broken) : null });
        break;
      default: break;
    }
  }

  _end() {
    this.readyState = 2;
    this.t.requests.delete(this.tid);
  }

  close() {
    if (this.readyState === 2 && !this.t.requests.has(this.tid)) return;
    this._end();
    this.t._post({ op: 't-abort', tid: this.tid });
  }
}
