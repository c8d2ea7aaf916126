// Scenario 4: the replay/live overlap (DESIGN.md §1.4). The page attaches mid-turn, so the server
// replays the journal and then tails live frames; `dupSeam=5` sends the last 5 replayed frames again
// at the seam, as if they also came live. The relay drops them by id: every frame once and
// `stats.duplicates` >= 1. The naive page renders them twice.
import assert from "node:assert/strict";
import { compare, pick, scenario, suite, uniqueKey } from "./harness.mjs";

const env = suite();
const SEAM = 5;

/** Starts a 2 s turn and waits until 20 of its tokens are in the journal (so there is a replay). */
async function midTurn(ctx, label) {
  const key = uniqueKey(label);
  await ctx.api.post(`/streams/${key}/turns?tokens=100&rateHz=50`);
  await ctx.api.waitStats(key, (s) => s.length >= 20, { what: "20 tokens" });
  return key;
}

scenario(env, "4 replay/live overlap: dupSeam=5 on a mid-turn attach", async (ctx) => {
  await ctx.control(async () => {
    const key = await midTurn(ctx, "seam-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events?dupSeam=${SEAM}`, events: ["token"] });
    await ctx.api.waitDone(key);
    await tab.until((run) => run.done, null, { timeout: 10_000, what: "the naive stream to finish" });
    const cmp = compare(pick((await tab.run()).frames), await ctx.api.journal(key));
    return { failed: cmp.duplicateCount > 0, detail: `naive mid-turn attach: ${cmp.summary}` };
  });

  const key = await midTurn(ctx, "seam-relay");
  const tab = await ctx.relay({ url: `/streams/${key}/events?dupSeam=${SEAM}`, options: { key, events: ["token"] } });
  await tab.until((run) => run.finished, null, { timeout: 15_000, what: "the relay stream to finish" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  const cmp = compare(pick(run.frames), await ctx.api.journal(key));
  ctx.figure("duplicatesDropped", run.final.stats.duplicates);
  assert.ok(cmp.exact, `relay transcript: ${cmp.summary}`);
  assert.ok(run.final.stats.duplicates >= 1, `stats.duplicates = ${run.final.stats.duplicates}`);
  assert.equal(run.final.stats.reconnects, 0);
});
