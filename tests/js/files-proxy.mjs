// An HTTP/1.1 proxy on real sockets that understands `/files/NAME` bodies,
// for the tests of the raw path (web/lib/transport/raw.js): it can cut the
// next /files body after so many bytes, flip one byte of the file in a
// /files body, and pace /files bodies, while everything else passes as it
// comes (event streams included, each read forwarded at once).
//
// Why not the chaos proxy (tools/chaos-proxy): its faults are aimed at SSE
// landmarks, or at byte counts of a connection the next time one is
// accepted, and its corruption forges chunk events; Chromium reuses its
// connections, so a fault planned for "the next connection" lands on
// whichever request opens one. Here a fault is aimed at a request by its
// path and at a byte of the file by its offset (from the response's
// Content-Range), whatever connection carries it.
import http from 'node:http';

/**
 * A proxy in front of `target` (an http://host:port/ URL).
 * - `requests`: each request's `line` (`GET /files/a.bin HTTP/1.1`),
 *   `headers` (names in lower case) and, once its answer began, `status`
 *   and `answer` (the answer's headers);
 * - `cutFiles(n)`: the next /files body is cut after `n` bytes (the
 *   connection is destroyed 200 ms after they went out, as a network drop);
 * - `flipFiles(offset)`: the next /files body that carries byte `offset` of
 *   the file has it changed (XOR 1); `flipped` counts those sent;
 * - `pace`: bytes/s for /files bodies (0, the default: as fast as they come);
 * - `stall`: while true, /files bodies stop flowing (the connections stay open);
 * - `filesRequests()`: the /files requests.
 * @param {string} target
 */
export async function startFilesProxy(target) {
  const up = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  /** @type {number|null} */
  let cut = null;
  /** @type {number|null} */
  let flip = null;
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  const px = {
    url: '',
    /** @type {{line: string, headers: Record<string, any>, status: number, answer: Record<string, any>}[]} */
    requests: [],
    flipped: 0,
    pace: 0,
    stall: false,
    /** @param {number} n */
    cutFiles(n) { cut = n; },
    /** @param {number} offset */
    flipFiles(offset) { flip = offset; },
    filesRequests() { return px.requests.filter((r) => r.line.startsWith('GET /files/')); },
    eventRequests() { return px.requests.filter((r) => r.line.startsWith('GET /events')); },
    async close() {
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  const server = http.createServer((req, res) => {
    const rec = { line: `${req.method} ${req.url} HTTP/${req.httpVersion}`, headers: { ...req.headers }, status: 0, answer: {} };
    px.requests.push(rec);
    const headers = { ...req.headers, host: up.host };
    let done = false; // the answer came whole
    const ask = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers, agent }, (ans) => {
      rec.status = ans.statusCode ?? 0;
      rec.answer = { ...ans.headers };
      const files = (req.url ?? '').startsWith('/files/');
      const range = /^bytes (\d+)-/.exec(String(ans.headers['content-range'] ?? ''));
      let at = range ? Number(range[1]) : 0; // the file offset of the next body byte
      let sent = 0;
      const myCut = files ? cut : null;
      if (files) cut = null;
      res.writeHead(ans.statusCode ?? 502, ans.headers);
      const t0 = Date.now();
      let waits = 0; // reasons the upstream is paused: pacing, a full client socket
      const hold = () => { if (waits++ === 0) ans.pause(); };
      const free = () => { if (--waits === 0) ans.resume(); };
      let cutNow = false; // the body was cut: nothing more goes out
      ans.on('data', (/** @type {Buffer} */ d) => {
        if (cutNow) return;
        if (files && flip !== null && flip >= at && flip < at + d.length) {
          d = Buffer.from(d);
          d[flip - at] ^= 1;
          flip = null;
          px.flipped++;
        }
        at += d.length;
        if (myCut !== null && sent + d.length >= myCut) {
          // The bytes before the cut go out, and the connection dies a little
          // later: a network error discards what a reader holds unread (the
          // streams standard's `error` empties the queue), so a cut right
          // behind them could take them too.
          res.write(d.subarray(0, myCut - sent), () => setTimeout(() => { res.socket?.destroy(); ans.destroy(); }, 200));
          ans.pause();
          cutNow = true;
          return;
        }
        sent += d.length;
        if (!res.write(d)) { hold(); res.once('drain', free); }
        if (files && px.stall) {
          hold();
          const wait = () => { if (px.stall) setTimeout(wait, 50).unref(); else free(); };
          wait();
        }
        if (files && px.pace) {
          const due = t0 + (1000 * sent) / px.pace;
          const now = Date.now();
          if (due > now) { hold(); setTimeout(free, due - now).unref(); }
        }
      });
      ans.on('end', () => { done = true; if (!cutNow) res.end(); });
      ans.on('error', () => res.socket?.destroy());
    });
    ask.on('error', () => res.socket?.destroy());
    res.on('close', () => { if (!done) ask.destroy(); }); // the client went away mid-answer
    req.pipe(ask);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  px.url = `http://127.0.0.1:${/** @type {any} */ (server.address()).port}/`;
  return px;
}
