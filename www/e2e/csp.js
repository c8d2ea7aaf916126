// The plain page again, under a strict Content-Security-Policy (csp.html: `script-src 'self'
// 'wasm-unsafe-eval'`, no inline script, no eval; csp-strict.html: without 'wasm-unsafe-eval').
// Everything the test reads is on `window.csp`.
import { RelayStream, RelayLoadError } from "/pkg/index.js";

const key = new URLSearchParams(location.search).get("key") ?? "demo";
const out = document.getElementById("out");
window.csp = { frames: [], error: null, done: false };
try {
  const stream = await RelayStream.open(`/streams/${key}/events`, { key, events: ["token"] });
  await fetch(`/streams/${key}/turns?tokens=20&rateHz=0`, { method: "POST" });
  for await (const frame of stream) {
    window.csp.frames.push({ id: frame.id, event: frame.event, data: frame.data });
    out.textContent += `${frame.id} ${frame.event}\n`;
  }
  // free() (and `using`) closes without freeing: the object stays readable.
  stream.free();
  window.csp.afterFree = { state: stream.state, delivered: stream.stats.delivered, cursor: stream.cursor?.id ?? null };
  window.csp.done = true;
} catch (err) {
  window.csp.error = { name: err.name, message: err.message, isLoadError: err instanceof RelayLoadError };
}
