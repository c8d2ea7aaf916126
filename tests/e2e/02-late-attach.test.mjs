// Scenario 2: late attach after completion. The turn has finished before the page
// attaches. `from: "start"` replays the whole journal: every token and `done`, exactly once. The
// naive page attaching with `from=now` (a no-replay broker) gets `done` alone: the turn's tokens
// are gone (a server speaking protocol v1 answers a live-only attach after the end with `done`).
import assert from "node:assert/strict";
import { compare, pick, matrix, suite, uniqueKey } from "./harness.mjs";

const env = suite();
const TOKENS = 50;

async function finishedTurn(ctx, label) {
  const key = uniqueKey(label);
  await ctx.api.post(`/streams/${key}/turns?tokens=${TOKENS}&rateHz=0`);
  await ctx.api.waitDone(key);
  return { key, journal: await ctx.api.journal(key) };
}

matrix(env, "2 late attach after completion: from start, whole transcript and done once", async (ctx, transport) => {
  await ctx.control(async () => {
    const { key, journal } = await finishedTurn(ctx, "late-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events?from=now`, events: ["token"] });
    await tab.until((run) => run.opens.length >= 1, null, { what: "the naive stream to open" });
    await tab.within((run) => run.done, null, 2000);
    const run = await tab.run();
    const cmp = compare(pick(run.frames), journal);
    return {
      failed: !cmp.exact,
      detail: `naive from=now attaching after done: ${run.frames.length} frames and ${run.done ? "done" : "no done"} within 2 s (${cmp.summary})`,
    };
  });

  const { key, journal } = await finishedTurn(ctx, "late-relay");
  const tab = await ctx.relay({ url: `/streams/${key}/events`, options: { key, events: ["token"], from: "start" } });
  await tab.until((run) => run.finished, null, { timeout: 15_000, what: "the relay stream to finish" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  const cmp = compare(pick(run.frames), journal);
  assert.ok(cmp.exact, `relay transcript: ${cmp.summary}`);
  assert.equal(run.frames.filter((f) => f.event === "done").length, 1, "done exactly once");
  assert.equal(run.done, true);
  assert.equal(run.final.state, "closed");
  assert.equal(run.final.stats.delivered, journal.length, "stats.delivered counts every frame handed out");
  assert.deepEqual(run.final.cursor, { id: journal.at(-1).id, epoch: run.final.epoch });
});
