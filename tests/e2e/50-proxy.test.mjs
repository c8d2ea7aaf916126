// Fault scenarios through the fault proxy (issue 13): the pages load from `sse-relay-proxy`, which
// forwards everything to the reference server and breaks the event streams: per connection with
// `proxy.` query knobs, or mid-turn through its control endpoint. The proxy is started with the
// user-facing helper `tools/js/sse-relay-tools.mjs` (so these tests are also its test). The truth
// is the reference server's journal, read directly (not through the proxy).
//
// Each scenario asserts the relay's transcript is exactly the journal in every tab, and runs a
// naive EventSource page through the same faults as its negative control.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { compare, failedResponseGaps, matrix, pick, ROOT, scenario, suite, uniqueKey, waitFor } from "./harness.mjs";
import { startBinary, startProxy, withFaults } from "../../tools/js/sse-relay-tools.mjs";

const PROXY_BIN = join(ROOT, "target/debug/sse-relay-proxy");

const env = suite();
before(async () => {
  // node:test runs a file's `before` hooks concurrently: wait for the suite's server.
  await waitFor(() => env.server, { timeout: 30_000, what: "the reference server" });
  env.proxy = await startProxy({ bin: PROXY_BIN, upstream: env.server.url, lifetimeSecs: 300 });
  // Every page, its module, its dispatch and its streams go through the proxy.
  env.base = env.proxy.url;
});
after(async () => {
  await env.proxy?.stop();
});

const events = (key, knobs, query = "") => withFaults(`/streams/${key}/events${query}`, knobs);

/** Waits until the tab's `open()` settled; fails if it rejected. */
async function openedTab(tab) {
  await tab.until((run) => run.openedAt !== undefined || run.openError !== undefined, null, { timeout: 20_000, what: "open() to settle" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
}

/** `n` relay tabs of one browser (one context), each opened once the previous one's open() resolved. */
async function relayTabs(ctx, n, config) {
  const group = await ctx.group();
  const tabs = [];
  for (let i = 0; i < n; i++) {
    const tab = await group.relay(config);
    await openedTab(tab);
    tabs.push(tab);
  }
  return tabs;
}

/** Waits for the turn and every tab to finish; asserts each transcript is exactly the journal. */
async function exactInEveryTab(ctx, key, tabs) {
  await ctx.api.waitDone(key, { timeout: 30_000 });
  const journal = await ctx.api.journal(key);
  const runs = [];
  for (const [i, tab] of tabs.entries()) {
    await tab.until((run) => run.finished, null, { timeout: 30_000, what: `tab ${i} to finish` });
    const run = await tab.run();
    assert.equal(run.openError, undefined, `tab ${i}: open() rejected: ${JSON.stringify(run.openError)}`);
    const cmp = compare(pick(run.frames), journal);
    assert.ok(cmp.exact, `tab ${i}: ${cmp.summary}`);
    runs.push(run);
  }
  ctx.figure("frames", journal.length);
  ctx.figure("tabs", tabs.length);
  return runs;
}

/** Requests the proxy served for `key`'s events, from its log. */
async function proxied(key) {
  const { log } = await env.proxy.stats();
  return log.filter((entry) => entry.target.startsWith(`/streams/${key}/events`));
}

/** A finished 100-token turn on a fresh key, and its journal. */
async function finishedTurn(ctx, label) {
  const key = uniqueKey(label);
  await ctx.api.post(`/streams/${key}/turns?tokens=100&rateHz=0`);
  await ctx.api.waitDone(key);
  return { key, journal: await ctx.api.journal(key) };
}

scenario(env, "50.1 proxy: cut every 25 frames and Last-Event-ID dropped, 3 tabs of one browser", async (ctx) => {
  await ctx.control(async () => {
    const { key, journal } = await finishedTurn(ctx, "px-cut-naive");
    // The browser reconnects on its own (~3 s later) with Last-Event-ID; the proxy drops it.
    const tab = await ctx.naive({ url: events(key, { cutAfter: 25, dropLastEventId: true }), events: ["token"] });
    await tab.until((run) => run.frames.length > 25, null, { timeout: 15_000, what: "the naive page's second connection" });
    const cmp = compare(pick((await tab.run()).frames), journal);
    return { failed: cmp.duplicateCount > 0, detail: `naive EventSource, the browser's reconnect without its Last-Event-ID: ${cmp.summary}` };
  });

  const key = uniqueKey("px-cut-relay");
  const tabs = await relayTabs(ctx, 3, { url: events(key, { cutAfter: 25, dropLastEventId: true }), options: { key, events: ["token"] } });
  await ctx.api.post(`/streams/${key}/turns?tokens=300&rateHz=300`);
  const runs = await exactInEveryTab(ctx, key, tabs);
  const requests = await proxied(key);
  ctx.figure("connectionsThroughProxy", requests.length);
  ctx.figure("cutsByProxy", requests.filter((r) => r.note?.startsWith("cut after 25")).length);
  ctx.figure("roles", runs.map((r) => r.final.role));
  assert.ok(requests.length >= Math.ceil(301 / 25), `${requests.length} connections through the proxy`);
});

scenario(env, "50.2 proxy: every reconnect repeats the last 5 frames (dupSeam=5, cutAfter=30)", async (ctx) => {
  await ctx.control(async () => {
    const { key, journal } = await finishedTurn(ctx, "px-seam-naive");
    const tab = await ctx.naive({ url: events(key, { cutAfter: 30, dupSeam: 5 }), events: ["token"] });
    await tab.until((run) => run.frames.length >= 40, null, { timeout: 15_000, what: "the naive page's second connection" });
    const cmp = compare(pick((await tab.run()).frames), journal);
    return { failed: cmp.duplicateCount > 0, detail: `naive EventSource resuming with Last-Event-ID: ${cmp.summary}` };
  });

  const key = uniqueKey("px-seam-relay");
  const [tab] = await relayTabs(ctx, 1, { url: events(key, { cutAfter: 30, dupSeam: 5 }), options: { key, events: ["token"] } });
  await ctx.api.post(`/streams/${key}/turns?tokens=200&rateHz=0`);
  const [run] = await exactInEveryTab(ctx, key, [tab]);
  ctx.figure("reconnects", run.final.stats.reconnects);
  ctx.figure("duplicatesDropped", run.final.stats.duplicates);
  assert.ok(run.final.stats.reconnects >= 6, `reconnects ${run.final.stats.reconnects}`);
  assert.ok(run.final.stats.duplicates >= 5 * run.final.stats.reconnects, `duplicates ${run.final.stats.duplicates}`);
});

scenario(env, "50.3 proxy: the 200 comes before the upstream is asked (delayMs=800, earlyOpen), from=now", async (ctx) => {
  const knobs = { delayMs: 800, earlyOpen: true };
  await ctx.control(async () => {
    const key = uniqueKey("px-early-naive");
    const tab = await ctx.naive({ url: events(key, knobs, "?from=now"), events: ["token"], dispatch: `/streams/${key}/turns?tokens=100&rateHz=50` });
    await ctx.api.waitDone(key, { timeout: 15_000 });
    await tab.until((run) => run.done, null, { timeout: 10_000, what: "the naive page to see done" });
    const cmp = compare(pick((await tab.run()).frames), await ctx.api.journal(key));
    return { failed: cmp.missing.length > 0, detail: `naive EventSource dispatching on open: ${cmp.summary}` };
  });

  const key = uniqueKey("px-early-relay");
  const tab = await ctx.relay({
    url: events(key, knobs),
    options: { key, events: ["token"], from: "now" },
    dispatch: `/streams/${key}/turns?tokens=100&rateHz=50`,
  });
  const [run] = await exactInEveryTab(ctx, key, [tab]);
  const openMs = run.openedAt - run.openCalledAt;
  ctx.figure("openResolvedAfterMs", Math.round(openMs));
  assert.ok(openMs >= 800, `open() resolved ${openMs} ms after it was called, before the upstream joined`);
});

matrix(env, "50.4 proxy: 503 twice with Retry-After, then noise after ready", async (ctx, transport) => {
  const knobs = { status: 503, failCount: 2, retryAfter: 1, garbage: true, garbageEvent: "token" };
  await ctx.control(async () => {
    const { key } = await finishedTurn(ctx, "px-503-naive");
    const tab = await ctx.naive({ url: events(key, knobs), events: ["token"] });
    await tab.until((run) => run.finished, null, { what: "the naive EventSource to give up" });
    await tab.within((run) => run.frames.length > 0, null, 1500);
    const run = await tab.run();
    return { failed: run.frames.length === 0, detail: `naive EventSource after a 503: statuses ${JSON.stringify(tab.streams.map((s) => s.status))}, ${run.frames.length} frames` };
  });

  const key = uniqueKey("px-503-relay");
  // A short backoff (at most 200 ms), so only Retry-After can make a retry wait about 1 s.
  const options = { key, events: ["token"], backoffBaseMs: 50, backoffMaxMs: 200 };
  const tab = await ctx.relay({ url: events(key, knobs), options, dispatch: `/streams/${key}/turns?tokens=50&rateHz=0` });
  const [run] = await exactInEveryTab(ctx, key, [tab]);
  const statuses = tab.streams.map((s) => s.status);
  const gaps = (await failedResponseGaps(tab)).map((g) => g.gapMs);
  ctx.figure("statuses", statuses);
  ctx.figure("retryGapsMs", gaps);
  ctx.figure("malformed", run.final.stats.malformed);
  assert.deepEqual(statuses.slice(0, 3), [503, 503, 200]);
  assert.ok(run.final.stats.malformed >= 1, "the noise reached the client and was reported, not delivered");
  // fetch sees the status and its Retry-After (an EventSource sees neither). Playwright's timings
  // run a few ms short of the page's own (see 11f).
  if (transport === "fetch") assert.ok(gaps.every((ms) => ms >= 950), `retries ${JSON.stringify(gaps)} ms after a 503 with Retry-After: 1`);
});

scenario(env, "50.5 proxy: live cut, garbage, armed seam and stall from the control endpoint mid-turn, 2 tabs", async (ctx) => {
  await ctx.control(async () => {
    const key = uniqueKey("px-live-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events`, events: ["token"], reconnect: "app" });
    await tab.until((run) => run.opens.length >= 1, null, { what: "the naive stream to open" });
    await ctx.api.post(`/streams/${key}/turns?tokens=200&rateHz=100`);
    await tab.until((run) => run.frames.length >= 40, null, { timeout: 15_000, what: "40 naive frames" });
    await env.proxy.live({ cut: true, match: `/${key}/` });
    await ctx.api.waitDone(key, { timeout: 15_000 });
    await tab.within((run) => run.done, null, 5000);
    const cmp = compare(pick((await tab.run()).frames), await ctx.api.journal(key));
    return { failed: !cmp.exact, detail: `naive EventSource, app-level reconnect after a live cut: ${cmp.summary}` };
  });

  const key = uniqueKey("px-live-relay");
  const match = `/${key}/`;
  const tabs = await relayTabs(ctx, 2, { url: `/streams/${key}/events`, options: { key, events: ["token"], heartbeatTimeoutMs: 1500 } });
  await ctx.api.post(`/streams/${key}/turns?tokens=400&rateHz=100`);
  const [leader] = tabs;
  const at = (n) => leader.until((run, n) => run.frames.length >= n, n, { timeout: 20_000, what: `${n} frames` });
  const faults = [];
  await at(40);
  faults.push(await env.proxy.live({ cut: true, match }));
  await at(100);
  faults.push(await env.proxy.live({ garbage: true, garbageEvent: "token", match }));
  await at(160);
  faults.push(await env.proxy.arm({ dupSeam: 5 }, { match }));
  faults.push(await env.proxy.live({ cut: true, match }));
  await at(240);
  faults.push(await env.proxy.live({ stall: true, match }));
  ctx.figure("faults", faults);
  for (const fault of faults.filter((f) => f.live)) assert.equal(fault.affected, 1, `one connection for two tabs: ${JSON.stringify(fault)}`);
  const runs = await exactInEveryTab(ctx, key, tabs);
  const stats = runs.map((r) => r.final.stats);
  ctx.figure("stats", stats.map(({ reconnects, duplicates, malformed, stalls }) => ({ reconnects, duplicates, malformed, stalls })));
  const leaderStats = stats.find((s, i) => runs[i].final.role === "leader") ?? stats[0];
  assert.ok(leaderStats.reconnects >= 3, `reconnects ${leaderStats.reconnects}`);
  assert.ok(leaderStats.duplicates >= 5, `duplicates ${leaderStats.duplicates}`);
});

test("50.6 the JS helper: a missing binary and a bad flag reject with the reason; withFaults adds knobs", async () => {
  await assert.rejects(startBinary(join(ROOT, "target/debug/no-such-binary")), /cannot start/);
  await assert.rejects(startProxy({ bin: PROXY_BIN, upstream: "https://example.test" }), /exited with 2 before listening: sse-relay-proxy: bad value "https:\/\/example.test" for --upstream/);
  await assert.rejects(startProxy({ bin: PROXY_BIN }), /`upstream` .* is required/);
  assert.equal(withFaults("/e?a=1", { cutAfter: 3, garbage: true, earlyOpen: false }), "/e?a=1&proxy.cutAfter=3&proxy.garbage=1");
  assert.equal(withFaults("/e", {}), "/e");
  const proxy = await startProxy({ bin: PROXY_BIN, upstream: "http://127.0.0.1:9" });
  try {
    const response = await fetch(`${proxy.url}/anything`);
    assert.equal(response.status, 502);
    await assert.rejects(proxy.arm({ cutAfter: "x" }), /400 sse-relay-proxy: bad value "x" for proxy knob cutAfter/);
    assert.deepEqual((await proxy.arm({ cutAfter: 3 }, { next: 2 })).armed, ["cutAfter=3"]);
    assert.equal((await proxy.disarm()).disarmed, 1);
  } finally {
    await proxy.stop();
  }
  assert.notEqual(proxy.child.exitCode ?? proxy.child.signalCode, null, "stopped");
});
