// Builds the benchmark site in target/bench-site/ (served by the reference server with --static):
//   index.html, bench.js          the harness page (bench/pages/)
//   pkg/                          a copy of the built npm package (npm run build)
//   pkg-prof/                     the same package with a wasm that keeps its function names
//                                 (wasm-opt -Oz -g), for readable CPU profiles
//   vendor/<anchor>.js            each anchor bundled and minified by vite (from node_modules)
// and measures the bundle sizes: sse-relay as shipped (target/pkg-size.json) and with its JS glue
// minified by the same minifier, against each anchor minified, all gzipped at level 9.
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export const ANCHORS = [
  { name: "@microsoft/fetch-event-source", file: "fetch-event-source", entry: `export { fetchEventSource } from "@microsoft/fetch-event-source";` },
  { name: "reconnecting-eventsource", file: "reconnecting-eventsource", entry: `export { default as ReconnectingEventSource } from "reconnecting-eventsource";` },
  { name: "event-source-polyfill", file: "event-source-polyfill", entry: `export { EventSourcePolyfill } from "event-source-polyfill";` },
];

const gz = (buffer) => gzipSync(buffer, { level: 9 }).length;

export async function buildSite(root) {
  const site = join(root, "target/bench-site");
  rmSync(site, { recursive: true, force: true });
  mkdirSync(site, { recursive: true });
  for (const file of readdirSync(join(root, "bench/pages"))) copyFileSync(join(root, "bench/pages", file), join(site, file));
  cpSync(join(root, "pkg"), join(site, "pkg"), { recursive: true, dereference: true });

  // The profiling twin: the same glue, the wasm optimized the same way but keeping its names.
  const prof = join(site, "pkg-prof");
  cpSync(join(root, "pkg"), prof, { recursive: true, dereference: true });
  const raw = join(root, "target/wasm-bindgen/sse_relay_bg.wasm");
  if (existsSync(raw)) {
    execFileSync(join(root, "node_modules/.bin/wasm-opt"), [
      raw, "-Oz", "-g", "--strip-producers",
      "--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext",
      "--enable-mutable-globals", "--enable-reference-types", "--enable-multivalue",
      "-o", join(prof, "sse_relay_bg.wasm"),
    ], { stdio: ["ignore", "inherit", "inherit"] });
  }

  // The anchors: one ES module each, bundled from node_modules and minified by vite.
  const { build, minify } = await import("vite");
  const entries = join(root, "target/bench-entries");
  rmSync(entries, { recursive: true, force: true });
  mkdirSync(entries, { recursive: true });
  const sizes = [];
  for (const anchor of ANCHORS) {
    const entry = join(entries, `${anchor.file}.js`);
    writeFileSync(entry, anchor.entry + "\n");
    await build({
      configFile: false,
      root,
      logLevel: "silent",
      build: {
        outDir: join(site, "vendor"),
        emptyOutDir: false,
        minify: true,
        lib: { entry, formats: ["es"], fileName: () => `${anchor.file}.js` },
      },
    });
    const bytes = readFileSync(join(site, "vendor", `${anchor.file}.js`));
    const version = JSON.parse(readFileSync(join(root, "node_modules", anchor.name, "package.json"), "utf8")).version;
    sizes.push({ name: anchor.name, version, minified: bytes.length, gzip: gz(bytes) });
  }

  // sse-relay: what a page downloads (wasm + glue + entry), as shipped and with the JS minified.
  const pkgSize = JSON.parse(readFileSync(join(root, "target/pkg-size.json"), "utf8"));
  const wasm = readFileSync(join(root, "pkg/sse_relay_bg.wasm"));
  let jsMinGzip = 0;
  let jsMin = 0;
  const snippets = readdirSync(join(root, "pkg/snippets"), { recursive: true })
    .filter((f) => f.endsWith(".js"))
    .map((f) => join("snippets", f));
  for (const file of ["sse_relay.js", "index.js", ...snippets]) {
    const source = readFileSync(join(root, "pkg", file), "utf8");
    const out = await minify(file, source, { module: true, compress: true, mangle: true });
    if (out.errors?.length) throw new Error(`minify ${file}: ${out.errors.map((e) => e.message).join("; ")}`);
    jsMin += Buffer.byteLength(out.code);
    jsMinGzip += gz(Buffer.from(out.code));
  }
  const relay = {
    shipped: pkgSize,
    wasmGzip: gz(wasm),
    jsGzip: pkgSize.gzip - gz(wasm),
    jsMinified: jsMin,
    jsMinifiedGzip: jsMinGzip,
    minifiedTotalGzip: gz(wasm) + jsMinGzip,
  };
  return { site, sizes: { relay, anchors: sizes } };
}
