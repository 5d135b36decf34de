//! Exact point amounts.
//!
//! Formulas compute in IEEE-754 binary64; the result is rounded once, half to even on its
//! exact binary value, to 6 fractional digits and stored as integer micro-points. Every
//! later step (sums, tallies, diffs) is integer arithmetic, so totals are exact and do not
//! depend on order or thread count.

use std::fmt;
use std::ops::{Add, AddAssign};
use std::str::FromStr;

/// Micro-points in one point.
pub const SCALE: i64 = 1_000_000;

/// The largest number of points one job may earn; anything above is a formula bug.
pub const MAX_POINTS_PER_JOB: f64 = 1.0e9;

/// A non-negative number of points with exactly 6 fractional digits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Points(i64);

/// Why a formula's raw value cannot become [`Points`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointsError {
    #[error("formula returned NaN")]
    NaN,
    #[error("formula returned an infinite value")]
    Infinite,
    #[error("formula returned a negative value `{0}`")]
    Negative(f64),
    #[error("formula returned `{0}`, above the per-job ceiling of 1000000000 points")]
    TooLarge(f64),
}

impl Points {
    pub const ZERO: Points = Points(0);

    /// Builds points from micro-points.
    pub fn from_micros(micros: i64) -> Self {
        Points(micros)
    }

    /// The amount in micro-points.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Rounds a formula result to 6 decimals, half to even, on the exact binary value of `x`.
    pub fn from_f64(x: f64) -> Result<Self, PointsError> {
        if x.is_nan() {
            return Err(PointsError::NaN);
        }
        if x.is_infinite() {
            return Err(PointsError::Infinite);
        }
        if x < 0.0 {
            return Err(PointsError::Negative(x));
        }
        if x > MAX_POINTS_PER_JOB {
            return Err(PointsError::TooLarge(x));
        }
        Ok(Points(round_micros(x)))
    }

    /// The value as a float (for display and statistics, never for sums).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }
}

/// `x * 10^6` rounded half to even, computed exactly from the bits of `x` (0 <= x <= 1e9).
fn round_micros(x: f64) -> i64 {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = (bits & ((1u64 << 52) - 1)) as i128;
    let (mantissa, exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1i128 << 52), biased - 1075)
    };
    let scaled = mantissa * SCALE as i128;
    let value = if exponent >= 0 {
        scaled << exponent
    } else {
        let shift = -exponent;
        if shift >= 120 {
            0
        } else {
            let quotient = scaled >> shift;
            let remainder = scaled - (quotient << shift);
            let half = 1i128 << (shift - 1);
            if remainder > half || (remainder == half && quotient & 1 == 1) {
                quotient + 1
            } else {
                quotient
            }
        }
    };
    value as i64
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0 as i128)
    }
}

fn write_fixed(f: &mut impl fmt::Write, micros: i128) -> fmt::Result {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let scale = SCALE as u128;
    write!(f, "{sign}{}.{:06}", abs / scale, abs % scale)
}

/// Error for a decimal string that is not a valid point amount.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "`{0}` is not a point amount (expected a non-negative decimal with at most 6 fractional digits)"
)]
pub struct ParsePointsError(pub String);

impl FromStr for Points {
    type Err = ParsePointsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePointsError(s.to_string());
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let int: i64 = int.parse().map_err(|_| err())?;
        let mut frac_micros: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            frac_micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
        }
        int.checked_mul(SCALE)
            .and_then(|v| v.checked_add(frac_micros))
            .map(Points)
            .ok_or_else(err)
    }
}

impl serde::Serialize for Points {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A JSON number with exactly six decimals: exact for auditors, a plain number for everyone else.
        let raw = serde_json::value::RawValue::from_string(self.to_string())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// An exact sum of points; wide enough that no ledger can overflow it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PointsSum(i128);

impl PointsSum {
    pub fn micros(self) -> i128 {
        self.0
    }

    pub fn from_micros(micros: i128) -> Self {
        PointsSum(micros)
    }
}

impl Add<Points> for PointsSum {
    type Output = PointsSum;
    fn add(self, rhs: Points) -> PointsSum {
        PointsSum(self.0 + rhs.0 as i128)
    }
}

impl AddAssign<Points> for PointsSum {
    fn add_assign(&mut self, rhs: Points) {
        self.0 += rhs.0 as i128;
    }
}

impl AddAssign for PointsSum {
    fn add_assign(&mut self, rhs: PointsSum) {
        self.0 += rhs.0;
    }
}

impl fmt::Display for PointsSum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0)
    }
}

impl serde::Serialize for PointsSum {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.to_string())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_to_even_on_exact_binary_value() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.000000"),
            (1.8, "1.800000"),
            (6.0, "6.000000"),
            (0.0, "0.000000"),
            (1.0 / 3.0, "0.333333"),
            (2.0 / 3.0, "0.666667"),
            // 0.0000005 is slightly below the tie in binary, so it rounds down.
            (0.0000005, "0.000000"),
            // Exact binary ties: 2^-21 = 0.000000476837158203125 (no tie), 0.5e-6 not exact.
            (0.0000015, "0.000002"),
            (123456.789, "123456.789000"),
            (1e9, "1000000000.000000"),
            (5e-324, "0.000000"),
        ];
        for &(x, want) in cases {
            assert_eq!(Points::from_f64(x).unwrap().to_string(), want, "x = {x:e}");
        }
    }

    #[test]
    fn exact_ties_go_to_even() {
        // 2^-7 * 10^6 = 7812.5 exactly: a true tie, which goes to the even neighbour.
        assert_eq!(Points::from_f64(0.0078125).unwrap().micros(), 7812);
        // 3 * 2^-7 * 10^6 = 23437.5 exactly: rounds up to the even 23438.
        assert_eq!(Points::from_f64(0.0234375).unwrap().micros(), 23438);
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(Points::from_f64(f64::NAN), Err(PointsError::NaN));
        assert_eq!(Points::from_f64(f64::INFINITY), Err(PointsError::Infinite));
        assert!(matches!(
            Points::from_f64(-0.1),
            Err(PointsError::Negative(_))
        ));
        assert!(matches!(
            Points::from_f64(2e9),
            Err(PointsError::TooLarge(_))
        ));
        assert_eq!(Points::from_f64(-0.0).unwrap(), Points::ZERO);
    }

    #[test]
    fn parses_and_prints() {
        for s in ["0", "1", "1.8", "0.000001", "123.456789"] {
            let p: Points = s.parse().unwrap();
            assert_eq!(p.to_f64(), s.parse::<f64>().unwrap());
        }
        assert!("1.2345678".parse::<Points>().is_err());
        assert!("-1".parse::<Points>().is_err());
        assert!("abc".parse::<Points>().is_err());
        assert_eq!("1.8".parse::<Points>().unwrap().to_string(), "1.800000");
    }

    #[test]
    fn sums_are_exact() {
        let mut sum = PointsSum::default();
        for _ in 0..10 {
            sum += Points::from_f64(0.1).unwrap();
        }
        assert_eq!(sum.to_string(), "1.000000");
    }
}
