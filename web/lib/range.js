// @ts-check
/** @file One request to the range endpoint `/events/chunk/<start>/<end>`, read through fetch and the bounded SSE parser. */

import { ChunkcastError, asError } from './errors.js';
import { errorText } from './protocol.js';
import { SseParser } from './sse.js';

/**
 * @typedef {Object} RangeResult
 * @property {null|'changed'|'gone'|string} failure  null when the range
 *   arrived whole (`end` seen); `changed` (412 or an `error` event with code
 *   changed), `gone` (404), else a sentence for the log
 * @property {ChunkcastError|null} broken  the server broke the protocol (an
 *   unbounded line): no retry will help
 * @property {number} status  the HTTP status, 0 when none arrived
 */

/**
 * Fetches `url` and hands each `chunk` event's data to `onChunk`. The
 * request is aborted (through `ctl`) when no byte arrives for
 * `stallTimeout` ms; the caller may abort it too (pause, close).
 * @param {{fetch: typeof fetch, url: string, label: string, ctl: AbortController, stallTimeout: number,
 *          maxLine: number, onChunk: (data: string) => void}} o
 * @returns {Promise<RangeResult>}
 */
export async function fetchRange(o) {
  const { ctl, label } = o;
  let stall = setTimeout(() => ctl.abort(), o.stallTimeout);
  /** @type {string|null} */
  let failure = null;
  /** @type {ChunkcastError|null} */
  let broken = null;
  let status = 0;
  let ended = false;
  try {
    const res = await o.fetch(o.url, { signal: ctl.signal, cache: 'no-store' });
    status = res.status;
    if (res.status === 412) {
      failure = 'changed';
    } else if (res.status === 404) {
      failure = 'gone';
    } else if (!res.ok || !res.body) {
      failure = `range ${label} answered ${res.status}: ${await errorText(res)}`;
    } else {
      const parser = new SseParser((ev) => {
        if (ev.type === 'chunk') o.onChunk(ev.data);
        else if (ev.type === 'end') ended = true;
        else if (ev.type === 'error') failure = /"(changed|corrupt)"/.test(ev.data) ? 'changed' : `the server reported: ${ev.data}`;
      }, { maxLine: o.maxLine });
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        clearTimeout(stall);
        stall = setTimeout(() => ctl.abort(), o.stallTimeout);
        parser.push(value);
      }
      parser.end();
      if (!ended && !failure) failure = `range ${label} ended early`;
    }
  } catch (e) {
    if (e instanceof ChunkcastError && e.code === 'protocol') {
      broken = e;
      ctl.abort(); // stop reading what cannot be parsed
    }
    failure = ctl.signal.aborted ? `range ${label} stalled or was cut` : `range ${label}: ${asError(e).message}`;
  } finally {
    clearTimeout(stall);
  }
  return { failure, broken, status };
}
