// @ts-check
/**
 * @file A download's speed and time left, as a person reads them: smoothed
 * over the arrivals of whole chunks, so a paced stream (one chunk every few
 * seconds) reads steadily at its pace instead of flickering between 0 and
 * bursts. Pure: fed with (time, bytes verified), no DOM.
 *
 * The speed is the bytes between the first and the last arrival in the
 * window over the time between them: it does not fall between two chunks
 * that come at their usual interval. Only when the next chunk is overdue
 * (three usual intervals, at least 5 s) does it fall to 0. Before anything
 * arrived it is unknown (null), or the pace asked of the server if one was.
 */

/** How far back the speed looks, in ms of arrivals. */
export const WINDOW_MS = 20_000;
/** Silence after which the speed reads 0, at the least. */
export const STALL_MS = 5_000;

export class Meter {
  constructor() {
    /** @type {{t: number, b: number}[]} the stream's start, then each arrival of bytes */
    this.points = [];
  }

  /** The stream (re)starts at `now` with `bytes` already verified: what came before does not count. @param {number} now @param {number} bytes */
  reset(now, bytes) {
    this.points = [{ t: now, b: bytes }];
  }

  /** Verified bytes so far, at `now` (ms). @param {number} now @param {number} bytes */
  feed(now, bytes) {
    const last = this.points[this.points.length - 1];
    if (!last || bytes < last.b) { this.reset(now, bytes); return; }
    if (bytes === last.b) return;
    this.points.push({ t: now, b: bytes });
    while (this.points.length > 3 && now - this.points[1].t > WINDOW_MS) this.points.shift();
  }

  /**
   * Bytes per second at `now`, or null when not known yet.
   * @param {number} now @param {number} [pace] bytes/s asked of the server (0: none) @param {number} [chunk] a chunk's size
   * @returns {number|null}
   */
  speed(now, pace = 0, chunk = 0) {
    const p = this.points;
    if (p.length < 2) return pace > 0 ? pace : null;
    const first = p[0], last = p[p.length - 1];
    const span = last.t - first.t;
    if (span <= 0) return pace > 0 ? pace : null;
    let v = (last.b - first.b) / (span / 1000);
    // The usual time between arrivals: measured, or what the pace implies.
    const usual = Math.max(span / (p.length - 1), pace > 0 && chunk > 0 ? (1000 * chunk) / pace : 0);
    if (now - last.t > Math.max(STALL_MS, 3 * usual)) return 0;
    if (pace > 0) v = Math.min(v, pace);
    return v;
  }

  /**
   * Seconds left for `left` bytes, or null when unknown (no speed yet, or none).
   * @param {number} left @param {number|null} speed
   */
  static eta(left, speed) {
    if (left <= 0) return 0;
    return speed && speed > 0 ? left / speed : null;
  }
}
