#!/usr/bin/env bash
# Rerunnable benchmark: `jobpoints diff` over a generated JSONL ledger of N jobs (default
# 1,000,000), reporting wall time and peak resident memory. Memory should not grow with N.
#
#   scripts/bench_diff_ledger.sh [N] [BINARY]
#
# BINARY defaults to target/release/jobpoints (build it with `cargo build --release`); pass
# target/debug/jobpoints to measure a debug build. Needs GNU time (/usr/bin/time) for memory.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
bin="${2:-target/release/jobpoints}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Five job shapes (image and LLM, one below a threshold), one broken line in 1000.
awk -v n="$n" 'BEGIN {
  s[0] = "\"model\":\"AnimagineXL\",\"width\":1024,\"height\":1024,\"steps\":25";
  s[1] = "\"model\":\"BrainDance\",\"width\":512,\"height\":768,\"steps\":20";
  s[2] = "\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":19";
  s[3] = "\"model\":\"mistralai/mixtral-8x7b-instruct\",\"input_tokens\":812,\"output_tokens\":240";
  s[4] = "\"model\":\"theia-llama-3.1-8b\",\"input_tokens\":1500,\"output_tokens\":500";
  for (i = 0; i < n; i++) {
    if (i % 1000 == 999) print "{broken"; else printf "{\"id\":\"%d\",%s}\n", i, s[i % 5];
  }
}' > "$tmp/ledger.jsonl"

# The new side: SDXL at 2.0 from a future date, so a fifth of the jobs change.
cp -r rules "$tmp/new"
cat >> "$tmp/new/families/sdxl10.toml" <<'TOML'

[[version]]
version = 4
effective_from = 2026-12-01
source = "benchmark"
formula = "waifu_season1"
multiplier = 2.0
min = { pixels = 262144, steps = 20 }
TOML

echo "ledger: $n jobs, $(du -h "$tmp/ledger.jsonl" | cut -f1)"
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f "wall %e s, peak RSS %M kB" "$bin" diff rules "$tmp/new" --jobs "$tmp/ledger.jsonl" --format json > "$tmp/report.json"
else
  time "$bin" diff rules "$tmp/new" --jobs "$tmp/ledger.jsonl" --format json > "$tmp/report.json"
fi
grep -m1 -A3 '"total"' "$tmp/report.json"
