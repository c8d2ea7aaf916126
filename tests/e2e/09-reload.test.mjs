// Scenario 9: a page reload mid-turn with `persistCursor: "session"`. The page renders part of a
// slow turn, is reloaded, and opens the stream again: the new page gets exactly the frames after
// the last one the old page rendered (old + new = the journal, no overlap, nothing lost). Both pages
// keep their transcript in sessionStorage as they render (`keepTranscript`), which is what the
// test compares. The naive page after a reload opens the same URL again and starts over.
import assert from "node:assert/strict";
import { compare, pick, matrix, suite, uniqueKey } from "./harness.mjs";

const env = suite();
const turn = (key) => `/streams/${key}/turns?tokens=80&rateHz=25`;

matrix(env, "9 reload with persistCursor session: resumes after the last rendered frame", async (ctx, transport) => {
  await ctx.control(async () => {
    const key = uniqueKey("reload-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events`, events: ["token"], keepTranscript: true });
    await tab.until((run) => run.opens.length >= 1, null, { what: "the naive stream to open" });
    await ctx.api.post(turn(key));
    await tab.until((run) => run.frames.length >= 15, null, { what: "15 frames" });
    await tab.page.reload();
    await tab.until((run) => run.done, null, { timeout: 15_000, what: "the reloaded naive page to finish" });
    const run = await tab.run();
    const cmp = compare(pick([...run.previous, ...run.frames]), await ctx.api.journal(key));
    return {
      failed: !cmp.exact,
      detail: `naive page reloaded after ${run.previous.length} frames: old + new = ${cmp.summary}`,
    };
  });

  const key = uniqueKey("reload-relay");
  const config = { url: `/streams/${key}/events`, options: { key, events: ["token"], persistCursor: "session" }, keepTranscript: true };
  const tab = await ctx.relay(config);
  await tab.until((run) => run.openedAt !== undefined, null, { what: "open() to resolve" });
  await ctx.api.post(turn(key));
  await tab.until((run) => run.frames.length >= 15, null, { what: "15 frames" });
  const connectionsBefore = tab.streams.length;
  await tab.page.reload();
  await tab.until((run) => run.finished, null, { timeout: 20_000, what: "the reloaded relay page to finish" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected after the reload: ${JSON.stringify(run.openError)}`);
  const journal = await ctx.api.journal(key);
  const old = pick(run.previous);
  const fresh = pick(run.frames);
  ctx.figure("oldPageFrames", old.length);
  ctx.figure("newPageFrames", fresh.length);
  ctx.figure("resumeUrl", tab.streams[connectionsBefore]?.url.replace(/^https?:\/\/[^/]+/, ""));
  assert.ok(old.length >= 15);
  const cmp = compare([...old, ...fresh], journal);
  assert.ok(cmp.exact, `old page + new page: ${cmp.summary}`);
  assert.equal(fresh[0].id, String(Number(old.at(-1).id) + 1), "the new page starts right after the old page's last frame");
});
