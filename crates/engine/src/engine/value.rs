//! The numbers formulas compute with: rhai's `i64` and `f64`.

use rhai::Dynamic;

/// A value of a job input or derived value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
}

/// The bits of [`Value::ABSENT`]: a quiet NaN with a payload no arithmetic produces.
const ABSENT_BITS: u64 = 0x7ff8_0000_0000_0abe;

impl Value {
    /// An optional input that the job leaves out (and that has no default). Only ever in an
    /// input's slot: a present float input is finite, and no expression can read the slot.
    pub const ABSENT: Value = Value::Float(f64::from_bits(ABSENT_BITS));

    pub fn is_absent(self) -> bool {
        matches!(self, Value::Float(f) if f.to_bits() == ABSENT_BITS)
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
        }
    }

    pub fn to_dynamic(self) -> Dynamic {
        match self {
            Value::Int(i) => Dynamic::from_int(i),
            Value::Float(f) => Dynamic::from_float(f),
        }
    }

    /// Converts a rhai result; `None` for anything but a number.
    pub fn from_dynamic(d: &Dynamic) -> Option<Value> {
        if let Ok(i) = d.as_int() {
            Some(Value::Int(i))
        } else {
            d.as_float().ok().map(Value::Float)
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            _ if self.is_absent() => f.write_str("(absent)"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            _ if self.is_absent() => s.serialize_none(),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) => s.serialize_f64(*x),
        }
    }
}
