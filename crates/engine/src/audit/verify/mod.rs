//! `verify`: re-score each result with the rule set its hash names and compare.
//!
//! A reader thread cuts the results into lines and pairs each plain result with its job
//! (from the job files, by file, line and id; a decision-log record carries its job);
//! workers parse the results, find their rule sets ([`RulesLibrary`]), score the jobs again
//! and compare status, kind, rule and points; the outcomes are consumed in input order. When
//! results and jobs are in the same order, both are read once, in constant memory; a result
//! for a job behind the job file's cursor re-reads that file from its start.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::history::{Lookup, RulesLibrary, Source};
use crate::engine::identity::ENGINE;
use crate::engine::job::strict::JobRecord;
use crate::engine::points::Points;
use crate::engine::score::{ScoreOptions, ScoreRef, Scorer};
use crate::engine::time::parse_time;
use crate::ledger::formats::{InputFormat, open_ledger};
use crate::ledger::ordered::{Feed, ordered};
use crate::ledger::reader::{Ledger, RawItem};

mod check;
use check::*;

/// Results (or jobs) per batch handed to a worker.
const BATCH_ITEMS: usize = 2048;
/// Bytes of results and jobs per batch.
const BATCH_BYTES: usize = 1 << 20;
/// Longest results line read; longer ones are reported as malformed, not kept.
const MAX_RESULT_LINE: u64 = 32 << 20;
/// Locations kept per unknown rule set (all of them are counted).
pub const UNKNOWN_LOCATIONS: usize = 20;

/// Where a result is: its results file and line, and for a decision its id.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Location {
    pub file: String,
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(d) = &self.decision_id {
            write!(f, " (decision {d})")?;
        }
        Ok(())
    }
}

/// One field that differs: what the result says, and what scoring again gives.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Difference {
    pub field: &'static str,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

/// A result that did not verify.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mismatch {
    #[serde(flatten)]
    pub at: Location,
    /// The job it was compared with (`FILE:LINE`), for a result paired with a job file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ruleset: Option<String>,
    /// The fields that differ (empty when the result could not be compared at all).
    pub differences: Vec<Difference>,
    /// Why it could not be compared (a malformed result, a missing job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.at)?;
        if let Some(j) = &self.job {
            write!(f, " [job {j}]")?;
        }
        if let Some(p) = &self.problem {
            write!(f, ": {p}")?;
        }
        for d in &self.differences {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".into());
            write!(
                f,
                // A result is a claim (perhaps forged), not what was expected: say whose
                // word each value is.
                "\n    {}: the result claims {}; the rules give {}",
                d.field,
                show(&d.expected),
                show(&d.actual)
            )?;
        }
        Ok(())
    }
}

/// Results per rule set.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RulesetCount {
    pub ruleset: String,
    pub results: u64,
    pub verified: u64,
    #[serde(flatten)]
    pub source: Option<Source>,
}

/// A rule set that was not found, with the results that name it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnknownRuleset {
    pub ruleset: String,
    pub results: u64,
    pub reason: String,
    /// The first [`UNKNOWN_LOCATIONS`] results that name it.
    pub locations: Vec<Location>,
}

/// What `verify` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub results: u64,
    pub verified: u64,
    pub mismatched: u64,
    /// Jobs of the job files that no result was paired with (counted in `mismatched`).
    pub jobs_without_result: u64,
    pub unknown: u64,
    /// Per rule set found, in order of first appearance.
    pub rulesets: Vec<RulesetCount>,
    pub unknown_rulesets: Vec<UnknownRuleset>,
    /// Results by the engine that made them, when it is not this one (they were re-scored
    /// with this engine all the same).
    pub other_engines: BTreeMap<String, u64>,
    pub mismatches: Vec<Mismatch>,
}

/// How verify runs.
pub struct VerifyOptions {
    pub threads: usize,
    /// The pricing time of results that do not name theirs (made by `eval --at` before
    /// results said `priced_at`).
    pub at: Option<Timestamp>,
    /// Keep every mismatch in the report (else only count them and hand them to the caller).
    pub keep_mismatches: bool,
    /// How the job files are read (JSON, CSV or Parquet; by extension for `Auto`).
    pub input_format: InputFormat,
}

/// A results file to verify, and the job files its results refer to.
pub struct ResultsFile {
    pub path: PathBuf,
    pub input: Box<dyn BufRead + Send>,
}

/// Why verify stopped before the end.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("reading `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Write(io::Error),
}

/// The job a result is compared with.
enum JobSlot {
    /// Embedded in the result (a decision-log record).
    Embedded,
    /// A JSONL line of a job file: its bytes in the batch.
    Bytes {
        file: u32,
        line: u64,
        start: usize,
        end: usize,
    },
    /// A record of a JSON array or document.
    Record { file: u32, record: JobRecord },
    /// Not found: why.
    Missing { file: Option<u32>, why: String },
}

struct Item {
    results_file: u32,
    results_line: u64,
    start: usize,
    end: usize,
    job: JobSlot,
}

struct Batch {
    bytes: Vec<u8>,
    items: Vec<Item>,
}

/// The outcome of one batch, merged in order.
#[derive(Default)]
struct Partial {
    results: u64,
    verified: u64,
    per_ruleset: Vec<(Arc<str>, Option<Source>, u64, u64)>,
    unknown: Vec<(Arc<str>, Arc<str>, Location)>,
    engines: HashMap<String, u64>,
    mismatches: Vec<Mismatch>,
}

impl Partial {
    fn count_ruleset(&mut self, hash: &Arc<str>, source: Option<&Source>, verified: bool) {
        let n = u64::from(verified);
        match self.per_ruleset.iter_mut().find(|r| r.0 == *hash) {
            Some(r) => {
                r.2 += 1;
                r.3 += n;
            }
            None => self.per_ruleset.push((hash.clone(), source.cloned(), 1, n)),
        }
    }
}

/// A result line as read: a plain result, or a decision-log record around one. (The
/// result's own fields are repeated rather than flattened: serde cannot borrow through
/// `flatten`.)
#[derive(Deserialize)]
struct LineIn<'a> {
    #[serde(borrow, default)]
    decision_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input_text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    result: Option<ResultIn<'a>>,
    /// When the server received the job (a decision record).
    #[serde(borrow, default)]
    received_at: Option<Cow<'a, str>>,
    #[serde(default)]
    line: Option<u64>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    rule: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    points: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ruleset: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    engine: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    priced_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    priced_by: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    disputed_claim: Option<Cow<'a, str>>,
}

impl<'a> LineIn<'a> {
    /// The line's own result fields (a plain result).
    fn plain(self) -> ResultIn<'a> {
        ResultIn {
            line: self.line,
            id: self.id,
            status: self.status,
            kind: self.kind,
            rule: self.rule,
            points: self.points,
            ruleset: self.ruleset,
            engine: self.engine,
            priced_at: self.priced_at,
            priced_by: self.priced_by,
            disputed_claim: self.disputed_claim,
        }
    }
}

#[derive(Deserialize, Default)]
struct ResultIn<'a> {
    #[serde(default)]
    line: Option<u64>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    rule: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    points: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ruleset: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    engine: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    priced_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    priced_by: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    disputed_claim: Option<Cow<'a, str>>,
}

/// Where a result line says its job is: (file, line), or `None` for a decision record.
#[derive(Deserialize)]
struct Locate<'a> {
    #[serde(borrow)]
    decision_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    file: Option<Cow<'a, str>>,
    line: Option<u64>,
}

/// The text of a results line: surrounding blanks, and the brackets and commas of a JSON
/// array as `eval --format json` writes it (one element per line), removed.
fn result_text(line: &[u8]) -> &[u8] {
    let mut t = line.trim_ascii();
    if let Some(rest) = t.strip_prefix(b"[") {
        t = rest.trim_ascii_start();
    }
    if let Some(rest) = t.strip_suffix(b"]") {
        t = rest.trim_ascii_end();
    }
    if let Some(rest) = t.strip_suffix(b",") {
        t = rest.trim_ascii_end();
    }
    t
}

/// Reads job files by line, forward; a line behind the cursor starts the file again.
struct JobsCursor {
    path: PathBuf,
    format: InputFormat,
    reader: Option<Ledger>,
    buf: Vec<u8>,
    /// The last item read: its line, and its record when it was not a JSONL line (`buf`).
    peek: Option<(u64, Option<JobRecord>)>,
    /// The line of the last item read (0: none yet).
    pos: u64,
    eof: bool,
    /// Every job of the file by line, once a result asked for a job behind the cursor:
    /// results out of order cost one more read of the file and its size in memory, not a
    /// read per result (#22: 20k reversed results took 12 s).
    index: Option<JobIndex>,
}

/// A job file held in memory: each job's line and its bytes (a JSONL line) or record.
#[derive(Default)]
struct JobIndex {
    bytes: Vec<u8>,
    jobs: HashMap<u64, Stored>,
}

enum Stored {
    Bytes(usize, usize),
    Record(JobRecord),
}

impl JobsCursor {
    fn new(path: PathBuf, format: InputFormat) -> Self {
        JobsCursor {
            path,
            format,
            reader: None,
            buf: Vec::new(),
            peek: None,
            pos: 0,
            eof: false,
            index: None,
        }
    }

    fn restart(&mut self) -> io::Result<()> {
        self.reader = Some(open_ledger(&self.path, self.format)?);
        self.peek = None;
        self.pos = 0;
        self.eof = false;
        Ok(())
    }

    /// Reads the next item into `peek`; false at the end.
    fn advance(&mut self) -> io::Result<bool> {
        if self.reader.is_none() {
            self.restart()?;
        }
        let reader = self.reader.as_mut().expect("opened");
        self.buf.clear();
        match reader.next_raw(&mut self.buf) {
            Some(RawItem::Line(n)) => {
                self.peek = Some((n, None));
                self.pos = n;
                Ok(true)
            }
            Some(RawItem::Record(r)) => {
                let n = match &r {
                    Ok(j) => j.line,
                    Err(e) => e.line,
                };
                self.peek = Some((n, Some(r)));
                self.pos = n;
                Ok(true)
            }
            None => {
                self.peek = None;
                self.eof = true;
                match reader.take_io_error() {
                    Some(e) => Err(e),
                    None => Ok(false),
                }
            }
        }
    }

    /// The job that starts at `line`, copied into `out` (a JSONL line) or cloned (a record).
    fn fetch(&mut self, file: u32, line: u64, out: &mut Vec<u8>) -> io::Result<JobSlot> {
        if self.index.is_none()
            && let Some(found) = self.take_peek(file, line, out)
        {
            return Ok(found);
        }
        if self.index.is_none() && self.reader.is_some() && line <= self.pos {
            // Behind the cursor: hold the whole file from now on.
            self.index = Some(self.read_all()?);
        }
        if let Some(index) = &self.index {
            return Ok(match index.jobs.get(&line) {
                Some(Stored::Bytes(a, b)) => {
                    let start = out.len();
                    out.extend_from_slice(&index.bytes[*a..*b]);
                    JobSlot::Bytes {
                        file,
                        line,
                        start,
                        end: out.len(),
                    }
                }
                Some(Stored::Record(r)) => JobSlot::Record {
                    file,
                    record: r.clone(),
                },
                None => missing(file, line),
            });
        }
        if self.eof {
            return Ok(missing(file, line));
        }
        loop {
            if !self.advance()? || self.pos > line {
                return Ok(missing(file, line));
            }
            if let Some(found) = self.take_peek(file, line, out) {
                return Ok(found);
            }
        }
    }

    /// Every job of the file, read from its start.
    fn read_all(&mut self) -> io::Result<JobIndex> {
        self.restart()?;
        let mut index = JobIndex::default();
        while self.advance()? {
            let Some((line, record)) = self.peek.take() else {
                break;
            };
            let stored = match record {
                Some(r) => Stored::Record(r),
                None => {
                    let start = index.bytes.len();
                    index.bytes.extend_from_slice(&self.buf);
                    Stored::Bytes(start, index.bytes.len())
                }
            };
            index.jobs.insert(line, stored);
        }
        Ok(index)
    }

    /// The line of every job of the file, in order (one more read of it).
    fn job_lines(&self, mut each: impl FnMut(u64)) -> io::Result<()> {
        let mut reader = open_ledger(&self.path, self.format)?;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.next_raw(&mut buf) {
                Some(RawItem::Line(n)) => each(n),
                Some(RawItem::Record(Ok(j))) => each(j.line),
                Some(RawItem::Record(Err(e))) => each(e.line),
                None => break,
            }
        }
        match reader.take_io_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The last item read, if it starts at `line`; it stays there for the next result.
    fn take_peek(&self, file: u32, line: u64, out: &mut Vec<u8>) -> Option<JobSlot> {
        let (l, record) = self.peek.as_ref()?;
        if *l != line {
            return None;
        }
        Some(match record {
            Some(r) => JobSlot::Record {
                file,
                record: r.clone(),
            },
            None => {
                let start = out.len();
                out.extend_from_slice(&self.buf);
                JobSlot::Bytes {
                    file,
                    line,
                    start,
                    end: out.len(),
                }
            }
        })
    }
}

fn missing(file: u32, line: u64) -> JobSlot {
    JobSlot::Missing {
        file: Some(file),
        why: format!("no job starts at line {line} of the job file"),
    }
}

/// Pairs results with job files: by the file a result names, else the only job file, else
/// the job file in the same position as the results file.
struct Pairing {
    jobs: Vec<JobsCursor>,
    results_files: usize,
    /// Per job file, the jobs a result was paired with: job line → (results file, line). A
    /// job has exactly one result (#22: a duplicated or deleted result line verified).
    claimed: Vec<HashMap<u64, (u32, u64)>>,
    results_names: Vec<String>,
}

impl Pairing {
    fn job_file(&self, named: Option<&str>, results_file: u32) -> Result<u32, String> {
        if let Some(name) = named {
            let exact = self.jobs.iter().position(|j| j.path.as_os_str() == name);
            let by_name = || {
                let want = Path::new(name).file_name();
                let mut found = self
                    .jobs
                    .iter()
                    .enumerate()
                    .filter(|(_, j)| j.path.file_name() == want);
                match (found.next(), found.next()) {
                    (Some((i, _)), None) => Some(i),
                    _ => None,
                }
            };
            return exact
                .or_else(by_name)
                .map(|i| i as u32)
                .ok_or_else(|| format!("no --jobs file is `{name}`, which the result names"));
        }
        match self.jobs.len() {
            0 => Err("a result without its job: give the job files with --jobs".into()),
            1 => Ok(0),
            n if n == self.results_files => Ok(results_file),
            _ => Err(
                "the result does not name its job file, and there are several --jobs files: give one --jobs file per results file, in the same order".into(),
            ),
        }
    }
}

/// Verifies every result of `results` against `jobs` and the rule sets of `library`.
/// `on_mismatch` is called for each mismatch in input order, as they are found.
pub fn verify(
    results: Vec<ResultsFile>,
    jobs: Vec<PathBuf>,
    library: &RulesLibrary,
    opts: &VerifyOptions,
    mut on_mismatch: impl FnMut(&Mismatch) -> io::Result<()>,
) -> Result<VerifyReport, VerifyError> {
    let names: Vec<String> = results
        .iter()
        .map(|r| r.path.display().to_string())
        .collect();
    let job_names: Vec<String> = jobs.iter().map(|p| p.display().to_string()).collect();
    let pairing = Pairing {
        results_files: results.len(),
        claimed: vec![HashMap::new(); jobs.len()],
        jobs: jobs
            .into_iter()
            .map(|p| JobsCursor::new(p, opts.input_format))
            .collect(),
        results_names: names.clone(),
    };
    let mut report = VerifyReport::default();
    let mut unknown_index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut ruleset_index: HashMap<Arc<str>, usize> = HashMap::new();
    let (merged, read) = ordered(
        opts.threads,
        move |feed| read_batches(results, pairing, feed),
        || (),
        |_, batch: Batch| check_batch(&batch, library, opts, &names, &job_names),
        |part| {
            merge(
                &mut report,
                part,
                &mut ruleset_index,
                &mut unknown_index,
                opts.keep_mismatches,
                &mut on_mismatch,
            )
        },
    );
    merged.map_err(VerifyError::Write)?;
    let unpaired = read?;
    // Jobs no result was paired with, after every result.
    for (file, line) in unpaired {
        let m = Mismatch {
            at: Location {
                file: job_names[file as usize].clone(),
                line,
                decision_id: None,
            },
            job: Some(format!("{}:{line}", job_names[file as usize])),
            ruleset: None,
            differences: Vec::new(),
            problem: Some("a job without a result".into()),
        };
        report.mismatched += 1;
        report.jobs_without_result += 1;
        on_mismatch(&m).map_err(VerifyError::Write)?;
        if opts.keep_mismatches {
            report.mismatches.push(m);
        }
    }
    Ok(report)
}

fn merge(
    report: &mut VerifyReport,
    part: Partial,
    rulesets: &mut HashMap<Arc<str>, usize>,
    unknown: &mut HashMap<Arc<str>, usize>,
    keep: bool,
    on_mismatch: &mut impl FnMut(&Mismatch) -> io::Result<()>,
) -> io::Result<()> {
    report.results += part.results;
    report.verified += part.verified;
    for (hash, source, results, verified) in part.per_ruleset {
        let i = *rulesets.entry(hash.clone()).or_insert_with(|| {
            report.rulesets.push(RulesetCount {
                ruleset: hash.to_string(),
                source,
                ..RulesetCount::default()
            });
            report.rulesets.len() - 1
        });
        report.rulesets[i].results += results;
        report.rulesets[i].verified += verified;
    }
    for (hash, reason, at) in part.unknown {
        report.unknown += 1;
        let i = *unknown.entry(hash.clone()).or_insert_with(|| {
            report.unknown_rulesets.push(UnknownRuleset {
                ruleset: hash.to_string(),
                results: 0,
                reason: reason.to_string(),
                locations: Vec::new(),
            });
            report.unknown_rulesets.len() - 1
        });
        let u = &mut report.unknown_rulesets[i];
        u.results += 1;
        if u.locations.len() < UNKNOWN_LOCATIONS {
            u.locations.push(at);
        }
    }
    for (engine, n) in part.engines {
        *report.other_engines.entry(engine).or_default() += n;
    }
    for m in part.mismatches {
        report.mismatched += 1;
        on_mismatch(&m)?;
        if keep {
            report.mismatches.push(m);
        }
    }
    Ok(())
}

/// The reader thread: cuts results into lines and pairs each with its job.
fn read_batches(
    results: Vec<ResultsFile>,
    mut pairing: Pairing,
    mut feed: Feed<Batch>,
) -> Result<Vec<(u32, u64)>, VerifyError> {
    let mut batch = Batch {
        bytes: Vec::with_capacity(BATCH_BYTES + (1 << 16)),
        items: Vec::new(),
    };
    let mut line_buf = Vec::new();
    for (fi, rf) in results.into_iter().enumerate() {
        let fi = fi as u32;
        let ResultsFile { path, input } = rf;
        let mut input = input;
        let mut line_no = 0u64;
        loop {
            line_buf.clear();
            let n = std::io::Read::take(&mut input, MAX_RESULT_LINE)
                .read_until(b'\n', &mut line_buf)
                .map_err(|source| VerifyError::Read {
                    path: path.clone(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let overlong = n as u64 >= MAX_RESULT_LINE && line_buf.last() != Some(&b'\n');
            if overlong {
                // Skip the rest of the line unread.
                let mut rest = Vec::new();
                loop {
                    rest.clear();
                    let m = std::io::Read::take(&mut input, 1 << 20)
                        .read_until(b'\n', &mut rest)
                        .map_err(|source| VerifyError::Read {
                            path: path.clone(),
                            source,
                        })?;
                    if m == 0 || rest.last() == Some(&b'\n') {
                        break;
                    }
                }
            }
            let text = result_text(&line_buf);
            if text.is_empty() {
                continue;
            }
            let start = batch.bytes.len();
            let job = if overlong {
                JobSlot::Missing {
                    file: None,
                    why: format!("the result line is longer than {MAX_RESULT_LINE} bytes"),
                }
            } else {
                batch.bytes.extend_from_slice(text);
                locate_job(text, fi, line_no, &mut pairing, &mut batch.bytes)?
            };
            let end = start + if overlong { 0 } else { text.len() };
            batch.items.push(Item {
                results_file: fi,
                results_line: line_no,
                start,
                end,
                job,
            });
            if batch.items.len() >= BATCH_ITEMS || batch.bytes.len() >= BATCH_BYTES {
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        bytes: Vec::with_capacity(BATCH_BYTES + (1 << 16)),
                        items: Vec::new(),
                    },
                );
                if !feed.send(full) {
                    return Ok(Vec::new());
                }
            }
        }
    }
    if !batch.items.is_empty() {
        feed.send(batch);
    }
    // The workers finish the last batches while the job files are read once more.
    drop(feed);
    let mut unpaired = Vec::new();
    for (fi, (cursor, claimed)) in pairing.jobs.iter().zip(&pairing.claimed).enumerate() {
        cursor
            .job_lines(|line| {
                if !claimed.contains_key(&line) {
                    unpaired.push((fi as u32, line));
                }
            })
            .map_err(|source| VerifyError::Read {
                path: cursor.path.clone(),
                source,
            })?;
    }
    Ok(unpaired)
}

/// Finds the job of the result `text` and appends it to `out` (after the result).
fn locate_job(
    text: &[u8],
    results_file: u32,
    results_line: u64,
    pairing: &mut Pairing,
    out: &mut Vec<u8>,
) -> Result<JobSlot, VerifyError> {
    // Results written by jobpoints from one file start `{"line":N,`: no parse needed.
    let fast = text
        .strip_prefix(b"{\"line\":")
        .and_then(|rest| {
            let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            (digits > 0 && rest.get(digits) == Some(&b','))
                .then(|| {
                    std::str::from_utf8(&rest[..digits])
                        .ok()?
                        .parse::<u64>()
                        .ok()
                })
                .flatten()
        })
        .map(|line| (None, line));
    let (file, line) = match fast {
        Some(found) => found,
        None => match serde_json::from_slice::<Locate>(text) {
            Err(_) => {
                // Reported by the worker, which parses it again.
                return Ok(JobSlot::Missing {
                    file: None,
                    why: String::new(),
                });
            }
            Ok(l) if l.decision_id.is_some() => return Ok(JobSlot::Embedded),
            Ok(l) => match l.line {
                None => {
                    return Ok(JobSlot::Missing {
                        file: None,
                        why: "the result has no `line`".into(),
                    });
                }
                Some(line) => (l.file.map(Cow::into_owned), line),
            },
        },
    };
    let fi = match pairing.job_file(file.as_deref(), results_file) {
        Ok(fi) => fi,
        Err(why) if pairing.jobs.is_empty() => return Err(VerifyError::Usage(why)),
        Err(why) => return Ok(JobSlot::Missing { file: None, why }),
    };
    if let Some(&(rf, rl)) = pairing.claimed[fi as usize].get(&line) {
        let first = &pairing.results_names[rf as usize];
        return Ok(JobSlot::Missing {
            file: Some(fi),
            why: format!(
                "a second result for the job at line {line} of the job file (the first is \
                 {first}:{rl})"
            ),
        });
    }
    let cursor = &mut pairing.jobs[fi as usize];
    let slot = cursor
        .fetch(fi, line, out)
        .map_err(|source| VerifyError::Read {
            path: cursor.path.clone(),
            source,
        })?;
    if !matches!(slot, JobSlot::Missing { .. }) {
        pairing.claimed[fi as usize].insert(line, (results_file, results_line));
    }
    Ok(slot)
}
