//! The proposed rule version: what the calibration says, in the rule format, checked against
//! the rule set it is meant for.
//!
//! The Season 1 base formula interpolates linearly in pixels through m(512²) = 1 and
//! m(1024²) = 6 and multiplies by steps / 20. A proposal keeps that shape with the calibrated
//! anchor (reusing the shared `waifu_season1` formula when the anchor is 6) and the model
//! factor as its multiplier, so it can only say what the rule format can already say.

use jiff::civil::Date;
use serde::Serialize;

use crate::calibrate::{Aggregate, Calibration, InputSummary, Options};
use jobpoints::rules::diagnostic::Diagnostic;
use jobpoints::rules::files::RuleFiles;
use jobpoints::rules::load::load;

/// The shared formula the proposal reuses when the calibration lands on the Season 1 anchors.
const SEASON1_FORMULA: &str = "waifu_season1";

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error(
        "no setup of family `{family}` has timings at both {bw}x{bh} and {aw}x{ah} with the same steps, so there is no anchor ratio to propose"
    )]
    NoAnchor {
        family: String,
        bw: u32,
        bh: u32,
        aw: u32,
        ah: u32,
    },
    #[error(
        "no setup timed both `{model}` and `{base}` on the same job, so there is no model factor to propose"
    )]
    NoFactor { model: String, base: String },
    #[error("the anchor {aw}x{ah} must have more pixels than the baseline {bw}x{bh}")]
    AnchorNotAbove { bw: u32, bh: u32, aw: u32, ah: u32 },
    #[error("the rules in {origin} are invalid (run `jobpoints check`); cannot place a proposal")]
    RulesInvalid { origin: String },
}

/// A proposed rule version and the file it belongs in.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    /// The rule file, relative to the rules directory.
    pub path: String,
    /// The family rule the version belongs to.
    pub family: String,
    /// Whether the version is appended to an existing rule file (else the file is new).
    pub appended: bool,
    pub version: i64,
    pub effective_from: String,
    /// The rounded anchor ratio: points at the anchor size, baseline steps, multiplier 1
    /// (image rules only).
    pub anchor_points: Option<f64>,
    pub multiplier: f64,
    /// `formula = "waifu_season1"` or the inline expression.
    pub formula: String,
    /// The `[[version]]` table alone.
    pub version_toml: String,
    /// The whole rule file with the version in place: write it over `path`.
    pub file_toml: String,
    /// How many catalog models belong to the family (0: the rule prices nothing yet).
    pub catalog_models: usize,
    /// `jobpoints check` on the rule set with the proposal in place.
    pub check: ProposalCheck,
}

/// What `check` says about the rule set with the proposal in place.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalCheck {
    pub ok: bool,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<Diagnostic>,
}

/// A number as the report and the TOML print it: at most `decimals` places, no trailing zeros.
pub fn num(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A TOML float literal (always with a decimal point).
pub(crate) fn float_lit(x: f64) -> String {
    let s = num(x, 6);
    if s.contains('.') { s } else { format!("{s}.0") }
}

pub(crate) fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Builds the proposal for `family` (a family of the rule set in `files`) and checks it.
pub fn propose(
    cal: &Calibration,
    opts: &Options,
    files: &RuleFiles,
    family: &str,
    effective_from: Date,
) -> Result<Proposal, ProposeError> {
    if cal_anchor_pixels(cal) <= cal.baseline.pixels() as f64 {
        return Err(ProposeError::AnchorNotAbove {
            bw: cal.baseline.width,
            bh: cal.baseline.height,
            aw: cal.anchor.0,
            ah: cal.anchor.1,
        });
    }
    let Some(anchor) = &cal.anchor_ratio else {
        return Err(ProposeError::NoAnchor {
            family: cal.baseline.family.clone(),
            bw: cal.baseline.width,
            bh: cal.baseline.height,
            aw: cal.anchor.0,
            ah: cal.anchor.1,
        });
    };
    let Slot {
        rule_file,
        version,
        catalog_models,
    } = locate(files, family)?;

    let b = &cal.baseline;
    let (aw, ah) = cal.anchor;
    let a = anchor.rounded;
    let multiplier = match (&cal.model_factor, cal.model == b.family) {
        (_, true) => 1.0,
        (Some(f), false) => f.rounded,
        // A multiplier nobody measured would be an invented number.
        (None, false) => {
            return Err(ProposeError::NoFactor {
                model: cal.model.clone(),
                base: b.family.clone(),
            });
        }
    };
    let season1 = a == 6.0
        && (b.width, b.height, b.steps, aw, ah) == (512, 512, 20, 1024, 1024)
        && files
            .files
            .contains_key(&format!("formulas/{SEASON1_FORMULA}.rhai"));
    let (formula_line, formula) = if season1 {
        let line = format!("formula = {}", toml_str(SEASON1_FORMULA));
        (line.clone(), line)
    } else {
        let bp = b.pixels();
        let span = cal_anchor_pixels(cal) - bp as f64;
        let expr = format!(
            "let m = 1.0 + {} * (pixels - {bp}) / {};\nm * steps / {}",
            float_lit(a - 1.0),
            float_lit(span),
            float_lit(f64::from(b.steps)),
        );
        let line = format!(
            "# m({}x{}) = 1 and m({aw}x{ah}) = {}, linear in pixels; time ∝ steps.\nexpr = '''\n{expr}'''",
            b.width,
            b.height,
            num(a, 6)
        );
        (line, expr)
    };

    let source = source_text(cal, opts);
    let assumptions = assumptions(cal);
    let mut t = version_head(
        version,
        effective_from,
        &source,
        cal.used,
        cal.dropped.len(),
        &assumptions,
    );
    t.push_str(&formula_line);
    t.push('\n');
    t.push_str(&format!("multiplier = {}\n", float_lit(multiplier)));
    t.push_str(&format!(
        "min = {{ pixels = {}, steps = {} }}\n",
        b.pixels(),
        b.steps
    ));
    let points = |p: f64| num((p * multiplier * 1e6).round() / 1e6, 6);
    t.push_str("examples = [\n");
    t.push_str(&format!(
        "  {{ width = {}, height = {}, steps = {}, points = {} }},\n",
        b.width,
        b.height,
        b.steps,
        points(1.0)
    ));
    t.push_str(&format!(
        "  {{ width = {aw}, height = {ah}, steps = {}, points = {} }},\n",
        b.steps,
        points(a)
    ));
    t.push_str(&format!(
        "  {{ width = {}, height = {}, steps = {}, points = 0, status = \"below_threshold\" }},\n",
        b.width,
        b.height,
        b.steps - 1
    ));
    t.push_str("]\n");

    let placed = place(files, rule_file.as_deref(), family, "image", &t);
    Ok(Proposal {
        family: family.to_string(),
        version,
        effective_from: effective_from.to_string(),
        anchor_points: Some(a),
        multiplier,
        formula,
        version_toml: t,
        catalog_models,
        ..placed
    })
}

/// Where a family's next version goes.
pub(crate) struct Slot {
    /// The family's rule file, when the family already has a rule.
    pub rule_file: Option<String>,
    /// The next version number.
    pub version: i64,
    /// How many catalog models are in the family.
    pub catalog_models: usize,
}

/// Finds the [`Slot`] for `family` in the rule set of `files`, which must load.
pub(crate) fn locate(files: &RuleFiles, family: &str) -> Result<Slot, ProposeError> {
    let loaded = load(files.clone());
    let Some(rules) = loaded.ruleset.as_ref() else {
        return Err(ProposeError::RulesInvalid {
            origin: files.origin.to_string(),
        });
    };
    let existing = rules.family_rules.get(family);
    let version = existing
        .and_then(|r| r.versions.iter().map(|v| v.version).max())
        .map_or(1, |v| v + 1);
    let catalog_models = rules
        .catalog
        .values()
        .filter(|e| e.has_family(family))
        .count();
    Ok(Slot {
        rule_file: existing.map(|r| r.file.clone()),
        version,
        catalog_models,
    })
}

/// Appends the version to the family's rule file (or starts a new file) and checks the rule
/// set with it in place. The returned proposal's version fields are left for the caller.
pub(crate) fn place(
    files: &RuleFiles,
    rule_file: Option<&str>,
    family: &str,
    kind: &str,
    version_toml: &str,
) -> Proposal {
    let t = version_toml;
    let (path, file_toml) = match rule_file {
        Some(file) => {
            let old = files.text(file).unwrap_or("");
            let sep = if old.ends_with("\n\n") {
                ""
            } else if old.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            (file.to_string(), format!("{old}{sep}{t}"))
        }
        None => (
            format!("families/{family}.toml"),
            format!(
                "# Proposed by `jobpoints calibrate`.\n[rule]\nfamily = {}\nkind = {}\n\n{t}",
                toml_str(family),
                toml_str(kind)
            ),
        ),
    };
    let mut with = files.clone();
    with.files
        .insert(path.clone(), file_toml.clone().into_bytes());
    let checked = load(with);
    let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
    Proposal {
        path,
        family: family.to_string(),
        appended: rule_file.is_some(),
        version: 0,
        effective_from: String::new(),
        anchor_points: None,
        multiplier: 1.0,
        formula: String::new(),
        version_toml: t.to_string(),
        file_toml,
        catalog_models: 0,
        check: ProposalCheck {
            ok: errors == 0,
            errors,
            warnings: checked.diagnostics.len() - errors,
            diagnostics: checked.diagnostics,
        },
    }
}

fn cal_anchor_pixels(cal: &Calibration) -> f64 {
    f64::from(cal.anchor.0) * f64::from(cal.anchor.1)
}

/// Names the data and the method, so a reviewer can redo it.
fn source_text(cal: &Calibration, opts: &Options) -> String {
    let b = &cal.baseline;
    let mut s = calibrated_on(&cal.inputs);
    if let Some(a) = &cal.anchor_ratio {
        s.push_str(&format!(
            "; cost of {}x{} vs {}x{} at equal steps on `{}`: {}",
            cal.anchor.0,
            cal.anchor.1,
            b.width,
            b.height,
            b.family,
            how_chosen(a)
        ));
    }
    if cal.model != b.family {
        match &cal.model_factor {
            Some(f) => s.push_str(&format!(
                "; `{}` vs `{}` on the same setup and job: {}",
                cal.model,
                b.family,
                how_chosen(f)
            )),
            None => s.push_str(&format!(
                "; no model factor measured for `{}` vs `{}`",
                cal.model, b.family
            )),
        }
    }
    s.push_str(&format!("; linear if R² ≥ {}", num(opts.min_r2, 4)));
    s
}

/// The start of every proposal's `source`: the command and the inputs it read, with their
/// hashes, so a reviewer can redo it.
pub(crate) fn calibrated_on(inputs: &[InputSummary]) -> String {
    let files: Vec<String> = inputs
        .iter()
        .map(|i| format!("{} (sha256 {})", i.name, &i.sha256[..12]))
        .collect();
    format!("jobpoints calibrate on {}", files.join(", "))
}

/// How an aggregated number was chosen, for a `source`: method, spread and rounding.
pub(crate) fn how_chosen(a: &Aggregate) -> String {
    format!(
        "{} over {} ({}–{}) = {}, rounded to a step of {} → {}",
        a.method.as_str(),
        a.per.count(a.n),
        num(a.min, 2),
        num(a.max, 2),
        num(a.value, 3),
        num(a.step, 6),
        num(a.rounded, 6),
    )
}

/// The opening lines of a proposed `[[version]]` table, the same for every kind of rule:
/// version, date, source, notes and the assumptions (when there are any). The formula and
/// examples follow.
pub(crate) fn version_head(
    version: i64,
    effective_from: Date,
    source: &str,
    used: usize,
    dropped: usize,
    assumptions: &[String],
) -> String {
    let mut t = String::new();
    t.push_str("[[version]]\n");
    t.push_str(&format!("version = {version}\n"));
    t.push_str(&format!("effective_from = {effective_from}\n"));
    t.push_str(&format!("source = {}\n", toml_str(source)));
    t.push_str(&format!(
        "notes = {}\n",
        toml_str(&format!(
            "Proposed by `jobpoints calibrate`: {used} timings used, {dropped} rows dropped; see its report."
        ))
    ));
    if !assumptions.is_empty() {
        t.push_str("assumptions = [\n");
        for a in assumptions {
            t.push_str(&format!("  {},\n", toml_str(a)));
        }
        t.push_str("]\n");
    }
    t
}

/// What the proposal relies on that the data does not show.
fn assumptions(cal: &Calibration) -> Vec<String> {
    let b = &cal.baseline;
    let mut out = vec![format!(
        "Points grow linearly in pixels between {}x{} and {}x{} and continue linearly beyond; only the two anchors are calibrated.",
        b.width, b.height, cal.anchor.0, cal.anchor.1
    )];
    let sweeps = &cal.steps_sweeps;
    let proportional = sweeps.iter().filter(|s| s.proportional).count();
    if sweeps.is_empty() {
        out.push(format!(
            "Time is assumed proportional to steps (points × steps / {}): the data has no steps sweep to test it.",
            b.steps
        ));
    } else if proportional < sweeps.len() {
        out.push(format!(
            "Time is assumed proportional to steps (points × steps / {}), but only {proportional} of {} steps sweeps support it.",
            b.steps,
            sweeps.len()
        ));
    }
    if cal.anchor_ratios.iter().any(|r| r.steps.is_none()) {
        out.push(
            "Some anchor ratios come from sources that do not state the step count; both timings of each ratio share their setup and that count.".to_string(),
        );
    }
    out
}
