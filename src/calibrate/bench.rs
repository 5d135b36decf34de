//! Reading benchmark timings from CSV: which rows are usable, and why the others are not.
//!
//! Published benchmarks mix engines, precisions, batch sizes and failed runs. A row is never
//! fatal: it is either used as a [`Timing`] or reported as [`Dropped`] with its file, line and
//! reason. Only a file that cannot be read, or lacks a column every row needs, is an error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A file that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` has no `{column}` column (columns: {found})")]
    MissingColumn {
        path: PathBuf,
        column: &'static str,
        found: String,
    },
    #[error("`{path}`: cannot read the CSV header: {message}")]
    Header { path: PathBuf, message: String },
}

/// Which rows take part. Rows outside the filter are dropped with the reason.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Only this batch size: batched runs amortise fixed costs over several images, and a
    /// network job is one image.
    pub batch: u32,
    /// Keep rows whose `device_kind` is not `gpu` (CPU runs do not mine).
    pub include_cpu: bool,
    /// Drop rows whose engine contains one of these (case-insensitive), e.g. `tomesd`:
    /// quality-altering speed-ups that a miner's reference setup would not use.
    pub exclude_engines: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            batch: 1,
            include_cpu: false,
            exclude_engines: Vec::new(),
        }
    }
}

/// One usable timing: seconds per image for one job shape on one setup.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub file: String,
    pub line: u64,
    pub setup: Setup,
    pub width: u32,
    pub height: u32,
    /// `None` when the source does not state it: such a timing still compares with others of
    /// its setup at the same (unstated) step count, but cannot enter a steps fit.
    pub steps: Option<u32>,
    pub seconds: f64,
}

impl Timing {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// One usable LLM timing: seconds for one request of `input_tokens` + `output_tokens`.
#[derive(Debug, Clone, Serialize)]
pub struct TokenTiming {
    pub file: String,
    pub line: u64,
    pub setup: Setup,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub seconds: f64,
}

impl TokenTiming {
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// Everything that must be equal for two timings to be compared: the same software on the
/// same hardware, differing only in the job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Setup {
    pub device: String,
    pub family: String,
    pub engine: String,
    pub precision: String,
    pub batch: u32,
    pub source: String,
}

impl Setup {
    /// The setup without its family: where two families can be compared.
    pub fn without_family(&self) -> Setup {
        Setup {
            family: String::new(),
            ..self.clone()
        }
    }

    /// A short human label: `NVIDIA V100 · tomesd ratio 0.5 · fp16`.
    pub fn label(&self) -> String {
        let mut parts = vec![self.device.as_str()];
        if !self.engine.is_empty() {
            parts.push(&self.engine);
        }
        if !self.precision.is_empty() {
            parts.push(&self.precision);
        }
        parts.join(" · ")
    }
}

/// A row that was not used, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    pub file: String,
    pub line: u64,
    /// A stable category (`status`, `missing`, `time`, `batch`, ...), for the summary.
    pub category: &'static str,
    pub reason: String,
}

/// What one input file contributed.
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    /// The file name as given on the command line, without its directories.
    pub name: String,
    /// `image` or `llm` (a file with `input_tokens` and `output_tokens` columns).
    pub kind: &'static str,
    pub sha256: String,
    pub rows: usize,
    pub used: usize,
    pub dropped: usize,
}

/// Every input file read, with the usable timings and the dropped rows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchData {
    pub inputs: Vec<InputSummary>,
    /// Image generation timings.
    pub timings: Vec<Timing>,
    /// LLM timings, from files with `input_tokens` and `output_tokens` columns.
    pub token_timings: Vec<TokenTiming>,
    pub dropped: Vec<Dropped>,
}

/// The columns jobpoints reads; every other column is ignored. Everything is read as text and
/// checked here, so a bad value is reported with its field instead of failing the file.
#[derive(Debug, Deserialize)]
struct RawRow {
    #[serde(alias = "gpu")]
    device: Option<String>,
    device_kind: Option<String>,
    #[serde(alias = "family")]
    model_family: Option<String>,
    /// The family when there is no `model_family` column (LLM benchmarks name the model).
    model: Option<String>,
    input_tokens: Option<String>,
    output_tokens: Option<String>,
    width: Option<String>,
    height: Option<String>,
    steps: Option<String>,
    #[serde(alias = "batch")]
    batch_size: Option<String>,
    precision: Option<String>,
    engine: Option<String>,
    xformers: Option<String>,
    #[serde(alias = "seconds")]
    seconds_per_image: Option<String>,
    latency_s: Option<String>,
    status: Option<String>,
    #[serde(alias = "source")]
    source_repo: Option<String>,
}

/// Reads every file; rows are dropped, never fatal.
pub fn read_files(paths: &[PathBuf], filter: &Filter) -> Result<BenchData, BenchError> {
    let mut data = BenchData::default();
    for path in paths {
        read_file(path, filter, &mut data)?;
    }
    Ok(data)
}

fn read_file(path: &Path, filter: &Filter, data: &mut BenchData) -> Result<(), BenchError> {
    let io = |source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (bytes, name) = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map_err(io)?;
        (bytes, "stdin".to_string())
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        (std::fs::read(path).map_err(io)?, name)
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| BenchError::Header {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .clone();
    let has = |names: &[&str]| names.iter().any(|n| headers.iter().any(|h| h == *n));
    // An LLM benchmark has token counts instead of image sizes.
    let llm = has(&["input_tokens"]) && has(&["output_tokens"]) && !has(&["width"]);
    let common: [(&'static str, &[&str]); 3] = [
        ("device", &["device", "gpu"]),
        ("model_family", &["model_family", "family", "model"]),
        (
            "seconds_per_image",
            &["seconds_per_image", "seconds", "latency_s"],
        ),
    ];
    let job: [(&'static str, &[&str]); 2] = if llm {
        [
            ("input_tokens", &["input_tokens"]),
            ("output_tokens", &["output_tokens"]),
        ]
    } else {
        [("width", &["width"]), ("height", &["height"])]
    };
    for (column, names) in common.into_iter().chain(job) {
        if !has(names) {
            return Err(BenchError::MissingColumn {
                path: path.to_path_buf(),
                column,
                found: headers.iter().collect::<Vec<_>>().join(", "),
            });
        }
    }

    let before_used = data.timings.len() + data.token_timings.len();
    let before_dropped = data.dropped.len();
    let mut rows = 0;
    let mut record = csv::StringRecord::new();
    // csv's own line count is off with CRLF line ends, so lines are counted from byte offsets.
    let mut lines = LineCounter::new(&bytes);
    loop {
        let start = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                rows += 1;
                let line = lines.line_at(record.position().map_or(start, |p| p.byte()));
                match record.deserialize::<RawRow>(Some(&headers)) {
                    Ok(raw) => match check_row(raw, filter, llm) {
                        Ok(Row::Image(mut t)) => {
                            t.file = name.clone();
                            t.line = line;
                            data.timings.push(t);
                        }
                        Ok(Row::Tokens(mut t)) => {
                            t.file = name.clone();
                            t.line = line;
                            data.token_timings.push(t);
                        }
                        Err((category, reason)) => data.dropped.push(Dropped {
                            file: name.clone(),
                            line,
                            category,
                            reason,
                        }),
                    },
                    Err(e) => data.dropped.push(Dropped {
                        file: name.clone(),
                        line,
                        category: "malformed",
                        reason: format!("malformed row: {e}"),
                    }),
                }
            }
            Err(e) => {
                // A row with the wrong number of fields or bad UTF-8: report it and go on.
                rows += 1;
                let line = lines.line_at(e.position().map_or(start, |p| p.byte()));
                data.dropped.push(Dropped {
                    file: name.clone(),
                    line,
                    category: "malformed",
                    reason: format!("malformed row: {}", csv_error_text(&e)),
                });
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
            }
        }
    }
    data.inputs.push(InputSummary {
        name,
        kind: if llm { "llm" } else { "image" },
        sha256: hex::encode(Sha256::digest(&bytes)),
        rows,
        used: data.timings.len() + data.token_timings.len() - before_used,
        dropped: data.dropped.len() - before_dropped,
    });
    Ok(())
}

/// 1-based line numbers of byte offsets, for offsets that only grow.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, byte: u64) -> u64 {
        let mut to = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        // csv may report a record as starting at the line end before it (after a `\r`).
        while to < self.bytes.len() && matches!(self.bytes[to], b'\r' | b'\n') {
            to += 1;
        }
        if to > self.offset {
            self.line += self.bytes[self.offset..to]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.offset = to;
        }
        self.line
    }
}

fn csv_error_text(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        _ => e.to_string(),
    }
}

type Reject = (&'static str, String);

fn present(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn required(v: Option<String>, field: &str) -> Result<String, Reject> {
    present(v).ok_or_else(|| ("missing", format!("missing `{field}`")))
}

fn positive_int(v: &str, field: &str) -> Result<u32, Reject> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err((
            "invalid",
            format!("`{field}` is `{v}`, not a positive integer"),
        )),
    }
}

fn seconds(v: &str, field: &str) -> Result<f64, Reject> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(x) if x.is_finite() => Err(("time", format!("`{field}` is `{v}`: not a positive time"))),
        _ => Err(("invalid", format!("`{field}` is `{v}`, not a number"))),
    }
}

fn token_count(v: &str, field: &str) -> Result<u64, Reject> {
    v.parse::<u64>().map_err(|_| {
        (
            "invalid",
            format!("`{field}` is `{v}`, not a whole number of tokens"),
        )
    })
}

enum Row {
    Image(Timing),
    Tokens(TokenTiming),
}

fn check_row(raw: RawRow, filter: &Filter, llm: bool) -> Result<Row, Reject> {
    // A failed run first: its other fields are usually empty, and the failure is the news.
    if let Some(status) = present(raw.status)
        && !status.eq_ignore_ascii_case("ok")
    {
        return Err(("status", format!("status `{status}`")));
    }
    if let Some(kind) = present(raw.device_kind)
        && !filter.include_cpu
        && !kind.eq_ignore_ascii_case("gpu")
    {
        return Err((
            "device",
            format!("device kind `{kind}` (only GPUs; --include-cpu)"),
        ));
    }
    let device = required(raw.device, "device")?;
    let family = match present(raw.model_family) {
        Some(f) => f,
        None => required(raw.model, "model_family")?,
    };
    let job = if llm {
        let input = token_count(&required(raw.input_tokens, "input_tokens")?, "input_tokens")?;
        let output = token_count(
            &required(raw.output_tokens, "output_tokens")?,
            "output_tokens",
        )?;
        if input + output == 0 {
            return Err(("invalid", "no tokens: nothing was timed".to_string()));
        }
        RowJob::Tokens(input, output)
    } else {
        let width = positive_int(&required(raw.width, "width")?, "width")?;
        let height = positive_int(&required(raw.height, "height")?, "height")?;
        let steps = present(raw.steps)
            .map(|s| positive_int(&s, "steps"))
            .transpose()?;
        RowJob::Image(width, height, steps)
    };
    let batch = present(raw.batch_size)
        .map(|s| positive_int(&s, "batch_size"))
        .transpose()?
        .unwrap_or(1);
    let seconds_field = if llm { "seconds" } else { "seconds_per_image" };
    let seconds = match (present(raw.seconds_per_image), present(raw.latency_s)) {
        (Some(s), _) => seconds(&s, seconds_field)?,
        // Whole-batch latency: per item is the share of one.
        (None, Some(l)) => seconds(&l, "latency_s")? / f64::from(batch),
        (None, None) => return Err(("missing", format!("missing `{seconds_field}`"))),
    };
    if batch != filter.batch {
        return Err((
            "batch",
            format!("batch size {batch} (only {}; --batch)", filter.batch),
        ));
    }
    let mut engine = present(raw.engine).unwrap_or_default();
    let lower = engine.to_lowercase();
    if let Some(x) = filter
        .exclude_engines
        .iter()
        .find(|x| lower.contains(&x.to_lowercase()))
    {
        return Err((
            "engine",
            format!("engine `{engine}` (--exclude-engine {x})"),
        ));
    }
    if let Some(x) = present(raw.xformers) {
        engine = if engine.is_empty() {
            format!("xformers {x}")
        } else {
            format!("{engine}, xformers {x}")
        };
    }
    let setup = Setup {
        device,
        family,
        engine,
        precision: present(raw.precision).unwrap_or_default(),
        batch,
        source: present(raw.source_repo).unwrap_or_default(),
    };
    Ok(match job {
        RowJob::Image(width, height, steps) => Row::Image(Timing {
            file: String::new(),
            line: 0,
            setup,
            width,
            height,
            steps,
            seconds,
        }),
        RowJob::Tokens(input_tokens, output_tokens) => Row::Tokens(TokenTiming {
            file: String::new(),
            line: 0,
            setup,
            input_tokens,
            output_tokens,
            seconds,
        }),
    })
}

enum RowJob {
    Image(u32, u32, Option<u32>),
    Tokens(u64, u64),
}
