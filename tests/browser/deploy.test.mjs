// chunkcast deployed as docs/DEPLOY.md says: a real nginx (Debian's package)
// terminating TLS with HTTP/2 in front of two instances that share one root
// and one index directory, configured by docs/deploy/nginx.conf itself. A
// browser download (HTTP/2 through nginx) and a `chunkcast get` run at once;
// the instance serving them is killed mid-download, and both finish verified
// through the other one. Resume is stateless: a chunk id is an offset.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { LAN_HOST, launch } from './chromium.mjs';
import { BINARY, REPO, makeRoot, pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const NGINX = process.env.NGINX || '/usr/sbin/nginx';
const CONF = path.join(REPO, 'docs/deploy/nginx.conf');
const OUT = path.join(REPO, 'test-output');
const BIG = 48 << 20;
const RATE = 8 << 20; // both downloads take ~6 s, so the kill lands mid-way

let dir; // certificates, nginx's prefix, the get's output
let root;
let indexDir;
let bigSha;
/** @type {Record<string, Awaited<ReturnType<typeof startServer>>>} */
const instances = {};
let nginx;
let browser;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-deploy-'));
  indexDir = path.join(dir, 'index');
  const big = pseudoRandom(BIG, 9);
  bigSha = sha256hex(big);
  root = makeRoot({ 'big.bin': big });
  makeCertificate(dir);
  for (const name of ['a', 'b']) {
    // Behind nginx on loopback, as docs/DEPLOY.md says: the public name is allowed.
    instances[name] = await startServer({ root, chunkSize: '16K', indexDir, args: ['--retry-ms', '200', '--allowed-host', LAN_HOST] });
  }
  nginx = await startNginx(dir, [instances.a.port, instances.b.port]);
  browser = await launch({ lanHost: LAN_HOST, ignoreCertificateErrors: true });
});

after(async () => {
  await browser?.close();
  nginx?.stop();
  for (const i of Object.values(instances)) await i.stop();
  if (root) rmSync(root, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A self-signed certificate for lan.test and 127.0.0.1, made with openssl (as an operator would). */
function makeCertificate(into) {
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '2', '-subj', `/CN=${LAN_HOST}`, '-addext', `subjectAltName=DNS:${LAN_HOST},IP:127.0.0.1`,
    // A leaf, not a CA: rustls (chunkcast get) refuses a CA used as a server certificate.
    '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=serverAuth',
    '-keyout', path.join(into, 'key.pem'), '-out', path.join(into, 'cert.pem')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `openssl failed: ${r.stderr}`);
}

/** A port nobody listens on now (nginx cannot bind port 0 and report it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    }).on('error', reject);
  });
}

/**
 * docs/deploy/nginx.conf with the test's ports, certificate and host swapped
 * in (each swap must hit, so the test notices when the documented file
 * changes shape), inside a minimal main configuration of its own.
 */
async function startNginx(prefix, upstreamPorts) {
  for (let attempt = 0; ; attempt++) {
    const tlsPort = await freePort();
    const plainPort = await freePort();
    let conf = readFileSync(CONF, 'utf8');
    const swap = (from, to) => {
      assert.ok(conf.includes(from), `docs/deploy/nginx.conf no longer contains ${JSON.stringify(from)}`);
      conf = conf.split(from).join(to);
    };
    swap('server 127.0.0.1:8080 ', `server 127.0.0.1:${upstreamPorts[0]} `);
    swap('server 127.0.0.1:8081 ', `server 127.0.0.1:${upstreamPorts[1]} `);
    swap('listen 80;', `listen 127.0.0.1:${plainPort};`);
    swap('listen 443 ssl http2;', `listen 127.0.0.1:${tlsPort} ssl http2;`);
    swap('server_name files.example.com;', `server_name ${LAN_HOST};`);
    swap('/etc/ssl/chunkcast/fullchain.pem', path.join(prefix, 'cert.pem'));
    swap('/etc/ssl/chunkcast/privkey.pem', path.join(prefix, 'key.pem'));
    writeFileSync(path.join(prefix, 'chunkcast.conf'), conf);
    const tmp = path.join(prefix, 'nginx-tmp');
    mkdirSync(tmp, { recursive: true });
    writeFileSync(path.join(prefix, 'nginx.conf'), `
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 512; }
http {
  log_format upstream '$request_uri $status $upstream_addr';
  access_log ${prefix}/access.log upstream;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  include ${prefix}/chunkcast.conf;
}
`);
    const proc = spawn(NGINX, ['-p', prefix, '-c', path.join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => { stderr += d; });
    const up = await waitForPort(tlsPort, proc);
    if (up) {
      return {
        url: `https://${LAN_HOST}:${tlsPort}/`,
        tlsPort,
        log: () => readFileSync(path.join(prefix, 'access.log'), 'utf8').split('\n').filter(Boolean),
        stop: () => proc.kill('SIGTERM'),
      };
    }
    // Another process took a port between our probe and nginx's bind: retry.
    if (!/Address already in use/.test(stderr) || attempt >= 3) throw new Error(`nginx did not start: ${stderr}`);
  }
}

async function waitForPort(port, proc) {
  for (let i = 0; i < 100 && proc.exitCode === null; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); }).on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function fileSha(file) {
  const hash = createHash('sha256');
  await new Promise((resolve, reject) => createReadStream(file).on('data', (d) => hash.update(d)).on('end', resolve).on('error', reject));
  return hash.digest('hex');
}

test('nginx does not buffer a paced stream: its first chunk event arrives at once', async () => {
  // 16 KiB chunks at 64 B/s: the second event is minutes away, so a buffering
  // proxy would sit on the first one (smaller than its buffers) indefinitely.
  const url = new URL(`/events?file=story.txt&rate=64`, nginx.url);
  const started = Date.now();
  const first = await new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: nginx.tlsPort, path: url.pathname + url.search,
      servername: LAN_HOST, headers: { Host: LAN_HOST }, ca: readFileSync(path.join(dir, 'cert.pem')) }, (res) => {
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'text/event-stream');
      let body = '';
      res.on('data', (d) => {
        body += d;
        if (body.includes('event: chunk') && body.includes('\n\n', body.indexOf('event: chunk'))) {
          req.destroy();
          resolve(Date.now() - started);
        }
      });
      res.on('end', () => reject(new Error(`stream ended before a chunk event: ${body.slice(0, 200)}`)));
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
    setTimeout(() => { req.destroy(); reject(new Error('no chunk event within 10 s: nginx buffers the stream')); }, 10000);
  });
  assert.ok(first < 10000, `${first} ms`);
});

test('an instance killed mid-download: the browser and chunkcast get both finish verified through the other', async () => {
  const page = await browser.context.newPage();
  await page.goto(nginx.url);
  assert.equal(await page.evaluate(() => /** @type {any} */ (performance.getEntriesByType('navigation')[0]).nextHopProtocol), 'h2');
  await page.waitForSelector('button[data-file="big.bin"]');
  await page.evaluate((r) => localStorage.setItem('chunkcast.rate', String(r)), RATE); // the pace new downloads start at
  await page.click('button[data-file="big.bin"]');

  const out = path.join(dir, 'big.bin');
  // The CLI has no host mapping: it reaches nginx by address (in the certificate too).
  const get = spawn(BINARY, ['get', `https://127.0.0.1:${nginx.tlsPort}`, 'big.bin', '-o', out, '-q', '--rate', String(RATE),
    '--cacert', path.join(dir, 'cert.pem')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let getErr = '';
  get.stderr.on('data', (d) => { getErr += d; });
  const getDone = new Promise((resolve) => get.on('exit', resolve));

  const percent = () => page.$eval('.download', (el) => Number(/** @type {HTMLElement} */ (el).dataset.percent));
  await page.waitForFunction(() => Number(/** @type {HTMLElement} */ (document.querySelector('.download')).dataset.percent) >= 25, null, { timeout: 30000, polling: 50 });
  // Which instance is serving big.bin? Its /healthz counts the open streams
  // (nginx logs a request only when it ends).
  const openStreams = () => Promise.all(Object.values(instances).map(async (i) => (await (await fetch(new URL('/healthz', i.url))).json()).streams));
  let streams = await openStreams();
  for (let i = 0; i < 100 && !streams.some((n) => n >= 2); i++) {
    await new Promise((r) => setTimeout(r, 50));
    streams = await openStreams();
  }
  const victim = Object.entries(instances).find((_, k) => streams[k] >= 2);
  assert.ok(victim, `one instance serves both downloads (open streams: ${streams})`);
  const [victimName, victimServer] = victim;
  const survivor = Object.entries(instances).find(([n]) => n !== victimName)[1];
  const logBefore = nginx.log().length;
  const pctAtKill = await percent();
  victimServer.proc.kill('SIGKILL');
  assert.ok(pctAtKill < 100, `killed mid-download (${pctAtKill}%)`);

  await page.waitForFunction(() => /** @type {HTMLElement} */ (document.querySelector('.download')).dataset.state === 'done', null, { timeout: 120000, polling: 100 });
  await page.screenshot({ path: path.join(OUT, 'deploy-after-failover.png'), fullPage: true });
  assert.equal(await page.textContent('.download .sha256'), bigSha);
  await page.waitForFunction(() => document.querySelector('.download .sha-check')?.textContent !== '', null, { timeout: 30000 });
  assert.match(await page.textContent('.download .sha-check'), /✓/);
  const code = await getDone;
  assert.equal(code, 0, `chunkcast get failed: ${getErr}`);
  assert.equal(await fileSha(out), bigSha);

  // After the kill, big.bin's requests were answered by the survivor.
  const afterKill = nginx.log().slice(logBefore).filter((l) => /file=big\.bin/.test(l));
  assert.ok(afterKill.some((l) => l.endsWith(`127.0.0.1:${survivor.port}`) && / 200 /.test(l)),
    `the survivor served the rest:\n${afterKill.join('\n')}`);
  await page.close();
});

test('a live text published through nginx is followed through nginx, and outlives the instance writing it', async () => {
  // Two more instances with --publish, sharing their own root and index
  // directory, behind a second nginx with the same documented configuration.
  const liveDir = path.join(dir, 'live');
  mkdirSync(liveDir, { recursive: true });
  for (const f of ['cert.pem', 'key.pem']) writeFileSync(path.join(liveDir, f), readFileSync(path.join(dir, f)));
  const liveRoot = makeRoot({});
  const live = {};
  const args = ['--retry-ms', '200', '--allowed-host', LAN_HOST, '--publish', '--auth', 'u:p', '--publish-timeout', '60s'];
  for (const name of ['c', 'd']) live[name] = await startServer({ root: liveRoot, chunkSize: '4K', indexDir: path.join(liveDir, 'index'), args });
  const front = await startNginx(liveDir, [live.c.port, live.d.port]);
  const base = `https://127.0.0.1:${front.tlsPort}`;
  const cacert = path.join(liveDir, 'cert.pem');
  try {
    // The producer writes a line every 30 ms; `chunkcast publish` sends it
    // through nginx, `chunkcast get --follow` follows it through nginx.
    const publisher = spawn(BINARY, ['publish', base, 'live.txt', '-', '-u', 'u:p', '--cacert', cacert, '-q'],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    let pubErr = '';
    publisher.stderr.on('data', (d) => { pubErr += d; });
    const published = new Promise((resolve) => publisher.on('exit', resolve));
    const lines = Array.from({ length: 120 }, (_, k) => `line ${k}: café 数据 🚀 "quoted"\t\\path\n`);
    const writing = (async () => {
      for (const line of lines) {
        publisher.stdin.write(line);
        await new Promise((r) => setTimeout(r, 30));
      }
      publisher.stdin.end();
    })();
    // The instance writing it: the one nginx sent its first acknowledged
    // part to (nginx logs a request when it ends, with its upstream).
    const holder = async () => {
      for (let i = 0; i < 200; i++) {
        const upstream = front.log().find((l) => l.startsWith('/api/publish') && / 200 /.test(l))?.split(' ').at(-1);
        const found = upstream && Object.entries(live).find(([, x]) => upstream === `127.0.0.1:${x.port}`);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 50));
      }
      return undefined;
    };
    const writer = await holder();
    assert.ok(writer, `a publish request went through nginx:\n${front.log().join('\n')}`);
    const out = path.join(liveDir, 'followed.txt');
    const follower = spawn(BINARY, ['get', '--follow', base, 'live.txt', '-o', out, '-u', 'u:p', '--cacert', cacert, '-q'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let getErr = '';
    follower.stderr.on('data', (d) => { getErr += d; });
    const followed = new Promise((resolve) => follower.on('exit', resolve));
    // A third of the way in, the instance writing it is killed: the producer's
    // next part reaches the other one through nginx, which takes it over at
    // the acknowledged offset; the follower reconnects there.
    await new Promise((r) => setTimeout(r, 1200));
    writer[1].proc.kill('SIGKILL');
    await writing;
    assert.equal(await published, 0, `chunkcast publish failed: ${pubErr}`);
    assert.equal(await followed, 0, `chunkcast get --follow failed: ${getErr}`);
    const text = lines.join('');
    assert.equal(readFileSync(out, 'utf8'), text, 'the follower has every line once, in order');
    assert.equal(readFileSync(path.join(liveRoot, 'live.txt'), 'utf8'), text, 'the served file too');
    const afterKill = front.log().filter((l) => l.startsWith('/api/publish') && / 200 /.test(l));
    const survivor = Object.values(live).find((x) => x !== writer[1]);
    assert.ok(afterKill.some((l) => l.endsWith(`:${survivor.port}`)), `the survivor took the publication over:\n${afterKill.join('\n')}`);
  } finally {
    front.stop();
    for (const s of Object.values(live)) await s.stop();
    rmSync(liveRoot, { recursive: true, force: true });
  }
});
