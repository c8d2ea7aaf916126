// Scenario 8: malformed input. With `garbage=1` the server sends, right after `ready`, a second
// `ready` whose data is not JSON, a `token` frame with an empty `id:` and a ~256 KiB `token` frame
// with an empty `id:`; then the stream goes on. The relay counts and reports each (`malformed`
// events, `stats.malformed`), delivers none of them, and the transcript is the journal exactly.
// The naive page renders the noise frames as tokens.
import assert from "node:assert/strict";
import { compare, pick, matrix, suite, uniqueKey } from "./harness.mjs";

const env = suite();
const turn = (key) => `/streams/${key}/turns?tokens=100&rateHz=0`;

matrix(env, "8 malformed input (garbage=1): counted, reported, stream goes on", async (ctx, transport) => {
  await ctx.control(async () => {
    const key = uniqueKey("garbage-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events?garbage=1`, events: ["token"], dispatch: turn(key) });
    await ctx.api.waitDone(key);
    await tab.until((run) => run.done, null, { timeout: 10_000, what: "the naive stream to finish" });
    const run = await tab.run();
    const cmp = compare(pick(run.frames), await ctx.api.journal(key));
    return { failed: cmp.foreign > 0, detail: `naive page with garbage=1: ${cmp.summary}` };
  });

  const key = uniqueKey("garbage-relay");
  // The noise comes right after `ready`, so it is reported while open() is still pending (with the
  // fetch transport the whole burst is parsed from one read before open() resolves): the page listens
  // through the `on` option of open() (`listenEarly`), which sees it all.
  const tab = await ctx.relay({ url: `/streams/${key}/events?garbage=1`, options: { key, events: ["token"] }, dispatch: turn(key), listenEarly: true });
  await tab.until((run) => run.finished, null, { timeout: 15_000, what: "the relay stream to finish" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  const cmp = compare(pick(run.frames), await ctx.api.journal(key));
  assert.ok(cmp.exact, `relay transcript: ${cmp.summary}`);
  const malformed = run.events.filter((e) => e.type === "malformed").map((e) => e.arg);
  ctx.figure("malformed", run.final.stats.malformed);
  ctx.figure("malformedEvents", malformed.map(({ kind, event, id, data }) => ({ kind, event, id, data: data?.slice(0, 40) })));
  assert.ok(run.final.stats.malformed >= 3, `stats.malformed = ${run.final.stats.malformed}`);
  assert.equal(malformed.length, run.final.stats.malformed, "every malformed input reaches the page as an event");
  for (const m of malformed) {
    assert.equal(typeof m.kind, "string");
    assert.equal(typeof m.message, "string");
  }
  assert.equal(run.final.stats.reconnects, 0, "the stream went on");
});
