// Built by tests/e2e/10-packaging.test.mjs into target/e2e/vite-dist; `sse-relay` resolves through
// node_modules/sse-relay, a symlink to the repo's pkg/ that the test creates (what `npm link` does).
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  logLevel: "warn",
  build: {
    target: "es2022",
    emptyOutDir: true,
  },
});
