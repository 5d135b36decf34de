//! `jobpoints catalog sync`: a thin layer over [`jobpoints::rules::catalog_sync`].

use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::output::note;
use crate::cli::{CliError, Exit, RulesArg, Stdout, render_diagnostics};
use jobpoints::rules::catalog_sync::{self, GitSource, HistoryError, SyncError};
use jobpoints::rules::files::CATALOG_FILE;
use jobpoints::rules::files::{RuleFiles, RulesOrigin};
use jobpoints::rules::load::load;

/// Arguments of `jobpoints catalog`.
#[derive(Debug, clap::Args)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub command: CatalogCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Propose catalog.toml from the network's catalog history and the recorded decisions.
    ///
    /// Reads every version of the network's models.json offline, from a git clone of
    /// heurist-network/heurist-models (--repo, bare or not) or from a directory of versions
    /// with a CSV of their commits (--versions, as shared/data/models/ and
    /// models_commits.csv). Every version is parsed strictly: one that does not parse (bad
    /// JSON, a key given twice, a wrong type) is reported with its line and skipped.
    ///
    /// From the history it writes each model's windows (when it was listed, in which family,
    /// dated by UTC commit time and naming the catalog version and commit), so a removal ends
    /// pricing and a family change re-prices under the new family, as the catalog says. What
    /// only governance can decide is kept from the current catalog.toml: rename candidates
    /// and redirects accepted as aliases ([aliases]) or not ([declined]), and families left
    /// unpriced ([unpriced]). Decisions still missing (a family no rule prices, a rename
    /// candidate, a redirect) are listed, never guessed; removals and family changes are
    /// listed as information.
    ///
    /// Prints that report to stderr and the proposed change to catalog.toml as a unified diff
    /// to stdout. Writes nothing unless --write. Exit 0; with --check, 8 when catalog.toml
    /// differs from what the history gives or decisions are missing (for a scheduled CI job);
    /// 2 when the history cannot be read; 3 when catalog.toml has errors (its decisions cannot
    /// be read).
    Sync(SyncArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncFormat {
    /// The report on stderr, the unified diff on stdout.
    Text,
    /// One JSON document on stdout: history, skipped versions, decisions, drift and patch.
    Json,
}

/// Arguments of `jobpoints catalog sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// A git clone (bare or not) of the catalog's repository: every commit of --file in the
    /// history of --rev.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "versions",
        required_unless_present = "versions"
    )]
    pub repo: Option<PathBuf>,
    /// With --repo: the revision whose history is read (default: HEAD, the default branch).
    #[arg(long, value_name = "REV", default_value = "HEAD", requires = "repo")]
    pub rev: String,
    /// With --repo: the catalog file in the repository.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "models.json",
        requires = "repo"
    )]
    pub file: String,
    /// With --repo: follow only first parents (`git log --first-parent`), dating a merged
    /// change by its merge. The default dates each version by the commit that made it.
    #[arg(long, requires = "repo")]
    pub first_parent: bool,
    /// A directory of version files (e.g. shared/data/models/), listed with their commits by
    /// --commits.
    #[arg(long, value_name = "DIR")]
    pub versions: Option<PathBuf>,
    /// With --versions: the CSV of versions (columns version_file, commit, committed_at_utc,
    /// subject; oldest first). Default: models_commits.csv inside DIR or next to it.
    #[arg(long, value_name = "CSV", requires = "versions")]
    pub commits: Option<PathBuf>,
    /// Write the proposed catalog.toml into the rules directory.
    #[arg(long, conflicts_with = "check")]
    pub write: bool,
    /// Exit 8 when catalog.toml differs from what the history gives, or decisions are missing.
    #[arg(long)]
    pub check: bool,
    /// List every decision (recorded, declined, informational), not only missing and new ones.
    #[arg(long)]
    pub decisions: bool,
    /// How to print the outcome.
    #[arg(long, value_enum, default_value = "text")]
    pub format: SyncFormat,
}

pub fn run(args: CatalogArgs) -> Result<Exit, CliError> {
    match args.command {
        CatalogCommand::Sync(a) => sync(a),
    }
}

fn history_error(e: HistoryError) -> CliError {
    match e {
        HistoryError::Git(g) => CliError::Git(g),
        other => CliError::Usage(other.to_string()),
    }
}

fn sync(args: SyncArgs) -> Result<Exit, CliError> {
    let raw = match (&args.repo, &args.versions) {
        (Some(repo), _) => catalog_sync::read_git(&GitSource {
            repo: repo.clone(),
            rev: args.rev.clone(),
            path: args.file.clone(),
            first_parent: args.first_parent,
        }),
        (None, Some(dir)) => {
            let commits = match args.commits.clone().or_else(|| catalog_sync::default_commits_file(dir)) {
                Some(c) => c,
                None => {
                    return Err(CliError::Usage(format!(
                        "no models_commits.csv in or next to {}; name the list of versions with --commits",
                        dir.display()
                    )));
                }
            };
            catalog_sync::read_directory(dir, &commits)
        }
        (None, None) => return Err(CliError::Usage("give --repo DIR or --versions DIR".into())),
    }
    .map_err(history_error)?;
    let files = RuleFiles::locate(args.rules.rules.as_deref())?;
    let target = match &files.origin {
        RulesOrigin::Directory(dir) => Some(dir.join(CATALOG_FILE)),
        _ => None,
    };
    if args.write && target.is_none() {
        return Err(CliError::Usage(
            "--write needs a rules directory (--rules DIR, or ./rules); the built-in rules cannot be written".into(),
        ));
    }
    let s = catalog_sync::sync(raw, &files).map_err(|e| match e {
        SyncError::Rules {
            message,
            diagnostics,
        } => {
            let loaded = jobpoints::rules::load::Loaded {
                ruleset: None,
                diagnostics,
                files: files.clone(),
                partial: None,
            };
            crate::cli::rules_invalid(&loaded, message)
        }
    })?;
    let shown_path = target.as_ref().map_or_else(
        || format!("rules/{CATALOG_FILE}"),
        |p| p.display().to_string(),
    );
    let patch = s.patch(&shown_path);
    let missing = s.missing().count();
    match args.format {
        SyncFormat::Text => {
            let mut report = catalog_sync::report(&s, args.decisions);
            if s.drift() {
                report.push_str(&format!(
                    "{shown_path} differs from the history: the diff is on stdout\n"
                ));
            } else {
                report.push_str(&format!("{shown_path} is what the history gives\n"));
            }
            let _ = std::io::stderr().write_all(report.as_bytes());
            Stdout::new().write_text(&patch)?;
        }
        SyncFormat::Json => {
            let doc = serde_json::json!({
                "versions": s.timeline.versions.len(),
                "skipped": (s.timeline.skipped.iter()).map(|sk| {
                    let v = &s.timeline.versions[sk.version];
                    serde_json::json!({
                        "version": v.number,
                        "commit": v.commit,
                        "at": jobpoints::engine::time::utc_string(v.at),
                        "file": v.origin,
                        "line": (sk.problem.line > 0).then_some(sk.problem.line),
                        "column": (sk.problem.line > 0).then_some(sk.problem.column),
                        "problem": sk.problem.message,
                    })
                }).collect::<Vec<_>>(),
                "decisions": s.decisions,
                "missing": missing,
                "notes": s.notes,
                "drift": s.drift(),
                "patch": patch,
            });
            let mut text = serde_json::to_string_pretty(&doc).expect("json");
            text.push('\n');
            Stdout::new().write_text(&text)?;
        }
    }
    if args.write && s.drift() {
        let path = target.expect("checked above");
        // A running `serve` watches the rules: it must never read a half-written file. A
        // hidden temporary file (not a rule file) is renamed over it, as editors save.
        let tmp = path.with_file_name(format!(".{CATALOG_FILE}.sync"));
        let create = |source| CliError::Create {
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, s.proposed.as_bytes()).map_err(create)?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(create(e));
        }
        note!("wrote {}", path.display());
        // Say at once when the result does not load (a family no rule prices yet).
        let mut written = files.clone();
        written
            .files
            .insert(CATALOG_FILE.to_string(), s.proposed.clone().into_bytes());
        let loaded = load(written);
        if loaded.has_errors() {
            let _ = std::io::stderr().write_all(render_diagnostics(&loaded).as_bytes());
            note!(
                "the rules do not load with the new {CATALOG_FILE} until the decisions above are taken (`jobpoints check`)"
            );
        }
    }
    if args.check && (s.drift() || missing > 0) {
        return Ok(Exit::CatalogDrift);
    }
    Ok(Exit::Ok)
}
