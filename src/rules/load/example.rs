//! Example jobs inside a rule version: read here, checked against the formula by
//! [`validate`](crate::rules::validate).

use indexmap::IndexMap;
use toml::{Spanned, Value as TomlValue};

use super::{Sink, Site, span_of};
use crate::engine::model::{Example, InputSpec, JobKind, Value};
use crate::engine::points::Points;
use crate::rules::diagnostic::Code;
use crate::rules::schema::InputType;

type Table = IndexMap<String, Spanned<TomlValue>>;

/// The example, or `None` when the job kind is unknown or the example is malformed
/// (reported: its first problem).
pub(super) fn build(
    sink: &mut Sink,
    site: &Site,
    ex: &Spanned<Table>,
    kind: Option<&JobKind>,
) -> Option<Example> {
    let problem = match parse(ex.get_ref(), kind?) {
        Ok(example) => return Some(example),
        Err(problem) => problem,
    };
    let msg = format!("{}: example: {problem}", site.label);
    let help = Some(
        "an example lists every input of the job kind, `points`, and optionally `status = \"below_threshold\"`",
    );
    sink.error(Code::ExampleInvalid, site.path, span_of(ex), msg, help);
    None
}

fn parse(table: &Table, kind: &JobKind) -> Result<Example, String> {
    let points = points(table.get("points").map(Spanned::get_ref))?;
    let below_threshold = below_threshold(table.get("status").map(Spanned::get_ref))?;
    if let Some(key) = table.keys().find(|k| !is_known_key(kind, k)) {
        return Err(format!(
            "`{key}` is not an input of job kind `{}`",
            kind.name
        ));
    }
    let inputs = (kind.inputs.iter())
        .map(|spec| input(table, spec))
        .collect::<Result<_, _>>()?;
    Ok(Example {
        inputs,
        points,
        below_threshold,
    })
}

fn points(value: Option<&TomlValue>) -> Result<Points, String> {
    match value {
        Some(TomlValue::Integer(i)) if *i >= 0 => {
            Ok(Points::from_micros(i.saturating_mul(1_000_000)))
        }
        Some(TomlValue::Float(f)) => Points::from_f64(*f).map_err(|e| format!("`points`: {e}")),
        Some(TomlValue::String(s)) => s.parse::<Points>().map_err(|e| e.to_string()),
        Some(other) => Err(format!("`points` must be a number, got {other}")),
        None => Err("missing `points`".into()),
    }
}

fn below_threshold(status: Option<&TomlValue>) -> Result<bool, String> {
    match status {
        None => Ok(false),
        Some(TomlValue::String(s)) if s == "ok" => Ok(false),
        Some(TomlValue::String(s)) if s == "below_threshold" => Ok(true),
        Some(other) => Err(format!(
            "`status` must be \"ok\" or \"below_threshold\", got {other}"
        )),
    }
}

fn is_known_key(kind: &JobKind, key: &str) -> bool {
    key == "points" || key == "status" || kind.inputs.iter().any(|i| i.name == key)
}

fn input(table: &Table, spec: &InputSpec) -> Result<(String, Value), String> {
    let value = match table.get(&spec.name).map(Spanned::get_ref) {
        Some(TomlValue::Integer(i)) => Value::Int(*i),
        Some(TomlValue::Float(f)) if spec.ty == InputType::Float => Value::Float(*f),
        Some(other) => {
            return Err(format!(
                "input `{}` must be a number of type {:?}, got {other}",
                spec.name, spec.ty
            ));
        }
        None => return Err(format!("missing input `{}`", spec.name)),
    };
    Ok((spec.name.clone(), value))
}
