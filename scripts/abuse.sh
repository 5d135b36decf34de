#!/usr/bin/env bash
# A mixed abuse run against `serve --playground --shadow-rules --decision-log` (#22): every
# server-side repro of the issue at once, for DURATION seconds, while a well-behaved client
# scores one job a second. Fails (exit 1) unless, at the end:
#   - every one of the client's /v1/score requests was answered 200 `ok` (within 10 s);
#   - the server's peak RSS (VmHWM) stayed under MAX_RSS_MIB (default 512, the bound in
#     docs/security.md);
#   - after SIGTERM the server exited 0 and `jobpoints verify` accepts its decision log.
#
# Usage: scripts/abuse.sh [DURATION_SECS] (default 300)
# Environment: JOBPOINTS (the binary; default target/release/jobpoints, else target/debug),
#              MAX_RSS_MIB.
#
# The attackers, each in its own loop:
#   - 8 MiB bodies of one job with a `pad` of nested objects (item 5: 8 took 1.34 GB);
#   - one job of 270,000 `response.choices` (item 5: 1.3 GB), refused by name;
#   - 1-job 7 MiB requests, which the shadow scores again (item 4: 3 GB in 18 s);
#   - 4 MiB playground /v1/check requests whose diagnostics take minutes (item 3: held every
#     scoring slot for 5 min);
#   - POSTs naming another host (DNS rebinding, item 3): must get 403.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-300}
max_rss_mib=${MAX_RSS_MIB:-512}
bin=${JOBPOINTS:-}
if [ -z "$bin" ]; then
  if [ -x target/release/jobpoints ]; then bin=target/release/jobpoints; else bin=target/debug/jobpoints; fi
fi
[ -x "$bin" ] || { echo "abuse.sh: no binary at $bin (cargo build first)" >&2; exit 2; }

work=$(mktemp -d)
server_pid=
attackers=()
cleanup() {
  for p in "${attackers[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The bodies, written once.
python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
unit = '{"k":{"k":{"k":0}}}'
head = '{"id":"pad","model":"AnimagineXL","width":1024,"height":1024,"steps":20,"pad":['
n = (8 * 1024 * 1024 - len(head) - 200) // (len(unit) + 1)
open(f"{work}/pad.json", "w").write(head + ",".join([unit] * n) + "]}")
choices = ",".join(['{"message":{"content":"x"}}'] * 270_000)
open(f"{work}/choices.json", "w").write(
    '{"id":"ch","model":"openhermes-mixtral-8x7b-gptq","request":{"messages":'
    '[{"role":"user","content":"hi"}]},"response":{"choices":[' + choices + ']}}')
big = "x" * (7 * 1024 * 1024)
open(f"{work}/seven.json", "w").write(
    '{"id":"seven","model":"AnimagineXL","width":1024,"height":1024,"steps":20,"note":"' + big + '"}')
open(f"{work}/small.json", "w").write(
    '{"id":"ok","model":"AnimagineXL","width":1024,"height":1024,"steps":20}')
EOF

cp -r rules "$work/live"
cp -r rules "$work/shadow"
log="$work/decisions.jsonl"
"$bin" serve --rules "$work/live" --listen 127.0.0.1:0 --playground \
  --shadow-rules "$work/shadow" --decision-log "$log" \
  >"$work/stdout" 2>"$work/stderr" &
server_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/stdout" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^listening on //p' "$work/stdout" | head -1)
[ -n "$base" ] || { echo "abuse.sh: serve did not start" >&2; cat "$work/stderr" >&2; exit 1; }
echo "abuse.sh: $bin serve on $base for ${duration}s (peak RSS bound ${max_rss_mib} MiB)"

# The playground's own files, with 16,000 wrong examples in sd15 (a 4 MiB check request).
curl -sf "$base/playground/session.json" >"$work/session.json"
python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
files = json.load(open(f"{work}/session.json"))["files"]
wrong = "  { width = 512, height = 512, steps = 20, points = 7 },\n" * 16000
files["families/sd15.toml"] = files["families/sd15.toml"].replace(
    "examples = [\n", "examples = [\n" + wrong, 1)
json.dump({"files": files}, open(f"{work}/check.json", "w"))
EOF

end=$(( $(date +%s) + duration ))
attack() { # NAME CURL-ARGS...: repeats one request until the end, counting its statuses
  local name=$1; shift
  while [ "$(date +%s)" -lt "$end" ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "$@" || true)
    echo "${code:-000}" >>"$work/attack.$name"
    # A pause, so that the quick ones (403s) do not just burn the client's CPU.
    sleep 0.2
  done
}
json=(-H 'content-type: application/json')
attack pad "${json[@]}" --data-binary "@$work/pad.json" "$base/v1/score" & attackers+=($!)
attack pad2 "${json[@]}" --data-binary "@$work/pad.json" "$base/v1/score" & attackers+=($!)
attack choices "${json[@]}" --data-binary "@$work/choices.json" "$base/v1/score?at=2025-01-10T00:00:00Z" & attackers+=($!)
attack seven "${json[@]}" --data-binary "@$work/seven.json" "$base/v1/score" & attackers+=($!)
attack seven2 "${json[@]}" --data-binary "@$work/seven.json" "$base/v1/score" & attackers+=($!)
attack check "${json[@]}" --data-binary "@$work/check.json" "$base/v1/check" & attackers+=($!)
attack rebind "${json[@]}" -H 'Host: attacker.example' --data-binary "@$work/small.json" "$base/v1/score" & attackers+=($!)

# The well-behaved client, once a second.
ok=0 failed=0 slowest=0 peak_rss=0
while [ "$(date +%s)" -lt "$end" ]; do
  t0=$(date +%s%N)
  body=$(curl -s --max-time 10 "${json[@]}" --data-binary "@$work/small.json" "$base/v1/score" || true)
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if [ "$(jq -r '.status? // empty' <<<"$body" 2>/dev/null)" = ok ]; then
    ok=$((ok + 1))
  else
    failed=$((failed + 1))
    echo "abuse.sh: /v1/score failed after ${ms} ms: ${body:0:200}" >&2
  fi
  [ "$ms" -gt "$slowest" ] && slowest=$ms
  rss=$(awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$server_pid/status")
  [ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
  sleep 1
done
for p in "${attackers[@]}"; do wait "$p" 2>/dev/null || true; done
attackers=()
peak_rss=$(awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$server_pid/status")

kill -TERM "$server_pid"
t0=$(date +%s%N)
code=0
wait "$server_pid" || code=$?
server_pid=
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

verify_out=$("$bin" verify --rules "$work/live" "$log" 2>&1) && verified=0 || verified=$?

echo "attackers (HTTP status: requests):"
for f in "$work"/attack.*; do
  printf '  %-8s %s\n' "${f##*.}" "$(sort "$f" | uniq -c | awk '{printf "%s: %s  ", $2, $1}')"
done
records=$(wc -l <"$log")
echo "/v1/score: $ok ok, $failed failed, slowest ${slowest} ms"
echo "peak RSS: ${peak_rss} MiB (bound ${max_rss_mib} MiB)"
echo "SIGTERM: exit $code after ${stop_ms} ms; decision log: $records records; verify: exit $verified"
if [ "$verified" -eq 0 ]; then
  echo "$verify_out" | tail -3 | sed 's/^/  /'
else
  echo "$verify_out" | head -40 | cut -c1-400 | sed 's/^/  /'
fi

status=0
[ "$failed" -eq 0 ] || { echo "FAIL: /v1/score did not answer throughout" >&2; status=1; }
[ "$peak_rss" -lt "$max_rss_mib" ] || { echo "FAIL: peak RSS over the bound" >&2; status=1; }
[ "$code" -eq 0 ] || { echo "FAIL: serve exited $code after SIGTERM" >&2; status=1; }
[ "$verified" -eq 0 ] || { echo "FAIL: verify rejected the decision log" >&2; status=1; }
if grep -q '^403' "$work/attack.rebind" && ! grep -qv '^403' "$work/attack.rebind"; then :; else
  echo "FAIL: a request naming another host was not refused" >&2; status=1
fi
exit $status
