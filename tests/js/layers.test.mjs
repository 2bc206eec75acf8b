// The folder tree of web/ is its architecture (STYLE.md, "Layers"): the page
// talks only to the public entry, the library never reaches up into the
// page or the entry, the workers use the library alone, and no module grows
// past 500 lines. Read from the files' own import statements.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { REPO } from './helpers.mjs';

const WEB = path.join(REPO, 'web');

/** Every file under web/ but vendor/, as paths relative to web/. */
function files(dir = WEB) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return name === 'vendor' ? [] : files(p);
    return [path.relative(WEB, p)];
  });
}

/** What `file` imports (static and dynamic, and workers it starts), relative to web/. */
function imports(file) {
  const text = readFileSync(path.join(WEB, file), 'utf8');
  const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gm), ...text.matchAll(/import\(\s*`?'?([^'`)]+)/g),
    ...text.matchAll(/new URL\('([^']+)', import\.meta\.url\)/g)].map((m) => m[1]);
  return specs.map((s) => path.relative(WEB, path.resolve(path.dirname(path.join(WEB, file)), s.replace(/\$\{.*$/, ''))));
}

const js = files().filter((f) => f.endsWith('.js'));

test('the page (app.js, page/) imports only the public entry and its own modules', () => {
  const page = js.filter((f) => f === 'app.js' || f.startsWith('page/'));
  assert.ok(page.length >= 6);
  for (const f of page) {
    for (const dep of imports(f)) assert.ok(dep === 'chunkcast.js' || dep.startsWith('page/'), `${f} imports ${dep}`);
  }
});

test('the library never imports the page or the entry; the workers import only the library', () => {
  for (const f of js.filter((f) => f.startsWith('lib/'))) {
    for (const dep of imports(f)) assert.ok(dep.startsWith('lib/') || dep.startsWith('workers/') || dep.startsWith('vendor/'), `${f} imports ${dep}`);
  }
  const workers = js.filter((f) => f.startsWith('workers/'));
  assert.deepEqual(workers.sort(), ['workers/hash.js', 'workers/storage.js', 'workers/transport.js']);
  for (const f of workers) for (const dep of imports(f)) assert.ok(dep.startsWith('lib/'), `${f} imports ${dep}`);
});

test('every worker is started from the library by its path in workers/', () => {
  const started = js.flatMap((f) => imports(f).filter((d) => d.startsWith('workers/')));
  assert.deepEqual([...new Set(started)].sort(), ['workers/hash.js', 'workers/storage.js', 'workers/transport.js']);
});

test('no file of web/ (vendor/ aside) is over 500 lines', () => {
  for (const f of files()) {
    const lines = readFileSync(path.join(WEB, f), 'utf8').split('\n').length - 1;
    assert.ok(lines <= 500, `${f}: ${lines} lines`);
  }
});
