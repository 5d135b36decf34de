//! Writing scores: JSONL, a JSON array, CSV, or an aligned table with totals for people.

use std::io::{self, Write};

use crate::engine::points::PointsSum;
use crate::engine::score::{PricedBy, Score, ScoreRef};
use crate::ledger::safe::{csv_safe, terminal_safe};
use crate::ledger::tally::{Counts, GroupBy, PartialTally, Tally};

/// Output formats of `jobpoints eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

const CSV_HEADER: [&str; 13] = [
    "line",
    "id",
    "model",
    "miner",
    "status",
    "kind",
    "family",
    "rule",
    "points",
    "reason",
    "ruleset",
    "engine",
    "disputed_claim",
];

/// Room for one batch of JSONL results.
pub const BATCH_OUTPUT_BYTES: usize = 3 << 20;

/// A batch of results formatted by a worker thread, in input order.
#[derive(Default)]
pub struct Formatted {
    bytes: Vec<u8>,
    csv: Option<csv::Writer<Vec<u8>>>,
    /// Table rows of this batch, rendered by the writer (its widths come from the first).
    rows: Vec<Score>,
    /// Parquet columns of this batch.
    #[cfg(feature = "parquet")]
    columns: Option<Box<crate::ledger::parquet_out::Columns>>,
    /// Results that are `invalid` or `error`.
    pub failed: u64,
}

impl EvalFormat {
    /// Formats one result into a worker's batch.
    pub fn format(self, batch: &mut Formatted, s: &ScoreRef<'_>) {
        batch.failed += u64::from(s.status.is_failure());
        match self {
            EvalFormat::Jsonl => {
                if batch.bytes.capacity() == 0 {
                    // A batch's output at once (a 1 MiB block of typical jobs gives about
                    // 2 MiB): regrowing the buffer copied it, and showed in profiles.
                    batch.bytes.reserve(BATCH_OUTPUT_BYTES);
                }
                write_jsonl(&mut batch.bytes, s);
            }
            EvalFormat::Json => {
                // Every element is preceded by a separator; the writer turns the very first
                // one into the array's opening.
                batch.bytes.extend_from_slice(b",\n  ");
                serde_json::to_writer(&mut batch.bytes, s).expect("writing to a Vec cannot fail");
            }
            EvalFormat::Csv => {
                let w = batch.csv.get_or_insert_with(|| {
                    csv::WriterBuilder::new()
                        .has_headers(false)
                        .from_writer(Vec::new())
                });
                let reason = s.reason.or(s.error).unwrap_or("");
                let text = |v: Option<&str>| csv_safe(v.unwrap_or("")).into_owned();
                let _ = w.write_record([
                    itoa::Buffer::new().format(s.line),
                    &text(s.id),
                    &text(s.model),
                    &text(s.miner),
                    s.status.as_str(),
                    s.kind.unwrap_or(""),
                    s.family.unwrap_or(""),
                    s.rule.unwrap_or(""),
                    s.points.to_string().as_str(),
                    &csv_safe(reason),
                    s.ruleset,
                    s.engine,
                    &csv_safe(s.disputed_claim.unwrap_or("")),
                ]);
            }
            EvalFormat::Table => batch.rows.push(s.to_score()),
            #[cfg(feature = "parquet")]
            EvalFormat::Parquet => batch.columns.get_or_insert_with(Default::default).push(s),
        }
    }
}

/// Writes formatted batches in order, with what goes before, between and after them.
pub struct ResultsWriter<W: Write> {
    out: W,
    format: EvalFormat,
    wrote_any: bool,
    table: TableWriter,
    #[cfg(feature = "parquet")]
    parquet: Option<crate::ledger::parquet_out::ParquetWriter<std::io::BufWriter<std::fs::File>>>,
}

impl<W: Write> ResultsWriter<W> {
    /// Starts the output (the CSV header).
    pub fn new(mut out: W, format: EvalFormat, explain: bool) -> io::Result<Self> {
        if format == EvalFormat::Csv {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(CSV_HEADER)?;
            out.write_all(&w.into_inner().map_err(|e| e.into_error())?)?;
        }
        Ok(ResultsWriter {
            out,
            format,
            wrote_any: false,
            table: TableWriter::new(explain),
            #[cfg(feature = "parquet")]
            parquet: None,
        })
    }

    /// Writes the next batch.
    pub fn write(&mut self, batch: Formatted) -> io::Result<()> {
        #[cfg(feature = "parquet")]
        if let Some(parquet) = &mut self.parquet {
            return match batch.columns {
                Some(columns) => parquet.write(*columns),
                None => Ok(()),
            };
        }
        let mut bytes = batch.bytes;
        if let Some(w) = batch.csv {
            bytes = w.into_inner().map_err(|e| e.into_error())?;
        }
        if self.format == EvalFormat::Json && !bytes.is_empty() && !self.wrote_any {
            // The first element's separator opens the array.
            self.out.write_all(b"[")?;
            bytes.drain(..1);
        }
        self.wrote_any |= !bytes.is_empty() || !batch.rows.is_empty();
        if self.format == EvalFormat::Table {
            // Rows go out as they come; only the totals are kept.
            let text = self.table.rows(&batch.rows);
            return self.out.write_all(text.as_bytes());
        }
        self.out.write_all(&bytes)
    }

    /// Ends the output (the array's closing, the table's totals) and flushes it.
    pub fn finish(mut self) -> io::Result<()> {
        match self.format {
            EvalFormat::Json => {
                self.out
                    .write_all(if self.wrote_any { b"\n]\n" } else { b"[]\n" })?;
            }
            EvalFormat::Table => {
                let text = self.table.finish();
                self.out.write_all(text.as_bytes())?;
            }
            EvalFormat::Jsonl | EvalFormat::Csv => {}
            #[cfg(feature = "parquet")]
            EvalFormat::Parquet => {
                if let Some(parquet) = self.parquet.take() {
                    parquet.finish()?.flush()?;
                }
            }
        }
        self.out.flush()
    }
}

#[cfg(feature = "parquet")]
impl ResultsWriter<io::Sink> {
    /// Results as Parquet into `file`.
    pub fn parquet(file: std::fs::File) -> io::Result<Self> {
        let mut w = ResultsWriter::new(io::sink(), EvalFormat::Parquet, false)?;
        w.parquet = Some(crate::ledger::parquet_out::ParquetWriter::new(
            std::io::BufWriter::with_capacity(1 << 20, file),
        )?);
        Ok(w)
    }
}

const TABLE_HEADER: [&str; 8] = [
    "line", "id", "model", "status", "kind", "rule", "points", "note",
];

/// The table of `eval --format table`, written as results come: the columns are as wide as
/// the header and the first batch of rows need (a later, wider cell widens only its own row),
/// and only the totals per point kind are kept, so memory does not grow with the ledger.
pub struct TableWriter {
    explain: bool,
    widths: Option<[usize; 8]>,
    totals: Tally,
    /// The rule-set hash and engine of the first result, printed under the totals.
    identity: Option<(String, String)>,
}

impl TableWriter {
    pub fn new(explain: bool) -> Self {
        TableWriter {
            explain,
            widths: None,
            totals: Tally::new(vec![GroupBy::Kind], None, ""),
            identity: None,
        }
    }

    /// The rows of the next batch (the header first, before the first batch).
    pub fn rows(&mut self, scores: &[Score]) -> String {
        let rows: Vec<[String; 8]> = scores
            .iter()
            .map(|s| {
                let safe = |v: Option<&str>| terminal_safe(v.unwrap_or_default()).into_owned();
                [
                    s.line.to_string(),
                    safe(s.id.as_deref()),
                    safe(s.model.as_deref()),
                    s.status.to_string(),
                    s.kind.clone().unwrap_or_else(|| "-".into()),
                    s.rule.clone().unwrap_or_else(|| "-".into()),
                    s.points.to_string(),
                    match (
                        s.reason.as_deref().or(s.error.as_deref()),
                        &s.disputed_claim,
                    ) {
                        (Some(note), _) => safe(Some(note)),
                        (None, Some(d)) => safe(Some(&format!("disputed claim: {d}"))),
                        (None, None) => String::new(),
                    },
                ]
            })
            .collect();
        let mut out = String::new();
        let widths = match self.widths {
            Some(w) => w,
            None => {
                let mut widths = TABLE_HEADER.map(str::len);
                for r in &rows {
                    for (i, c) in r.iter().enumerate().take(7) {
                        widths[i] = widths[i].max(c.chars().count());
                    }
                }
                self.widths = Some(widths);
                table_line(&TABLE_HEADER.map(String::from), &widths, &mut out);
                widths
            }
        };
        let mut part = PartialTally::default();
        for (r, s) in rows.iter().zip(scores) {
            table_line(r, &widths, &mut out);
            if self.explain
                && let Some(t) = &s.trace
            {
                out.push_str(&render_trace(t));
            }
            part.add(&self.totals.by, &s.as_ref());
        }
        self.totals.merge(part);
        if self.identity.is_none() {
            self.identity = scores
                .first()
                .map(|s| (s.ruleset.to_string(), s.engine.to_string()));
        }
        out
    }

    /// The header (when no row came), then the totals per point kind.
    pub fn finish(mut self) -> String {
        let mut out = self.rows(&[]);
        out.push('\n');
        out.push_str(&render_totals(&self.totals));
        if let Some((ruleset, engine)) = &self.identity {
            out.push_str(&format!("ruleset {ruleset}\n"));
            out.push_str(&format!("engine  {}\n", terminal_safe(engine)));
        }
        out
    }
}

/// One row of the table: text left-aligned, points right-aligned, the note last.
fn table_line(cells: &[String], widths: &[usize; 8], out: &mut String) {
    let start = out.len();
    for (i, c) in cells.iter().enumerate() {
        if i == 7 {
            out.push_str(c);
        } else if i == 6 {
            // Numbers align right.
            out.push_str(&format!("{c:>w$}  ", w = widths[i]));
        } else {
            out.push_str(&format!("{c:<w$}  ", w = widths[i]));
        }
    }
    let trimmed = start + out[start..].trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
}

/// Totals per point kind (jobs with no kind are counted under `-`), then a total row that
/// counts jobs and statuses only: points of different kinds are never added together.
fn render_totals(by: &Tally) -> String {
    let mut all = Counts::default();
    const COLUMNS: usize = 11;
    let mut rows: Vec<[String; COLUMNS]> = vec![[
        "kind".into(),
        "jobs".into(),
        "ok".into(),
        "below".into(),
        "over".into(),
        "no_rule".into(),
        "disabled".into(),
        "unmeasured".into(),
        "invalid".into(),
        "error".into(),
        "points".into(),
    ]];
    let mut push = |name: &str, c: &Counts, points: Option<PointsSum>| {
        rows.push([
            name.to_string(),
            c.jobs.to_string(),
            c.ok.to_string(),
            c.below_threshold.to_string(),
            c.over_limit.to_string(),
            c.no_rule.to_string(),
            c.disabled.to_string(),
            c.unmeasured.to_string(),
            c.invalid.to_string(),
            c.error.to_string(),
            points.map_or("-".to_string(), |p| p.to_string()),
        ]);
    };
    for (key, counts, points) in by.each() {
        push(key[0], &counts, Some(points));
        all.merge(&counts);
    }
    push("total", &all, None);
    let mut widths = [0usize; COLUMNS];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            } else {
                out.push_str(&format!("  {c:>w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

pub fn render_trace(t: &crate::engine::score::Trace) -> String {
    let mut out = String::new();
    // Reasons and inputs may carry a job's own strings (a model name).
    let mut add =
        |k: &str, v: String| out.push_str(&format!("    {k:<12} {}\n", terminal_safe(&v)));
    let rule = match (&t.rule, t.version) {
        (Some(r), Some(v)) => format!("{r} version {v}"),
        _ => "-".into(),
    };
    let via = match &t.alias {
        Some(a) => format!(" → {} ({})", a.model, a.kind),
        None => String::new(),
    };
    add(
        "resolve",
        format!(
            "{}{via} → family {} → {}",
            terminal_safe(&t.model),
            t.family.as_deref().unwrap_or("-"),
            rule
        ),
    );
    if let Some(a) = &t.alias {
        add(
            "alias",
            format!(
                "{} of `{}` {}; source: {}",
                a.kind, a.model, a.window, a.source
            ),
        );
    }
    if let Some(c) = &t.catalog {
        add("catalog", c.clone());
    }
    if let Some(file) = &t.rule_file {
        let until = t.effective_until.as_deref().unwrap_or("(latest)");
        add(
            "in force",
            format!(
                "{} .. {} ({}); picked by {}",
                t.effective_from.as_deref().unwrap_or("-"),
                until,
                file,
                t.at.as_deref()
                    .map_or("no time: latest version".to_string(), |a| format!(
                        "time {a}"
                    ))
            ),
        );
    }
    if let Some(src) = &t.source {
        add("source", src.clone());
    }
    if let Some(notes) = &t.notes {
        add("notes", notes.clone());
    }
    for a in &t.assumptions {
        add("assumption", a.clone());
    }
    if let Some(reason) = &t.reason {
        add("reason", reason.clone());
    }
    if !t.inputs.is_empty() {
        add(
            "inputs",
            t.inputs
                .iter()
                .map(|(n, v)| {
                    if t.defaulted.contains(n) {
                        format!("{n}={v} (default)")
                    } else {
                        format!("{n}={v}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    for c in &t.counted {
        let (noun, how) = match (c.counted == "chat", c.texts == 1) {
            (true, true) => ("message", ", through the chat template"),
            (true, false) => ("messages", ", through the chat template"),
            (false, true) => ("text", ""),
            (false, false) => ("texts", ""),
        };
        let calls = match c.tool_calls {
            0 => String::new(),
            1 => ", 1 tool call".to_string(),
            n => format!(", {n} tool calls"),
        };
        let template = c.template.as_ref().map_or(String::new(), |t| {
            format!(", read with prompt template {t}")
        });
        let what = format!(
            "`{}` ({} {noun}{calls}, {} bytes{template}{how})",
            c.field, c.texts, c.bytes
        );
        let line = match &c.tools {
            None => format!("{} = {} tokens of {what}", c.input, c.tokens),
            Some(t) => format!(
                "{} = {} tokens: {} of {what}, and {} of {} tool definition{} at `{}` ({} bytes)",
                c.input,
                c.tokens,
                c.tokens - t.tokens,
                t.tokens,
                t.definitions,
                if t.definitions == 1 { "" } else { "s" },
                t.field,
                t.bytes
            ),
        };
        add("counted", format!("{line}, tokenizer {}", c.tokenizer));
        if let Some(claim) = &c.claim {
            add(
                "claim",
                if claim.disputed {
                    format!(
                        "the job claims {} = {} (`{}`): DISPUTED by its text, which is counted",
                        c.input, claim.value, claim.field
                    )
                } else {
                    format!(
                        "the job claims {} = {} (`{}`): within the tolerance; its text is counted",
                        c.input, claim.value, claim.field
                    )
                },
            );
        }
        if let Some(src) = &c.source {
            add("source", src.clone());
        }
        for a in &c.assumptions {
            add("assumption", a.clone());
        }
    }
    if let Some(l) = &t.observed.execution {
        add(
            "limits",
            format!(
                "{} execution limits in force from {} (kinds.toml:{})",
                l.kind, l.effective_from, l.line
            ),
        );
        add("source", l.source.clone());
        if let Some(notes) = &l.notes {
            add("notes", notes.clone());
        }
        for a in &l.assumptions {
            add("assumption", a.clone());
        }
        if !l.inputs.is_empty() {
            add(
                "executed",
                (l.inputs.iter())
                    .map(|e| {
                        if e.clamped_by.is_empty() {
                            format!("{}={} (as requested)", e.name, e.executed)
                        } else {
                            format!(
                                "{}={} (requested {}: {})",
                                e.name,
                                e.executed,
                                e.requested,
                                e.clamped_by.join(", ")
                            )
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
    }
    if !t.observed.derived.is_empty() {
        add(
            "derived",
            t.observed
                .derived
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    for th in &t.observed.thresholds {
        let line = match th.value {
            Some(v) => format!(
                "{} = {v} ≥ {} {}",
                th.name,
                th.min,
                if th.passed { "pass" } else { "FAIL" }
            ),
            None => format!("{} ≥ {}: absent, not checked", th.name, th.min),
        };
        add("threshold", line);
    }
    for c in &t.observed.ceilings {
        let line = match c.value {
            Some(v) => format!(
                "{} = {v} ≤ {} {}",
                c.name,
                c.max,
                if c.passed { "pass" } else { "FAIL" }
            ),
            None => format!("{} ≤ {}: absent, not checked", c.name, c.max),
        };
        add("ceiling", line);
    }
    if let Some(f) = &t.formula {
        add(
            "formula",
            format!("{f} ({})", t.formula_file.as_deref().unwrap_or("-")),
        );
    }
    if let Some(text) = &t.formula_text {
        // The formula's code, without its comment lines: what the arithmetic is.
        for line in text.lines() {
            let code = line.trim();
            if !code.is_empty() && !code.starts_with("//") {
                add("", format!("| {code}"));
            }
        }
    }
    if !t.observed.locals.is_empty() {
        add(
            "variables",
            t.observed
                .locals
                .iter()
                .map(|(n, v)| format!("{n} = {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let (Some(b), Some(m)) = (t.base, t.multiplier) {
        add("points", format!("{b} × {m} = {}", t.points));
    }
    for p in &t.observed.printed {
        add("printed", p.clone());
    }
    out
}

/// Writes one result as a JSON object and a newline, byte for byte what serde writes for
/// [`ScoreRef`] (field order and escaping included; tested), without serde's per-field
/// machinery on the hot path.
pub fn write_jsonl(out: &mut Vec<u8>, s: &ScoreRef<'_>) {
    if s.trace.is_some() {
        // `--explain`: rare, and the trace is a nested document.
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
        out.push(b'\n');
        return;
    }
    // Most values need no escaping; serde_json escapes exactly `"`, `\\` and control
    // characters, so anything else is copied as is, and the rest goes through serde_json.
    // Strings the scorer vouches for (`ScoreRef::verbatim`) are copied without the check.
    #[inline(always)]
    fn string(out: &mut Vec<u8>, v: &str, verbatim: bool) {
        if verbatim || !needs_escape(v.as_bytes()) {
            out.push(b'"');
            out.extend_from_slice(v.as_bytes());
            out.push(b'"');
        } else {
            serde_json::to_writer(&mut *out, v).expect("writing to a Vec cannot fail");
        }
    }
    #[inline(always)]
    fn opt(out: &mut Vec<u8>, key: &str, v: Option<&str>, verbatim: bool) {
        out.extend_from_slice(key.as_bytes());
        match v {
            Some(v) => string(out, v, verbatim),
            None => out.extend_from_slice(b"null"),
        }
    }
    #[inline(always)]
    fn skip(out: &mut Vec<u8>, key: &str, v: Option<&str>, verbatim: bool) {
        if let Some(v) = v {
            out.extend_from_slice(key.as_bytes());
            string(out, v, verbatim);
        }
    }
    let input = s.verbatim;
    out.push(b'{');
    if let Some(f) = s.file {
        out.extend_from_slice(b"\"file\":");
        string(out, f, false);
        out.push(b',');
    }
    out.extend_from_slice(b"\"line\":");
    out.extend_from_slice(itoa::Buffer::new().format(s.line).as_bytes());
    opt(out, ",\"id\":", s.id, input);
    opt(out, ",\"model\":", s.model, input);
    skip(out, ",\"miner\":", s.miner, input);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(s.status.as_str().as_bytes());
    out.push(b'"');
    opt(out, ",\"kind\":", s.kind, false);
    opt(out, ",\"family\":", s.family, false);
    opt(out, ",\"rule\":", s.rule, false);
    out.extend_from_slice(b",\"points\":");
    write_points(out, s.points);
    out.extend_from_slice(b",\"ruleset\":");
    string(out, s.ruleset, input);
    out.extend_from_slice(b",\"engine\":");
    string(out, s.engine, input);
    out.extend_from_slice(SCHEMA_FIELD.as_bytes());
    skip(out, ",\"reason\":", s.reason, false);
    skip(out, ",\"error\":", s.error, false);
    skip(out, ",\"field\":", s.field, false);
    skip(out, ",\"completed_at\":", s.completed_at, input);
    skip(out, ",\"priced_at\":", s.priced_at, false);
    match s.priced_by {
        None => {}
        Some(PricedBy::At) => out.extend_from_slice(b",\"priced_by\":\"at\""),
        Some(PricedBy::Received) => out.extend_from_slice(b",\"priced_by\":\"received\""),
    }
    skip(out, ",\"disputed_claim\":", s.disputed_claim, false);
    out.extend_from_slice(b"}\n");
}

/// `,"schema_version":N`, as serde writes it after `engine`.
const SCHEMA_FIELD: &str = const_format_schema();

const fn const_format_schema() -> &'static str {
    // One digit until the contract changes nine times; a test keeps this equal to serde's.
    match crate::engine::identity::SCHEMA_VERSION {
        1 => ",\"schema_version\":1",
        _ => panic!("write SCHEMA_FIELD for the new schema version"),
    }
}

/// Whether serde_json would escape anything in `s` (a control character, `"` or `\\`).
fn needs_escape(s: &[u8]) -> bool {
    crate::engine::job::borrowed::string_stop(s, 0) < s.len()
}

/// `points` as `Points`' Display writes it, without going through `fmt`.
fn write_points(out: &mut Vec<u8>, p: crate::engine::points::Points) {
    let micros = p.micros();
    let scale = crate::engine::points::SCALE;
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(micros / scale).as_bytes());
    out.push(b'.');
    let frac = micros % scale;
    let digits = buf.format(frac).as_bytes();
    out.extend(std::iter::repeat_n(b'0', 6 - digits.len()));
    out.extend_from_slice(digits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::points::Points;
    use crate::engine::score::Status;

    fn score(i: u64) -> Score {
        Score {
            file: i.is_multiple_of(2).then(|| "a \"b\".jsonl".to_string()),
            line: i,
            id: (!i.is_multiple_of(3)).then(|| format!("j{i}\u{1}\n")),
            model: Some("mistralai/mixtral-8x7b-instruct".into()),
            miner: i.is_multiple_of(4).then(|| "0xabc".into()),
            status: Status::ALL[i as usize % Status::ALL.len()],
            kind: (!i.is_multiple_of(5)).then(|| "llama".into()),
            family: Some("llm8x7b4b".into()),
            rule: (!i.is_multiple_of(7)).then(|| "llm8x7b4b@1".into()),
            points: Points::from_micros((i * 1_234_567) as i64),
            ruleset: "ab".repeat(32).into(),
            engine: if i % 6 == 5 {
                "jobpoints 0.0.9 \"old\"".into()
            } else {
                crate::engine::identity::ENGINE.into()
            },
            reason: (i % 2 == 1).then(|| "below threshold: steps 19 < min 20".into()),
            error: (i % 3 == 1).then(|| "`width` must be an integer, got \"512\"".into()),
            field: (i % 3 == 1).then(|| "width".into()),
            completed_at: (i % 5 == 2).then(|| "2024-05-01T00:00:00Z".into()),
            priced_at: (i % 4 == 1).then(|| "2024-06-01T00:00:00Z".into()),
            priced_by: [None, Some(PricedBy::At), Some(PricedBy::Received)][i as usize % 3],
            disputed_claim: (i % 7 == 3)
                .then(|| "input_tokens: the job claims 900000 (`input_tokens`), \"x\"".into()),
            trace: None,
        }
    }

    #[test]
    fn hand_written_jsonl_equals_serde() {
        for i in 0..200 {
            let s = score(i);
            let mut fast = Vec::new();
            write_jsonl(&mut fast, &s.as_ref());
            let mut slow = serde_json::to_vec(&s).unwrap();
            slow.push(b'\n');
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap()
            );
        }
    }
}
