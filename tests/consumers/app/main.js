// Entry for bundlers that ship the package's .wasm by themselves (Vite, webpack 5: both follow
// `new URL("./sse_relay_bg.wasm", import.meta.url)` in the package's entry).
import { run } from "./app.js";

run();
