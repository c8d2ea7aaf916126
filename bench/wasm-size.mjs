// Where the bytes of the wasm module go: each function's code size, read from the module itself
// (its code section, and the names its name section keeps), summed by what the name says it is.
// Run on the profiling twin (`wasm-opt -Oz -g`: optimized like the package, names kept), so the
// sizes are the shipped ones. `node bench/wasm-size.mjs <module.wasm>` prints the table.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

/** Reads an unsigned LEB128 at `at`: `[value, next]`. */
function leb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, at];
    shift += 7;
  }
}

/** Reads a length-prefixed UTF-8 name at `at`: `[name, next]`. */
function name(bytes, at) {
  const [len, start] = leb(bytes, at);
  return [new TextDecoder().decode(bytes.subarray(start, start + len)), start + len];
}

/** `{ functions: [{ name, bytes }], data, other, total }` of a wasm module. */
export function wasmSizes(bytes) {
  let at = 8; // magic + version
  let imported = 0;
  const bodies = [];
  const names = new Map();
  let data = 0;
  let other = 0;
  while (at < bytes.length) {
    const id = bytes[at];
    let size;
    [size, at] = leb(bytes, at + 1);
    const end = at + size;
    if (id === 2) {
      // Imports: function imports come first in the function index space.
      let count;
      [count, at] = leb(bytes, at);
      for (let i = 0; i < count; i++) {
        [, at] = name(bytes, at); // module
        [, at] = name(bytes, at); // field
        const kind = bytes[at++];
        if (kind === 0) {
          imported++;
          [, at] = leb(bytes, at);
        } else if (kind === 1) {
          at++; // reftype
          const flags = bytes[at++];
          [, at] = leb(bytes, at);
          if (flags & 1) [, at] = leb(bytes, at);
        } else if (kind === 2) {
          const flags = bytes[at++];
          [, at] = leb(bytes, at);
          if (flags & 1) [, at] = leb(bytes, at);
        } else {
          at += 2; // global: valtype, mutability
        }
      }
      other += size;
    } else if (id === 10) {
      let count;
      [count, at] = leb(bytes, at);
      for (let i = 0; i < count; i++) {
        let len;
        const from = at;
        [len, at] = leb(bytes, at);
        at += len;
        bodies.push(at - from);
      }
    } else if (id === 11) {
      data += size;
    } else if (id === 0) {
      let section;
      [section, at] = name(bytes, at);
      if (section === "name") {
        while (at < end) {
          const kind = bytes[at];
          let subsize;
          [subsize, at] = leb(bytes, at + 1);
          const subend = at + subsize;
          if (kind === 1) {
            let count;
            [count, at] = leb(bytes, at);
            for (let i = 0; i < count; i++) {
              let index;
              let text;
              [index, at] = leb(bytes, at);
              [text, at] = name(bytes, at);
              names.set(index, text);
            }
          }
          at = subend;
        }
      }
      // Custom sections (names, producers) are stripped from the shipped module: not counted.
    } else {
      other += size;
    }
    at = end;
  }
  const functions = bodies.map((size, i) => ({ name: names.get(imported + i) ?? `function ${imported + i}`, bytes: size }));
  return { functions, data, other, code: bodies.reduce((a, b) => a + b, 0) };
}

// What a function is, from its (demangled) name: the first rule that matches.
const PARTS = [
  ["sse-relay core: session, parser, dedup, cursor, JSON, Durable Streams", /sse_relay::core::(session|parser|dedup|cursor|json|durable|frame|text|retry_after|backoff|profile|time)\b/],
  ["sse-relay core: tabs (peer, cross-tab protocol, buffer)", /sse_relay::core::(peer|tabs)\b/],
  ["sse-relay shell (driver) and browser adapters", /sse_relay::(relay|web)::/],
  ["sse-relay bindings and options", /sse_relay::(bindings|options|error)|sse_relay_npm|framesource|relaystream/i],
  ["formatting and panics (core::fmt, core::panicking)", /core::(fmt|panicking|panic|result::unwrap_failed|option::expect_failed)|escape_debug|core::str::slice_error_fail|__rust_start_panic|rust_panic|std::panicking|std::alloc::default_alloc_error_hook|alloc::raw_vec::handle_error|capacity_overflow/],
  ["wasm-bindgen, js-sys, web-sys (shims, closures, futures to promises)", /wasm_bindgen|js_sys|web_sys|__wbindgen|__wbg|externref|closure|wbg/i],
  ["allocator (talc)", /talc|__rust_alloc|__rust_dealloc|__rust_realloc|__rdl_/],
  ["futures", /futures/],
  ["std collections, strings, iterators (generic code instantiated for our types)", /alloc::|core::|std::|hashbrown/],
];

export function breakdown(bytes) {
  const { functions, data, other, code } = wasmSizes(bytes);
  const parts = new Map(PARTS.map(([label]) => [label, { bytes: 0, count: 0, largest: null }]));
  const rest = { bytes: 0, count: 0, largest: null };
  for (const f of functions) {
    // Standard library names carry their crate's hash: `core[c5930c85a12de822]::fmt`.
    const name = f.name.replace(/\[[0-9a-f]+\]/g, "");
    const hit = PARTS.find(([, pattern]) => pattern.test(name));
    const part = hit ? parts.get(hit[0]) : rest;
    part.bytes += f.bytes;
    part.count++;
    if (!part.largest || f.bytes > part.largest.bytes) part.largest = f;
  }
  const rows = [...parts].map(([label, p]) => ({ label, ...p }));
  rows.push({ label: "other (unnamed or unmatched)", ...rest });
  rows.push({ label: "data (strings, tables)", bytes: data, count: null, largest: null });
  rows.push({ label: "module structure (types, imports, exports, elements)", bytes: other, count: null, largest: null });
  return { rows, total: code + data + other, functions: functions.length, largest: [...functions].sort((a, b) => b.bytes - a.bytes).slice(0, 12) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bytes = readFileSync(process.argv[2]);
  const { rows, total, functions, largest } = breakdown(bytes);
  console.log(`${process.argv[2]}: ${total} B counted (${bytes.length} B with names; ${gzipSync(bytes, { level: 9 }).length} B gzipped), ${functions} functions`);
  for (const r of rows) console.log(`${String(r.bytes).padStart(7)} B ${((r.bytes / total) * 100).toFixed(1).padStart(5)} %  ${r.label}${r.count !== null ? ` (${r.count} functions${r.largest ? `, largest ${r.largest.bytes} B: ${r.largest.name.slice(0, 80)}` : ""})` : ""}`);
  console.log("largest functions:");
  for (const f of largest) console.log(`${String(f.bytes).padStart(7)} B  ${f.name.slice(0, 110)}`);
}
