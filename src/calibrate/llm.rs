//! LLM calibration: seconds against tokens per setup, and the cost of a model relative to the
//! llama point's reference (Season 1: 1,000 input+output tokens on Mixtral 8x7b = 1 point).
//!
//! Season 1 counts input and output tokens the same, so the base formula is tokens / 1000 and
//! a model differs only by its multiplier: its time relative to the reference model on the
//! same setup and request.

use std::collections::BTreeMap;
use std::fmt::Write;

use jiff::civil::Date;
use serde::Serialize;

use crate::calibrate::fit::{PlaneFit, least_squares_plane};
use crate::calibrate::propose::{
    ProposeError, Slot, calibrated_on, float_lit, how_chosen, locate, num, place, toml_str,
    version_head,
};
use crate::calibrate::report::{write_inputs, write_model_factor, write_proposal};
use crate::calibrate::{
    Aggregate, BenchData, DeviceValue, Dropped, InputSummary, LineFit, Linearity, Method, Per,
    Proposal, Setup, TokenTiming, aggregate_per, least_squares, paired_means,
};
use jobpoints::rules::files::RuleFiles;

/// The shared formula reused when the baseline is 1,000 tokens.
const SEASON1_FORMULA: &str = "llama_season1";

/// The request worth 1 point: `FAMILY:TOKENS` (Season 1: `llm8x7b4b:1000`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenBaseline {
    pub family: String,
    pub tokens: u64,
}

impl std::str::FromStr for TokenBaseline {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not FAMILY:TOKENS (e.g. llm8x7b4b:1000)");
        let (family, tokens) = s.split_once(':').ok_or_else(bad)?;
        let tokens: u64 = tokens.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?;
        if family.is_empty() {
            return Err(bad());
        }
        Ok(TokenBaseline {
            family: family.to_string(),
            tokens,
        })
    }
}

#[derive(Debug, Clone)]
pub struct TokenOptions {
    pub baseline: TokenBaseline,
    /// The family being priced; the baseline family when `None`.
    pub model: Option<String>,
    pub method: Method,
    pub per: Per,
    pub factor_step: f64,
    pub min_r2: f64,
    /// Largest |intercept| as a share of the time at the baseline tokens for time to count as
    /// proportional to tokens (what tokens / 1000 needs).
    pub max_offset: f64,
}

/// Seconds against input+output tokens for one setup.
#[derive(Debug, Clone, Serialize)]
pub struct TokenSweep {
    pub setup: Setup,
    pub fit: LineFit,
    pub linearity: Linearity,
    pub offset_share: f64,
    pub proportional: bool,
    /// Seconds against input and output tokens separately, when the requests tell them apart.
    pub split: Option<PlaneFit>,
    /// Seconds per output token / seconds per input token, from `split`.
    pub output_vs_input: Option<f64>,
}

/// t(model) / t(baseline family) for one request on one setup.
#[derive(Debug, Clone, Serialize)]
pub struct TokenFactor {
    pub setup: Setup,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub model_seconds: f64,
    pub base_seconds: f64,
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenCalibration {
    pub baseline: TokenBaseline,
    pub model: String,
    pub inputs: Vec<InputSummary>,
    pub used: usize,
    pub families: BTreeMap<String, usize>,
    pub dropped: Vec<Dropped>,
    pub sweeps: Vec<TokenSweep>,
    pub factor_ratios: Vec<TokenFactor>,
    pub factor_devices: Vec<DeviceValue>,
    pub model_factor: Option<Aggregate>,
}

impl TokenOptions {
    pub fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(&self.baseline.family)
    }
}

pub fn calibrate_tokens(data: BenchData, opts: &TokenOptions) -> TokenCalibration {
    let mut by_setup: BTreeMap<&Setup, Vec<&TokenTiming>> = BTreeMap::new();
    let mut families: BTreeMap<String, usize> = BTreeMap::new();
    for t in &data.token_timings {
        by_setup.entry(&t.setup).or_default().push(t);
        *families.entry(t.setup.family.clone()).or_default() += 1;
    }
    let mut sweeps = Vec::new();
    for (setup, ts) in &by_setup {
        let pts: Vec<(f64, f64)> = ts.iter().map(|t| (t.tokens() as f64, t.seconds)).collect();
        if let Some(fit) = least_squares(&pts) {
            let linearity = Linearity::judge(&fit, opts.min_r2);
            let offset_share = fit.intercept / fit.at(opts.baseline.tokens as f64);
            // Season 1 counts input and output tokens the same: the data can say whether
            // they cost the same.
            let split = least_squares_plane(
                &ts.iter()
                    .map(|t| (t.input_tokens as f64, t.output_tokens as f64, t.seconds))
                    .collect::<Vec<_>>(),
            );
            let output_vs_input = split.as_ref().filter(|p| p.a > 0.0).map(|p| p.b / p.a);
            sweeps.push(TokenSweep {
                split,
                output_vs_input,
                setup: (*setup).clone(),
                proportional: linearity == Linearity::Linear
                    && offset_share.abs() <= opts.max_offset,
                offset_share,
                linearity,
                fit,
            });
        }
    }

    let model = opts.model().to_string();
    let requests = data
        .token_timings
        .iter()
        .map(|t| (&t.setup, (t.input_tokens, t.output_tokens), t.seconds));
    let factor_ratios: Vec<TokenFactor> = paired_means(requests, &opts.baseline.family, &model)
        .into_iter()
        .map(|p| {
            let (input_tokens, output_tokens) = p.job;
            TokenFactor {
                setup: p.setup,
                input_tokens,
                output_tokens,
                model_seconds: p.model_seconds,
                base_seconds: p.base_seconds,
                ratio: p.model_seconds / p.base_seconds,
            }
        })
        .collect();
    let (model_factor, factor_devices) = aggregate_per(
        factor_ratios
            .iter()
            .map(|r| (r.setup.device.as_str(), r.ratio)),
        opts.per,
        opts.method,
        opts.factor_step,
    );
    TokenCalibration {
        baseline: opts.baseline.clone(),
        model_factor,
        factor_devices,
        model,
        inputs: data.inputs,
        used: data.token_timings.len(),
        families,
        dropped: data.dropped,
        sweeps,
        factor_ratios,
    }
}

/// A version pricing `family` at tokens / baseline tokens × the model factor.
pub fn propose_tokens(
    cal: &TokenCalibration,
    files: &RuleFiles,
    family: &str,
    effective_from: Date,
) -> Result<Proposal, ProposeError> {
    let b = &cal.baseline;
    let priced_model = cal.model != b.family;
    let multiplier = match (&cal.model_factor, priced_model) {
        (Some(f), true) => f.rounded,
        (None, true) => {
            return Err(ProposeError::NoFactor {
                model: cal.model.clone(),
                base: b.family.clone(),
            });
        }
        (_, false) => 1.0,
    };
    let Slot {
        rule_file,
        version,
        catalog_models,
    } = locate(files, family)?;
    let season1 = b.tokens == 1000
        && files
            .files
            .contains_key(&format!("formulas/{SEASON1_FORMULA}.rhai"));
    let formula = if season1 {
        format!("formula = {}", toml_str(SEASON1_FORMULA))
    } else {
        format!("expr = \"tokens / {}\"", float_lit(b.tokens as f64))
    };

    let mut source = format!(
        "{}; 1 point = {} input+output tokens on `{}`",
        calibrated_on(&cal.inputs),
        b.tokens,
        b.family
    );
    if let Some(f) = &cal.model_factor {
        write!(
            source,
            "; `{}` vs `{}` on the same setup and request: {}",
            cal.model,
            b.family,
            how_chosen(f)
        )
        .unwrap();
    }
    let proportional = cal.sweeps.iter().filter(|s| s.proportional).count();
    let split: Vec<f64> = cal
        .sweeps
        .iter()
        .filter_map(|s| s.output_vs_input)
        .collect();
    let mut assumptions = vec![if split.is_empty() {
        "Input and output tokens cost the same, as in Season 1; the data cannot tell them apart."
            .to_string()
    } else {
        let lo = split.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = split.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let range = if num(lo, 2) == num(hi, 2) {
            num(lo, 2)
        } else {
            format!("{}–{}", num(lo, 2), num(hi, 2))
        };
        format!(
            "Input and output tokens cost the same, as in Season 1; the data measures an output token at {range}× an input token."
        )
    }];
    if proportional < cal.sweeps.len() || cal.sweeps.is_empty() {
        assumptions.push(format!(
            "Time is assumed proportional to tokens; {proportional} of {} sweeps support it.",
            cal.sweeps.len()
        ));
    }

    // `assumptions` is never empty, so the table always lists them.
    let mut t = version_head(
        version,
        effective_from,
        &source,
        cal.used,
        cal.dropped.len(),
        &assumptions,
    );
    writeln!(t, "{formula}").unwrap();
    writeln!(t, "multiplier = {}", float_lit(multiplier)).unwrap();
    let half = b.tokens / 2;
    t.push_str("examples = [\n");
    writeln!(
        t,
        "  {{ input_tokens = {}, output_tokens = 0, points = {} }},",
        b.tokens,
        num(multiplier, 6)
    )
    .unwrap();
    writeln!(
        t,
        "  {{ input_tokens = {half}, output_tokens = {}, points = {} }},",
        b.tokens - half,
        num(multiplier, 6)
    )
    .unwrap();
    t.push_str("]\n");

    let placed = place(files, rule_file.as_deref(), family, "llm", &t);
    Ok(Proposal {
        family: family.to_string(),
        version,
        effective_from: effective_from.to_string(),
        multiplier,
        formula,
        version_toml: t,
        catalog_models,
        ..placed
    })
}

/// The report for people.
pub fn render_tokens_human(
    cal: &TokenCalibration,
    opts: &TokenOptions,
    proposal: Result<&Proposal, &ProposeError>,
) -> String {
    let mut o = String::new();
    let b = &cal.baseline;
    writeln!(
        o,
        "LLM calibration of `{}` against the baseline: {} input+output tokens on `{}` (= 1 point)",
        cal.model, b.tokens, b.family
    )
    .unwrap();
    write_inputs(&mut o, &cal.inputs, &cal.families, &cal.dropped);

    writeln!(
        o,
        "\nSeconds vs tokens, per setup (proportional: linear with R² ≥ {} over 3+ token counts and |intercept| ≤ {}% of t({} tokens))",
        num(opts.min_r2, 4),
        num(opts.max_offset * 100.0, 2),
        b.tokens
    )
    .unwrap();
    if cal.sweeps.is_empty() {
        writeln!(
            o,
            "  none: no setup has timings at two or more token counts"
        )
        .unwrap();
    }
    for s in &cal.sweeps {
        writeln!(o, "  {} · {}", s.setup.family, s.setup.label()).unwrap();
        writeln!(
            o,
            "    t = {} s + {} s/1000 tokens · tokens/1000   R² {}   {} token counts, {} timings   max residual {}%",
            num(s.fit.intercept, 4),
            num(s.fit.slope * 1000.0, 4),
            num(s.fit.r2, 4),
            s.fit.distinct_x,
            s.fit.n,
            num(s.fit.max_relative_residual() * 100.0, 1)
        )
        .unwrap();
        writeln!(
            o,
            "    intercept {}% of t({})   {}{}",
            num(s.offset_share * 100.0, 1),
            b.tokens,
            s.linearity.as_str(),
            if s.proportional { ", proportional" } else { "" }
        )
        .unwrap();
        match (&s.split, s.output_vs_input) {
            (Some(p), Some(r)) => writeln!(
                o,
                "    t = {} s + {} s/1000 in + {} s/1000 out   R² {}   an output token costs {}× an input token",
                num(p.intercept, 4),
                num(p.a * 1000.0, 4),
                num(p.b * 1000.0, 4),
                num(p.r2, 4),
                num(r, 3)
            )
            .unwrap(),
            _ => writeln!(
                o,
                "    input and output tokens cannot be told apart (3+ requests not all in one proportion are needed)"
            )
            .unwrap(),
        }
    }

    let factor_rows: Vec<String> = cal
        .factor_ratios
        .iter()
        .map(|r| {
            format!(
                "{} · {} in + {} out tokens: {} s vs {} s = {}",
                r.setup.label(),
                r.input_tokens,
                r.output_tokens,
                num(r.model_seconds, 4),
                num(r.base_seconds, 4),
                num(r.ratio, 3)
            )
        })
        .collect();
    write_model_factor(
        &mut o,
        &cal.model,
        &b.family,
        "request",
        &factor_rows,
        cal.model_factor.as_ref(),
        &cal.factor_devices,
    );

    write_proposal(&mut o, proposal, |p| {
        format!("tokens / {} × {}", b.tokens, num(p.multiplier, 6))
    });
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_baseline_parses() {
        let b: TokenBaseline = "llm8x7b4b:1000".parse().unwrap();
        assert_eq!((b.family.as_str(), b.tokens), ("llm8x7b4b", 1000));
        for bad in ["llm8x7b4b", ":1000", "llm8x7b4b:0", "sd15:512x512@20"] {
            assert!(bad.parse::<TokenBaseline>().is_err(), "{bad}");
        }
    }
}
