// @ts-check
/** @file The worker side of the worker transport: runs the page's event streams (raw.js where it can carry them, else fetch-source.js) and range requests (range.js) into a ChunkSink, and reports back. */
//
// Messages from the page (see worker.js, the page side), each with a `tid`:
//   {op: 't-stream', tid, url, stallTimeout, maxLine}  an event stream, kept
//       up (reconnects with Last-Event-ID) until the page aborts it or it
//       closes for good; its chunks read raw from `/files` where the raw
//       path can carry them (raw.js), which hands what is left back to the
//       event stream on anything unexpected
//   {op: 't-range', tid, url, label, stallTimeout, maxLine}   one range response
//   {op: 't-abort', tid}
// Answers: {op: 't', tid, event} with a stream's StreamEvent (see
// interface.js; `data` is never sent, the notices tell of chunks),
// {op: 't', tid, range} with a range's RangeResult (`broken` as its
// message), {op: 't-notice', notice} (see sink.js) for chunks of any
// request, and {op: 't-log', message} for the download's log. Every `end`, `error`, `closed` and range result is posted after
// the digests of the chunks before it are in and reported, so the page
// never sees a stream end with chunks it was not told about.

import { FetchEventSource } from './fetch-source.js';
import { serverEvent } from './interface.js';
import { readRange } from './range.js';
import { RawStream } from './raw.js';

/** @typedef {import('./sink.js').ChunkSink} ChunkSink */
/** @typedef {import('./raw.js').RawState} RawState */
/** @typedef {import('./interface.js').StreamEvent} StreamEvent */

export class TransportHost {
  /**
   * @param {(msg: any) => void} post
   * @param {() => ChunkSink|null} sink  the open file's sink (null when none is open)
   * @param {() => RawState|null} [raw]  the open file's raw path (null when it is not to be used)
   */
  constructor(post, sink, raw = () => null) {
    this.post = post;
    this.sink = sink;
    this.raw = raw;
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
    const sink = this.sink();
    const raw = this.raw();
    if (sink && raw?.carries(msg.url)) this._raw(msg, sink, raw);
    else this._events(msg, msg.url);
  }

  /**
   * What request `tid` tells the page while `src` is its reader (a reader
   * replaced, raw by the event stream, says nothing more).
   * @param {number} tid @param {{close: () => void}} src
   */
  _voice(tid, src) {
    const sink = this.sink();
    const say = (/** @type {StreamEvent} */ event) => {
      if (this.running.get(tid) === src) this.post({ op: 't', tid, event });
    };
    // The stream's last word, after the chunks before it are reported (see the file comment).
    const last = (/** @type {StreamEvent} */ event) => {
      (sink ? sink.idle() : Promise.resolve()).then(() => {
        say(event);
        if (this.running.get(tid) === src) this.running.delete(tid);
      });
    };
    return { say, last };
  }

  /**
   * The stream's chunks read raw from `/files` (raw.js); on anything
   * unexpected what is left goes through the event stream.
   * @param {{tid: number, url: string, stallTimeout: number, maxLine: number}} msg @param {ChunkSink} sink @param {RawState} state
   */
  _raw(msg, sink, state) {
    const { tid } = msg;
    const src = new RawStream({
      url: msg.url, sink, state, fetch: globalThis.fetch.bind(globalThis), stallTimeout: msg.stallTimeout,
      say: (event) => say(event),
      end: () => last({ type: 'end' }),
      fallback: (why, url) => {
        if (this.running.get(tid) !== src) return;
        this.post({ op: 't-log', message: `raw transfer stopped (${why}); ${url ? 'the rest through the event stream' : 'nothing left'}` });
        if (url) this._events(msg, url);
        else last({ type: 'end' });
      },
    });
    const { say, last } = this._voice(tid, src);
    this.running.set(tid, src);
    src.start();
  }

  /**
   * An event stream on `url` (the page's, or what raw left of it).
   * @param {{tid: number, stallTimeout: number, maxLine: number}} msg @param {string} url
   */
  _events(msg, url) {
    const { tid } = msg;
    const sink = this.sink();
    const src = new FetchEventSource(url, {
      stallTimeout: msg.stallTimeout,
      maxLine: msg.maxLine,
      wait: () => sink?.room() ?? null,
      onopen: () => say({ type: 'open' }),
      onevent: (ev) => {
        if (ev.type === 'chunk') { sink?.chunk(ev.data); return; }
        const event = serverEvent(ev.type, ev.data);
        if (!event) return;
        if (event.type === 'meta' || event.type === 'live') { say(event); return; }
        src.close(); // the response ends here (`end`, `error`); no reconnect
        last(event);
      },
      onerror: (e) => {
        if (!e.closed) say({ type: 'drop', message: e.message });
        // A 204 means no chunk is left after Last-Event-ID: the end.
        else if (e.broken) last({ type: 'broken', message: e.broken.message });
        else last(e.status === 204 ? { type: 'end' } : { type: 'closed', status: e.status, message: e.message });
      },
    });
    const { say, last } = this._voice(tid, src);
    this.running.set(tid, src);
  }

  /** @param {{tid: number, url: string, label: string, stallTimeout: number, maxLine: number}} msg */
  async _range(msg) {
    const { tid } = msg;
    const sink = this.sink();
    const ctl = new AbortController();
    this.running.set(tid, { close: () => ctl.abort() });
    const r = await readRange({
      fetch: globalThis.fetch.bind(globalThis), url: msg.url, label: msg.label, ctl, stallTimeout: msg.stallTimeout, maxLine: msg.maxLine,
      onChunk: (data) => sink?.chunk(data),
      wait: () => sink?.room() ?? null,
    });
    await sink?.idle();
    if (this.running.delete(tid)) this.post({ op: 't', tid, range: { ...r, broken: r.broken?.message ?? null } });
  }
}
