// @ts-check
/** @file One request to the range endpoint `/events/chunk/<start>/<end>`, read through fetch and the bounded SSE parser: the one range reader, for both transports (on the page for EventSource, in the transport worker for the worker transport). */

import { ChunkcastError, asError } from '../errors.js';
import { errorBody, isChangeCode, parseServerError } from '../protocol.js';
import { SseParser } from '../sse.js';
import { readEvents } from './fetch-source.js';

/** @typedef {import('./interface.js').RangeRequest} RangeRequest */
/** @typedef {import('./interface.js').RangeResult} RangeResult */

/**
 * Fetches `o.url` and hands each `chunk` event's data to `onChunk`. The
 * request is aborted (through `ctl`) when no byte arrives for
 * `stallTimeout` ms; the caller may abort it too (pause, close). What the
 * server says of a refusal (its error body, or an `event: error` in the
 * stream) is kept in the result: its code, and its words in `failure`.
 * @param {RangeRequest & {fetch: typeof fetch, onChunk: (data: string) => void, wait?: () => (Promise<void>|null)}} o
 *   `wait`: a promise to wait on before reading more (back-pressure), see readEvents
 * @returns {Promise<RangeResult>}
 */
export async function readRange(o) {
  const { ctl, label } = o;
  /** @type {string|null} */
  let failure = null;
  /** @type {string|null} */
  let code = null;
  /** @type {ChunkcastError|null} */
  let broken = null;
  let status = 0;
  let ended = false;
  const parser = new SseParser((ev) => {
    if (ev.type === 'chunk') o.onChunk(ev.data);
    else if (ev.type === 'end') ended = true;
    else if (ev.type === 'error') {
      const said = parseServerError(ev.data);
      code = said.code;
      failure = isChangeCode(said.code) ? 'changed' : `the server reported: ${said.error}`;
    }
  }, { maxLine: o.maxLine });
  try {
    const r = await readEvents({
      fetch: o.fetch, url: o.url, ctl, stallTimeout: o.stallTimeout, parser, wait: o.wait,
      onresponse: async (res) => {
        status = res.status;
        if (res.ok) return true;
        if (status === 412) failure = 'changed';
        else if (status === 404) failure = 'gone';
        else {
          const said = await errorBody(res);
          code = said.code;
          failure = `range ${label} answered ${status}: ${said.error}`;
        }
        return false;
      },
    });
    if (r.stalled) failure = `range ${label} stalled or was cut`;
    else if (!r.read) failure ??= `range ${label} answered ${status} without a body`;
    else if (!ended && !failure) failure = `range ${label} ended early`;
  } catch (e) {
    if (e instanceof ChunkcastError && e.code === 'protocol') {
      broken = e;
      ctl.abort(); // stop reading what cannot be parsed
    }
    failure = ctl.signal.aborted ? `range ${label} stalled or was cut` : `range ${label}: ${asError(e).message}`;
  }
  return { failure, code, broken, status };
}
