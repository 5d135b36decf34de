#!/usr/bin/env bash
# Rerunnable benchmark: how long the README's first command takes from a fresh clone.
#
#   scripts/bench_first_run.sh [debug|release]...   (default: release)
#
# Clones this repository's HEAD into a temporary directory and runs the README's first command
# there with an empty target directory (`cargo run [--release] -- eval --format table
# examples/jobs.jsonl`), printing its wall time and the crates that took longest
# (`--timings`, copied to target/first-run-PROFILE.html). Crates already downloaded to ~/.cargo are reused: this measures
# building, not the network. The machine should be otherwise idle; run it twice and quote
# the faster, or interleave `debug` and `release` to compare them in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(release)
cargo fetch --locked >/dev/null
for profile in "${profiles[@]}"; do
  tmp="$(mktemp -d)"
  git clone -q "$repo" "$tmp/jobpoints"
  flag=()
  [ "$profile" = release ] && flag=(--release)
  start=$(date +%s.%N)
  (cd "$tmp/jobpoints" && CARGO_TARGET_DIR="$tmp/target" cargo run -q --locked --offline "${flag[@]}" \
    --timings -- eval --format table examples/jobs.jsonl >/dev/null)
  end=$(date +%s.%N)
  printf '%s: first command from a fresh clone: %.0f s (nproc %s, load before %s)\n' \
    "$profile" "$(echo "$end - $start" | bc)" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)"
  report=$(ls "$tmp"/target/cargo-timings/cargo-timing-*.html 2>/dev/null | head -1 || true)
  if [ -n "$report" ]; then
    mkdir -p target && cp "$report" "target/first-run-$profile.html"
    echo "  per-crate timings: target/first-run-$profile.html"
  fi
  rm -rf "$tmp"
done
