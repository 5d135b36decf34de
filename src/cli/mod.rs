//! The `jobpoints` command line: one file per subcommand, each an `Args` struct and a `run`
//! function returning `Result<Exit, CliError>`; [`main`] parses, runs, and prints an error once.

use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use jobpoints::rules::diagnostic::render_human;
use jobpoints::rules::files::RuleFiles;
use jobpoints::rules::load::{Loaded, load};

mod calibrate;
mod catalog;
mod check;
mod diff;
mod docs;
mod error;
mod eval;
mod formats;
mod merge;
mod models;
mod output;
mod playground;
mod schema;
mod serve;
mod sign;
mod synth;
mod tally;
mod verify;
mod watch;

use calibrate::CalibrateArgs;
use check::CheckArgs;
use diff::DiffArgs;
pub use error::{CliError, Exit};
use eval::EvalArgs;
use models::ModelsArgs;
pub use output::Stdout;
use output::note;
use serve::ServeArgs;
use synth::SynthArgs;
use tally::TallyArgs;
use watch::WatchArgs;

const AFTER_HELP: &str = "\
Exit codes:
  0  success: every job scored (ok, below_threshold, over_limit, no_rule, disabled or
     unmeasured); rules clean
  1  some jobs were invalid or their rule failed; every other job was still scored
  2  usage error, an input file / rules directory that cannot be read, or output that
     cannot be written (output closed early, as by `| head`, is not an error: exit 0)
  3  the rule set is invalid (run `jobpoints check` for every problem)
  4  diff --fail-on-change: some job's points or status changed
  5  verify: some result does not match its job scored again (or its job is missing)
  6  verify: no mismatch, but some results name a rule set that was not found
  7  diff --fail-on-retroactive: some change alters jobs dated before the cut-off
  8  catalog sync --check: catalog.toml differs from the catalog's history, or decisions
     are missing

Rules: --rules DIR, else ./rules if it exists, else the rules built into the binary.";

/// Turns completed AI compute jobs into reward points, by rules written as TOML + rhai.
#[derive(Debug, Parser)]
#[command(name = "jobpoints", version = jobpoints::engine::identity::VERSION, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score job files (one JSON job, a JSON array, or JSONL; `-` for stdin).
    ///
    /// Writes one result per job read, in input order: `ok`, `below_threshold` (under a
    /// threshold), `over_limit` (above a ceiling, e.g. a timeout), `no_rule`, `disabled` (its
    /// version is disabled on purpose), `unmeasured` (the job carries neither what its job
    /// kind measures nor a count of it, e.g. a streamed LLM job), `invalid` (the job is
    /// malformed: `error` and `field` say what, `line` where) or `error` (the rule failed on
    /// it). Every status but `ok` earns 0 points. An LLM job is counted from its text when it
    /// carries it, whatever count it claims (a contradicted claim is reported as
    /// `disputed_claim`). A job picks the rule version in force at its `completed_at`;
    /// `--at` overrides that for every job; a job with no time uses the latest version.
    /// JSONL output is computed on every core and streamed in constant memory.
    /// Exit 0 when every job was scored, 1 if any was invalid or failed, 3 if the rules are
    /// invalid.
    Eval(EvalArgs),
    /// Validate a rule set and report every problem with its file, line and code.
    ///
    /// Checks TOML syntax and shape, references (with a suggestion for a near miss), catalog
    /// families and model names, formulas (compile, every version's examples, and a proof for
    /// every job that a formula never divides by zero, overflows, goes negative or pays above
    /// max_points, naming a job that breaks one; a grid of sample jobs for a formula that runs
    /// in rhai) and the floors and ceilings of policy.toml, and reports every problem with a
    /// stable code (see rules/README.md). Exits 0 only when there are no errors (and,
    /// with --deny-warnings, no warnings), 3 otherwise.
    Check(CheckArgs),
    /// List the catalog's models with the rule version that prices each.
    ///
    /// For every catalog model: family → rule version, point kind, multiplier and the dates
    /// the version is in force, as of --at (default: the latest version of each rule), or the
    /// reason it gets `no_rule` or `disabled`, the catalog entry's dates and the version's notes.
    Models(ModelsArgs),
    /// Exact totals per miner, model, point kind or day, from job files.
    ///
    /// Scores every job (as `eval` does) and adds up, per group: jobs, ok, below_threshold,
    /// over_limit, no_rule, disabled, unmeasured, invalid, error, and points per point kind. Totals are exact decimals,
    /// identical to the last digit for any thread count and any order of the input lines.
    /// Exit 1 if any job was invalid or failed (it is still counted), 3 if the rules are
    /// invalid.
    Tally(TallyArgs),
    /// Sum partial tallies (from `tally --format json`) into the tally of all their jobs.
    ///
    /// Scoring is a function of each job and a tally is an exact sum, so a ledger split in
    /// any way (files, row groups, Spark partitions), tallied piece by piece and merged gives
    /// exactly — byte for byte — what one `tally` over the whole gives. Partials must have the
    /// same --by and --at; partials of different rule sets are refused unless
    /// --allow-mixed-rules, which keeps one row per rule set hash. Exit 1 if any merged job
    /// was invalid or failed (as tally), 2 for a file that is not a partial.
    Merge(merge::MergeArgs),
    /// Calibrate points from GPU benchmark timings and propose a checked rule version.
    ///
    /// Reads benchmark CSVs (image: device, family, size, steps, seconds; LLM: tokens instead
    /// of size), drops rows that cannot be compared and says which and why, fits seconds
    /// against pixels, steps or tokens per setup, aggregates the anchor ratio (1024² vs 512²)
    /// across devices and the model factor (--model), and emits a rule version with its source
    /// and examples, checked against the rules, plus a report and an SVG chart (--chart).
    /// Exit 0 with a proposal that check accepts, 1 without one or if check rejects it, 2 for
    /// usage errors and unreadable files, 3 if the rules are invalid.
    Calibrate(CalibrateArgs),
    /// Compare two rule sets: what changed, and what it does to a corpus of real jobs.
    ///
    /// Reports what changed in the rules (kinds, floors, models, versions, fields like
    /// `multiplier 1.8 → 2.0`, formula text as a unified diff) and what that does to a corpus
    /// of jobs scored with both: per point kind and model, jobs changed, points before →
    /// after, Δ and Δ%, status changes and the biggest movers. Changes that rewrite an
    /// existing version, remove one, or move a policy floor are flagged: rules change by
    /// adding versions.
    ///
    /// Every time window the change re-prices (`sdxl10@1 (2024-04-01 → 2024-09-18T16:17:11Z)`)
    /// is found from the rules and replayed with the corpus jobs that can reach it, whatever
    /// their dates; a change that alters jobs dated before the cut-off (now, or
    /// --effective-after) is flagged retroactive and listed first.
    ///
    /// The default corpus is ./corpus (else the copy built into the binary): the network's
    /// real example jobs and a grid over resolutions × steps and token counts, both undated,
    /// and a few thousand jobs in the network's own record shape, dated across its history
    /// (every catalog window, both LLM eras, ~50 miners, latencies around the timeouts). JSONL
    /// job files are streamed, so multi-million-line ledgers diff in bounded memory.
    Diff(DiffArgs),
    /// Check results by scoring their jobs again with the rule sets that made them.
    ///
    /// Each result names its rule set by hash; verify finds it — the --rules directory (or
    /// ./rules), the built-in rules, or any commit of `rules/` in the history of --repo —
    /// scores the result's job again (from --jobs, matched by file, line and id; a decision
    /// log record of `serve --decision-log` carries its job) and compares status, kind, rule
    /// and points. Results priced at a given time (`priced_by`: `at` from --at/?at=,
    /// `received` from serve) are priced at that time again.
    ///
    /// With --jobs, results and jobs must match one to one: a second result for a job, and a
    /// job without a result, are mismatches (with their lines). A decision record priced when
    /// received must name the second of its `received_at` as `priced_at`. What verify cannot
    /// prove: that an `eval --at` result's `priced_at` (or a `?at=` decision's) is the time it
    /// should have been priced at; only that its points follow from its job, rules and time.
    ///
    /// Prints every mismatch with its line, expected and actual values, then how many results
    /// verified under which rule sets (hash → commit and date), and every rule set not found.
    /// Results are re-scored with this engine; those made by another engine version are
    /// counted as such. Streams in constant memory when results and jobs are in the same
    /// order, on every core; results in another order hold their job files in memory.
    ///
    /// Exit 0 when every result verified, 5 if any did not match (or its job is missing), 6 if
    /// none mismatched but some rule sets were not found, 2 for unreadable files.
    Verify(verify::VerifyArgs),
    /// Write the benchmark's synthetic ledger (JSONL) to stdout.
    #[command(hide = true)]
    Synth(SynthArgs),
    /// Serve scoring over HTTP, reloading the rules whenever they change on disk.
    ///
    /// Endpoints: POST /v1/score (`Content-Type: application/json` with one job or an array of
    /// jobs, or `application/x-ndjson` with JSONL; the same result objects as
    /// `eval --format json`; `?at=TIME` and `?explain=true` as in `eval`), GET /v1/rules (active hash, load time, rules, last reload
    /// error), GET /healthz, GET /metrics (Prometheus / OpenMetrics text).
    ///
    /// A job is priced by the rules in force when its request was received, not by its own
    /// `completed_at` (which a client could backdate), unless --trust-job-time; such results
    /// add `priced_at` and `priced_by` (`received`, or `at` for `?at=`).
    ///
    /// Limits, each with its flag below: body size (413), jobs per request (413), score
    /// requests in flight (503 with Retry-After), scoring threads, open connections (the one
    /// idle longest is closed for a new one), and timeouts for headers, bodies, reading the
    /// response and idle connections. Rejections are counted in /metrics.
    ///
    /// Any change under the rules directory (and a swap of the directory through a symlink)
    /// reloads it with the checks of `jobpoints check`. An invalid change keeps the last good
    /// rules serving, logs every diagnostic and shows the error in /v1/rules and /metrics until
    /// fixed. Every result carries the hash of the rule set that priced it.
    ///
    /// With --playground, also serves the rule editor of `jobpoints playground` at
    /// /playground/ and its JSON API (POST /v1/check, /v1/eval, /v1/diff), which work on rule
    /// files sent in the request and never change the rules being served.
    ///
    /// On start, prints `listening on http://ADDR` to stdout (and, with --playground,
    /// `playground on http://ADDR/playground/`). Stops after in-flight requests on SIGINT or
    /// SIGTERM (exit 0). Exits 3 if the rules are invalid at start.
    Serve(ServeArgs),
    /// Edit the rules in a browser: diagnostics, points and impact as you type, and a patch.
    ///
    /// Starts a local web server (the app of `serve --playground`) and prints its URL; open it
    /// in a browser. The page shows the rule files as a tree and opens any of them in an
    /// editor. As you type it shows every `check` diagnostic at its line; the example jobs
    /// (or jobs you paste or upload: one JSON job, a JSON array, or JSONL) scored before →
    /// after, with the `--explain` trace of each; the `diff` report of your edits against the
    /// rules you started from, on the reference corpus; and a patch of every edited file that
    /// `git apply` takes. Nothing is written to disk. Everything it needs is in the binary: it
    /// works with no network.
    ///
    /// The page's JSON API (POST /v1/check, /v1/eval, /v1/diff) takes rule files in the
    /// request body; see docs/playground.md. Stop with Ctrl-C.
    Playground(playground::PlaygroundArgs),
    /// Re-check the rules on every save and show how the points of some jobs move.
    ///
    /// On start and on every save that changes a rule file: prints the check result (as
    /// `jobpoints check`) and what changed since the last valid rules; with --jobs, each job's
    /// points, as `before → after (+delta)` after a save. An invalid save is reported and not
    /// applied: the next valid save is compared with the last valid rules. Stop with Ctrl-C.
    Watch(WatchArgs),
    /// Make a key for signing rule sets: the secret to a file, the public key to stdout.
    ///
    /// The secret key file (mode 0600, never overwritten) signs with `jobpoints sign --key`;
    /// the public key goes in the --trusted-keys file of `check`, `serve` and `watch`. Keep
    /// the secret out of the rules directory and the repository (a CI secret, for example).
    Keygen(sign::KeygenArgs),
    /// Sign the rule set: write `ruleset.sig` in the rules directory.
    ///
    /// The Ed25519 signature covers the rule set's hash, so any change to any rule file breaks
    /// it. Signing again with another key adds a signature; signing changed rules replaces the
    /// old set's signatures. `check`, `serve` and `watch` with --trusted-keys accept only rules
    /// signed by a listed key. Exit 3 if the rules are invalid (nothing is signed), 2 for an
    /// unusable key.
    Sign(sign::SignArgs),
    /// The network's model catalog: `catalog sync` proposes catalog.toml from its history.
    Catalog(catalog::CatalogArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    ///
    /// Install, e.g. for bash: `jobpoints completions bash > ~/.local/share/bash-completion/completions/jobpoints`;
    /// zsh: `jobpoints completions zsh > ~/.zfunc/_jobpoints` (with `fpath+=~/.zfunc`);
    /// fish: `jobpoints completions fish > ~/.config/fish/completions/jobpoints.fish`.
    Completions(docs::CompletionsArgs),
    /// Write man pages: the main page to stdout, or one page per command with --out DIR.
    ///
    /// Install: `jobpoints man --out ~/.local/share/man/man1`, then `man jobpoints-eval`.
    Man(docs::ManArgs),
    /// Write the JSON Schemas of the rule files, for editors that validate and complete TOML.
    ///
    /// One schema (JSON Schema draft 2020-12) per file kind: kinds.toml, policy.toml,
    /// catalog.toml, and one for family and model rules. They describe every key, its type and
    /// default, and reject keys `check` does not know; they are generated from the types that
    /// parse the files. The repository commits them under rules/schemas/ and maps the files to
    /// them in .taplo.toml (taplo, Even Better TOML); see rules/README.md.
    Schema(schema::SchemaArgs),
}

/// Where the rules come from; shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct RulesArg {
    /// Rules directory. Default: ./rules if it exists, else the rules built into the binary.
    #[arg(long, value_name = "DIR", env = "JOBPOINTS_RULES")]
    pub rules: Option<PathBuf>,
}

impl RulesArg {
    /// Reads, loads and validates the rules; invalid rules are an error carrying every
    /// diagnostic.
    pub fn load_valid(&self) -> Result<jobpoints::engine::model::RuleSet, CliError> {
        let mut loaded = self.load()?;
        match loaded.ruleset.take() {
            Some(rules) => Ok(rules),
            None => Err(rules_invalid(
                &loaded,
                format!("the rules in {} are invalid", loaded.files.origin),
            )),
        }
    }

    /// Reads and loads the rules (valid or not).
    pub fn load(&self) -> Result<Loaded, CliError> {
        Ok(load(RuleFiles::locate(self.rules.as_deref())?))
    }
}

/// [`CliError::RulesInvalid`] for a failed load: its diagnostics, then `message`.
pub fn rules_invalid(loaded: &Loaded, message: String) -> CliError {
    CliError::RulesInvalid {
        diagnostics: render_diagnostics(loaded),
        message,
    }
}

/// The most worker threads `--threads` accepts. Each worker keeps a few batches of up to
/// 1 MiB in flight, so memory grows with the count; beyond this, threads only cost.
pub const MAX_THREADS: usize = 256;

/// `--threads N`, shared by every subcommand that scores on several cores.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ThreadsArg {
    /// Worker threads, 1 to 256 (default: one per core, at most 256). The output is
    /// identical for any count.
    #[arg(
        long = "threads",
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS as u64),
    )]
    threads: Option<usize>,
}

/// `--invalid-exit-code N`: what a command that scored everything but found `invalid` or
/// `error` jobs exits with (default 1). Engines that run a binary per partition (Hadoop
/// Streaming, Spark's `RDD.pipe`, ClickHouse executables) fail a task on a non-zero exit;
/// `--invalid-exit-code 0` lets a partition with bad jobs succeed, each of them still an
/// `invalid` or `error` result in the output.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct FailedExitArg {
    /// Exit code when some jobs were `invalid` or their rule failed (default 1; 0 for
    /// Spark/Hadoop-style pipes, which treat non-zero as a failed task). Every such job is
    /// still in the output.
    #[arg(
        long = "invalid-exit-code",
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u8).range(0..=125)
    )]
    code: u8,
}

impl FailedExitArg {
    /// The exit for a run that found `failed` such jobs.
    pub fn exit(self, failed: u64) -> Exit {
        match (failed, self.code) {
            (0, _) => Exit::Ok,
            (_, 1) => Exit::JobsFailed,
            (_, code) => Exit::Code(code),
        }
    }
}

impl ThreadsArg {
    /// The count given, or one per core.
    pub fn get(self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, NonZeroUsize::get)
                .min(MAX_THREADS)
        })
    }
}

/// The value parser of every `--at TIME`: a date (`2024-05-01`, midnight UTC) or RFC 3339. A
/// bad value is a usage error that names the expected format.
pub fn parse_at(text: &str) -> Result<jiff::Timestamp, String> {
    jobpoints::engine::time::parse_time(text).map_err(|e| {
        // Unreadable text is already told the format; a readable time out of range is not.
        if e.contains("expected") {
            e
        } else {
            format!("`{text}`: {e} (expected `2024-04-01` or `2024-04-01T12:00:00Z`)")
        }
    })
}

/// An opened job file: its path, its reader, and its progress bar when one is shown.
pub type Input = (
    PathBuf,
    jobpoints::ledger::reader::Ledger,
    Option<indicatif::ProgressBar>,
);

/// Opens job files for the ledger commands, each in `format` (or as its extension says).
/// When stderr is a terminal, each JSON or CSV file gets a progress bar (bytes read, rate,
/// ETA) on stderr; otherwise nothing is drawn.
pub fn open_inputs(
    paths: &[PathBuf],
    format: jobpoints::ledger::formats::InputFormat,
) -> Result<Vec<Input>, CliError> {
    use jobpoints::ledger::formats::{CsvSource, InputFormat, open_ledger};
    use jobpoints::ledger::reader::{JobReader, Ledger};
    use std::io::{BufReader, IsTerminal};
    let show = std::io::stderr().is_terminal();
    let mut out = Vec::new();
    for path in paths {
        let format = format.of(path);
        let opened = if show && path.as_os_str() != "-" && format != InputFormat::Parquet {
            std::fs::File::open(path).and_then(|f| {
                let len = f.metadata()?.len();
                let bar = indicatif::ProgressBar::new(len).with_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                    )
                    .expect("valid template"),
                );
                bar.set_message(path.display().to_string());
                let input: Box<dyn std::io::BufRead + Send> =
                    Box::new(BufReader::with_capacity(1 << 16, bar.wrap_read(f)));
                let ledger = if format == InputFormat::Csv {
                    Ledger::new(CsvSource::new(input)?)
                } else {
                    Ledger::new(JobReader::new(input))
                };
                Ok((ledger, Some(bar)))
            })
        } else {
            open_ledger(path, format).map(|r| (r, None))
        };
        match opened {
            Ok((reader, bar)) => out.push((path.clone(), reader, bar)),
            Err(source) => {
                return Err(CliError::Open {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    Ok(out)
}

/// A rule set's diagnostics, rendered for people.
pub fn render_diagnostics(loaded: &Loaded) -> String {
    let files = &loaded.files;
    render_human(&loaded.diagnostics, &|f| files.text(f).map(String::from))
}

/// Runs one subcommand.
pub fn run(command: Command) -> Result<Exit, CliError> {
    match command {
        Command::Eval(args) => eval::run(args),
        Command::Check(args) => check::run(args),
        Command::Keygen(args) => sign::keygen(args),
        Command::Sign(args) => sign::sign(args),
        Command::Models(args) => models::run(args),
        Command::Tally(args) => tally::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Playground(args) => playground::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Catalog(args) => catalog::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
        Command::Schema(args) => schema::run(args),
    }
}

/// Prints why a command stopped, once, and gives its exit code.
fn report(e: &CliError) -> Exit {
    if e.is_silent() {
        return e.exit();
    }
    if let CliError::RulesInvalid { diagnostics, .. } = e {
        let _ = io::stderr().write_all(diagnostics.as_bytes());
    }
    if tracing::dispatcher::has_been_set() {
        // `serve` logs (maybe as JSON): its last words go to the same log, in its format.
        tracing::error!("{e}");
    } else {
        note!("error: {e}");
    }
    e.exit()
}

/// The command line: parses, runs, prints an error once, and returns the exit code.
pub fn main() -> ExitCode {
    let code = match Cli::try_parse() {
        // `--help` and `--version` come here too, to be written to stdout with exit 0.
        Err(e) => match e.print() {
            Err(w) if !e.use_stderr() => report(&CliError::Output(w)),
            _ => return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)),
        },
        Ok(cli) => run(cli.command).unwrap_or_else(|e| report(&e)),
    };
    if std::env::var_os("JOBPOINTS_REPORT_PEAK_RSS").is_some() {
        // For the benchmark: peak resident memory of this process, from the kernel.
        if let Some(line) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .map(String::from)
            })
        {
            note!("peak_rss {}", line.trim_start_matches("VmHWM:").trim());
        }
    }
    code.into()
}
