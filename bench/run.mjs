// `npm run bench`: sse-relay against raw EventSource and the npm clients people use today, side by
// side in one run, in headless Chromium against the reference server's bench mode (issue #8,
// the project's targets). Writes bench/results.json and bench/RESULTS.md.
//
// Environment: BENCH_FRAMES (throughput journal, default 200000), BENCH_RUNS (throughput runs per client, default 5), BENCH_FAILOVERS (default 10),
// BENCH_MEMORY_FRAMES (default 1000000), BENCH_SCALE_TABS (default 1,4,8,16), BENCH_SCALE_FRAMES
// (default 50000), BENCH_CLIENTS=raw,relay-fetch,... (throughput clients), BENCH_SKIP_BUILD=1 (use pkg/ and the release server as
// they are), BENCH_PROFILE=0 (skip the CPU profiles and the crossing counts), BENCH_ONLY=a,b (only
// these sections: throughput, latency, fanout, scaling, tabs, failover, memory, profiles; writes only
// target/bench-details.json).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { chromium } from "playwright-core";
import { buildSite } from "./site.mjs";
import { aggregateProfile } from "./profile.mjs";
import { writeReport } from "./report.mjs";
import { breakdown } from "./wasm-size.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FAILOVERS = Number(process.env.BENCH_FAILOVERS ?? 10);
const MEMORY_FRAMES = Number(process.env.BENCH_MEMORY_FRAMES ?? 1_000_000);
const PROFILE = process.env.BENCH_PROFILE !== "0";
const THROUGHPUT_FRAMES = Number(process.env.BENCH_FRAMES ?? 200_000);
const FRAME_BYTES = 60;
const PACED_FRAMES = 3000;
const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
  // gc() in the page (memory figures after a full collection) and unrounded performance.memory.
  "--js-flags=--expose-gc", "--enable-precise-memory-info",
];

const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
const log = (...args) => console.log(`[bench ${elapsed()}]`, ...args);
const nodeClock = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Statistics

const sorted = (xs) => [...xs].sort((a, b) => a - b);
function quantile(xs, q) {
  const s = sorted(xs);
  if (!s.length) return null;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return s[lo] + (s[hi] - s[lo]) * (i - lo);
}
const median = (xs) => quantile(xs, 0.5);
const round = (x, digits = 3) => (x === null || x === undefined ? x : Number(x.toFixed(digits)));

// ---------------------------------------------------------------------------------------------
// Results

const results = [];
function record(name, unit, value, extra = {}) {
  const entry = { name, unit, value: typeof value === "number" ? round(value) : value, ...extra };
  if (entry.baseline !== undefined && typeof value === "number" && typeof entry.baseline === "number" && entry.baseline !== 0) {
    entry.baseline = round(entry.baseline);
    entry.ratio = round(value / entry.baseline);
  }
  results.push(entry);
  log(`${name}: ${entry.value} ${unit}${entry.ratio !== undefined ? ` (×${entry.ratio} of ${entry.baseline})` : ""}`);
  return entry;
}

// ---------------------------------------------------------------------------------------------
// Build, site, server, browser

function sh(cmd, args) {
  execFileSync(cmd, args, { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
}

async function startServer(site) {
  const bin = join(ROOT, "target/release/sse-relay-server");
  const child = spawn(bin, [
    "--port", "0", "--static", site, "--lifetime-secs", "3600", "--ping-ms", "15000", "--retention", "3000000",
  ], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolveUrl, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("the reference server did not start in 15 s")), 15_000);
    child.on("exit", (code) => reject(new Error(`the reference server exited with ${code}`)));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /^listening on (http:\/\/\S+)\n/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
  });
  child.stdout.resume();
  return { url, child, close: () => child.kill("SIGTERM") };
}

let BASE;
async function post(path) {
  const response = await fetch(BASE + path, { method: "POST" });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}
async function stats(key) {
  return (await fetch(`${BASE}/streams/${key}/stats`)).json();
}

let browser;
async function openPage(context, query = "") {
  const page = await context.newPage();
  page.on("pageerror", (e) => log(`page error: ${e.message}`));
  await page.goto(`${BASE}/index.html${query}`);
  await page.waitForFunction(() => window.benchReady === true);
  return page;
}

/** Fresh context + page, `fn(page)`, then both closed. */
async function inFreshPage(fn, query = "") {
  const context = await browser.newContext();
  try {
    return await fn(await openPage(context, query), context);
  } finally {
    await context.close();
  }
}

/** `[id, t, id, t, ...]` times of a page whose clock is `offset` ahead of node's, on node's clock. */
const onNodeClock = (times, offset) => times.map((v, i) => (i % 2 ? v - offset : v));

/** The page's clock minus node's (ms), from the round trip with the smallest delay. */
async function clockOffset(page) {
  let best = null;
  for (let i = 0; i < 15; i++) {
    const a = nodeClock();
    const p = await page.evaluate(() => window.bench.clock());
    const b = nodeClock();
    if (!best || b - a < best.rtt) best = { rtt: b - a, offset: p - (a + b) / 2 };
  }
  return best;
}

/** CPU time so far (s) of a page's main thread and of its whole renderer process (CDP metrics). */
async function cpuMeter(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  const read = async () => {
    const { metrics } = await cdp.send("Performance.getMetrics");
    const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
    return { thread: m.ThreadTime, process: m.ProcessTime };
  };
  const start = await read();
  return async () => {
    const end = await read();
    return { thread: end.thread - start.thread, process: end.process - start.process };
  };
}

// ---------------------------------------------------------------------------------------------
// Throughput

const ALL_THROUGHPUT_CLIENTS = [
  { id: "raw", label: "raw EventSource + JSON.parse (baseline)", client: "raw" },
  { id: "relay-eventsource", label: "sse-relay, transport eventsource", client: "relay", options: { transport: "eventsource" } },
  { id: "relay-fetch", label: "sse-relay, transport fetch", client: "relay", options: { transport: "fetch" } },
  { id: "relay-fetch-batches", label: "sse-relay, transport fetch, read with stream.batches()", client: "relay", options: { transport: "fetch", batches: true } },
  { id: "relay-follower", label: "sse-relay, follower tab (leader on eventsource)", follower: true, options: { transport: "eventsource" } },
  { id: "relay-follower-fetch", label: "sse-relay, follower tab (leader on fetch)", follower: true, options: { transport: "fetch" } },
  { id: "fetch-event-source", label: "@microsoft/fetch-event-source", client: "fetch-event-source" },
  { id: "reconnecting-eventsource", label: "reconnecting-eventsource", client: "reconnecting-eventsource" },
  { id: "event-source-polyfill", label: "event-source-polyfill", client: "event-source-polyfill" },
];
// BENCH_CLIENTS=raw,relay-fetch,...: only these (a partial run, for working on one figure).
const THROUGHPUT_CLIENTS = process.env.BENCH_CLIENTS
  ? ALL_THROUGHPUT_CLIENTS.filter((c) => process.env.BENCH_CLIENTS.split(",").includes(c.id))
  : ALL_THROUGHPUT_CLIENTS;
const EXPECTED = THROUGHPUT_FRAMES + 1; // the tokens and `done`

function verdict(res, expected) {
  if (res.error) return `failed: ${res.error.split("\n")[0]}`;
  if (res.count !== expected) return `failed: ${res.count} of ${expected} frames`;
  if (res.outOfOrder) return `failed: ${res.outOfOrder} frames out of order or repeated`;
  return null;
}

async function throughputRun(spec, run) {
  if (!spec.follower) {
    return inFreshPage(async (page, context) => {
      await page.evaluate((c) => window.bench.preload(c), spec.client);
      const cpu = await cpuMeter(context, page);
      const res = await page.evaluate((a) => window.bench.throughput(a), {
        client: spec.client,
        url: "/streams/tp/events",
        options: { ...spec.options, key: `tp-${spec.id}-${run}` },
      });
      res.cpu = await cpu();
      return res;
    });
  }
  // Two tabs of one context share the key: the first leads (its own connection, on the row's
  // transport), the second follows. The journal is empty when both are ready; the clock starts at
  // the fill request, which publishes the same frames live. The leader's own delivery rate is
  // measured in the same run, from the same fill request (both pages' clocks put on node's).
  const key = `fo-${spec.id}-${run}`;
  const url = `/streams/${key}/events`;
  const options = { key, from: "start", ...spec.options };
  const context = await browser.newContext();
  try {
    const leader = await openPage(context);
    const lead = await leader.evaluate((a) => window.bench.begin("leader", a), { url, options });
    const follower = await openPage(context);
    await follower.evaluate((c) => window.bench.preload(c), "relay");
    const [offL, offF] = [await clockOffset(leader), await clockOffset(follower)];
    const cpus = [await cpuMeter(context, leader), await cpuMeter(context, follower)];
    const res = await follower.evaluate((a) => window.bench.throughput(a), {
      client: "relay",
      url,
      options,
      fillUrl: `/streams/${key}/fill?frames=${THROUGHPUT_FRAMES}&bytes=${FRAME_BYTES}`,
    });
    const leaderRes = await leader.evaluate(() => window.bench.end("leader", { withTimes: false }));
    const leaderMs = leaderRes.endAt - offL.offset - (res.startAt - offF.offset);
    res.leader = { role: lead.role, count: leaderRes.count, ms: leaderMs, rate: leaderRes.count / (leaderMs / 1000), error: verdict(leaderRes, EXPECTED) };
    const [cl, cf] = [await cpus[0](), await cpus[1]()];
    // Both tabs work for the follower's frames: the CPU of the pipeline is the sum.
    res.cpu = { thread: cl.thread + cf.thread, process: cl.process + cf.process, leader: cl, follower: cf };
    if (lead.role !== "leader" || res.role !== "follower") res.error ??= `roles were ${lead.role}/${res.role}, not leader/follower`;
    if (res.leader.error) res.error ??= `the leader ${res.leader.error}`;
    return res;
  } finally {
    await context.close();
  }
}

async function throughput() {
  log(`throughput: filling ${THROUGHPUT_FRAMES} frames of ${FRAME_BYTES} bytes`);
  const fill = await post(`/streams/tp/fill?frames=${THROUGHPUT_FRAMES}&bytes=${FRAME_BYTES}`);
  if (fill.length !== EXPECTED) throw new Error(`fill: ${JSON.stringify(fill)}`);
  const samples = Object.fromEntries(THROUGHPUT_CLIENTS.map((c) => [c.id, []]));
  const cpuSamples = Object.fromEntries(THROUGHPUT_CLIENTS.map((c) => [c.id, []]));
  const failures = Object.fromEntries(THROUGHPUT_CLIENTS.map((c) => [c.id, []]));
  // Follower rows: the leader's own rate in the same run, and the follower's rate over it.
  const leaders = Object.fromEntries(THROUGHPUT_CLIENTS.map((c) => [c.id, []]));
  for (let run = 1; run <= RUNS; run++) {
    // Rotate the order so no client always runs first or last.
    const order = THROUGHPUT_CLIENTS.map((_, i) => THROUGHPUT_CLIENTS[(i + run - 1) % THROUGHPUT_CLIENTS.length]);
    for (const spec of order) {
      const res = await throughputRun(spec, run);
      const failed = verdict(res, EXPECTED);
      const rate = res.count / (res.ms / 1000);
      if (failed) failures[spec.id].push(failed);
      else {
        samples[spec.id].push(rate);
        cpuSamples[spec.id].push({ thread: (res.cpu.thread * 1e6) / res.count, process: (res.cpu.process * 1e6) / res.count });
        if (res.leader) leaders[spec.id].push({ rate: res.leader.rate, ratio: res.leader.ms / res.ms });
      }
      const vsLeader = res.leader && !failed
        ? `; its leader ${Math.round(res.leader.rate)} frames/s; follower stats ${JSON.stringify(res.stats)}`
        : "";
      log(`  run ${run} ${spec.id}: ${failed ?? `${Math.round(rate)} frames/s (${Math.round(res.ms)} ms), main thread ${((res.cpu.thread * 1e6) / res.count).toFixed(1)} µs/frame${vsLeader}`}`);
    }
  }
  const base = median(samples.raw ?? []);
  const cpuBase = median((cpuSamples.raw ?? []).map((c) => c.thread));
  const out = { cpu: {} };
  for (const spec of THROUGHPUT_CLIENTS) {
    const xs = samples[spec.id];
    const value = xs.length ? median(xs) : null;
    out[spec.id] = value;
    record(`throughput.${spec.id}`, "frames/s", value, {
      label: spec.label,
      ...(spec.id === "raw" ? {} : { baseline: base }),
      runs: xs.length,
      failedRuns: failures[spec.id].length,
      failures: failures[spec.id].length ? failures[spec.id] : undefined,
      min: xs.length ? round(Math.min(...xs), 0) : null,
      max: xs.length ? round(Math.max(...xs), 0) : null,
    });
  }
  out.leaders = {};
  for (const spec of THROUGHPUT_CLIENTS.filter((c) => c.follower && leaders[c.id].length)) {
    const xs = leaders[spec.id];
    out.leaders[spec.id] = { rate: median(xs.map((x) => x.rate)), ratio: median(xs.map((x) => x.ratio)) };
    record(`follower.${spec.id}.leader`, "frames/s", out.leaders[spec.id].rate, {
      label: `${spec.label}: its leader's own delivery rate in the same runs (from the same fill request)`,
    });
    record(`follower.${spec.id}.ratio`, "×", out.leaders[spec.id].ratio, {
      label: `${spec.label}: follower rate ÷ its leader's rate, median of the runs' ratios (target ≥ 0.95)`,
      min: round(Math.min(...xs.map((x) => x.ratio))), max: round(Math.max(...xs.map((x) => x.ratio))),
    });
  }
  for (const spec of THROUGHPUT_CLIENTS) {
    const cs = cpuSamples[spec.id];
    if (!cs.length) continue;
    const thread = median(cs.map((c) => c.thread));
    out.cpu[spec.id] = { thread, process: median(cs.map((c) => c.process)) };
    record(`cpu.${spec.id}`, "µs/frame", thread, {
      label: `${spec.label}: renderer main-thread CPU per frame${spec.follower ? " (leader tab + follower tab)" : ""}`,
      ...(spec.id === "raw" ? {} : { baseline: cpuBase }),
      process: round(median(cs.map((c) => c.process)), 2),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Added latency at 1,000 frames/s

/** Pairs two `[id, t, id, t, ...]` lists by id: the differences `b - a` (ms). */
function pairDiffs(a, b) {
  const at = new Map();
  for (let i = 0; i < a.length; i += 2) at.set(a[i], a[i + 1]);
  const diffs = [];
  for (let i = 0; i < b.length; i += 2) if (at.has(b[i])) diffs.push(b[i + 1] - at.get(b[i]));
  return diffs;
}

async function latency() {
  const modes = [
    { id: "raw-pair", transport: null },
    { id: "relay-eventsource", transport: "eventsource" },
    { id: "relay-fetch", transport: "fetch" },
  ];
  const out = {};
  for (const mode of modes) {
    const key = `lat-${mode.id}`;
    const res = await inFreshPage((page) => page.evaluate((a) => window.bench.latency(a), {
      url: `/streams/${key}/events?from=now`,
      turnUrl: `/streams/${key}/turns?tokens=${PACED_FRAMES}&rateHz=1000`,
      transport: mode.transport,
      key,
    }), mode.transport ? "?instrument=1" : "");
    for (const [who, sink] of Object.entries({ raw: res.raw, other: res.other })) {
      const failed = verdict(sink, PACED_FRAMES + 1);
      if (failed) throw new Error(`latency ${mode.id} (${who}): ${failed}`);
    }
    const paired = pairDiffs(res.raw.times, res.other.times);
    const own = mode.transport ? pairDiffs(res.arrivals, res.other.times) : null;
    out[mode.id] = {
      paired: { p50: median(paired), p99: quantile(paired, 0.99), n: paired.length },
      own: own && { p50: median(own), p99: quantile(own, 0.99), n: own.length, max: Math.max(...own) },
    };
    log(`latency ${mode.id}: ${JSON.stringify(out[mode.id])}`);
  }
  const floor = out["raw-pair"].paired;
  record("latency.raw-pair.p50", "ms", floor.p50, { label: "raw EventSource vs a second raw EventSource in the same page (noise floor of the paired method)" });
  record("latency.raw-pair.p99", "ms", floor.p99, { label: "raw vs raw, p99" });
  for (const t of ["eventsource", "fetch"]) {
    const r = out[`relay-${t}`];
    record(`latency.relay-${t}.added.p50`, "ms", r.own.p50, { label: `sse-relay ${t}: browser hands the frame to sse-relay → application callback, p50`, frames: r.own.n });
    record(`latency.relay-${t}.added.p99`, "ms", r.own.p99, { label: `sse-relay ${t}: same, p99 (target < 1 ms)`, max: round(r.own.max) });
    record(`latency.relay-${t}.paired.p50`, "ms", r.paired.p50, { label: `sse-relay ${t} callback − raw EventSource handler (same page, own connection), p50`, baseline: floor.p50 });
    record(`latency.relay-${t}.paired.p99`, "ms", r.paired.p99, { label: `same, p99`, baseline: floor.p99 });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Memory over a long stream

async function memory() {
  log(`memory: filling ${MEMORY_FRAMES} frames`);
  await post(`/streams/mem/fill?frames=${MEMORY_FRAMES}&bytes=${FRAME_BYTES}`);
  const marks = [1_000, 10_000, 100_000, Math.round(MEMORY_FRAMES / 2), MEMORY_FRAMES].filter((m, i, a) => m <= MEMORY_FRAMES && a.indexOf(m) === i);
  const [first, last] = [10_000, MEMORY_FRAMES];
  const out = {};
  // Both transports at once, each in its own context (its own renderer, heap and wasm instance):
  // the memory figures do not depend on speed, and the eventsource run idles on the network.
  const transports = ["fetch", "eventsource"];
  const runs = await Promise.all(transports.map((transport) => inFreshPage(async (page) => {
    await page.evaluate((a) => window.bench.begin("mem", a), {
      client: "relay",
      url: "/streams/mem/events",
      options: { transport, key: `mem-${transport}` },
      marks,
      timeoutMs: 400_000,
    });
    return page.evaluate(() => window.bench.end("mem", { withTimes: false }));
  })));
  for (const [i, transport] of transports.entries()) {
    const res = runs[i];
    const failed = verdict(res, MEMORY_FRAMES + 1);
    if (failed) throw new Error(`memory ${transport}: ${failed}`);
    const at = (n) => res.samples.find((s) => s.frames === n);
    const [s0, a, b] = [at(0), at(first), at(last)];
    out[transport] = { s0, a, b, samples: res.samples, rate: res.count / (res.ms / 1000) };
    const mib = (x) => x / 1048576;
    record(`memory.relay-${transport}.jsHeap.${first}`, "MiB", mib(a.jsHeap), { label: `JS heap after ${first} frames (after gc)` });
    record(`memory.relay-${transport}.jsHeap.${last}`, "MiB", mib(b.jsHeap), { label: `JS heap after ${last} frames (after gc)`, baseline: mib(a.jsHeap) });
    record(`memory.relay-${transport}.wasm.${first}`, "MiB", mib(a.wasm), { label: `wasm memory after ${first} frames` });
    record(`memory.relay-${transport}.wasm.${last}`, "MiB", mib(b.wasm), { label: `wasm memory after ${last} frames (a high-water mark: it never shrinks)`, baseline: mib(a.wasm) });
    record(`memory.relay-${transport}.growth`, "bytes/frame", (b.jsHeap + b.wasm - a.jsHeap - a.wasm) / (last - first), {
      label: `(JS heap + wasm) growth from ${first} to ${last} frames, per frame`,
    });
    record(`memory.relay-${transport}.queuedMax`, "frames", Math.max(...res.samples.map((s) => s.queued ?? 0)), {
      label: "most frames queued inside sse-relay (delivered, not yet taken by the app) at any sample",
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tabs: connections, failover, fan-out

async function tabs() {
  const out = {};
  for (const kind of ["relay", "raw"]) {
    const key = `tabs-${kind}`;
    const context = await browser.newContext();
    try {
      const roles = [];
      for (let i = 0; i < 4; i++) {
        const page = await openPage(context);
        roles.push((await page.evaluate((a) => window.bench.begin("hold", a), {
          client: kind, url: `/streams/${key}/events?from=now`, options: { key, from: "now" },
        })).role);
      }
      await sleep(500);
      out[kind] = { connections: (await stats(key)).connections, roles };
    } finally {
      await context.close();
    }
  }
  log(`tabs: ${JSON.stringify(out)}`);
  record("tabs.connections.relay", "connections", out.relay.connections, {
    label: `open SSE connections for 4 tabs on one key (roles: ${out.relay.roles.join(", ")})`, baseline: out.raw.connections,
  });
  record("tabs.connections.raw", "connections", out.raw.connections, { label: "open SSE connections for 4 raw EventSource tabs" });
  return out;
}

async function failover() {
  const takeovers = [];
  const nextFrames = [];
  const failures = [];
  for (let rep = 1; rep <= FAILOVERS; rep++) {
    const key = `fail-${rep}`;
    const url = `/streams/${key}/events`;
    const context = await browser.newContext();
    try {
      const pages = [];
      const roles = [];
      for (let i = 0; i < 3; i++) {
        const page = await openPage(context);
        pages.push(page);
        roles.push((await page.evaluate((a) => window.bench.begin("w", a), { url, options: { key }, watch: true })).role);
      }
      if (roles[0] !== "leader" || roles[1] !== "follower" || roles[2] !== "follower") throw new Error(`roles ${roles}`);
      await post(`/streams/${key}/turns?tokens=4000&rateHz=1000`);
      const survivors = pages.slice(1);
      for (const page of pages) {
        await waitFor(async () => (await page.evaluate(() => window.bench.peek("w"))).count >= 100, "100 frames in every tab");
      }
      const offsets = await Promise.all(survivors.map((p) => clockOffset(p)));
      const closeAt = nodeClock();
      await pages[0].close();
      const found = await waitFor(async () => {
        for (let i = 0; i < survivors.length; i++) {
          const since = closeAt + offsets[i].offset;
          const state = await survivors[i].evaluate(() => window.bench.peek("w"));
          const lead = state.roles.find((r) => r.role === "leader" && r.at >= since);
          if (!lead) continue;
          const after = await survivors[i].evaluate((s) => window.bench.peek("w", { since: s }), lead.at);
          if (after.frames.length) return { i, since, lead, frame: after.frames[0] };
        }
        return null;
      }, "a new leader and its next frame", 10_000, async () => JSON.stringify(await Promise.all(survivors.map((p) => p.evaluate(() => {
        const s = window.bench.peek("w");
        return { role: s.role, count: s.count, roles: s.roles.map((r) => r.role), error: s.error };
      })))));
      takeovers.push(found.lead.at - found.since);
      nextFrames.push(found.frame[1] - found.since);
      // Nothing lost, repeated or reordered across the handover.
      await sleep(100);
      for (const page of survivors) {
        const state = await page.evaluate(() => window.bench.peek("w"));
        if (state.outOfOrder || state.error) throw new Error(`after failover: ${state.outOfOrder} out of order, ${state.error}`);
      }
    } catch (e) {
      failures.push(String(e.message ?? e));
      log(`failover ${rep}: ${e.message}`);
    } finally {
      await context.close();
    }
  }
  log(`failover takeovers: ${takeovers.map((x) => x.toFixed(1)).join(", ")}`);
  log(`failover next frame: ${nextFrames.map((x) => x.toFixed(1)).join(", ")}`);
  record("failover.leader.median", "ms", median(takeovers), {
    label: `leader page.close() → a follower reports role "leader" (median of ${takeovers.length})`,
    min: round(Math.min(...takeovers)), max: round(Math.max(...takeovers)), failedRuns: failures.length, failures: failures.length ? failures : undefined,
  });
  record("failover.nextFrame.median", "ms", median(nextFrames), {
    label: `leader page.close() → the new leader delivers its next frame (median of ${nextFrames.length})`,
    min: round(Math.min(...nextFrames)), max: round(Math.max(...nextFrames)),
  });
  return { takeovers, nextFrames, failures };
}

async function waitFor(probe, what, timeout = 20_000, explain = null) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${explain ? `: ${await explain()}` : ""}`);
    await sleep(10);
  }
}

async function fanout() {
  const key = "fanout";
  const url = `/streams/${key}/events`;
  const context = await browser.newContext();
  try {
    const leader = await openPage(context);
    const follower = await openPage(context);
    const a = await leader.evaluate((x) => window.bench.begin("f", x), { url, options: { key, from: "now" } });
    const b = await follower.evaluate((x) => window.bench.begin("f", x), { url, options: { key, from: "now" } });
    if (a.role !== "leader" || b.role !== "follower") throw new Error(`fan-out roles ${a.role}/${b.role}`);
    const [offL, offF] = [await clockOffset(leader), await clockOffset(follower)];
    await post(`/streams/${key}/turns?tokens=${PACED_FRAMES}&rateHz=1000`);
    const [l, f] = await Promise.all([leader, follower].map((p) => p.evaluate(() => window.bench.end("f"))));
    for (const r of [l, f]) {
      const failed = verdict(r, PACED_FRAMES + 1);
      if (failed) throw new Error(`fan-out: ${failed}`);
    }
    // Both pages' clocks are epoch-based; remove whatever skew the two renderers have.
    const skew = offF.offset - offL.offset;
    const diffs = pairDiffs(onNodeClock(l.times, offL.offset), onNodeClock(f.times, offF.offset));
    record("fanout.p50", "ms", median(diffs), { label: "leader's delivery → follower's delivery of the same frame, p50 (1,000 frames/s)", frames: diffs.length });
    record("fanout.p99", "ms", quantile(diffs, 0.99), { label: "same, p99", clockSkewCorrected: round(skew), max: round(Math.max(...diffs)) });
    return { p50: median(diffs), p99: quantile(diffs, 0.99), skew };
  } finally {
    await context.close();
  }
}

// ---------------------------------------------------------------------------------------------
// How cost grows with tabs: 1, 4, 8, 16 tabs on one key (one leader, the rest followers)

const SCALE_TABS = (process.env.BENCH_SCALE_TABS ?? "1,4,8,16").split(",").map(Number);
const SCALE_FRAMES = Number(process.env.BENCH_SCALE_FRAMES ?? 50_000);
const SCALE_TRANSPORT = "fetch";

/** Opens `n` tabs' streams on `key` in `pages` (the first leads); returns their roles. */
async function beginAll(pages, name, key, from) {
  const roles = [];
  for (const page of pages) {
    roles.push((await page.evaluate((a) => window.bench.begin(a.name, a), {
      name, url: `/streams/${key}/events`, options: { key, from, transport: SCALE_TRANSPORT }, timeoutMs: 300_000,
    })).role);
  }
  if (roles[0] !== "leader" || roles.slice(1).some((r) => r !== "follower")) throw new Error(`roles ${roles.join(", ")}`);
}

async function scaling() {
  const rows = [];
  for (const n of SCALE_TABS) {
    const context = await browser.newContext();
    try {
      const pages = [];
      for (let i = 0; i < n; i++) pages.push(await openPage(context));
      const offsets = [];
      for (const page of pages) offsets.push((await clockOffset(page)).offset);
      // Rate: a live fill of SCALE_FRAMES frames; every tab's clock starts at the fill request.
      const key = `scale-${n}`;
      await beginAll(pages, "rate", key, "start");
      const cpu = await cpuMeter(context, pages[0]);
      const t0 = nodeClock();
      await post(`/streams/${key}/fill?frames=${SCALE_FRAMES}&bytes=${FRAME_BYTES}`);
      const ends = await Promise.all(pages.map((p) => p.evaluate(() => window.bench.end("rate", { withTimes: false }))));
      const used = await cpu();
      for (const r of ends) {
        const failed = verdict(r, SCALE_FRAMES + 1);
        if (failed) throw new Error(`${n} tabs: ${failed}`);
      }
      const rates = ends.map((r, i) => r.count / ((r.endAt - offsets[i] - t0) / 1000));
      // Fan-out: 3,000 frames paced at 1,000 frames/s; each follower's delivery minus the leader's.
      const paced = `scale-${n}-paced`;
      await beginAll(pages, "paced", paced, "now");
      await post(`/streams/${paced}/turns?tokens=${PACED_FRAMES}&rateHz=1000`);
      const timed = await Promise.all(pages.map((p) => p.evaluate(() => window.bench.end("paced"))));
      for (const r of timed) {
        const failed = verdict(r, PACED_FRAMES + 1);
        if (failed) throw new Error(`${n} tabs, paced: ${failed}`);
      }
      const leaderTimes = onNodeClock(timed[0].times, offsets[0]);
      const diffs = timed.slice(1).flatMap((r, i) => pairDiffs(leaderTimes, onNodeClock(r.times, offsets[i + 1])));
      const row = {
        tabs: n,
        leaderRate: rates[0],
        leaderCpuUs: (used.thread * 1e6) / ends[0].count,
        slowestFollowerRate: n > 1 ? Math.min(...rates.slice(1)) : null,
        slowestVsLeader: n > 1 ? Math.min(...rates.slice(1)) / rates[0] : null,
        fanoutP50: diffs.length ? median(diffs) : null,
        fanoutP99: diffs.length ? quantile(diffs, 0.99) : null,
        fanoutMax: diffs.length ? Math.max(...diffs) : null,
      };
      rows.push(row);
      log(`scaling ${n} tabs: ${JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, round(v, 2)])))}`);
      record(`scaling.${n}.leaderCpu`, "µs/frame", row.leaderCpuUs, { label: `${n} tabs: the leader's main-thread CPU per frame (live fill of ${SCALE_FRAMES} frames)` });
      record(`scaling.${n}.leaderRate`, "frames/s", row.leaderRate, { label: `${n} tabs: the leader's delivery rate` });
      if (n > 1) {
        record(`scaling.${n}.slowestFollowerRate`, "frames/s", row.slowestFollowerRate, { label: `${n} tabs: the slowest follower's rate`, baseline: row.leaderRate });
        record(`scaling.${n}.fanoutP99`, "ms", row.fanoutP99, { label: `${n} tabs: leader's delivery → each follower's, p99 at 1,000 frames/s`, p50: round(row.fanoutP50), max: round(row.fanoutMax) });
      }
    } finally {
      await context.close();
    }
  }
  return { transport: SCALE_TRANSPORT, frames: SCALE_FRAMES, rows };
}

// ---------------------------------------------------------------------------------------------
// Where the time goes: CPU profiles and JS<->wasm crossings (diagnostics, on a 10,000-frame journal)

async function profiles() {
  const frames = 10_000;
  await post(`/streams/prof/fill?frames=${frames}&bytes=${FRAME_BYTES}`);
  const url = "/streams/prof/events";
  const out = { runs: [], profiles: {}, crossings: {} };
  const variants = [
    { id: "raw", client: "raw" },
    { id: "relay-eventsource", client: "relay", options: { transport: "eventsource" } },
    { id: "relay-eventsource-unshared", client: "relay", options: { transport: "eventsource", share: false } },
    { id: "relay-fetch", client: "relay", options: { transport: "fetch" } },
    { id: "relay-fetch-unshared", client: "relay", options: { transport: "fetch", share: false } },
    { id: "fetch-event-source", client: "fetch-event-source" },
  ];
  // Plain timing of each variant (the shared/unshared split shows what the tab machinery costs).
  for (const v of variants) {
    const res = await inFreshPage((page) => page.evaluate((a) => window.bench.throughput(a), {
      client: v.client, url, options: { ...v.options, key: `prof-${v.id}` },
    }));
    const failed = verdict(res, frames + 1);
    out.runs.push({ id: v.id, rate: failed ? null : res.count / (res.ms / 1000), failed });
    log(`  profile timing ${v.id}: ${failed ?? `${Math.round(res.count / (res.ms / 1000))} frames/s`}`);
  }
  // CPU profiles (the wasm keeps its function names: pkg-prof/).
  for (const v of variants.filter((x) => ["raw", "relay-eventsource", "relay-fetch", "fetch-event-source"].includes(x.id))) {
    out.profiles[v.id] = await inFreshPage(async (page, context) => {
      await page.evaluate((c) => window.bench.preload(c), v.client);
      const cdp = await context.newCDPSession(page);
      await cdp.send("Profiler.enable");
      await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
      const cpu = await cpuMeter(context, page);
      await cdp.send("Profiler.start");
      const res = await page.evaluate((a) => window.bench.throughput(a), { client: v.client, url, options: { ...v.options, key: `pp-${v.id}` } });
      const { profile } = await cdp.send("Profiler.stop");
      const used = await cpu();
      return { frames: res.count, ms: res.ms, ...aggregateProfile(profile, res.count, (used.thread * 1e6) / res.count) };
    }, "?pkg=prof");
    log(`  profile ${v.id}: ${out.profiles[v.id].categories.map((c) => `${c.name} ${(c.share * 100).toFixed(0)} %`).join(", ")}`);
  }
  // The follower pipeline: a leader tab (fetch) and a follower tab, both profiled, while the
  // same number of frames is filled live; crossings counted in both.
  for (const mode of ["profile", "count"]) {
    const key = `pf-${mode}`;
    const url2 = `/streams/${key}/events`;
    const context = await browser.newContext();
    try {
      const query = mode === "profile" ? "?pkg=prof" : "?count=1";
      const leader = await openPage(context, query);
      const follower = await openPage(context, query);
      const sessions = [];
      const meters = [await cpuMeter(context, leader), await cpuMeter(context, follower)];
      if (mode === "profile") {
        for (const page of [leader, follower]) {
          const cdp = await context.newCDPSession(page);
          await cdp.send("Profiler.enable");
          await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
          sessions.push(cdp);
        }
      }
      await leader.evaluate((a) => window.bench.begin("leader", a), { url: url2, options: { key, transport: "fetch" } });
      await follower.evaluate((c) => window.bench.preload(c), "relay");
      for (const cdp of sessions) await cdp.send("Profiler.start");
      const res = await follower.evaluate((a) => window.bench.throughput(a), {
        client: "relay", url: url2, options: { key, transport: "fetch" }, fillUrl: `/streams/${key}/fill?frames=${frames}&bytes=${FRAME_BYTES}`,
      });
      const lead = await leader.evaluate(() => window.bench.end("leader", { withTimes: false }));
      const failed = verdict(res, frames + 1) ?? verdict(lead, frames + 1);
      if (mode === "profile") {
        const [pl, pf] = await Promise.all(sessions.map((cdp) => cdp.send("Profiler.stop")));
        const [ul, uf] = [await meters[0](), await meters[1]()];
        out.profiles["leader-with-follower"] = { frames: lead.count, ...aggregateProfile(pl.profile, lead.count, (ul.thread * 1e6) / lead.count) };
        out.profiles["follower"] = { frames: res.count, ...aggregateProfile(pf.profile, res.count, (uf.thread * 1e6) / res.count) };
        out.runs.push({ id: "relay-follower (profiled)", rate: failed ? null : res.count / (res.ms / 1000), failed });
        for (const id of ["follower", "leader-with-follower"]) log(`  profile ${id}: ${out.profiles[id].categories.map((c) => `${c.name} ${(c.share * 100).toFixed(0)} %`).join(", ")}`);
      } else {
        for (const [id, page, count] of [["leader-with-follower", leader, lead.count], ["follower", follower, res.count]]) {
          const counts = await page.evaluate(() => window.bench.crossings());
          const total = Object.values(counts).reduce((a, b) => a + b, 0);
          out.crossings[id] = {
            frames: count,
            perFrame: round(total / count, 2),
            top: Object.entries(counts).map(([name, n]) => ({ name, perFrame: round(n / count, 3) })).filter((x) => x.perFrame >= 0.01).slice(0, 25),
          };
          log(`  crossings ${id}: ${out.crossings[id].perFrame} per frame`);
        }
      }
    } finally {
      await context.close();
    }
  }
  // What each counted glue function does: its first statement in wasm-bindgen's own output (the
  // package ships it without comments and line breaks).
  out.glue = glueSummary(readFileSync(join(ROOT, "target/wasm-bindgen/sse_relay.js"), "utf8"));
  // Crossings per frame.
  for (const v of variants.filter((x) => ["relay-eventsource", "relay-fetch"].includes(x.id))) {
    out.crossings[v.id] = await inFreshPage(async (page) => {
      await page.evaluate((c) => window.bench.preload(c), v.client);
      const res = await page.evaluate((a) => window.bench.throughput(a), { client: v.client, url, options: { ...v.options, key: `pc-${v.id}` } });
      const counts = await page.evaluate(() => window.bench.crossings());
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      const perFrame = Object.entries(counts).map(([name, n]) => ({ name, perFrame: round(n / res.count, 3) })).filter((x) => x.perFrame >= 0.01);
      return { frames: res.count, perFrame: round(total / res.count, 2), top: perFrame.slice(0, 25) };
    }, "?count=1");
    log(`  crossings ${v.id}: ${out.crossings[v.id].perFrame} per frame`);
  }
  return out;
}

/** `{ importName: "its first statement" }` for the wasm-bindgen glue's import functions. */
function glueSummary(glue) {
  const out = {};
  const lines = glue.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(__w\w+): function\s*\(([^)]*)\)\s*\{/.exec(lines[i]);
    if (!m) continue;
    const body = lines.slice(i + 1, i + 14).join("\n");
    if (/new Promise\(/.test(body) && !/^\s*(const ret = )?new Promise/m.test(lines[i + 1])) {
      out[m[1]] = "new Promise(cb) (a wasm closure as the executor)";
      continue;
    }
    for (let j = i + 1; j < Math.min(i + 8, lines.length); j++) {
      const line = lines[j].trim();
      if (!line || line.startsWith("//") || line.startsWith("try") || line.startsWith("var ")) continue;
      if (/^(let \w+;|const obj = arg\d+;)$/.test(line)) continue;
      out[m[1]] = line.slice(0, 90);
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  if (process.env.BENCH_SKIP_BUILD !== "1") {
    log("building the package (npm run build) and the release server");
    sh("npm", ["run", "--silent", "build"]);
    sh("cargo", ["build", "-p", "sse-relay-server", "--release", "--quiet"]);
  }
  const { site, sizes } = await buildSite(ROOT);
  // Where the wasm's bytes go: the profiling twin is optimized like the package and keeps names.
  sizes.wasmParts = breakdown(readFileSync(join(site, "pkg-prof/sse_relay_bg.wasm")));
  const siteReady = performance.now() - started;
  const previous = existsSync(join(ROOT, "bench/results.json")) ? JSON.parse(readFileSync(join(ROOT, "bench/results.json"), "utf8")) : null;

  const machine = {
    nproc: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    cpu: cpus()[0]?.model ?? "unknown",
    chromium: execFileSync("/usr/bin/chromium", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim(),
    node: process.version,
    loadAverage: null,
  };
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock", "scripts/build.mjs"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
  const date = new Date().toISOString();
  machine.loadAverage = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

  // Bundle sizes.
  const relayGzip = sizes.relay.shipped.gzip;
  record("bundle.relay", "bytes gzip", relayGzip, { label: "sse-relay wasm + JS glue + entry, as shipped in pkg/ (target/pkg-size.json)", wasmGzip: sizes.relay.wasmGzip, jsGzip: sizes.relay.jsGzip, raw: sizes.relay.shipped.bytes });
  record("bundle.relay.minified", "bytes gzip", sizes.relay.minifiedTotalGzip, { label: "sse-relay with its JS glue + entry minified (oxc, as vite does)", jsMinifiedGzip: sizes.relay.jsMinifiedGzip });
  for (const a of sizes.anchors) {
    record(`bundle.${a.name}`, "bytes gzip", a.gzip, { label: `${a.name} ${a.version}, bundled and minified by vite`, minified: a.minified });
  }

  const server = await startServer(site);
  BASE = server.url;
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
  const data = {};
  const sectionSeconds = { "build + site": round(siteReady / 1000, 1) };
  const sections = { throughput, latency, fanout, scaling, tabs, failover, memory, profiles };
  const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",") : null;
  try {
    for (const [name, fn] of Object.entries(sections)) {
      if (only ? !only.includes(name) : name === "profiles" && !PROFILE) continue;
      log(`== ${name}`);
      const t = performance.now();
      data[name] = await fn();
      sectionSeconds[name] = round((performance.now() - t) / 1000, 1);
    }
  } finally {
    await browser.close().catch(() => {});
    server.close();
  }
  const seconds = (performance.now() - started) / 1000;
  record("bench.duration", "s", seconds, { label: "this whole run, builds included" });
  const meta = [
    { name: "meta.date", unit: "", value: date },
    { name: "meta.commit", unit: "", value: commit + (dirty ? " (+ uncommitted changes in src/)" : "") },
    { name: "meta.machine", unit: "", value: machine },
  ];
  const all = [...meta, ...results];
  writeFileSync(join(ROOT, "target/bench-details.json"), JSON.stringify({ date, commit, machine, sizes, sectionSeconds, data, results }, null, 2) + "\n");
  if (only) {
    log("BENCH_ONLY: a partial run; bench/results.json and bench/RESULTS.md left as they were (see target/bench-details.json)");
    return;
  }
  writeFileSync(join(ROOT, "bench/results.json"), JSON.stringify(all, null, 2) + "\n");
  writeReport({ root: ROOT, date, commit, dirty, machine, results, previous, data, runs: RUNS, sizes, seconds, sectionSeconds });
  log(`wrote bench/results.json and bench/RESULTS.md in ${seconds.toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
