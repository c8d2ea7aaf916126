// Scenario 5: the stall. After 25 journaled frames a connection goes silent (`stallAfter=25`): no
// frame, not even a ping, but the socket stays open, so a native EventSource waits forever. The
// relay's watchdog (`heartbeatTimeoutMs: 1000`; the server pings every 300 ms, so a healthy
// connection is never silent that long) replaces it and resumes from the cursor; the turn completes.
// Measured: from the last frame before each stall to the `reconnecting` event (the watchdog) and to
// the next frame (the recovery).
import assert from "node:assert/strict";
import { compare, pick, matrix, suite, uniqueKey } from "./harness.mjs";

const env = suite({ pingMs: 300 });
const HEARTBEAT_MS = 1000;
const TOKENS = 60;
const STALL_AFTER = 25;
const turn = (key) => `/streams/${key}/turns?tokens=${TOKENS}&rateHz=0`;

matrix(env, "5 stall: stallAfter=25, heartbeatTimeoutMs=1000, watchdog reconnects", async (ctx, transport) => {
  await ctx.control(async () => {
    const key = uniqueKey("stall-naive");
    const tab = await ctx.naive({ url: `/streams/${key}/events?stallAfter=${STALL_AFTER}`, events: ["token"], dispatch: turn(key) });
    await ctx.api.waitDone(key);
    const completed = await tab.within((run) => run.done, null, 4000);
    const run = await tab.run();
    const cmp = compare(pick(run.frames), await ctx.api.journal(key));
    return {
      failed: !completed && !cmp.exact,
      detail: `naive EventSource on a stalled connection: ${completed ? "completed" : "not complete after 4 s"}, ${cmp.summary}`,
    };
  });

  const key = uniqueKey("stall-relay");
  const tab = await ctx.relay({
    url: `/streams/${key}/events?stallAfter=${STALL_AFTER}`,
    options: { key, events: ["token"], heartbeatTimeoutMs: HEARTBEAT_MS },
    dispatch: turn(key),
  });
  await tab.until((run) => run.finished, null, { timeout: 20_000, what: "the relay stream to finish" });
  const run = await tab.run();
  assert.equal(run.openError, undefined, `open() rejected: ${JSON.stringify(run.openError)}`);
  const cmp = compare(pick(run.frames), await ctx.api.journal(key));
  assert.ok(cmp.exact, `relay transcript: ${cmp.summary}`);

  // 61 entries, 25 per connection: stalls after frames 25 and 50.
  const reconnecting = run.events.filter((e) => e.type === "reconnecting");
  const stalls = [];
  for (const lastIndex of [STALL_AFTER - 1, 2 * STALL_AFTER - 1]) {
    const last = run.frames[lastIndex];
    const next = run.frames[lastIndex + 1];
    const watchdog = reconnecting.find((e) => e.at >= last.at);
    stalls.push({
      detectMs: watchdog ? Math.round(watchdog.at - last.at) : null,
      recoverMs: Math.round(next.at - last.at),
      cause: watchdog?.arg.cause ?? null,
      delayMs: watchdog?.arg.delayMs ?? null,
    });
  }
  ctx.figure("stalls", stalls);
  ctx.figure("stallReconnectMs", stalls.map((s) => s.detectMs));
  ctx.figure("stallRecoveryMs", stalls.map((s) => s.recoverMs));
  assert.equal(run.final.stats.stalls, 2, `stats.stalls = ${run.final.stats.stalls}`);
  assert.ok(run.final.stats.reconnects >= 2, `stats.reconnects = ${run.final.stats.reconnects}`);
  for (const s of stalls) {
    assert.notEqual(s.detectMs, null, "a reconnecting event after each stall");
    // The frames arrive in a burst, so the last frame is the start of the silence (give or take
    // the page's event loop); the watchdog may fire up to one timer tick late on a loaded machine.
    assert.ok(s.detectMs >= HEARTBEAT_MS - 250 && s.detectMs <= HEARTBEAT_MS + 1000, `watchdog fired ${s.detectMs} ms after the last frame`);
  }
});
