#!/usr/bin/env bash
# End-to-end tier: the built npm package (pkg/) in headless Chromium against the reference server.
# Assumes `scripts/setup.sh` ran (npm dependencies, /usr/bin/chromium) and `npm run build` made pkg/.
# Writes target/e2e/summary.json. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f pkg/index.js ]; then
  echo "e2e: pkg/index.js is missing: run \`npm run build\` first" >&2
  exit 1
fi
cargo build -p sse-relay-server -p sse-relay-tools --quiet

# A fresh summary for this run: every test file adds its records under the same run id.
rm -rf target/e2e/results target/e2e/summary.json
export E2E_RUN_ID="e2e-$$-$(date +%s)"

# One file at a time: each starts its own server and Chromium, and the machine has 2 cores.
node --test --test-concurrency=1 tests/e2e/*.test.mjs
