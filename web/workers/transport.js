// @ts-check
/** @file The worker transport's own worker (a module worker): fetches the file's bytes (raw from `/files` where it can, else the event stream) and the range refills, decodes and verifies each chunk, and puts the verified ones straight to the OPFS storage worker. */
//
// Made by the page's WorkerTransport (lib/transport/worker.js), one per open
// of the file. Messages from the page:
//   {op: 'n-open', port, manifest, expected, onDisk, raw}  the file: its manifest
//       (kind, size, chunks, chunk_size, offsets), its digests (32 bytes
//       each, in chunk order), a bitmap of the chunks already on disk, a MessagePort whose other
//       end the storage worker holds (`put` / `written`, see workers/storage.js),
//       and `raw` ({maxNeed}, or null: the raw path is not to be used; see lib/transport/raw.js)
//   {op: 't-stream' | 't-range' | 't-abort', tid, ...}  see lib/transport/host.js
//   {op: 'n-timing', id}  answered with {op: 'n-timing', id, timing}, for the benchmark
// To the page: `t` (a stream's or range's own events), `t-notice` (which
// chunks were verified and written, or failed; see lib/transport/sink.js)
// and `t-log` (a line for the download's log).

import { readTiming } from '../lib/transport/fetch-source.js';
import { TransportHost } from '../lib/transport/host.js';
import { RawState, rawTiming } from '../lib/transport/raw.js';
import { ChunkSink } from '../lib/transport/sink.js';

/** @type {ChunkSink|null} */
let sink = null;
/** @type {RawState|null} */
let raw = null;
const host = new TransportHost((msg) => postMessage(msg), () => sink, () => raw);

onmessage = (e) => {
  const msg = e.data;
  if (host.handle(msg)) return;
  if (msg.op === 'n-open') {
    /** @type {MessagePort} */
    const port = msg.port;
    const s = new ChunkSink({
      manifest: msg.manifest,
      expected: msg.expected,
      onDisk: msg.onDisk,
      put: (buf, list) => port.postMessage({ op: 'put', buf, list }, [buf]),
      post: (notice) => postMessage({ op: 't-notice', notice }, [notice.digests.buffer]),
    });
    port.onmessage = (ev) => { if (ev.data?.op === 'written') s.written(ev.data.buf); };
    sink = s;
    raw = msg.raw ? new RawState(msg.raw) : null;
  } else if (msg.op === 'n-timing') {
    postMessage({ op: 'n-timing', id: msg.id, timing: { ...sink?.timing, ...readTiming, ...rawTiming } });
  }
};
