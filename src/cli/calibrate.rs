//! `jobpoints calibrate`: benchmark timings in, a checked rule proposal and a report out.

use std::path::PathBuf;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::calibrate::llm::{TokenBaseline, TokenOptions, calibrate_tokens, propose_tokens};
use crate::calibrate::{
    self, Baseline, Filter, Method, Options, Per, chart, llm, parse_size, propose, read_files,
    report,
};
use crate::cli::output::note;
use crate::cli::{CliError, Exit, RulesArg, Stdout, rules_invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CalibrateFormat {
    Human,
    Json,
}

const AFTER_HELP: &str = "\
CSV columns (a header row is required; other columns are ignored):
  image: device (or gpu), model_family (or family, model), width, height, seconds_per_image
  (or seconds; else latency_s / batch_size); optional: steps, batch_size, status (rows not
  `ok` are dropped), device_kind (rows not `gpu` are dropped), engine, precision, xformers,
  source_repo.
  LLM (a file with input_tokens and output_tokens columns): device, model_family (or family,
  model), input_tokens, output_tokens, seconds; the same optional columns. An LLM calibration
  fits seconds against input+output tokens and proposes tokens / 1000 (--baseline
  llm8x7b4b:1000) times the model factor; there is no anchor and no chart.
Timings are compared only within one setup: the same device, family, engine, precision,
xformers, batch size and source. A row without steps still compares with rows of its setup
that also lack them.

Method: per setup, least squares of seconds against pixels (at fixed steps) and against steps
(at fixed size); the anchor ratio t(ANCHOR)/t(baseline size) at equal steps of the baseline
family, aggregated across devices (--per) and rounded; the model factor
t(MODEL)/t(baseline family) on the same setup and job, likewise. The proposal interpolates linearly in pixels through the anchors,
times steps / baseline steps, times the factor, and is checked against the rule set.

Exit codes:
  0  a proposal was made and `check` accepts it
  1  no proposal (no anchor ratio or model factor in the data), or `check` rejects it
     (the report says why)
  2  usage error, or a file that cannot be read or lacks a required column
  3  the rule set is invalid";

/// Calibrates points from GPU benchmark timings and proposes a rule version.
///
/// Reads benchmark CSVs, drops rows that cannot be compared (saying which and why), fits how
/// time grows with pixels and steps per setup, aggregates the cost of the anchor size relative
/// to the baseline job across setups, measures the model factor, and emits a rule version
/// that `jobpoints check` accepts, with a report a reviewer can read.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// The job worth 1 point, and the family the anchor ratio is measured on.
    /// Image: FAMILY:WxH@STEPS (default sd15:512x512@20); LLM: FAMILY:TOKENS (default
    /// llm8x7b4b:1000).
    #[arg(long, value_name = "BASELINE")]
    pub baseline: Option<String>,
    /// The second anchor size; its cost relative to the baseline size is calibrated.
    #[arg(long, value_name = "WxH", default_value = "1024x1024", value_parser = parse_size)]
    pub anchor: (u32, u32),
    /// The family to price, as named in the CSV (e.g. `sdxl`); default: the baseline family.
    /// Its multiplier is its time relative to the baseline family on the same setup and job.
    #[arg(long, value_name = "FAMILY")]
    pub model: Option<String>,
    /// The family rule in the rules directory that the proposal is a version of
    /// (e.g. `sdxl10`); default: the --model family. A new rule file when it does not exist.
    #[arg(long, value_name = "FAMILY")]
    pub rule_family: Option<String>,
    /// Use only rows with this batch size (batched runs amortise fixed costs).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub batch: u32,
    /// Keep rows whose device_kind is not `gpu`.
    #[arg(long)]
    pub include_cpu: bool,
    /// Drop rows whose engine contains TEXT (case-insensitive; repeatable), e.g. `tomesd`
    /// for token merging, which trades quality for speed and saves more on larger images.
    #[arg(long, value_name = "TEXT")]
    pub exclude_engine: Vec<String>,
    /// How ratios from several devices (or setups) become one number.
    #[arg(long, value_enum, default_value = "median")]
    pub aggregate: Method,
    /// What one observation is: each device counts once (the median of its setups, as the
    /// seed counted each GPU once), or each setup counts.
    #[arg(long, value_enum, default_value = "device")]
    pub per: Per,
    /// Rounding step of the anchor ratio (Season 1: 5.41–6.92 became 6).
    #[arg(long, value_name = "STEP", default_value_t = 0.5)]
    pub round: f64,
    /// Rounding step of the model factor (Season 1: SDXL 1.8).
    #[arg(long, value_name = "STEP", default_value_t = 0.1)]
    pub factor_round: f64,
    /// R² at or above which a sweep over 3+ values is called linear.
    #[arg(long, value_name = "R2", default_value_t = 0.99)]
    pub min_r2: f64,
    /// effective_from of the proposed version (YYYY-MM-DD); default: today (UTC).
    #[arg(long, value_name = "DATE")]
    pub effective_from: Option<Date>,
    /// Write the whole proposed rule file (the existing one with the version appended) here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write an SVG chart of seconds against pixels per setup, with fits and anchors.
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: CalibrateFormat,
    /// Benchmark CSV files; `-` reads stdin.
    #[arg(required = true, value_name = "BENCH.csv")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: CalibrateArgs) -> Result<Exit, CliError> {
    for (name, step) in [
        ("--round", args.round),
        ("--factor-round", args.factor_round),
    ] {
        if !(step.is_finite() && step > 0.0) {
            return Err(CliError::Usage(format!(
                "{name} must be a positive number, not `{step}`"
            )));
        }
    }
    if !(args.min_r2 > 0.0 && args.min_r2 <= 1.0) {
        return Err(CliError::Usage(format!(
            "--min-r2 must be in (0, 1], not `{}`",
            args.min_r2
        )));
    }
    let loaded = args.rules.load()?;
    if loaded.ruleset.is_none() {
        return Err(rules_invalid(
            &loaded,
            format!(
                "the rules in {} are invalid; cannot check a proposal against them",
                loaded.files.origin
            ),
        ));
    }
    let filter = Filter {
        batch: args.batch,
        include_cpu: args.include_cpu,
        exclude_engines: args.exclude_engine.clone(),
    };
    let data = read_files(&args.files, &filter)?;
    let kinds: Vec<&str> = data.inputs.iter().map(|i| i.kind).collect();
    let llm_mode = kinds.iter().all(|k| *k == "llm");
    if !llm_mode && kinds.contains(&"llm") {
        return Err(CliError::Usage(
            "the files mix image and LLM benchmarks (LLM files have input_tokens and output_tokens columns); calibrate them separately".into(),
        ));
    }
    let effective_from = args
        .effective_from
        .unwrap_or_else(|| TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date());
    if llm_mode {
        run_tokens(&args, data, &loaded.files, effective_from)
    } else {
        run_image(&args, data, &loaded.files, effective_from)
    }
}

/// Writes the proposal to --out and the report in the chosen format; returns the exit code.
fn finish<C: serde::Serialize>(
    args: &CalibrateArgs,
    cal: &C,
    proposal: &Result<calibrate::Proposal, calibrate::propose::ProposeError>,
    human: impl FnOnce() -> String,
) -> Result<Exit, CliError> {
    if let (Some(path), Ok(p)) = (&args.out, proposal) {
        std::fs::write(path, &p.file_toml).map_err(|source| CliError::Create {
            path: path.clone(),
            source,
        })?;
        if p.check.ok {
            note!("wrote {} (for {})", path.display(), p.path);
        } else {
            note!(
                "wrote {} (for {}), but check rejects it: see the report",
                path.display(),
                p.path
            );
        }
    }
    let text = match args.format {
        CalibrateFormat::Human => human(),
        CalibrateFormat::Json => {
            let doc = serde_json::json!({
                "calibration": cal,
                "proposal": proposal.as_ref().ok(),
                "no_proposal": proposal.as_ref().err().map(|e| e.to_string()),
            });
            let mut s = serde_json::to_string_pretty(&doc).expect("json");
            s.push('\n');
            s
        }
    };
    Stdout::new().write_text(&text)?;
    Ok(match proposal {
        Ok(p) if p.check.ok => Exit::Ok,
        _ => Exit::JobsFailed,
    })
}

fn run_tokens(
    args: &CalibrateArgs,
    data: calibrate::BenchData,
    files: &jobpoints::rules::files::RuleFiles,
    effective_from: Date,
) -> Result<Exit, CliError> {
    let baseline = args.baseline.as_deref().unwrap_or("llm8x7b4b:1000");
    let baseline: TokenBaseline = baseline
        .parse()
        .map_err(|e| CliError::Usage(format!("--baseline: {e}")))?;
    let opts = TokenOptions {
        baseline,
        model: args.model.clone(),
        method: args.aggregate,
        per: args.per,
        factor_step: args.factor_round,
        min_r2: args.min_r2,
        max_offset: Options::default().max_steps_offset,
    };
    let cal = calibrate_tokens(data, &opts);
    let family = args
        .rule_family
        .clone()
        .unwrap_or_else(|| opts.model().to_string());
    let proposal = propose_tokens(&cal, files, &family, effective_from);
    if args.chart.is_some() {
        note!("warning: no chart: charts are drawn for image benchmarks only");
    }
    finish(args, &cal, &proposal, || {
        llm::render_tokens_human(&cal, &opts, proposal.as_ref())
    })
}

fn run_image(
    args: &CalibrateArgs,
    data: calibrate::BenchData,
    files: &jobpoints::rules::files::RuleFiles,
    effective_from: Date,
) -> Result<Exit, CliError> {
    let baseline = args.baseline.as_deref().unwrap_or("sd15:512x512@20");
    let baseline: Baseline = baseline
        .parse()
        .map_err(|e| CliError::Usage(format!("--baseline: {e}")))?;
    let (aw, ah) = args.anchor;
    if u64::from(aw) * u64::from(ah) <= baseline.pixels() {
        return Err(CliError::Usage(format!(
            "--anchor {aw}x{ah} must have more pixels than the baseline {}x{}",
            baseline.width, baseline.height
        )));
    }
    let opts = Options {
        baseline,
        anchor: args.anchor,
        model: args.model.clone(),
        method: args.aggregate,
        per: args.per,
        anchor_step: args.round,
        factor_step: args.factor_round,
        min_r2: args.min_r2,
        ..Options::default()
    };
    let cal = calibrate::calibrate(data, &opts);
    let family = args
        .rule_family
        .clone()
        .unwrap_or_else(|| opts.model().to_string());
    let proposal = propose(&cal, &opts, files, &family, effective_from);
    if let Some(path) = &args.chart {
        match chart::render_svg(&cal) {
            Ok(svg) => std::fs::write(path, svg).map_err(|source| CliError::Create {
                path: path.clone(),
                source,
            })?,
            Err(e) => note!("warning: no chart: {e}"),
        }
    }
    finish(args, &cal, &proposal, || {
        report::render_human(&cal, &opts, proposal.as_ref())
    })
}
