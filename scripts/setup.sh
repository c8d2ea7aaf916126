#!/usr/bin/env bash
# Installs what the build and the tests need, skipping whatever is already present.
# Idempotent and quiet: it prints a line only when it installs something.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Rust: the wasm32 target and the lint/format components.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    say "adding rustup component $component"
    rustup component add "$component" >/dev/null 2>&1
  fi
done

# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly.
wanted=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ -n "$wanted" ] && [ "$have" != "$wanted" ]; then
  say "installing wasm-bindgen-cli $wanted (found '${have:-none}'); this takes a few minutes"
  cargo install --quiet wasm-bindgen-cli --version "$wanted" >/dev/null
fi

# Headless Chromium and its driver, from Debian.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  say "installing chromium and chromium-driver"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# redis-server, for the Redis journal's tests (they start and stop their own, on loopback).
if ! command -v redis-server >/dev/null 2>&1; then
  say "installing redis-server"
  apt_install() { DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null; }
  # Another process may hold the apt lock for a while: wait and retry.
  for attempt in 1 2 3 4 5 6; do
    if as_root apt-get update -qq >/dev/null 2>&1 && apt_install redis-server; then break; fi
    [ "$attempt" = 6 ] && { echo "setup: could not install redis-server" >&2; exit 1; }
    sleep 10
  done
fi

# npm dependencies, reinstalled when package-lock.json changes.
if [ -f package-lock.json ]; then
  stamp=node_modules/.sse-relay-lock.sha256
  sum=$(sha256sum package-lock.json | awk '{ print $1 }')
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$sum" ]; then
    say "installing npm dependencies"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    echo "$sum" > "$stamp"
  fi
fi
