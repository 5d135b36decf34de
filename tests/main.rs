//! The one integration-test binary (like ripgrep's): each module covers one area.

// Shared helpers: the binary under test, fixture paths, snapshot settings.
mod util;

// `jobpoints eval` through the real binary: formats, exit codes, bad input, stdin.
mod eval_cli;
// Shell completions and man pages cover every subcommand.
mod docs_cli;
// The manual (README.md, docs/): its console examples run against their shown output, its
// internal links resolve (#24).
mod manual;
// `jobpoints check` and `models` through the real binary.
mod check_cli;
// The rule files' JSON Schemas (#15): fresh, mapped by .taplo.toml, as strict as `check`.
mod schemas;
// Every subcommand: output to a full disk or a closed pipe, a full stderr, `--at`, `--threads`.
#[cfg(unix)]
mod cli_output;
// Snapshot matrix: every rule version on a fixed job matrix.
mod rule_matrix;
// Broken rule sets (`tests/fixtures/rules/err_*`), one per diagnostic code.
mod rule_errors;
// The rule language (#12): input defaults, dated catalog entries, disabled versions,
// ceilings, and the loader's catalog checks on reload (#11).
mod rule_language;
// The network's real example jobs, scored and snapshotted.
mod example_jobs;
// Library-level checks: determinism, adding a model without rebuilding.
mod engine;
// The workspace's shape (#24): the engine crate's dependencies, its layers without circles,
// files under 1,000 lines.
mod layout;
// The catalog as the network had it (#21): windows, family changes, aliases, unpriced LLMs,
// and `jobpoints catalog sync` on the committed history and on git clones.
mod catalog;
// The default corpus of `jobpoints diff`: generated files match their generator.
mod corpus;
// `jobpoints diff`: fixture pairs of rule sets, git revisions, a large streamed ledger.
mod diff_cli;
// `jobpoints serve` on a loopback port: the HTTP API, hot reload, symlink swaps, load.
mod serve;
mod signing;
// `jobpoints serve` under hostile clients: job, request, connection and time limits (#11).
mod serve_limits;
// `serve --decision-log` and `--shadow-rules`: records survive SIGTERM, logs verify (#14).
mod serve_audit;
// `serve --playground` under #22's attacks: deadlines that free their slot, DNS rebinding.
mod serve_hostile;
// The playground's JSON API (#15): check/eval/diff of files sent in a request, its limits.
mod playground;
// The playground in headless Chromium: edit, diagnostics, impact, patch (#15).
mod playground_browser;
// Hardening III, the files half (#22): long lines and huge files in diagnostics, `verify`,
// CSV and Parquet bombs, markdown injection, `merge`.
mod hostile_files;
// `jobpoints watch`: the author's loop, through the real binary.
mod watch_cli;
// Mergeable tallies and pipe mode for engines that run a binary per partition (#16).
mod merge_cli;
// Ledger scale: fast path identical to plain evaluation, exact tallies, threads.
mod ledger;
// The usual scoring path allocates nothing per job (a counting global allocator).
mod alloc_free;
// LLM jobs priced from their text (#17): tokenizer parity, both job shapes, bounds.
mod tokens;
// The network's LLM records of both eras, tools, streamed jobs, claimed counts (#21).
mod llm_eras;
// `jobpoints calibrate`: the seed's calibration reproduced, real benchmarks, bad rows.
mod calibrate_cli;
// Hostile job files: every kind of bad input is one `invalid` result, nothing is lost.
mod hostile_jobs;
// Every input shape streamed and lossless: arrays, pretty documents, mixes, line ends (#11).
mod inputs;
// A job's nested fields cost memory bounded by their text, in `eval` and `serve` (#22).
mod job_memory;
// Parquet and CSV ledgers made by pyarrow and DuckDB score like JSONL; Parquet results (#16).
#[cfg(feature = "parquet")]
mod ledgers;
// Hostile rule sets (`tests/fixtures/rules/hostile/`, plus generated large ones): caught,
// bounded in time and memory.
mod hostile_rules;
// Rule files confined to their directory: symlinks out, FIFOs, loops, huge files (#11).
mod rules_confined;
// Properties of every shipped rule version (proptest): monotone, never negative, deterministic.
mod properties;
// `jobpoints verify`: results of several commits' rules verified against a repository (#14).
mod verify_cli;
// The fuzzers' saved inputs (`tests/fixtures/fuzz/`), replayed through `fuzz/harness.rs`.
mod fuzz_regressions;
// The miner's clamping as dated rule data (#21): jobs priced as they ran.
mod execution_limits;
// Rule data dated from a commit is dated at its UTC commit time, not a calendar day (#21).
mod commit_dates;
// `check` proves each formula for every job, and names the job that breaks it (#23), on
// every surface that validates rules.
mod proved;
