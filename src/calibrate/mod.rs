//! Calibration: from benchmark timings to a proposed rule version, the way Season 1 was
//! calibrated ("A Tale of Two Points", Heurist, 2024-03-24).
//!
//! 1. [`bench`] reads timings and drops what cannot be compared (failed runs, batches, CPUs).
//! 2. Per setup (device, family, engine, precision, batch), [`fit`] fits seconds against
//!    pixels (at fixed steps) and against steps (at fixed pixels), and judges linearity.
//! 3. The anchor ratio t(anchor size) / t(baseline size) at equal steps, for the baseline
//!    family, is aggregated across setups (median, mean or midrange) and rounded: the seed's
//!    5.41–6.92 → 6.
//! 4. The model factor t(model) / t(baseline family) on the same setup and job, likewise.
//! 5. [`propose`] writes a rule version interpolating linearly through the two anchors, times
//!    steps, times the factor, and checks it against the rule set; [`chart`] draws the fits.
//!
//! LLM benchmarks (token counts instead of sizes) go through [`llm`]: seconds against tokens
//! per setup, and the model factor against the llama point's reference model.

pub mod bench;
pub mod chart;
pub mod fit;
pub mod llm;
pub mod propose;
pub mod report;

use std::collections::BTreeMap;

use serde::Serialize;

pub use bench::{BenchData, Dropped, Filter, InputSummary, Setup, Timing, TokenTiming, read_files};
pub use fit::{
    Aggregate, DeviceValue, LineFit, Linearity, Method, Per, aggregate_per, least_squares,
};
pub use propose::{Proposal, propose};

/// The job every cost is relative to: 1 point (Season 1: SD 1.5, 512x512, 20 steps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Baseline {
    pub family: String,
    pub width: u32,
    pub height: u32,
    pub steps: u32,
}

impl Baseline {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

impl std::str::FromStr for Baseline {
    type Err = String;

    /// `FAMILY:WIDTHxHEIGHT@STEPS`, e.g. `sd15:512x512@20`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not FAMILY:WIDTHxHEIGHT@STEPS (e.g. sd15:512x512@20)");
        let (family, job) = s.split_once(':').ok_or_else(bad)?;
        let (size, steps) = job.split_once('@').ok_or_else(bad)?;
        let (w, h) = parse_size(size).map_err(|_| bad())?;
        let steps: u32 = steps.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?;
        if family.is_empty() {
            return Err(bad());
        }
        Ok(Baseline {
            family: family.to_string(),
            width: w,
            height: h,
            steps,
        })
    }
}

/// `WIDTHxHEIGHT`, both positive.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not WIDTHxHEIGHT (e.g. 1024x1024)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?;
    let h: u32 = h.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?;
    Ok((w, h))
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct Options {
    pub baseline: Baseline,
    /// The second anchor size (Season 1: 1024x1024).
    pub anchor: (u32, u32),
    /// The family being priced; the baseline family when `None`.
    pub model: Option<String>,
    pub method: Method,
    /// Whether each device or each setup is one observation.
    pub per: Per,
    /// Rounding step of the anchor ratio.
    pub anchor_step: f64,
    /// Rounding step of the model factor.
    pub factor_step: f64,
    /// R² at or above which a sweep of three or more values is called linear.
    pub min_r2: f64,
    /// Largest |intercept| of a steps fit, as a share of the fitted time at the baseline
    /// steps, for time to count as proportional to steps (points = m · steps / 20 needs it).
    pub max_steps_offset: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            baseline: Baseline {
                family: "sd15".into(),
                width: 512,
                height: 512,
                steps: 20,
            },
            anchor: (1024, 1024),
            model: None,
            method: Method::Median,
            per: Per::Device,
            anchor_step: 0.5,
            factor_step: 0.1,
            min_r2: 0.99,
            max_steps_offset: 0.05,
        }
    }
}

impl Options {
    pub fn anchor_pixels(&self) -> u64 {
        u64::from(self.anchor.0) * u64::from(self.anchor.1)
    }

    pub fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(&self.baseline.family)
    }
}

/// Seconds against pixels for one setup at one step count.
#[derive(Debug, Clone, Serialize)]
pub struct PixelSweep {
    pub setup: Setup,
    /// `None`: the source does not state the step count (the same for the whole sweep).
    pub steps: Option<u32>,
    pub fit: LineFit,
    pub linearity: Linearity,
}

/// Seconds against steps for one setup at one size.
#[derive(Debug, Clone, Serialize)]
pub struct StepsSweep {
    pub setup: Setup,
    pub width: u32,
    pub height: u32,
    pub fit: LineFit,
    pub linearity: Linearity,
    /// intercept / fitted time at the baseline steps: near 0 means time ∝ steps.
    pub offset_share: f64,
    pub proportional: bool,
}

/// One measured ratio t(anchor) / t(baseline size), same setup and steps.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorRatio {
    pub setup: Setup,
    pub steps: Option<u32>,
    pub base_seconds: f64,
    pub anchor_seconds: f64,
    pub ratio: f64,
    /// The same ratio read off the fitted line, when the sweep has a fit.
    pub fitted_ratio: Option<f64>,
}

/// One measured ratio t(model) / t(baseline family), same setup (but family) and job.
#[derive(Debug, Clone, Serialize)]
pub struct FactorRatio {
    pub setup: Setup,
    pub width: u32,
    pub height: u32,
    pub steps: Option<u32>,
    pub model_seconds: f64,
    pub base_seconds: f64,
    pub ratio: f64,
}

/// Everything `jobpoints calibrate` found, before the proposal.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub baseline: Baseline,
    pub anchor: (u32, u32),
    pub model: String,
    pub inputs: Vec<InputSummary>,
    pub used: usize,
    /// Per family, the number of usable timings.
    pub families: BTreeMap<String, usize>,
    pub dropped: Vec<Dropped>,
    pub pixel_sweeps: Vec<PixelSweep>,
    pub steps_sweeps: Vec<StepsSweep>,
    pub anchor_ratios: Vec<AnchorRatio>,
    /// Per device, the median of its anchor ratios.
    pub anchor_devices: Vec<DeviceValue>,
    pub anchor_ratio: Option<Aggregate>,
    pub factor_ratios: Vec<FactorRatio>,
    pub factor_devices: Vec<DeviceValue>,
    /// `None` when the model is the baseline family or no setup has both.
    pub model_factor: Option<Aggregate>,
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// One job timed with both the priced model and the baseline family on one setup.
struct PairedJob<J> {
    /// The setup without its family.
    setup: Setup,
    job: J,
    model_seconds: f64,
    base_seconds: f64,
}

/// The jobs (`J`: size and steps, or token counts) that the setups (apart from the family)
/// timed with both `model` and `base_family`, in setup then job order, each with its
/// repeated timings averaged. Empty when `model` is the baseline family.
fn paired_means<'t, J: Ord>(
    timings: impl IntoIterator<Item = (&'t Setup, J, f64)>,
    base_family: &str,
    model: &str,
) -> Vec<PairedJob<J>> {
    let mut base: BTreeMap<(Setup, J), Vec<f64>> = BTreeMap::new();
    let mut priced: BTreeMap<(Setup, J), Vec<f64>> = BTreeMap::new();
    for (setup, job, seconds) in timings {
        let key = (setup.without_family(), job);
        if setup.family == base_family {
            base.entry(key).or_default().push(seconds);
        } else if setup.family == model {
            priced.entry(key).or_default().push(seconds);
        }
    }
    priced
        .into_iter()
        .filter_map(|(key, m)| {
            let b = base.get(&key)?;
            let (setup, job) = key;
            Some(PairedJob {
                setup,
                job,
                model_seconds: mean(&m),
                base_seconds: mean(b),
            })
        })
        .collect()
}

/// Runs every fit and ratio on the timings.
pub fn calibrate(data: BenchData, opts: &Options) -> Calibration {
    // Timings grouped by setup, then job; repeated measurements of one job are averaged.
    let mut by_setup: BTreeMap<&Setup, Vec<&Timing>> = BTreeMap::new();
    let mut families: BTreeMap<String, usize> = BTreeMap::new();
    for t in &data.timings {
        by_setup.entry(&t.setup).or_default().push(t);
        *families.entry(t.setup.family.clone()).or_default() += 1;
    }

    let base_px = opts.baseline.pixels();
    let anchor_px = opts.anchor_pixels();
    let mut pixel_sweeps = Vec::new();
    let mut steps_sweeps = Vec::new();
    let mut anchor_ratios = Vec::new();
    for (setup, timings) in &by_setup {
        // Pixels at fixed steps (an unstated step count is one group of its own).
        let mut by_steps: BTreeMap<Option<u32>, Vec<&Timing>> = BTreeMap::new();
        for t in timings {
            by_steps.entry(t.steps).or_default().push(t);
        }
        for (steps, ts) in &by_steps {
            let pts: Vec<(f64, f64)> = ts.iter().map(|t| (t.pixels() as f64, t.seconds)).collect();
            let fit = least_squares(&pts);
            if let Some(fit) = &fit {
                pixel_sweeps.push(PixelSweep {
                    setup: (*setup).clone(),
                    steps: *steps,
                    linearity: Linearity::judge(fit, opts.min_r2),
                    fit: fit.clone(),
                });
            }
            let at = |px: u64| -> Vec<f64> {
                ts.iter()
                    .filter(|t| t.pixels() == px)
                    .map(|t| t.seconds)
                    .collect()
            };
            let (base, anchor) = (at(base_px), at(anchor_px));
            if setup.family == opts.baseline.family && !base.is_empty() && !anchor.is_empty() {
                let (b, a) = (mean(&base), mean(&anchor));
                anchor_ratios.push(AnchorRatio {
                    setup: (*setup).clone(),
                    steps: *steps,
                    base_seconds: b,
                    anchor_seconds: a,
                    ratio: a / b,
                    fitted_ratio: fit.map(|f| f.at(anchor_px as f64) / f.at(base_px as f64)),
                });
            }
        }
        // Steps at fixed size, where the steps are stated.
        let mut by_size: BTreeMap<(u32, u32), Vec<(f64, f64)>> = BTreeMap::new();
        for t in timings {
            if let Some(s) = t.steps {
                by_size
                    .entry((t.width, t.height))
                    .or_default()
                    .push((f64::from(s), t.seconds));
            }
        }
        for ((w, h), pts) in by_size {
            if let Some(fit) = least_squares(&pts) {
                let at_base = fit.at(f64::from(opts.baseline.steps));
                let offset_share = fit.intercept / at_base;
                let linearity = Linearity::judge(&fit, opts.min_r2);
                steps_sweeps.push(StepsSweep {
                    setup: (*setup).clone(),
                    width: w,
                    height: h,
                    proportional: linearity == Linearity::Linear
                        && offset_share.abs() <= opts.max_steps_offset,
                    offset_share,
                    linearity,
                    fit,
                });
            }
        }
    }

    // The model factor: the same setup but for the family, the same job.
    let model = opts.model().to_string();
    let jobs = data
        .timings
        .iter()
        .map(|t| (&t.setup, (t.width, t.height, t.steps), t.seconds));
    let factor_ratios: Vec<FactorRatio> = paired_means(jobs, &opts.baseline.family, &model)
        .into_iter()
        .map(|p| {
            let (width, height, steps) = p.job;
            FactorRatio {
                setup: p.setup,
                width,
                height,
                steps,
                model_seconds: p.model_seconds,
                base_seconds: p.base_seconds,
                ratio: p.model_seconds / p.base_seconds,
            }
        })
        .collect();

    let (anchor_ratio, anchor_devices) = aggregate_per(
        anchor_ratios
            .iter()
            .map(|r| (r.setup.device.as_str(), r.ratio)),
        opts.per,
        opts.method,
        opts.anchor_step,
    );
    let (model_factor, factor_devices) = aggregate_per(
        factor_ratios
            .iter()
            .map(|r| (r.setup.device.as_str(), r.ratio)),
        opts.per,
        opts.method,
        opts.factor_step,
    );
    Calibration {
        baseline: opts.baseline.clone(),
        anchor: opts.anchor,
        anchor_ratio,
        anchor_devices,
        model_factor,
        factor_devices,
        model,
        inputs: data.inputs,
        used: data.timings.len(),
        families,
        dropped: data.dropped,
        pixel_sweeps,
        steps_sweeps,
        anchor_ratios,
        factor_ratios,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(device: &str, family: &str, w: u32, steps: Option<u32>, seconds: f64) -> Timing {
        Timing {
            file: "t.csv".into(),
            line: 0,
            setup: Setup {
                device: device.into(),
                family: family.into(),
                engine: String::new(),
                precision: "fp16".into(),
                batch: 1,
                source: String::new(),
            },
            width: w,
            height: w,
            steps,
            seconds,
        }
    }

    #[test]
    fn repeats_are_averaged_and_unstated_steps_still_give_a_ratio() {
        let data = BenchData {
            timings: vec![
                // Two runs at 512² (mean 2.0), one at 1024²: ratio 6.
                timing("A", "sd15", 512, Some(20), 1.9),
                timing("A", "sd15", 512, Some(20), 2.1),
                timing("A", "sd15", 1024, Some(20), 12.0),
                // Steps unstated, but the same for both sizes: ratio 5.
                timing("B", "sd15", 512, None, 1.0),
                timing("B", "sd15", 1024, None, 5.0),
                // Not comparable: different steps at the two sizes.
                timing("C", "sd15", 512, Some(20), 1.0),
                timing("C", "sd15", 1024, Some(30), 9.0),
            ],
            ..BenchData::default()
        };
        let cal = calibrate(data, &Options::default());
        let ratios: Vec<(&str, f64)> = cal
            .anchor_ratios
            .iter()
            .map(|r| (r.setup.device.as_str(), r.ratio))
            .collect();
        assert_eq!(ratios.len(), 2, "{ratios:?}");
        assert!((ratios[0].1 - 6.0).abs() < 1e-12 && ratios[0].0 == "A");
        assert!((ratios[1].1 - 5.0).abs() < 1e-12 && ratios[1].0 == "B");
        // C's two step counts are at different sizes: no steps sweep either.
        assert!(cal.steps_sweeps.is_empty());
        assert_eq!(cal.anchor_ratio.unwrap().median, 5.5);
    }

    #[test]
    fn the_model_factor_pairs_only_the_same_setup_and_job() {
        let data = BenchData {
            timings: vec![
                timing("A", "sd15", 512, Some(20), 2.0),
                timing("A", "sdxl", 512, Some(20), 3.6),
                // Same device, different job: not a pair.
                timing("A", "sdxl", 1024, Some(20), 20.0),
                // Another device without sd15: not a pair.
                timing("B", "sdxl", 512, Some(20), 9.0),
            ],
            ..BenchData::default()
        };
        let opts = Options {
            model: Some("sdxl".into()),
            ..Options::default()
        };
        let cal = calibrate(data, &opts);
        assert_eq!(cal.factor_ratios.len(), 1);
        assert!((cal.factor_ratios[0].ratio - 1.8).abs() < 1e-12);
        assert_eq!(cal.model_factor.unwrap().rounded, 1.8);
    }

    #[test]
    fn baseline_and_size_parse() {
        let b: Baseline = "sd15:512x768@30".parse().unwrap();
        assert_eq!(
            (b.family.as_str(), b.width, b.height, b.steps),
            ("sd15", 512, 768, 30)
        );
        for bad in [
            "sd15",
            "sd15:512@20",
            ":512x512@20",
            "sd15:512x512@0",
            "sd15:0x512@20",
        ] {
            assert!(bad.parse::<Baseline>().is_err(), "{bad}");
        }
        assert_eq!(parse_size("1024X768"), Ok((1024, 768)));
        assert!(parse_size("1024").is_err());
    }
}
