// The npm package as users load it: from a plain `<script type="module">` page (www/e2e/plain.html
// imports /pkg/index.js), and from a Vite build of a small app that imports it by package name
// (tests/e2e/vite-app; `sse-relay` resolves through node_modules/sse-relay, a symlink to pkg/ that
// this test creates, which is what `npm link` does). Each must open a stream and deliver a turn.
// No negative control: these check packaging, not a failure mode of §1.
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join, relative } from "node:path";
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

scenario(env, "package loads from a Vite build importing it by package name", async (ctx) => {
  const app = join(ROOT, "tests/e2e/vite-app");
  const modules = join(app, "node_modules");
  const link = join(modules, "sse-relay");
  mkdirSync(modules, { recursive: true });
  if (existsSync(link) || isSymlink(link)) rmSync(link, { recursive: true, force: true });
  symlinkSync(relative(modules, join(ROOT, "pkg")), link, "dir");
  const outDir = join(E2E_DIR, "vite-dist");
  const started = Date.now();
  await build({ configFile: join(app, "vite.config.mjs"), build: { outDir } });
  ctx.figure("viteBuildSeconds", (Date.now() - started) / 1000);
  const assets = readdirSync(join(outDir, "assets"));
  ctx.figure("viteAssets", Object.fromEntries(assets.map((f) => [f, statSync(join(outDir, "assets", f)).size])));
  assert.ok(assets.some((f) => f.endsWith(".wasm")), `the .wasm is emitted as an asset: ${assets}`);

  const server = await startServer({ staticDir: outDir });
  try {
    const key = uniqueKey("vite-app");
    const tab = await ctx.tab(server.url);
    await tab.page.goto(`${server.url}/?key=${key}`);
    await tab.page.waitForFunction(() => window.app?.done || window.app?.error, null, { timeout: 15_000, polling: 50 });
    const result = await tab.page.evaluate(() => window.app);
    assert.equal(result.error, null, `the app failed: ${result.error}\n${tab.console.join("\n")}`);
    const cmp = compare(result.frames, await server.api.journal(key));
    assert.ok(cmp.exact, `vite app transcript: ${cmp.summary}`);
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
