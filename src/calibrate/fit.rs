//! Least-squares lines and the summaries the seed used: ratios at anchors, aggregated across
//! devices with a rounding step.

use serde::Serialize;

/// `y = intercept + slope · x`, fitted by ordinary least squares.
#[derive(Debug, Clone, Serialize)]
pub struct LineFit {
    pub slope: f64,
    pub intercept: f64,
    /// Coefficient of determination; 1 when every point is on the line.
    pub r2: f64,
    /// Number of points (repeated measurements count each).
    pub n: usize,
    /// Number of distinct x values: with two, any line fits and R² says nothing.
    pub distinct_x: usize,
    pub points: Vec<FitPoint>,
}

/// A measured point with its fitted value.
#[derive(Debug, Clone, Serialize)]
pub struct FitPoint {
    pub x: f64,
    pub y: f64,
    pub fitted: f64,
    pub residual: f64,
}

impl LineFit {
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }

    /// The largest |residual| relative to its measured value.
    pub fn max_relative_residual(&self) -> f64 {
        self.points
            .iter()
            .map(|p| (p.residual / p.y).abs())
            .fold(0.0, f64::max)
    }
}

/// Fits a line; `None` with fewer than two distinct x values (no slope to find).
pub fn least_squares(points: &[(f64, f64)]) -> Option<LineFit> {
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let fitted: Vec<FitPoint> = points
        .iter()
        .map(|&(x, y)| {
            let f = intercept + slope * x;
            FitPoint {
                x,
                y,
                fitted: f,
                residual: y - f,
            }
        })
        .collect();
    let ss_res: f64 = fitted.iter().map(|p| p.residual.powi(2)).sum();
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    // Relative to the data's scale, so rounding noise on an exact line still gives R² = 1.
    let r2 = if ss_tot <= f64::EPSILON * mean_y * mean_y {
        1.0
    } else {
        (1.0 - ss_res / ss_tot).clamp(f64::MIN, 1.0)
    };
    Some(LineFit {
        slope,
        intercept,
        r2,
        n: points.len(),
        distinct_x: xs.len(),
        points: fitted,
    })
}

/// `y = intercept + a · x1 + b · x2`, fitted by ordinary least squares.
#[derive(Debug, Clone, Serialize)]
pub struct PlaneFit {
    pub intercept: f64,
    pub a: f64,
    pub b: f64,
    pub r2: f64,
    pub n: usize,
}

/// Fits a plane; `None` when the points do not pin one down (fewer than three, or all
/// (x1, x2) on one line).
pub fn least_squares_plane(points: &[(f64, f64, f64)]) -> Option<PlaneFit> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let m1 = points.iter().map(|p| p.0).sum::<f64>() / n;
    let m2 = points.iter().map(|p| p.1).sum::<f64>() / n;
    let my = points.iter().map(|p| p.2).sum::<f64>() / n;
    // Centred normal equations: [s11 s12; s12 s22] [a; b] = [s1y; s2y].
    let (mut s11, mut s12, mut s22, mut s1y, mut s2y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x1, x2, y) in points {
        let (d1, d2, dy) = (x1 - m1, x2 - m2, y - my);
        s11 += d1 * d1;
        s12 += d1 * d2;
        s22 += d2 * d2;
        s1y += d1 * dy;
        s2y += d2 * dy;
    }
    let det = s11 * s22 - s12 * s12;
    // Relative test: collinear (x1, x2) leave det at rounding noise of s11 · s22.
    if det.is_nan() || det.abs() <= 1e-9 * s11 * s22 {
        return None;
    }
    let a = (s1y * s22 - s2y * s12) / det;
    let b = (s2y * s11 - s1y * s12) / det;
    let intercept = my - a * m1 - b * m2;
    let ss_res: f64 = points
        .iter()
        .map(|&(x1, x2, y)| (y - intercept - a * x1 - b * x2).powi(2))
        .sum();
    let ss_tot: f64 = points.iter().map(|p| (p.2 - my).powi(2)).sum();
    let r2 = if ss_tot <= f64::EPSILON * my * my {
        1.0
    } else {
        1.0 - ss_res / ss_tot
    };
    Some(PlaneFit {
        intercept,
        a,
        b,
        r2,
        n: points.len(),
    })
}

/// Whether a linear law holds for one sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Linearity {
    /// At least three distinct x and R² at or above the threshold.
    Linear,
    /// At least three distinct x and R² below the threshold.
    NotLinear,
    /// Only two distinct x: a line always fits, so the data cannot tell.
    Undetermined,
}

impl Linearity {
    pub fn judge(fit: &LineFit, min_r2: f64) -> Linearity {
        if fit.distinct_x < 3 {
            Linearity::Undetermined
        } else if fit.r2 >= min_r2 {
            Linearity::Linear
        } else {
            Linearity::NotLinear
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Linearity::Linear => "linear",
            Linearity::NotLinear => "not linear",
            Linearity::Undetermined => "undetermined (2 values)",
        }
    }
}

/// How many observations become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The middle observation (mean of the two middle ones for an even count).
    Median,
    /// The arithmetic mean.
    Mean,
    /// Halfway between the smallest and the largest.
    Midrange,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Median => "median",
            Method::Mean => "mean",
            Method::Midrange => "midrange",
        }
    }
}

/// What one observation of an aggregate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    /// One value per device: the median of its setups' ratios (the seed: one per GPU).
    Device,
    /// Every setup's ratio counts (engines on one device count several times).
    Setup,
}

impl Per {
    /// `3 devices`, `1 setup`.
    pub fn count(self, n: usize) -> String {
        let unit = match self {
            Per::Device => "device",
            Per::Setup => "setup",
        };
        format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

/// One device's value when aggregating per device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceValue {
    pub device: String,
    /// The median of the device's ratios.
    pub value: f64,
    pub ratios: usize,
}

/// Groups `(device, ratio)` observations by device, in device order.
pub fn per_device<'a>(obs: impl IntoIterator<Item = (&'a str, f64)>) -> Vec<DeviceValue> {
    let mut by: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for (d, r) in obs {
        by.entry(d).or_default().push(r);
    }
    by.into_iter()
        .map(|(device, rs)| DeviceValue {
            device: device.to_string(),
            value: aggregate(&rs, Method::Median, 1.0).map_or(f64::NAN, |a| a.median),
            ratios: rs.len(),
        })
        .collect()
}

/// Aggregates per setup or per device; the device values are returned for the report.
pub fn aggregate_per<'a>(
    obs: impl IntoIterator<Item = (&'a str, f64)> + Clone,
    per: Per,
    method: Method,
    step: f64,
) -> (Option<Aggregate>, Vec<DeviceValue>) {
    let devices = per_device(obs.clone());
    let values: Vec<f64> = match per {
        Per::Device => devices.iter().map(|d| d.value).collect(),
        Per::Setup => obs.into_iter().map(|(_, r)| r).collect(),
    };
    let agg = aggregate(&values, method, step).map(|a| Aggregate { per, ..a });
    (agg, devices)
}

/// Observations summarised, and the one number chosen.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    /// What one observation is.
    pub per: Per,
    pub n: usize,
    pub min: f64,
    pub max: f64,
    pub median: f64,
    pub mean: f64,
    pub midrange: f64,
    pub method: Method,
    /// The value of `method`.
    pub value: f64,
    /// The rounding step.
    pub step: f64,
    /// `value` rounded to the nearest multiple of `step` (halves away from zero).
    pub rounded: f64,
}

/// Summarises observations; `None` when there are none.
pub fn aggregate(values: &[f64], method: Method, step: f64) -> Option<Aggregate> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let mean = v.iter().sum::<f64>() / n as f64;
    let (min, max) = (v[0], v[n - 1]);
    let midrange = (min + max) / 2.0;
    let value = match method {
        Method::Median => median,
        Method::Mean => mean,
        Method::Midrange => midrange,
    };
    Some(Aggregate {
        per: Per::Setup,
        n,
        min,
        max,
        median,
        mean,
        midrange,
        method,
        value,
        step,
        rounded: round_to_step(value, step),
    })
}

/// Rounds to the nearest multiple of `step`, then to 6 decimals so `0.1` steps print cleanly.
pub fn round_to_step(x: f64, step: f64) -> f64 {
    let r = (x / step).round() * step;
    (r * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_is_recovered() {
        let fit = least_squares(&[(1.0, 3.0), (2.0, 5.0), (4.0, 9.0)]).unwrap();
        assert!((fit.slope - 2.0).abs() < 1e-12);
        assert!((fit.intercept - 1.0).abs() < 1e-12);
        assert_eq!(fit.r2, 1.0);
        assert_eq!(Linearity::judge(&fit, 0.99), Linearity::Linear);
    }

    #[test]
    fn curved_data_is_not_linear() {
        let pts: Vec<(f64, f64)> = (1..=5).map(|x| (x as f64, (x * x * x) as f64)).collect();
        let fit = least_squares(&pts).unwrap();
        assert!(fit.r2 < 0.99, "r2 = {}", fit.r2);
        assert_eq!(Linearity::judge(&fit, 0.99), Linearity::NotLinear);
    }

    #[test]
    fn two_values_cannot_judge_and_one_cannot_fit() {
        let fit = least_squares(&[(1.0, 1.0), (2.0, 7.0), (2.0, 7.0)]).unwrap();
        assert_eq!(Linearity::judge(&fit, 0.99), Linearity::Undetermined);
        assert!(least_squares(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
    }

    #[test]
    fn aggregation_matches_the_seed() {
        // 4060 Ti, 2080 Ti, 3090 Ti: every method lands on 6 with a step of 0.5 or 1.
        let ratios = [5.85, 6.92, 5.41];
        for method in [Method::Median, Method::Mean, Method::Midrange] {
            for step in [0.5, 1.0] {
                let a = aggregate(&ratios, method, step).unwrap();
                assert_eq!(a.rounded, 6.0, "{method:?} step {step}");
            }
        }
        let a = aggregate(&ratios, Method::Midrange, 0.01).unwrap();
        assert_eq!(a.rounded, 6.17);
        assert_eq!((a.min, a.max, a.median), (5.41, 6.92, 5.85));
        assert!(aggregate(&[], Method::Median, 1.0).is_none());
    }

    #[test]
    fn a_plane_is_recovered_and_a_line_of_points_is_refused() {
        // t = 0.5 + 0.001 · input + 0.003 · output
        let pts: Vec<(f64, f64, f64)> = [
            (1000.0, 0.0),
            (500.0, 500.0),
            (2000.0, 1000.0),
            (0.0, 800.0),
        ]
        .iter()
        .map(|&(i, o)| (i, o, 0.5 + 0.001 * i + 0.003 * o))
        .collect();
        let p = least_squares_plane(&pts).unwrap();
        assert!(
            (p.a - 0.001).abs() < 1e-12 && (p.b - 0.003).abs() < 1e-12,
            "{p:?}"
        );
        assert!((p.intercept - 0.5).abs() < 1e-9);
        assert!((p.r2 - 1.0).abs() < 1e-12);
        // Output always twice the input: input and output cannot be told apart.
        let line: Vec<(f64, f64, f64)> = (1..5)
            .map(|k| (k as f64, 2.0 * k as f64, k as f64))
            .collect();
        assert!(least_squares_plane(&line).is_none());
    }

    #[test]
    fn even_count_median_is_the_middle_mean() {
        let a = aggregate(&[4.0, 1.0, 3.0, 2.0], Method::Median, 0.1).unwrap();
        assert_eq!(a.median, 2.5);
    }
}
