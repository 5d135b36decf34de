#!/usr/bin/env bash
# Scores the benchmark ledger on Apache Spark (local mode) with examples/spark/score_ledger.py
# and checks that the merged per-partition tallies equal one `jobpoints tally` byte for byte.
# Not part of `cargo test`: it downloads PySpark and needs a Java runtime.
#
#   scripts/spark-check.sh [JOBS] [PARTITIONS] [BY]   # defaults: 1000000 jobs, 8 partitions, miner
#
# Installs what it needs: a Java runtime from the system packages when `java` is missing
# (apt-get, as root), PySpark from the Python package index into target/spark-venv (override
# with SPARK_VENV). Builds the release binary, generates the benchmark ledger (`jobpoints synth`,
# the same seed as `cargo bench --bench ledger`) and prints the time of every stage.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
jobs="${1:-1000000}"
partitions="${2:-8}"
by="${3:-miner}"
venv="${SPARK_VENV:-$root/target/spark-venv}"
work="$root/target/spark-check"
# Local mode: bind to the loopback, whatever the host name resolves to.
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"

stamp() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(stamp)" -v n="$2" 'BEGIN { printf "stage %-28s %8.2f s\n", n, b - a }'; }

t="$(stamp)"
if ! command -v java >/dev/null 2>&1; then
    echo "java not found: installing a Java runtime from the system packages" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null
fi
java -version 2>&1 | head -1
if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
        echo "python3 -m venv failed: installing python3-venv from the system packages" >&2
        rm -rf "$venv"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
fi
if ! "$venv/bin/python" -c 'import pyspark' 2>/dev/null; then
    "$venv/bin/pip" install --quiet pyspark
fi
"$venv/bin/python" -c 'import pyspark, sys; print("pyspark", pyspark.__version__, "python", sys.version.split()[0])'
took "$t" "setup (java, venv, pyspark)"

t="$(stamp)"
cargo build --release --quiet
took "$t" "cargo build --release"

t="$(stamp)"
mkdir -p "$work"
ledger="$work/ledger-$jobs.jsonl"
target/release/jobpoints synth --jobs "$jobs" --seed 42 > "$ledger"
took "$t" "generate ledger ($jobs jobs)"

t="$(stamp)"
"$venv/bin/python" examples/spark/score_ledger.py \
    --bin target/release/jobpoints --rules rules --ledger "$ledger" \
    --partitions "$partitions" --by "$by" --work "$work/run"
took "$t" "spark job, all stages"
