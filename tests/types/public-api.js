// @ts-check
// Checked by tsc (jsconfig.json), never run: the implementation in web/lib/
// must be assignable to what web/chunkcast.d.ts declares, so the hand-written
// declarations cannot drift from the code.
import * as api from '../../web/chunkcast.js'; // resolves to chunkcast.d.ts
import * as bytes from '../../web/lib/bytes.js';
import * as download from '../../web/lib/download.js';
import * as errors from '../../web/lib/errors.js';
import * as fileHandle from '../../web/lib/store/file-handle.js';
import * as format from '../../web/lib/format.js';
import * as plan from '../../web/lib/plan.js';
import * as protocol from '../../web/lib/protocol.js';
import * as save from '../../web/lib/save.js';
import * as sha from '../../web/lib/sha256.js';
import * as sse from '../../web/lib/sse.js';
import * as state from '../../web/lib/state.js';
import * as stored from '../../web/lib/store/list.js';
import * as stores from '../../web/lib/store/index.js';

/** @type {typeof api.Download} */ export const Download = download.Download;
/** @type {typeof api.ChunkcastError} */ export const ChunkcastError = errors.ChunkcastError;
/** @type {typeof api.asError} */ export const asError = errors.asError;
/** @type {typeof api.MemoryStore} */ export const MemoryStore = stores.MemoryStore;
/** @type {typeof api.OpfsStore} */ export const OpfsStore = stores.OpfsStore;
/** @type {typeof api.IdbStore} */ export const IdbStore = stores.IdbStore;
/** @type {typeof api.chooseStore} */ export const chooseStore = stores.chooseStore;
/** @type {typeof api.findStored} */ export const findStored = stores.findStored;
/** @type {typeof api.clearStored} */ export const clearStored = stores.clearStored;
/** @type {typeof api.listStored} */ export const listStored = stored.listStored;
/** @type {typeof api.storageEstimate} */ export const storageEstimate = stored.storageEstimate;
/** @type {typeof api.FileHandleStore} */ export const FileHandleStore = fileHandle.FileHandleStore;
/** @type {typeof api.fileHandleSupported} */ export const fileHandleSupported = fileHandle.fileHandleSupported;
/** @type {typeof api.listHandles} */ export const listHandles = fileHandle.listHandles;
/** @type {typeof api.findHandle} */ export const findHandle = fileHandle.findHandle;
/** @type {typeof api.forgetHandle} */ export const forgetHandle = fileHandle.forgetHandle;
/** @type {typeof api.allowWriting} */ export const allowWriting = fileHandle.allowWriting;
/** @type {typeof api.LIVE} */ export const LIVE = state.LIVE;
/** @type {typeof api.RUNNING} */ export const RUNNING = state.RUNNING;
/** @type {typeof api.TERMINAL} */ export const TERMINAL = state.TERMINAL;
/** @type {typeof api.MAX_RANGE} */ export const MAX_RANGE = protocol.MAX_RANGE;
/** @type {typeof api.MAX_NEED} */ export const MAX_NEED = protocol.MAX_NEED;
/** @type {typeof api.listFiles} */ export const listFiles = protocol.listFiles;
/** @type {typeof api.checkManifest} */ export const checkManifest = protocol.checkManifest;
/** @type {typeof api.span} */ export const span = protocol.span;
/** @type {typeof api.formatNeed} */ export const formatNeed = protocol.formatNeed;
/** @type {typeof api.plan} */ export const planFn = plan.plan;
/** @type {typeof api.runs} */ export const runs = plan.runs;
/** @type {typeof api.SseParser} */ export const SseParser = sse.SseParser;
/** @type {typeof api.maxLineFor} */ export const maxLineFor = sse.maxLineFor;
/** @type {typeof api.parseChunkData} */ export const parseChunkData = sse.parseChunkData;
/** @type {typeof api.decodeBase64} */ export const decodeBase64 = bytes.decodeBase64;
/** @type {typeof api.decodeBase64Into} */ export const decodeBase64Into = bytes.decodeBase64Into;
/** @type {typeof api.encodeBase64} */ export const encodeBase64 = bytes.encodeBase64;
/** @type {typeof api.toHex} */ export const toHex = bytes.toHex;
/** @type {typeof api.digestsFromHex} */ export const digestsFromHex = bytes.digestsFromHex;
/** @type {typeof api.sha256} */ export const sha256 = sha.sha256;
/** @type {typeof api.sha256Fallback} */ export const sha256Fallback = sha.sha256Fallback;
/** @type {typeof api.rootOf} */ export const rootOf = sha.rootOf;
/** @type {typeof api.formatBytes} */ export const formatBytes = format.formatBytes;
/** @type {typeof api.saveBlob} */ export const saveBlob = save.saveBlob;
/** @type {api.DownloadOptions} */ export const options = /** @type {import('../../web/lib/options.js').DownloadOptions} */ ({});
/** @type {api.Progress} */ export const progress = /** @type {import('../../web/lib/ledger.js').Progress} */ (/** @type {any} */ (null));
