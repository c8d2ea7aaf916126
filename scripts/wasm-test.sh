#!/usr/bin/env bash
# wasm-bindgen-test in headless Chromium: the adapters (src/web, against a live reference server)
# and the smoke test. The server's URL reaches the tests at build time.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
# The backpressure tests stream 50,000 frames each; on a loaded 2-core machine a test can pass the
# runner's 20 s default.
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-60}

cargo build -p sse-relay-server --quiet
log=$(mktemp)
target/debug/sse-relay-server --port 0 --ping-ms 500 --lifetime-secs 600 > "$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q '^listening on ' "$log" && break; sleep 0.1; done
SSE_RELAY_TEST_SERVER=$(sed -n 's/^listening on //p' "$log" | head -n1)
[ -n "$SSE_RELAY_TEST_SERVER" ] || { echo "the reference server did not start" >&2; exit 1; }
export SSE_RELAY_TEST_SERVER

cargo test -p sse-relay --features js --target wasm32-unknown-unknown --lib --test web_smoke
