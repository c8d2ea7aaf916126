// Issue 17: a Durable Streams server no one here wrote: the protocol's reference server
// (`@durable-streams/server`, npm), started in the test process on a free loopback port, on
// another origin than the pages. The package runs with `serverProfile: "durable-streams"`. The
// truth is the stream's contents, read by a catch-up GET (`?offset=-1`, a JSON array).
//
// 61.1 reconnects: the server closes every SSE response every 250 ms (as the protocol tells
//      servers to, about every minute) while a producer appends 300 messages in small batches,
//      then closes the stream: every message once, in order, then `done`.
// 61.2 tab sharing: 3 tabs, one SSE connection; the leader tab closes mid-stream.
// 61.3 late attach (the stream is closed before the page opens) and a live-only start.
// 61.4 retention: a 410 rejects `open()` with `RelayGoneError` (fetch: an EventSource cannot see
//      a status).
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { DurableStreamTestServer } from "@durable-streams/server";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, ROOT, matrix, uniqueKey } from "./harness.mjs";
import { startStaticServer } from "./servers/static.mjs";

const env = { records: [] };
before(async () => {
  env.pages = await startStaticServer({ root: ROOT });
  env.base = env.pages.url;
  env.ds = new DurableStreamTestServer({ port: 0, host: "127.0.0.1", longPollTimeout: 300 });
  env.dsUrl = await env.ds.start();
  env.browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
});
after(async () => {
  await env.browser?.close();
  await env.ds?.stop();
  await env.pages?.close();
});

const DURABLE = { serverProfile: "durable-streams" };
const JSON_TYPE = { "content-type": "application/json" };
const streamPath = (key) => `/streams/${key}/events`;
const streamUrl = (key) => `${env.dsUrl}${streamPath(key)}`;

async function create(key) {
  const response = await fetch(streamUrl(key), { method: "PUT", headers: JSON_TYPE });
  assert.equal(response.status, 201, "stream created");
}

async function append(key, messages, { close = false } = {}) {
  const headers = close ? { ...JSON_TYPE, "Stream-Closed": "true" } : JSON_TYPE;
  const response = await fetch(streamUrl(key), { method: "POST", headers, body: JSON.stringify(messages) });
  assert.ok(response.status === 200 || response.status === 204, `append: ${response.status}`);
}

/** Appends `count` messages `{ n }` in batches of 1 to 3, a few ms apart, then closes the stream. */
async function produce(key, count, { first = 0, close = true } = {}) {
  let n = first;
  while (n < first + count) {
    const batch = [];
    for (let i = 0; i < 1 + (n % 3) && n < first + count; i++) batch.push({ n: n++ });
    await append(key, batch);
    await new Promise((r) => setTimeout(r, 4));
  }
  if (close) await append(key, [{ n: "last" }], { close: true });
}

/** The stream's messages, as their JSON text. */
async function contents(key) {
  const response = await fetch(`${streamUrl(key)}?offset=-1`);
  return (await response.json()).map((m) => JSON.stringify(m));
}

/** Ends every open SSE response of the server every `ms`, as its periodic close does. */
function closeResponsesEvery(ms) {
  const timer = setInterval(() => {
    for (const res of [...env.ds.activeSSEResponses]) res.end();
  }, ms);
  return () => clearInterval(timer);
}

/** The transcript of a relay page: messages then `done`, checked against the stream. */
async function checkTranscript(tab, key, label) {
  const run = await tab.run();
  assert.equal(run.openError, undefined, `${label}: open() rejected: ${JSON.stringify(run.openError)}`);
  const want = await contents(key);
  const frames = run.frames;
  assert.equal(frames.at(-1)?.event, "done", `${label}: ends with done`);
  const got = frames.slice(0, -1).map((f) => f.data);
  const ids = new Set(frames.map((f) => f.id));
  assert.equal(ids.size, frames.length, `${label}: every id once`);
  assert.ok(frames.slice(0, -1).every((f) => f.event === "data"), `${label}: messages are data frames`);
  assert.deepEqual(got, want, `${label}: ${got.length} messages for ${want.length} in the stream`);
  assert.equal(run.final.stats.guarantee, "exactly-once");
  return run;
}

matrix(env, "61.1 Durable Streams server: every message once across its periodic closes", async (ctx, transport) => {
  await ctx.control(async () => {
    const key = uniqueKey("ds-naive");
    await create(key);
    // A page that uses EventSource on the stream URL as is: every reconnect asks offset -1 again.
    const tab = await ctx.naive({ url: `${streamUrl(key)}?offset=-1&live=sse`, events: ["data"] });
    const stop = closeResponsesEvery(250);
    try {
      await produce(key, 150);
    } finally {
      stop();
    }
    const want = await contents(key);
    const count = (frames) => frames.reduce((n, f) => n + JSON.parse(f.data).length, 0);
    // The browser reconnects on its own after about 3 s, to the same URL.
    await tab.within((run, arg) => run.frames.reduce((n, f) => n + JSON.parse(f.data).length, 0) > arg, want.length, 10_000);
    const rendered = { length: count((await tab.run()).frames) };
    return {
      failed: rendered.length > want.length,
      detail: `the browser's reconnect to the same URL: ${rendered.length} messages rendered for ${want.length} (the stream again from its start after each close)`,
    };
  });

  const key = uniqueKey("ds-relay");
  await create(key);
  await append(key, [{ n: "before" }]);
  const tab = await ctx.relay({ url: streamUrl(key), options: { key, ...DURABLE, transport } });
  await tab.until((run) => run.openedAt !== undefined || run.openError, null, { what: "open() to settle" });
  // Producing takes 0.7–1 s: a close every 100 ms makes several closes certain on a quiet machine
  // (every 250 ms gave only 2 there).
  const stop = closeResponsesEvery(100);
  try {
    await produce(key, 300);
    await tab.until((run) => run.finished, null, { timeout: 60_000, what: "the relay stream to finish" });
  } finally {
    stop();
  }
  const run = await checkTranscript(tab, key, "relay");
  ctx.figure("messages", run.frames.length - 1);
  ctx.figure("connections", tab.streams.length);
  ctx.figure("reconnects", run.final.stats.reconnects);
  assert.ok(run.final.stats.reconnects >= 3, `${run.final.stats.reconnects} reconnects`);
  assert.equal(run.final.epoch, "durable");
  // Each reconnect resumed from an offset the server gave, never from the start again.
  const offsets = tab.streams.map((s) => new URL(s.url).searchParams.get("offset"));
  assert.equal(offsets.filter((o) => o === "-1").length, 1, `offsets asked: ${offsets.join(" ")}`);
});

matrix(env, "61.2 Durable Streams server: 3 tabs share one connection; the leader leaves mid-stream", async (ctx, transport) => {
  await ctx.control(async () => {
    const key = uniqueKey("ds-naive-tabs");
    await create(key);
    const group = await ctx.group();
    for (let i = 0; i < 3; i++) await group.naive({ url: `${streamUrl(key)}?offset=-1&live=sse`, events: ["data"] });
    const connections = group.tabs.reduce((n, t) => n + t.streams.length, 0);
    return { failed: connections > 1, detail: `3 naive tabs: ${connections} connections` };
  });

  const key = uniqueKey("ds-tabs");
  await create(key);
  const group = await ctx.group();
  const tabs = [];
  for (let i = 0; i < 3; i++) {
    const tab = await group.relay({ url: streamUrl(key), options: { key, ...DURABLE, transport } });
    await tab.until((run) => run.openedAt !== undefined || run.openError, null, { what: `tab ${i} to open` });
    tabs.push(tab);
    (ctx.relayTabs ??= []).push(tab); // so the harness checks the transport they used
  }
  const roles = await Promise.all(tabs.map(async (t) => (await t.run()).now?.role));
  assert.deepEqual(roles, ["leader", "follower", "follower"]);
  const producing = produce(key, 400);
  await tabs[1].until((run) => run.frames.length >= 100, null, { timeout: 20_000, what: "100 frames in a follower" });
  const whileStreaming = tabs.reduce((n, t) => n + t.streams.length, 0);
  ctx.figure("connectionsWhileStreaming", whileStreaming);
  assert.equal(whileStreaming, 1, "one connection for 3 tabs");
  await tabs[0].page.close();
  await producing;
  for (const [i, tab] of tabs.slice(1).entries()) {
    await tab.until((run) => run.finished, null, { timeout: 30_000, what: `follower ${i + 1} to finish` });
    await checkTranscript(tab, key, `tab ${i + 1}`);
  }
  const total = tabs.reduce((n, t) => n + t.streams.length, 0);
  ctx.figure("connectionsTotal", total);
  assert.ok(total >= 2 && total <= 3, `${total} connections in all`);
});

matrix(env, "61.3 Durable Streams server: late attach to a closed stream, and a live-only start", async (ctx, transport) => {
  await ctx.control(async () => {
    const key = uniqueKey("ds-late-naive");
    await create(key);
    await produce(key, 50);
    const want = await contents(key);
    // The closed stream's response ends; the browser reconnects to the same URL, offset -1 again.
    const tab = await ctx.naive({ url: `${streamUrl(key)}?offset=-1&live=sse`, events: ["data"] });
    await tab.within((run, arg) => run.frames.reduce((n, f) => n + JSON.parse(f.data).length, 0) > arg, want.length, 10_000);
    const rendered = (await tab.run()).frames.reduce((n, f) => n + JSON.parse(f.data).length, 0);
    return { failed: rendered > want.length, detail: `late attach with EventSource: ${rendered} messages rendered for ${want.length}` };
  });
  const late = uniqueKey("ds-late");
  await create(late);
  await produce(late, 50);
  const tab = await ctx.relay({ url: streamUrl(late), options: { key: late, ...DURABLE, transport } });
  await tab.until((run) => run.finished, null, { timeout: 30_000, what: "the late page to finish" });
  await checkTranscript(tab, late, "late attach");

  const key = uniqueKey("ds-now");
  await create(key);
  await produce(key, 20, { close: false });
  const live = await ctx.relay({ url: streamUrl(key), options: { key, ...DURABLE, from: "now", transport } });
  await live.until((run) => run.openedAt !== undefined || run.openError, null, { what: "open() to settle" });
  await produce(key, 30, { first: 20 });
  await live.until((run) => run.finished, null, { timeout: 30_000, what: "the live-only page to finish" });
  const run = await live.run();
  const want = (await contents(key)).slice(20);
  assert.deepEqual(run.frames.slice(0, -1).map((f) => f.data), want, "only what was appended after open()");
  assert.equal(run.frames.at(-1)?.event, "done");
  assert.equal(new URL(live.streams[0].url).searchParams.get("offset"), "now");
});

matrix(env, "61.4 Durable Streams server: 410 Gone rejects open() with RelayGoneError", async (ctx) => {
  const key = uniqueKey("ds-gone");
  await create(key);
  await append(key, [{ n: 1 }]);
  env.ds.injectFault(streamPath(key), { status: 410, count: 5, method: "GET" });
  const tab = await ctx.relay({ url: streamUrl(key), options: { key, ...DURABLE } });
  await tab.until((run) => run.finished, null, { timeout: 15_000, what: "open() to settle" });
  const run = await tab.run();
  assert.equal(run.openError?.name, "RelayGoneError", JSON.stringify(run.openError));
  assert.equal(tab.streams.length, 1, "no retry after a 410");
}, { transports: ["fetch"], control: "none: the status is what the package reports; an EventSource cannot see it" });

// The reader's side of the Durable Streams client conformance cases (their test-cases/consumer/
// read-sse.yaml) that apply to a page: existing data then new data on a text stream, an empty
// stream reaching up-to-date, Unicode line separators kept inside a message, one leading space
// stripped by the event-stream format. Offsets chosen by the caller and base64 (binary) streams
// do not apply: the package keeps its own cursor, and hands a binary stream's base64 text as is.
matrix(env, "61.5 Durable Streams server: the reader cases of its client conformance suite (text stream)", async (ctx, transport) => {
  const empty = uniqueKey("ds-empty");
  await fetch(streamUrl(empty), { method: "PUT", headers: { "content-type": "text/plain" } });
  const idle = await ctx.relay({ url: streamUrl(empty), options: { key: empty, ...DURABLE, transport } });
  await idle.until((run) => run.openedAt !== undefined || run.openError, null, { what: "open() on an empty stream" });
  const atOpen = (await idle.run()).atOpen;
  assert.equal(atOpen?.state, "live", "an empty stream is up to date at once");
  assert.equal(atOpen?.stats.delivered, 0);

  const key = uniqueKey("ds-text");
  const text = { "content-type": "text/plain" };
  await fetch(streamUrl(key), { method: "PUT", headers: text });
  const appendText = (body, headers = text) => fetch(streamUrl(key), { method: "POST", headers, body });
  const existing = ["existing1", "existing2", "  two leading spaces", "a\u0085b\u2028c\u2029d", "hello\u2028world"];
  for (const body of existing) await appendText(body);
  const tab = await ctx.relay({ url: streamUrl(key), options: { key, ...DURABLE, transport } });
  await tab.until((run) => run.openedAt !== undefined || run.openError, null, { what: "open() to settle" });
  await appendText("new-data");
  await appendText("last", { ...text, "Stream-Closed": "true" });
  await tab.until((run) => run.finished, null, { timeout: 20_000, what: "the text stream to finish" });
  const run = await tab.run();
  const want = ["existing1", "existing2", " two leading spaces", "a\u0085b\u2028c\u2029d", "hello\u2028world", "new-data", "last"];
  assert.deepEqual(run.frames.slice(0, -1).map((f) => f.data), want);
  assert.equal(run.frames.at(-1)?.event, "done");
}, { control: "none: these are the protocol's own reader cases, not a failure a naive client shows" });
