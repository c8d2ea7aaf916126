#!/usr/bin/env bash
# `npm test`: sets up what is missing, then runs every test tier in order, stopping at the first
# failure. Each tier prints one header line; tools print their own output.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

tier() {
  local name=$1; shift
  printf '\n== %s\n' "$name"
  local start=$SECONDS
  "$@"
  printf -- '-- %s: ok (%ss)\n' "$name" "$((SECONDS - start))"
}

core_is_pure() {
  # The compiler enforces this on native builds (browser crates are wasm32-only dependencies);
  # this also catches clocks, which std would allow.
  if grep -rnE 'web_sys|js_sys|wasm_bindgen|gloo|Instant::now|SystemTime' src/core; then
    echo "src/core must not use browser crates or read a clock" >&2
    return 1
  fi
}

export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}

tier "format" cargo fmt --all --check
tier "core purity" core_is_pure
tier "clippy (native)" cargo clippy --workspace --all-targets --quiet -- -D warnings
tier "clippy (wasm32)" cargo clippy --target wasm32-unknown-unknown -p sse-relay -p sse-relay-npm \
  --features sse-relay/js --lib --tests --quiet -- -D warnings
tier "Leptos example (wasm32)" cargo clippy --manifest-path examples/leptos/Cargo.toml \
  --target-dir target --target wasm32-unknown-unknown --quiet -- -D warnings
tier "docs (host: the browser API is documented on every target)" \
  env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p sse-relay --quiet
tier "tests (native)" cargo test --workspace --quiet
tier "simulation (10,000 seeded multi-tab schedules)" \
  cargo test --profile sim --quiet --test simulation seeds -- --nocapture
tier "build (npm package)" npm run --silent build
tier "package (npm pack, publint, attw, tsc 4.7/5/7, Node import)" node scripts/package-checks.mjs
tier "wasm-bindgen-test (headless Chromium)" bash scripts/wasm-test.sh
tier "end to end (headless Chromium, reference server)" bash scripts/e2e.sh
