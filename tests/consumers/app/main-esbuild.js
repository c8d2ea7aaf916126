// Entry for esbuild, which does not follow `new URL(..., import.meta.url)`: the documented
// recipe imports the module's URL (`--loader:.wasm=file` copies it next to the bundle) and tells
// the package where it is before the first open.
import wasm from "sse-relay/sse_relay_bg.wasm";
import { ready } from "sse-relay";
import { run } from "./app.js";

await ready({ wasm });
run();
