// A consumer of the package's types: every documented option, property, event and error, as an
// application writes them. `tsc --strict --noEmit` compiles it with the oldest TypeScript the
// package supports and the newest (scripts/package-checks.mjs). It is never run.
import {
  RelayStream, ready, RelayError, RelayTimeoutError, RelayOptionsError, RelayAbortError,
  RelayConnectError, RelayUnauthorizedError, RelayStoppedError, RelayContentTypeError, RelayGoneError,
  RelayLoadError,
} from "sse-relay";
import type {
  Frame, FrameIterator, BatchIterator, Cursor, RelayState, RelayRole, RelayStats, RelayOptions, RelayEventMap,
  RelayErrorName, ReadyOptions, RelayGuarantee,
} from "sse-relay";

async function everything(dispatch: () => Promise<void>): Promise<number> {
  const where: ReadyOptions = { wasm: new URL("/assets/sse_relay_bg.wasm", location.href) };
  await ready(where);
  await ready();

  const controller = new AbortController();
  const options: RelayOptions = {
    serverProfile: "relay",
    key: "chat",
    events: ["token", "status"],
    from: "now",
    readyEvent: "ready",
    doneEvent: "done",
    pingEvent: "ping",
    cursorParam: "lastEventId",
    epochParam: "epoch",
    cursorOrder: "auto",
    contiguousIds: false,
    dedupWindow: 4096,
    readyTimeoutMs: 10_000,
    heartbeatTimeoutMs: 45_000,
    backoffBaseMs: 500,
    backoffMaxMs: 30_000,
    persistCursor: "session",
    withCredentials: false,
    shareAcrossTabs: true,
    signal: controller.signal,
    on: { reconnecting: (r) => console.log(r.attempt, r.delayMs.toFixed(0), r.cause) },
    transport: "fetch",
    headers: { Authorization: "Bearer t" },
    method: "POST",
    body: "{}",
    credentials: "include",
    onUnauthorized: async (status: number) => (status === 401 ? { Authorization: "Bearer fresh" } : null),
  };

  const bare = await RelayStream.open("/streams/chat/events");
  bare.close();
  const stream = await RelayStream.open(new URL("/streams/chat/events", location.href), options);
  await dispatch();

  const state: RelayState = stream.state;
  const role: RelayRole = stream.role;
  const cursor: Cursor | null = stream.cursor;
  const epoch: string | null = stream.epoch;
  const stats: RelayStats = stream.stats;
  const counted: number =
    stats.delivered + stats.duplicates + stats.reconnects + stats.resets + stats.gaps +
    stats.malformed + stats.stalls + stats.connections + stats.leaderChanges +
    stats.rejectedMessages + stats.filtered;
  const guarantee: RelayGuarantee = stats.guarantee;
  console.log(state, role, cursor?.id, cursor?.epoch, epoch?.length, counted, guarantee);
  const plain = await RelayStream.open("/sse", { serverProfile: "plain", events: ["message"] });
  plain.close();
  const durable = await RelayStream.open("/v1/stream/chat", { serverProfile: "durable-streams" });
  durable.close();

  const onReady = (r: RelayEventMap["ready"]) => console.log(r.tail ?? "empty", r.epoch);
  stream.on("ready", onReady);
  stream.off("ready", onReady);
  stream.on("state", (s: RelayState) => console.log(s));
  stream.on("reset", (r) => console.log(r.previousEpoch, r.epoch));
  stream.on("gap", (g) => console.log(g.after, g.next));
  stream.on("malformed", (m) => console.log(m.kind, m.message, m.event, m.id ?? "-", m.data));
  stream.on("filtered", (f) => console.log(f.id, f.event));
  stream.on("error", (e: RelayError) => console.log(e.name, e.message));

  let n = 0;
  for await (const frame of stream) {
    const f: Frame = frame;
    n += f.id.length + f.event.length + f.data.length;
  }
  const iterator: FrameIterator = stream[Symbol.asyncIterator]();
  const first: IteratorResult<Frame, undefined> = await iterator.next();
  if (!first.done) console.log(first.value.data);
  await iterator.return();
  for await (const batch of stream.batches()) {
    const frames: Frame[] = batch;
    n += frames.length;
  }
  const batches: BatchIterator = stream.batches();
  const step: IteratorResult<Frame[], undefined> = await batches.next();
  if (!step.done) console.log(step.value.length);
  await batches.return();

  stream.free();
  stream.close();
  return n;
}

function explain(error: unknown): string {
  if (error instanceof RelayOptionsError) return `option ${error.option}: ${error.message}`;
  if (error instanceof RelayTimeoutError) return "the server never joined: do not dispatch";
  if (error instanceof RelayAbortError) return "aborted";
  if (error instanceof RelayUnauthorizedError) return "sign in again";
  if (error instanceof RelayStoppedError) return "the server said stop";
  if (error instanceof RelayContentTypeError) return "not an event stream";
  if (error instanceof RelayGoneError) return "the server no longer has the data";
  if (error instanceof RelayConnectError) return "bad URL";
  if (error instanceof RelayLoadError) return "the module did not load";
  if (error instanceof RelayError) {
    const name: RelayErrorName = error.name;
    return name;
  }
  return String(error);
}

everything(async () => {}).then(console.log, (e) => console.log(explain(e)));
