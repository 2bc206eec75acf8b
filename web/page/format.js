// @ts-check
/** @file Numbers and words for people on the page: speeds, times, dates, plurals, and each state as one sentence. */

import { formatBytes } from '../chunkcast.js';

/** "1 chunk", "2 chunks". @param {number} n @param {string} one @param {string} [many] */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A speed: never a raw float ("1022 B/s", "8.06 MiB/s"), 0 as "0 B/s". @param {number} bytesPerSecond */
export function formatSpeed(bytesPerSecond) {
  return `${formatBytes(Math.max(0, Math.round(bytesPerSecond)))}/s`;
}

/** Seconds left, or a dash when unknown. @param {number|null} s */
export function formatEta(s) {
  // No-break spaces: a phone's line wraps between "ETA" parts, never
  // between a number and its unit ("35" / "s").
  const n = '\u00a0';
  if (s === null || !Number.isFinite(s)) return '—';
  if (s < 60) return `${Math.ceil(s)}${n}s`;
  if (s < 3600) return `${Math.floor(s / 60)}${n}min ${Math.round(s % 60)}${n}s`;
  return `${Math.floor(s / 3600)}${n}h ${Math.round((s % 3600) / 60)}${n}min`;
}

/** A percentage with one decimal, never 100.0 before the end. @param {number} p */
export function formatPercent(p) {
  const v = Math.floor(p * 10) / 10;
  return `${v.toFixed(1)}%`;
}

/** A modification date as the person's locale writes it, with the time. @param {string} iso */
export function formatDate(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/**
 * When the library says it retries "in 2.3 s", the moment that will be
 * (performance.now() ms), so the page can count down; null otherwise.
 * @param {string} message
 */
export function retryDeadline(message) {
  const m = /in ([\d.]+) s\b/.exec(message);
  return m ? performance.now() + Number(m[1]) * 1000 : null;
}

/** A live text's badge: a word or two. @type {Record<string, string>} */
const LIVE_BADGE = { live: 'Live', interrupted: 'Interrupted — waiting for the writer', complete: 'Finished', abandoned: 'Abandoned', ended: 'Ended' };

/** A live text's state as its badge says it. @param {string} live */
export function liveBadge(live) {
  return LIVE_BADGE[live] ?? live;
}

/**
 * What a live text's row says of its download while it follows the writer:
 * nothing while it is under way (its badge says it all), else null for the
 * download's own words (paused, reconnecting, an error...).
 * @param {string} state  the download's @param {string} live  the publication's
 */
export function liveText(state, live) {
  if (!['connecting', 'resuming', 'streaming', 'refilling'].includes(state)) return null;
  return live === 'live' || live === 'interrupted' ? '' : null;
}

/**
 * One sentence for a state. The library's own message is shown as it is
 * (never re-capitalised: it may start with a file name).
 * @param {string} state @param {string} message @param {number|null} retryAt
 */
export function stateText(state, message, retryAt) {
  switch (state) {
    case 'manifest': return 'Fetching the manifest…';
    case 'opening': return 'Opening storage…';
    case 'connecting': return 'Connecting…';
    case 'resuming': return 'Resuming…';
    case 'streaming': return 'Receiving…';
    case 'refilling': return 'Refetching chunks that were missing or failed…';
    case 'verifying': return 'Proving the whole file…';
    case 'done': return 'Done: verified.';
    case 'paused': return 'Paused. Nothing is lost: Resume continues from the first missing chunk.';
    case 'offline': return 'You are offline. The download continues when the network is back.';
    case 'checking': return 'The connection stopped; asking the server why…';
    // The reason is told once, in the card's alert, not here as well.
    case 'error': return 'Stopped.';
    case 'changed': return 'Changed on the server: keeping the chunks the new version repeats…';
    case 'stalled':
    case 'reconnecting': {
      if (retryAt === null) return 'Connection lost: reconnecting…';
      const s = Math.max(0, Math.ceil((retryAt - performance.now()) / 1000));
      return s > 0 ? `Connection lost: reconnecting in ${s} s…` : 'Connection lost: reconnecting now…';
    }
    default: return message || state;
  }
}

/**
 * What a row says when the file changed on the server while downloading,
 * or the copy stored here was of an older version (`stored`): how many of
 * the new version's chunks were kept, as the library's `onchanged` tells.
 * @param {{kept: number, total: number, stored: boolean}} c @param {boolean} done  the download has finished
 */
export function changedText(c, done) {
  const what = c.stored ? 'The copy stored here was of an older version' : 'The file changed on the server';
  if (c.kept === 0) return `${what}: nothing received could be kept, ${done ? 'downloaded' : 'downloading'} the new version.`;
  if (c.kept >= c.total) return `${what}: kept all ${plural(c.total, 'chunk')} of the new version.`;
  return `${what}: kept ${c.kept} of ${plural(c.total, 'chunk')}, ${done ? 'fetched' : 'fetching'} the rest.`;
}
