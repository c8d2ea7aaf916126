// Scenario 30: the cockpit of `npm start` (issue 6). Two tabs of the cockpit page (www/index.html)
// in ONE browser context share a stream: one leads, one follows. The follower sends a prompt;
// mid-turn the page's own buttons arm a seam duplicate and cut the connection (live faults,
// POST /streams/{key}/faults). Both tabs' transcripts must be the server's journal exactly, and
// the naive EventSource panel beside them must not be (the negative control). Screenshots of
// both tabs go to target/cockpit/. A second turn, sent by the leader, checks the multi-turn
// hand-over; a second scenario clicks every other fault button (garbage, stall, slow join, reset).
//
// The server is the one `npm start` runs (the reference server binary serving www/), started by
// the harness on a free port: `--port 0 --static www`, pings every 300 ms.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, Tab, compare, scenario, suite, uniqueKey, waitFor } from "./harness.mjs";

const env = suite();
const SHOTS = join(ROOT, "target/cockpit");
const VIEWPORT = { width: 1440, height: 900 };

/** Opens the cockpit at `url` in a new tab of `context`; resolves once its stream is open. */
async function cockpitTab(ctx, context, url) {
  const page = await context.newPage();
  const tab = new Tab(context, page, env.base);
  ctx.tabs.push(tab);
  await page.goto(url);
  await page.waitForFunction(() => window.cockpit?.snapshot().opened, null, { timeout: 20_000 });
  return tab;
}

/**
 * Two cockpit tabs in one browser context, on the stream `session`; resolves
 * `{ leader, follower, context, url }`.
 */
async function twoTabs(ctx, session, query = "") {
  const context = await env.browser.newContext({ viewport: VIEWPORT });
  const url = `${env.base}/?key=${session}${query}`;
  const tabs = [];
  for (let i = 0; i < 2; i += 1) tabs.push(await cockpitTab(ctx, context, url));
  const roles = await waitFor(async () => {
    const snaps = await Promise.all(tabs.map(snapshot));
    const roles = snaps.map((s) => s.stream?.role);
    return roles.includes("leader") && roles.includes("follower") ? roles : null;
  }, { timeout: 10_000, what: "one leader and one follower" });
  const [leader, follower] = roles[0] === "leader" ? tabs : [tabs[1], tabs[0]];
  return { leader, follower, context, url };
}

const snapshot = (tab) => tab.page.evaluate(() => window.cockpit.snapshot());

/** Types a prompt into `tab` and clicks Send once the page allows it (open() resolved). */
async function send(tab, text, tokens, rate) {
  await tab.page.waitForFunction(() => window.cockpit.snapshot().canSend, null, { timeout: 10_000 });
  await tab.page.fill("#prompt", text);
  await tab.page.fill("#tokens", String(tokens));
  await tab.page.fill("#rate", String(rate));
  await tab.page.click("#send");
}

/**
 * Waits until both tabs finished the turn on `key`: the relay got `done`, and the naive client got
 * it too (`naiveDone`) or, unless `naiveDone` is required, the page moved on to the next turn.
 */
async function turnFinished(tabs, key, { timeout = 30_000, naiveDone = false } = {}) {
  for (const tab of tabs) {
    await tab.page.waitForFunction(
      ({ key, naiveDone }) => {
        const snap = window.cockpit.snapshot();
        const t = snap.turns[key];
        return t?.relayDone && (t.naiveDone || (!naiveDone && snap.turnNo > t.n));
      },
      { key, naiveDone },
      { timeout, polling: 50 },
    );
  }
  return Promise.all(tabs.map(async (tab) => (await snapshot(tab)).turns[key]));
}

/** Clicks a fault button and waits for the page to log its answer. */
async function clickFault(tab, id, logged) {
  const before = (await snapshot(tab)).log.length;
  await tab.page.click(`#${id}`);
  await tab.page.waitForFunction(
    ({ before, logged }) => window.cockpit.snapshot().log.slice(before).some((l) => l.includes(logged)),
    { before, logged },
    { timeout: 10_000 },
  );
}

/** Asserts the turn on `key` is still running (a fault clicked after `done` would prove nothing). */
async function stillRunning(ctx, key, what) {
  const stats = await ctx.api.stats(key);
  assert.ok(!stats.done, `${what} came after the turn ended (${stats.length} entries): too slow a machine for this turn's length`);
  return stats.length;
}

const slug = (label) => uniqueKey(label).replace(/[^A-Za-z0-9_-]/g, "-");

scenario(env, "30 cockpit: two tabs, prompt from the follower, seam duplicate + cut mid-turn", async (ctx) => {
  const session = slug("cockpit");
  const { leader, follower, context } = await twoTabs(ctx, session);
  const key = `${session}.1`;

  await send(follower, "Why does a cursor beat content-based dedup?", 160, 20);
  await ctx.api.waitStats(key, (s) => s.length >= 30, { what: "30 entries of the turn" });
  await clickFault(follower, "fault-dup", "seam duplicate");
  const armed = (await ctx.api.stats(key)).armed.dupSeam;
  assert.ok(armed && armed.value === 5 && armed.connections >= 3, `armed: ${JSON.stringify(armed)}`);
  await clickFault(follower, "fault-cut", "cut:");
  ctx.figure("cutAtEntry", await stillRunning(ctx, key, "the cut"));

  await ctx.api.waitDone(key, { timeout: 20_000 });
  const journal = await ctx.api.journal(key);
  assert.equal(journal.length, 162, "prompt + 160 tokens + done");
  const [lt, ft] = await turnFinished([leader, follower], key);

  for (const [name, turn] of [["leader", lt], ["follower", ft]]) {
    const cmp = compare(turn.relay, journal);
    assert.ok(cmp.exact, `${name} tab's transcript: ${cmp.summary}`);
    assert.ok(turn.verdict.exact, `${name} tab's verdict: ${turn.verdict.text}`);
  }
  assert.equal(lt.final.role, "leader");
  assert.equal(ft.final.role, "follower");
  assert.ok(lt.final.stats.reconnects >= 1, `leader reconnects: ${lt.final.stats.reconnects}`);
  assert.ok(lt.final.stats.duplicates >= 1, `leader duplicates dropped: ${lt.final.stats.duplicates}`);
  // One connection per stream per browser: the leader's page made the relay's requests, the
  // follower's page only those of its naive EventSource (its first one and one per reconnect).
  const requests = (tab) => tab.streams.filter((s) => s.url.startsWith(`${env.base}/streams/${key}/events`)).length;
  assert.equal(requests(follower), 1 + ft.naiveReconnects, "the follower tab's relay opened no connection");
  assert.equal(requests(leader), 1 + lt.naiveReconnects + lt.final.stats.connections, "the leader tab's requests");
  ctx.figure("leaderStats", lt.final.stats);
  ctx.figure("followerStats", ft.final.stats);
  // The page says so too.
  for (const tab of [leader, follower]) {
    const verdict = await tab.page.locator("#relay-transcript .turn").first().locator(".verdict").textContent();
    assert.match(verdict, /^✓ 160 of 160 tokens, each once, in order/);
  }

  await ctx.control(async () => {
    const details = [];
    let failed = true;
    for (const [name, turn] of [["leader", lt], ["follower", ft]]) {
      const cmp = compare(turn.naive, journal);
      details.push(`${name} tab's naive panel: ${cmp.summary} (${turn.naiveReconnects} reconnects; page says "${turn.naiveVerdict.text}")`);
      failed &&= !cmp.exact && cmp.duplicateCount > 0 && !turn.naiveVerdict.exact;
    }
    return { failed, detail: details.join("; ") };
  });

  mkdirSync(SHOTS, { recursive: true });
  await leader.page.screenshot({ path: join(SHOTS, "leader.png") });
  await follower.page.screenshot({ path: join(SHOTS, "follower.png") });

  // Turn 2, from the leader, no faults: every tab moved to the next stream by itself, and there
  // the naive panel is exact too (it differs only under faults).
  const key2 = `${session}.2`;
  await send(leader, "And a second question.", 40, 80);
  await ctx.api.waitDone(key2, { timeout: 20_000 });
  const journal2 = await ctx.api.journal(key2);
  const turns2 = await turnFinished([leader, follower], key2, { naiveDone: true });
  for (const [name, turn] of [["leader", turns2[0]], ["follower", turns2[1]]]) {
    const cmp = compare(turn.relay, journal2);
    assert.ok(cmp.exact, `turn 2, ${name} tab: ${cmp.summary}`);
    const naive = compare(turn.naive, journal2);
    assert.ok(naive.exact, `turn 2 without faults, ${name} tab's naive panel: ${naive.summary}`);
  }
  assert.equal(JSON.parse(journal2[0].data).text, "And a second question.");
  ctx.figure("turn2Roles", turns2.map((t) => t.final.role));

  // A third tab opened on the bare address (the stream key this browser used last) shows the
  // finished turns from the journal and follows turn 3.
  const third = await cockpitTab(ctx, context, `${env.base}/`);
  const late = await snapshot(third);
  assert.equal(late.session, session);
  assert.equal(late.key, `${session}.3`);
  assert.equal(late.stream.role, "follower");
  await third.page.waitForFunction(() => document.querySelectorAll("#relay-transcript .turn .verdict.ok").length === 2, null, { timeout: 10_000 });
});

scenario(env, "30 cockpit: garbage, stall, slow join and reset buttons keep both tabs whole", async (ctx) => {
  const session = slug("cockpit-faults");
  // A short heartbeat (the server pings every 300 ms) so the stall is noticed quickly.
  const { leader, follower } = await twoTabs(ctx, session, "&heartbeat=1500");

  // Turn 1: garbage, then a slow join armed and a stall: the leader notices the silence,
  // reconnects, and joins late.
  const key = `${session}.1`;
  await send(follower, "Garbage and silence.", 300, 25);
  await ctx.api.waitStats(key, (s) => s.length >= 20, { what: "20 entries" });
  await clickFault(leader, "fault-garbage", "garbage sent");
  await clickFault(follower, "fault-slow", "slow join");
  await clickFault(follower, "fault-stall", "stall:");
  ctx.figure("stallAtEntry", await stillRunning(ctx, key, "the stall"));
  await ctx.api.waitDone(key, { timeout: 30_000 });
  const journal = await ctx.api.journal(key);
  const [lt, ft] = await turnFinished([leader, follower], key);
  for (const [name, turn] of [["leader", lt], ["follower", ft]]) {
    const cmp = compare(turn.relay, journal);
    assert.ok(cmp.exact, `${name} tab's transcript: ${cmp.summary}`);
  }
  assert.ok(lt.final.stats.malformed >= 1, `leader malformed: ${lt.final.stats.malformed}`);
  assert.ok(lt.final.stats.stalls >= 1, `leader stalls: ${JSON.stringify(lt.final)} follower ${JSON.stringify(ft.final)}\n${(await snapshot(leader)).log.join("\n")}`);
  const naive = [lt, ft].map((turn) => ({ what: "garbage + stall", cmp: compare(turn.naive, journal), page: turn.naiveVerdict }));
  ctx.figure("garbageStallLeader", lt.final.stats);

  // Turn 2: reset mid-turn from the follower: the journal restarts (new epoch) and the page
  // regenerates the prompt; both tabs show exactly the new epoch's journal.
  const key2 = `${session}.2`;
  await send(follower, "Reset me.", 200, 30);
  await ctx.api.waitStats(key2, (s) => s.length >= 25, { what: "25 entries" });
  const epochBefore = (await ctx.api.stats(key2)).epoch;
  await stillRunning(ctx, key2, "the reset");
  await clickFault(follower, "fault-reset", "reset: epoch");
  await ctx.api.waitStats(key2, (s) => s.epoch !== epochBefore && s.done, { timeout: 30_000, what: "the regenerated turn" });
  const journal2 = await ctx.api.journal(key2);
  assert.equal(journal2.length, 202);
  const turns2 = await turnFinished([leader, follower], key2);
  for (const [name, turn] of [["leader", turns2[0]], ["follower", turns2[1]]]) {
    const cmp = compare(turn.relay, journal2);
    assert.ok(cmp.exact, `after the reset, ${name} tab's transcript: ${cmp.summary}`);
    assert.ok(turn.final.stats.resets >= 1, `${name} resets: ${turn.final.stats.resets}`);
    assert.ok(turn.verdict.exact, turn.verdict.text);
  }
  naive.push(...turns2.map((turn) => ({ what: "reset", cmp: compare(turn.naive, journal2), page: turn.naiveVerdict })));
  await leader.page.screenshot({ path: join(SHOTS, "faults-leader.png") });

  // The naive panels, under the same faults: never the journal, and the page says so.
  await ctx.control(async () => ({
    failed: naive.every((n) => !n.cmp.exact && !n.page.exact),
    detail: naive.map((n) => `${n.what}: ${n.cmp.summary} (page: "${n.page.text}")`).join("; "),
  }));
});
