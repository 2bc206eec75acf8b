// Types of chunkcast.js's public API (the browser and Node client of the
// chunkcast protocol v1; the package's `types`, see package.json).
// Hand-written, and kept honest by tsc: the page (web/app.js, web/page/) is
// checked against it, and tests/types/public-api.js checks that the
// implementation in web/lib/ is assignable to it.

export declare const PROTOCOL: 1;
/** Most chunks per range request when the manifest says no `max_range` (the server's default). */
export declare const MAX_RANGE: 256;
/** Longest `need=` list, in characters, when the manifest says no `max_need` (the server's limit). */
export declare const MAX_NEED: 8192;

/** A file's manifest, as `/api/manifest?file=NAME` returns it. */
export interface Manifest {
  name: string;
  size: number;
  kind: 'text' | 'binary';
  chunk_size: number;
  chunks: number;
  version: string;
  sha256: string;
  root: string;
  hashes: string[];
  offsets?: number[];
  /** most chunks per range request (the server's --max-range); MAX_RANGE when absent */
  max_range?: number;
  /** longest `need=` list the server accepts; MAX_NEED when absent */
  max_need?: number;
  /** a live text still being written (`serve --publish`): the chunks sealed so far, more to follow */
  live?: boolean;
  /** a live text's state: 'live' or 'interrupted'; a finished publication's: how it ended, 'complete' or 'abandoned' */
  state?: string;
}

/**
 * Where a live text's publication is: its producer writing (`live`), gone
 * and expected back (`interrupted`), or ended: `complete`, `abandoned` (its
 * producer never came back; the file is what was sealed), `ended` (the
 * download did not see how).
 */
export type LiveState = 'live' | 'interrupted' | 'complete' | 'abandoned' | 'ended';

export type ErrorCode =
  | 'not_found' | 'changed' | 'server_down' | 'http' | 'protocol' | 'corrupt'
  | 'storage' | 'unsupported' | 'closed' | 'internal';

/** An error with a stable `code` a page can branch on. */
export declare class ChunkcastError extends Error {
  constructor(code: ErrorCode, message: string, extra?: { status?: number; cause?: unknown });
  code: ErrorCode;
  status: number | undefined;
}

/** Any exception as a ChunkcastError, labelled by its real cause (never `storage` unless storage failed). */
export declare function asError(e: unknown): ChunkcastError;

export type State =
  | 'idle' | 'manifest' | 'opening' | 'connecting' | 'resuming' | 'streaming' | 'reconnecting' | 'stalled'
  | 'refilling' | 'offline' | 'checking' | 'paused' | 'verifying' | 'done' | 'error' | 'changed' | 'closed';

/** Under way and reacting to the network (it has a manifest and storage). */
export declare const LIVE: ReadonlySet<State>;
/** Running, from fetching the manifest to proving the whole file: its numbers move. */
export declare const RUNNING: ReadonlySet<State>;
/** Ended: nothing runs until `restart()` (or `resume()` after an error). */
export declare const TERMINAL: ReadonlySet<State>;

export interface Progress {
  name: string;
  state: string;
  size: number;
  chunks: number;
  chunksVerified: number;
  bytesVerified: number;
  /** chunks found verified in storage at start */
  chunksResumed: number;
  /** verification failures seen */
  chunksFailed: number;
  /** chunks verified after a failure */
  chunksRefetched: number;
  /** payload bytes received over the network */
  bytesReceived: number;
  reconnects: number;
  /** verified bytes per second, recent window */
  bytesPerSecond: number;
  /** seconds left at that speed */
  eta: number | null;
  percent: number;
  /** seconds since the download (re)started */
  elapsed: number;
  /** bytes verified from the network / elapsed */
  averageBytesPerSecond: number;
  /** a live text's state (`size` and `chunks` are what was sealed so far until it ends); null for a file */
  live: LiveState | null;
}

/** What `onchanged` is told: the download moved from `oldVersion` to `newVersion`, keeping `kept` of its `total` chunks. */
export interface Change {
  /** why the change was noticed (412, the stream's `changed` event, the stored chunks' version) */
  why: string;
  oldVersion: string;
  newVersion: string;
  /** verified chunks of the old version that the new one repeats (same index, offset, length and SHA-256), kept where they are stored */
  kept: number;
  /** the new version's chunks */
  total: number;
  /** true when the older version's chunks were found in storage (a resumed download), false when the file changed while downloading */
  stored: boolean;
  /** a text's: the chunk `ontext` goes on from (0: it starts over, what was told is no longer the file's) */
  textFrom?: number;
}

/** Where a download keeps verified chunks. */
export interface ChunkStore {
  kind: string;
  persistent: boolean;
  open(m: Manifest): Promise<Map<number, Uint8Array>>;
  put(items: { i: number; off: number; bytes: Uint8Array; digest: Uint8Array }[]): Promise<void> | void;
  reserve?(len: number): Uint8Array | null;
  settle?(): void;
  flush(): Promise<void>;
  read(i: number, off: number, len: number): Promise<Uint8Array>;
  blob(type?: string): Promise<Blob>;
  discard(): Promise<void>;
  close(): Promise<void>;
  /** set by open() to the version it held when that was another one (it kept the chunks the new one repeats) */
  staleVersion?: string | null;
  timing?: Record<string, number>;
}

export interface DownloadOptions {
  /** server URL; defaults to the page's origin */
  base?: string;
  /** EventSource constructor; defaults to the global one */
  EventSource?: any;
  fetch?: typeof fetch;
  /** 'auto' | 'memory' | 'opfs' | 'idb' | a store */
  store?: string | ChunkStore;
  /**
   * Who reads the stream: 'worker' (a worker fetches, decodes and verifies each chunk and the
   * OPFS store's worker writes it, off the main thread; needs the OPFS store, else EventSource
   * is used), 'eventsource' (the page's EventSource, the reference behaviour), 'auto'
   * (default): the worker where it can run (measured faster, and the main thread stays
   * nearly idle), else EventSource.
   */
  transport?: 'auto' | 'worker' | 'eventsource';
  /**
   * Whether the 'worker' transport reads the file's bytes raw from `/files/NAME` with Range requests
   * where it can (default true): no SSE parsing or base64, so about twice as fast into OPFS; every chunk
   * is still verified against the manifest's digest before it is stored. Never raw: a paced download
   * (`rate`), a live text, the 'eventsource' transport. Anything unexpected (a status other than 206, a
   * wrong Content-Range, another ETag, a chunk that fails verification) hands the rest of the download to
   * the event stream. `false` keeps the worker transport on the event stream.
   */
  raw?: boolean;
  /** largest file kept in memory with 'auto' */
  memoryLimit?: number;
  /** ms without any event before reopening */
  stallTimeout?: number;
  /** range requests in flight at most */
  parallel?: number;
  /** chunks per range request (at most the manifest's `max_range`, MAX_RANGE when it has none) */
  batch?: number;
  /** ask the server to pace to this many bytes/s */
  rate?: number;
  /** Query parameters sent with every request (manifest, stream and its reconnects, ranges): a signed link's `exp` and `sig`. */
  params?: Record<string, string>;
  /** @deprecated no longer needed: a download whose file changes on the server always goes on with the new version (see `onchanged`) */
  restartOnChange?: boolean;
  backoffBase?: number;
  backoffMax?: number;
  /** failed reconnects in a row before giving up */
  retries?: number;
  /** failed verifications of one chunk before giving up */
  maxChunkFailures?: number;
  /** ms between onprogress calls */
  progressInterval?: number;
  /** MIME type of the result */
  type?: string;
  onprogress?: (p: Progress) => void;
  ontext?: (text: string, info: { i: number; offset: number }) => void;
  onchunk?: (i: number, status: 'received' | 'verified' | 'failed' | 'refetched' | 'missing') => void;
  onstate?: (state: State, message: string) => void;
  /**
   * The file changed on the server while downloading (`stored` false), or the chunks stored were of an
   * older version (`stored` true, on resume). The download goes on with `newVersion`: it keeps the `kept`
   * of its `total` chunks that the new manifest repeats (same index, offset, length and SHA-256), where
   * they are stored, and fetches the rest. For a text, `textFrom` is the chunk `ontext` goes on from:
   * where it was when every chunk it delivered was kept, else 0 (the text is told again from its start).
   */
  onchanged?: (info: Change) => void;
  /** a live text's publication changed state (its first state is the manifest's `state`) */
  onlive?: (state: LiveState) => void;
  onerror?: (e: ChunkcastError) => void;
  ondone?: (r: { blob: Blob; manifest: Manifest }) => void;
  log?: (msg: string) => void;
  /** filled with per-stage timings (for the benchmark) */
  stats?: Record<string, number>;
}

/** One file's download. `start()` runs it; `done` settles with the result. */
export declare class Download {
  constructor(name: string, opts?: DownloadOptions);
  readonly name: string;
  state: State;
  /** which transport carries the download, once its storage is open */
  readonly transportKind: 'worker' | 'eventsource';
  manifest: Manifest | null;
  store: ChunkStore | null;
  /** a live text's publication, while the download follows one; null for a file */
  live: { readonly state: LiveState; readonly growing: boolean } | null;
  done: Promise<{ blob: Blob; manifest: Manifest }>;
  blob: Blob | undefined;
  fetchManifest(): Promise<{ m: Manifest; expected: Uint8Array }>;
  span(i: number): { off: number; len: number };
  start(): Promise<void>;
  progress(): Progress;
  restart(): Promise<{ blob: Blob; manifest: Manifest }>;
  pause(): void;
  /** Continues after `pause()` or an error; while `reconnecting` (waiting out a backoff), tries again now. */
  resume(): void;
  dropConnection(): boolean;
  setRate(rate: number): void;
  close(): Promise<void>;
  result(): Promise<Blob>;
  save(filename?: string): Promise<string>;
}

export declare class MemoryStore implements ChunkStore {
  constructor();
  kind: string;
  persistent: boolean;
  open(m: Manifest): Promise<Map<number, Uint8Array>>;
  put(items: { i: number; off: number; bytes: Uint8Array; digest: Uint8Array }[]): void;
  flush(): Promise<void>;
  read(i: number): Promise<Uint8Array>;
  blob(type?: string): Promise<Blob>;
  discard(): Promise<void>;
  close(): Promise<void>;
}

export declare class OpfsStore implements ChunkStore {
  constructor(name: string);
  static supported(): boolean;
  kind: string;
  persistent: boolean;
  open(m: Manifest): Promise<Map<number, Uint8Array>>;
  put(items: { i: number; off: number; bytes: Uint8Array; digest: Uint8Array }[]): Promise<void> | void;
  reserve(len: number): Uint8Array | null;
  settle(): void;
  flush(): Promise<void>;
  read(i: number, off: number, len: number): Promise<Uint8Array>;
  blob(type?: string): Promise<Blob>;
  discard(): Promise<void>;
  close(): Promise<void>;
}

export declare class IdbStore implements ChunkStore {
  constructor(name: string);
  static supported(): boolean;
  kind: string;
  persistent: boolean;
  open(m: Manifest): Promise<Map<number, Uint8Array>>;
  put(items: { i: number; off: number; bytes: Uint8Array; digest: Uint8Array }[]): Promise<void> | undefined;
  flush(): Promise<void>;
  read(i: number): Promise<Uint8Array>;
  blob(type?: string): Promise<Blob>;
  discard(): Promise<void>;
  close(): Promise<void>;
}

/** The store for a file: memory up to `memoryLimit`, else OPFS, else IndexedDB, else memory. */
export declare function chooseStore(name: string, size: number, opts: { store?: string | ChunkStore; memoryLimit?: number }): ChunkStore;
/** What a previous page left in storage for `name`, if anything (not yet re-verified). */
export declare function findStored(name: string): Promise<{ store: string; version: string; chunks: number; size: number } | null>;
/** Removes whatever is stored for `name`, in every store kind. */
export declare function clearStored(name: string): Promise<void>;
/** Every download a previous page left in this browser's storage (OPFS and IndexedDB). */
export declare function listStored(): Promise<{ name: string; store: string; version: string; chunks: number; size: number }[]>;
/** How much this origin keeps in the browser's storage, and its quota (null where unknown). */
export declare function storageEstimate(): Promise<{ usage: number | null; quota: number | null }>;

/** A download that writes into a file the person picked (`showSaveFilePicker`), as recorded in IndexedDB. */
export interface HandleRecord {
  name: string;
  handle: FileSystemFileHandle;
  version: string;
  size: number;
  chunks: number;
  /** chunk numbers committed to the file */
  written: number[];
}

/** Whether this browser can save straight to a picked file. */
export declare function fileHandleSupported(): boolean;
/** Every download that writes into a picked file, as recorded. */
export declare function listHandles(): Promise<HandleRecord[]>;
/** The record of `name`, if any. */
export declare function findHandle(name: string): Promise<HandleRecord | undefined>;
/** Forgets `name`'s picked file (the file itself stays where it is). */
export declare function forgetHandle(name: string): Promise<void>;
/** Asks (once more, after a reload) for permission to write into `handle`. */
export declare function allowWriting(handle: FileSystemFileHandle): Promise<boolean>;

/** The ChunkStore that writes verified chunks straight into a picked file. */
export declare class FileHandleStore implements ChunkStore {
  constructor(name: string, handle: FileSystemFileHandle, opts?: { commitBytes?: number; commitMs?: number });
  kind: string;
  persistent: boolean;
  readonly handle: FileSystemFileHandle;
  open(m: Manifest): Promise<Map<number, Uint8Array>>;
  put(items: { i: number; off: number; bytes: Uint8Array }[]): Promise<void>;
  flush(): Promise<void>;
  read(i: number, off: number, len: number): Promise<Uint8Array>;
  blob(type?: string): Promise<Blob>;
  discard(): Promise<void>;
  close(): Promise<void>;
  /** Gives the download up: empties the picked file, removes it where the browser allows, forgets it. */
  drop(): Promise<void>;
}

/** The files the server offers. */
/** One folder of the served tree (`dir` as listed; the top without it). */
export declare function listFiles(base?: string, f?: typeof fetch, dir?: string): Promise<{ name: string; size: number; modified: string; type: 'file' | 'dir' }[]>;
export declare function checkManifest(m: Manifest, name: string): Promise<Uint8Array>;
export declare function span(m: Pick<Manifest, 'kind' | 'size' | 'chunks' | 'chunk_size'> & { offsets?: number[] | null }, i: number): { off: number; len: number };
export declare function formatNeed(list: [number, number][], maxLength?: number): { need: string; covered: number };

/** A chunk's state in a download (see plan). */
export declare const CHUNK: Readonly<{ MISSING: 0; VERIFIED: 1; QUEUED: 2; INFLIGHT: 3 }>;
export declare function runs(n: number, pick: (i: number) => boolean): [number, number][];
/** What to fetch next, from the chunks' states (pure). */
export declare function plan(
  status: Uint8Array,
  now: { streaming: boolean; ranges: number; parallel: number; batch: number; busy: boolean; maxRange?: number; maxNeed?: number },
): { ranges: [number, number][]; stream: { first: number; from?: number; need?: string } | null; stuck: boolean };

export declare class SseParser {
  constructor(onEvent: (ev: { type: string; data: string; id: string }) => void, opts?: { maxLine?: number; onRetry?: (ms: number) => void });
  lastId: string;
  retry: number | null;
  push(bytes: Uint8Array): void;
  end(): void;
}
/** The longest SSE line a server may send for chunks of `chunkSize` bytes. */
export declare function maxLineFor(chunkSize: number): number;
export declare function parseChunkData(data: string): { i: number; off: number; len: number; sha256: string; b64?: string; text?: string };

export declare function decodeBase64(s: string): Uint8Array;
export declare function decodeBase64Fallback(s: string): Uint8Array;
export declare function decodeBase64Into(s: string, target: Uint8Array): number;
export declare function encodeBase64(bytes: Uint8Array): string;
export declare const hasNativeBase64: boolean;
export declare function toHex(bytes: Uint8Array): string;
export declare function digestsFromHex(list: string[]): Uint8Array;

/** Whether SHA-256 runs on WebCrypto here (false in an insecure context: the vendored WebAssembly one is used). */
export declare const hasWebCrypto: boolean;
export declare function sha256(bytes: Uint8Array | ArrayBuffer): Promise<Uint8Array>;
/** SHA-256 without WebCrypto (the vendored WebAssembly build). */
export declare function sha256Fallback(bytes: Uint8Array): Promise<Uint8Array>;
export declare function rootOf(digests: Uint8Array): Promise<string>;

export declare function formatBytes(n: number): string;
export declare function saveBlob(blob: Blob, filename: string): string;
