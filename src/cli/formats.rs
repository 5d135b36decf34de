//! The command line's choices of format and grouping: clap's view of the engine's enums, which
//! stay free of clap. Each converts to the engine's; the doc comments are the `--help` texts.

use jobpoints::ledger::{formats, output, tally};

/// Output formats of `jobpoints eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    /// One JSON object per job, in input order.
    Jsonl,
    /// A JSON array of the same objects.
    Json,
    /// An aligned table with totals per point kind, for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet with a typed schema (points as DECIMAL(20,6)); needs `--out FILE`.
    #[cfg(feature = "parquet")]
    Parquet,
}

impl From<EvalFormat> for output::EvalFormat {
    fn from(f: EvalFormat) -> Self {
        match f {
            EvalFormat::Jsonl => output::EvalFormat::Jsonl,
            EvalFormat::Json => output::EvalFormat::Json,
            EvalFormat::Table => output::EvalFormat::Table,
            EvalFormat::Csv => output::EvalFormat::Csv,
            #[cfg(feature = "parquet")]
            EvalFormat::Parquet => output::EvalFormat::Parquet,
        }
    }
}

/// Input formats of the ledger commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InputFormat {
    /// By extension: `.parquet` / `.pq` is Parquet, `.csv` is CSV, anything else (and `-`)
    /// is JSON.
    #[default]
    Auto,
    /// JSONL, JSON arrays and pretty-printed documents, in any mix.
    Json,
    /// CSV with a header row naming the job fields (dotted names nest).
    Csv,
    /// Apache Parquet (columns name the job fields; structs and dotted names nest).
    Parquet,
}

impl From<InputFormat> for formats::InputFormat {
    fn from(f: InputFormat) -> Self {
        match f {
            InputFormat::Auto => formats::InputFormat::Auto,
            InputFormat::Json => formats::InputFormat::Json,
            InputFormat::Csv => formats::InputFormat::Csv,
            InputFormat::Parquet => formats::InputFormat::Parquet,
        }
    }
}

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum GroupBy {
    /// The job's `miner` (or `miner_id`).
    Miner,
    /// The job's model name.
    Model,
    /// The point kind earned (`waifu`, `llama`, ...).
    Kind,
    /// The UTC day of the job's `completed_at`.
    Day,
}

impl From<GroupBy> for tally::GroupBy {
    fn from(g: GroupBy) -> Self {
        match g {
            GroupBy::Miner => tally::GroupBy::Miner,
            GroupBy::Model => tally::GroupBy::Model,
            GroupBy::Kind => tally::GroupBy::Kind,
            GroupBy::Day => tally::GroupBy::Day,
        }
    }
}

/// The engine's groupings of `by`, in order.
pub fn group_by(by: &[GroupBy]) -> Vec<tally::GroupBy> {
    by.iter().map(|&g| g.into()).collect()
}

/// How a tally is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TallyFormat {
    /// Aligned columns with a total row, for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// The versioned partial: one object per group, exact decimal strings; mergeable.
    Json,
}

impl From<TallyFormat> for tally::TallyFormat {
    fn from(f: TallyFormat) -> Self {
        match f {
            TallyFormat::Table => tally::TallyFormat::Table,
            TallyFormat::Csv => tally::TallyFormat::Csv,
            TallyFormat::Json => tally::TallyFormat::Json,
        }
    }
}
