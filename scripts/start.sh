#!/usr/bin/env bash
# `npm start`: sets up what is missing, builds the package, and runs the reference server serving
# the cockpit (www/) on http://127.0.0.1:${PORT:-8787} until stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent build
cargo build -p sse-relay-server --release --quiet
port=${PORT:-8787}
# The server prints its address first (`listening on http://127.0.0.1:<port>`, also with PORT=0).
# Pings every second: the cockpit notices a stalled connection after 4 s of silence.
printf 'sse-relay cockpit: open the address below, then a second tab of it (Ctrl-C stops the server)\n'
exec target/release/sse-relay-server --port "$port" --static www --ping-ms 1000
