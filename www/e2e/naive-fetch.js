// The naive fetch-based SSE client the negative controls of the fetch scenarios run: what a page
// that hand-rolls "fetch + split on blank lines" does without sse-relay.
//
// - It sends fixed `headers` (a token it never refreshes) and dispatches as soon as the response
//   head arrives, whatever its status or content type.
// - Its parser decodes each chunk on its own (`decoder.decode(chunk)`, no `{ stream: true }`: a
//   character split across chunks turns into U+FFFD), splits the text on "\n\n" and lines on "\n"
//   (CR and CRLF line ends are not understood).
// - When the response ends or fails it reconnects after a fixed `retryMs`, whatever the status
//   (no backoff, no Retry-After, no stop on 204/401), at most `maxConnections` times.
// - No cursor, no dedup, no validation.
//
// Config (JSON in ?config=): { url, headers, events: ["token"], dispatch, retryMs: 250, maxConnections: 20 }
import { readConfig, createRun, render, dispatch, now } from "./common.js";

const config = readConfig();
const run = createRun("naive-fetch", config);
run.connections = 0;
run.responses = [];
run.errors = [];
run.chunks = 0;

function handle(block) {
  const frame = { id: "", event: "message", data: [] };
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    if (colon === 0) continue;
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") frame.data.push(value);
    else if (field === "id") frame.id = value;
    else if (field === "event") frame.event = value;
  }
  if (frame.event === "done") {
    render(run, { id: frame.id, event: "done", data: frame.data.join("\n") });
    run.done = true;
  } else if ((config.events ?? ["message"]).includes(frame.event)) {
    render(run, { id: frame.id, event: frame.event, data: frame.data.join("\n") });
  }
}

async function connect() {
  run.connections += 1;
  try {
    const response = await fetch(config.url, { headers: config.headers ?? {} });
    run.responses.push({ at: now(), status: response.status, contentType: response.headers.get("content-type") });
    if (config.dispatch && !run.dispatched) dispatch(run, config.dispatch);
    const reader = response.body.getReader(); // 204: no body, a TypeError
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      run.chunks += 1;
      buffer += decoder.decode(value);
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        handle(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (err) {
    run.errors.push({ at: now(), message: String(err) });
  }
  if (run.done || run.connections >= (config.maxConnections ?? 20)) {
    run.finished = true;
    return;
  }
  setTimeout(connect, config.retryMs ?? 250);
}

if (config) connect();
