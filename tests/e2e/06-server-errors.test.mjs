// Scenario 6: server errors. A native EventSource gives up for good on a non-200 status; the relay
// retries with capped exponential backoff and full jitter and loses nothing. And when `ready` never
// comes, `open()` rejects with RelayTimeoutError, the stream is closed, and the page (which only
// dispatches after `open()` resolves) never dispatches.
//
// The reference server fails the first `failCount` connections of a key. Those happen inside
// `open()`, before the page can subscribe with `on()`, so the backoff of those retries is read off
// the wire (Playwright timestamps each request and response). To see `reconnecting` events, the
// 500 case then resets the journal mid-turn (a reset re-arms `failCount` and ends the connection):
// the relay's reconnects meet two more 500s, in view of `on("reconnecting")`.
import assert from "node:assert/strict";
import { compare, failedResponseGaps, pick, matrix, suite, uniqueKey } from "./harness.mjs";

const env = suite();
const BACKOFF_MAX_MS = 30_000; // the documented default
const BACKOFF_BASE_MS = 500;

/** Gaps on the wire after each failed response, in ms (see `failedResponseGaps`). */
const wireGaps = async (tab) => (await failedResponseGaps(tab)).map((g) => g.gapMs);

/** Whether a delay is exactly base·2^k: what exponential backoff WITHOUT jitter would produce. */
const unjittered = (ms) => Number.isInteger(Math.log2(ms / BACKOFF_BASE_MS));

/** Control: a naive page on a failing stream stops for good, so it gets no token. */
async function naiveStopsOnStatus(ctx, status) {
  const key = uniqueKey(`status-${status}-naive`);
  const tab = await ctx.naive({
    url: `/streams/${key}/events?status=${status}&failCount=2`,
    events: ["token"],
    dispatch: `/streams/${key}/turns?tokens=20&rateHz=0`,
  });
  await tab.until((run) => run.finished, null, { what: "the naive EventSource to give up" });
  // The job runs anyway (dispatched by someone else); the naive page does not see it.
  await ctx.api.post(`/streams/${key}/turns?tokens=20&rateHz=0`);
  await ctx.api.waitDone(key);
  await tab.within((run) => run.frames.length > 0, null, 1500);
  const run = await tab.run();
  const stats = await ctx.api.stats(key);
  return {
    failed: run.frames.length === 0 && !run.done,
    detail: `naive EventSource after HTTP ${status}: ${tab.streams.length} request(s), statuses ${JSON.stringify(tab.streams.map((s) => s.status))}, gave up (readyState CLOSED), ${run.frames.length} of ${stats.length} frames`,
  };
}

matrix(env, "6 server errors: HTTP 500 twice, backoff with jitter, nothing lost", async (ctx, transport) => {
  await ctx.control(() => naiveStopsOnStatus(ctx, 500));

  const key = uniqueKey("status-500-relay");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?status=500&failCount=2`,
    options: { key, events: ["token"] },
    dispatch: `/streams/${key}/turns?tokens=200&rateHz=50`,
  });
  // Phase 1: two 500s inside open(), then the turn flows.
  await tab.until((run) => run.frames.length >= 10, null, { timeout: 15_000, what: "10 frames of the first turn" });
  const opened = await tab.run();
  assert.equal(opened.openError, undefined, `open() rejected: ${JSON.stringify(opened.openError)}`);
  assert.deepEqual(tab.streams.slice(0, 3).map((s) => s.status), [500, 500, 200], "two 500s, then the stream");
  const openGaps = (await wireGaps(tab)).slice(0, 2);
  ctx.figure("openBackoffOnWireMs", openGaps);
  ctx.figure("statsAtOpen", opened.atOpen.stats);
  const epoch1 = opened.atOpen.epoch;

  // Phase 2: reset mid-turn: two more 500s, seen as `reconnecting` events.
  const resetAt = (await tab.run()).frames.length;
  await ctx.api.post(`/streams/${key}/reset`);
  await tab.until((run) => run.events.some((e) => e.type === "reset"), null, { timeout: 15_000, what: "the relay to rejoin after the 500s" });
  await ctx.api.post(`/streams/${key}/turns?tokens=50&rateHz=0`);
  await tab.until((run) => run.finished, null, { timeout: 15_000, what: "the relay stream to finish" });
  const run = await tab.run();
  const journal2 = await ctx.api.journal(key);

  const first = run.frames.filter((f) => f.epoch === epoch1);
  const second = run.frames.filter((f) => f.epoch !== epoch1);
  assert.ok(first.length >= resetAt, "frames of the first epoch before the reset");
  first.forEach((f, i) => assert.equal(f.id, String(i + 1), "first epoch: ids 1, 2, 3… without hole or repeat"));
  const cmp = compare(pick(second), journal2);
  assert.ok(cmp.exact, `relay transcript after the errors: ${cmp.summary}`);

  const reconnecting = run.events.filter((e) => e.type === "reconnecting").map((e) => e.arg);
  ctx.figure("reconnectingEvents", reconnecting);
  const delays = reconnecting.map((r) => r.delayMs).filter((d) => d !== null);
  ctx.figure("backoffDelaysMs", delays);
  for (const r of reconnecting.filter((r) => r.delayMs !== null)) {
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** r.attempt);
    assert.ok(typeof r.delayMs === "number" && r.delayMs >= 0 && r.delayMs <= cap, `delay within [0, min(max, base·2^attempt)]: ${JSON.stringify(r)}`);
  }
  const positive = delays.filter((d) => d > 0);
  assert.ok(positive.length >= 2, `two 500s after the reset: at least two positive backoff delays, got ${JSON.stringify(reconnecting)}`);
  assert.ok(!positive.every(unjittered), `jittered (not all base·2^k): ${positive}`);
  assert.equal(tab.streams.filter((s) => s.status === 500).length, 4, "four 500s in all");
});

matrix(env, "6b server errors: HTTP 404 twice, then recovery, nothing lost", async (ctx, transport) => {
  await ctx.control(() => naiveStopsOnStatus(ctx, 404));

  const key = uniqueKey("status-404-relay");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?status=404&failCount=2`,
    options: { key, events: ["token"] },
    dispatch: `/streams/${key}/turns?tokens=100&rateHz=0`,
  });
  await tab.until((run) => run.finished, null, { timeout: 15_000, what: "the relay stream to finish" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  assert.deepEqual(tab.streams.map((s) => s.status), [404, 404, 200]);
  const gaps = await wireGaps(tab);
  ctx.figure("openBackoffOnWireMs", gaps);
  ctx.figure("statsAtOpen", run.atOpen.stats);
  const cmp = compare(pick(run.frames), await ctx.api.journal(key));
  assert.ok(cmp.exact, `relay transcript: ${cmp.summary}`);
  // The client reacts to the status line; Chromium stamps `responseEnd` when the error body has
  // finished, which a retry after a near-zero jittered delay can precede by a few ms.
  assert.ok(gaps.every((g) => g >= -100 && g <= BACKOFF_MAX_MS + 1000), `gaps ${gaps}`);
});

matrix(env, "6c ready never arrives: RelayTimeoutError, stream closed, no dispatch", async (ctx, transport) => {
  await ctx.control(async () => {
    const key = uniqueKey("timeout-naive");
    const tab = await ctx.naive({
      url: `/streams/${key}/events?joinDelayMs=600000`,
      events: ["token"],
      dispatch: `/streams/${key}/turns?tokens=20&rateHz=0`,
    });
    await tab.until((run) => run.dispatched, null, { what: "the naive page to dispatch" });
    await ctx.api.waitDone(key);
    await tab.within((run) => run.frames.length > 0, null, 1500);
    const run = await tab.run();
    const stats = await ctx.api.stats(key);
    return {
      failed: run.dispatched && stats.length > 0 && run.frames.length === 0,
      detail: `naive page on a server that never joins: dispatched on open, the journal got ${stats.length} entries, the page rendered ${run.frames.length}`,
    };
  });

  const key = uniqueKey("timeout-relay");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?joinDelayMs=600000`,
    options: { key, events: ["token"], readyTimeoutMs: 1000 },
    dispatch: `/streams/${key}/turns?tokens=20&rateHz=0`,
  });
  await tab.until((run) => run.finished, null, { timeout: 10_000, what: "open() to settle" });
  const run = await tab.run();
  assert.ok(run.openError, "open() rejected");
  assert.equal(run.openError.name, "RelayTimeoutError", `rejected with ${JSON.stringify(run.openError)}`);
  const rejectedAfterMs = Math.round(run.openRejectedAt - run.openCalledAt);
  ctx.figure("rejectedAfterMs", rejectedAfterMs);
  assert.ok(rejectedAfterMs >= 950 && rejectedAfterMs <= 3000, `rejected after ${rejectedAfterMs} ms`);
  assert.equal(run.dispatched, false, "the page did not dispatch");
  // Closed: the server sees no open connection, and no new one comes.
  const closed = await ctx.api.waitStats(key, (s) => s.connections === 0, { timeout: 5000, what: "no open connection" });
  await new Promise((r) => setTimeout(r, 1000)); // a window for a (wrong) retry to show up
  const later = await ctx.api.stats(key);
  ctx.figure("connectionsTotal", later.connectionsTotal);
  assert.equal(later.connections, 0, "no connection open");
  assert.equal(later.connectionsTotal, closed.connectionsTotal, "no connection attempt after the rejection");
  assert.equal(later.length, 0, "the journal got no turn");
});
