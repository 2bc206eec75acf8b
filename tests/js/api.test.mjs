// The public entry web/chunkcast.js exports exactly what web/chunkcast.d.ts
// declares (tsc checks the types; this checks the names at run time).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import * as api from '../../web/chunkcast.js';
import { REPO } from './helpers.mjs';

test('every declared value is exported, and nothing else', () => {
  const dts = readFileSync(path.join(REPO, 'web/chunkcast.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export declare (?:const|function|class) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(Object.keys(api).sort(), declared);
});
