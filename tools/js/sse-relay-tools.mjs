// Start sse-relay's test binaries from a JavaScript test (Playwright, node:test, anything on
// Node 18+), read their address, drive the proxy's faults, and stop them. No dependencies:
// copy this file into your tests or import it from a checkout.
//
//   import { startServer, startProxy } from "./sse-relay-tools.mjs";
//   const server = await startServer();                      // sse-relay-server on PATH
//   const proxy = await startProxy({ upstream: "http://127.0.0.1:3000" });   // your own server
//   await page.goto(`${proxy.url}/chat`);                    // your app, through the proxy
//   await proxy.live({ cut: true, match: "/chat-42/" });     // break the open stream now
//   await proxy.arm({ status: 503, retryAfter: 1 }, { next: 2 });            // the next 2 requests
//   await proxy.stop(); await server.stop();
//
// Both binaries bind 127.0.0.1, take `--port 0` (a free port) and print
// `listening on http://127.0.0.1:<port>` as their first line; `--lifetime-secs` makes an orphan
// (a test runner killed hard) exit on its own.
import { spawn } from "node:child_process";

/** Processes started here and not stopped yet: killed when this process exits. */
const running = new Set();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts `bin` with `args` (`--port 0` and `--lifetime-secs` added unless given) and resolves
 * once it printed `listening on <url>`: `{ url, child, stop() }`. Rejects with its stderr when it
 * exits first, or after `timeoutMs`.
 */
export function startBinary(bin, args = [], { timeoutMs = 15_000, lifetimeSecs = 600, cwd } = {}) {
  const all = [...args];
  if (!all.some((a) => a === "--port" || a.startsWith("--port="))) all.push("--port", "0");
  if (!all.some((a) => a.startsWith("--lifetime-secs"))) all.push("--lifetime-secs", String(lifetimeSecs));
  const child = spawn(bin, all, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const started = new Promise((resolve, reject) => {
    let stdout = "";
    const fail = (why) => {
      clearTimeout(timer);
      running.delete(child);
      child.kill("SIGKILL");
      reject(new Error(`${bin}: ${why}${stderr.trim() ? `: ${stderr.trim()}` : ""}`));
    };
    const timer = setTimeout(() => fail(`no "listening on" line within ${timeoutMs} ms`), timeoutMs);
    child.once("error", (err) => fail(`cannot start (${err.message})`));
    // `close` comes after the pipes are drained, so the message has all of stderr.
    child.once("close", (code, signal) => fail(`exited with ${signal ?? code} before listening`));
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      const match = /^listening on (http:\/\/\S+)\r?\n/.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners("close");
      child.once("exit", () => running.delete(child));
      child.stdout.resume();
      resolve(match[1]);
    });
  });
  return started.then((url) => ({
    url,
    child,
    /** Stops the process (SIGTERM, then SIGKILL after 3 s); resolves when it exited. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
      running.delete(child);
    },
  }));
}

/** Starts the reference server (`sse-relay-server`): `{ url, stop() }`. */
export function startServer({ bin = "sse-relay-server", args = [], ...options } = {}) {
  return startBinary(bin, args, options);
}

/**
 * Starts the fault proxy in front of `upstream`: `{ url, stop(), live(), arm(), disarm(),
 * stats() }`.
 */
export async function startProxy({ upstream, bin = "sse-relay-proxy", args = [], ...options } = {}) {
  if (!upstream) throw new Error("startProxy: `upstream` (http://host:port) is required");
  const proc = await startBinary(bin, ["--upstream", upstream, ...args], options);
  const control = async (method, path, params = {}) => {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value === undefined || value === false) continue;
      query.set(name, value === true ? "1" : String(value));
    }
    const qs = query.toString();
    const response = await fetch(`${proc.url}/_proxy/${path}${qs ? `?${qs}` : ""}`, { method });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} /_proxy/${path}: ${response.status} ${text.trim()}`);
    return JSON.parse(text);
  };
  return {
    ...proc,
    /**
     * Acts on the open event streams whose path contains `match` (all without): `{ cut: true }`,
     * `{ stall: true }`, `{ garbage: true, garbageEvent: "token" }`. Resolves to
     * `{ affected, live, match }`.
     */
    live: ({ match, ...faults }) => control("POST", "live", { ...faults, match }),
    /**
     * Arms knobs (the `proxy.` query knobs without the prefix: `{ cutAfter: 25 }`,
     * `{ status: 503, retryAfter: 1 }`, `{ delayMs: 800, earlyOpen: true }`...) for the next
     * `next` requests whose path contains `match`.
     */
    arm: (knobs, { next, match } = {}) => control("POST", "arm", { ...knobs, next, match }),
    /** Forgets armed knobs. */
    disarm: () => control("POST", "disarm"),
    /** Open streams, armed knobs, the last 200 requests with their faults. */
    stats: () => control("GET", "stats"),
  };
}

/** `url` with fault knobs added as `proxy.` query parameters: `withFaults(u, { cutAfter: 25 })`. */
export function withFaults(url, knobs) {
  const params = Object.entries(knobs)
    .filter(([, value]) => value !== undefined && value !== false)
    .map(([name, value]) => `proxy.${name}=${encodeURIComponent(value === true ? "1" : String(value))}`);
  if (!params.length) return url;
  return `${url}${url.includes("?") ? "&" : "?"}${params.join("&")}`;
}
