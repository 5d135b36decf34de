//! `jobpoints check`: validate a rule set.

use std::io::{self, Write};

use crate::cli::sign::TrustedKeysArg;
use crate::cli::{CliError, Exit, RulesArg, Stdout, render_diagnostics};
use jobpoints::engine::model::RulesOrigin;
use jobpoints::rules::diagnostic::{Code, Diagnostic};
use jobpoints::rules::load::Loaded;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Human,
    Json,
}

/// Arguments of `jobpoints check` (its help text is on `Command::Check`).
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: CheckFormat,
    /// Treat warnings as errors.
    #[arg(long)]
    pub deny_warnings: bool,
    #[command(flatten)]
    pub trust: TrustedKeysArg,
}

pub fn run(args: CheckArgs) -> Result<Exit, CliError> {
    let mut loaded = args.rules.load()?;
    let dir = match &loaded.files.origin {
        RulesOrigin::Directory(d) => Some(d.clone()),
        _ => None,
    };
    if let Some(keys) = args.trust.load(dir.as_deref())? {
        let hash = loaded.files.hash();
        let checked = match &dir {
            Some(d) => keys.check_dir(d, &hash).map_err(|e| e.to_string()),
            None => Err(format!(
                "only a rules directory carries a signature, not {}",
                loaded.files.origin
            )),
        };
        if let Err(why) = checked {
            loaded
                .diagnostics
                .push(Diagnostic::error(Code::UntrustedRules, why));
        }
    }
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    let hash = loaded.files.hash();
    let mut out = Stdout::new();
    match args.format {
        CheckFormat::Json => {
            let doc = serde_json::json!({
                "schema_version": jobpoints::engine::identity::SCHEMA_VERSION,
                "engine": jobpoints::engine::identity::ENGINE,
                "ok": !failed,
                "rules": loaded.files.origin.to_string(),
                "ruleset": hash,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": loaded.diagnostics,
            });
            let mut text = serde_json::to_string_pretty(&doc).expect("json");
            text.push('\n');
            out.write_text(&text)?;
        }
        CheckFormat::Human => {
            write_human(&mut out, &loaded, &hash, errors, warnings, failed)
                .map_err(CliError::Output)?;
            out.flush_checked()?;
        }
    }
    Ok(if failed { Exit::RulesInvalid } else { Exit::Ok })
}

fn write_human(
    out: &mut impl Write,
    loaded: &Loaded,
    hash: &str,
    errors: usize,
    warnings: usize,
    failed: bool,
) -> io::Result<()> {
    out.write_all(render_diagnostics(loaded).as_bytes())?;
    match &loaded.ruleset {
        Some(rs) => {
            let versions: usize = rs.rules().map(|r| r.versions.len()).sum();
            // Every version's examples are checked, whatever its pricing.
            let examples: usize = rs
                .rules()
                .flat_map(|r| &r.versions)
                .map(|v| v.examples.len())
                .sum();
            writeln!(
                out,
                "{}: {} family rules, {} model rules, {versions} versions, {examples} examples, {} catalog models",
                loaded.files.origin,
                rs.family_rules.len(),
                rs.model_rules.len(),
                rs.catalog.len()
            )?;
        }
        None => writeln!(out, "{}: rule set is invalid", loaded.files.origin)?,
    }
    writeln!(out, "ruleset {hash}")?;
    writeln!(
        out,
        "{} error{}, {} warning{}{}",
        errors,
        if errors == 1 { "" } else { "s" },
        warnings,
        if warnings == 1 { "" } else { "s" },
        if failed { "" } else { ": ok" }
    )
}
