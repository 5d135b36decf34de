//! Interval arithmetic over compiled programs: the range of every value a formula or derived
//! value can take when each variable lies in a range, so that `check` can prove a property for
//! every job at once instead of sampling some (`rules::prove`).
//!
//! Soundness. Integer ranges are exact `i128` bounds: every `i64` operation of a program is
//! computed on them without overflow, and a result that may leave `i64` is a [`Hazard`] (rhai
//! fails there). Float ranges are computed with the same IEEE-754 operations, in the same
//! rounding, as the program itself: a correctly rounded `+ - * /` is monotone in each operand
//! (when the divisor keeps its sign), so the rounded results at the range's corners bound the
//! rounded result at every point inside. `i64 as f64` is monotone too. No outward rounding is
//! needed because what is bounded is the program's own floating-point result, not the real
//! number it approximates; the unit tests check it on random points.

use super::program::{Op, Program};
use super::value::Value;

/// The values one variable may hold: a closed range, never empty. Float bounds are finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// Every integer `lo..=hi` (within `i64`).
    Int { lo: i128, hi: i128 },
    /// Every float `lo..=hi`.
    Float { lo: f64, hi: f64 },
}

/// Why a program may fail, or give a value no job can be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hazard {
    /// A `/` or `%` whose divisor may be zero (rhai's error for integers, infinity or NaN for
    /// floats).
    DivideByZero,
    /// Integer arithmetic that may leave `i64` (rhai's overflow error), or float arithmetic
    /// that may give infinity or NaN.
    Overflow,
}

/// A hazard and the instruction (index into the program) where it may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub hazard: Hazard,
    pub op: usize,
}

const I64_MIN: i128 = i64::MIN as i128;
const I64_MAX: i128 = i64::MAX as i128;

impl Range {
    /// The single value `v` (an absent input reads as 0: no program can read it).
    pub fn point(v: Value) -> Range {
        match v {
            _ if v.is_absent() => Range::Float { lo: 0.0, hi: 0.0 },
            Value::Int(i) => Range::Int {
                lo: i as i128,
                hi: i as i128,
            },
            Value::Float(f) => Range::Float { lo: f, hi: f },
        }
    }

    pub fn lo_f64(self) -> f64 {
        self.as_float().0
    }

    pub fn hi_f64(self) -> f64 {
        self.as_float().1
    }

    /// Whether it holds one value only.
    pub fn is_point(self) -> bool {
        match self {
            Range::Int { lo, hi } => lo == hi,
            Range::Float { lo, hi } => lo == hi,
        }
    }

    /// Whether `v` lies in it.
    pub fn contains(self, v: Value) -> bool {
        match (self, v) {
            (Range::Int { lo, hi }, Value::Int(i)) => lo <= i as i128 && i as i128 <= hi,
            (Range::Float { lo, hi }, Value::Float(f)) => lo <= f && f <= hi,
            _ => false,
        }
    }

    /// The bounds as floats, as rhai converts an integer operand (`as f64`, monotone).
    fn as_float(self) -> (f64, f64) {
        match self {
            Range::Int { lo, hi } => (lo as i64 as f64, hi as i64 as f64),
            Range::Float { lo, hi } => (lo, hi),
        }
    }

    /// The values `v` with `v.as_f64() >= min` (a threshold), or `None` when there are none.
    pub fn at_least(self, min: f64) -> Option<Range> {
        match self {
            Range::Int { lo, hi } => {
                if (hi as i64 as f64) < min {
                    return None;
                }
                // Below 2^53 every integer is a float, so `ceil` is exact; above, leave the
                // range as it is (wider is still sound).
                let lo = if min.abs() < 9.0e15 {
                    lo.max(min.ceil() as i128)
                } else {
                    lo
                };
                Some(Range::Int { lo, hi })
            }
            Range::Float { lo, hi } => {
                let lo = lo.max(min);
                (lo <= hi).then_some(Range::Float { lo, hi })
            }
        }
    }

    /// The values `v` with `v.as_f64() <= max` (a ceiling), or `None` when there are none.
    pub fn at_most(self, max: f64) -> Option<Range> {
        match self {
            Range::Int { lo, hi } => {
                if (lo as i64 as f64) > max {
                    return None;
                }
                let hi = if max.abs() < 9.0e15 {
                    hi.min(max.floor() as i128)
                } else {
                    hi
                };
                Some(Range::Int { lo, hi })
            }
            Range::Float { lo, hi } => {
                let hi = hi.min(max);
                (lo <= hi).then_some(Range::Float { lo, hi })
            }
        }
    }

    /// The range of `f(v)` for a monotone non-decreasing `f`: `f` at the two bounds.
    pub fn map_monotone(self, f: impl Fn(Value) -> Value) -> Range {
        let (lo, hi) = match self {
            Range::Int { lo, hi } => (
                f(Value::Int(lo as i64)).into_exact(),
                f(Value::Int(hi as i64)).into_exact(),
            ),
            Range::Float { lo, hi } => (
                Exact::Float(f(Value::Float(lo)).as_f64()),
                Exact::Float(f(Value::Float(hi)).as_f64()),
            ),
        };
        match (lo, hi) {
            (Exact::Int(lo), Exact::Int(hi)) => Range::Int { lo, hi },
            (lo, hi) => Range::Float {
                lo: lo.to_f64(),
                hi: hi.to_f64(),
            },
        }
    }
}

/// A value with its integer kept exact.
enum Exact {
    Int(i128),
    Float(f64),
}

impl Exact {
    fn to_f64(&self) -> f64 {
        match *self {
            Exact::Int(i) => i as i64 as f64,
            Exact::Float(f) => f,
        }
    }
}

trait AsExact {
    fn into_exact(self) -> Exact;
}

impl AsExact for Value {
    fn into_exact(self) -> Exact {
        match self {
            Value::Int(i) => Exact::Int(i as i128),
            Value::Float(f) => Exact::Float(f),
        }
    }
}

/// Runs `program` on ranges: `slots` are the ranges of the variables it was compiled with, in
/// the same order. Returns a range holding every result the program gives for values in those
/// ranges, or the first instruction that may fail for some of them.
pub fn eval(program: &Program, slots: &[Range]) -> Result<Range, Failure> {
    let mut vars: Vec<Range> = slots.to_vec();
    vars.resize(slots.len() + program.locals(), Range::Int { lo: 0, hi: 0 });
    // Each stack entry remembers the variable it was loaded from, so that `x * x` is known to
    // be a square (never negative) rather than a product of two independent ranges.
    let mut stack: Vec<(Range, Option<u16>)> = Vec::new();
    for (at, op) in program.ops().iter().enumerate() {
        let fail = |hazard| Failure { hazard, op: at };
        match *op {
            Op::Int(i) => stack.push((Range::point(Value::Int(i)), None)),
            Op::Float(f) => {
                if !f.is_finite() {
                    return Err(fail(Hazard::Overflow));
                }
                stack.push((Range::Float { lo: f, hi: f }, None));
            }
            Op::Load(s) => stack.push((vars[s as usize], Some(s))),
            Op::Store(s) => vars[s as usize] = stack.pop().ok_or(fail(Hazard::Overflow))?.0,
            Op::Neg => {
                let (a, _) = stack.pop().ok_or(fail(Hazard::Overflow))?;
                let r = match a {
                    Range::Int { lo, hi } => int(-hi, -lo).ok_or(fail(Hazard::Overflow))?,
                    Range::Float { lo, hi } => Range::Float { lo: -hi, hi: -lo },
                };
                stack.push((r, None));
            }
            bin => {
                let (b, from_b) = stack.pop().ok_or(fail(Hazard::Overflow))?;
                let (a, from_a) = stack.pop().ok_or(fail(Hazard::Overflow))?;
                let square = bin == Op::Mul && from_a.is_some() && from_a == from_b;
                let r = if square {
                    square_of(a)
                } else {
                    binary(bin, a, b)
                }
                .map_err(fail)?;
                stack.push((r, None));
            }
        }
    }
    stack.pop().map(|(r, _)| r).ok_or(Failure {
        hazard: Hazard::Overflow,
        op: 0,
    })
}

/// An integer range, or `None` when it leaves `i64` (an overflow).
fn int(lo: i128, hi: i128) -> Option<Range> {
    (I64_MIN <= lo && hi <= I64_MAX).then_some(Range::Int { lo, hi })
}

fn float(lo: f64, hi: f64) -> Result<Range, Hazard> {
    if lo.is_finite() && hi.is_finite() {
        Ok(Range::Float { lo, hi })
    } else {
        Err(Hazard::Overflow)
    }
}

fn min_max<T: PartialOrd + Copy>(xs: [T; 4]) -> (T, T) {
    let mut lo = xs[0];
    let mut hi = xs[0];
    for &x in &xs[1..] {
        if x < lo {
            lo = x;
        }
        if x > hi {
            hi = x;
        }
    }
    (lo, hi)
}

fn square_of(a: Range) -> Result<Range, Hazard> {
    match a {
        Range::Int { lo, hi } => {
            let (small, big) = if lo >= 0 {
                (lo, hi)
            } else if hi <= 0 {
                (-hi, -lo)
            } else {
                (0, (-lo).max(hi))
            };
            int(small * small, big * big).ok_or(Hazard::Overflow)
        }
        Range::Float { lo, hi } => {
            let (small, big) = if lo >= 0.0 {
                (lo, hi)
            } else if hi <= 0.0 {
                (-hi, -lo)
            } else {
                (0.0, (-lo).max(hi))
            };
            float(small * small, big * big)
        }
    }
}

fn binary(op: Op, a: Range, b: Range) -> Result<Range, Hazard> {
    if let (Range::Int { lo: al, hi: ah }, Range::Int { lo: bl, hi: bh }) = (a, b) {
        let corners =
            |f: fn(i128, i128) -> i128| min_max([f(al, bl), f(al, bh), f(ah, bl), f(ah, bh)]);
        let (lo, hi) = match op {
            Op::Add => (al + bl, ah + bh),
            Op::Sub => (al - bh, ah - bl),
            Op::Mul => corners(|x, y| x * y),
            Op::Div | Op::Rem if bl <= 0 && 0 <= bh => return Err(Hazard::DivideByZero),
            // Truncating division is monotone in each operand while the divisor keeps its
            // sign: the extremes are at the corners. `i64::MIN / -1` leaves i64 (caught below).
            Op::Div => corners(|x, y| x / y),
            Op::Rem => {
                // `i64::MIN % -1` fails in rhai (checked_rem).
                if al == I64_MIN && bl <= -1 && -1 <= bh {
                    return Err(Hazard::Overflow);
                }
                let m = bl.abs().max(bh.abs()) - 1;
                let lo = if al >= 0 { 0 } else { al.max(-m) };
                let hi = if ah <= 0 { 0 } else { ah.min(m) };
                (lo, hi)
            }
            _ => return Err(Hazard::Overflow),
        };
        return int(lo, hi).ok_or(Hazard::Overflow);
    }
    let (al, ah) = a.as_float();
    let (bl, bh) = b.as_float();
    let corners = |f: fn(f64, f64) -> f64| min_max([f(al, bl), f(al, bh), f(ah, bl), f(ah, bh)]);
    let (lo, hi) = match op {
        Op::Add => (al + bl, ah + bh),
        Op::Sub => (al - bh, ah - bl),
        Op::Mul => corners(|x, y| x * y),
        Op::Div | Op::Rem if bl <= 0.0 && 0.0 <= bh => return Err(Hazard::DivideByZero),
        Op::Div => corners(|x, y| x / y),
        Op::Rem => {
            // fmod: the sign of the dividend, smaller in size than the divisor and than
            // the dividend.
            let m = bl.abs().max(bh.abs());
            let lo = if al >= 0.0 { 0.0 } else { al.max(-m) };
            let hi = if ah <= 0.0 { 0.0 } else { ah.min(m) };
            (lo, hi)
        }
        _ => return Err(Hazard::Overflow),
    };
    float(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges_of(values: &[Value], widths: &[f64]) -> Vec<Range> {
        values
            .iter()
            .zip(widths)
            .map(|(&v, &w)| match v {
                Value::Int(i) => {
                    let w = w as i128;
                    Range::Int {
                        lo: (i as i128 - w).max(I64_MIN),
                        hi: (i as i128 + w).min(I64_MAX),
                    }
                }
                Value::Float(f) => Range::Float {
                    lo: f - w,
                    hi: f + w,
                },
            })
            .collect()
    }

    const SOURCES: &[&str] = &[
        "a + b * c",
        "(a - b) / c",
        "a / b",
        "a % b",
        "a / 3.0 + b",
        "-a * 2 - -b",
        "let m = 1.0 + 5.0 * (a - 262144) / 786432.0;\nm * b / 20.0",
        "a * a - b",
        "let d = a - 37; 2500000.0 / (1 + d * d)",
        "a * b * c",
        "a - b - c",
        "a / b / c",
        "a % 7 + c % 2.5",
        "(a + 0.5) * (b - 0.25) / (c * c + 1.0)",
    ];

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-2000i64..2000).prop_map(Value::Int),
            (-1.0e6f64..1.0e6).prop_map(Value::Float),
            prop::sample::select(vec![0i64, 1, -1, 37, i64::MAX, i64::MIN]).prop_map(Value::Int),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The concrete result of every program at random points lies in the range computed
        /// over random ranges around them, and a concrete failure is always foreseen.
        #[test]
        fn concrete_results_lie_in_the_computed_range(
            which in 0..SOURCES.len(),
            values in prop::collection::vec(value(), 3),
            widths in prop::collection::vec(prop_oneof![Just(0.0f64), 0.0f64..50.0, 0.0f64..1.0e7], 3),
            offsets in prop::collection::vec(0.0f64..=1.0, 3),
        ) {
            let src = SOURCES[which];
            let program = Program::compile(src, &["a", "b", "c"]).expect("compiles");
            let ranges = ranges_of(&values, &widths);
            // A point inside each range (not only its centre).
            let inside: Vec<Value> = ranges
                .iter()
                .zip(&offsets)
                .map(|(r, &t)| match *r {
                    Range::Int { lo, hi } => {
                        Value::Int((lo + ((hi - lo) as f64 * t) as i128).clamp(lo, hi) as i64)
                    }
                    Range::Float { lo, hi } => Value::Float((lo + (hi - lo) * t).clamp(lo, hi)),
                })
                .collect();
            let mut slots = inside.clone();
            let concrete = program.eval(&mut slots, &mut Vec::new());
            match (eval(&program, &ranges), concrete) {
                (Ok(range), Ok(v)) => {
                    let ok = match (range, v) {
                        (Range::Float { .. }, Value::Float(f)) if !f.is_finite() => false,
                        (r, v) => r.contains(v),
                    };
                    prop_assert!(ok, "{src} at {inside:?}: {v:?} outside {range:?}");
                }
                (Ok(range), Err(_)) => {
                    prop_assert!(false, "{src} at {inside:?} fails, but the range is {range:?}")
                }
                (Err(_), _) => {}
            }
        }
    }

    #[test]
    fn a_divisor_that_reaches_zero_is_a_hazard_and_one_that_does_not_is_not() {
        let p = Program::compile("100 / (a - 37)", &["a"]).unwrap();
        let steps = |lo, hi| [Range::Int { lo, hi }];
        assert_eq!(
            eval(&p, &steps(20, 50)).unwrap_err().hazard,
            Hazard::DivideByZero
        );
        assert_eq!(
            eval(&p, &steps(38, 50)).unwrap(),
            Range::Int { lo: 7, hi: 100 }
        );
        let overflow = Program::compile("a + 1", &["a"]).unwrap();
        let top = [Range::Int {
            lo: I64_MIN,
            hi: I64_MAX,
        }];
        assert_eq!(eval(&overflow, &top).unwrap_err().hazard, Hazard::Overflow);
        let huge = Program::compile("a * 1.0e300 * 1.0e300", &["a"]).unwrap();
        assert_eq!(
            eval(&huge, &[Range::Float { lo: 0.0, hi: 1.0 }])
                .unwrap_err()
                .hazard,
            Hazard::Overflow
        );
    }

    #[test]
    fn a_square_is_never_negative() {
        let p = Program::compile("let d = a - 37; d * d", &["a"]).unwrap();
        assert_eq!(
            eval(&p, &[Range::Int { lo: 20, hi: 50 }]).unwrap(),
            Range::Int { lo: 0, hi: 289 }
        );
    }

    #[test]
    fn thresholds_and_ceilings_narrow_a_range() {
        let r = Range::Int { lo: 1, hi: 1000 };
        assert_eq!(r.at_least(19.5), Some(Range::Int { lo: 20, hi: 1000 }));
        assert_eq!(r.at_most(50.0), Some(Range::Int { lo: 1, hi: 50 }));
        assert_eq!(r.at_least(1000.5), None);
        let f = Range::Float {
            lo: 0.0,
            hi: 86400.0,
        };
        assert_eq!(f.at_most(18.0), Some(Range::Float { lo: 0.0, hi: 18.0 }));
    }
}
