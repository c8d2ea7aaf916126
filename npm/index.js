// sse-relay: the npm package's entry. Importing it does nothing: the WebAssembly module loads on
// the first `RelayStream.open` (or `ready()`), from next to this file unless told otherwise.
import init, { RelayStream } from "./sse_relay.js";
import { RelayLoadError } from "./errors.js";

export {
  RelayError, RelayTimeoutError, RelayOptionsError, RelayAbortError, RelayConnectError,
  RelayUnauthorizedError, RelayStoppedError, RelayContentTypeError, RelayLoadError, RelayGoneError,
} from "./errors.js";

let loading;

/**
 * Loads the WebAssembly module once. `RelayStream.open` calls it; call it first yourself to load
 * early, or to say where the module is (`wasm`: a URL, a `Response`, the bytes, or a compiled
 * `WebAssembly.Module`) when a bundler does not ship it next to this file.
 */
export function ready({ wasm } = {}) {
  loading ??= init({ module_or_path: wasm ?? new URL("./sse_relay_bg.wasm", import.meta.url) }).then(
    () => undefined,
    (error) => {
      loading = undefined; // a later call may give another location
      throw loadError(error);
    },
  );
  return loading;
}

/** Why the module did not load, and what to do about it. */
function loadError(cause) {
  const csp = cause instanceof WebAssembly.CompileError && /Content Security Policy|unsafe-eval/i.test(String(cause.message));
  const message = csp
    ? "sse-relay: the page's Content-Security-Policy refuses to compile WebAssembly: add 'wasm-unsafe-eval' to its script-src"
    : `sse-relay: its WebAssembly module could not be loaded (${cause?.message ?? cause}); if a bundler did not ship sse_relay_bg.wasm next to the package's entry, call ready({ wasm: "<its URL>" }) first`;
  const error = new RelayLoadError(message, { cause });
  return error;
}

const openLoaded = RelayStream.open;
RelayStream.open = async function open(url, options) {
  await ready();
  return openLoaded.call(RelayStream, String(url), options ?? {});
};

// `free()` and `using` close the stream; the object stays readable (state, stats, cursor) and its
// memory is released when it is garbage-collected.
RelayStream.prototype.free = function free() {
  this.close();
};
if (typeof Symbol.dispose === "symbol") RelayStream.prototype[Symbol.dispose] = RelayStream.prototype.free;

// An iterator keeps its stream alive: a loop over `await RelayStream.open(...)` holds no other
// reference to it, and a collected stream closes.
for (const [key, name] of [[Symbol.asyncIterator, "frames"], ["batches", "batches"]]) {
  const iterate = RelayStream.prototype[key];
  RelayStream.prototype[key] = {
    [name]() {
      const iterator = iterate.call(this);
      Object.defineProperty(iterator, "stream", { value: this });
      return iterator;
    },
  }[name];
}

export { RelayStream };
