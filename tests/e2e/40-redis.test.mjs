// Scenario 40: protocol v1 across processes on Redis Streams (issue 12). One redis-server (with an
// append-only file, so it can be stopped and started again mid-turn without losing anything), three
// server processes over it behind a small round-robin HTTP proxy the test starts (every request,
// every reconnect, goes to the next live process), and a fourth process that only produces the
// turns, so the turn does not depend on the processes the test kills. The pages are served through
// the proxy too. The truth is the journal read back from Redis (through the producer process).
import assert from "node:assert/strict";
import { request as httpRequest, createServer } from "node:http";
import { after, before } from "node:test";
import { chromium } from "playwright-core";
import { Api, CHROMIUM_ARGS, compare, pick, scenario, startRedis, startServer, uniqueKey, waitFor } from "./harness.mjs";

const env = { records: [] };
let redis;
let backends = [];
let producer;
let proxy;

/**
 * A round-robin HTTP proxy: each request goes to the next backend that accepts the connection (a
 * killed one is skipped), the response streamed back as it comes. A backend that dies mid-response
 * ends the client's response too. `log` records `{path, backend, status}` of every request.
 */
function startProxy(urls) {
  let next = 0;
  const log = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => forward(req, res, Buffer.concat(chunks), 0));
  });
  function forward(req, res, body, tries) {
    const backend = next++ % urls.length;
    const target = new URL(urls[backend]);
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      log.push({ path: req.url.split("?")[0], backend, status: answer.statusCode });
      res.writeHead(answer.statusCode, answer.headers);
      res.flushHeaders();
      answer.pipe(res);
      answer.on("close", () => {
        if (!answer.complete) res.destroy();
      });
    });
    upstream.on("error", () => {
      if (res.headersSent) res.destroy();
      else if (tries + 1 < urls.length) forward(req, res, body, tries + 1);
      else res.destroy();
    });
    res.on("close", () => upstream.destroy());
    upstream.end(body);
  }
  return new Promise((resolveProxy) => {
    server.listen(0, "127.0.0.1", () => {
      resolveProxy({
        url: `http://127.0.0.1:${server.address().port}`,
        log,
        close: () => new Promise((r) => server.close(r)),
        /** Backends that served an events request of `key`, in order. */
        served: (key) => log.filter((l) => l.path === `/streams/${key}/events` && l.status === 200).map((l) => l.backend),
      });
    });
    server.keepAliveTimeout = 1000;
  });
}

before(async () => {
  redis = await startRedis({ persist: true });
  const args = ["--journal", redis.url, "--ids", "redis"];
  backends = await Promise.all([0, 1, 2].map(() => startServer({ args })));
  producer = await startServer({ args });
  proxy = await startProxy(backends.map((b) => b.url));
  env.base = proxy.url;
  env.api = producer.api;
  env.browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await env.browser?.close();
  await proxy?.close();
  for (const server of [...backends, producer]) await server?.close();
  await redis?.close();
});

const relayOptions = (key, extra = {}) => ({ key, events: ["token"], backoffMaxMs: 1000, ...extra });

/** Waits for every tab to finish and checks each transcript against the journal. */
async function expectExact(ctx, key, tabs, { timeout = 45_000 } = {}) {
  for (const tab of tabs) await tab.until((run) => run.finished, null, { timeout, what: "the relay stream to finish" });
  const journal = await ctx.api.journal(key);
  const runs = [];
  for (const [i, tab] of tabs.entries()) {
    const run = await tab.run();
    assert.equal(run.openError, undefined, `tab ${i}: open() rejected: ${JSON.stringify(run.openError)}`);
    const cmp = compare(pick(run.frames), journal);
    assert.ok(cmp.exact, `tab ${i}: ${cmp.summary}`);
    runs.push(run);
  }
  return { journal, runs };
}

scenario(env, "40.1 three processes over Redis: connections spread, cut, one SIGKILLed mid-turn", async (ctx) => {
  // The naive page reconnects the way many apps do, with a new EventSource (no cursor): every cut
  // and the killed process make it replay the turn from the start, so it renders frames twice.
  await ctx.control(async () => {
    const key = uniqueKey("redis-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events?dropAfter=40`, events: ["token"], reconnect: "app" });
    await tab.until((run) => run.connections >= 1 && run.opens.length >= 1, null, { what: "the naive page to connect" });
    await producer.api.post(`/streams/${key}/turns?tokens=150&rateHz=0`);
    await ctx.api.waitDone(key);
    const journal = await ctx.api.journal(key);
    await tab.until((run) => run.connections >= 4, null, { timeout: 10_000, what: "naive reconnects" });
    const cmp = compare(pick((await tab.run()).frames), journal);
    await tab.context.close(); // it would reconnect forever
    return { failed: cmp.duplicateCount > 0, detail: `naive app-level reconnect without cursor over 3 processes: ${cmp.summary}` };
  });

  const key = uniqueKey("redis-spread");
  const tabs = [];
  for (let i = 0; i < 4; i++) {
    tabs.push(await ctx.relay({ url: `/streams/${key}/events?dropAfter=45`, options: relayOptions(key) }));
  }
  for (const tab of tabs) await tab.until((run) => run.openedAt !== undefined, null, { what: "open() to resolve" });
  // The turn comes from a process no tab is connected to: 400 tokens at 100/s.
  await producer.api.post(`/streams/${key}/turns?tokens=400&rateHz=100`);
  await waitFor(async () => (await ctx.api.stats(key)).length >= 100, { timeout: 15_000, what: "100 tokens" });
  // Cut every open connection of the live processes, then kill one process outright.
  for (const backend of backends) await backend.api.post(`/streams/${key}/faults?cut=1`);
  await waitFor(async () => (await ctx.api.stats(key)).length >= 180, { timeout: 15_000, what: "180 tokens" });
  const killed = 1;
  await backends[killed].kill("SIGKILL");
  const killedAt = proxy.log.length;
  const { journal, runs } = await expectExact(ctx, key, tabs);
  assert.equal(journal.length, 401);

  const served = proxy.served(key);
  ctx.figure("eventsRequestsPerProcess", [0, 1, 2].map((b) => served.filter((x) => x === b).length));
  ctx.figure("reconnects", runs.map((r) => r.final.stats.reconnects));
  ctx.figure("duplicatesDropped", runs.map((r) => r.final.stats.duplicates));
  assert.ok(new Set(served).size === 3, `connections landed on ${JSON.stringify([...new Set(served)])}`);
  assert.ok(served.filter((b) => b === killed).length > 0, "the killed process served some connections");
  const afterKill = proxy.log.slice(killedAt).filter((l) => l.path === `/streams/${key}/events`);
  assert.ok(afterKill.every((l) => l.backend !== killed), "a request reached the killed process");
});

scenario(env, "40.2 from=now cold join with a delayed join on the Redis path", async (ctx) => {
  const turn = (key) => `/streams/${key}/turns?tokens=150&rateHz=150`;
  await ctx.control(async () => {
    const key = uniqueKey("redis-cold-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events?from=now&joinDelayMs=300`, events: ["token"], dispatch: turn(key) });
    await ctx.api.waitDone(key);
    const journal = await ctx.api.journal(key);
    await tab.within((run) => run.done, null, 3000);
    const run = await tab.run();
    const cmp = compare(pick(run.frames), journal);
    return {
      failed: run.dispatched && cmp.missing.includes(journal[0].id),
      detail: `naive page dispatching on EventSource open (from=now, joinDelayMs=300): ${cmp.summary}`,
    };
  });

  const key = uniqueKey("redis-cold");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?joinDelayMs=300`,
    options: relayOptions(key, { from: "now" }),
    dispatch: turn(key),
  });
  const { runs } = await expectExact(ctx, key, [tab], { timeout: 20_000 });
  const openWaitedMs = Math.round(runs[0].openedAt - runs[0].openCalledAt);
  ctx.figure("openWaitedMs", openWaitedMs);
  assert.ok(openWaitedMs >= 290, `open() resolved after ${openWaitedMs} ms: before the 300 ms join`);
  assert.match(tab.streams[0].url, /[?&]from=now(&|$)/, "the first connection asks for from=now");
});

scenario(env, "40.3 Redis stopped and restarted mid-turn", async (ctx) => {
  // A naive EventSource meets the 503 of an unavailable journal: the browser gives up for good on a
  // non-200 status, so it never sees the end of the turn.
  await ctx.control(async () => {
    const key = uniqueKey("redis-down-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events`, events: ["token"] });
    await tab.until((run) => run.opens.length >= 1, null, { what: "the naive page to connect" });
    await producer.api.post(`/streams/${key}/turns?tokens=120&rateHz=60`);
    await waitFor(async () => (await ctx.api.stats(key)).length >= 30, { timeout: 15_000, what: "30 tokens" });
    await redis.stop();
    // Redis stays down until the page met a 503 (or 15 s): the browser reconnects on its own after
    // the stream ended, gets the 503, and closes the EventSource for good.
    const gaveUp = await tab.within((run) => run.errors.some((e) => e.readyState === 2), null, 15_000);
    await redis.start();
    await ctx.api.waitDone(key, { timeout: 30_000 });
    const journal = await ctx.api.journal(key);
    const finished = await tab.within((run) => run.done, null, 4000);
    const run = await tab.run();
    const cmp = compare(pick(run.frames), journal);
    return {
      failed: !finished && !cmp.exact,
      detail: `naive EventSource across the outage: closed after a 503: ${gaveUp}, done: ${finished}, ${cmp.summary}`,
    };
  });

  const key = uniqueKey("redis-down");
  const tabs = [];
  for (let i = 0; i < 2; i++) tabs.push(await ctx.relay({ url: `/streams/${key}/events`, options: relayOptions(key) }));
  for (const tab of tabs) await tab.until((run) => run.openedAt !== undefined, null, { what: "open() to resolve" });
  await producer.api.post(`/streams/${key}/turns?tokens=200&rateHz=60`);
  await waitFor(async () => (await ctx.api.stats(key)).length >= 50, { timeout: 15_000, what: "50 tokens" });
  const epoch = (await ctx.api.stats(key)).epoch;
  await redis.stop();
  const downAt = proxy.log.length;
  // While Redis is down, every process answers the events endpoint with a 503.
  await waitFor(() => proxy.log.slice(downAt).some((l) => l.status === 503), { timeout: 10_000, what: "a 503 while Redis is down" });
  await new Promise((r) => setTimeout(r, 1000));
  await redis.start();
  const { journal, runs } = await expectExact(ctx, key, tabs);
  assert.equal(journal.length, 201, "the turn rode out the outage");
  assert.equal((await ctx.api.stats(key)).epoch, epoch, "same epoch: nothing was lost");
  const statuses = tabs.flatMap((t) => t.streams.map((s) => s.status));
  ctx.figure("eventsStatuses", statuses);
  ctx.figure("reconnects", runs.map((r) => r.final.stats.reconnects));
  assert.ok(statuses.includes(503), `the tabs never met a 503: ${statuses}`);
  assert.ok(runs.every((r) => r.final.stats.resets === 0), "no reset");
});
