// @ts-check
/** @file A download's one state, and the transitions allowed between states: an illegal one is a bug, and throws. */

import { ChunkcastError } from './errors.js';

/**
 * @typedef {'idle'|'manifest'|'opening'|'connecting'|'resuming'|'streaming'|'reconnecting'|'stalled'|'refilling'
 *   |'offline'|'checking'|'paused'|'verifying'|'done'|'error'|'changed'|'closed'} State
 */

/**
 * The states in which the download is under way and reacts to the network:
 * it has a manifest and storage, and the scheduler may fetch. `checking`
 * (the manifest is asked why a stream stopped) is one of them, but the
 * scheduler waits for its answer.
 * @type {ReadonlySet<State>}
 */
export const LIVE = new Set(['opening', 'connecting', 'resuming', 'streaming', 'reconnecting', 'stalled', 'refilling', 'offline', 'checking']);

/**
 * The states in which a download is running, from fetching the manifest to
 * proving the whole file: its numbers move (a page shows its speed and ETA,
 * and ticks). `idle` (not started), `paused` and the terminal states are not.
 * `changed` (the file changed on the server: the download moves to the new
 * version, keeping the chunks it repeats) runs too, though nothing is fetched.
 * @type {ReadonlySet<State>}
 */
export const RUNNING = new Set(['manifest', ...LIVE, 'changed', 'verifying']);

/** States after which nothing runs until `restart()` (or `resume()` after an error). @type {ReadonlySet<State>} */
export const TERMINAL = new Set(['done', 'error', 'closed']);

/** @type {State[]} */
const FROM_LIVE = [...LIVE, 'paused', 'verifying', 'error', 'changed', 'closed'];

/**
 * Where each state may go. `idle` is reachable from every state (`restart()`
 * starts over from anywhere) and every state but `closed` may close.
 * @type {Record<State, State[]>}
 */
const NEXT = {
  idle: ['manifest', 'closed'],
  manifest: ['opening', 'error', 'closed'],
  opening: FROM_LIVE,
  connecting: FROM_LIVE,
  resuming: FROM_LIVE,
  streaming: FROM_LIVE,
  reconnecting: FROM_LIVE,
  stalled: FROM_LIVE,
  refilling: FROM_LIVE,
  offline: FROM_LIVE,
  checking: FROM_LIVE,
  // A change found while paused waits: resume() finds it again.
  paused: ['resuming', 'error', 'closed'],
  verifying: ['done', 'error', 'closed'],
  done: ['closed'],
  error: ['resuming', 'closed'],
  changed: ['opening', 'error', 'closed'],
  closed: [],
};

/**
 * Whether a download may go from `from` to `to`.
 * @param {State} from @param {State} to
 */
export function canMove(from, to) {
  return to === 'idle' || NEXT[from].includes(to);
}

/**
 * Throws on an illegal transition: a bug in the download's logic, which
 * must surface rather than leave it in a state nothing resumes from.
 * @param {State} from @param {State} to
 */
export function checkMove(from, to) {
  if (!canMove(from, to)) throw new ChunkcastError('internal', `illegal state transition ${from} -> ${to} (a bug in chunkcast.js)`);
}
