// Cross-tab scenarios (issue 5, docs/PROTOCOL.md §2): several pages in ONE browser context (a harness
// "group") share one connection per stream key (BroadcastChannel + Web Locks, both named
// `sse-relay/v1/<key>`, plus the event types they take), and every tab still renders every frame exactly once, in order.
//
// The truth is the server: its journal (`Api.journal`) for transcripts and `/streams/{key}/stats`
// (`connections` open now, `connectionsTotal` accepted) for connection counts. Reading the journal
// is an SSE connection too, so stats are always read before it. Tabs are opened one after the
// other, each once its `open()` settled, so the first tab of a key is its leader.
//
// Where a scenario counts connections "while the tabs stream", the test is the producer (it
// appends the frames itself, then `done`), so it reads the count before the stream ends. A leader
// whose stream finished holds the lock for a second, so its followers finish from the channel
// rather than one of them leading and connecting once more for the tail (20.1 checks the total
// after the end; the other scenarios record it as `connectionsTotalAfterEnd`).
//
// Failover times (scenarios 3 and 4) are measured across processes on one wall clock: node notes
// `Date.now()` right before it closes, navigates or crashes the leader; every remaining tab polls
// `stream.role` every 2 ms and stamps changes with `performance.timeOrigin + performance.now()`,
// and its frames are stamped the same way when rendered. Each tab's clock is calibrated against
// node's (offset from the shortest of three round trips; the error is half that round trip).
import assert from "node:assert/strict";
import { compare, pick, scenario, suite, uniqueKey, waitFor } from "./harness.mjs";

const env = suite();

// The tabs of these scenarios take `events: ["token"]`: their channel and lock name says so.
const channelName = (key) => `sse-relay/v1/${key}?events=token`;

/** A relay page config for `key` (`query` is appended to the events URL; the rest are options). */
const relayConfig = (key, { query = "", ...options } = {}, extra = {}) => ({
  url: `/streams/${key}/events${query}`,
  options: { key, events: ["token"], ...options },
  ...extra,
});

const turn = (key, tokens, rateHz) => `/streams/${key}/turns?tokens=${tokens}&rateHz=${rateHz}`;

/** Appends `count` token frames to `key` from node, one after the other, numbered from `from`. */
async function produce(api, key, count, from = 0) {
  for (let i = from; i < from + count; i++) await api.append(key, "token", JSON.stringify({ i }));
}

/** Waits until the tab's `open()` settled; fails if it rejected. */
async function opened(tab, timeout = 15_000) {
  await tab.until((run) => run.openedAt !== undefined || run.openError !== undefined, null, { timeout, what: "open() to settle" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  return run;
}

/** Opens `n` relay tabs of `group` on `config`, each once the previous one's open() resolved. */
async function openTabs(group, n, config) {
  const tabs = [];
  for (let i = 0; i < n; i++) {
    const tab = await group.relay(config);
    await opened(tab);
    tabs.push(tab);
  }
  return tabs;
}

const role = (tab) => tab.page.evaluate(() => window.stream?.role ?? null);

const untilFrames = (tab, n, timeout = 15_000) =>
  tab.until((run, n) => run.frames.length >= n, n, { timeout, what: `${n} frames` });

/** Console lines that show a crash of the page's script or of the module. */
const crashes = (tab) => tab.console.filter((l) => l.startsWith("[pageerror]") || /panicked|RuntimeError|unreachable/i.test(l));

/**
 * Waits for every tab to finish, then compares each transcript with the journal. `stats` are the
 * key's server stats once every tab finished, read before the journal.
 */
async function transcripts(ctx, tabs, key, { timeout = 20_000 } = {}) {
  await ctx.api.waitDone(key, { timeout });
  const runs = [];
  for (const [i, tab] of tabs.entries()) {
    await tab.until((run) => run.finished, null, { timeout: 15_000, what: `tab ${i} to finish` });
    runs.push(await tab.run());
  }
  const stats = await ctx.api.stats(key);
  const journal = await ctx.api.journal(key);
  const out = runs.map((run, i) => ({ tab: tabs[i], run, cmp: compare(pick(run.frames), journal) }));
  return { journal, results: out, stats };
}

/** Asserts every transcript exact and no crash; returns a one-line summary per tab. */
function assertExact(results, label = "tab") {
  const lines = results.map(({ cmp }, i) => `${label} ${i}: ${cmp.summary}`);
  const bad = results.filter(({ cmp }) => !cmp.exact);
  assert.equal(bad.length, 0, lines.join("; "));
  for (const [i, { tab }] of results.entries()) {
    assert.deepEqual(crashes(tab), [], `${label} ${i} crashed`);
  }
  return lines;
}

/** The longest time a tab went without rendering a frame (ms), and after which id. */
function longestSilence(frames) {
  let gap = 0;
  let after = null;
  for (let i = 1; i < frames.length; i++) {
    const g = frames[i].at - frames[i - 1].at;
    if (g > gap) [gap, after] = [g, frames[i - 1].id];
  }
  return { ms: Math.round(gap), afterId: after };
}

/**
 * Samples the key's server stats every ~40 ms until the stream is done (or `stop()`): the highest
 * and the lowest `connections` seen, and the timeline of changes `[ms since start, connections]`.
 */
function sampleConnections(api, key) {
  let running = true;
  const started = Date.now();
  const result = { max: 0, min: Infinity, samples: 0, timeline: [] };
  const done = (async () => {
    while (running) {
      const stats = await api.stats(key);
      if (stats.done) break; // from here on the journal may be read: that is a connection too
      result.samples += 1;
      result.max = Math.max(result.max, stats.connections);
      result.min = Math.min(result.min, stats.connections);
      if (result.timeline.at(-1)?.[1] !== stats.connections) result.timeline.push([Date.now() - started, stats.connections]);
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
  return {
    result,
    async stop() {
      running = false;
      await done;
      return result;
    },
  };
}

/** The tab's clock against node's: `pageWall - offset` is node's `Date.now()` at that moment. */
async function clockOffset(tab) {
  let best = null;
  for (let i = 0; i < 3; i++) {
    const before = Date.now();
    const pageWall = await tab.page.evaluate(() => performance.timeOrigin + performance.now());
    const after = Date.now();
    if (!best || after - before < best.rtt) best = { rtt: after - before, offset: pageWall - (before + after) / 2 };
  }
  return best;
}

/** Starts logging the tab's `stream.role` (polled every 2 ms) with page wall-clock stamps. */
function watchRole(tab) {
  return tab.page.evaluate(() => {
    const stream = window.stream;
    const stamp = () => performance.timeOrigin + performance.now();
    const log = [{ role: stream.role, wall: stamp() }];
    window.roleLog = log;
    window.roleWatch = setInterval(() => {
      const current = stream.role;
      if (current !== log.at(-1).role) log.push({ role: current, wall: stamp() });
    }, 2);
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};
const round1 = (x) => (x === null || x === undefined ? x : Math.round(x * 10) / 10);

// ---------------------------------------------------------------------------------------------
// 1. Four tabs, one connection

scenario(env, "20.1 four tabs on one key: one server connection, every tab renders the stream exactly once", async (ctx) => {
  await ctx.control(async () => {
    const key = uniqueKey("tabs4-naive");
    const group = await ctx.group();
    const tabs = [];
    for (let i = 0; i < 4; i++) tabs.push(await group.naive({ url: `/streams/${key}/events`, events: ["token"] }));
    for (const tab of tabs) await tab.until((run) => run.opens.length >= 1, null, { what: "the naive stream to open" });
    await produce(ctx.api, key, 20);
    await Promise.all(tabs.map((t) => untilFrames(t, 20)));
    const stats = await ctx.api.stats(key);
    return { failed: stats.connections === 4, detail: `4 naive tabs in one browser context, all streaming: server shows ${stats.connections} open connections` };
  });

  const key = uniqueKey("tabs4-relay");
  const group = await ctx.group();
  const tabs = await openTabs(group, 4, relayConfig(key));
  const roles = await Promise.all(tabs.map(role));
  ctx.figure("roles", roles);
  assert.deepEqual(roles, ["leader", "follower", "follower", "follower"]);

  const sampler = sampleConnections(ctx.api, key);
  await produce(ctx.api, key, 300);
  await Promise.all(tabs.map((t) => untilFrames(t, 300)));
  const streaming = await ctx.api.stats(key);
  await ctx.api.append(key, "done", "");
  const { journal, results, stats: after } = await transcripts(ctx, tabs, key);
  const seen = await sampler.stop();
  ctx.figure("whileStreaming", { connections: streaming.connections, connectionsTotal: streaming.connectionsTotal, sampledMax: seen.max, samples: seen.samples });
  ctx.figure("connectionsTotalAfterEnd", after.connectionsTotal);
  ctx.figure("leaderChanges", results.map(({ run }) => run.final.stats.leaderChanges));
  ctx.figure("transcripts", assertExact(results));
  assert.equal(streaming.connections, 1, "one open connection while the 4 tabs stream");
  assert.equal(streaming.connectionsTotal, 1, "one connection accepted for the key while the 4 tabs stream");
  assert.equal(seen.max, 1, `server connections sampled while streaming: ${JSON.stringify(seen.timeline)}`);
  assert.equal(after.connectionsTotal, 1, "no tab connected again at the end (the finished leader holds the lock until its followers finished)");
  for (const { run } of results) assert.equal(run.final.stats.delivered, journal.length);
});

// ---------------------------------------------------------------------------------------------
// 2. A tab opened mid-run

scenario(env, "20.2 a tab opened mid-run renders the whole turn so far exactly once, then live frames", async (ctx) => {
  const key = uniqueKey("midrun");
  const group = await ctx.group();
  const first = await openTabs(group, 2, relayConfig(key, { from: "start" }));
  await produce(ctx.api, key, 120);
  await untilFrames(first[0], 120);
  // The late tab joins while frames keep coming (the producer runs until the late tab has rendered
  // 20 frames past what the journal held when its open() resolved): its catch-up from the leader's
  // buffer meets live frames at the seam.
  let produced = 120;
  let producing = true;
  const producer = (async () => {
    while (producing) {
      await ctx.api.append(key, "token", JSON.stringify({ i: produced++ }));
      await new Promise((r) => setTimeout(r, 5)); // pacing the producer, not waiting on anything
    }
  })();
  const late = await group.relay(relayConfig(key, { from: "start" }));
  const lateRun = await opened(late);
  const atOpen = await ctx.api.stats(key);
  await untilFrames(late, atOpen.length + 20).finally(() => (producing = false));
  await producer;
  assert.equal(await role(late), "follower");
  await Promise.all([...first, late].map((t) => untilFrames(t, produced)));
  const streaming = await ctx.api.stats(key);
  await ctx.api.append(key, "done", "");

  const { journal, results, stats: after } = await transcripts(ctx, [...first, late], key);
  ctx.figure("journalLengthWhenTheLateTabOpened", atOpen.length);
  ctx.figure("transcripts", assertExact(results));
  const lateFrames = results[2].run.frames;
  const liveAfterOpen = lateFrames.filter((f) => f.at > lateRun.openedAt && Number(f.id) > atOpen.length).length;
  ctx.figure("lateTabLiveFramesAfterOpen", liveAfterOpen);
  ctx.figure("connectionsTotal", { whileStreaming: streaming.connectionsTotal, afterEnd: after.connectionsTotal });
  assert.equal(lateFrames[0].id, journal[0].id, "the late tab starts at the first frame of the turn");
  assert.ok(liveAfterOpen >= 20, "the late tab rendered live frames after its catch-up");
  assert.equal(streaming.connectionsTotal, 1, "the late tab was served from the leader's buffer, not a connection of its own");
}, { control: "none: a naive tab opened mid-run gets the same frames from the server's replay on a connection of its own; the check here is the leader's catch-up without a second connection" });

// Past the leader's buffer (8192 frames) the late tab replays on a connection of its own, then asks
// the leader again and moves back to the channel (README). The turn is paced (a turn always ends
// with `done`, and appending 9000 frames one by one from node is too slow here), so whether the
// late tab catches up before the turn ends depends on the machine: recorded, not asserted.
scenario(env, "20.2b a tab opened mid-run after more than the leader's 8192-frame buffer replays on its own", async (ctx) => {
  const key = uniqueKey("midrun-big");
  const group = await ctx.group();
  const [leader] = await openTabs(group, 1, relayConfig(key, { from: "start" }));
  // The late tab's page (and the module) is loaded beforehand; it opens the stream when asked, so
  // it joins right when the leader is past its buffer, not a page load later.
  const late = await group.open("tabs");
  const sampler = sampleConnections(ctx.api, key);
  await ctx.api.post(turn(key, 11_000, 1500));
  await untilFrames(leader, 8300, 30_000);
  const { url, options } = relayConfig(key, { from: "start" });
  const opening = late.page.evaluate(({ url, options }) => window.openStream("late", url, options), { url, options });
  const atJoin = await ctx.api.stats(key);
  await opening;
  await ctx.api.waitDone(key, { timeout: 40_000 });
  await leader.until((run) => run.finished, null, { timeout: 20_000, what: "the leader to finish" });
  await late.until((run) => run.streams.late?.finished, null, { timeout: 30_000, what: "the late tab to finish" });
  const seen = await sampler.stop();
  const after = await ctx.api.stats(key);
  const journal = await ctx.api.journal(key);
  const leaderRun = await leader.run();
  const lateStream = await late.page.evaluate(() => window.e2e.streams.late);
  const cmps = [compare(pick(leaderRun.frames), journal), compare(pick(lateStream.frames), journal)];
  ctx.figure("journalLengthWhenTheLateTabJoined", atJoin.length);
  ctx.figure("transcripts", [`leader: ${cmps[0].summary}`, `late tab: ${cmps[1].summary}`]);
  ctx.figure("serverConnectionsTimeline", seen.timeline);
  ctx.figure("lateTabDuplicatesDropped", lateStream.final?.stats.duplicates);
  const backToOne = seen.timeline.some(([, n], i) => n === 1 && seen.timeline.slice(0, i).some(([, m]) => m >= 2));
  ctx.figure("lateTabReturnedToTheChannelBeforeTheEnd", backToOne);
  ctx.figure("connectionsTotalAfterEnd", after.connectionsTotal);
  assert.ok(cmps.every((c) => c.exact), `leader: ${cmps[0].summary}; late tab: ${cmps[1].summary}`);
  assert.equal(lateStream.openError, undefined, `open() rejected: ${JSON.stringify(lateStream.openError)}`);
  assert.deepEqual([...crashes(leader), ...crashes(late)], []);
  assert.ok(!atJoin.done, "the turn was still running when the late tab joined");
  // The sampler stops at `done`: a second connection it saw was open while the turn ran.
  assert.ok(seen.max >= 2, `the late tab replayed on a connection of its own while the turn ran: ${JSON.stringify(seen.timeline)}`);
}, { timeout: 90_000, control: "none: no naive equivalent (a naive tab always has a connection of its own)" });

// The same fallback, deterministic: a leader that joined with `from: "now"` holds no start of the
// stream (its buffer begins at its join), so a tab that wants `from: "start"` is older than the
// buffer whatever its size. The test is the producer: it keeps appending (a frame every 50 ms, at
// most 5 s) until the late tab has left its own connection (server `connections` back to 1), then
// ends the stream.
scenario(env, "20.2c a tab older than the leader's buffer catches up on its own connection, then returns to the channel", async (ctx) => {
  const key = uniqueKey("older-than-buffer");
  await produce(ctx.api, key, 30);
  const group = await ctx.group();
  const [leader] = await openTabs(group, 1, relayConfig(key, { from: "now" }));
  const late = await group.open("tabs");
  await produce(ctx.api, key, 20, 30);
  await untilFrames(leader, 20);
  const { url, options } = relayConfig(key, { from: "start" });
  await late.page.evaluate(({ url, options }) => window.openStream("late", url, options), { url, options });
  await late.until((run) => run.streams.late?.frames.length >= 50, null, { what: "the late tab's replay" });
  const own = await ctx.api.stats(key);
  let i = 50;
  const started = Date.now();
  let back = null;
  while (Date.now() - started < 5000) {
    await ctx.api.append(key, "token", JSON.stringify({ i: i++ }));
    const stats = await ctx.api.stats(key);
    if (stats.connections === 1) {
      back = Date.now() - started;
      break;
    }
    await new Promise((r) => setTimeout(r, 50)); // pacing the producer, not waiting on anything
  }
  await produce(ctx.api, key, 10, i);
  await ctx.api.append(key, "done", "");
  await leader.until((run) => run.finished, null, { what: "the leader to finish" });
  await late.until((run) => run.streams.late?.finished, null, { what: "the late tab to finish" });
  const journal = await ctx.api.journal(key);
  const leaderRun = await leader.run();
  const lateStream = await late.page.evaluate(() => window.e2e.streams.late);
  const cmps = [compare(pick(leaderRun.frames), journal.slice(30)), compare(pick(lateStream.frames), journal)];
  ctx.figure("transcripts", [`leader (from now): ${cmps[0].summary}`, `late tab (from start): ${cmps[1].summary}`]);
  ctx.figure("connectionsDuringTheReplay", own.connections);
  ctx.figure("backOnTheChannelAfterMs", back);
  ctx.figure("lateTabDuplicatesDropped", lateStream.final?.stats.duplicates);
  assert.ok(cmps.every((c) => c.exact), `leader: ${cmps[0].summary}; late tab: ${cmps[1].summary}`);
  assert.deepEqual([...crashes(leader), ...crashes(late)], []);
  assert.equal(own.connections, 2, "the late tab replayed on a connection of its own");
  assert.notEqual(back, null, "the late tab's own connection closed once the leader could serve it (README: it asks again and moves back to the channel)");
}, { control: "none: no naive equivalent (a naive tab always has a connection of its own)" });

// ---------------------------------------------------------------------------------------------
// 3 and 4. Failover

const FAILOVER_TOKENS = 240;
const FAILOVER_RATE = 200;

/**
 * One failover run: 3 tabs, a 1.2 s turn, the leader disappears (`kill`) after 50 frames.
 *
 * Besides the stream's lock, the leader's page holds a probe lock of its own (page script) for
 * which the last tab queues: its grant is the moment the browser released the old leader's locks,
 * which separates the browser's part of the handover (noticing a crash, say) from the module's.
 * Returns the figures; asserts both remaining transcripts exact.
 */
async function failoverRun(ctx, label, kill) {
  const key = uniqueKey(label);
  const probe = `e2e-probe/${key}`;
  const group = await ctx.group();
  const tabs = await openTabs(group, 3, relayConfig(key));
  assert.deepEqual(await Promise.all(tabs.map(role)), ["leader", "follower", "follower"]);
  const [leader, ...rest] = tabs;
  await leader.page.evaluate((name) => new Promise((granted) => {
    navigator.locks.request(name, () => {
      granted();
      return new Promise(() => {}); // held until the page goes
    });
  }), probe);
  await rest[1].page.evaluate((name) => {
    window.probeReleased = null;
    navigator.locks.request(name, () => {
      window.probeReleased = performance.timeOrigin + performance.now();
    });
  }, probe);
  const prepared = kill.prepare ? await kill.prepare(leader, group) : null;
  for (const tab of rest) await watchRole(tab);
  const offsets = await Promise.all(rest.map(clockOffset));
  const origins = await Promise.all(rest.map((t) => t.page.evaluate(() => performance.timeOrigin)));
  await ctx.api.post(turn(key, FAILOVER_TOKENS, FAILOVER_RATE));
  await Promise.all(rest.map((t) => untilFrames(t, 50)));
  const t0 = Date.now();
  await kill.run(leader, prepared);
  const killMs = Date.now() - t0;
  const released = await waitFor(() => rest[1].page.evaluate(() => window.probeReleased), {
    timeout: 10_000,
    what: "the browser to release the old leader's locks (did the kill take effect?)",
  });

  const { journal, results, stats } = await transcripts(ctx, rest, key);
  const logs = await Promise.all(rest.map((t) => t.page.evaluate(() => window.roleLog)));
  const diagnostics = () => JSON.stringify({
    killMs,
    roleLogs: logs.map((log, i) => log.map((e) => [e.role, Math.round(e.wall - offsets[i].offset - t0)])),
    stats: results.map(({ run }) => run.final.stats),
    requests: rest.map((t) => t.streams.map((r) => r.url.replace(/^https?:\/\/[^/]+/, ""))),
    connectionsTotal: stats.connectionsTotal,
  });
  const lines = results.map(({ cmp }, i) => `tab ${i + 1}: ${cmp.summary}`);
  assert.ok(results.every(({ cmp }) => cmp.exact), `${lines.join("; ")}\n${diagnostics()}`);
  for (const { tab } of results) assert.deepEqual(crashes(tab), []);
  // The handover, in node's clock.
  const leaderAt = logs.map((log, i) => {
    const entry = log.find((e) => e.role === "leader");
    return entry ? entry.wall - offsets[i].offset : null;
  });
  const heir = leaderAt.findIndex((at) => at !== null && leaderAt.every((b) => b === null || at <= b));
  assert.ok(heir >= 0, `no remaining tab became leader: ${diagnostics()}`);
  const handover = leaderAt[heir];
  // The first frame past everything the remaining tabs had rendered before the handover.
  const wallOf = (i, f) => origins[i] + f.at - offsets[i].offset;
  const highestBefore = Math.max(...results.map(({ run }, i) => Math.max(0, ...run.frames.filter((f) => wallOf(i, f) <= handover).map((f) => Number(f.id)))));
  const nextFrame = results.map(({ run }, i) => {
    const f = run.frames.find((g) => Number(g.id) > highestBefore && wallOf(i, g) > handover);
    return f ? wallOf(i, f) - t0 : null;
  });
  const browserReleased = released - offsets[1].offset - t0;
  return {
    key,
    frames: journal.length,
    handoverAfterFrame: highestBefore,
    killMs,
    browserReleasedLocksMs: round1(browserReleased),
    toLeaderMs: round1(handover - t0),
    moduleShareMs: round1(handover - t0 - browserReleased),
    toNextFrameMs: round1(nextFrame[heir]),
    toAllTabsFlowingMs: round1(Math.max(...nextFrame)),
    clockErrorMs: Math.max(...offsets.map((o) => o.rtt / 2)),
    connectionsTotal: stats.connectionsTotal,
    leaderChanges: results.map(({ run }) => run.final.stats.leaderChanges),
    transcripts: lines,
  };
}

const summarize = (xs) => ({ median: round1(median(xs)), max: round1(Math.max(...xs)), all: xs });

/**
 * Runs `failoverRun` `runs` times and records (`record`) the runs and the medians.
 *
 * The 250 ms target is checked on the module's share: from the browser's release of
 * the old leader's locks (the probe lock) to a remaining tab's `role === "leader"`. How fast the
 * browser releases them (it must first notice the tab is gone: a crash takes it 60-450 ms here,
 * a close on a loaded machine up to several hundred) is not the module's to improve; the total is
 * recorded, `totalWithin250Ms` says whether its median met the target, and it is bounded at 1 s
 * (a handover through the 1 s leader-silence fallback instead of the lock would exceed it).
 */
async function failoverSeries(ctx, label, kill, runs, record = (figures) => {
  for (const [name, value] of Object.entries(figures)) ctx.figure(name, value);
}) {
  const all = [];
  for (let i = 0; i < runs; i++) all.push(await failoverRun(ctx, `${label}-${i}`, kill));
  const pickAll = (field) => all.map((r) => r[field]).filter((x) => x !== null && x !== undefined);
  const figures = {
    toLeaderMs: summarize(pickAll("toLeaderMs")),
    toNextFrameMs: summarize(pickAll("toNextFrameMs")),
    browserReleasedLocksMs: summarize(pickAll("browserReleasedLocksMs")),
    moduleShareMs: summarize(pickAll("moduleShareMs")),
    totalWithin250Ms: median(pickAll("toLeaderMs")) <= 250,
    runs: all.map(({ key, transcripts, ...rest }) => rest),
  };
  record(figures);
  const share = median(pickAll("moduleShareMs"));
  assert.ok(share <= 250, `${label}: median module share of the handover ${share} ms > 250 ms (runs: ${pickAll("moduleShareMs").join(", ")})`);
  const total = median(pickAll("toLeaderMs"));
  assert.ok(total <= 1000, `${label}: median time from the leader's end to a new leader ${total} ms > 1 s (runs: ${pickAll("toLeaderMs").join(", ")})`);
  return figures;
}

const closeLeader = { run: (leader) => leader.page.close() };

scenario(env, "20.3 closing the leader mid-burst: a follower leads within 250 ms of the lock's release, no gap, no duplicate", async (ctx) => {
  await failoverSeries(ctx, "failover-close", closeLeader, 5);
}, { timeout: 120_000, control: "none: a naive tab has no leader to lose (each tab holds its own connection)" });

const navigateLeader = { run: (leader) => leader.page.goto("about:blank") };
const crashLeader = {
  prepare: (leader, group) => group.context.newCDPSession(leader.page),
  run: (leader, cdp) => {
    cdp.send("Page.crash").catch(() => {}); // it never answers: the page is gone
  },
};

scenario(env, "20.4 a leader that disappears without cleanup (navigated away, crashed): same guarantees", async (ctx) => {
  await failoverSeries(ctx, "failover-navigate", navigateLeader, 3, (f) => ctx.figure("navigatedAway", f));
  await failoverSeries(ctx, "failover-crash", crashLeader, 3, (f) => ctx.figure("crashed", f));
}, { timeout: 120_000, control: "none: a naive tab has no leader to lose (each tab holds its own connection)" });

// ---------------------------------------------------------------------------------------------
// 5. Dispatch from a follower

const JOIN_DELAY = 2000; // longer than the 1 s a follower waits for a silent leader, and than a page load here

scenario(env, "20.5 dispatch from a follower right after its open() resolves (joinDelayMs=2000, from=now): nothing lost", async (ctx) => {
  await ctx.control(async () => {
    const key = uniqueKey("follower-dispatch-naive");
    const group = await ctx.group();
    const url = `/streams/${key}/events?from=now&joinDelayMs=${JOIN_DELAY}`;
    await group.naive({ url, events: ["token"] });
    await ctx.api.waitStats(key, (s) => s.connections >= 1, { what: "the first naive connection" });
    const second = await group.naive({ url, events: ["token"], dispatch: turn(key, 200, 200) });
    await ctx.api.waitDone(key);
    const journal = await ctx.api.journal(key);
    await second.within((run) => run.done, null, 3000);
    const cmp = compare(pick((await second.run()).frames), journal);
    return { failed: cmp.missing.includes(journal[0].id), detail: `second naive tab dispatching on its EventSource open: ${cmp.summary}` };
  });

  const key = uniqueKey("follower-dispatch");
  const group = await ctx.group();
  const query = `?joinDelayMs=${JOIN_DELAY}`;
  const leader = await group.relay(relayConfig(key, { query, from: "now" }));
  await ctx.api.waitStats(key, (s) => s.connections >= 1, { what: "the leader's connection (joining)" });
  const follower = await group.relay(relayConfig(key, { query, from: "now" }, { dispatch: turn(key, 200, 200) }));
  const [leaderRun, followerRun] = [await opened(leader), await opened(follower)];
  // Read at once: the turn the follower dispatched lasts 1 s, so the stream has not ended.
  const atOpen = await ctx.api.stats(key);
  assert.equal(await role(follower), "follower");
  const [lo, fo] = [await clockOffset(leader), await clockOffset(follower)];
  const [lOrigin, fOrigin] = await Promise.all([leader, follower].map((t) => t.page.evaluate(() => performance.timeOrigin)));
  const leaderOpened = lOrigin + leaderRun.openedAt - lo.offset;
  const followerCalled = fOrigin + followerRun.openCalledAt - fo.offset;
  const followerOpened = fOrigin + followerRun.openedAt - fo.offset;
  ctx.figure("followerOpenCalledBeforeLeaderOpenedMs", round1(leaderOpened - followerCalled));
  ctx.figure("followerOpenWaitedMs", round1(followerRun.openedAt - followerRun.openCalledAt));
  ctx.figure("followerOpenedAfterLeaderOpenedMs", round1(followerOpened - leaderOpened));
  assert.ok(followerCalled < leaderOpened - 100, "the follower called open() while the leader's connection was still joining");
  // Both resolve on the leader's `ready` (the follower through the leader's welcome, posted in the
  // same step): which page's promise continuation runs first is a race of a few ms, hence 50 ms.
  assert.ok(followerOpened >= leaderOpened - 50, "the follower's open() resolved only once the leader's connection was ready");
  ctx.figure("connectionsTotalWhenOpened", atOpen.connectionsTotal);
  assert.equal(atOpen.connectionsTotal, 1, "the waiting follower did not connect on its own");

  const { journal, results } = await transcripts(ctx, [leader, follower], key);
  ctx.figure("transcripts", assertExact(results));
  assert.equal(journal.length, 201, "the whole turn is in the journal");
});

// ---------------------------------------------------------------------------------------------
// 6. Malformed and hostile channel messages

/**
 * The hostile messages, built in the attacker's page from what it overheard on the channel:
 * `{label, value, from}`; `accepted: true` marks a message a correct tab may accept (a replay of
 * the real leader's own message is indistinguishable from the leader: only dedup stops it).
 */
function hostileMessages({ leader, term, epoch, followerId, replay }) {
  // Well-formed leader messages carry a sequence number: forge one, so fencing is what rejects them.
  const j = (o) => JSON.stringify("term" in o && !("seq" in o) ? { ...o, seq: 1 } : o);
  const forged = (n) => [String(100000 + n), "token", `forged ${n}`];
  return [
    { label: "not JSON", value: "not json {" },
    { label: "empty string", value: "" },
    { label: "a structured-clone object, not text", value: { v: 1, t: "frames", from: leader, term, epoch, frames: [forged(1)] } },
    { label: "a number", value: 42 },
    { label: "wrong version (2)", value: j({ v: 2, t: "ping", from: leader, term }) },
    { label: "version as a string", value: j({ v: "1", t: "ping", from: leader, term }) },
    { label: "no version", value: j({ t: "frames", from: leader, term, epoch, frames: [forged(2)] }) },
    { label: "unknown type", value: j({ v: 1, t: "shout", from: "intruder", term }) },
    { label: "frames without frames", value: j({ v: 1, t: "frames", from: leader, term, epoch }) },
    { label: "a frame of two fields", value: j({ v: 1, t: "frames", from: leader, term, epoch, frames: [["100003", "token"]] }) },
    { label: "term beyond 2^53", value: j({ v: 1, t: "frames", from: leader, term: "TERM", epoch, frames: [forged(4)] }).replace('"TERM"', "9007199254740993") },
    { label: "negative term", value: j({ v: 1, t: "frames", from: leader, term: -1, epoch, frames: [forged(5)] }) },
    { label: "nested 100000 deep", value: "[".repeat(100_000) + "]".repeat(100_000) },
    { label: "over 32 MiB", huge: 33 << 20 },
    { label: "1 MiB of forged frames from an unknown tab, equal term", value: j({ v: 1, t: "frames", from: "intruder", term, epoch, frames: [[String(100006), "token", "x".repeat(1 << 20)]] }) },
    { label: "forged frames, unknown tab, stale term", value: j({ v: 1, t: "frames", from: "intruder", term: term - 1, epoch, frames: [forged(7)] }) },
    { label: "forged frames, unknown tab, equal term", value: j({ v: 1, t: "frames", from: "intruder", term, epoch, frames: [forged(8)] }) },
    { label: "forged ready, unknown tab, equal term", value: j({ v: 1, t: "ready", from: "intruder", term, tail: "100009", epoch }) },
    { label: "forged welcome to the follower, unknown tab, equal term", value: j({ v: 1, t: "welcome", from: "intruder", term, to: followerId, tail: "100010", epoch, frames: [forged(10)], complete: true }) },
    { label: "forged ping, unknown tab, stale term", value: j({ v: 1, t: "ping", from: "intruder", term: term - 1 }) },
    { label: "the follower's own id as sender", value: j({ v: 1, t: "frames", from: followerId, term, epoch, frames: [forged(11)] }) },
    ...replay.map((value, i) => ({ label: `replay of the leader's frames message #${i + 1}`, value, replayOfLeader: true })),
  ];
}

scenario(env, "20.6 malformed and hostile channel messages: ignored, counted, no crash, no duplicate", async (ctx) => {
  const key = uniqueKey("hostile");
  const name = channelName(key);
  const group = await ctx.group();
  // The attacker page listens from before the follower joins: it overhears the follower's hello
  // (its id), the leader's id, term and epoch, and keeps two real frames messages to replay.
  const [leader] = await openTabs(group, 1, relayConfig(key));
  const attacker = await group.open("tabs");
  await attacker.page.evaluate((name) => {
    window.heard = [];
    window.spy = new BroadcastChannel(name);
    window.spy.onmessage = (e) => window.heard.push(e.data);
  }, name);
  const [follower] = await openTabs(group, 1, relayConfig(key));
  // The test is the producer: the stream must still run while the tabs process the attack (a
  // message that arrives after a tab's stream ended is not counted: its channel is closed).
  await produce(ctx.api, key, 60);
  await untilFrames(follower, 60);
  const intel = await attacker.page.evaluate(() => {
    const parsed = window.heard.map((text) => JSON.parse(text));
    const frames = parsed.filter((m) => m.t === "frames");
    return {
      leader: frames[0]?.from,
      term: frames[0]?.term,
      epoch: frames[0]?.epoch,
      followerId: parsed.find((m) => m.t === "hello")?.from,
      replay: window.heard.filter((text) => JSON.parse(text).t === "frames").slice(0, 2),
    };
  });
  assert.ok(intel.leader && intel.term >= 1 && intel.followerId && intel.replay.length === 2, `the attacker overheard the tabs: ${JSON.stringify(intel).slice(0, 300)}`);
  const messages = hostileMessages(intel);
  const before = await Promise.all([leader, follower].map((t) => t.run()));

  // Post everything from the attacker page, then two from a channel object inside the follower's
  // own page (same page, other object: the module's channel receives them too).
  await attacker.page.evaluate(async ({ name, messages }) => {
    const channel = new BroadcastChannel(name);
    for (const m of messages) channel.postMessage(m.huge ? "x".repeat(m.huge) : m.value);
  }, { name, messages });
  const inPage = [
    { label: "not JSON, from inside the follower's page", value: "{{{" },
    { label: "forged frames, unknown tab, equal term, from inside the follower's page", value: JSON.stringify({ v: 1, t: "frames", from: "intruder2", term: intel.term, epoch: intel.epoch, frames: [["100012", "token", "forged 12"]] }) },
  ];
  await follower.page.evaluate(({ name, messages }) => {
    const channel = new BroadcastChannel(name);
    for (const m of messages) channel.postMessage(m.value);
  }, { name, messages: inPage });

  const all = [...messages, ...inPage];
  // The leader rejects all of them (a replay of its own message carries its own id: forged); so does
  // the follower, the replays of the real leader included: their sequence numbers were taken.
  const expected = { leader: all.length, follower: all.length };
  const counted = async () => {
    const [l, f] = await Promise.all([leader, follower].map((t) => t.run()));
    return {
      leader: l.now.stats.rejectedMessages - before[0].now.stats.rejectedMessages,
      follower: f.now.stats.rejectedMessages - before[1].now.stats.rejectedMessages,
    };
  };
  const started = Date.now();
  await waitFor(async () => {
    const c = await counted();
    return c.leader >= expected.leader && c.follower >= expected.follower;
  }, { timeout: 20_000, what: "the tabs to count the hostile messages" }).catch(() => {});
  const got = await counted();
  ctx.figure("countedWithinMs", Date.now() - started);
  // The stream goes on after the attack, then ends.
  await produce(ctx.api, key, 40, 60);
  await ctx.api.append(key, "done", "");
  const { results } = await transcripts(ctx, [leader, follower], key);
  ctx.figure("transcripts", assertExact(results));
  ctx.figure("hostileMessages", all.map((m) => m.label));
  ctx.figure("rejectedMessages", { expected, got });
  ctx.figure("followerDuplicatesDropped", results[1].run.final.stats.duplicates);
  assert.deepEqual(got, expected, "every hostile message counted in stats.rejectedMessages");
  // No forged id was ever rendered (assertExact compares with the journal; this names them).
  for (const { run } of results) assert.equal(run.frames.filter((f) => Number(f.id) >= 100000).length, 0);
}, { timeout: 90_000, control: "none: a naive tab has no channel; the check is that the module ignores and counts what page script posts on it" });

// ---------------------------------------------------------------------------------------------
// 7. Two leaders at once

/**
 * 3 relay tabs and an attacker page on one key; `force({attacker, tabs, name})` runs after 60
 * frames of a 4 s turn (`tokens` at 100 Hz). Returns the figures; asserts every transcript exact.
 */
async function twoLeaders(ctx, label, force, { tokens = 400 } = {}) {
  const key = uniqueKey(label);
  const group = await ctx.group();
  const tabs = await openTabs(group, 3, relayConfig(key));
  assert.deepEqual(await Promise.all(tabs.map(role)), ["leader", "follower", "follower"]);
  const attacker = await group.open("tabs");
  const sampler = sampleConnections(ctx.api, key);
  await ctx.api.post(turn(key, tokens, 100));
  await untilFrames(tabs[1], 60);
  await force({ attacker, tabs, name: channelName(key) });
  const { results, stats } = await transcripts(ctx, tabs, key, { timeout: 30_000 });
  const seen = await sampler.stop();
  return {
    transcripts: assertExact(results),
    roles: results.map(({ run }) => run.final.role),
    leaderChanges: results.map(({ run }) => run.final.stats.leaderChanges),
    duplicatesDropped: results.map(({ run }) => run.final.stats.duplicates),
    rejectedMessages: results.map(({ run }) => run.final.stats.rejectedMessages),
    longestSilence: results.map(({ run }) => longestSilence(run.frames)),
    connectionsTotal: stats.connectionsTotal,
    serverConnectionsTimeline: seen.timeline,
  };
}

const steal = (holdMs) => ({ attacker, name }) =>
  attacker.page.evaluate(({ name, holdMs }) => {
    window.stolen = navigator.locks.request(name, { steal: true }, () => new Promise((r) => setTimeout(r, holdMs)));
  }, { name, holdMs });

const forgeLeader = (term) => ({ attacker, name }) =>
  attacker.page.evaluate(({ name, term }) => {
    new BroadcastChannel(name).postMessage(`{"v":1,"t":"leader","from":"usurper","term":${term}}`);
  }, { name, term });

scenario(env, "20.7 two leaders forced at once: no duplicate in any tab, the stream completes", async (ctx) => {
  // a. A page script steals the lock for 300 ms, then releases it.
  ctx.figure("stealAndRelease", await twoLeaders(ctx, "steal", steal(300)));
  // b. The leader's main thread is blocked for 1.5 s (a frozen tab) while a page script steals the
  // lock for 100 ms: a follower leads and connects; then the old leader wakes up still believing
  // it leads, with frames buffered on its own connection, and publishes them under its old term.
  ctx.figure("frozenLeaderWakesUp", await twoLeaders(ctx, "frozen", async ({ attacker, tabs, name }) => {
    const blocked = tabs[0].page.evaluate(() => {
      const end = Date.now() + 1500;
      while (Date.now() < end) {
        // frozen
      }
    });
    await steal(100)({ attacker, name });
    await blocked;
  }));
  // c. A forged `leader` message with a higher term: every tab follows the forger, the real leader
  // steps down, the next tab in the lock queue leads with a higher term still.
  ctx.figure("forgedHigherTerm", await twoLeaders(ctx, "forged-term", forgeLeader(6)));
}, { timeout: 120_000, control: "none: a naive tab has no leader; the forced double leadership is the hostile input itself" });

// The same forgery at the highest term a message may carry (2^53): the next real leader cannot
// outbid it (its term saturates at 2^53, equal, from another sender), so the other tabs reject it,
// and their 1 s silence timer (README: "a follower that hears no real leader connects on its own")
// was cancelled by the forged message itself. Expected: no tab goes more than ~2 s without frames.

scenario(env, "20.7d a forged leader at the highest term: the followers connect on their own instead of stalling", async (ctx) => {
  const figures = await twoLeaders(ctx, "forged-max-term", forgeLeader(9007199254740992), { tokens: 500 });
  ctx.figure("forgedMaxTerm", figures);
  const stalled = figures.longestSilence.filter((s) => s.ms > 2000);
  assert.deepEqual(stalled, [], `tabs went without frames for ${stalled.map((s) => `${s.ms} ms (after id ${s.afterId})`).join(", ")} in a 5 s turn at 100 Hz`);
}, { timeout: 90_000, control: "none: hostile input" });

// ---------------------------------------------------------------------------------------------
// 8. Fallback

const FALLBACKS = [
  { label: "shareAcrossTabs: false", options: { shareAcrossTabs: false } },
  { label: "no BroadcastChannel", initScript: () => { delete window.BroadcastChannel; } },
  { label: "no navigator.locks", initScript: () => { delete Navigator.prototype.locks; } },
];

scenario(env, "20.8 fallback (shareAcrossTabs false, no BroadcastChannel, no Web Locks): one connection per tab, every guarantee holds", async (ctx) => {
  const figures = {};
  for (const fallback of FALLBACKS) {
    const key = uniqueKey(`fallback-${fallback.label}`);
    const group = await ctx.group({ initScript: fallback.initScript });
    // dropAfter: every connection ends after 60 frames, so each tab must also resume on its own.
    const tabs = await openTabs(group, 3, relayConfig(key, { query: "?dropAfter=60", ...fallback.options }));
    const roles = await Promise.all(tabs.map(role));
    const open = await ctx.api.waitStats(key, (s) => s.connections === 3, { timeout: 5000, what: "3 connections" }).catch(async () => ctx.api.stats(key));
    await ctx.api.post(turn(key, 200, 200));
    const { results } = await transcripts(ctx, tabs, key);
    figures[fallback.label] = {
      roles,
      serverConnectionsOpen: open.connections,
      reconnects: results.map(({ run }) => run.final.stats.reconnects),
      transcripts: assertExact(results, `${fallback.label}: tab`),
    };
    assert.deepEqual(roles, ["standalone", "standalone", "standalone"], `${fallback.label}: roles`);
    assert.equal(open.connections, 3, `${fallback.label}: one connection per tab`);
    for (const { run } of results) assert.ok(run.final.stats.reconnects > 0, `${fallback.label}: each tab resumed on its own`);
  }
  ctx.figure("fallbacks", figures);
}, { timeout: 90_000, control: "none: the fallback is the naive shape (one connection per tab); the check is that every other guarantee still holds" });

// ---------------------------------------------------------------------------------------------
// 9. Two keys in the same tabs

scenario(env, "20.9 streams with different keys in the same tabs do not interfere", async (ctx) => {
  const [k1, k2] = [uniqueKey("keys-one"), uniqueKey("keys-two")];
  const group = await ctx.group();
  const [x, y] = [await group.open("tabs"), await group.open("tabs")];
  const openIn = (tab, name, key) => tab.page.evaluate(({ name, url, options }) => window.openStream(name, url, options), { name, ...relayConfig(key) });
  // X leads k1, Y leads k2; then each follows the other's key.
  await openIn(x, "one", k1);
  await openIn(y, "two", k2);
  await openIn(x, "two", k2);
  await openIn(y, "one", k1);
  const snapshots = () => Promise.all([x, y].map((t) => t.page.evaluate(() => window.e2e.snapshot())));
  const snaps = await snapshots();
  const roles = { x: { one: snaps[0].one.role, two: snaps[0].two.role }, y: { one: snaps[1].one.role, two: snaps[1].two.role } };
  ctx.figure("roles", roles);
  assert.deepEqual(roles, { x: { one: "leader", two: "follower" }, y: { one: "follower", two: "leader" } });

  // Both keys at once, interleaved.
  for (let i = 0; i < 150; i++) {
    await Promise.all([ctx.api.append(k1, "token", JSON.stringify({ key: 1, i })), ctx.api.append(k2, "token", JSON.stringify({ key: 2, i }))]);
  }
  for (const tab of [x, y]) {
    await tab.until((run) => run.streams.one?.frames.length >= 150 && run.streams.two?.frames.length >= 150, null, { what: "150 frames of each key" });
  }
  const streaming = [await ctx.api.stats(k1), await ctx.api.stats(k2)];
  const mid = await snapshots();
  await Promise.all([ctx.api.append(k1, "done", ""), ctx.api.append(k2, "done", "")]);

  for (const [label, tab] of [["x", x], ["y", y]]) {
    await tab.until((run) => run.streams.one?.finished && run.streams.two?.finished, null, { timeout: 15_000, what: `tab ${label} to finish both streams` });
  }
  const after = [await ctx.api.stats(k1), await ctx.api.stats(k2)];
  const journals = { one: await ctx.api.journal(k1), two: await ctx.api.journal(k2) };
  const lines = [];
  for (const [t, [label, tab]] of [["x", x], ["y", y]].entries()) {
    const streams = await tab.page.evaluate(() => window.e2e.streams);
    for (const name of ["one", "two"]) {
      const cmp = compare(pick(streams[name].frames), journals[name]);
      lines.push(`tab ${label} stream ${name}: ${cmp.summary}`);
      assert.ok(cmp.exact, `tab ${label}, stream ${name}: ${cmp.summary}`);
      assert.equal(mid[t][name].stats.rejectedMessages, 0, `tab ${label}, stream ${name}: rejected messages while streaming`);
    }
    assert.deepEqual(crashes(tab), []);
  }
  ctx.figure("transcripts", lines);
  ctx.figure("connectionsTotal", { whileStreaming: streaming.map((s) => s.connectionsTotal), afterEnd: after.map((s) => s.connectionsTotal) });
  assert.deepEqual(streaming.map((s) => s.connectionsTotal), [1, 1], "one connection per key");
}, { control: "none: no naive equivalent (keys are a cross-tab notion)" });

// ---------------------------------------------------------------------------------------------
// 10. Different event types on one key (issue 14)

scenario(env, "20.10 one key, different events: no frame is lost; events left out take every type; a type not asked for is counted", async (ctx) => {
  const key = uniqueKey("events-mix");
  const group = await ctx.group();
  const page = await group.open("tabs");
  const open = (name, options) => page.page.evaluate(({ name, url, options }) => window.openStream(name, url, options), { name, url: `/streams/${key}/events`, options: { key, ...options } });
  // A asks for tokens (it leads its key's "token" group), B for status frames, C leaves events out.
  await open("a", { events: ["token"] });
  await open("b", { events: ["status"] });
  await open("c", {});
  await ctx.api.append(key, "token", "t1");
  await ctx.api.append(key, "status", "s1");
  await ctx.api.append(key, "token", "t2");
  await ctx.api.append(key, "done", "");
  await page.until((run) => ["a", "b", "c"].every((n) => run.streams[n]?.finished), null, { timeout: 15_000, what: "the three streams to finish" });
  const journal = await ctx.api.journal(key);
  const streams = await page.page.evaluate(() => window.e2e.streams);
  const snap = (name) => streams[name].final.stats;
  const of = (name) => pick(streams[name].frames);
  const only = (types) => journal.filter((f) => types.includes(f.event));
  ctx.figure("streams", Object.fromEntries(["a", "b", "c"].map((n) => [n, { frames: of(n).map((f) => f.event), filtered: snap(n).filtered, role: streams[n].final.role }])));
  assert.deepEqual(of("a"), only(["token", "done"]), "a: the tokens and done");
  assert.deepEqual(of("b"), only(["status", "done"]), "b: its status frame, though a leads the key's token group");
  assert.deepEqual(of("c"), journal, "c: events left out takes every type");
  // With fetch (the transport without `events`' default) every type is heard; a and b take
  // eventsource, which hears only their types: nothing reaches them to count.
  assert.equal(snap("c").filtered, 0);
  const warned = page.console.filter((l) => l.startsWith("[warning]") && l.includes("sse-relay"));
  ctx.figure("warnings", warned);
}, { control: "none: the naive client has no cross-tab sharing; before the fix b never got its status frame (issue 14)" });

scenario(env, "20.11 a type not in events, heard by fetch, is counted, reported and warned about", async (ctx) => {
  const key = uniqueKey("events-filtered");
  const tab = await ctx.relay({ url: `/streams/${key}/events`, options: { key, events: ["token"], transport: "fetch" }, listenEarly: true });
  await tab.until((run) => run.openedAt !== undefined, null, { what: "open()" });
  await ctx.api.append(key, "token", "t1");
  await ctx.api.append(key, "status", "s1");
  await ctx.api.append(key, "status", "s2");
  await ctx.api.append(key, "done", "");
  await tab.until((run) => run.finished, null, { what: "the stream to finish" });
  const run = await tab.run();
  const filtered = run.events.filter((e) => e.type === "filtered").map((e) => e.arg);
  const warnings = tab.console.filter((l) => l.startsWith("[warning]") && l.includes("not in `events`"));
  ctx.figure("filtered", filtered);
  ctx.figure("warnings", warnings.length);
  assert.deepEqual(run.frames.map((f) => f.event), ["token", "done"]);
  assert.equal(run.final.stats.filtered, 2);
  assert.deepEqual(filtered.map((f) => f.event), ["status", "status"]);
  assert.equal(warnings.length, 1, "warned once, not per frame");
}, { control: "none: checks how a filtered frame is reported" });
