// Aggregates a Chromium CPU profile (CDP `Profiler.stop`) into where the main thread's time went:
// self time by category (wasm, the wasm-bindgen JS glue, the application callback, native code
// and browser internals, GC, idle) and the top functions, in microseconds per delivered frame.

function categoryOf(frame) {
  const { functionName: name, url } = frame;
  if (name === "(idle)") return "idle";
  if (name === "(garbage collector)") return "garbage collector";
  if (name === "(program)") return "browser (native: network, SSE parsing, event dispatch, scheduling)";
  if (name === "(root)") return "root";
  if (url.startsWith("wasm://") || url.endsWith(".wasm")) return "sse-relay wasm";
  if (/\/pkg(-prof)?\/sse_relay\.js$/.test(url)) return "sse-relay JS glue (wasm-bindgen)";
  if (/\/pkg(-prof)?\/index\.js$/.test(url)) return "sse-relay JS glue (wasm-bindgen)";
  if (/\/pkg(-prof)?\/snippets\//.test(url)) return "sse-relay JS (src/bindings.js, src/web/*.js)";
  if (url.includes("/vendor/")) return "anchor library JS";
  if (url.endsWith("/bench.js")) return "application callback (bench.js: JSON.parse, count)";
  if (!url) return null; // a native function (a builtin or a Web API): charged to its caller below
  return "other JS";
}

/**
 * `cpuPerFrameUs`: the main thread's CPU time per frame over the same run (CDP ThreadTime). The
 * sampler ticks on wall-clock time, so when other processes hold the cores its absolute figures
 * grow; the shares do not, and share × CPU time is the estimate reported as `cpuUs`.
 */
export function aggregateProfile(profile, frames, cpuPerFrameUs = null) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // A native frame (no url) is charged to the nearest caller that has a category, with its own
  // name kept for the function table ("TextDecoder.decode ← glue").
  const categoryCache = new Map();
  function category(id) {
    if (categoryCache.has(id)) return categoryCache.get(id);
    const node = byId.get(id);
    let c = categoryOf(node.callFrame);
    if (c === null) {
      const p = parent.get(id);
      const pc = p === undefined ? "other" : category(p);
      c = pc.startsWith("native") ? pc : pc === "root" ? "native, called by the browser (event dispatch, callbacks)" : `native calls from: ${pc}`;
    }
    categoryCache.set(id, c);
    return c;
  }

  const self = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = timeDeltas[i + 1] ?? timeDeltas[i] ?? 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  const totals = new Map();
  const functions = new Map();
  let busy = 0;
  for (const [id, us] of self) {
    const c = category(id);
    totals.set(c, (totals.get(c) ?? 0) + us);
    if (c !== "idle" && c !== "root") busy += us;
    const f = byId.get(id).callFrame;
    const name = `${f.functionName || "(anonymous)"}${f.url ? "" : " [native]"}`;
    const key = `${name}\u0000${c}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  const categories = [...totals]
    .filter(([name]) => name !== "idle" && name !== "root")
    .map(([name, us]) => ({ name, ms: us / 1000, perFrameUs: us / frames, share: us / busy, cpuUs: cpuPerFrameUs === null ? null : (cpuPerFrameUs * us) / busy }))
    .sort((a, b) => b.ms - a.ms);
  const top = [...functions]
    .map(([key, us]) => {
      const [name, c] = key.split("\u0000");
      return { name, category: c, perFrameUs: us / frames, share: us / busy, cpuUs: cpuPerFrameUs === null ? null : (cpuPerFrameUs * us) / busy };
    })
    .filter((f) => f.category !== "idle" && f.category !== "root")
    .sort((a, b) => b.perFrameUs - a.perFrameUs)
    .slice(0, 20);
  return { busyMs: busy / 1000, idleMs: (totals.get("idle") ?? 0) / 1000, busyPerFrameUs: busy / frames, cpuPerFrameUs, categories, top };
}
