// `npm run build`: the npm package in pkg/, from the Rust crate.
//   cargo build (wasm32, release) -> wasm-bindgen --target web -> wasm-opt -Oz (binaryen from npm)
//   + the entry module, its types and package.json. Prints the gzipped size.
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

run("cargo", ["build", "-p", "sse-relay", "--lib", "--release", "--target", "wasm32-unknown-unknown", "--quiet"]);
rmSync(raw, { recursive: true, force: true });
run("wasm-bindgen", [
  join(root, "target/wasm32-unknown-unknown/release/sse_relay.wasm"),
  "--target", "web", "--out-dir", raw, "--out-name", "sse_relay",
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
for (const file of ["sse_relay.js", "sse_relay.d.ts"]) copyFileSync(join(raw, file), join(pkg, file));
// The JavaScript the Rust side imports (src/bindings.js), where the glue expects it.
cpSync(join(raw, "snippets"), join(pkg, "snippets"), { recursive: true });
const snippets = readdirSync(join(pkg, "snippets"), { recursive: true })
  .filter((f) => f.endsWith(".js"))
  .map((f) => join("snippets", f));

writeFileSync(join(pkg, "index.js"), `// sse-relay: loads its WebAssembly module on first use, so importing costs nothing.
import init, { RelayStream } from "./sse_relay.js";

let loading;
/** Loads the module once. \`RelayStream.open\` calls it; call it yourself only to load early. */
export function ready() {
  loading ??= init({ module_or_path: new URL("./sse_relay_bg.wasm", import.meta.url) }).then(() => undefined);
  return loading;
}

const openLoaded = RelayStream.open;
RelayStream.open = async function open(url, options) {
  await ready();
  return openLoaded.call(RelayStream, url, options);
};

export { RelayStream };
`);
writeFileSync(join(pkg, "index.d.ts"), `export { RelayStream } from "./sse_relay.js";
export type {
  Frame, FrameIterator, Cursor, RelayState, RelayStats, RelayOptions, RelayEventMap, RelayError, RelayErrorName,
} from "./sse_relay.js";
/** Loads the WebAssembly module (\`RelayStream.open\` does it by itself). */
export function ready(): Promise<void>;
`);

const cargo = readFileSync(join(root, "Cargo.toml"), "utf8");
const version = cargo.match(/\[package\][^[]*?\nversion = "([^"]+)"/)[1];
const files = ["index.js", "index.d.ts", "sse_relay.js", "sse_relay.d.ts", "sse_relay_bg.wasm", "README.md"];
const packaged = [...files, "snippets/"];
writeFileSync(join(pkg, "package.json"), JSON.stringify({
  name: "sse-relay",
  version,
  description: "Every journaled server-sent frame exactly once, in order, in every tab: a ready gate, cursor resume and dedup over EventSource (Rust/WebAssembly).",
  license: "MIT OR Apache-2.0",
  type: "module",
  main: "./index.js",
  types: "./index.d.ts",
  exports: { ".": { types: "./index.d.ts", default: "./index.js" }, "./package.json": "./package.json" },
  files: packaged,
  keywords: ["sse", "server-sent-events", "eventsource", "wasm", "streaming", "llm"],
}, null, 2) + "\n");
copyFileSync(join(root, "docs/js-api.md"), join(pkg, "README.md"));

mkdirSync(dest, { recursive: true });
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
const shipped = ["sse_relay_bg.wasm", "sse_relay.js", "index.js", ...snippets].map((f) => readFileSync(join(dest, f)));
const bytes = shipped.reduce((n, b) => n + b.length, 0);
const gzip = shipped.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0);
const size = { wasm: shipped[0].length, glue: bytes - shipped[0].length, bytes, gzip };
mkdirSync(join(root, "target"), { recursive: true });
writeFileSync(join(root, "target/pkg-size.json"), JSON.stringify(size) + "\n");
console.log(`pkg/: ${(bytes / 1024).toFixed(1)} KiB, ${(gzip / 1024).toFixed(1)} KiB gzipped (wasm ${size.wasm} B, JS ${size.glue} B)`);
