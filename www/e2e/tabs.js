// A page holding several sse-relay streams at once (cross-tab scenarios, issue 5): the tests open
// each stream when they choose, so they decide which tab leads which key.
//
// `await window.openStream(name, url, options)` opens one stream as the docs say (resolves when
// `RelayStream.open` settles) and renders its frames into `window.e2e.streams[name]`:
// `{ frames, openCalledAt, openedAt, openError, done, finished, error, final }` (plain data).
// `window.e2e.snapshot()` reads `{ [name]: { state, role, cursor, stats } }` of every open stream.
// With no streams, the page is also a neutral same-origin page for scripts the tests run.
//
// Config (JSON in ?config=, optional): { streams: [{ name, url, options }] } opened in order at load.
import { RelayStream } from "/pkg/index.js";
import { readConfig, now, plain } from "./common.js";

const STATS = ["delivered", "duplicates", "reconnects", "resets", "gaps", "malformed", "stalls", "connections", "leaderChanges", "rejectedMessages", "filtered"];
const live = new Map(); // name -> RelayStream

function snapshotOf(stream) {
  const stats = {};
  for (const field of STATS) stats[field] = stream.stats[field];
  const cursor = stream.cursor ? { id: stream.cursor.id, epoch: stream.cursor.epoch } : null;
  return { state: stream.state, role: stream.role, epoch: stream.epoch, cursor, stats };
}

const run = {
  kind: "tabs",
  config: readConfig(),
  streams: {},
  frames: [], // unused here: streams keep their own transcripts
  events: [],
  finished: false,
};
run.snapshot = () => Object.fromEntries([...live].map(([name, stream]) => [name, snapshotOf(stream)]));
window.e2e = run;
window.streams = live;

async function openStream(name, url, options = {}) {
  const record = { frames: [], openCalledAt: now(), done: false, finished: false, error: null };
  run.streams[name] = record;
  const list = document.createElement("ol");
  list.dataset.stream = name;
  document.getElementById("streams").append(list);
  let stream;
  try {
    stream = await RelayStream.open(url, options);
  } catch (err) {
    record.openError = plain(err);
    record.finished = true;
    return;
  }
  record.openedAt = now();
  live.set(name, stream);
  (async () => {
    try {
      for await (const frame of stream) {
        record.frames.push({ id: frame.id, event: frame.event, data: frame.data, at: now() });
        const item = document.createElement("li");
        item.textContent = `${frame.id} ${frame.event} ${frame.data.slice(0, 80)}`;
        list.append(item);
      }
      record.done = record.frames.at(-1)?.event === "done";
    } catch (err) {
      record.error = plain(err);
    }
    record.final = snapshotOf(stream);
    record.finished = true;
  })();
}
window.openStream = openStream;

for (const { name, url, options } of run.config?.streams ?? []) await openStream(name, url, options);
