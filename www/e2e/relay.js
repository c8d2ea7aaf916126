// The sse-relay client under test, used as the docs say: await `RelayStream.open(url, options)`,
// dispatch the job the moment it resolves, then render every frame of `for await`.
//
// Config (JSON in ?config=): { url, options, dispatch, keepTranscript, onUnauthorized, onUnauthorizedAsync,
// listenEarly, batches }; `batches` reads with `stream.batches()` instead of frame by frame.
// Everything the tests read is on `window.e2e` (see common.js); `window.e2e.snapshot()` reads the
// stream's state, cursor and stats at any time.
import { RelayStream } from "/pkg/index.js";
import { readConfig, createRun, render, dispatch, now, plain } from "./common.js";

const EVENTS = ["ready", "state", "reset", "reconnecting", "gap", "malformed", "filtered", "error"];
const STATS = ["delivered", "duplicates", "reconnects", "resets", "gaps", "malformed", "stalls", "connections", "leaderChanges", "rejectedMessages", "filtered", "guarantee"];

// Event arguments may be plain objects or class instances with getters: copy the documented fields.
const FIELDS = {
  ready: ["tail", "epoch"],
  reset: ["previousEpoch", "epoch"],
  reconnecting: ["attempt", "delayMs", "cause"],
  gap: ["after", "next"],
  malformed: ["kind", "message", "event", "id", "data"],
  filtered: ["id", "event"],
};

function copyArg(type, arg) {
  if (arg instanceof Error || arg === null || typeof arg !== "object") return plain(arg);
  const copy = {};
  for (const field of FIELDS[type] ?? Object.keys(arg)) copy[field] = arg[field];
  return plain(copy);
}

function snapshot(stream) {
  const stats = {};
  for (const field of STATS) stats[field] = stream.stats[field];
  const cursor = stream.cursor ? { id: stream.cursor.id, epoch: stream.cursor.epoch } : null;
  return { state: stream.state, role: stream.role, epoch: stream.epoch, cursor, stats };
}

async function main(config) {
  const run = createRun("relay", config);
  run.snapshot = () => null;
  run.openCalledAt = now();
  let stream;
  const options = { ...(config.options ?? {}) };
  // `onUnauthorized` cannot ride in JSON: `config.onUnauthorized` scripts it, a list of answers
  // (headers or null) given in turn (the last one repeats); each call is logged on `run.unauthorized`.
  if (config.onUnauthorized) {
    run.unauthorized = [];
    options.onUnauthorized = (status) => {
      const answers = config.onUnauthorized;
      const answer = answers[Math.min(run.unauthorized.length, answers.length - 1)];
      run.unauthorized.push({ status, at: now(), answer });
      return config.onUnauthorizedAsync ? new Promise((r) => setTimeout(() => r(answer), 10)) : answer;
    };
  }
  // `listenEarly`: subscribe through the `on` option of open() (listeners registered before the
  // first connection) instead of `stream.on()` after open() resolved, so the record also holds what
  // happened while open() was pending.
  const record = (type) => (arg) => run.events.push({ type, at: now(), arg: copyArg(type, arg) });
  if (config.listenEarly) options.on = Object.fromEntries(EVENTS.map((type) => [type, record(type)]));
  try {
    stream = await RelayStream.open(config.url, options);
  } catch (err) {
    run.openError = plain(err);
    run.openRejectedAt = now();
    run.finished = true;
    return;
  }
  run.openedAt = now();
  window.stream = stream;
  run.snapshot = () => snapshot(stream);
  run.atOpen = snapshot(stream);
  if (!config.listenEarly) {
    for (const type of EVENTS) stream.on(type, record(type));
  }
  if (config.dispatch) await dispatch(run, config.dispatch);
  try {
    if (config.batches) {
      run.batchSizes = [];
      for await (const batch of stream.batches()) {
        // The cursor moved past the whole batch when it was handed over.
        const cursor = stream.cursor;
        run.batchSizes.push(batch.length);
        if (cursor?.id !== batch.at(-1)?.id) run.cursorBehind = { cursor: cursor?.id ?? null, last: batch.at(-1)?.id ?? null };
        for (const frame of batch) {
          render(run, { id: frame.id, event: frame.event, data: frame.data, epoch: cursor?.epoch ?? null, at: now() });
        }
      }
    } else {
      for await (const frame of stream) {
        // `cursor` is the last frame handed to the page, so its epoch is this frame's epoch.
        render(run, { id: frame.id, event: frame.event, data: frame.data, epoch: stream.cursor?.epoch ?? null, at: now() });
      }
    }
    run.done = run.frames.at(-1)?.event === "done";
  } catch (err) {
    run.error = plain(err);
  }
  run.final = snapshot(stream);
  run.finished = true;
}

const config = readConfig();
if (config) main(config);
