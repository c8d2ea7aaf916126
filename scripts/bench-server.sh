#!/usr/bin/env bash
# `npm run bench:server`: the journal server under load, in memory and on Redis, side by side in
# one run: replay throughput to one client, live fan-out throughput to 100 connections, and
# connections held on one key by one process (1,000, 2,500, 5,000 and 10,000 by default) with the
# append -> delivery latency of every (connection, append) pair and the server's memory per
# connection. The load client is
# server/examples/load.rs (a separate process, raw TCP over loopback). Writes
# bench/server-results.json and prints a table.
#
# Environment: BENCH_CONNECTIONS (default "1000 2500 5000 10000"), BENCH_APPENDS (default 20,
# one every BENCH_GAP_MS, default 500), BENCH_FRAMES
# (replay journal, default 200000), BENCH_LIVE_FRAMES (default 100000), BENCH_JOURNALS
# (default "memory redis").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p sse-relay-server --bin sse-relay-server --example load --quiet

# Each connection is a socket in the server and one in the client: raise the open-files limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

CONNECTIONS=${BENCH_CONNECTIONS:-1000 2500 5000 10000}
APPENDS=${BENCH_APPENDS:-20}
GAP_MS=${BENCH_GAP_MS:-500}
FRAMES=${BENCH_FRAMES:-200000}
LIVE_FRAMES=${BENCH_LIVE_FRAMES:-100000}
JOURNALS=${BENCH_JOURNALS:-memory redis}
LOAD=target/release/examples/load
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

starts=0
results="$work/results.jsonl"
: > "$results"
# Starts a server on `$journal` (a fresh process: its memory before the connections is the same
# baseline every time) and sets `server` and `url`.
start_server() {
  local flag=memory
  [ "$journal" = redis ] && flag="redis://127.0.0.1:$redis_port/0"
  redis-cli -p "$redis_port" flushall >/dev/null
  # A new file per start: the previous one still names the previous server's address.
  local out="$work/server-$((++starts)).out"
  target/release/sse-relay-server --port 0 --journal "$flag" --lifetime-secs 900 > "$out" 2>&1 &
  server=$!
  pids+=("$server")
  url=""
  for _ in $(seq 100); do
    url=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$out" 2>/dev/null)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "bench:server: the server did not start" >&2; cat "$out" >&2; exit 1; }
  echo "bench:server: $journal journal at $url (pid $server)" >&2
}
stop_server() { kill "$server"; wait "$server" 2>/dev/null || true; }
run() { printf '{"journal":"%s","run":%s}\n' "$journal" "$("$LOAD" "$@" --url "$url")" >> "$results"; tail -1 "$results" >&2; }

# The journals take turns at every figure, so a change in the machine's load (it is shared)
# falls on both rather than on whichever came last.
for journal in $JOURNALS; do
  start_server
  run replay --frames "$FRAMES" --key "replay-$journal"
  run live --connections 100 --frames "$LIVE_FRAMES" --key "live-$journal"
  stop_server
done
for n in $CONNECTIONS; do
  for journal in $JOURNALS; do
    start_server
    run hold --connections "$n" --appends "$APPENDS" --gap-ms "$GAP_MS" --server-pid "$server" --key "hold-$journal-$n"
    stop_server
  done
done

node - "$results" <<'JS'
const fs = require("fs");
const rows = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const by = (journal, mode, connections) => rows.find((r) => r.journal === journal && r.run.mode === mode && (connections === undefined || r.run.connections === connections))?.run;
const journals = [...new Set(rows.map((r) => r.journal))];
const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : "-");
const lines = ["| figure | " + journals.join(" | ") + (journals.length === 2 ? " | redis / memory |" : " |"), "|---|" + journals.map(() => "---|").join("") + (journals.length === 2 ? "---|" : "")];
const figure = (name, mode, field, fmt = (v) => v, connections) => {
  const values = journals.map((j) => by(j, mode, connections)?.[field]);
  lines.push(`| ${name} | ${values.map((v) => (v === undefined ? "-" : fmt(v))).join(" | ")}${journals.length === 2 ? ` | ${ratio(values[1], values[0])}` : ""} |`);
};
const int = (v) => Math.round(v).toLocaleString("en-US");
figure("replay to one client, frames/s", "replay", "framesPerSec", int);
figure("fill (append) frames/s", "replay", "fillFramesPerSec", int);
figure("live fan-out to 100 connections, delivered frames/s", "live", "deliveredFramesPerSec", int);
const counts = [...new Set(rows.filter((r) => r.run.mode === "hold").map((r) => r.run.connections))];
for (const n of counts) {
  const at = `${n.toLocaleString("en-US")} connections on one key:`;
  figure(`${at} append -> delivery p50, ms`, "hold", "p50Ms", (v) => v, n);
  figure(`${at} append -> delivery p99, ms`, "hold", "p99Ms", (v) => v, n);
  figure(`${at} append -> delivery max, ms`, "hold", "maxMs", (v) => v, n);
  figure(`${at} server memory per connection, bytes`, "hold", "bytesPerConnection", int, n);
  figure(`${at} opening them took, s`, "hold", "openSeconds", (v) => v, n);
}
const load = require("os").loadavg().map((l) => l.toFixed(1)).join(", ");
lines.push("", `machine: ${require("os").cpus().length} cores, load average at the end (1, 5, 15 min): ${load}`);
const report = { date: new Date().toISOString(), machine: `${require("os").cpus().length} cores`, rows };
fs.writeFileSync("bench/server-results.json", JSON.stringify(report, null, 2) + "\n");
console.log(lines.join("\n"));
JS
