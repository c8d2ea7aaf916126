// Types of the sse-relay npm package. Written for TypeScript 4.7 and later with any `lib` that has
// async iterators (es2018): nothing here needs `skipLibCheck` or `lib: esnext`.

/** A journaled frame, delivered exactly once and in order. */
export interface Frame {
  readonly id: string;
  readonly event: string;
  readonly data: string;
}

export type RelayState = "connecting" | "live" | "reconnecting" | "closed";
export type RelayRole = "leader" | "follower" | "standalone";

/** Where the stream stands: the last frame the page took, and its journal incarnation. */
export interface Cursor {
  readonly id: string;
  readonly epoch: string;
}

export interface RelayStats {
  /** Frames handed to the page. */
  delivered: number;
  /** Frames dropped because they had been delivered already (a replay/live seam, a second leader). */
  duplicates: number;
  /** Connections lost and re-established. */
  reconnects: number;
  /** Journal resets (epoch changes). */
  resets: number;
  /** Holes in consecutive ids the journal could not fill (`contiguousIds`). */
  gaps: number;
  /** Malformed inputs (not delivered; each is also a `malformed` event). */
  malformed: number;
  /** Live connections replaced because they went silent. */
  stalls: number;
  /** Connections opened (a follower's are its links to the leader tab). */
  connections: number;
  /** Times the leading tab of the stream changed. */
  leaderChanges: number;
  /** Cross-tab messages ignored as malformed, stale, replayed or forged. */
  rejectedMessages: number;
  /** Frames of an event type not in `events` (not delivered; each is also a `filtered` event). */
  filtered: number;
  /**
   * What the stream promises, given `serverProfile`: "exactly-once" (protocol v1) or
   * "at-most-once" (a plain SSE server: no duplicates, in order, but a frame can be missed).
   */
  guarantee: RelayGuarantee;
}

/** See `RelayStats.guarantee`. */
export type RelayGuarantee = "exactly-once" | "at-most-once";

/** Options of `RelayStream.open`: all optional. */
export interface RelayOptions {
  /**
   * What the server speaks. "relay" (default): protocol v1, exactly once. "plain": a
   * `Last-Event-ID` server without a `ready` frame (better-sse, sse-starlette, most hand-written
   * ones): the open response counts as the join, so the join race cannot be guarded, and the
   * stream is at most once (see `RelayStats.guarantee`); not with `from: "now"`.
   */
  serverProfile?: "relay" | "plain" | "durable-streams";
  /** Stream key for tab sharing and storage (default: the absolute URL). */
  key?: string;
  /**
   * Journaled event types to deliver. Left out: every type, on the `fetch` transport (the only
   * one that can hear them all). `done` is always delivered.
   */
  events?: string[];
  /** Without a cursor: replay the whole journal ("start", default) or only what comes after the join ("now"). */
  from?: "start" | "now";
  readyEvent?: string;
  doneEvent?: string;
  pingEvent?: string;
  cursorParam?: string;
  epochParam?: string;
  cursorOrder?: "auto" | "numeric" | "redis" | "opaque";
  /** Numeric ids are consecutive from 1: a hole is refilled from the journal, or reported as a `gap`. */
  contiguousIds?: boolean;
  dedupWindow?: number;
  readyTimeoutMs?: number;
  heartbeatTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** "session": a reload resumes after the last frame the page took. */
  persistCursor?: "none" | "session";
  /** EventSource only: send cookies cross-origin. */
  withCredentials?: boolean;
  /** One connection per key across the browser's tabs (default true). */
  shareAcrossTabs?: boolean;
  /** Aborting closes the stream (and rejects a pending `open` with `RelayAbortError`). */
  signal?: AbortSignal;
  /** Listeners registered before the first connection: they also see what happens while `open()` is pending. */
  on?: { [K in keyof RelayEventMap]?: (event: RelayEventMap[K]) => void };
  /** "eventsource" (default when `events` is given) or "fetch" (default otherwise). */
  transport?: "eventsource" | "fetch";
  /** fetch only */
  headers?: Record<string, string>;
  /** fetch only */
  method?: string;
  /** fetch only */
  body?: string;
  /** fetch only */
  credentials?: "omit" | "same-origin" | "include";
  /** fetch only: on 401/403, fresh headers to retry with, or null to stop. */
  onUnauthorized?: (
    status: number,
  ) => Record<string, string> | null | undefined | Promise<Record<string, string> | null | undefined>;
}

/** The argument of each event's listeners. */
export interface RelayEventMap {
  ready: { tail: string | null; epoch: string };
  state: RelayState;
  reset: { previousEpoch: string; epoch: string };
  reconnecting: { attempt: number; delayMs: number; cause: string };
  gap: { after: string; next: string };
  malformed: {
    kind: "missing-id" | "bad-id" | "bad-ready" | "bad-tail" | "before-ready" | "before-start" | "unparsable" | "bad-control";
    message: string;
    event: string;
    id: string | null;
    data: string;
  };
  filtered: { id: string; event: string };
  error: RelayError;
}

/** What `stream[Symbol.asyncIterator]()` returns; leaving a `for await` loop early closes the stream. */
export interface FrameIterator {
  next(): Promise<IteratorResult<Frame, undefined>>;
  return(): Promise<IteratorResult<Frame, undefined>>;
  [Symbol.asyncIterator](): FrameIterator;
}

/**
 * What `stream.batches()` returns: each step gives every frame that arrived since the last (at
 * least one), in order; leaving a `for await` loop early closes the stream.
 */
export interface BatchIterator {
  next(): Promise<IteratorResult<Frame[], undefined>>;
  return(): Promise<IteratorResult<Frame[], undefined>>;
  [Symbol.asyncIterator](): BatchIterator;
}

/** A stream of journaled frames: exactly once, in order, across reconnects and tabs. */
export declare class RelayStream {
  private constructor();
  /** Resolves once the server's `ready` frame confirms its join; rejects with a typed error. */
  static open(url: string | URL, options?: RelayOptions): Promise<RelayStream>;
  [Symbol.asyncIterator](): FrameIterator;
  /**
   * The frames in batches, for `for await`: one step per burst instead of one per frame; the
   * cursor moves past a whole batch when it is handed over. Read a stream through one iterator.
   */
  batches(): BatchIterator;
  readonly state: RelayState;
  readonly role: RelayRole;
  /** The last frame the page took, with its epoch; `null` before the first. */
  readonly cursor: Cursor | null;
  /** The journal epoch in force; `null` before the first `ready`. */
  readonly epoch: string | null;
  readonly stats: RelayStats;
  on<K extends keyof RelayEventMap>(type: K, listener: (event: RelayEventMap[K]) => void): void;
  off<K extends keyof RelayEventMap>(type: K, listener: (event: RelayEventMap[K]) => void): void;
  /** Closes the stream; frames already queued can still be read, then iteration ends. */
  close(): void;
  /** The same as `close()` (also what `using` calls): the object stays readable. */
  free(): void;
}

export type RelayErrorName =
  | "RelayTimeoutError"
  | "RelayOptionsError"
  | "AbortError"
  | "RelayConnectError"
  | "RelayUnauthorizedError"
  | "RelayStoppedError"
  | "RelayContentTypeError"
  | "RelayGoneError"
  | "RelayLoadError";

/** Every error of sse-relay: test with `instanceof` or by `name`. */
export declare class RelayError extends Error {
  name: RelayErrorName;
}
/** No `ready` within `readyTimeoutMs`: the server has not joined, do not dispatch. */
export declare class RelayTimeoutError extends RelayError {
  name: "RelayTimeoutError";
}
/** An option cannot work. */
export declare class RelayOptionsError extends RelayError {
  name: "RelayOptionsError";
  /** The option's name. */
  option: string;
}
/** The `signal` aborted the stream, or it was closed before `open()` resolved. */
export declare class RelayAbortError extends RelayError {
  name: "AbortError";
}
/** The browser refused to create the connection (a malformed URL, a blocked scheme). */
export declare class RelayConnectError extends RelayError {
  name: "RelayConnectError";
}
/** fetch: 401/403, and `onUnauthorized` gave no fresh headers. */
export declare class RelayUnauthorizedError extends RelayError {
  name: "RelayUnauthorizedError";
}
/** fetch: the server answered 204 No Content. */
export declare class RelayStoppedError extends RelayError {
  name: "RelayStoppedError";
}
/** fetch: a 2xx answer that is not `text/event-stream`. */
export declare class RelayContentTypeError extends RelayError {
  name: "RelayContentTypeError";
}
/** fetch, `serverProfile: "durable-streams"`: 410 Gone, the server no longer has the data at the cursor. */
export declare class RelayGoneError extends RelayError {
  name: "RelayGoneError";
}
/** The WebAssembly module could not be loaded (not found, or refused by a Content-Security-Policy). */
export declare class RelayLoadError extends RelayError {
  name: "RelayLoadError";
}

/** Where the WebAssembly module is, when not next to the package's entry. */
export interface ReadyOptions {
  wasm?: string | URL | Request | Response | BufferSource | WebAssembly.Module | Promise<Response>;
}

/** Loads the WebAssembly module (`RelayStream.open` does it by itself). */
export declare function ready(options?: ReadyOptions): Promise<void>;
