// Scenario 7: a journal reset. Mid-turn the journal is wiped (`POST /reset`): new epoch, ids restart
// at 1, open streams end. Then a new turn (B) is appended. The relay sees the new epoch in `ready`,
// tells the page (`reset` event), drops its cursor and dedup state and delivers B whole. The naive
// page lets the browser reconnect with its old Last-Event-ID and no epoch: the server reads that
// id in the new epoch and skips B's first frames (or all of them).
import assert from "node:assert/strict";
import { compare, pick, matrix, suite, uniqueKey } from "./harness.mjs";

const env = suite();
const B_TOKENS = 60;

/** Turn B: B_TOKENS token frames whose data says they belong to B, then done. */
async function appendTurnB(ctx, key) {
  for (let i = 0; i < B_TOKENS; i++) await ctx.api.append(key, "token", JSON.stringify({ turn: "B", i }));
  await ctx.api.append(key, "done", JSON.stringify({ turn: "B" }));
}
const isB = (frame) => frame.data.includes('"turn":"B"');

matrix(env, "7 journal reset mid-stream: reset event, then the new epoch whole", async (ctx, transport) => {
  await ctx.control(async () => {
    const key = uniqueKey("reset-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events`, events: ["token"], dispatch: `/streams/${key}/turns?tokens=200&rateHz=50` });
    await tab.until((run) => run.frames.length >= 20, null, { what: "20 frames of turn A" });
    await ctx.api.post(`/streams/${key}/reset`);
    await appendTurnB(ctx, key);
    const journalB = await ctx.api.journal(key);
    // The browser reconnects by itself (about 3 s); give it 6 s to render B.
    await tab.within((run) => run.done, null, 6000);
    const run = await tab.run();
    const cmp = compare(pick(run.frames.filter(isB)), journalB);
    const seenA = run.frames.filter((f) => !isB(f)).length;
    return {
      failed: !cmp.exact,
      detail: `naive page after a reset (had ${seenA} frames of the old epoch, browser reconnect with Last-Event-ID): new epoch ${cmp.summary}`,
    };
  });

  const key = uniqueKey("reset-relay");
  const tab = await ctx.relay({
    url: `/streams/${key}/events`,
    options: { key, events: ["token"] },
    dispatch: `/streams/${key}/turns?tokens=200&rateHz=50`,
  });
  await tab.until((run) => run.frames.length >= 20, null, { what: "20 frames of turn A" });
  const epochA = (await tab.run()).atOpen.epoch;
  const { epoch: epochB } = await ctx.api.post(`/streams/${key}/reset`);
  await appendTurnB(ctx, key);
  const journalB = await ctx.api.journal(key);
  await tab.until((run) => run.finished, null, { timeout: 20_000, what: "the relay stream to finish" });
  const run = await tab.run();

  const resets = run.events.filter((e) => e.type === "reset");
  assert.equal(resets.length, 1, `one reset event: ${JSON.stringify(resets)}`);
  assert.deepEqual(resets[0].arg, { previousEpoch: epochA, epoch: epochB });
  const framesA = run.frames.filter((f) => f.epoch === epochA);
  const framesB = run.frames.filter((f) => f.epoch === epochB);
  assert.equal(framesA.length + framesB.length, run.frames.length, "every frame belongs to one of the two epochs");
  assert.ok(framesA.length >= 20);
  framesA.forEach((f, i) => {
    assert.equal(f.id, String(i + 1), "old epoch: ids 1, 2, 3… without hole or repeat");
    assert.equal(JSON.parse(f.data).i, i);
  });
  assert.ok(run.frames.indexOf(framesB[0]) === framesA.length, "the new epoch's frames follow the old ones");
  assert.ok(resets[0].at <= framesB[0].at, "the page is told of the reset before the new epoch's first frame");
  const cmp = compare(pick(framesB), journalB);
  assert.ok(cmp.exact, `new epoch: ${cmp.summary}`);
  assert.equal(run.final.stats.resets, 1);
  ctx.figure("oldEpochFrames", framesA.length);
  ctx.figure("reconnects", run.final.stats.reconnects);
});
