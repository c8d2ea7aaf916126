// Issue 18: a journal reset under `from: "now"` with tabs sharing one key. Before the fix, a
// follower took the leader's position in the new epoch for its own `from=now` start and dropped
// the new epoch's first frames as duplicates (silent loss), and a follower whose cursor had jumped
// to a `done` it never delivered reconnected forever once it led. Every scenario runs on both
// transports and both id modes of the reference server (numeric and redis-style ids).
//
// The truth: the server's journal of the new epoch (read once it is done); the old epoch is wiped
// by the reset, so its frames are checked by their own numbering (turns number their tokens
// `{"i": 0, 1, 2, ...}`): each tab renders an unbroken run of them, each once, in order.
import assert from "node:assert/strict";
import { compare, pick, scenario, suite, uniqueKey } from "./harness.mjs";

const env = suite();

const TRANSPORTS = ["eventsource", "fetch"];
const ID_MODES = ["numeric", "redis"];

/** Waits until the tab's `open()` settled; fails if it rejected. */
async function opened(tab, timeout = 15_000) {
  await tab.until((run) => run.openedAt !== undefined || run.openError !== undefined, null, { timeout, what: "open() to settle" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  return run;
}

/** Opens `n` tabs of one browser context on `key` with `from: "now"`, the first one the leader. */
async function nowTabs(ctx, key, n, transport) {
  const group = await ctx.group();
  const config = { url: `/streams/${key}/events`, options: { key, events: ["token"], from: "now", transport } };
  const tabs = [];
  for (let i = 0; i < n; i++) {
    const tab = await group.relay(config);
    await opened(tab);
    tabs.push(tab);
  }
  const roles = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.stream.role)));
  assert.deepEqual(roles, ["leader", ...Array(n - 1).fill("follower")], "the first tab leads");
  return { group, tabs, config };
}

/** Checks one tab's old-epoch frames: an unbroken run of the turn's tokens, each once, in order. */
function checkOldEpoch(frames, label) {
  const numbers = frames.map((f) => JSON.parse(f.data).i);
  for (let i = 1; i < numbers.length; i++) {
    assert.equal(numbers[i], numbers[i - 1] + 1, `${label}: old epoch tokens ${numbers[i - 1]} then ${numbers[i]} (a hole or a repeat)`);
  }
}

/** Connections the key's server counted so far, read twice `quietMs` apart: a loop shows up as growth. */
async function connectionsSettle(api, key, quietMs) {
  const before = (await api.stats(key)).connectionsTotal;
  await new Promise((r) => setTimeout(r, quietMs));
  const after = (await api.stats(key)).connectionsTotal;
  return { before, after };
}

for (const transport of TRANSPORTS) {
  for (const ids of ID_MODES) {
    const tag = `[${transport}, ${ids} ids]`;

    scenario(env, `21.1 shared tabs, from=now, reset mid-turn then a new turn: every tab renders each epoch exactly once ${tag}`, async (ctx) => {
      ctx.figure("transport", transport);
      ctx.figure("ids", ids);
      if (ids === "redis") {
        ctx.record.control =
          "none: redis-style ids keep increasing across a reset, so the browser's reconnect with the old Last-Event-ID happens to get the new epoch whole; the numeric-ids run has the control";
      } else await ctx.control(async () => {
        // The naive page: the browser's own reconnect after the reset sends the old Last-Event-ID
        // and no epoch, so the server reads that id in the new epoch and skips its first frames.
        const key = uniqueKey("reset-now-naive");
        await ctx.api.post(`/streams/${key}/reset?ids=${ids}`);
        const group = await ctx.group();
        const tab = await group.naive({ url: `/streams/${key}/events?from=now`, events: ["token"] });
        await tab.until((run) => run.opens.length >= 1, null, { what: "the naive stream to open" });
        await ctx.api.post(`/streams/${key}/turns?tokens=300&rateHz=100`);
        await tab.until((run) => run.frames.length >= 30, null, { what: "30 frames of turn A" });
        await ctx.api.post(`/streams/${key}/reset?ids=${ids}`);
        // The reset ended the response: what the page renders from here on is the new epoch (its
        // frames carry the same ids and data as the old epoch's first ones, so only the position tells).
        const renderedA = (await tab.run()).frames.length;
        await ctx.api.post(`/streams/${key}/turns?tokens=150&rateHz=1000000`);
        await ctx.api.waitDone(key);
        const journalB = await ctx.api.journal(key);
        await tab.within((run) => run.done, null, 6000);
        const run = await tab.run();
        const cmp = compare(pick(run.frames.slice(renderedA)), journalB);
        return { failed: !cmp.exact, detail: `naive from=now page across a reset: new epoch ${cmp.summary}` };
      });

      const key = uniqueKey("reset-now-tabs");
      await ctx.api.post(`/streams/${key}/reset?ids=${ids}`);
      const { tabs } = await nowTabs(ctx, key, 3, transport);
      const epochA = (await ctx.api.stats(key)).epoch;
      await ctx.api.post(`/streams/${key}/turns?tokens=300&rateHz=100`);
      await Promise.all(tabs.map((t) => t.until((run) => run.frames.length >= 30, null, { what: "30 frames of turn A" })));
      const { epoch: epochB } = await ctx.api.post(`/streams/${key}/reset?ids=${ids}`);
      // The new turn is appended at once and fast, so the leader's first connection of the new
      // epoch finds it (partly) there: the shape that made followers skip its first frames.
      await ctx.api.post(`/streams/${key}/turns?tokens=150&rateHz=1000000`);
      await ctx.api.waitDone(key);
      const finished = await Promise.all(tabs.map((t) => t.within((run) => run.finished, null, 20_000)));
      const settle = await connectionsSettle(ctx.api, key, 2500);
      const journalB = await ctx.api.journal(key);

      const lines = [];
      for (const [i, tab] of tabs.entries()) {
        const run = await tab.run();
        const label = `tab ${i}`;
        assert.ok(finished[i], `${label} never finished: ${run.frames.length} frames, last ${JSON.stringify(run.frames.at(-1))}, stats ${JSON.stringify(run.now?.stats)}`);
        assert.equal(run.error, null, `${label} failed: ${JSON.stringify(run.error)}`);
        const framesA = run.frames.filter((f) => f.epoch === epochA);
        const framesB = run.frames.filter((f) => f.epoch === epochB);
        assert.equal(framesA.length + framesB.length, run.frames.length, `${label}: every frame belongs to one of the two epochs`);
        assert.ok(framesA.length >= 30, `${label}: ${framesA.length} frames of the old epoch`);
        checkOldEpoch(framesA, label);
        const cmp = compare(pick(framesB), journalB);
        lines.push(`${label} (${run.final.role}): old epoch ${framesA.length} frames, new epoch ${cmp.summary}, duplicates dropped ${run.final.stats.duplicates}`);
        assert.ok(cmp.exact, `${label}: new epoch ${cmp.summary}`);
        assert.equal(run.final.stats.resets, 1, `${label}: one reset`);
      }
      ctx.figure("tabs", lines);
      ctx.figure("connections", settle);
      assert.equal(settle.after, settle.before, `no reconnect loop after the end: ${settle.before} → ${settle.after} connections`);
    });

    scenario(env, `21.2 a follower takes over at the new epoch's done after a reset: it delivers done once and stops ${tag}`, async (ctx) => {
      ctx.figure("transport", transport);
      ctx.figure("ids", ids);
      ctx.record.control = "none: the naive client has no leader to hand over from (21.1's control covers the reset)";
      const key = uniqueKey("reset-now-handover");
      await ctx.api.post(`/streams/${key}/reset?ids=${ids}`);
      const { tabs } = await nowTabs(ctx, key, 2, transport);
      const [leader, follower] = tabs;
      await ctx.api.post(`/streams/${key}/turns?tokens=300&rateHz=100`);
      await follower.until((run) => run.frames.length >= 20, null, { what: "20 frames of turn A" });
      const { epoch: epochB } = await ctx.api.post(`/streams/${key}/reset?ids=${ids}`);
      await ctx.api.post(`/streams/${key}/turns?tokens=100&rateHz=1000000`);
      await ctx.api.waitDone(key);
      // The leader goes the moment it rendered done: the follower leads from its own cursor.
      await leader.until((run) => run.done, null, { timeout: 15_000, what: "the leader to render done" });
      await leader.page.close();
      const done = await follower.within((run) => run.finished, null, 15_000);
      const settle = await connectionsSettle(ctx.api, key, 2500);
      const journalB = await ctx.api.journal(key);
      const run = await follower.run();
      assert.ok(done, `the follower never finished: ${run.frames.length} frames, last ${JSON.stringify(run.frames.at(-1))}, stats ${JSON.stringify(run.now?.stats)}`);
      const cmp = compare(pick(run.frames.filter((f) => f.epoch === epochB)), journalB);
      ctx.figure("follower", `new epoch ${cmp.summary}; role ${run.final.role}; connections ${settle.before} → ${settle.after}`);
      assert.ok(cmp.exact, `follower: new epoch ${cmp.summary}`);
      assert.equal(settle.after, settle.before, `no reconnect loop: ${settle.before} → ${settle.after} connections`);
    });
  }

  scenario(env, `21.3 from=now opened after the stream's done: open() resolves and the stream ends with done [${transport}]`, async (ctx) => {
    ctx.figure("transport", transport);
    ctx.record.control = "none: a naive EventSource on a finished stream shows the same nothing; the scenario checks a decision (docs/PROTOCOL.md)";
    const key = uniqueKey("now-after-done");
    await ctx.api.post(`/streams/${key}/turns?tokens=20&rateHz=1000000`);
    await ctx.api.waitDone(key);
    const journal = await ctx.api.journal(key);
    const group = await ctx.group();
    const config = { url: `/streams/${key}/events`, options: { key, events: ["token"], from: "now", transport } };
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await group.relay(config));
    const finished = await Promise.all(tabs.map((t) => t.within((run) => run.finished, null, 10_000)));
    const settle = await connectionsSettle(ctx.api, key, 1500);
    const lines = [];
    for (const [i, tab] of tabs.entries()) {
      const run = await tab.run();
      assert.ok(finished[i], `tab ${i} stayed pending: ${JSON.stringify({ frames: run.frames.length, now: run.now, openError: run.openError })}`);
      assert.equal(run.openError, undefined, `tab ${i}: open() rejected`);
      assert.deepEqual(pick(run.frames), [journal.at(-1)], `tab ${i}: exactly the done entry`);
      lines.push(`tab ${i}: ${run.frames.map((f) => f.event).join(",")} (${run.final.role})`);
    }
    ctx.figure("tabs", lines);
    ctx.figure("connections", settle);
    assert.equal(settle.after, settle.before, "no reconnect loop");
  });
}
