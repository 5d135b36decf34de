//! `jobpoints verify`: score results' jobs again, with the rule sets their hashes name, and
//! compare.

use crate::cli::formats::InputFormat;
use std::io::Write;
use std::path::PathBuf;

use crate::cli::{CliError, Exit, RulesArg, Stdout, ThreadsArg, parse_at};
use jobpoints::audit::history::{RulesLibrary, Source};
use jobpoints::audit::verify::{ResultsFile, VerifyError, VerifyOptions, VerifyReport, verify};
use jobpoints::engine::identity::{ENGINE, SCHEMA_VERSION};
use jobpoints::rules::files::{RuleFiles, RulesOrigin};
use jobpoints::rules::load::load;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    /// Each mismatch as it is found, then a summary, for people.
    Human,
    /// One JSON document at the end: counts, rule sets, every mismatch.
    Json,
}

/// Arguments of `jobpoints verify` (its help text is on `Command::Verify`).
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Results to verify: JSONL or JSON results of `eval` (or a `serve` response), or
    /// decision logs of `serve --decision-log`. `-` reads stdin.
    #[arg(required = true, value_name = "RESULTS")]
    pub results: Vec<PathBuf>,
    /// The job files the results were made from (not needed for decision logs, which carry
    /// their jobs). A result is matched with its job by file (its `file` field, else the only
    /// job file, else the job file in the same position as its results file), line and id.
    #[arg(long, value_name = "JOBS", num_args = 1..)]
    pub jobs: Vec<PathBuf>,
    /// How to read the `--jobs` files: by extension (`.parquet`, `.pq`, `.csv`; anything else
    /// is JSON), or as given for every file. A result's line is the job's row in CSV and Parquet.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "auto")]
    pub input_format: InputFormat,
    #[command(flatten)]
    pub rules: RulesArg,
    /// A git repository whose history of `rules/` is searched for the rule sets the results
    /// name (every commit on any branch or tag that changed `rules/`). The hash → commit index
    /// is cached in the repository's git directory.
    #[arg(long, value_name = "GITDIR")]
    pub repo: Option<PathBuf>,
    /// The pricing time of results that do not name theirs (`priced_at`): results of
    /// `eval --at` made before results carried it.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: VerifyFormat,
    #[command(flatten)]
    pub threads: ThreadsArg,
}

pub fn run(args: VerifyArgs) -> Result<Exit, CliError> {
    let library = library(&args)?;
    let mut inputs = Vec::new();
    for path in &args.results {
        let input: Box<dyn std::io::BufRead + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::BufReader::with_capacity(1 << 16, std::io::stdin()))
        } else {
            let f = std::fs::File::open(path).map_err(|source| CliError::Open {
                path: path.clone(),
                source,
            })?;
            Box::new(std::io::BufReader::with_capacity(1 << 16, f))
        };
        inputs.push(ResultsFile {
            path: path.clone(),
            input,
        });
    }
    for path in &args.jobs {
        if path.as_os_str() == "-" {
            return Err(CliError::Usage(
                "--jobs cannot be stdin: a job file may have to be read again".into(),
            ));
        }
        std::fs::File::open(path).map_err(|source| CliError::Open {
            path: path.clone(),
            source,
        })?;
    }
    let opts = VerifyOptions {
        threads: args.threads.get(),
        at: args.at,
        keep_mismatches: args.format == VerifyFormat::Json,
        input_format: args.input_format.into(),
    };
    let mut out = Stdout::new();
    let human = args.format == VerifyFormat::Human;
    let verified = verify(inputs, args.jobs.clone(), &library, &opts, |m| {
        if human {
            writeln!(out, "MISMATCH {m}")?;
        }
        Ok(())
    });
    let report = match verified {
        Ok(r) => r,
        Err(VerifyError::Usage(m)) => return Err(CliError::Usage(m)),
        Err(VerifyError::Write(e)) => return Err(CliError::Output(e)),
        Err(VerifyError::Read { path, source }) => {
            out.flush_checked()?;
            return Err(CliError::Open { path, source });
        }
    };
    let text = match args.format {
        VerifyFormat::Human => render_human(&report),
        VerifyFormat::Json => {
            #[derive(serde::Serialize)]
            struct Doc<'r> {
                schema_version: u32,
                engine: &'static str,
                ok: bool,
                #[serde(flatten)]
                report: &'r VerifyReport,
            }
            let doc = Doc {
                schema_version: SCHEMA_VERSION,
                engine: ENGINE,
                ok: exit(&report) == Exit::Ok,
                report: &report,
            };
            let mut s = serde_json::to_string_pretty(&doc).expect("report serializes");
            s.push('\n');
            s
        }
    };
    out.write_text(&text)?;
    Ok(exit(&report))
}

/// 0 when every result verified; 5 when some did not (a difference, a missing job, a
/// malformed result); else 6 when some results' rule sets could not be found.
fn exit(r: &VerifyReport) -> Exit {
    if r.mismatched > 0 {
        Exit::Mismatch
    } else if r.unknown > 0 {
        Exit::UnknownRules
    } else {
        Exit::Ok
    }
}

/// Where rule sets are searched: the rules given (or ./rules), the built-in rules, the
/// repository's history.
fn library(args: &VerifyArgs) -> Result<RulesLibrary, CliError> {
    let mut given = Vec::new();
    let located = RuleFiles::locate(args.rules.rules.as_deref())?;
    if let RulesOrigin::Directory(dir) = &located.origin {
        let dir = dir.display().to_string();
        let loaded = load(located);
        match loaded.ruleset {
            Some(rs) => given.push((rs, Source::Dir { dir })),
            None => {
                return Err(crate::cli::rules_invalid(
                    &loaded,
                    format!("the rules in {dir} are invalid"),
                ));
            }
        }
    }
    if let Some(rs) = load(RuleFiles::embedded()).ruleset {
        given.push((rs, Source::Builtin));
    }
    let repo = args.repo.clone().map(|r| (r, "rules".to_string()));
    Ok(RulesLibrary::new(given, repo))
}

fn render_human(r: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "verified {} of {} results ({} mismatched, {} with an unknown rule set){}",
        r.verified,
        r.results,
        r.mismatched,
        r.unknown,
        match r.jobs_without_result {
            0 => String::new(),
            n => format!(
                "; {n} job{} without a result",
                if n == 1 { "" } else { "s" }
            ),
        }
    );
    if !r.rulesets.is_empty() {
        let _ = writeln!(s, "rule sets:");
        for rs in &r.rulesets {
            let source = rs
                .source
                .as_ref()
                .map_or_else(|| "-".to_string(), ToString::to_string);
            let _ = writeln!(
                s,
                "  {}  {} results, {} verified: {source}",
                rs.ruleset, rs.results, rs.verified
            );
        }
    }
    for u in &r.unknown_rulesets {
        let _ = writeln!(
            s,
            "UNKNOWN rule set {} ({} results): {}",
            u.ruleset, u.results, u.reason
        );
        for at in &u.locations {
            let _ = writeln!(s, "  {at}");
        }
        if u.results > u.locations.len() as u64 {
            let _ = writeln!(s, "  ... and {} more", u.results - u.locations.len() as u64);
        }
    }
    for (engine, n) in &r.other_engines {
        let _ = writeln!(
            s,
            "note: {n} results were made by {engine}; they were scored again with {ENGINE}"
        );
    }
    s
}
