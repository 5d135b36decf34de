//! `jobpoints check`: validate a rule set.

use crate::cli::{RulesArg, exit};
use crate::engine::model::Pricing;
use crate::rules::diagnostic::render_human;

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
}

pub fn run(args: CheckArgs) -> u8 {
    let loaded = match args.rules.load() {
        Ok(l) => l,
        Err(code) => return code,
    };
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    let hash = loaded.files.hash();
    match args.format {
        CheckFormat::Json => {
            let doc = serde_json::json!({
                "ok": !failed,
                "rules": loaded.files.origin.to_string(),
                "ruleset": hash,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": loaded.diagnostics,
            });
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        }
        CheckFormat::Human => {
            let files = &loaded.files;
            print!(
                "{}",
                render_human(&loaded.diagnostics, &|f| files.text(f).map(String::from))
            );
            match &loaded.ruleset {
                Some(rs) => {
                    let versions: usize = rs.rules().map(|r| r.versions.len()).sum();
                    let examples: usize = rs
                        .rules()
                        .flat_map(|r| &r.versions)
                        .filter(|v| matches!(v.pricing, Pricing::Priced { .. }))
                        .map(|v| v.examples.len())
                        .sum();
                    println!(
                        "{}: {} family rules, {} model rules, {versions} versions, {examples} examples, {} catalog models",
                        loaded.files.origin,
                        rs.family_rules.len(),
                        rs.model_rules.len(),
                        rs.catalog.len()
                    );
                }
                None => println!("{}: rule set is invalid", loaded.files.origin),
            }
            println!("ruleset {hash}");
            println!(
                "{} error{}, {} warning{}{}",
                errors,
                if errors == 1 { "" } else { "s" },
                warnings,
                if warnings == 1 { "" } else { "s" },
                if failed { "" } else { ": ok" }
            );
        }
    }
    if failed {
        exit::RULES_INVALID
    } else {
        exit::OK
    }
}
