//! Writing scores: JSONL, a JSON array, CSV, or an aligned table with totals for people.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::points::PointsSum;
use crate::score::{Score, Status};

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
}

/// Counts and exact point totals, per point kind.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    pub jobs: u64,
    pub ok: u64,
    pub below_threshold: u64,
    pub no_rule: u64,
    pub invalid: u64,
    pub error: u64,
    pub points: PointsSum,
}

impl Totals {
    pub fn add(&mut self, s: &Score) {
        self.jobs += 1;
        match s.status {
            Status::Ok => self.ok += 1,
            Status::BelowThreshold => self.below_threshold += 1,
            Status::NoRule => self.no_rule += 1,
            Status::Invalid => self.invalid += 1,
            Status::Error => self.error += 1,
        }
        self.points += s.points;
    }
}

/// Writes scores as they come (JSONL, CSV) or collects them (JSON array, table).
pub struct ScoreWriter<W: Write> {
    sink: Sink<W>,
    format: EvalFormat,
    explain: bool,
    buffered: Vec<Score>,
    wrote_any: bool,
}

enum Sink<W: Write> {
    Plain(W),
    Csv(Box<csv::Writer<W>>),
}

const CSV_HEADER: [&str; 11] = [
    "line", "id", "model", "miner", "status", "kind", "family", "rule", "points", "reason",
    "ruleset",
];

impl<W: Write> ScoreWriter<W> {
    pub fn new(out: W, format: EvalFormat, explain: bool) -> Self {
        let sink = if format == EvalFormat::Csv {
            Sink::Csv(Box::new(csv::Writer::from_writer(out)))
        } else {
            Sink::Plain(out)
        };
        ScoreWriter {
            sink,
            format,
            explain,
            buffered: Vec::new(),
            wrote_any: false,
        }
    }

    pub fn write(&mut self, score: Score) -> io::Result<()> {
        match (&mut self.sink, self.format) {
            (Sink::Plain(out), EvalFormat::Jsonl) => {
                if score.trace.is_some() {
                    serde_json::to_writer(&mut *out, &score)?;
                    out.write_all(b"\n")
                } else {
                    let mut line = Vec::with_capacity(256);
                    write_jsonl(&mut line, &score.as_ref());
                    out.write_all(&line)
                }
            }
            (Sink::Plain(out), EvalFormat::Json) => {
                out.write_all(if self.wrote_any { b",\n  " } else { b"[\n  " })?;
                self.wrote_any = true;
                serde_json::to_writer(&mut *out, &score)?;
                Ok(())
            }
            (Sink::Csv(w), _) => {
                if !self.wrote_any {
                    w.write_record(CSV_HEADER)?;
                    self.wrote_any = true;
                }
                let reason = score
                    .reason
                    .as_deref()
                    .or(score.error.as_deref())
                    .unwrap_or("");
                w.write_record([
                    score.line.to_string().as_str(),
                    score.id.as_deref().unwrap_or(""),
                    score.model.as_deref().unwrap_or(""),
                    score.miner.as_deref().unwrap_or(""),
                    score.status.as_str(),
                    score.kind.as_deref().unwrap_or(""),
                    score.family.as_deref().unwrap_or(""),
                    score.rule.as_deref().unwrap_or(""),
                    score.points.to_string().as_str(),
                    reason,
                    &score.ruleset,
                ])?;
                Ok(())
            }
            (Sink::Plain(_), _) => {
                self.buffered.push(score);
                Ok(())
            }
        }
    }

    pub fn finish(self) -> io::Result<()> {
        match self.sink {
            Sink::Csv(mut w) => {
                if !self.wrote_any {
                    w.write_record(CSV_HEADER)?;
                }
                w.flush()
            }
            Sink::Plain(mut out) => {
                match self.format {
                    EvalFormat::Json => {
                        out.write_all(if self.wrote_any { b"\n]\n" } else { b"[]\n" })?;
                    }
                    EvalFormat::Table => {
                        out.write_all(render_table(&self.buffered, self.explain).as_bytes())?;
                    }
                    _ => {}
                }
                out.flush()
            }
        }
    }
}

/// An aligned table of scores, then totals per point kind.
pub fn render_table(scores: &[Score], explain: bool) -> String {
    let header = [
        "line", "id", "model", "status", "kind", "rule", "points", "note",
    ];
    let rows: Vec<[String; 8]> = scores
        .iter()
        .map(|s| {
            [
                s.line.to_string(),
                s.id.clone().unwrap_or_default(),
                s.model.clone().unwrap_or_default(),
                s.status.to_string(),
                s.kind.clone().unwrap_or_else(|| "-".into()),
                s.rule.clone().unwrap_or_else(|| "-".into()),
                s.points.to_string(),
                s.reason
                    .clone()
                    .or_else(|| s.error.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(7) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
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
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&header.map(String::from), &mut out);
    for (r, s) in rows.iter().zip(scores) {
        line(r, &mut out);
        if explain {
            if let Some(t) = &s.trace {
                out.push_str(&render_trace(t));
            }
        }
    }
    out.push('\n');
    out.push_str(&render_totals(scores));
    if let Some(first) = scores.first() {
        out.push_str(&format!("ruleset {}\n", first.ruleset));
    }
    out
}

/// Totals per point kind (jobs with no kind are counted under `-`).
pub fn totals_by_kind(scores: &[Score]) -> BTreeMap<String, Totals> {
    let mut by: BTreeMap<String, Totals> = BTreeMap::new();
    for s in scores {
        by.entry(s.kind.clone().unwrap_or_else(|| "-".into()))
            .or_default()
            .add(s);
    }
    by
}

fn render_totals(scores: &[Score]) -> String {
    let by = totals_by_kind(scores);
    let mut all = Totals::default();
    for s in scores {
        all.add(s);
    }
    let mut rows: Vec<[String; 8]> = vec![[
        "kind".into(),
        "jobs".into(),
        "ok".into(),
        "below".into(),
        "no_rule".into(),
        "invalid".into(),
        "error".into(),
        "points".into(),
    ]];
    let mut push = |name: &str, t: &Totals| {
        rows.push([
            name.to_string(),
            t.jobs.to_string(),
            t.ok.to_string(),
            t.below_threshold.to_string(),
            t.no_rule.to_string(),
            t.invalid.to_string(),
            t.error.to_string(),
            t.points.to_string(),
        ]);
    };
    for (k, t) in &by {
        push(k, t);
    }
    push("total", &all);
    let mut widths = [0usize; 8];
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

fn render_trace(t: &crate::score::Trace) -> String {
    let mut out = String::new();
    let mut add = |k: &str, v: String| out.push_str(&format!("    {k:<12} {v}\n"));
    let rule = match (&t.rule, t.version) {
        (Some(r), Some(v)) => format!("{r} version {v}"),
        _ => "-".into(),
    };
    add(
        "resolve",
        format!(
            "{} → family {} → {}",
            t.model,
            t.family.as_deref().unwrap_or("-"),
            rule
        ),
    );
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
    for a in &t.assumptions {
        add("assumption", a.clone());
    }
    if !t.inputs.is_empty() {
        add(
            "inputs",
            t.inputs
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
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
        add(
            "threshold",
            format!(
                "{} = {} ≥ {} {}",
                th.name,
                th.value,
                th.min,
                if th.passed { "pass" } else { "FAIL" }
            ),
        );
    }
    if let Some(f) = &t.formula {
        add(
            "formula",
            format!("{f} ({})", t.formula_file.as_deref().unwrap_or("-")),
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

/// A borrowed view of a [`Score`] without its trace: what the fast ledger path produces
/// without allocating, and what both paths write through [`write_jsonl`].
#[derive(Debug, Clone, Copy)]
pub struct ScoreRef<'a> {
    pub file: Option<&'a str>,
    pub line: u64,
    pub id: Option<&'a str>,
    pub model: Option<&'a str>,
    pub miner: Option<&'a str>,
    pub status: Status,
    pub kind: Option<&'a str>,
    pub family: Option<&'a str>,
    pub rule: Option<&'a str>,
    pub points: crate::points::Points,
    pub ruleset: &'a str,
    pub reason: Option<&'a str>,
    pub error: Option<&'a str>,
    pub field: Option<&'a str>,
    pub completed_at: Option<&'a str>,
}

impl Score {
    /// Borrows this score (its trace is not part of the view).
    pub fn as_ref(&self) -> ScoreRef<'_> {
        ScoreRef {
            file: self.file.as_deref(),
            line: self.line,
            id: self.id.as_deref(),
            model: self.model.as_deref(),
            miner: self.miner.as_deref(),
            status: self.status,
            kind: self.kind.as_deref(),
            family: self.family.as_deref(),
            rule: self.rule.as_deref(),
            points: self.points,
            ruleset: &self.ruleset,
            reason: self.reason.as_deref(),
            error: self.error.as_deref(),
            field: self.field.as_deref(),
            completed_at: self.completed_at.as_deref(),
        }
    }
}

/// Writes one result as a JSON object and a newline, byte for byte what serde writes for
/// [`Score`] (field order and escaping included; tested), without serde's per-field
/// machinery on the hot path.
pub fn write_jsonl(out: &mut Vec<u8>, s: &ScoreRef<'_>) {
    fn string(out: &mut Vec<u8>, v: &str) {
        // Most values need no escaping; serde_json escapes exactly `"`, `\\` and control
        // characters, so anything else is copied as is, and the rest goes through serde_json.
        if !needs_escape(v.as_bytes()) {
            out.reserve(v.len() + 2);
            out.push(b'"');
            out.extend_from_slice(v.as_bytes());
            out.push(b'"');
        } else {
            serde_json::to_writer(&mut *out, v).expect("writing to a Vec cannot fail");
        }
    }
    fn opt(out: &mut Vec<u8>, key: &str, v: Option<&str>) {
        out.extend_from_slice(key.as_bytes());
        match v {
            Some(v) => string(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }
    fn skip(out: &mut Vec<u8>, key: &str, v: Option<&str>) {
        if let Some(v) = v {
            out.extend_from_slice(key.as_bytes());
            string(out, v);
        }
    }
    out.push(b'{');
    if let Some(f) = s.file {
        out.extend_from_slice(b"\"file\":");
        string(out, f);
        out.push(b',');
    }
    out.extend_from_slice(b"\"line\":");
    out.extend_from_slice(itoa::Buffer::new().format(s.line).as_bytes());
    opt(out, ",\"id\":", s.id);
    opt(out, ",\"model\":", s.model);
    skip(out, ",\"miner\":", s.miner);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(s.status.as_str().as_bytes());
    out.push(b'"');
    opt(out, ",\"kind\":", s.kind);
    opt(out, ",\"family\":", s.family);
    opt(out, ",\"rule\":", s.rule);
    out.extend_from_slice(b",\"points\":");
    write_points(out, s.points);
    out.extend_from_slice(b",\"ruleset\":");
    string(out, s.ruleset);
    skip(out, ",\"reason\":", s.reason);
    skip(out, ",\"error\":", s.error);
    skip(out, ",\"field\":", s.field);
    skip(out, ",\"completed_at\":", s.completed_at);
    out.extend_from_slice(b"}\n");
}

/// Whether serde_json would escape anything in `s` (a control character, `"` or `\\`),
/// checked eight bytes at a time.
fn needs_escape(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Exact "some byte is below n" / "some byte is zero" tests for n <= 128; bytes >= 0x80
    // (UTF-8 continuation and lead bytes) never match.
    let below = |x: u64, n: u8| x.wrapping_sub(LO * u64::from(n)) & !x & HI != 0;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI != 0;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        if below(x, 0x20) || zero(x ^ (LO * u64::from(b'"'))) || zero(x ^ (LO * u64::from(b'\\'))) {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// `points` as `Points`' Display writes it, without going through `fmt`.
fn write_points(out: &mut Vec<u8>, p: crate::points::Points) {
    let micros = p.micros();
    let scale = crate::points::SCALE;
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
    use crate::points::Points;

    fn score(i: u64) -> Score {
        Score {
            file: (i % 2 == 0).then(|| "a \"b\".jsonl".to_string()),
            line: i,
            id: (i % 3 != 0).then(|| format!("j{i}\u{1}\n")),
            model: Some("mistralai/mixtral-8x7b-instruct".into()),
            miner: (i % 4 == 0).then(|| "0xabc".into()),
            status: Status::ALL[i as usize % 5],
            kind: (i % 5 != 0).then(|| "llama".into()),
            family: Some("llm8x7b4b".into()),
            rule: (i % 7 != 0).then(|| "llm8x7b4b@1".into()),
            points: Points::from_micros((i * 1_234_567) as i64),
            ruleset: "ab".repeat(32).into(),
            reason: (i % 2 == 1).then(|| "below threshold: steps 19 < min 20".into()),
            error: (i % 3 == 1).then(|| "`width` must be an integer, got \"512\"".into()),
            field: (i % 3 == 1).then(|| "width".into()),
            completed_at: (i % 5 == 2).then(|| "2024-05-01T00:00:00Z".into()),
            trace: None,
        }
    }

    #[test]
    fn escape_detection_is_exact() {
        let mut state = 0x1234_5678_9abc_def1u64;
        for len in 0..40 {
            for _ in 0..300 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly printable, sometimes a byte that needs escaping, sometimes high.
                        match state % 23 {
                            0 => (state >> 8) as u8 % 0x20,
                            1 => b'"',
                            2 => b'\\',
                            3 => 0x80 | (state >> 8) as u8,
                            _ => 0x20 + (state >> 8) as u8 % 0x5f,
                        }
                    })
                    .collect();
                let want = bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
                assert_eq!(needs_escape(&bytes), want, "{bytes:?}");
            }
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
