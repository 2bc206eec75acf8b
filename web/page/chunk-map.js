// @ts-check
/**
 * @file A download's chunk map: the chunks laid end to end along a strip of
 * a few rows, each chunk its exact share of the strip's length, so the
 * filled share equals the verified share to the pixel at any count (1 to
 * 100,000 chunks) and a finished download is wholly "verified". Where a
 * chunk is wide enough, it is a cell of its own with a gap, and colour is
 * never the only cue: received cells are hollow, refetched ones striped,
 * failed ones crossed; the counts say the same in words.
 */

import { plural } from './format.js';

export const MISSING = 0, RECEIVED = 1, VERIFIED = 2, REFETCHED = 3, FAILED = 4;
const VARS = ['--missing', '--received', '--verified', '--refetched', '--failed'];
const NAMES = ['missing', 'received', 'verified', 'refetched', 'failed'];
/** A pixel covering several chunks shows the most telling of them: failed, then received, missing, refetched, verified. */
const RANK = [2, 3, 0, 1, 4];
const ROW = 14, GAP = 3;

/**
 * How `n` chunks lay out on a strip `width` pixels wide: rows and the pixel
 * span [from, to) of chunk i along the strip (row after row).
 * @param {number} n @param {number} width
 */
export function layout(n, width) {
  // One row of cells while they are wide enough for their shapes; up to three
  // rows to keep them so; then one row of thin marks; more rows for many chunks.
  const rows = n <= width / 6 ? 1 : n <= width / 2 ? Math.ceil((6 * n) / width) : n <= width ? 1 : Math.min(4, Math.ceil(n / width));
  const length = width * rows;
  return { rows, length, from: (/** @type {number} */ i) => Math.floor((i * length) / n) };
}

export class ChunkMap {
  /** @param {HTMLCanvasElement} canvas @param {HTMLElement} counts  where the counts per state are written */
  constructor(canvas, counts) {
    this.canvas = canvas;
    this.countsEl = counts;
    this.map = new Uint8Array(0);
    this.frame = 0;
    this.counts = [0, 0, 0, 0, 0];
  }

  /** Starts over with `n` chunks, all missing. @param {number} n */
  reset(n) {
    this.map = new Uint8Array(n);
    this.counts = [n, 0, 0, 0, 0];
    this.schedule();
  }

  /**
   * A chunk's news from the library.
   * @param {number} i @param {'received'|'verified'|'failed'|'refetched'|'missing'} s
   */
  set(i, s) {
    if (i >= this.map.length) return;
    const was = this.map[i];
    const next = s === 'received' ? (was === FAILED ? FAILED : RECEIVED)
      : s === 'verified' ? VERIFIED : s === 'refetched' ? REFETCHED : s === 'failed' ? FAILED : MISSING;
    if (next === was) return;
    this.counts[was]--;
    this.counts[next]++;
    this.map[i] = next;
    this.schedule();
  }

  /** Every chunk verified (the download is done, whatever was told chunk by chunk). */
  complete() {
    for (let i = 0; i < this.map.length; i++) if (this.map[i] !== REFETCHED) this.map[i] = VERIFIED;
    const refetched = this.counts[REFETCHED];
    this.counts = [0, 0, this.map.length - refetched, refetched, 0];
    this.schedule();
  }

  /** Every chunk back to missing: what was verified no longer counts (the file changed or is gone). */
  clear() {
    this.reset(this.map.length);
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  /** The share of the strip drawn as verified (or refetched), in pixels, and the strip's length: for the tests. */
  filled() {
    const n = this.map.length;
    const { length, from } = layout(n, this.canvas.width);
    let px = 0;
    for (let i = 0; i < n; i++) if (this.map[i] === VERIFIED || this.map[i] === REFETCHED) px += from(i + 1) - from(i);
    return { px, length };
  }

  draw() {
    this.frame = 0;
    const canvas = this.canvas;
    const ctx = canvas.getContext('2d');
    const n = this.map.length;
    this._writeCounts();
    if (!ctx || !n) return;
    // Read at draw time, so the colours follow the light or dark scheme.
    const style = getComputedStyle(canvas);
    const colors = VARS.map((v) => style.getPropertyValue(v).trim());
    const mark = style.getPropertyValue('--mark').trim() || '#fff';
    const width = canvas.width;
    const { rows, length, from } = layout(n, width);
    const height = rows * ROW + (rows - 1) * GAP;
    if (canvas.height !== height) canvas.height = height;
    ctx.clearRect(0, 0, width, height);
    const cellWide = length / n >= 6;
    /** A run [a, b) of the strip in one state, split at row ends. @param {number} a @param {number} b @param {number} s */
    const run = (a, b, s) => {
      while (a < b) {
        const row = Math.floor(a / width), x = a % width, w = Math.min(b - a, width - x), y = row * (ROW + GAP);
        paint(x, y, w, s);
        a += w;
      }
    };
    /** @param {number} x @param {number} y @param {number} w @param {number} s */
    const paint = (x, y, w, s) => {
      const g = cellWide ? 1 : 0; // a gap between cells wide enough to have one
      const cw = Math.max(1, w - g);
      ctx.fillStyle = colors[MISSING];
      ctx.fillRect(x, y, cw, ROW);
      if (s === MISSING) return;
      ctx.fillStyle = colors[s];
      if (s === RECEIVED && cellWide) {
        const t = 3; // hollow: a frame, not a filled cell
        ctx.fillRect(x, y, cw, t); ctx.fillRect(x, y + ROW - t, cw, t);
        ctx.fillRect(x, y, t, ROW); ctx.fillRect(x + cw - t, y, t, ROW);
        return;
      }
      ctx.fillRect(x, y, cw, ROW);
      if (!cellWide || (s !== REFETCHED && s !== FAILED)) return;
      ctx.strokeStyle = mark;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(x + 1, y + ROW - 1); ctx.lineTo(x + cw - 1, y + 1);
      if (s === FAILED) { ctx.moveTo(x + 1, y + 1); ctx.lineTo(x + cw - 1, y + ROW - 1); }
      ctx.stroke();
    };
    if (cellWide) {
      for (let i = 0; i < n; i++) run(from(i), from(i + 1), this.map[i]);
      return;
    }
    // More chunks than room for cells: per pixel, its chunks' most telling state; runs of one state in one go.
    let start = 0, state = -1, i = 0;
    for (let px = 0; px < length; px++) {
      const end = Math.ceil(((px + 1) * n) / length);
      let s = -1;
      for (; i < end && i < n; i++) if (s < 0 || RANK[this.map[i]] < RANK[s]) s = this.map[i];
      if (s < 0) s = state; // no chunk starts here: the last one goes on
      if (s !== state) { if (state >= 0) run(start, px, state); start = px; state = s; }
    }
    if (state >= 0) run(start, length, state);
  }

  _writeCounts() {
    const c = this.counts;
    const n = this.map.length;
    const parts = [`${c[VERIFIED] + c[REFETCHED]} of ${plural(n, 'chunk')} verified`];
    if (c[REFETCHED]) parts.push(`${c[REFETCHED]} of them refetched after a failure`);
    if (c[FAILED]) parts.push(`${c[FAILED]} failed, to refetch`);
    if (c[RECEIVED]) parts.push(`${c[RECEIVED]} received, being checked`);
    const text = parts.join(' · ');
    if (this.countsEl.textContent !== text) this.countsEl.textContent = text;
    this.canvas.setAttribute('aria-label', `Chunk map: ${text}`);
    const d = this.countsEl.dataset;
    NAMES.forEach((name, k) => { d[name] = String(c[k]); });
    const { px, length } = this.filled();
    d.filledPx = String(px);
    d.lengthPx = String(length);
  }
}
