// @ts-check
/** @file Numbers for people: byte counts. */

/** Human-readable bytes: 1.5 MiB. @param {number} n */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return `${u ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : Math.round(n)} ${units[u]}`;
}
