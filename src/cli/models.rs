//! `jobpoints models`: the catalog's models and the rule version that prices each.

use serde::Serialize;

use crate::cli::{CliError, Exit, RulesArg, Stdout, parse_at};
use std::collections::BTreeSet;

use jobpoints::engine::catalog::Dated;
use jobpoints::engine::model::{Pricing, Rule, RuleVersion};
use jobpoints::engine::resolve::Resolution;
use jobpoints::engine::time::day_or_time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelsFormat {
    Table,
    Json,
}

/// Arguments of `jobpoints models` (its help text is on `Command::Models`).
#[derive(Debug, Clone, clap::Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Show the versions in force at this time (`2024-05-01` or RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ModelsFormat,
}

#[derive(Debug, Serialize)]
struct ModelRow {
    model: String,
    family: Option<String>,
    kind: Option<String>,
    rule: Option<String>,
    multiplier: Option<f64>,
    effective_from: Option<String>,
    effective_until: Option<String>,
    /// `priced`, `no_rule` or `disabled`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The catalog entry's windows (`sd15 from 2024-01-02T01:28:46Z (catalog 001, commit
    /// 45b77ad3bb) until ...`), when it is dated.
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog_window: Option<String>,
    /// Each catalog window, with the versions that bound it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    windows: Vec<WindowRow>,
    /// For a name that is an alias: its windows as one (`alias of `X` (rename from ...)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<String>,
    /// The version's `notes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
}

#[derive(Debug, Serialize)]
struct WindowRow {
    family: String,
    #[serde(flatten)]
    when: Dated,
}

pub fn run(args: ModelsArgs) -> Result<Exit, CliError> {
    let at = args.at;
    let rs = args.rules.load_valid()?;
    // Every catalog model and every alias name, in name order.
    let names: BTreeSet<&String> = rs.catalog.keys().chain(rs.aliases.keys()).collect();
    let rows: Vec<ModelRow> = names
        .into_iter()
        .map(|model| {
            let mut row = row_of(model, rs.resolve(model, at));
            if let Some(entry) = rs.catalog.get(model) {
                if row.family.is_none() {
                    row.family = Some(entry.family_at(at).to_string());
                }
                row.catalog_window = entry.window().map(|_| entry.text());
                row.windows = (entry.windows.iter())
                    .filter(|w| w.when != Dated::default())
                    .map(|w| WindowRow {
                        family: w.family.clone(),
                        when: w.when.clone(),
                    })
                    .collect();
            }
            let aliases = rs.aliases_of(model);
            if !aliases.is_empty() {
                let texts: Vec<String> = aliases.iter().map(|a| a.text()).collect();
                row.alias = Some(texts.join("; "));
            }
            row
        })
        .collect();
    let text = match args.format {
        ModelsFormat::Json => {
            let mut s = serde_json::to_string_pretty(&rows).expect("json");
            s.push('\n');
            s
        }
        ModelsFormat::Table => render(&rows),
    };
    Stdout::new().write_text(&text)?;
    Ok(Exit::Ok)
}

/// The row of `model` as it resolved (through an alias or not).
fn row_of(model: &str, r: Resolution<'_>) -> ModelRow {
    let row = |status, family: Option<String>| ModelRow {
        model: model.to_string(),
        family,
        kind: r.kind().map(|k| k.points.clone()),
        rule: None,
        multiplier: None,
        effective_from: None,
        effective_until: None,
        status,
        reason: None,
        catalog_window: None,
        windows: Vec::new(),
        alias: None,
        notes: None,
    };
    let with_version = |mut out: ModelRow, rule: &Rule, version: &RuleVersion| {
        out.rule = Some(version.label.clone());
        // To the second when a version starts within a day (at a commit's time).
        out.effective_from = Some(day_or_time(version.effective_from));
        out.effective_until = rule.next_after(version).map(day_or_time);
        out.notes = version.notes.clone();
        out
    };
    match &r {
        Resolution::Priced { rule, version, .. } => {
            let mut out = with_version(row("priced", Some(rule.family.clone())), rule, version);
            out.multiplier = match &version.pricing {
                Pricing::Priced { multiplier, .. } => Some(*multiplier),
                Pricing::NoRule { .. } | Pricing::Disabled { .. } => None,
            };
            out
        }
        Resolution::Disabled {
            rule,
            version,
            reason,
            ..
        } => {
            let mut out = with_version(row("disabled", Some(rule.family.clone())), rule, version);
            out.reason = Some(reason.clone());
            out
        }
        Resolution::NoRule {
            family,
            rule,
            reason,
            ..
        } => {
            let mut out = row("no_rule", family.clone());
            if let Some((rule, version)) = rule {
                out = with_version(out, rule, version);
            }
            out.reason = Some(reason.clone());
            out
        }
    }
}

fn render(rows: &[ModelRow]) -> String {
    let header = [
        "model",
        "family",
        "kind",
        "rule",
        "multiplier",
        "from",
        "until",
        "status",
        "notes",
    ];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            let mut notes: Vec<String> = Vec::new();
            if let Some(a) = &r.alias {
                notes.push(a.clone());
            }
            if let Some(w) = &r.catalog_window {
                notes.push(format!("catalog: {w}"));
            }
            notes.extend(r.notes.clone());
            [
                r.model.clone(),
                r.family.clone().unwrap_or_else(|| "-".into()),
                r.kind.clone().unwrap_or_else(|| "-".into()),
                r.rule.clone().unwrap_or_else(|| "-".into()),
                r.multiplier.map_or("-".into(), |m| format!("{m}")),
                r.effective_from.clone().unwrap_or_else(|| "-".into()),
                r.effective_until.clone().unwrap_or_else(|| "-".into()),
                match &r.reason {
                    Some(reason) => format!("{}: {reason}", r.status),
                    None => r.status.to_string(),
                },
                notes.join("; "),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (i, v) in c.iter().enumerate() {
            widths[i] = widths[i].max(v.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header.map(String::from)).chain(cells) {
        let mut line = String::new();
        for (i, v) in row.iter().enumerate() {
            line.push_str(&format!("{v:<w$}  ", w = widths[i]));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
