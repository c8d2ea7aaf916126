// `npm run build`: the npm package in pkg/, from the Rust crate.
//   cargo build (wasm32, release) -> wasm-bindgen --target web -> wasm-opt -Oz (binaryen from npm)
//   + the entry module, its types and package.json; the JavaScript without comments or
//   indentation. Prints the gzipped size.
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// Built into a staging folder, then moved into pkg/ file by file (rename is atomic), so a page
// or test loading the package meanwhile never sees it missing or half written.
const pkg = join(root, "target", "pkg-staging");
const dest = join(root, "pkg");
const raw = join(root, "target", "wasm-bindgen");
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });

// The package's module is the `npm/` crate: the library with its JavaScript bindings (feature
// `js`), the allocator and the exact wasm-bindgen version, which the library leaves to its host.
run("cargo", ["build", "-p", "sse-relay-npm", "--lib", "--release", "--target", "wasm32-unknown-unknown", "--quiet"]);
rmSync(raw, { recursive: true, force: true });
// No generated .d.ts: the package's types are npm/index.d.ts, written to match the docs.
run("wasm-bindgen", [
  join(root, "target/wasm32-unknown-unknown/release/sse_relay_npm.wasm"),
  "--target", "web", "--no-typescript", "--out-dir", raw, "--out-name", "sse_relay",
]);

rmSync(pkg, { recursive: true, force: true });
mkdirSync(pkg);
// The features rustc enables by default for wasm32-unknown-unknown.
run(join(root, "node_modules/.bin/wasm-opt"), [
  join(raw, "sse_relay_bg.wasm"), "-Oz", "--strip-debug", "--strip-producers",
  "--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext",
  "--enable-mutable-globals", "--enable-reference-types", "--enable-multivalue",
  "-o", join(pkg, "sse_relay_bg.wasm"),
]);
copyFileSync(join(raw, "sse_relay.js"), join(pkg, "sse_relay.js"));
// The JavaScript the Rust side imports (src/bindings.js), where the glue expects it.
cpSync(join(raw, "snippets"), join(pkg, "snippets"), { recursive: true });
const snippets = readdirSync(join(pkg, "snippets"), { recursive: true })
  .filter((f) => f.endsWith(".js"))
  .map((f) => join("snippets", f).split("\\").join("/"));
// The error classes live in that snippet (the Rust side throws them); the entry re-exports them
// from one stable path, so `instanceof` sees the very classes that are thrown.
const bindingsJs = snippets.find((f) => f.endsWith("/src/bindings.js"));
writeFileSync(join(pkg, "errors.js"), `export * from "./${bindingsJs}";\n`);
for (const file of ["index.js", "index.d.ts"]) copyFileSync(join(root, "npm", file), join(pkg, file));
for (const file of ["LICENSE-MIT", "LICENSE-APACHE"]) copyFileSync(join(root, file), join(pkg, file));
copyFileSync(join(root, "docs/js-api.md"), join(pkg, "README.md"));
copyFileSync(join(root, "docs/PROTOCOL.md"), join(pkg, "PROTOCOL.md"));

// The JavaScript ships without its comments and indentation (a parser's output, not a regex's;
// every name is kept, so stack traces stay readable): the commented sources are in the
// repository, and each comment cost the page download bytes (3.5 KB gzipped in all).
const { transformSync } = await import("esbuild");
for (const file of ["sse_relay.js", "index.js", "errors.js", ...snippets]) {
  const path = join(pkg, file);
  writeFileSync(path, transformSync(readFileSync(path, "utf8"), { loader: "js", minifyWhitespace: true, legalComments: "none" }).code);
}

const cargo = readFileSync(join(root, "Cargo.toml"), "utf8");
const version = cargo.match(/\[package\][^[]*?\nversion = "([^"]+)"/)[1];
const files = [
  "index.js", "index.d.ts", "errors.js", "sse_relay.js", "sse_relay_bg.wasm",
  "README.md", "PROTOCOL.md", "LICENSE-MIT", "LICENSE-APACHE",
];
const packaged = [...files, "snippets/"];
writeFileSync(join(pkg, "package.json"), JSON.stringify({
  name: "sse-relay",
  version,
  description: "Every journaled server-sent frame exactly once, in order, in every tab: a ready gate, cursor resume and dedup over EventSource (Rust/WebAssembly).",
  license: "MIT OR Apache-2.0",
  type: "module",
  main: "./index.js",
  types: "./index.d.ts",
  exports: {
    ".": { types: "./index.d.ts", default: "./index.js" },
    "./sse_relay_bg.wasm": "./sse_relay_bg.wasm",
    "./package.json": "./package.json",
  },
  files: packaged,
  // Only the entry has side effects (it wraps the glue's class: load on first open, free() as
  // close()); importing still loads nothing: the module loads on the first open, and a
  // server-rendering build may import it (streams open only in a browser).
  sideEffects: ["./index.js"],
  engines: { node: ">=18" },
  keywords: ["sse", "server-sent-events", "eventsource", "wasm", "streaming", "llm"],
}, null, 2) + "\n");

mkdirSync(dest, { recursive: true });
// What an older build left that this one no longer ships.
for (const file of readdirSync(dest)) {
  if (![...files, "package.json", "snippets"].includes(file)) rmSync(join(dest, file), { recursive: true, force: true });
}
for (const file of files) renameSync(join(pkg, file), join(dest, file));
// A directory cannot be renamed over a full one: swap it (a page loading right now may miss it).
if (existsSync(join(dest, "snippets"))) {
  rmSync(join(dest, "snippets.old"), { recursive: true, force: true });
  renameSync(join(dest, "snippets"), join(dest, "snippets.old"));
}
renameSync(join(pkg, "snippets"), join(dest, "snippets"));
rmSync(join(dest, "snippets.old"), { recursive: true, force: true });
renameSync(join(pkg, "package.json"), join(dest, "package.json"));

// Size: what a page downloads (wasm + glue + entry), raw and gzipped.
const shipped = ["sse_relay_bg.wasm", "sse_relay.js", "index.js", "errors.js", ...snippets].map((f) => readFileSync(join(dest, f)));
const bytes = shipped.reduce((n, b) => n + b.length, 0);
const gzip = shipped.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0);
const size = { wasm: shipped[0].length, glue: bytes - shipped[0].length, bytes, gzip };
mkdirSync(join(root, "target"), { recursive: true });
writeFileSync(join(root, "target/pkg-size.json"), JSON.stringify(size) + "\n");
console.log(`pkg/: ${(bytes / 1024).toFixed(1)} KiB, ${(gzip / 1024).toFixed(1)} KiB gzipped (wasm ${size.wasm} B, JS ${size.glue} B)`);
