//! The calibration report a reviewer reads: what was used and dropped, every fit, the spread
//! behind each chosen number, and the proposal with what `check` says of it.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::calibrate::propose::{ProposeError, num};
use crate::calibrate::{Calibration, Dropped, InputSummary, Options, Proposal, Setup};

/// How many line numbers a drop reason lists before "…".
const LINES_SHOWN: usize = 12;

fn setup_line(s: &Setup) -> String {
    let mut out = format!("{} · {}", s.family, s.label());
    if !s.source.is_empty() {
        write!(out, "  [{}]", s.source).unwrap();
    }
    out
}

pub fn steps_text(steps: Option<u32>) -> String {
    match steps {
        None => "steps unstated".to_string(),
        Some(1) => "1 step".to_string(),
        Some(s) => format!("{s} steps"),
    }
}

fn signed(x: f64, decimals: usize) -> String {
    // Sign of the printed value, so rounding noise shows as `+ 0`, never `− 0`.
    let text = num(x.abs(), decimals);
    if x < 0.0 && text != "0" {
        format!("− {text}")
    } else {
        format!("+ {text}")
    }
}

/// Renders the report for people. `proposal` is what [`crate::calibrate::propose`] returned.
pub fn render_human(
    cal: &Calibration,
    opts: &Options,
    proposal: Result<&Proposal, &ProposeError>,
) -> String {
    let mut o = String::new();
    let b = &cal.baseline;
    writeln!(
        o,
        "Calibration of `{}` against the baseline job {} {}x{} at {} steps (= 1 point), anchor {}x{}",
        cal.model, b.family, b.width, b.height, b.steps, cal.anchor.0, cal.anchor.1
    )
    .unwrap();

    write_inputs(&mut o, &cal.inputs, &cal.families, &cal.dropped);

    writeln!(
        o,
        "\nSeconds vs pixels, per setup at fixed steps (linear: R² ≥ {} over 3+ sizes)",
        num(opts.min_r2, 4)
    )
    .unwrap();
    if cal.pixel_sweeps.is_empty() {
        writeln!(o, "  none: no setup has timings at two or more sizes").unwrap();
    }
    for s in &cal.pixel_sweeps {
        writeln!(o, "  {} · {}", setup_line(&s.setup), steps_text(s.steps)).unwrap();
        writeln!(
            o,
            "    t = {} s {} s/MP · MP   R² {}   {} sizes, {} timings   max residual {}%   {}",
            num(s.fit.intercept, 4),
            signed(s.fit.slope * 1e6, 4),
            num(s.fit.r2, 4),
            s.fit.distinct_x,
            s.fit.n,
            num(s.fit.max_relative_residual() * 100.0, 1),
            s.linearity.as_str()
        )
        .unwrap();
        let residuals: Vec<String> = s
            .fit
            .points
            .iter()
            .map(|p| {
                format!(
                    "{} MP: {} s ({} s)",
                    num(p.x / 1e6, 4),
                    num(p.y, 4),
                    signed(p.residual, 4)
                )
            })
            .collect();
        writeln!(o, "    residuals: {}", residuals.join(", ")).unwrap();
    }

    writeln!(
        o,
        "\nSeconds vs steps, per setup at fixed size (proportional: linear and |intercept| ≤ {}% of t({} steps))",
        num(opts.max_steps_offset * 100.0, 2),
        b.steps
    )
    .unwrap();
    if cal.steps_sweeps.is_empty() {
        writeln!(o, "  none: no setup has timings at two or more step counts").unwrap();
    }
    for s in &cal.steps_sweeps {
        writeln!(o, "  {} · {}x{}", setup_line(&s.setup), s.width, s.height).unwrap();
        writeln!(
            o,
            "    t = {} s {} s/step · steps   R² {}   {} step counts, {} timings   intercept {}% of t({})   {}{}",
            num(s.fit.intercept, 4),
            signed(s.fit.slope, 5),
            num(s.fit.r2, 4),
            s.fit.distinct_x,
            s.fit.n,
            num(s.offset_share * 100.0, 1),
            b.steps,
            s.linearity.as_str(),
            if s.proportional { ", proportional" } else { "" }
        )
        .unwrap();
    }
    let proportional = cal.steps_sweeps.iter().filter(|s| s.proportional).count();
    writeln!(
        o,
        "  steps: {proportional} of {} sweeps linear and proportional to steps",
        cal.steps_sweeps.len()
    )
    .unwrap();

    writeln!(
        o,
        "\nAnchor: t({}x{}) / t({}x{}) at equal steps, family `{}`",
        cal.anchor.0, cal.anchor.1, b.width, b.height, b.family
    )
    .unwrap();
    if cal.anchor_ratios.is_empty() {
        writeln!(o, "  none: no setup has both sizes at the same steps").unwrap();
    }
    for r in &cal.anchor_ratios {
        let fitted = r
            .fitted_ratio
            .map(|f| format!("   (line: {})", num(f, 3)))
            .unwrap_or_default();
        writeln!(
            o,
            "  {} · {}: {} s → {} s = {}{fitted}",
            setup_line(&r.setup),
            steps_text(r.steps),
            num(r.base_seconds, 4),
            num(r.anchor_seconds, 4),
            num(r.ratio, 3),
        )
        .unwrap();
    }
    if let Some(a) = &cal.anchor_ratio {
        write_aggregate(&mut o, a, &cal.anchor_devices);
    }

    if cal.model == b.family {
        writeln!(
            o,
            "\nModel factor: 1, `{}` is the baseline family (--model prices another)",
            cal.model
        )
        .unwrap();
    } else {
        writeln!(
            o,
            "\nModel factor: t(`{}`) / t(`{}`) on the same setup and job",
            cal.model, b.family
        )
        .unwrap();
        if cal.factor_ratios.is_empty() {
            writeln!(o, "  none: no setup timed both families on the same job").unwrap();
        }
        for r in &cal.factor_ratios {
            writeln!(
                o,
                "  {} · {}x{} · {}: {} s vs {} s = {}",
                r.setup.label(),
                r.width,
                r.height,
                steps_text(r.steps),
                num(r.model_seconds, 4),
                num(r.base_seconds, 4),
                num(r.ratio, 3)
            )
            .unwrap();
        }
        if let Some(f) = &cal.model_factor {
            write_aggregate(&mut o, f, &cal.factor_devices);
        }
    }

    writeln!(o).unwrap();
    match proposal {
        Err(e) => writeln!(o, "No proposal: {e}").unwrap(),
        Ok(p) => {
            writeln!(
                o,
                "Proposal: rule `{}` version {} from {}, {} {}",
                p.family,
                p.version,
                p.effective_from,
                if p.appended {
                    "appended to"
                } else {
                    "as a new file"
                },
                p.path
            )
            .unwrap();
            writeln!(
                o,
                "  points = m(pixels) × steps / {} × {}, m({}x{}) = 1, m({}x{}) = {}",
                b.steps,
                num(p.multiplier, 6),
                b.width,
                b.height,
                cal.anchor.0,
                cal.anchor.1,
                num(p.anchor_points.unwrap_or(f64::NAN), 6)
            )
            .unwrap();
            write_proposal_tail(&mut o, p);
        }
    }
    o
}

/// The spread of observations and the number chosen; `devices` is how many distinct devices
/// the observations come from (several setups of one device are not several GPUs).
pub(crate) fn write_aggregate(
    o: &mut String,
    a: &crate::calibrate::Aggregate,
    devices: &[crate::calibrate::DeviceValue],
) {
    use crate::calibrate::Per;
    let over = match a.per {
        Per::Device => {
            let each: Vec<String> = devices
                .iter()
                .map(|d| {
                    let of = if d.ratios == 1 {
                        String::new()
                    } else {
                        format!(" (median of {})", d.ratios)
                    };
                    format!("{} {}{of}", d.device, num(d.value, 3))
                })
                .collect();
            writeln!(o, "  per device: {}", each.join(", ")).unwrap();
            Per::Device.count(a.n)
        }
        Per::Setup => format!(
            "{} ({})",
            Per::Setup.count(a.n),
            Per::Device.count(devices.len())
        ),
    };
    writeln!(
        o,
        "  spread {}–{} over {over}: median {}, mean {}, midrange {}",
        num(a.min, 3),
        num(a.max, 3),
        num(a.median, 3),
        num(a.mean, 3),
        num(a.midrange, 3)
    )
    .unwrap();
    writeln!(
        o,
        "  chosen: {} {}, rounded to a step of {} → {}",
        a.method.as_str(),
        num(a.value, 3),
        num(a.step, 6),
        num(a.rounded, 6)
    )
    .unwrap();
}

/// Inputs, used timings by family, and every dropped row grouped by reason.
pub(crate) fn write_inputs(
    o: &mut String,
    inputs: &[InputSummary],
    families: &BTreeMap<String, usize>,
    dropped: &[Dropped],
) {
    writeln!(o, "\nInputs").unwrap();
    for i in inputs {
        writeln!(
            o,
            "  {}: {} rows, {} used, {} dropped (sha256 {}…)",
            i.name,
            i.rows,
            i.used,
            i.dropped,
            &i.sha256[..12]
        )
        .unwrap();
    }
    let fams: Vec<String> = families.iter().map(|(f, n)| format!("{f} {n}")).collect();
    writeln!(o, "  used timings by family: {}", fams.join(", ")).unwrap();

    writeln!(o, "\nDropped rows: {}", dropped.len()).unwrap();
    // With one input the file name would repeat on every line number.
    let one_file = inputs.len() == 1;
    // Reasons in order of first appearance, then the most frequent first.
    let mut by_reason: Vec<(&str, Vec<String>)> = Vec::new();
    for d in dropped {
        let at = if one_file {
            d.line.to_string()
        } else {
            format!("{}:{}", d.file, d.line)
        };
        match by_reason.iter_mut().find(|(r, _)| *r == d.reason) {
            Some((_, lines)) => lines.push(at),
            None => by_reason.push((d.reason.as_str(), vec![at])),
        }
    }
    let mut reasons = by_reason;
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1.len()));
    for (reason, lines) in reasons {
        let mut shown = lines
            .iter()
            .take(LINES_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if lines.len() > LINES_SHOWN {
            write!(shown, ", … {} more", lines.len() - LINES_SHOWN).unwrap();
        }
        let what = match (one_file, lines.len()) {
            (false, _) => "",
            (true, 1) => "line ",
            (true, _) => "lines ",
        };
        writeln!(o, "  {:>4}  {reason}: {what}{shown}", lines.len()).unwrap();
    }
}

/// What the proposal prices, what `check` says, and the version itself.
pub(crate) fn write_proposal_tail(o: &mut String, p: &Proposal) {
    if p.catalog_models == 0 {
        writeln!(
            o,
            "  note: no catalog model is in family `{}`, so the rule prices nothing until catalog.toml maps models to it (--rule-family names an existing family)",
            p.family
        )
        .unwrap();
    } else {
        writeln!(
            o,
            "  {} catalog models are in family `{}`",
            p.catalog_models, p.family
        )
        .unwrap();
    }
    if p.check.ok {
        writeln!(
            o,
            "  check: ok ({} warnings) with the proposal in place",
            p.check.warnings
        )
        .unwrap();
    } else {
        writeln!(
            o,
            "  check: FAILED ({} errors, {} warnings) with the proposal in place",
            p.check.errors, p.check.warnings
        )
        .unwrap();
    }
    for d in &p.check.diagnostics {
        for line in d.to_string().lines() {
            writeln!(o, "    {line}").unwrap();
        }
    }
    writeln!(o, "\n{}", p.version_toml.trim_end()).unwrap();
}
