// Scenario 3: the gap across reconnects. The server ends every connection after
// 37 journaled frames (`dropAfter=37`) during a fast 500-token burst. The relay resumes each time
// from its cursor: every frame once, in order, with many reconnects. The naive page reconnects the
// way many apps do, with a NEW EventSource and so no cursor: from the start it renders the same
// frames again (and never gets past the first 37), from now it skips what came in the gap.
import assert from "node:assert/strict";
import { compare, pick, matrix, suite, uniqueKey } from "./harness.mjs";

const env = suite();
const TOKENS = 500;
const DROP_AFTER = 37;

matrix(env, "3 gap across reconnects: dropAfter=37 during a 500-token burst", async (ctx, transport) => {
  await ctx.control(async () => {
    const details = [];
    let failed = true;
    for (const from of ["start", "now"]) {
      const key = uniqueKey(`gap-naive-${from}`);
      const tab = await ctx.naive({
        url: `/streams/${key}/events?from=${from}&dropAfter=${DROP_AFTER}`,
        events: ["token"],
        dispatch: `/streams/${key}/turns?tokens=${TOKENS}&rateHz=0`,
        reconnect: "app",
      });
      await ctx.api.waitDone(key);
      const journal = await ctx.api.journal(key);
      // Let it reconnect a few times after the turn ended (from=now meets `done` at once then);
      // a correct client would be done by now.
      await tab.until((run) => run.connections >= 4 || run.done, null, { timeout: 10_000, what: "naive reconnects or done" });
      await tab.within((run) => run.done, null, 1000);
      const run = await tab.run();
      const cmp = compare(pick(run.frames), journal);
      failed &&= from === "start" ? cmp.duplicateCount > 0 : cmp.missing.length > 0;
      details.push(`from=${from}, ${run.connections} connections: ${cmp.summary}`);
    }
    return { failed, detail: `naive app-level reconnect without cursor: ${details.join(" | ")}` };
  });

  const key = uniqueKey("gap-relay");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?dropAfter=${DROP_AFTER}`,
    options: { key, events: ["token"] },
    dispatch: `/streams/${key}/turns?tokens=${TOKENS}&rateHz=0`,
  });
  const started = Date.now();
  await tab.until((run) => run.finished, null, { timeout: 60_000, what: "the relay stream to finish" });
  ctx.figure("relaySeconds", (Date.now() - started) / 1000);
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  const journal = await ctx.api.journal(key);
  const cmp = compare(pick(run.frames), journal);
  ctx.figure("reconnects", run.final.stats.reconnects);
  ctx.figure("connections", tab.streams.length);
  assert.ok(cmp.exact, `relay transcript: ${cmp.summary}`);
  assert.ok(run.final.stats.reconnects > 0, "reconnects > 0");
  // 501 entries, 37 per connection: at least 14 connections.
  assert.ok(tab.streams.length >= Math.ceil(journal.length / DROP_AFTER), `${tab.streams.length} connections`);
});
