//! The job as it ran: a job's requested inputs through the execution limits of its kind
//! (`[[jobs.KIND.execution_limits]]`). Validity bounds (`min`/`max` of an input) judge what was
//! requested; everything that prices (derived values, thresholds, ceilings, the formula) sees
//! what was executed. [`evaluate`](super::formula::evaluate) is the only caller, so scoring,
//! `check`'s examples and its grid see the same executed values.

use serde::Serialize;

use super::model::{ExecutionLimits, InputLimit, Value};
use super::time::utc_string;

/// One limited input of one job, for `--explain`: what was asked, what ran, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutedInput {
    pub name: String,
    pub requested: Value,
    pub executed: Value,
    /// The limits that changed the value, as written (`multiple_of 8`, `max 1024`); empty when
    /// it ran as requested.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clamped_by: Vec<String>,
}

/// Which execution limits applied to a job, for `--explain`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AppliedLimits {
    /// The job kind whose limits they are.
    pub kind: String,
    /// When the entry took effect (UTC).
    pub effective_from: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
    /// Line of the entry in kinds.toml.
    pub line: usize,
    /// Every limited input the job has (an absent optional input is not listed).
    pub inputs: Vec<ExecutedInput>,
}

impl InputLimit {
    /// What a worker runs for `requested`. An absent input stays absent.
    pub fn apply(&self, requested: Value) -> Value {
        self.clamp(requested).0
    }

    /// The executed value, and whether rounding and the cap each changed it.
    fn clamp(&self, requested: Value) -> (Value, bool, bool) {
        if requested.is_absent() {
            return (requested, false, false);
        }
        match requested {
            Value::Int(i) => {
                // The miner's `value - value % m`: Python's `%` takes the sign of `m`, as
                // `rem_euclid` does for a positive `m`.
                let rounded = match self.multiple_of {
                    Some(m) if m > 0 => i - i.rem_euclid(m),
                    _ => i,
                };
                match self.max {
                    // The loader keeps an integer input's cap an integer.
                    Some(max) if (rounded as f64) > max => {
                        (Value::Int(max as i64), rounded != i, true)
                    }
                    _ => (Value::Int(rounded), rounded != i, false),
                }
            }
            Value::Float(x) => match self.max {
                Some(max) if x > max => (Value::Float(max), false, true),
                _ => (requested, false, false),
            },
        }
    }

    /// The limits that turn `requested` into what ran, as rule files write them.
    fn clamped_by(&self, requested: Value) -> Vec<String> {
        let (_, rounded, capped) = self.clamp(requested);
        let mut why = Vec::new();
        if let (true, Some(m)) = (rounded, self.multiple_of) {
            why.push(format!("multiple_of {m}"));
        }
        if let (true, Some(max)) = (capped, self.max) {
            why.push(format!("max {max}"));
        }
        why
    }
}

impl ExecutionLimits {
    /// Clamps the limited inputs among `slots` (a job kind's inputs, in order) in place.
    /// Allocates nothing.
    pub fn apply(&self, slots: &mut [Value]) {
        for limit in &self.inputs {
            if let Some(v) = slots.get_mut(limit.slot) {
                *v = limit.apply(*v);
            }
        }
    }

    /// [`Self::apply`], recording what it did for `--explain`.
    pub fn apply_observed(&self, kind: &str, slots: &mut [Value]) -> AppliedLimits {
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for limit in &self.inputs {
            let Some(v) = slots.get_mut(limit.slot) else {
                continue;
            };
            let requested = *v;
            *v = limit.apply(requested);
            if !requested.is_absent() {
                inputs.push(ExecutedInput {
                    name: limit.name.clone(),
                    requested,
                    executed: *v,
                    clamped_by: limit.clamped_by(requested),
                });
            }
        }
        AppliedLimits {
            kind: kind.to_string(),
            effective_from: utc_string(self.effective_from),
            source: self.source.clone(),
            notes: self.notes.clone(),
            assumptions: self.assumptions.clone(),
            line: self.place.line,
            inputs,
        }
    }

    /// `width: multiple_of 8, max 1024; steps: max 50`, or `none` (an entry that lifts every
    /// limit).
    pub fn describe(&self) -> String {
        if self.inputs.is_empty() {
            return "none".to_string();
        }
        (self.inputs.iter())
            .map(|l| format!("{}: {}", l.name, l.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl InputLimit {
    /// `multiple_of 8, max 1024`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.multiple_of {
            parts.push(format!("multiple_of {m}"));
        }
        if let Some(max) = self.max {
            parts.push(format!("max {max}"));
        }
        if parts.is_empty() {
            "as requested".to_string()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(multiple_of: Option<i64>, max: Option<f64>) -> InputLimit {
        InputLimit {
            name: "width".into(),
            slot: 0,
            multiple_of,
            max,
        }
    }

    #[test]
    fn rounds_down_then_caps_as_the_miner_does() {
        let l = limit(Some(8), Some(1024.0));
        let run = |i| l.apply(Value::Int(i));
        assert_eq!(run(2048), Value::Int(1024));
        assert_eq!(run(1020), Value::Int(1016));
        assert_eq!(run(1027), Value::Int(1024));
        assert_eq!(run(1024), Value::Int(1024));
        assert_eq!(run(7), Value::Int(0));
        assert_eq!(run(-3), Value::Int(-8), "Python's -3 - (-3 % 8) is -8");
        assert_eq!(l.clamped_by(Value::Int(1020)), ["multiple_of 8"]);
        // 1027 rounds to 1024: the cap does not change it.
        assert_eq!(l.clamped_by(Value::Int(1027)), ["multiple_of 8"]);
        assert_eq!(l.clamped_by(Value::Int(2048)), ["max 1024"]);
        assert_eq!(
            l.clamped_by(Value::Int(2049)),
            ["multiple_of 8", "max 1024"]
        );
        assert!(l.clamped_by(Value::Int(1024)).is_empty());
    }

    #[test]
    fn floats_are_only_capped_and_absent_stays_absent() {
        let l = limit(None, Some(18.5));
        assert_eq!(l.apply(Value::Float(20.0)), Value::Float(18.5));
        assert_eq!(l.apply(Value::Float(3.25)), Value::Float(3.25));
        assert!(l.apply(Value::ABSENT).is_absent());
        assert_eq!(limit(None, None).apply(Value::Int(5)), Value::Int(5));
    }
}
