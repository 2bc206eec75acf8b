// @ts-check
/** @file The clock the library measures with, and the per-stage counters a download fills for the benchmark (`DownloadOptions.stats`). */

/** Milliseconds, as precise as the platform gives them. */
export function nowMs() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

/** Adds `v` to the counter `k`. @param {Record<string, number>} stats @param {string} k @param {number} v */
export function addStat(stats, k, v) {
  stats[k] = (stats[k] || 0) + v;
}
