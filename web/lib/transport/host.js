// @ts-check
/** @file The worker side of the worker transport: runs the page's event streams and range requests (fetch-source.js) into a ChunkSink, and reports back. */
//
// Messages from the page (see worker.js, the page side), each with a `tid`:
//   {op: 't-stream', tid, url, stallTimeout, maxLine}  an event stream, kept
//       up (reconnects with Last-Event-ID) until the page aborts it or it
//       closes for good
//   {op: 't-range', tid, url, stallTimeout, maxLine}   one range response
//   {op: 't-abort', tid}
// Answers, {op: 't', tid, kind, ...}:
//   open | meta {data} | end | error {data} (the server's `event: error`) |
//   drop {message} (a reconnect follows) | closed {status, message, broken} |
//   range {result: {failure, broken, status}}
// and {op: 't-notice', notice} (see sink.js) for chunks of any request.
// Every `end`, `error` and `range` is posted after the digests of the chunks
// before it are in and reported, so the page never sees a stream end with
// chunks it was not told about.

import { FetchEventSource, readEvents } from './fetch-source.js';
import { SseParser } from '../sse.js';

/** @typedef {import('./sink.js').ChunkSink} ChunkSink */

export class TransportHost {
  /**
   * @param {(msg: any) => void} post
   * @param {() => ChunkSink|null} sink  the open file's sink (null when none is open)
   */
  constructor(post, sink) {
    this.post = post;
    this.sink = sink;
    /** @type {Map<number, {close: () => void}>} */
    this.running = new Map();
  }

  /** Handles a transport message; false when `msg` is not one. @param {any} msg */
  handle(msg) {
    switch (msg.op) {
      case 't-stream': this._stream(msg); return true;
      case 't-range': this._range(msg); return true;
      case 't-abort': this.running.get(msg.tid)?.close(); this.running.delete(msg.tid); return true;
      default: return false;
    }
  }

  /** @param {{tid: number, url: string, stallTimeout: number, maxLine: number}} msg */
  _stream(msg) {
    const { tid } = msg;
    const sink = this.sink();
    const say = (/** @type {string} */ kind, /** @type {object} */ extra = {}) => {
      if (this.running.get(tid) === src) this.post({ op: 't', tid, kind, ...extra });
    };
    // After the chunks before it are reported (see the file comment).
    const later = (/** @type {string} */ kind, /** @type {object} */ extra = {}) => {
      (sink ? sink.idle() : Promise.resolve()).then(() => { say(kind, extra); if (kind !== 'drop') this.running.delete(tid); });
    };
    const src = new FetchEventSource(msg.url, {
      stallTimeout: msg.stallTimeout,
      maxLine: msg.maxLine,
      wait: () => sink?.room() ?? null,
      onopen: () => say('open'),
      onevent: (ev) => {
        if (ev.type === 'chunk') sink?.chunk(ev.data);
        else if (ev.type === 'meta') say('meta', { data: ev.data });
        else if (ev.type === 'end' || ev.type === 'error') {
          src.close(); // the response ends here; no reconnect
          later(ev.type, { data: ev.data });
        }
      },
      onerror: (e) => {
        if (e.closed) later('closed', { status: e.status, message: e.message, broken: e.broken?.message ?? null });
        else say('drop', { message: e.message });
      },
    });
    this.running.set(tid, src);
  }

  /** @param {{tid: number, url: string, stallTimeout: number, maxLine: number}} msg */
  async _range(msg) {
    const { tid } = msg;
    const sink = this.sink();
    const ctl = new AbortController();
    this.running.set(tid, { close: () => ctl.abort() });
    /** @type {string|null} */
    let failure = null;
    /** @type {string|null} */
    let broken = null;
    let status = 0;
    let ended = false;
    const label = String(msg.url.match(/chunk\/(\d+\/\d+)/)?.[1] ?? '').replace('/', '..');
    const parser = new SseParser((ev) => {
      if (ev.type === 'chunk') sink?.chunk(ev.data);
      else if (ev.type === 'end') ended = true;
      else if (ev.type === 'error') {
        failure = /"(changed|corrupt)"/.test(ev.data) ? 'changed' : `the server reported: ${ev.data}`;
      }
    }, { maxLine: msg.maxLine });
    try {
      const r = await readEvents({ fetch: globalThis.fetch.bind(globalThis), url: msg.url, ctl, stallTimeout: msg.stallTimeout, parser,
        wait: () => sink?.room() ?? null,
        onresponse: (res) => { status = res.status; return res.ok; } });
      if (r.stalled) failure = `range ${label} stalled or was cut`;
      else if (!r.read) failure = status === 412 ? 'changed' : status === 404 ? 'gone' : `range ${label} answered ${status}`;
      else if (!ended && !failure) failure = `range ${label} ended early`;
    } catch (e) {
      const err = /** @type {any} */ (e);
      if (err?.name === 'ChunkcastError' && err.code === 'protocol') broken = err.message;
      failure = ctl.signal.aborted ? `range ${label} stalled or was cut` : `range ${label}: ${err?.message ?? err}`;
    }
    await sink?.idle();
    if (this.running.delete(tid)) this.post({ op: 't', tid, kind: 'range', result: { failure, broken, status } });
  }
}
