// The benchmark harness page (bench/run.mjs drives it through `window.bench`).
//
// Query parameters: `pkg=prof` loads the package whose wasm keeps its function names (CPU
// profiles); `count=1` counts every JS<->wasm crossing (imports and exports of the instance);
// `instrument=1` timestamps the moment the browser hands a frame to sse-relay (its EventSource
// listener or its fetch body read), for the added-latency measurement.
const params = new URLSearchParams(location.search);
const PKG = params.get("pkg") === "prof" ? "/pkg-prof/index.js" : "/pkg/index.js";
const COUNT = params.get("count") === "1";
const INSTRUMENT = params.get("instrument") === "1";

/** One clock for every page of the browser: epoch milliseconds, sub-millisecond resolution. */
const clock = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// WebAssembly: every instance's memory (for the memory figures) and, with count=1, a counter on
// every import (wasm -> JS) and export (JS -> wasm) call.

const wasmMemories = [];
const crossings = new Map();
const countCall = (name) => crossings.set(name, (crossings.get(name) ?? 0) + 1);

function countedImports(imports) {
  const out = {};
  for (const [ns, fields] of Object.entries(imports)) {
    out[ns] = {};
    for (const [name, value] of Object.entries(fields)) {
      out[ns][name] = typeof value === "function"
        ? function (...args) { countCall(`import ${name}`); return value.apply(this, args); }
        : value;
    }
  }
  return out;
}

function countedExports(exports) {
  const out = {};
  for (const [name, value] of Object.entries(exports)) {
    out[name] = typeof value === "function"
      ? function (...args) { countCall(`export ${name}`); return value.apply(this, args); }
      : value;
  }
  return out;
}

for (const name of ["instantiate", "instantiateStreaming"]) {
  const original = WebAssembly[name];
  WebAssembly[name] = async function (source, imports) {
    const result = await original.call(WebAssembly, source, COUNT && imports ? countedImports(imports) : imports);
    const instance = result instanceof WebAssembly.Instance ? result : result.instance;
    for (const value of Object.values(instance.exports)) {
      if (value instanceof WebAssembly.Memory) wasmMemories.push(value);
    }
    if (!COUNT) return result;
    const wrapped = { exports: countedExports(instance.exports) };
    Object.setPrototypeOf(wrapped, WebAssembly.Instance.prototype);
    return result instanceof WebAssembly.Instance ? wrapped : { module: result.module, instance: wrapped };
  };
}

// ---------------------------------------------------------------------------------------------
// Arrival instrumentation (instrument=1): the time the browser dispatches a `token` event to
// sse-relay's own EventSource listener, or resolves a read of sse-relay's fetch body. Sources the
// harness creates itself are marked and left alone.

const ownSources = new WeakSet();
const arrivals = new Map(); // id -> time the browser handed the frame to sse-relay
const chunks = []; // [time, Uint8Array] of fetch body reads, decoded after the run
if (INSTRUMENT) {
  const add = EventSource.prototype.addEventListener;
  const remove = EventSource.prototype.removeEventListener;
  const wrappers = new WeakMap();
  EventSource.prototype.addEventListener = function (type, listener, options) {
    if (ownSources.has(this) || type !== "token" || typeof listener !== "function") return add.call(this, type, listener, options);
    const wrapped = function (event) {
      arrivals.set(event.lastEventId, performance.now());
      return listener.call(this, event);
    };
    wrappers.set(listener, wrapped);
    return add.call(this, type, wrapped, options);
  };
  EventSource.prototype.removeEventListener = function (type, listener, options) {
    return remove.call(this, type, wrappers.get(listener) ?? listener, options);
  };
  const read = ReadableStreamDefaultReader.prototype.read;
  ReadableStreamDefaultReader.prototype.read = function () {
    return read.call(this).then((result) => {
      if (result.value) chunks.push([performance.now(), result.value]);
      return result;
    });
  };
}

function chunkArrivals() {
  const decoder = new TextDecoder();
  for (const [time, bytes] of chunks.splice(0)) {
    for (const match of decoder.decode(bytes).matchAll(/^id: ?(\S+)$/gm)) {
      if (!arrivals.has(match[1])) arrivals.set(match[1], time);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Clients. Each `start(url, sink, options)` opens, calls `sink.frame(id, data)` for every `token`
// and `done` frame, `sink.end()` after `done`, `sink.fail(error)` on a failure, and resolves once
// it is listening (for sse-relay: once `open()` resolved, that is after `ready`).

let relayModule;
async function relay() {
  relayModule ??= await import(PKG);
  await relayModule.ready();
  return relayModule.RelayStream;
}

const vendor = {};
async function anchor(file) {
  vendor[file] ??= await import(`/vendor/${file}.js`);
  return vendor[file];
}

/** Waits for the server's `ready` frame on a source the harness created. */
const readyOf = (source) => new Promise((resolve) => source.addEventListener("ready", resolve, { once: true }));

/** Wires an `EventSource`-shaped client to `sink`; resolves once its `ready` arrived. */
function eventSourceClient(source, sink) {
  const ready = readyOf(source);
  source.addEventListener("token", (e) => sink.frame(e.lastEventId, e.data));
  source.addEventListener("done", (e) => {
    sink.frame(e.lastEventId, e.data);
    source.close();
    sink.end();
  });
  sink.close = () => source.close();
  return ready;
}

const CLIENTS = {
  async raw(url, sink) {
    const source = new EventSource(url);
    ownSources.add(source);
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) sink.fail(new Error("EventSource closed"));
    });
    await eventSourceClient(source, sink);
  },

  // `batches`: the application reads with `stream.batches()` instead of frame by frame.
  async relay(url, sink, { transport = "eventsource", key, share = true, from = "start", batches = false } = {}) {
    const RelayStream = await relay();
    const stream = await RelayStream.open(url, { key, events: ["token"], from, transport, shareAcrossTabs: share });
    sink.stream = stream;
    sink.close = () => stream.close();
    (async () => {
      if (batches) {
        for await (const batch of stream.batches()) for (const frame of batch) sink.frame(frame.id, frame.data);
      } else {
        for await (const frame of stream) sink.frame(frame.id, frame.data);
      }
      sink.end();
    })().catch((e) => sink.fail(e));
  },

  async "fetch-event-source"(url, sink) {
    const { fetchEventSource } = await anchor("fetch-event-source");
    const controller = new AbortController();
    let opened;
    const ready = new Promise((r) => (opened = r));
    sink.close = () => controller.abort();
    fetchEventSource(url, {
      signal: controller.signal,
      openWhenHidden: true,
      onmessage(ev) {
        if (ev.event === "token") sink.frame(ev.id, ev.data);
        else if (ev.event === "done") {
          sink.frame(ev.id, ev.data);
          controller.abort();
          sink.end();
        } else if (ev.event === "ready") opened();
      },
      onclose() {
        throw new Error("closed before done");
      },
      onerror(error) {
        sink.fail(error);
        throw error;
      },
    }).catch((e) => sink.fail(e));
    await ready;
  },

  async "reconnecting-eventsource"(url, sink) {
    const { ReconnectingEventSource } = await anchor("reconnecting-eventsource");
    await eventSourceClient(new ReconnectingEventSource(url, { max_retry_time: 3000 }), sink);
  },

  async "event-source-polyfill"(url, sink) {
    const { EventSourcePolyfill } = await anchor("event-source-polyfill");
    await eventSourceClient(new EventSourcePolyfill(url, { heartbeatTimeout: 3_600_000 }), sink);
  },
};

/**
 * The application callback every client feeds: parses the JSON data (as an app rendering tokens
 * would), counts frames and checks that ids run 1, 2, 3... with nothing lost, repeated or
 * reordered. With `times`, records each frame's delivery time by id.
 */
function makeSink({ times = false, onFrame } = {}) {
  let finish;
  const sink = {
    count: 0,
    outOfOrder: 0,
    lastId: 0,
    checksum: 0,
    firstAt: null,
    endAt: null,
    error: null,
    times: times ? [] : null,
    finished: new Promise((resolve) => (finish = resolve)),
    frame(id, data) {
      const t = performance.now();
      const value = JSON.parse(data);
      sink.checksum += value.i ?? value.frames ?? value.tokens ?? 0;
      const n = +id;
      if (n !== sink.lastId + 1) sink.outOfOrder++;
      sink.lastId = n;
      if (sink.count++ === 0) sink.firstAt = t;
      if (sink.times) sink.times.push(n, t);
      if (onFrame) onFrame(sink, n, t);
    },
    end() {
      sink.endAt ??= performance.now();
      finish();
    },
    fail(error) {
      sink.error ??= String(error?.stack ?? error);
      sink.endAt ??= performance.now();
      finish();
    },
  };
  return sink;
}

const summary = (sink, t0) => ({
  count: sink.count,
  // On the shared clock (epoch ms), to compare tabs: when timing started and when `done` arrived.
  startAt: performance.timeOrigin + t0,
  endAt: sink.endAt === null ? null : performance.timeOrigin + sink.endAt,
  outOfOrder: sink.outOfOrder,
  lastId: sink.lastId,
  checksum: sink.checksum,
  error: sink.error,
  ms: sink.endAt - t0,
  firstFrameMs: sink.firstAt === null ? null : sink.firstAt - t0,
  role: sink.roleAtOpen ?? sink.stream?.role ?? null,
  roleAtEnd: sink.stream?.role ?? null,
  stats: sink.stream ? sink.stream.stats : null,
});

const timeout = (ms, sink) => setTimeout(() => sink.fail(new Error(`timed out after ${ms} ms with ${sink.count} frames`)), ms);

const post = async (url) => {
  const response = await fetch(url, { method: "POST" });
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${await response.text()}`);
  return response.json();
};

// Background runs: `begin` opens and returns; `end` waits for the result.
const running = new Map();

window.bench = {
  clock,

  /** Loads a client's code (so module loading is not part of any timing). */
  async preload(client) {
    if (client === "relay") await relay();
    else if (client !== "raw") await anchor(client);
    return true;
  },

  /**
   * Throughput: opens `client` on `url` (a filled journal, replayed from the start) and consumes
   * it to `done`. With `fillUrl`, the journal is empty at open and filled (live) once the client
   * is listening; the clock then starts at the fill request.
   */
  async throughput({ client, url, options = {}, fillUrl, timeoutMs = 120_000 }) {
    await this.preload(client);
    const sink = makeSink();
    const timer = timeout(timeoutMs, sink);
    let t0 = performance.now();
    await CLIENTS[client](url, sink, options);
    sink.roleAtOpen = sink.stream?.role ?? null;
    if (fillUrl) {
      t0 = performance.now();
      post(fillUrl).catch((e) => sink.fail(e));
    }
    await sink.finished;
    clearTimeout(timer);
    sink.close?.();
    return summary(sink, t0);
  },

  /**
   * Opens an sse-relay stream in the background (a leader or follower tab), recording every
   * delivery time on the shared clock; returns once open, with its role. `watch` polls `role`
   * every millisecond and records each change.
   */
  async begin(name, { client = "relay", url, options = {}, watch = false, marks = null, timeoutMs = 120_000 }) {
    await this.preload(client);
    const roles = [];
    const samples = [];
    const markSet = marks ? new Set(marks) : null;
    const sink = makeSink({
      times: !markSet,
      onFrame: markSet ? (s) => markSet.has(s.count) && memorySample(samples, s.count, s.stream) : undefined,
    });
    const timer = timeout(timeoutMs, sink);
    const t0 = performance.now();
    if (markSet) memorySample(samples, 0);
    await CLIENTS[client](url, sink, options);
    let poll = null;
    if (watch && sink.stream) {
      let last = sink.stream.role;
      roles.push({ role: last, at: clock() });
      poll = setInterval(() => {
        const role = sink.stream.role;
        if (role !== last) roles.push({ role: (last = role), at: clock() });
      }, 1);
    }
    const entry = { sink, t0, roles, samples };
    entry.done = sink.finished.then(() => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
    });
    running.set(name, entry);
    return { role: sink.stream?.role ?? null, openMs: performance.now() - t0 };
  },

  /** The state of a background run so far (times on the shared clock). */
  peek(name, { since = 0 } = {}) {
    const { sink, roles } = running.get(name);
    const frames = [];
    for (let i = 0; sink.times && i < sink.times.length; i += 2) {
      const at = performance.timeOrigin + sink.times[i + 1];
      if (at >= since) frames.push([sink.times[i], at]);
      if (frames.length >= 5) break;
    }
    return { count: sink.count, outOfOrder: sink.outOfOrder, lastId: sink.lastId, role: sink.stream?.role ?? null, roles, frames, error: sink.error };
  },

  /** Waits for a background run to end; returns its summary and its delivery times. */
  async end(name, { withTimes = true } = {}) {
    const entry = running.get(name);
    await entry.done;
    entry.sink.close?.();
    running.delete(name);
    const times = withTimes && entry.sink.times ? Array.from(entry.sink.times, (v, i) => (i % 2 ? v + performance.timeOrigin : v)) : null;
    return { ...summary(entry.sink, entry.t0), times, roles: entry.roles, samples: entry.samples };
  },

  /** Closes a background run without waiting for `done`. */
  stop(name) {
    const entry = running.get(name);
    if (!entry) return false;
    entry.sink.close?.();
    running.delete(name);
    return true;
  },

  /**
   * Added latency at a paced rate: sse-relay (`transport`) and a raw EventSource on the same URL in
   * this page (or two raw EventSources: `transport: null`), both listening before `turnUrl` is
   * posted. Returns per id: the raw handler time, sse-relay's application callback, and (with
   * instrument=1) the time the browser handed the frame to sse-relay.
   */
  async latency({ url, turnUrl, transport, key, timeoutMs = 60_000 }) {
    if (transport) await relay();
    const raw = makeSink({ times: true });
    const other = makeSink({ times: true });
    const timer = timeout(timeoutMs, other);
    await CLIENTS.raw(url, raw);
    if (transport) await CLIENTS.relay(url, other, { transport, key, share: false, from: "now" });
    else await CLIENTS.raw(url, other);
    await post(turnUrl);
    await Promise.all([raw.finished, other.finished]);
    clearTimeout(timer);
    raw.close?.();
    other.close?.();
    chunkArrivals();
    const arrivalPairs = [];
    for (const [id, t] of arrivals) arrivalPairs.push(+id, t);
    return {
      raw: { ...summary(raw, 0), times: raw.times },
      other: { ...summary(other, 0), times: other.times },
      arrivals: arrivalPairs,
    };
  },

  /** JS heap and wasm memory now, after two full garbage collections (needs --expose-gc). */
  memory() {
    const samples = [];
    memorySample(samples, -1);
    return samples[0];
  },

  crossings() {
    return Object.fromEntries([...crossings].sort((a, b) => b[1] - a[1]));
  },
  resetCrossings() {
    crossings.clear();
  },
};

function memorySample(samples, frames, stream) {
  if (typeof gc === "function") {
    gc();
    gc();
  }
  samples.push({
    frames,
    // Frames sse-relay has delivered into its queue that the application has not taken yet.
    queued: stream ? stream.stats.delivered - frames : null,
    jsHeap: performance.memory?.usedJSHeapSize ?? null,
    wasm: wasmMemories.reduce((n, m) => n + m.buffer.byteLength, 0),
  });
}

window.benchReady = true;
