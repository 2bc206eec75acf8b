// @ts-check
/**
 * @file A download's chunk map: one cell per chunk on a canvas, and the
 * count of chunks in each state as text. Colour is never the only cue:
 * received cells are hollow, refetched cells carry a stripe and failed cells
 * a cross, and the counts say the same in words.
 */

import { plural } from './format.js';

export const MISSING = 0, RECEIVED = 1, VERIFIED = 2, REFETCHED = 3, FAILED = 4;
const VARS = ['--missing', '--received', '--verified', '--refetched', '--failed'];
const NAMES = ['missing', 'received', 'verified', 'refetched', 'failed'];

export class ChunkMap {
  /** @param {HTMLCanvasElement} canvas @param {HTMLElement} counts  where the counts per state are written */
  constructor(canvas, counts) {
    this.canvas = canvas;
    this.countsEl = counts;
    this.map = new Uint8Array(0);
    /** @type {Set<number>} */
    this.dirty = new Set();
    this.redrawAll = true;
    this.frame = 0;
    this.counts = [0, 0, 0, 0, 0];
  }

  /** Starts over with `n` chunks, all missing. @param {number} n */
  reset(n) {
    this.map = new Uint8Array(n);
    this.counts = [n, 0, 0, 0, 0];
    this.redrawAll = true;
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
    this.dirty.add(i);
    this.schedule();
  }

  /** Every chunk back to missing: what was verified no longer counts (the file changed or is gone). */
  clear() {
    this.reset(this.map.length);
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
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
    // Square-ish cells filling the width; the canvas grows to fit the rows.
    const width = canvas.width;
    // Small enough that a card stays compact with several downloads listed.
    const cell = Math.min(16, Math.max(1, Math.floor(Math.sqrt((width * 48) / n))));
    const cols = Math.max(1, Math.floor(width / cell));
    const rows = Math.ceil(n / cols);
    if (canvas.height !== rows * cell) { canvas.height = rows * cell; this.redrawAll = true; }
    const paint = (/** @type {number} */ i) => {
      const s = this.map[i];
      const x = (i % cols) * cell, y = Math.floor(i / cols) * cell;
      ctx.fillStyle = colors[MISSING];
      ctx.fillRect(x, y, cell, cell);
      if (s === MISSING) return;
      ctx.fillStyle = colors[s];
      if (s === RECEIVED && cell >= 6) {
        // Hollow: a frame, not a filled cell.
        const t = Math.max(1, Math.floor(cell / 4));
        ctx.fillRect(x, y, cell, t); ctx.fillRect(x, y + cell - t, cell, t);
        ctx.fillRect(x, y, t, cell); ctx.fillRect(x + cell - t, y, t, cell);
        return;
      }
      ctx.fillRect(x, y, cell, cell);
      if (cell < 6 || (s !== REFETCHED && s !== FAILED)) return;
      ctx.strokeStyle = mark;
      ctx.lineWidth = Math.max(1, cell / 6);
      ctx.beginPath();
      ctx.moveTo(x + 1, y + cell - 1); ctx.lineTo(x + cell - 1, y + 1);
      if (s === FAILED) { ctx.moveTo(x + 1, y + 1); ctx.lineTo(x + cell - 1, y + cell - 1); }
      ctx.stroke();
    };
    if (this.redrawAll) {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      for (let i = 0; i < n; i++) paint(i);
      this.redrawAll = false;
    } else {
      for (const i of this.dirty) paint(i);
    }
    this.dirty.clear();
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
  }
}
