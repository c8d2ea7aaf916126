// The npm package as users load it: from a plain `<script type="module">` page (www/e2e/plain.html
// imports /pkg/index.js), from Vite, webpack and esbuild builds of a small app that imports it by
// package name (tests/consumers/app; `sse-relay` resolves through node_modules/sse-relay, a
// symlink to pkg/ that this test creates, which is what `npm link` does), under a strict
// Content-Security-Policy, and in a React component under StrictMode. Each must open a stream and
// deliver a turn exactly; the failures users met (esbuild without the recipe, a CSP without
// 'wasm-unsafe-eval') must be a RelayLoadError that says what to do.
// No negative control: these check packaging, not a failure mode of §1.
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { build } from "vite";
import { E2E_DIR, ROOT, compare, scenario, startServer, suite, uniqueKey } from "./harness.mjs";

const env = suite();
const NO_CONTROL = "none: packaging check";

/** Parses the `<id> <event> <data>` lines the pages print. */
const parseLines = (text) =>
  text.split("\n").filter(Boolean).map((line) => {
    const [id, event, ...rest] = line.split(" ");
    return { id, event, data: rest.join(" ") };
  });

scenario(env, "package loads from a plain <script type=module> page", async (ctx) => {
  const key = uniqueKey("plain-module");
  const tab = await ctx.tab();
  await tab.page.goto(`${env.base}/e2e/plain.html?key=${key}`);
  await tab.page.waitForFunction(() => document.title.startsWith("done"), null, { timeout: 15_000, polling: 50 });
  const text = await tab.page.textContent("#out");
  const cmp = compare(parseLines(text), await ctx.api.journal(key));
  assert.ok(cmp.exact, `plain page transcript: ${cmp.summary}\n${tab.console.join("\n")}`);
  ctx.figure("title", await tab.page.title());
}, { control: NO_CONTROL });

/** Links `node_modules/sse-relay` of `dir` to the built package, as `npm link` would. */
function linkPackage(dir) {
  const modules = join(dir, "node_modules");
  const link = join(modules, "sse-relay");
  mkdirSync(modules, { recursive: true });
  if (existsSync(link) || isSymlink(link)) rmSync(link, { recursive: true, force: true });
  symlinkSync(relative(modules, join(ROOT, "pkg")), link, "dir");
}

const APP = join(ROOT, "tests/consumers/app");
const INDEX = `<!doctype html><meta charset="utf-8"><pre id="out"></pre><script type="module" src="./bundle.js"></script>\n`;

/** Serves `outDir` with a reference server and checks the bundled app delivers its turn exactly. */
async function runBundledApp(ctx, outDir, label) {
  const server = await startServer({ staticDir: outDir });
  try {
    const key = uniqueKey(label);
    const tab = await ctx.tab(server.url);
    await tab.page.goto(`${server.url}/?key=${key}`);
    await tab.page.waitForFunction(() => window.app?.done || window.app?.error, null, { timeout: 15_000, polling: 50 });
    const result = await tab.page.evaluate(() => window.app);
    assert.equal(result.error, null, `the ${label} app failed: ${result.error}\n${tab.console.join("\n")}`);
    const cmp = compare(result.frames, await server.api.journal(key));
    assert.ok(cmp.exact, `${label} app transcript: ${cmp.summary}`);
    return result;
  } finally {
    await server.close();
  }
}

/** Builds one entry of the app with esbuild into `outDir` (plus an index.html). */
async function esbuildApp(entry, outDir, extra = {}) {
  const esbuild = await import("esbuild");
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: [entry], bundle: true, format: "esm", target: "es2022", outfile: join(outDir, "bundle.js"),
    absWorkingDir: dirname(entry), logLevel: "silent", ...extra,
  });
  writeFileSync(join(outDir, "index.html"), INDEX);
}

scenario(env, "package loads from a Vite build importing it by package name", async (ctx) => {
  linkPackage(APP);
  const outDir = join(E2E_DIR, "vite-dist");
  const started = Date.now();
  await build({ configFile: join(APP, "vite.config.mjs"), build: { outDir } });
  ctx.figure("viteBuildSeconds", (Date.now() - started) / 1000);
  const assets = readdirSync(join(outDir, "assets"));
  ctx.figure("viteAssets", Object.fromEntries(assets.map((f) => [f, statSync(join(outDir, "assets", f)).size])));
  assert.ok(assets.some((f) => f.endsWith(".wasm")), `the .wasm is emitted as an asset: ${assets}`);
  await runBundledApp(ctx, outDir, "vite");
}, { control: NO_CONTROL });

scenario(env, "package loads from a webpack 5 build (no configuration for the .wasm)", async (ctx) => {
  linkPackage(APP);
  const outDir = join(E2E_DIR, "webpack-dist");
  rmSync(outDir, { recursive: true, force: true });
  const { default: webpack } = await import("webpack");
  const stats = await new Promise((done, fail) =>
    webpack({
      mode: "production", context: APP, entry: "./main.js", target: "web",
      output: { path: outDir, filename: "bundle.js", module: true, publicPath: "auto" },
      experiments: { outputModule: true, topLevelAwait: true },
      resolve: { symlinks: false },
      performance: { hints: false },
    }, (err, result) => (err ? fail(err) : done(result))));
  assert.ok(!stats.hasErrors(), stats.toString("errors-only"));
  writeFileSync(join(outDir, "index.html"), INDEX);
  const emitted = readdirSync(outDir);
  ctx.figure("webpackAssets", emitted);
  assert.ok(emitted.some((f) => f.endsWith(".wasm")), `webpack emits the .wasm: ${emitted}`);
  await runBundledApp(ctx, outDir, "webpack");
}, { control: NO_CONTROL });

scenario(env, "package loads from an esbuild bundle with the documented recipe; without it, a RelayLoadError that says what to do", async (ctx) => {
  linkPackage(APP);
  // Without the recipe esbuild ships no .wasm: the first open must fail clearly, not with a raw 404.
  const bare = join(E2E_DIR, "esbuild-bare");
  await esbuildApp(join(APP, "main.js"), bare);
  const server = await startServer({ staticDir: bare });
  try {
    const tab = await ctx.tab(server.url);
    await tab.page.goto(`${server.url}/?key=${uniqueKey("esbuild-bare")}`);
    await tab.page.waitForFunction(() => window.app?.done || window.app?.error, null, { timeout: 15_000, polling: 50 });
    const { error } = await tab.page.evaluate(() => window.app);
    ctx.figure("withoutRecipe", error);
    assert.match(error ?? "", /^RelayLoadError: .*ready\(\{ wasm/, "a RelayLoadError naming ready({ wasm })");
  } finally {
    await server.close();
  }
  // The recipe: import the module's URL (loader `file`) and pass it to ready() before the first open.
  const outDir = join(E2E_DIR, "esbuild-dist");
  await esbuildApp(join(APP, "main-esbuild.js"), outDir, { loader: { ".wasm": "file" }, assetNames: "[name]-[hash]" });
  ctx.figure("esbuildAssets", readdirSync(outDir));
  await runBundledApp(ctx, outDir, "esbuild");
}, { control: NO_CONTROL });

scenario(env, "under a strict Content-Security-Policy: works with 'wasm-unsafe-eval', a RelayLoadError naming it without", async (ctx) => {
  const key = uniqueKey("csp");
  const tab = await ctx.tab();
  await tab.page.goto(`${env.base}/e2e/csp.html?key=${key}`);
  await tab.page.waitForFunction(() => window.csp?.done || window.csp?.error, null, { timeout: 15_000, polling: 50 });
  const allowed = await tab.page.evaluate(() => window.csp);
  assert.equal(allowed.error, null, `script-src 'self' 'wasm-unsafe-eval': ${JSON.stringify(allowed.error)}\n${tab.console.join("\n")}`);
  const journal = await ctx.api.journal(key);
  const cmp = compare(allowed.frames, journal);
  assert.ok(cmp.exact, `csp page transcript: ${cmp.summary}`);
  assert.deepEqual(allowed.afterFree, { state: "closed", delivered: journal.length, cursor: journal.at(-1).id }, "readable after free()");

  const strict = await ctx.tab();
  await strict.page.goto(`${env.base}/e2e/csp-strict.html?key=${uniqueKey("csp-strict")}`);
  await strict.page.waitForFunction(() => window.csp?.done || window.csp?.error, null, { timeout: 15_000, polling: 50 });
  const refused = await strict.page.evaluate(() => window.csp);
  ctx.figure("strictError", refused.error);
  assert.equal(refused.error?.name, "RelayLoadError");
  assert.ok(refused.error.isLoadError, "instanceof RelayLoadError");
  assert.match(refused.error.message, /wasm-unsafe-eval/);
}, { control: NO_CONTROL });

scenario(env, "a React component under StrictMode: opens on mount, closes on unmount, no connection outlives it", async (ctx) => {
  const dir = join(ROOT, "tests/consumers/react");
  linkPackage(dir);
  const outDir = join(E2E_DIR, "react-dist");
  await esbuildApp(join(dir, "main.jsx"), outDir, {
    jsx: "automatic", loader: { ".wasm": "file" },
    define: { "process.env.NODE_ENV": '"development"' }, // StrictMode's double mount
  });
  writeFileSync(join(outDir, "index.html"), INDEX.replace("<pre", '<div id="root"></div><pre'));
  const server = await startServer({ staticDir: outDir });
  try {
    const key = uniqueKey("react");
    const tab = await ctx.tab(server.url);
    await tab.page.goto(`${server.url}/?key=${key}`);
    await tab.page.waitForFunction(() => window.react?.opened >= 1 || window.react?.errors.length, null, { timeout: 15_000, polling: 50 });
    // A turn that outlasts the checks: the component is unmounted mid-stream.
    await server.api.post(`/streams/${key}/turns?tokens=400&rateHz=50`);
    await tab.page.waitForFunction(() => window.react.rendered.length >= 5 || window.react.errors.length, null, { timeout: 15_000, polling: 50 });
    const during = await server.api.stats(key);
    const mounted = await tab.page.evaluate(() => ({ ...window.react, rendered: window.react.rendered.length }));
    assert.deepEqual(mounted.errors, [], tab.console.join("\n"));
    ctx.figure("mounted", { opened: mounted.opened, closed: mounted.closed, rendered: mounted.rendered, serverConnections: during.connections });
    assert.equal(during.connections, 1, `StrictMode's double mount: ${during.connections} connections open while streaming`);
    await tab.page.evaluate(() => window.unmount());
    const after = await server.api.waitStats(key, (s) => s.connections === 0, { timeout: 5_000, what: "no connection after unmount" });
    const state = await tab.page.evaluate(() => window.react.lastState());
    ctx.figure("afterUnmount", { connections: after.connections, state });
    assert.equal(state, "closed");
  } finally {
    await server.close();
  }
}, { control: NO_CONTROL });

function isSymlink(path) {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
