#!/usr/bin/env bash
# `npm start`: sets up what is missing, builds the package, and runs the reference server serving
# the demo (www/) on http://127.0.0.1:${PORT:-8787} until stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent build
cargo build -p sse-relay-server --release --quiet
port=${PORT:-8787}
printf 'sse-relay demo on http://127.0.0.1:%s/ (Ctrl-C stops it)\n' "$port"
exec target/release/sse-relay-server --port "$port" --static www --ping-ms 5000
