// Issue 17: a plain `Last-Event-ID` server no one here wrote: better-sse (npm), in the small app
// of servers/better-sse.mjs (no `ready`, no epochs, numeric ids, replay after `session.lastId`).
// The package runs with `serverProfile: "plain"`: the open response counts as the join.
//
// 60.1 dedup across cuts: the server ends each response after 40 frames and, like a sloppy
//      replay, resends the 5 frames before the cursor: every frame once, in order.
// 60.2 tab sharing: 3 tabs of one browser, one connection to the server; the leader tab closes
//      mid-turn and a follower takes over from its cursor: every tab exact.
// 60.3 the documented limit: a server without a journal (it ignores the cursor) cut mid-turn: the
//      frames sent while no connection was open are gone (at most once); with `contiguousIds` the
//      hole is reported as a `gap`, never silently; nothing is duplicated or reordered.
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, ROOT, compare, matrix, pick, uniqueKey, waitFor, withTransport } from "./harness.mjs";
import { startPlainServer } from "./servers/better-sse.mjs";

const env = { records: [] };
before(async () => {
  env.plain = await startPlainServer({ root: ROOT });
  env.base = env.plain.url;
  env.browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
});
after(async () => {
  await env.browser?.close();
  await env.plain?.close();
});

const PLAIN = { serverProfile: "plain", events: ["token"] };
const path = (url) => new URL(url).pathname + new URL(url).search;

async function journalDone(key) {
  await waitFor(async () => (await env.plain.journal(key)).at(-1)?.event === "done", { timeout: 30_000, what: `the turn on ${key} to end` });
  return env.plain.journal(key);
}

matrix(env, "60.1 plain server (better-sse): dedup across cuts with a replay overlap", async (ctx) => {
  const knobs = { cutAfter: 40, overlap: 5 };
  await ctx.control(async () => {
    const key = uniqueKey("plain-naive");
    const tab = await ctx.naive({
      url: path(env.plain.eventsUrl(key, knobs)),
      events: ["token"],
      dispatch: path(env.plain.turnUrl(key, { tokens: 300, intervalMs: 2 })),
    });
    const journal = await journalDone(key);
    await tab.until((run) => run.done, null, { timeout: 30_000, what: "the naive page to see done" });
    const cmp = compare(pick((await tab.run()).frames), journal);
    return { failed: cmp.duplicateCount > 0, detail: `the browser's reconnect with Last-Event-ID: ${cmp.summary}` };
  });

  const key = uniqueKey("plain-relay");
  const tab = await ctx.relay({
    url: path(env.plain.eventsUrl(key, knobs)),
    options: { key, ...PLAIN },
    dispatch: path(env.plain.turnUrl(key, { tokens: 300, intervalMs: 2 })),
  });
  await tab.until((run) => run.finished, null, { timeout: 60_000, what: "the relay stream to finish" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  const cmp = compare(pick(run.frames), await env.plain.journal(key));
  ctx.figure("connections", tab.streams.length);
  ctx.figure("duplicatesDropped", run.final.stats.duplicates);
  assert.ok(cmp.exact, `relay transcript: ${cmp.summary}`);
  assert.equal(run.final.stats.guarantee, "at-most-once");
  assert.equal(run.final.epoch, "plain");
  assert.ok(run.final.stats.reconnects >= 5, `${run.final.stats.reconnects} reconnects`);
  assert.ok(run.final.stats.duplicates >= 5 * run.final.stats.reconnects, `${run.final.stats.duplicates} duplicates dropped`);
});

matrix(env, "60.2 plain server (better-sse): 3 tabs share one connection; the leader leaves mid-turn", async (ctx, transport) => {
  await ctx.control(async () => {
    const key = uniqueKey("plain-naive-tabs");
    const group = await ctx.group();
    for (let i = 0; i < 3; i++) await group.naive({ url: path(env.plain.eventsUrl(key)), events: ["token"] });
    await waitFor(async () => (await env.plain.stats(key)).connectionsOpen === 3, { what: "3 naive connections" });
    const stats = await env.plain.stats(key);
    return { failed: stats.connectionsTotal > 1, detail: `3 naive tabs: ${stats.connectionsTotal} connections` };
  });

  const key = uniqueKey("plain-tabs");
  const group = await ctx.group();
  const tabs = [];
  for (let i = 0; i < 3; i++) {
    const tab = await group.relay(withTransport({ url: path(env.plain.eventsUrl(key)), options: { key, ...PLAIN } }, transport));
    await tab.until((run) => run.openedAt !== undefined || run.openError, null, { what: `tab ${i} to open` });
    tabs.push(tab);
    (ctx.relayTabs ??= []).push(tab); // so the harness checks the transport they used
  }
  const roles = await Promise.all(tabs.map(async (t) => (await t.run()).now?.role));
  assert.deepEqual(roles, ["leader", "follower", "follower"]);
  const response = await fetch(env.plain.turnUrl(key, { tokens: 400, intervalMs: 5 }), { method: "POST" });
  assert.equal(response.status, 202);
  await tabs[1].until((run) => run.frames.length >= 120, null, { timeout: 20_000, what: "120 frames in a follower" });
  const whileStreaming = await env.plain.stats(key);
  ctx.figure("connectionsWhileStreaming", whileStreaming);
  assert.equal(whileStreaming.connectionsTotal, 1, "one connection for 3 tabs");
  await tabs[0].page.close();
  const journal = await journalDone(key);
  for (const [i, tab] of tabs.slice(1).entries()) {
    await tab.until((run) => run.finished, null, { timeout: 30_000, what: `follower ${i + 1} to finish` });
    const run = await tab.run();
    const cmp = compare(pick(run.frames), journal);
    assert.ok(cmp.exact, `tab ${i + 1}: ${cmp.summary}`);
    assert.equal(run.final.stats.guarantee, "at-most-once");
  }
  const total = (await env.plain.stats(key)).connectionsTotal;
  ctx.figure("connectionsTotal", total);
  assert.ok(total >= 2 && total <= 3, `${total} connections in all (the first leader's, then its successor's)`);
});

matrix(env, "60.3 plain server without a journal: a cut loses frames, reported as a gap, never silently", async (ctx) => {
  await ctx.control(async () => {
    const key = uniqueKey("plain-nojournal-naive");
    const tab = await ctx.naive({
      url: path(env.plain.eventsUrl(key, { replay: 0, cutAfter: 50, cuts: 1 })),
      events: ["token"],
      dispatch: path(env.plain.turnUrl(key, { tokens: 600, intervalMs: 5 })),
    });
    const journal = await journalDone(key);
    await tab.until((run) => run.done, null, { timeout: 30_000, what: "the naive page to see done" });
    const cmp = compare(pick((await tab.run()).frames), journal);
    // The naive page has no way to say anything went missing: the loss is silent.
    return { failed: cmp.missing.length > 0, detail: `the browser's reconnect: ${cmp.summary}, nothing reported` };
  });
  const key = uniqueKey("plain-nojournal");
  const tab = await ctx.relay({
    url: path(env.plain.eventsUrl(key, { replay: 0, cutAfter: 50, cuts: 1 })),
    options: { key, ...PLAIN, contiguousIds: true, backoffBaseMs: 300, backoffMaxMs: 600 },
    dispatch: path(env.plain.turnUrl(key, { tokens: 600, intervalMs: 5 })),
    listenEarly: true,
  });
  await tab.until((run) => run.finished, null, { timeout: 60_000, what: "the relay stream to finish" });
  const run = await tab.run();
  const cmp = compare(pick(run.frames), await env.plain.journal(key));
  ctx.figure("missing", cmp.missing.length);
  ctx.figure("gaps", run.final.stats.gaps);
  assert.ok(cmp.missing.length > 0, `a server without a journal cannot replay what was sent while no connection was open: ${cmp.summary}`);
  assert.equal(cmp.duplicateCount, 0, cmp.summary);
  assert.equal(cmp.foreign, 0, cmp.summary);
  assert.ok(cmp.inOrder, cmp.summary);
  assert.ok(run.done, "done arrived on the live connection");
  assert.equal(run.final.stats.guarantee, "at-most-once");
  const gaps = run.events.filter((e) => e.type === "gap");
  assert.ok(gaps.length >= 1 && run.final.stats.gaps === gaps.length, `gap events ${JSON.stringify(gaps)}, stats.gaps ${run.final.stats.gaps}`);
  assert.equal(gaps[0].arg.after, "50", "the hole starts after the last frame of the cut response");
  assert.ok(tab.console.some((line) => line.includes("this stream is at-most-once")), "the page was warned when the stream opened");
});
