// The README's JavaScript example, run as written: the first ```js block of "Using it in a page",
// with the package name resolved to /pkg/index.js (what an import map or a bundler does), as a
// module in a page served by the reference server. It must finish the turn and print what the
// README says it prints. No negative control: this checks the documentation, not a §1 failure.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, scenario, suite } from "./harness.mjs";

const env = suite();

function readmeExample() {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Using it in a page"));
  const match = section.match(/```js\n([\s\S]*?)```/);
  assert.ok(match, "the README has a js example under 'Using it in a page'");
  return match[1];
}

scenario(env, "README example runs as written", async (ctx) => {
  const source = readmeExample();
  assert.match(source, /from "sse-relay"/, "the example imports the package by name");
  // The module's own bindings (`stream`, `text`, `key`) are read by a line appended to the same
  // module, after the example's last statement; nothing in the example itself changes.
  const module = source.replace(/from "sse-relay"/, 'from "/pkg/index.js"') +
    "\nwindow.readme = { text, stats: stream.stats, state: stream.state, key };\n";
  const tab = await ctx.tab();
  const logs = [];
  tab.page.on("console", (m) => logs.push(m.text()));
  // A harness page with no ?config= runs nothing of its own: a blank same-origin page.
  await tab.page.goto(`${env.base}/e2e/relay.html`);
  await tab.page.addScriptTag({ type: "module", content: module });
  await tab.page.waitForFunction(() => window.readme, null, { timeout: 20_000, polling: 50 });
  const result = await tab.page.evaluate(() => window.readme);
  const journal = await ctx.api.journal(result.key);
  const tokens = journal.filter((f) => f.event === "token").map((f) => JSON.parse(f.data).text).join("");
  assert.equal(result.state, "closed", "the stream ended after done");
  assert.equal(result.text, tokens, "the transcript is the journal's text");
  assert.equal(result.stats.delivered, 21, "20 tokens and done, as the README's comment says");
  assert.equal(result.stats.duplicates, 0);
  assert.ok(logs.some((l) => l.startsWith(tokens.slice(0, 10))), `console.log printed the text: ${logs.join(" | ")}`);
  ctx.figure("delivered", result.stats.delivered);
  ctx.figure("transcriptCharacters", tokens.length);
}, { control: "none: documentation check" });
