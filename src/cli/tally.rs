//! `jobpoints tally`: exact totals per miner, model, point kind or day.

use std::path::PathBuf;

use crate::cli::{CliError, Exit, RulesArg, Stdout, ThreadsArg, open_inputs, parse_at};
use crate::engine::score::{ScoreOptions, Scorer};
use crate::ledger::output::{csv_safe, terminal_safe};
use crate::ledger::pipeline::run_ledger;
use crate::ledger::tally::{GroupBy, PartialTally, Tally};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TallyFormat {
    /// Aligned columns with a total row, for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// One object per group, plus the total.
    Json,
}

/// Arguments of `jobpoints tally` (its help text is on `Command::Tally`).
#[derive(Debug, Clone, clap::Args)]
pub struct TallyArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Group by these dimensions, in this order (repeat or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "miner")]
    pub by: Vec<GroupBy>,
    /// Pick rule versions as of this time instead of each job's `completed_at`.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: TallyFormat,
    #[command(flatten)]
    pub threads: ThreadsArg,
    /// Job files: one JSON job, a JSON array of jobs, or JSONL. `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: TallyArgs) -> Result<Exit, CliError> {
    let rules = &args.rules.load_valid()?;
    let readers = open_inputs(&args.files)?;
    let mut by = args.by.clone();
    by.dedup();
    let threads = args.threads.get();
    let scorer = Scorer {
        opts: ScoreOptions {
            at: args.at,
            explain: false,
        },
        ..Scorer::new(rules)
    };
    let mut tally = Tally::new(by.clone());
    for (path, reader, bar) in readers {
        let result = run_ledger(
            reader,
            &scorer,
            threads,
            |s, part: &mut PartialTally| part.add(&by, s),
            |part| {
                tally.merge(part);
                Ok(())
            },
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if let Err(source) = result {
            return Err(CliError::Read { path, source });
        }
    }
    let out = match args.format {
        TallyFormat::Table => render_table(&tally),
        TallyFormat::Csv => render_csv(&tally),
        TallyFormat::Json => render_json(&tally, &rules.hash),
    };
    Stdout::new().write_text(&out)?;
    let total = tally.total();
    Ok(if total.invalid + total.error > 0 {
        Exit::JobsFailed
    } else {
        Exit::Ok
    })
}

fn render_table(tally: &Tally) -> String {
    let (header, mut rows) = tally.rows(true);
    // Miner and model names come from job files.
    for r in &mut rows {
        for cell in r.iter_mut().take(tally.by.len()) {
            if let std::borrow::Cow::Owned(safe) = terminal_safe(cell) {
                *cell = safe;
            }
        }
    }
    let dims = tally.by.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i < dims {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            } else {
                line.push_str(&format!("{c:>w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn render_csv(tally: &Tally) -> String {
    let (header, rows) = tally.rows(false);
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(&header);
    let dims = tally.by.len();
    for r in rows {
        let r: Vec<_> = r
            .iter()
            .enumerate()
            .map(|(i, c)| if i < dims { csv_safe(c) } else { c.into() })
            .collect();
        let _ = w.write_record(r.iter().map(|c| c.as_bytes()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn render_json(tally: &Tally, ruleset: &str) -> String {
    #[derive(serde::Serialize)]
    struct Group<'a> {
        group: std::collections::BTreeMap<&'static str, &'a str>,
        #[serde(flatten)]
        totals: &'a crate::ledger::tally::GroupTotals,
    }
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        by: &'a [GroupBy],
        ruleset: &'a str,
        groups: Vec<Group<'a>>,
        total: crate::ledger::tally::GroupTotals,
    }
    let doc = Doc {
        by: &tally.by,
        ruleset,
        groups: tally
            .groups
            .iter()
            .map(|(key, totals)| Group {
                group: tally
                    .by
                    .iter()
                    .map(|g| g.as_str())
                    .zip(key.iter().map(String::as_str))
                    .collect(),
                totals,
            })
            .collect(),
        total: tally.total(),
    };
    // Serialized directly (not through serde_json::Value) so points keep their 6 decimals.
    let mut s = serde_json::to_string_pretty(&doc).expect("json");
    s.push('\n');
    s
}
