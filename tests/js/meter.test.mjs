// The page's speed and ETA (web/page/meter.js): steady for paced streams
// whose chunks come seconds apart, "—" (null) when unknown, 0 after a stall.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Meter, STALL_MS } from '../../web/page/meter.js';

/** A stream of `chunk`-byte chunks at `rate` bytes/s, read every 250 ms for `seconds`: the speeds seen. */
function run(chunk, rate, seconds, pace = 0) {
  const m = new Meter();
  m.reset(0, 0);
  const seen = [];
  for (let t = 0; t <= seconds * 1000; t += 250) {
    m.feed(t, Math.floor((t / 1000) * rate / chunk) * chunk);
    seen.push({ t, v: m.speed(t, pace, chunk) });
  }
  return seen;
}

test('1 KiB/s in 4 KiB chunks reads 1 KiB/s, steadily, once the second chunk is in', () => {
  const seen = run(4096, 1024, 120).filter((s) => s.t >= 8000);
  for (const { t, v } of seen) assert.ok(v !== null && Math.abs(v - 1024) <= 1024 * 0.05, `${v} at ${t} ms`);
});

test('a paced stream reads its pace before its first chunk (256 KiB chunks at 1 KiB/s), never 0 or a burst', () => {
  for (const { t, v } of run(256 << 10, 1024, 600, 1024)) assert.ok(v !== null && v > 900 && v <= 1024, `${v} at ${t} ms`);
});

test('unknown before anything arrives without a pace: the ETA is "—", never 0 s', () => {
  const m = new Meter();
  m.reset(0, 0);
  assert.equal(m.speed(1000), null);
  assert.equal(Meter.eta(1 << 20, m.speed(1000)), null);
  assert.equal(Meter.eta(0, null), 0);
});

test('the ETA stays within 20% of the truth through a steady download', () => {
  const size = 300 << 20, rate = 8 << 20, chunk = 256 << 10;
  const m = new Meter();
  m.reset(0, 0);
  for (let t = 1000; t < (size / rate) * 1000; t += 500) {
    const b = Math.floor((t / 1000) * rate / chunk) * chunk;
    m.feed(t, b);
    const eta = Meter.eta(size - b, m.speed(t));
    const truth = (size - b) / rate;
    assert.ok(eta !== null && Math.abs(eta - truth) <= truth * 0.2 + 1, `${eta} s left at ${t} ms, truly ${truth}`);
  }
});

test('a stall reads 0 once the next chunk is well overdue', () => {
  const m = new Meter();
  m.reset(0, 0);
  for (let t = 0; t <= 5000; t += 100) m.feed(t, t * 1000);
  assert.ok((m.speed(5100) ?? 0) > 0);
  assert.equal(m.speed(5000 + STALL_MS + 100), 0);
});
