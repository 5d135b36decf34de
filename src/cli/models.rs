//! `jobpoints models`: the catalog's models and the rule version that prices each.

use serde::Serialize;

use crate::cli::{CliError, Exit, RulesArg, Stdout, parse_at};
use crate::engine::model::Pricing;
use crate::engine::resolve::Resolution;
use crate::engine::time::utc_date;

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
    /// The catalog entry's window (`from 2024-06-01 until 2025-01-16`), when it is dated.
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog_window: Option<String>,
    /// The version's `notes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
}

pub fn run(args: ModelsArgs) -> Result<Exit, CliError> {
    let at = args.at;
    let rs = args.rules.load_valid()?;
    let rows: Vec<ModelRow> = rs
        .catalog
        .iter()
        .map(|(model, entry)| {
            let mut row = match rs.resolve(model, at) {
                Resolution::Priced {
                    rule,
                    version,
                    kind,
                } => ModelRow {
                    model: model.clone(),
                    family: Some(entry.family.clone()),
                    kind: Some(kind.points.clone()),
                    rule: Some(version.label.clone()),
                    multiplier: match &version.pricing {
                        Pricing::Priced { multiplier, .. } => Some(*multiplier),
                        Pricing::NoRule { .. } | Pricing::Disabled { .. } => None,
                    },
                    effective_from: Some(utc_date(version.effective_from)),
                    effective_until: rule.next_after(version).map(utc_date),
                    status: "priced",
                    reason: None,
                    catalog_window: None,
                    notes: version.notes.clone(),
                },
                Resolution::Disabled {
                    rule,
                    version,
                    kind,
                    reason,
                } => ModelRow {
                    model: model.clone(),
                    family: Some(entry.family.clone()),
                    kind: Some(kind.points.clone()),
                    rule: Some(version.label.clone()),
                    multiplier: None,
                    effective_from: Some(utc_date(version.effective_from)),
                    effective_until: rule.next_after(version).map(utc_date),
                    status: "disabled",
                    reason: Some(reason),
                    catalog_window: None,
                    notes: version.notes.clone(),
                },
                Resolution::NoRule {
                    family,
                    rule,
                    kind,
                    reason,
                } => ModelRow {
                    model: model.clone(),
                    family: family.or_else(|| Some(entry.family.clone())),
                    kind: kind.map(|k| k.points.clone()),
                    rule: rule.map(|(_, v)| v.label.clone()),
                    multiplier: None,
                    effective_from: rule.map(|(_, v)| utc_date(v.effective_from)),
                    effective_until: rule.and_then(|(r, v)| r.next_after(v)).map(utc_date),
                    status: "no_rule",
                    reason: Some(reason),
                    catalog_window: None,
                    notes: rule.and_then(|(_, v)| v.notes.clone()),
                },
            };
            row.catalog_window = entry.window();
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
            if let Some(w) = &r.catalog_window {
                notes.push(format!("catalog: priced {w}"));
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
