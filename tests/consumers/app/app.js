// A small app that imports sse-relay by its package name, as an application would: it opens a
// stream, dispatches a 30-token turn once `open()` resolved, and renders it. Its entries
// (main.js, main-esbuild.js) are built by Vite, webpack and esbuild in tests/e2e/10-packaging.
import { RelayStream } from "sse-relay";

export async function run() {
  const key = new URLSearchParams(location.search).get("key") ?? "demo";
  const out = document.getElementById("out");
  const frames = [];
  window.app = { frames, done: false, error: null };
  try {
    const stream = await RelayStream.open(`/streams/${key}/events`, { key, events: ["token"] });
    await fetch(`/streams/${key}/turns?tokens=30&rateHz=0`, { method: "POST" });
    for await (const frame of stream) {
      frames.push({ id: frame.id, event: frame.event, data: frame.data });
      out.textContent += `${frame.id} ${frame.event} ${frame.data}\n`;
    }
    window.app.done = true;
  } catch (err) {
    window.app.error = `${err.name}: ${err.message}`;
  }
}
