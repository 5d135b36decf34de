#!/usr/bin/env python3
"""Scores a JSONL ledger on Apache Spark with the jobpoints binary, and checks that the
distributed tally equals a single-machine `jobpoints tally` byte for byte.

Scoring is a pure function per job and a tally is an exact sum, so the job is map + exact
reduce; Spark only moves the bytes:

  1. eval:   every partition's lines go through `jobpoints eval -` (RDD.pipe); the results are
             stored as text files, one result line per job line (checked: results = jobs).
  2. tally:  every partition's lines go through `jobpoints tally - --format json`: one exact
             partial per partition, stored as one file each.
  3. merge:  `jobpoints merge` sums the partials.
  4. check:  a single-machine `jobpoints tally` over the whole ledger; the merged JSON and table
             must equal it byte for byte.

Run through scripts/spark-check.sh, which sets everything up; by hand:

  python examples/spark/score_ledger.py --bin target/release/jobpoints --rules rules \
      --ledger ledger.jsonl --partitions 8 --work /tmp/spark-work

Local mode (`local[*]`) by default; `--master` takes any Spark master URL, and then the binary
and the rules must be at the same path on every executor (see docs/ledgers.md, "Beyond one machine").
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the jobpoints binary")
    ap.add_argument("--rules", required=True, help="the rules directory")
    ap.add_argument("--ledger", required=True, help="a JSONL ledger")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--by", default="miner", help="the tally's grouping (payouts: per miner)")
    ap.add_argument("--work", required=True, help="a scratch directory (emptied)")
    ap.add_argument("--master", default="local[*]")
    args = ap.parse_args()

    binary = os.path.abspath(args.bin)
    rules = os.path.abspath(args.rules)
    ledger = os.path.abspath(args.ledger)
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    # One thread per jobpoints process: Spark runs one process per core already.
    common = ["--rules", rules, "--threads", "1", "--invalid-exit-code", "0"]
    times = []

    def stage(name, started):
        took = time.monotonic() - started
        times.append((name, took))
        print(f"stage {name:<28} {took:8.2f} s", flush=True)

    t = time.monotonic()
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(args.master)
        .appName("jobpoints-score-ledger")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    sc = spark.sparkContext
    stage("spark start", t)

    # Lines, cut into partitions at line ends by Hadoop's text input format. A partition is a
    # contiguous slice of the ledger; blank lines are dropped (jobpoints skips them too).
    t = time.monotonic()
    jobs = sc.textFile("file://" + ledger, minPartitions=args.partitions).filter(
        lambda line: line.strip() != ""
    )
    jobs.cache()
    n_jobs = jobs.count()
    parts = jobs.getNumPartitions()
    stage(f"read ({n_jobs} jobs, {parts} parts)", t)

    # 1. Score: one `jobpoints eval -` per partition; results in partition order.
    t = time.monotonic()
    results_dir = os.path.join(work, "results")
    results = jobs.pipe(" ".join([binary, "eval", "-", "--format", "jsonl"] + common))
    results.saveAsTextFile("file://" + results_dir)
    n_results = sc.textFile("file://" + results_dir).count()
    stage("eval (pipe) + store", t)
    if n_results != n_jobs:
        sys.exit(f"FAIL: {n_results} results for {n_jobs} jobs")

    # 2. Tally each partition: one exact partial per partition, stored as one file each
    #    (Spark writes partition i's output to part-0000i; an empty partition writes an empty
    #    file, which is no partial).
    t = time.monotonic()
    partials_dir = os.path.join(work, "partials")
    by = ["--by", args.by, "--format", "json"]
    jobs.pipe(" ".join([binary, "tally", "-"] + by + common)).saveAsTextFile(
        "file://" + partials_dir
    )
    part_paths = sorted(
        os.path.join(partials_dir, name)
        for name in os.listdir(partials_dir)
        if name.startswith("part-") and os.path.getsize(os.path.join(partials_dir, name)) > 0
    )
    stage(f"tally per partition ({len(part_paths)})", t)
    counted = 0
    for path in part_paths:
        with open(path) as f:
            counted += json.load(f)["total"]["jobs"]
    if counted != n_jobs:
        sys.exit(f"FAIL: the partials count {counted} jobs of {n_jobs}")

    # 3. Merge the partials.
    t = time.monotonic()
    merged = {}
    for fmt in ["json", "table"]:
        merged[fmt] = run([binary, "merge", "--format", fmt, "--invalid-exit-code", "0"] + part_paths)
    stage("merge", t)

    # 4. The same tally on one machine, over the whole file.
    t = time.monotonic()
    single = {}
    for fmt in ["json", "table"]:
        single[fmt] = run(
            [binary, "tally", ledger, "--by", args.by, "--format", fmt, "--rules", rules,
             "--invalid-exit-code", "0"]
        )
    stage("single-machine tally (x2)", t)

    spark.stop()
    for fmt in ["json", "table"]:
        with open(os.path.join(work, f"merged.{fmt}"), "wb") as f:
            f.write(merged[fmt])
        with open(os.path.join(work, f"single.{fmt}"), "wb") as f:
            f.write(single[fmt])
        if merged[fmt] != single[fmt]:
            sys.exit(f"FAIL: merged {fmt} differs from the single-machine tally (see {work})")
    total = json.loads(merged["json"])["total"]
    print(
        f"OK: {n_jobs} jobs on {parts} partitions, {len(part_paths)} partials merged: "
        f"merge = tally byte for byte (json {len(merged['json'])} B, table "
        f"{len(merged['table'])} B); total {json.dumps(total, separators=(',', ':'))}"
    )


def run(cmd):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True)
    return out.stdout


if __name__ == "__main__":
    main()
