// web/ as the npm package `chunkcast` (web/package.json), as another app
// depends on it: a temporary project installs it by path (npm, offline: it
// has no dependencies), then a script of that project imports it by its
// package name and downloads a file from a real server with it; the
// package's types resolve for tsc by the name too.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { REPO, pseudoRandom, sha256hex, startServer } from './helpers.mjs';

const run = promisify(execFile);
const WEB = path.join(REPO, 'web');
const file = pseudoRandom(4096 * 37 + 5, 11); // 38 chunks of 4 KiB
let srv;
let app = ''; // the consumer project

before(async () => {
  srv = await startServer({ files: { 'dep.bin': file } });
  app = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-consumer-'));
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', WEB], { cwd: app, timeout: 60000 });
});

after(async () => {
  await srv?.stop();
  if (app) rmSync(app, { recursive: true, force: true });
});

test('web/package.json declares the public entry, its types and its workers', () => {
  const pkg = JSON.parse(readFileSync(path.join(WEB, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'chunkcast');
  assert.equal(pkg.version, '0.1.0');
  assert.equal(pkg.license, 'MIT');
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.types, './chunkcast.d.ts');
  assert.equal(pkg.exports['.'].default, './chunkcast.js');
  assert.equal(pkg.exports['./workers/*'], './workers/*');
  const installed = JSON.parse(readFileSync(path.join(app, 'package.json'), 'utf8'));
  assert.match(installed.dependencies.chunkcast, /^file:/, 'the consumer depends on it by path');
});

test('a project that depends on chunkcast imports it by name and downloads a verified file with it', async () => {
  // Node 20 has no EventSource of its own: the consumer brings one, as a
  // Node app would (the dev package's, by its path).
  const es = pathToFileURL(path.join(REPO, 'node_modules/eventsource/dist/index.js')).href;
  writeFileSync(path.join(app, 'main.mjs'), `
import { createHash } from 'node:crypto';
import { Download, MAX_RANGE, MemoryStore, PROTOCOL, listFiles } from 'chunkcast';
import { EventSource } from ${JSON.stringify(es)};

const [base, name] = process.argv.slice(2);
const listed = (await listFiles(base)).find((f) => f.name === name);
const states = [];
const dl = new Download(name, { base, EventSource, store: new MemoryStore(), onstate: (s) => states.push(s) });
dl.start();
const { blob, manifest } = await dl.done;
const bytes = new Uint8Array(await blob.arrayBuffer());
let privateImport = '';
try { await import('chunkcast/lib/download.js'); } catch (e) { privateImport = e.code; }
console.log(JSON.stringify({
  protocol: PROTOCOL, maxRange: MAX_RANGE, listedSize: listed?.size ?? null,
  size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), manifestSha256: manifest.sha256,
  progress: dl.progress(), states, transport: dl.transportKind,
  entry: import.meta.resolve('chunkcast'), worker: import.meta.resolve('chunkcast/workers/storage.js'), privateImport,
}));
`);
  const { stdout } = await run(process.execPath, ['main.mjs', srv.url, 'dep.bin'], { cwd: app, timeout: 30000 });
  const r = JSON.parse(stdout);
  assert.equal(r.sha256, sha256hex(file), 'the bytes downloaded through the package are the file');
  assert.equal(r.manifestSha256, sha256hex(file));
  assert.equal(r.size, file.length);
  assert.equal(r.listedSize, file.length);
  assert.equal(r.progress.chunksVerified, 38);
  assert.equal(r.progress.percent, 100);
  assert.equal(r.states.at(-1), 'done');
  assert.equal(r.transport, 'eventsource');
  assert.equal(r.protocol, 1);
  assert.equal(r.maxRange, 256);
  const web = realpathSync(WEB);
  assert.equal(r.entry, pathToFileURL(path.join(web, 'chunkcast.js')).href, 'the name resolves to the public entry');
  assert.equal(r.worker, pathToFileURL(path.join(web, 'workers/storage.js')).href, 'the workers are exported');
  assert.equal(r.privateImport, 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'lib/ is not part of the package\'s surface');
});

test("the package's types resolve by its name: tsc accepts a right use and refuses a wrong one", async () => {
  const tsc = path.join(REPO, 'node_modules/typescript/bin/tsc');
  const check = (/** @type {string} */ body) => {
    writeFileSync(path.join(app, 'use.js'), `// @ts-check\nimport { Download, MemoryStore } from 'chunkcast';\n${body}\n`);
    return run(process.execPath, [tsc, '--noEmit', '--allowJs', '--checkJs', '--strict', '--skipLibCheck', '--target', 'es2022',
      '--module', 'nodenext', '--moduleResolution', 'nodenext', '--lib', 'es2023,dom', 'use.js'], { cwd: app, timeout: 60000 });
  };
  await check(`/** @type {import('chunkcast').DownloadOptions} */
const opts = { store: new MemoryStore(), transport: 'eventsource', rate: 1000 };
const dl = new Download('a.bin', opts);
/** @type {import('chunkcast').State} */
const s = dl.state;
dl.progress().bytesVerified.toFixed(0);
export { s };`);
  await assert.rejects(check("new Download('a.bin', { transport: 'carrier-pigeon' });"), (e) => {
    assert.match(String(/** @type {any} */ (e).stdout), /carrier-pigeon/);
    return true;
  });
});
