// The naive client the negative controls run: what a page does without sse-relay.
//
// - It treats the EventSource `open` event as "ready" and dispatches the job then.
// - `reconnect: "browser"` (default) leaves reconnects to the browser (Last-Event-ID header, no
//   epoch; after a non-200 status the browser gives up for good).
//   `reconnect: "app"` does what many apps do on `error`: close and create a NEW EventSource on the
//   same URL, so without any cursor.
// - No dedup and no validation: it renders every frame it gets, noise included.
//
// Config (JSON in ?config=): { url, events: ["token"], dispatch, reconnect, appReconnectDelayMs }
import { readConfig, createRun, render, dispatch, now } from "./common.js";

const config = readConfig();
const run = createRun("naive", config);
run.connections = 0;
run.opens = [];
run.errors = [];

function connect() {
  run.connections += 1;
  const source = new EventSource(config.url);
  source.addEventListener("open", () => {
    run.opens.push(now());
    if (config.dispatch && !run.dispatched) dispatch(run, config.dispatch);
  });
  for (const type of config.events ?? ["message"]) {
    source.addEventListener(type, (e) => render(run, { id: e.lastEventId, event: type, data: e.data }));
  }
  source.addEventListener("done", (e) => {
    render(run, { id: e.lastEventId, event: "done", data: e.data });
    run.done = true;
    run.finished = true;
    source.close();
  });
  source.addEventListener("error", () => {
    run.errors.push({ at: now(), readyState: source.readyState });
    if (config.reconnect === "app") {
      source.close();
      setTimeout(connect, config.appReconnectDelayMs ?? 100);
    } else if (source.readyState === EventSource.CLOSED) {
      run.finished = true; // the browser gave up (a non-200 status or a wrong content type)
    }
  });
}

if (config) connect();
