// Scenarios only the `fetch` transport can pass (issue 7): what a native EventSource cannot do
// (send an Authorization header, a POST body; see the HTTP status) and what the core's own SSE
// parser must cope with (frames split at every byte, CR and CRLF line ends).
//
// Each has a negative control where one is natural: the naive EventSource page (it cannot send a
// header, and sees every failing status as the same `error` event), or the naive fetch page
// (www/e2e/naive-fetch.js: fixed headers, `decoder.decode(chunk)` without `stream`, a
// `split("\n\n")` parser, a fixed retry delay whatever the status).
import assert from "node:assert/strict";
import { compare, failedResponseGaps, matrix, pick, suite, uniqueKey } from "./harness.mjs";

const env = suite();
const FETCH = { transports: ["fetch"] };
const TOKEN = "s3cret-T0ken";
const turn = (key, tokens = 50) => `/streams/${key}/turns?tokens=${tokens}&rateHz=0`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A tab with the naive fetch page open on `config`. */
const naiveFetch = async (ctx, config) => (await ctx.tab()).open("naive-fetch", config);

/** Statuses of a tab's requests to the events endpoint, in order. */
const statuses = (tab) => tab.streams.map((s) => s.status);

/** The page's Resource Timing entries of its finished requests to the events endpoint, in order. */
const eventsTimings = (tab) =>
  tab.page.evaluate(() =>
    performance.getEntriesByType("resource").filter((e) => /\/streams\/[^/]+\/events/.test(e.name)).map((e) => e.toJSON()));

/** Waits until every request of the tab got its response (or `timeout` ms passed). */
async function settled(tab, timeout = 3000) {
  const deadline = Date.now() + timeout;
  while (tab.streams.some((s) => s.status === null) && Date.now() < deadline) await sleep(25);
}

// Data that a parser must get exactly back: multi-byte UTF-8 (2, 3 and 4 bytes, a combining
// sequence), data over several lines (the server writes one `data:` line each), text that looks
// like SSE syntax, an empty payload.
const SAMPLES = [
  "héllo wörld",
  "emoji 😀👍🏽 and CJK 中文字",
  "two\nlines",
  "crlf\r\ninside, then cr\ralone",
  ":colon first; data: looks like a field",
  "",
  "ünïcödé ✓ ∑ ∞ — “quotes”",
  "event: not-a-field\nid: 999",
];

/**
 * Appends SAMPLES as `token` frames: all of them, or with `half` only the first (`half: 1`) or the
 * second (`half: 2`) half (chunk=1 streams are about 1 KB/s: each sample once is enough).
 */
async function appendSamples(ctx, key, label, half = 0) {
  const mid = SAMPLES.length / 2;
  for (const [i, text] of SAMPLES.entries()) {
    if ((half === 1 && i >= mid) || (half === 2 && i < mid)) continue;
    await ctx.api.append(key, "token", `${label} ${i}: ${text}`);
  }
}
const chunked = (query) => /(^|&)chunk=1(&|$)/.test(query);

// ---------------------------------------------------------------------------------------------
// Authorization

matrix(env, "11a Authorization header required by the server (requireAuth), across reconnects", async (ctx) => {
  await ctx.control(async () => {
    const key = uniqueKey("auth-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events?requireAuth=${TOKEN}`, events: ["token"], dispatch: turn(key) });
    await tab.until((run) => run.finished, null, { what: "the naive EventSource to give up" });
    // It never opened, so it never dispatched: the job runs anyway (someone else dispatches it).
    await ctx.api.post(turn(key));
    await ctx.api.waitDone(key);
    await tab.within((run) => run.frames.length > 0, null, 1000);
    const run = await tab.run();
    return {
      failed: run.frames.length === 0,
      detail: `naive EventSource (cannot send a header): statuses ${JSON.stringify(statuses(tab))}, gave up, ${run.frames.length} frames`,
    };
  });

  // dropAfter=20: the header must ride on every reconnect too, beside the Last-Event-ID header.
  const key = uniqueKey("auth-relay");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?requireAuth=${TOKEN}&dropAfter=20`,
    options: { key, events: ["token"], headers: { Authorization: `Bearer ${TOKEN}` } },
    dispatch: turn(key),
  });
  await tab.until((run) => run.finished, null, { timeout: 20_000, what: "the relay stream to finish" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  const stats = await ctx.api.stats(key); // before reading the journal, itself a connection
  const journal = await ctx.api.journal(key);
  const cmp = compare(pick(run.frames), journal);
  assert.ok(cmp.exact, `relay transcript: ${cmp.summary}`);
  const requests = [];
  for (const s of tab.streams) {
    const headers = await s.request.allHeaders();
    const query = new URL(s.url).searchParams.get("lastEventId");
    requests.push({ status: s.status, authorization: headers.authorization ?? null, lastEventIdHeader: headers["last-event-id"] ?? null, lastEventIdQuery: query });
  }
  ctx.figure("requests", requests);
  // 51 entries, 20 per connection: three connections, all authorized.
  assert.ok(requests.length >= 3, `${requests.length} connections`);
  for (const [i, r] of requests.entries()) {
    assert.equal(r.status, 200, `request ${i}: ${JSON.stringify(r)}`);
    assert.equal(r.authorization, `Bearer ${TOKEN}`, `request ${i} carries the header: ${JSON.stringify(r)}`);
    if (i > 0) {
      assert.ok(r.lastEventIdQuery, `reconnect ${i} carries the cursor: ${JSON.stringify(r)}`);
      assert.equal(r.lastEventIdHeader, r.lastEventIdQuery, `reconnect ${i}: Last-Event-ID header = query cursor`);
    }
  }
  assert.equal(stats.connectionsTotal, requests.length, "every request was accepted as a stream");
}, FETCH);

matrix(env, "11b 401 then a refreshed token from onUnauthorized: one extra connection, nothing lost", async (ctx) => {
  await ctx.control(async () => {
    const key = uniqueKey("refresh-naive");
    const tab = await naiveFetch(ctx, {
      url: `/streams/${key}/events?requireAuth=${TOKEN}`,
      headers: { Authorization: "Bearer stale" },
      events: ["token"],
      dispatch: turn(key),
      retryMs: 150,
      maxConnections: 4,
    });
    await tab.until((run) => run.finished, null, { timeout: 5000, what: "the naive fetch page to give up" });
    const run = await tab.run();
    return {
      failed: run.frames.length === 0 && run.responses.every((r) => r.status === 401),
      detail: `naive fetch with a token it never refreshes: ${run.connections} requests, statuses ${JSON.stringify(run.responses.map((r) => r.status))}, ${run.frames.length} frames`,
    };
  });

  const key = uniqueKey("refresh-relay");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?requireAuth=${TOKEN}`,
    options: { key, events: ["token"], headers: { Authorization: "Bearer stale", "X-Trace": "e2e" } },
    onUnauthorized: [{ Authorization: `Bearer ${TOKEN}` }],
    onUnauthorizedAsync: true, // a token refresh is a round trip: the hook answers with a promise
    dispatch: turn(key),
  });
  await tab.until((run) => run.finished, null, { timeout: 15_000, what: "the relay stream to finish" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  const stats = await ctx.api.stats(key); // before reading the journal, itself a connection
  const cmp = compare(pick(run.frames), await ctx.api.journal(key));
  assert.ok(cmp.exact, `relay transcript: ${cmp.summary}`);
  ctx.figure("hookCalls", run.unauthorized.map(({ status }) => ({ status })));
  assert.deepEqual(run.unauthorized.map((c) => c.status), [401], "the hook is called once, with 401");
  assert.deepEqual(statuses(tab), [401, 200], "exactly one extra connection: the refused one, then the stream");
  const [refused, accepted] = await Promise.all(tab.streams.map((s) => s.request.allHeaders()));
  assert.equal(refused.authorization, "Bearer stale");
  assert.equal(accepted.authorization, `Bearer ${TOKEN}`, "the retry carries the fresh header");
  assert.equal(accepted["x-trace"], "e2e", "headers the hook did not replace are kept");
  const gap = (await failedResponseGaps(tab))[0];
  ctx.figure("retryAfterRefreshMs", gap.gapMs);
  assert.equal(stats.connectionsTotal, 1, "one stream connection on the server (refusals are not streams)");
  assert.equal(run.final.stats.duplicates, 0);
}, FETCH);

matrix(env, "11c 401 and no fresh headers: RelayUnauthorizedError, one attempt", async (ctx) => {
  await ctx.control(async () => {
    // What a naive EventSource sees of a 401 and of a 503: the same thing.
    const seen = {};
    for (const [label, query] of [["401", `requireAuth=${TOKEN}`], ["503", "status=503&failCount=5"]]) {
      const key = uniqueKey(`unauth-naive-${label}`);
      const tab = await ctx.naive({ url: `/streams/${key}/events?${query}`, events: ["token"] });
      await tab.until((run) => run.finished, null, { what: `the naive EventSource to give up on ${label}` });
      const run = await tab.run();
      seen[label] = JSON.stringify({ errors: run.errors.map((e) => ({ readyState: e.readyState })), frames: run.frames.length });
    }
    return {
      failed: seen["401"] === seen["503"],
      detail: `naive EventSource cannot tell a refused credential from a server failure: on 401 ${seen["401"]}, on 503 ${seen["503"]}`,
    };
  });

  const cases = [
    { label: "hook returns null", onUnauthorized: [null] },
    { label: "no hook", onUnauthorized: undefined },
  ];
  // Both cases at once (own tabs, own keys): then one window in which a (wrong) retry loop with
  // 50–200 ms backoff would show up.
  const tabs = [];
  for (const c of cases) {
    const key = uniqueKey("unauth-relay");
    const tab = await ctx.relay({
      url: `/streams/${key}/events?requireAuth=${TOKEN}`,
      options: { key, events: ["token"], headers: { Authorization: "Bearer stale" }, backoffBaseMs: 50, backoffMaxMs: 200 },
      onUnauthorized: c.onUnauthorized,
      dispatch: turn(key),
    });
    tabs.push({ c, key, tab });
  }
  for (const { c, tab } of tabs) await tab.until((run) => run.finished, null, { what: `open() to settle (${c.label})` });
  await sleep(600);
  const figures = [];
  for (const { c, key, tab } of tabs) {
    const run = await tab.run();
    figures.push({ case: c.label, openError: run.openError?.name, requests: statuses(tab), hookCalls: run.unauthorized?.length ?? null });
    assert.equal(run.openError?.name, "RelayUnauthorizedError", `${c.label}: open() rejected with ${JSON.stringify(run.openError)}`);
    assert.equal(run.dispatched, false, `${c.label}: no dispatch`);
    assert.deepEqual(statuses(tab), [401], `${c.label}: a single attempt`);
    if (c.onUnauthorized) assert.deepEqual(run.unauthorized.map((u) => u.status), [401], "the hook is called once");
    const stats = await ctx.api.stats(key);
    assert.equal(stats.connections, 0);
  }
  ctx.figure("cases", figures);
}, FETCH);

// ---------------------------------------------------------------------------------------------
// Statuses that stop

matrix(env, "11d 204 No Content stops: RelayStoppedError, no retry loop (in open() and on a reconnect)", async (ctx) => {
  await ctx.control(async () => {
    const key = uniqueKey("stop-naive");
    const tab = await naiveFetch(ctx, { url: `/streams/${key}/events?status=204&failCount=100`, events: ["token"], retryMs: 150, maxConnections: 4 });
    await tab.until((run) => run.finished, null, { timeout: 5000, what: "the naive fetch page to give up" });
    const run = await tab.run();
    return {
      failed: run.connections > 1,
      detail: `naive fetch on 204: ${run.connections} requests (statuses ${JSON.stringify(run.responses.map((r) => r.status))}), errors ${JSON.stringify([...new Set(run.errors.map((e) => e.message))])}`,
    };
  });

  // (1) 204 on the first connection: open() rejects. failCount=1: a retry would be served.
  const key = uniqueKey("stop-relay-open");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?status=204&failCount=1`,
    options: { key, events: ["token"], backoffBaseMs: 50, backoffMaxMs: 200 },
    dispatch: turn(key),
  });
  await tab.until((run) => run.finished, null, { what: "open() to settle" });
  await sleep(600); // a (wrong) retry loop with 50–200 ms backoff would show up here
  const run = await tab.run();
  assert.equal(run.openError?.name, "RelayStoppedError", `open() rejected with ${JSON.stringify(run.openError)}`);
  assert.equal(run.dispatched, false);
  assert.deepEqual(statuses(tab), [204], "a single attempt");
  const stats = await ctx.api.stats(key);
  assert.equal(stats.connectionsTotal, 0, "no stream connection: a retry would have been served");

  // (2) 204 on a reconnect of a live stream: the frames so far stay, the iterator throws once.
  // The key's failCount is used up from node first, so the relay's first connection is served;
  // a reset then re-arms it and ends the stream, and the relay's reconnect meets the 204.
  const key2 = uniqueKey("stop-relay-live");
  const url2 = `/streams/${key2}/events?status=204&failCount=1`;
  const used = await fetch(env.base + url2);
  assert.equal(used.status, 204);
  const tab2 = await ctx.relay({ url: url2, options: { key: key2, events: ["token"], backoffBaseMs: 50, backoffMaxMs: 200 } });
  await tab2.until((r) => r.openedAt !== undefined || r.finished, null, { what: "open() to resolve" });
  for (let i = 0; i < 5; i++) await ctx.api.append(key2, "token", `before ${i}`);
  await tab2.until((r) => r.frames.length >= 5, null, { what: "5 frames" });
  await ctx.api.post(`/streams/${key2}/reset`);
  await tab2.until((r) => r.finished, null, { timeout: 10_000, what: "the iterator to end" });
  await sleep(600);
  const run2 = await tab2.run();
  ctx.figure("live", { requests: statuses(tab2), error: run2.error, state: run2.final?.state, frames: run2.frames.length });
  assert.equal(run2.openError, undefined);
  assert.equal(run2.frames.length, 5, "the frames before the stop stay delivered");
  assert.equal(run2.error?.name, "RelayStoppedError", `the iterator threw ${JSON.stringify(run2.error)}`);
  assert.equal(run2.final.state, "closed");
  assert.deepEqual(statuses(tab2), [200, 204], "no retry after the 204");
  assert.ok(run2.events.some((e) => e.type === "error" && e.arg?.name === "RelayStoppedError"), "an error event tells the page");
}, FETCH);

matrix(env, "11e 200 with contentType=text/plain: RelayContentTypeError, no retry loop", async (ctx) => {
  await ctx.control(async () => {
    const key = uniqueKey("ctype-naive");
    const tab = await naiveFetch(ctx, { url: `/streams/${key}/events?contentType=text/plain&failCount=100`, events: ["token"], retryMs: 150, maxConnections: 4 });
    await tab.until((run) => run.finished, null, { timeout: 5000, what: "the naive fetch page to give up" });
    const run = await tab.run();
    return {
      failed: run.connections > 1 && run.errors.length === 0,
      detail: `naive fetch on a 200 text/plain answer: ${run.connections} requests, content types ${JSON.stringify([...new Set(run.responses.map((r) => r.contentType))])}, no error reported, ${run.frames.length} frames`,
    };
  });

  const key = uniqueKey("ctype-relay");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?contentType=text/plain&failCount=1`,
    options: { key, events: ["token"], backoffBaseMs: 50, backoffMaxMs: 200 },
    dispatch: turn(key),
  });
  await tab.until((run) => run.finished, null, { what: "open() to settle" });
  await sleep(600); // a (wrong) retry loop with 50–200 ms backoff would show up here
  const run = await tab.run();
  ctx.figure("openError", run.openError);
  assert.equal(run.openError?.name, "RelayContentTypeError", `open() rejected with ${JSON.stringify(run.openError)}`);
  assert.equal(run.dispatched, false);
  assert.deepEqual(statuses(tab), [200], "a single attempt");
  const stats = await ctx.api.stats(key);
  assert.equal(stats.connectionsTotal, 0, "no stream connection: a retry would have been served");
}, FETCH);

// ---------------------------------------------------------------------------------------------
// Retry-After

matrix(env, "11f 429 and 503 with Retry-After: 1 s: the retry waits at least 1 s, nothing lost", async (ctx) => {
  await ctx.control(async () => {
    const key = uniqueKey("retry-after-naive");
    const tab = await naiveFetch(ctx, { url: `/streams/${key}/events?status=429&retryAfter=1&failCount=1`, events: ["token"], dispatch: turn(key), retryMs: 250 });
    await tab.until((run) => run.done, null, { timeout: 10_000, what: "the naive fetch page to finish" });
    const gaps = await failedResponseGaps(tab);
    return {
      failed: gaps.length > 0 && gaps[0].gapMs < 1000,
      detail: `naive fetch with a fixed 250 ms retry: retried ${gaps.map((g) => g.gapMs).join(", ")} ms after the 429 (Retry-After: 1)`,
    };
  });

  // Both statuses at once (own tabs, own keys).
  const runs = [];
  for (const status of [429, 503]) {
    const key = uniqueKey(`retry-after-${status}`);
    const tab = await ctx.relay({
      url: `/streams/${key}/events?status=${status}&retryAfter=1&failCount=1`,
      options: { key, events: ["token"] }, // default backoff: a delay in [0, 1000] ms, below Retry-After
      dispatch: turn(key, 100),
    });
    runs.push({ status, key, tab });
  }
  const figures = {};
  for (const { status, key, tab } of runs) {
    await tab.until((run) => run.finished, null, { timeout: 15_000, what: `the relay stream to finish (${status})` });
    const run = await tab.run();
    assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
    assert.deepEqual(statuses(tab), [status, 200]);
    // The page's own Resource Timing (one monotonic clock): from the failed response's head (when
    // Retry-After was known) to the start of the next request. Playwright's timings (wall-clock
    // start + relative offsets, recorded as a second figure) read a few ms shorter.
    const [failed, next] = await eventsTimings(tab);
    const waitMs = Math.round((next.startTime - failed.responseStart) * 10) / 10;
    const [{ gapMs }] = await failedResponseGaps(tab);
    figures[status] = { waitMs, wireGapMs: gapMs };
    assert.ok(waitMs >= 1000, `retried ${waitMs} ms after the ${status} head (Retry-After: 1)`);
    assert.ok(waitMs <= 2500, `retried ${waitMs} ms after the ${status}: not much later than asked`);
    const cmp = compare(pick(run.frames), await ctx.api.journal(key));
    assert.ok(cmp.exact, `relay transcript (${status}): ${cmp.summary}`);
  }
  ctx.figure("retryAfterWaitMs", figures);
}, FETCH);

// ---------------------------------------------------------------------------------------------
// The parser: split chunks and line ends

/**
 * The relay on `query` (with chunk=1 the server writes every byte as its own chunk): SAMPLES in the
 * journal before it attaches (replayed), SAMPLES appended live after `open()` resolved, then
 * `done` (and with `tokens`, a turn of that many tokens before `done`). Returns the record figures.
 */
async function relayParses(ctx, query, { tokens = 0, timeout = 30_000 } = {}) {
  const key = uniqueKey(`parse-${query}`);
  const split = chunked(query);
  await appendSamples(ctx, key, "replayed", split ? 1 : 0);
  const tab = await ctx.relay({ url: `/streams/${key}/events?${query}`, options: { key, events: ["token"] } });
  await tab.until((run) => run.openedAt !== undefined || run.finished, null, { timeout: 10_000, what: "open() to resolve" });
  await appendSamples(ctx, key, "live", split ? 2 : 0);
  if (tokens) await ctx.api.post(turn(key, tokens));
  else await ctx.api.append(key, "done", "fin ✓");
  const started = Date.now();
  await tab.until((run) => run.finished, null, { timeout, what: `the relay stream on ${query} to finish` });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  const cmp = compare(pick(run.frames), await ctx.api.journal(key));
  assert.ok(cmp.exact, `relay transcript on ${query}: ${cmp.summary}`);
  assert.equal(run.final.stats.malformed, 0, `${query}: nothing malformed`);
  assert.equal(run.final.stats.reconnects, 0, `${query}: one connection`);
  assert.deepEqual(statuses(tab), [200]);
  return { query, frames: run.frames.length, seconds: Math.round((Date.now() - started) / 100) / 10 };
}

/** Control: the naive fetch page on `query` with the same data. */
async function naiveParses(ctx, query) {
  const key = uniqueKey(`parse-naive-${query}`);
  await appendSamples(ctx, key, "replayed", chunked(query) ? 1 : 0);
  await appendSamples(ctx, key, "live", chunked(query) ? 2 : 0);
  await ctx.api.append(key, "done", "fin ✓");
  const journal = await ctx.api.journal(key);
  const tab = await naiveFetch(ctx, { url: `/streams/${key}/events?${query}`, events: ["token"], maxConnections: 1 });
  await tab.until((run) => run.finished, null, { timeout: 15_000, what: `the naive fetch page on ${query} to finish` });
  const run = await tab.run();
  const cmp = compare(pick(run.frames), journal);
  const garbled = run.frames.filter((f) => f.data.includes("\uFFFD")).length;
  return {
    failed: !cmp.exact,
    detail: `naive fetch + split("\\n\\n") on ${query} (${run.chunks} reads): ${cmp.summary}${garbled ? `; ${garbled} frame(s) with U+FFFD` : ""}`,
  };
}

matrix(env, "11g chunk=1: every byte its own chunk (inside UTF-8 sequences), delivered exactly", async (ctx) => {
  await ctx.control(() => naiveParses(ctx, "chunk=1"));
  ctx.figure("runs", [await relayParses(ctx, "chunk=1")]);
}, FETCH);

matrix(env, "11h lineEnd=crlf (whole and split by chunk=1), delivered exactly", async (ctx) => {
  await ctx.control(() => naiveParses(ctx, "lineEnd=crlf"));
  ctx.figure("runs", [await relayParses(ctx, "lineEnd=crlf", { tokens: 200 }), await relayParses(ctx, "lineEnd=crlf&chunk=1")]);
}, FETCH);

matrix(env, "11i lineEnd=cr (whole and split by chunk=1), delivered exactly", async (ctx) => {
  await ctx.control(() => naiveParses(ctx, "lineEnd=cr"));
  ctx.figure("runs", [await relayParses(ctx, "lineEnd=cr", { tokens: 200 }), await relayParses(ctx, "lineEnd=cr&chunk=1")]);
}, FETCH);

// ---------------------------------------------------------------------------------------------
// POST

matrix(env, "11j POST with a body to the GET-only events endpoint: 405 is a status like any other", async (ctx) => {
  const key = uniqueKey("post-relay");
  const body = JSON.stringify({ prompt: "hello", key });
  const tab = await ctx.relay({
    url: `/streams/${key}/events`,
    options: { key, events: ["token"], method: "POST", body, headers: { "Content-Type": "application/json" }, readyTimeoutMs: 3000 },
    dispatch: turn(key),
  });
  await tab.until((run) => run.finished, null, { timeout: 10_000, what: "open() to settle" });
  const run = await tab.run();
  await settled(tab);
  const requests = tab.streams.map((s) => ({ method: s.request.method(), body: s.request.postData(), status: s.status }));
  const gaps = (await failedResponseGaps(tab)).map((g) => g.gapMs);
  ctx.figure("openError", run.openError);
  ctx.figure("requests", requests.map(({ method, status }) => `${method} ${status}`));
  ctx.figure("retryGapsMs", gaps);
  ctx.figure("rejectedAfterMs", run.openRejectedAt !== undefined ? Math.round(run.openRejectedAt - run.openCalledAt) : null);
  assert.ok(requests.length >= 1);
  for (const r of requests) {
    assert.equal(r.method, "POST");
    assert.equal(r.body, body, "the body is sent");
    assert.equal(r.status, 405, "the reference server's events endpoint is GET-only");
  }
  // The documented policy for a status that is not 204, 401/403 or 2xx (docs/PROTOCOL.md, README
  // "Two transports"): reconnect with backoff; the first open gives up at readyTimeoutMs.
  assert.equal(run.openError?.name, "RelayTimeoutError", `open() rejected with ${JSON.stringify(run.openError)}`);
  assert.equal(run.dispatched, false);
  const count = tab.streams.length;
  await sleep(1000);
  assert.equal(tab.streams.length, count, "no attempt after open() rejected");
}, { ...FETCH, control: "none: a naive EventSource cannot send a POST at all" });
