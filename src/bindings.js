// The JavaScript half of src/bindings.rs: `for await` over a stream, fed by a wasm `FrameSource`.
// Frames come over in batches (one string per batch, sliced here), and a waiting reader is woken
// by a callback rather than a Rust future, so a frame costs no promise machinery inside wasm.

const END = Object.freeze({ value: undefined, done: true });

// An id length with this bit set is an index into `made` (MADE in bindings.rs).
const MADE = 0x80000000;

/**
 * Slices a batch: `text` holds each frame's id, event and data back to back, `lengths` their
 * lengths in UTF-16 code units; a frame the transport made an object of already (EventSource,
 * from the browser's own strings) is `made[index]` instead, its lengths `MADE | index, 0, 0`.
 */
export function framesFromText(text, lengths, made) {
  const frames = new Array(lengths.length / 3);
  let at = 0;
  for (let i = 0, n = 0; i < lengths.length; i += 3, n++) {
    if (lengths[i] >= MADE) {
      frames[n] = made[lengths[i] - MADE];
      continue;
    }
    const id = text.slice(at, (at += lengths[i]));
    const event = text.slice(at, (at += lengths[i + 1]));
    const data = text.slice(at, (at += lengths[i + 2]));
    frames[n] = { id, event, data };
  }
  return frames;
}

/**
 * The next batch of `source`'s frames (an array, not yet taken), or `null` at the end; waits
 * while there is none. Throws the stream's failure, once.
 */
async function pullBatch(source) {
  for (;;) {
    const pulled = source.pull();
    if (pulled !== undefined) return pulled;
    await new Promise((resolve) => source.wait(resolve));
  }
}

/** An async iterator whose `next` is `step` until the end; `return` closes the stream. */
function iterator(source, step, reset) {
  let finished = false;
  const ended = () => {
    finished = true;
    reset();
    return END;
  };
  return {
    next() {
      return finished ? Promise.resolve(END) : step(ended);
    },
    return() {
      ended();
      source.close();
      return Promise.resolve(END);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** The async iterator over `source`'s frames, one at a time. */
export function frameIterator(source) {
  let batch = [];
  let at = 0;
  // A pulled frame moves the cursor only when it is handed to the page.
  const hand = () => {
    source.took(1);
    return { value: batch[at++], done: false };
  };
  const step = async (ended) => {
    if (at >= batch.length) {
      const pulled = await pullBatch(source);
      if (pulled === null) return ended();
      batch = pulled;
      at = 0;
    }
    return hand();
  };
  const reset = () => {
    batch = [];
    at = 0;
  };
  return iterator(source, (ended) => (at < batch.length ? Promise.resolve(hand()) : step(ended)), reset);
}

/** The async iterator over `source`'s frames, every frame that arrived since the last step at once. */
export function batchIterator(source) {
  return iterator(source, async (ended) => {
    const pulled = await pullBatch(source);
    if (pulled === null) return ended();
    source.took(pulled.length);
    return { value: pulled, done: false };
  }, () => {});
}

// ---------------------------------------------------------------------------------------------
// Errors: one class per stable name, so a page can test `instanceof` (the package exports them)
// or `name`. `makeError` is how the Rust side throws them.

/** Every error of sse-relay. */
export class RelayError extends Error {}
/** No `ready` within `readyTimeoutMs`: the server has not joined, do not dispatch. */
export class RelayTimeoutError extends RelayError {}
/** An option cannot work; `option` names it. */
export class RelayOptionsError extends RelayError {}
/** The `signal` aborted the stream, or it was closed before `open()` resolved. */
export class RelayAbortError extends RelayError {}
/** The browser refused to create the connection (a malformed URL, a blocked scheme). */
export class RelayConnectError extends RelayError {}
/** 401/403 and `onUnauthorized` gave no fresh headers (`fetch`). */
export class RelayUnauthorizedError extends RelayError {}
/** The server answered 204 No Content: the stream is over (`fetch`). */
export class RelayStoppedError extends RelayError {}
/** The server answered 2xx with another content type than `text/event-stream` (`fetch`). */
export class RelayContentTypeError extends RelayError {}
/** A Durable Streams server answered 410 Gone: it no longer has the data at the cursor (`fetch`). */
export class RelayGoneError extends RelayError {}
/** The WebAssembly module could not be loaded (not found, or refused by a Content-Security-Policy). */
export class RelayLoadError extends RelayError {}

// The stable names. An abort keeps the platform's name, `AbortError`.
const NAMES = [
  [RelayError, "RelayError"], [RelayTimeoutError, "RelayTimeoutError"],
  [RelayOptionsError, "RelayOptionsError"], [RelayAbortError, "AbortError"],
  [RelayConnectError, "RelayConnectError"], [RelayUnauthorizedError, "RelayUnauthorizedError"],
  [RelayStoppedError, "RelayStoppedError"], [RelayContentTypeError, "RelayContentTypeError"],
  [RelayLoadError, "RelayLoadError"], [RelayGoneError, "RelayGoneError"],
];
const BY_NAME = new Map();
for (const [type, name] of NAMES) {
  Object.defineProperty(type.prototype, "name", { value: name, configurable: true, writable: true });
  BY_NAME.set(name, type);
}

/** The error of class `name` (an unknown name gets the base class, with that name). */
export function makeError(name, message, option) {
  const type = BY_NAME.get(name) ?? RelayError;
  const error = new type(message);
  if (type === RelayError) error.name = name;
  if (option !== undefined) error.option = option;
  return error;
}
