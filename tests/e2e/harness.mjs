// Shared harness of the end-to-end suite (tests/e2e/*.test.mjs, run by `node --test`).
//
// Each test file gets one reference server (the real binary, port 0, `--static www`,
// `--lifetime-secs` so an orphan always stops) and one headless Chromium; each scenario gets fresh
// browser contexts (tabs) and unique stream keys, closed when it ends whatever happened.
//
// A scenario records `{name, passed, control, ...figures}`; every file writes its records to
// target/e2e/results/ and rebuilds target/e2e/summary.json from the records of the same run.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

export const ROOT = resolve(import.meta.dirname, "../..");
export const SERVER_BIN = join(ROOT, "target/debug/sse-relay-server");
export const E2E_DIR = join(ROOT, "target/e2e");

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

// ---------------------------------------------------------------------------------------------
// Waiting on conditions

/** Polls `probe` (sync or async) until it returns a truthy value, at most `timeout` ms. */
export async function waitFor(probe, { timeout = 10_000, interval = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

// ---------------------------------------------------------------------------------------------
// The reference server

/**
 * Starts the reference server binary; resolves once it printed its address. `args`: extra flags
 * (e.g. `["--journal", redis.url]`). The handle's `kill(signal)` sends a signal (SIGKILL a process
 * mid-turn); `close()` stops it.
 */
export async function startServer({ staticDir = "www", pingMs = 300, lifetimeSecs = 300, args: extra = [] } = {}) {
  const args = ["--port", "0", "--static", staticDir, "--lifetime-secs", String(lifetimeSecs), "--ping-ms", String(pingMs), ...extra];
  const child = spawn(SERVER_BIN, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const url = await new Promise((resolveUrl, reject) => {
    let stdout = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 15 s: ${stderr}`)), 15_000);
    child.on("error", (err) => reject(new Error(`cannot start ${SERVER_BIN} (cargo build -p sse-relay-server): ${err.message}`)));
    child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      const match = /^listening on (http:\/\/\S+)\n/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
  });
  child.stdout.resume();
  return {
    url,
    api: new Api(url),
    kill(signal) {
      child.kill(signal);
      return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", r)));
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A redis-server for the Redis journal

/** A free loopback port. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Sends one inline command to redis at `port`; resolves to the first line of the answer, or null. */
function redisCommand(port, line) {
  return new Promise((resolveLine) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let data = "";
    const done = (value) => {
      socket.destroy();
      resolveLine(value);
    };
    socket.setTimeout(2000, () => done(null));
    socket.on("error", () => done(null));
    socket.on("connect", () => socket.write(`${line}\r\n`));
    socket.on("data", (chunk) => {
      data += chunk;
      if (data.includes("\r\n")) done(data.split("\r\n")[0]);
    });
    socket.on("close", () => done(data ? data.split("\r\n")[0] : null));
  });
}

/**
 * Starts `redis-server` (installed by scripts/setup.sh) on a free loopback port in a temporary
 * folder, persistence off (`--save '' --appendonly no`), or with `persist: true` an append-only
 * file fsynced on every write, so `stop()` then `start()` keeps the data. A watchdog shell ends it
 * if this process dies without `close()`.
 */
export async function startRedis({ persist = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "sse-relay-redis-"));
  const port = await freePort();
  const args = ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--save", "",
    "--appendonly", persist ? "yes" : "no", ...(persist ? ["--appendfsync", "always"] : [])];
  const watchdog = `redis-server "$@" >/dev/null 2>&1 & r=$!; trap 'kill -9 $r 2>/dev/null; exit 0' TERM; `
    + `while kill -0 ${process.pid} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.5; done; kill -9 $r 2>/dev/null`;
  let child = null;
  const redis = {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    /** Starts redis-server (again, on the same port and folder). */
    async start() {
      child = spawn("sh", ["-c", watchdog, "sh", ...args], { stdio: "ignore" });
      await waitFor(async () => (await redisCommand(port, "PING")) === "+PONG", { timeout: 10_000, what: "redis-server to answer" });
    },
    /** Stops it cleanly (`SHUTDOWN`: with `persist`, the data is on disk). */
    async stop() {
      await redisCommand(port, "SHUTDOWN");
      await waitFor(async () => (await redisCommand(port, "PING")) === null, { timeout: 10_000, what: "redis-server to stop" });
      child?.kill("SIGTERM");
      child = null;
    },
    async close() {
      await redisCommand(port, "SHUTDOWN NOSAVE");
      child?.kill("SIGTERM");
      child = null;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await redis.start();
  return redis;
}

/** The reference server's HTTP API, from node: the journal is the truth the tests compare to. */
export class Api {
  constructor(base) {
    this.base = base;
  }

  async post(path) {
    const response = await fetch(this.base + path, { method: "POST" });
    const text = await response.text();
    if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async append(key, event, data) {
    const response = await fetch(`${this.base}/streams/${key}/append`, {
      method: "POST",
      body: JSON.stringify({ event, data }),
    });
    if (!response.ok) throw new Error(`append to ${key}: ${response.status} ${await response.text()}`);
    return response.json();
  }

  async stats(key) {
    const response = await fetch(`${this.base}/streams/${key}/stats`);
    if (!response.ok) throw new Error(`stats of ${key}: ${response.status}`);
    return response.json();
  }

  /** Waits until the key's stats satisfy `predicate`; returns them. */
  waitStats(key, predicate, { timeout = 10_000, what = "stats" } = {}) {
    return waitFor(async () => {
      const stats = await this.stats(key);
      return predicate(stats) ? stats : null;
    }, { timeout, what: `${what} of ${key}` });
  }

  /** Waits until the key's journal holds `done`. */
  waitDone(key, { timeout = 15_000 } = {}) {
    return this.waitStats(key, (s) => s.done, { timeout, what: "done" });
  }

  /**
   * The key's whole retained journal (`[{id, event, data}]`, `done` last), read as a plain SSE
   * client from the start of the current epoch. The stream must be done.
   */
  async journal(key, { timeout = 10_000 } = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeout);
    try {
      const response = await fetch(`${this.base}/streams/${key}/events`, { signal: controller.signal });
      const entries = [];
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const frame = parseBlock(block);
          if (frame.id === undefined) continue; // ready, ping: not journaled
          entries.push({ id: frame.id, event: frame.event ?? "message", data: frame.data.join("\n") });
          if (frame.event === "done") return entries;
        }
      }
      throw new Error(`journal of ${key} ended without done`);
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }
}

function parseBlock(block) {
  const frame = { data: [] };
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") frame.data.push(value);
    else if (field === "id" || field === "event") frame[field] = value;
  }
  return frame;
}

// ---------------------------------------------------------------------------------------------
// Transcripts

const norm = (f) => `${f.id}\u0000${f.event}\u0000${f.data}`;

/** Compresses ids into ranges for messages: "1-12, 15". */
export function ranges(ids) {
  const out = [];
  const nums = ids.map(Number);
  if (!nums.every(Number.isSafeInteger)) return ids.slice(0, 20).join(", ") + (ids.length > 20 ? ", …" : "");
  for (let i = 0; i < nums.length; i++) {
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j] + 1) j++;
    out.push(i === j ? `${nums[i]}` : `${nums[i]}-${nums[j]}`);
    i = j;
  }
  return out.join(", ");
}

/**
 * Compares a rendered transcript (`[{id, event, data}]`) with the journal: `exact` when it is the
 * journal, frame for frame, in order; otherwise what is missing, duplicated, foreign or reordered.
 */
export function compare(frames, journal) {
  const want = journal.map(norm);
  const got = frames.map(norm);
  const exact = got.length === want.length && got.every((g, i) => g === want[i]);
  const counts = new Map();
  for (const g of got) counts.set(g, (counts.get(g) ?? 0) + 1);
  const inJournal = new Set(want);
  const missing = journal.filter((f) => !counts.has(norm(f))).map((f) => f.id);
  const duplicated = journal.filter((f) => (counts.get(norm(f)) ?? 0) > 1).map((f) => f.id);
  const duplicateCount = [...counts.values()].reduce((n, c) => n + Math.max(0, c - 1), 0);
  const foreign = frames.filter((f) => !inJournal.has(norm(f)));
  const firstSeen = got.filter((g, i) => got.indexOf(g) === i && inJournal.has(g));
  const order = want.filter((w) => counts.has(w));
  const inOrder = firstSeen.every((g, i) => g === order[i]);
  const parts = [];
  if (missing.length) parts.push(`missing ${missing.length} (ids ${ranges(missing)})`);
  if (duplicateCount) parts.push(`${duplicateCount} duplicate frame(s) (ids ${ranges(duplicated)})`);
  if (foreign.length) parts.push(`${foreign.length} frame(s) not in the journal (ids ${JSON.stringify(foreign.slice(0, 5).map((f) => f.id))})`);
  if (!inOrder) parts.push("out of order");
  return {
    exact,
    got: frames.length,
    want: journal.length,
    missing,
    duplicated,
    duplicateCount,
    foreign: foreign.length,
    inOrder,
    summary: exact ? `exact (${journal.length} frames)` : `${frames.length} frames rendered for ${journal.length} in the journal: ${parts.join("; ") || "differs"}`,
  };
}

/** Keeps `{id, event, data}` of rendered frames. */
export const pick = (frames) => frames.map(({ id, event, data }) => ({ id, event, data }));

// ---------------------------------------------------------------------------------------------
// Browser tabs

/** A page (in its own browser context) of the harness; collects its console. */
export class Tab {
  constructor(context, page, base) {
    this.context = context;
    this.page = page;
    this.base = base;
    this.console = [];
    /**
     * The page's requests to an events endpoint, in order: `{url, status, request}` (`request` is
     * Playwright's, whose `timing()` has the browser's own timestamps).
     */
    this.streams = [];
    page.on("request", (request) => {
      if (!/\/streams\/[^/]+\/events/.test(request.url())) return;
      const entry = { url: request.url(), status: null, request };
      this.streams.push(entry);
      request.response().then((response) => (entry.status = response?.status() ?? null), () => {});
    });
    page.on("response", (response) => {
      if (response.status() >= 400 && !/\/streams\//.test(response.url())) this.console.push(`[http ${response.status()}] ${response.url()}`);
    });
    page.on("console", (m) => this.console.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => this.console.push(`[pageerror] ${e.message}`));
  }

  /** Opens a harness page (`relay` or `naive`) with its config. */
  async open(kind, config) {
    const url = `${this.base}/e2e/${kind}.html?config=${encodeURIComponent(JSON.stringify(config))}`;
    await this.page.goto(url);
    await this.until(() => true, null, { timeout: 10_000, what: `the ${kind} page to start` });
    return this;
  }

  /** The page's run record (window.e2e), with `now` = the stream's state, cursor and stats. */
  run() {
    return this.page.evaluate(() => {
      const { snapshot, ...rest } = window.e2e ?? {};
      return { ...rest, now: snapshot ? snapshot() : null };
    });
  }

  /**
   * Waits until `predicate(run, arg)` holds in the page (`run` is window.e2e; the function is
   * sent as source, so it may use only its arguments). Throws with the console on timeout.
   */
  async until(predicate, arg = null, { timeout = 10_000, what = "condition" } = {}) {
    try {
      await this.page.waitForFunction(
        ({ src, arg }) => {
          const run = window.e2e;
          return run !== undefined && (0, eval)(`(${src})`)(run, arg);
        },
        { src: predicate.toString(), arg },
        { polling: 25, timeout },
      );
    } catch (err) {
      if (!/Timeout/i.test(err.message)) throw err;
      const run = await this.run().catch(() => ({}));
      const brief = {
        frames: run.frames?.length,
        last: run.frames?.at(-1),
        events: run.events?.slice(-8),
        now: run.now,
        openError: run.openError,
        error: run.error,
      };
      throw new Error(`timed out after ${timeout} ms waiting for ${what}\nrun: ${JSON.stringify(brief)}\nconsole:\n${this.console.slice(-30).join("\n")}`);
    }
  }

  /** Like `until`, but answers whether it held within `timeout` instead of throwing. */
  async within(predicate, arg, timeout) {
    try {
      await this.until(predicate, arg, { timeout });
      return true;
    } catch (err) {
      if (/timed out/.test(err.message)) return false;
      throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Suite and scenarios

let keyCounter = 0;

/** A stream key unique to this run and scenario. */
export function uniqueKey(label) {
  keyCounter += 1;
  const slug = label.replace(/[^A-Za-z0-9]+/g, "-").slice(0, 40);
  return `${slug}-${process.pid}-${keyCounter}-${Math.random().toString(16).slice(2, 8)}`;
}

/**
 * Sets up one test file: a server and a browser shared by its scenarios. Returns the environment
 * (`env.server`, `env.api`, `env.browser`), filled in by the time the scenarios run.
 */
export function suite({ pingMs = 300, staticDir = "www" } = {}) {
  const env = { records: [] };
  before(async () => {
    env.server = await startServer({ pingMs, staticDir });
    env.api = env.server.api;
    env.base = env.server.url;
    env.browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
  });
  after(async () => {
    writeRecords(env.records);
    await env.browser?.close();
    await env.server?.close();
  });
  return env;
}

/** Context of one scenario: tabs it opened (closed at the end), its record, its controls. */
class Scenario {
  constructor(env, record) {
    this.env = env;
    this.api = env.api;
    this.record = record;
    this.tabs = [];
  }

  /** A new tab in a new browser context (isolated storage, own connections). */
  async tab(base = this.env.base) {
    const context = await this.env.browser.newContext();
    const page = await context.newPage();
    const tab = new Tab(context, page, base);
    this.tabs.push(tab);
    return tab;
  }

  /** A tab with the relay page open on `config`. */
  async relay(config) {
    return (await this.tab()).open("relay", config);
  }

  /** A tab with the naive page open on `config`. */
  async naive(config) {
    return (await this.tab()).open("naive", config);
  }

  /** Adds a measured figure to the scenario's record. */
  figure(name, value) {
    this.record[name] = value;
  }

  /**
   * Runs the negative control: `body` drives the naive client and returns `{ failed, detail }`.
   * The control must fail (that is what proves the scenario tests something).
   */
  async control(body) {
    let outcome;
    try {
      outcome = await body();
    } catch (err) {
      this.record.control = `control errored: ${err.message.split("\n")[0]}`;
      throw err;
    }
    this.record.controlDetail = outcome.detail;
    if (outcome.failed) {
      this.record.control = "failed-as-expected";
      return;
    }
    this.record.control = `naive client did not fail: ${outcome.detail}`;
    throw new Error(`negative control did not fail: ${outcome.detail}`);
  }

  async close() {
    for (const tab of this.tabs) {
      await tab.context.close().catch(() => {});
    }
  }

  /** The console of every tab, for failure messages. */
  consoleDump() {
    return this.tabs
      .map((t, i) => (t.console.length ? `--- console of tab ${i}\n${t.console.slice(-40).join("\n")}` : ""))
      .filter(Boolean)
      .join("\n");
  }
}

/** Declares one scenario (a node:test test) with its record in the summary. */
export function scenario(env, name, body, { timeout = 90_000, control = "not run" } = {}) {
  test(name, { timeout }, () => {
    const record = { name, passed: false, control };
    const ctx = new Scenario(env, record);
    return runRecorded(env, record, ctx, () => body(ctx));
  });
}

/**
 * Runs one test's `run` against its record: `passed`, or `error` and the pages' console attached to
 * the failure; its duration; then closes the scenario's tabs and rewrites the summary.
 */
async function runRecorded(env, record, ctx, run) {
  env.records.push(record);
  const started = Date.now();
  try {
    await run();
    record.passed = true;
  } catch (err) {
    record.error = err.message.split("\n")[0];
    const dump = ctx.consoleDump();
    if (dump.trim()) err.message += `\n${dump}`;
    throw err;
  } finally {
    record.seconds = Math.round((Date.now() - started) / 100) / 10;
    await ctx.close();
    writeRecords(env.records);
  }
}

// ---------------------------------------------------------------------------------------------
// Summary

const RESULTS_DIR = join(E2E_DIR, "results");
// Every file of one `node --test` run is a child of the same runner process.
const RUN_ID = process.env.E2E_RUN_ID ?? String(process.ppid);
const FILE = basename(process.argv[1] ?? "unknown").replace(/\.test\.mjs$/, "");

function writeRecords(records) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${FILE}.json`), JSON.stringify({ run: RUN_ID, file: FILE, records }, null, 2));
  const summary = [];
  for (const name of readdirSync(RESULTS_DIR).sort()) {
    if (!name.endsWith(".json")) continue;
    try {
      const data = JSON.parse(readFileSync(join(RESULTS_DIR, name), "utf8"));
      if (data.run === RUN_ID) summary.push(...data.records);
    } catch {
      // a file being written by another process: it rewrites the summary itself
    }
  }
  writeFileSync(join(E2E_DIR, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------
// The transport matrix (issue 7)
//
// `matrix(env, name, body)` declares one scenario per transport: `name` on `eventsource` (the
// default transport: the record keeps its plain name) and `name [fetch]` on `fetch`, each with
// `transport` in its record. `body(ctx, transport)` is the scenario; `ctx.relay(config)` opens the
// relay page with `options.transport` set to the run's transport. The negative control (the naive
// client: it tests the scenario, not the transport) runs ONCE per scenario: the first transport's
// run executes it, the others reuse its outcome; every record carries `control`, `controlDetail`
// and `controlRanIn` (the name of the record whose run executed it).

export const TRANSPORTS = ["eventsource", "fetch"];

/** A scenario's record name on `transport`: `eventsource` keeps the plain name. */
export const matrixName = (name, transport) => (transport === "eventsource" ? name : `${name} [${transport}]`);

/** A copy of a relay page config with `options.transport` set (unless the config sets its own). */
export function withTransport(config, transport) {
  const options = { ...(config.options ?? {}) };
  if (options.transport === undefined && transport !== "eventsource") options.transport = transport;
  return { ...config, options };
}

class MatrixScenario extends Scenario {
  constructor(env, record, transport, controlKey) {
    super(env, record);
    this.transport = transport;
    this.controlKey = controlKey;
  }

  /** A tab with the relay page open on `config`, on this run's transport. */
  async relay(config) {
    const tab = await (await this.tab()).open("relay", withTransport(config, this.transport));
    (this.relayTabs ??= []).push(tab);
    return tab;
  }

  /**
   * Checks that the relay pages really used this run's transport: the browser's resource type of
   * every request they made to an events endpoint is `eventsource` or `fetch` (so a `transport`
   * option the package ignored could not pass the fetch column on EventSource).
   */
  async checkTransport() {
    const seen = new Set();
    for (const tab of this.relayTabs ?? []) {
      for (const s of tab.streams) seen.add(s.request.resourceType());
    }
    this.record.requestTypes = [...seen];
    const wrong = [...seen].filter((type) => type !== this.transport);
    if (wrong.length) throw new Error(`the relay pages' requests were ${JSON.stringify([...seen])}, not ${this.transport}`);
  }

  /** The scenario's negative control, run once for all transports (see above). */
  async control(body) {
    this.env.controls ??= new Map();
    let shared = this.env.controls.get(this.controlKey);
    if (!shared) {
      shared = {
        ranIn: this.record.name,
        outcome: (async () => {
          try {
            return { value: await body() };
          } catch (err) {
            return { error: err };
          }
        })(),
      };
      this.env.controls.set(this.controlKey, shared);
    }
    const { value, error } = await shared.outcome;
    this.record.controlRanIn = shared.ranIn;
    if (error) {
      this.record.control = `control errored: ${error.message.split("\n")[0]}`;
      throw error;
    }
    this.record.controlDetail = value.detail;
    if (value.failed) {
      this.record.control = "failed-as-expected";
      return;
    }
    this.record.control = `naive client did not fail: ${value.detail}`;
    throw new Error(`negative control did not fail: ${value.detail}`);
  }
}

/**
 * Declares a scenario on each of `transports` (default: both). Options as for `scenario`, plus
 * `transports`.
 */
export function matrix(env, name, body, { transports = TRANSPORTS, timeout = 90_000, control = "not run" } = {}) {
  for (const transport of transports) {
    const recordName = matrixName(name, transport);
    test(recordName, { timeout }, () => {
      const record = { name: recordName, transport, passed: false, control };
      const ctx = new MatrixScenario(env, record, transport, name);
      return runRecorded(env, record, ctx, async () => {
        await body(ctx, transport);
        await ctx.checkTransport();
      });
    });
  }
}

/**
 * Gaps on the wire, in ms, between the end of each failed response (status not 200) of `tab` and
 * the next request to an events endpoint, from the browser's own request timings:
 * `[{status, gapMs}]`.
 */
export async function failedResponseGaps(tab) {
  await tab.page.waitForLoadState(); // timings of finished requests are final
  const gaps = [];
  for (let i = 0; i + 1 < tab.streams.length; i++) {
    const failed = tab.streams[i];
    if (failed.status === 200 || failed.status === null) continue;
    const t = failed.request.timing();
    const next = tab.streams[i + 1].request.timing();
    gaps.push({ status: failed.status, gapMs: Math.round(next.startTime - (t.startTime + t.responseEnd)) });
  }
  return gaps;
}

// ---------------------------------------------------------------------------------------------
// Several tabs in one browser context (cross-tab scenarios, issue 5)
//
// `ctx.tab()` gives every tab its own context: no shared BroadcastChannel, Web Locks or storage.
// Tabs of one browser share them, so cross-tab scenarios open a group: `const g = await
// ctx.group()`, then `g.relay(config)`, `g.naive(config)`, `g.page(path)`; every tab of the group
// lives in one context (closed with the scenario like any tab).

/** Tabs of one browser context. `initScript` (a function, with `initArg`) runs in each of its pages before their scripts. */
export class TabGroup {
  constructor(scenario, context) {
    this.scenario = scenario;
    this.context = context;
    this.tabs = [];
  }

  /** A new, empty tab in the group. */
  async tab() {
    const page = await this.context.newPage();
    const tab = new Tab(this.context, page, this.scenario.env.base);
    this.scenario.tabs.push(tab);
    this.tabs.push(tab);
    return tab;
  }

  /** A tab of the group with the relay page open on `config`. */
  async relay(config) {
    return (await this.tab()).open("relay", config);
  }

  /** A tab of the group with the naive page open on `config`. */
  async naive(config) {
    return (await this.tab()).open("naive", config);
  }

  /** A tab of the group on another harness page (`tabs`: several streams in one page, or none). */
  async open(kind, config = {}) {
    return (await this.tab()).open(kind, config);
  }
}

/** Opens a group of tabs sharing one browser context (see `TabGroup`). */
Scenario.prototype.group = async function group({ initScript, initArg } = {}) {
  const context = await this.env.browser.newContext();
  if (initScript) await context.addInitScript(initScript, initArg);
  return new TabGroup(this, context);
};

