//! Example jobs inside a rule version: read here, checked against the version by
//! [`validate`](crate::rules::validate).

use indexmap::IndexMap;
use jiff::Timestamp;
use toml::{Spanned, Value as TomlValue};

use super::{Sink, Site, did_you_mean, span_of};
use crate::engine::model::{Example, InputSpec, JobKind, Value};
use crate::engine::points::Points;
use crate::engine::score::Status;
use crate::engine::time::parse_time;
use crate::rules::diagnostic::Code;
use crate::rules::schema::InputType;

use crate::rules::shapes::EXAMPLE_STATUSES;

type Table = IndexMap<String, Spanned<TomlValue>>;

/// The example, or `None` when the job kind is unknown or the example is malformed
/// (reported: its first problem). `default_status` is what the version gives a job (`ok`
/// for a priced version, else `no_rule` or `disabled`): what an example expects unless it
/// says `status`.
pub(super) fn build(
    sink: &mut Sink,
    site: &Site,
    ex: &Spanned<Table>,
    kind: Option<&JobKind>,
    default_status: Status,
) -> Option<Example> {
    let problem = match parse(ex.get_ref(), kind?, default_status) {
        Ok((inputs, points, status, at)) => {
            let place = sink.place_of(site.path, ex.span());
            return Some(Example {
                inputs,
                points,
                status,
                at,
                place,
            });
        }
        Err(problem) => problem,
    };
    let msg = format!("{}: example: {problem}", site.label);
    let help = Some(
        "an example gives the job kind's inputs (those with a default or optional may be left out), `points`, and optionally `status` (ok, below_threshold, over_limit, no_rule, disabled) and `at` (the time it is priced at, within its version's time in force)",
    );
    sink.error(Code::ExampleInvalid, site.path, span_of(ex), msg, help);
    None
}

type Parsed = (Vec<(String, Value)>, Points, Status, Option<Timestamp>);

fn parse(table: &Table, kind: &JobKind, default_status: Status) -> Result<Parsed, String> {
    let points = points(table.get("points").map(Spanned::get_ref))?;
    let status = status(table.get("status").map(Spanned::get_ref), default_status)?;
    let at = at(table.get("at").map(Spanned::get_ref))?;
    if status != Status::Ok && points.micros() != 0 {
        return Err(format!(
            "a job with status `{status}` earns 0 points, but the example says {points}"
        ));
    }
    if let Some(key) = table.keys().find(|k| !is_known_key(kind, k)) {
        let known = (kind.inputs.iter().map(|i| i.name.as_str())).chain(["points", "status", "at"]);
        let hint = did_you_mean(key, known)
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        return Err(format!(
            "`{key}` is not an input of job kind `{}`{hint}",
            kind.name
        ));
    }
    let inputs = (kind.inputs.iter())
        .map(|spec| input(table, spec))
        .collect::<Result<_, _>>()?;
    Ok((inputs, points, status, at))
}

/// `at = 2024-10-20` (a TOML date or datetime, or a string holding one): when the example is
/// priced.
fn at(value: Option<&TomlValue>) -> Result<Option<Timestamp>, String> {
    let parsed = match value {
        None => return Ok(None),
        Some(TomlValue::Datetime(dt)) => parse_time(&dt.to_string()),
        Some(TomlValue::String(s)) => parse_time(s),
        Some(other) => Err(format!("expected a date, got a {}", other.type_str())),
    };
    parsed
        .map(Some)
        .map_err(|e| format!("`at`: {e} (write a date like 2024-10-20 or 2024-10-20T12:00:00Z)"))
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

fn status(value: Option<&TomlValue>, default: Status) -> Result<Status, String> {
    let names = || {
        EXAMPLE_STATUSES
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match value {
        None => Ok(default),
        Some(TomlValue::String(s)) => Status::from_name(s)
            .filter(|st| EXAMPLE_STATUSES.contains(st))
            .ok_or_else(|| {
                let hint = did_you_mean(s, EXAMPLE_STATUSES.iter().map(|s| s.as_str()))
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                format!("`status` must be one of {}, got \"{s}\"{hint}", names())
            }),
        Some(other) => Err(format!("`status` must be one of {}, got {other}", names())),
    }
}

fn is_known_key(kind: &JobKind, key: &str) -> bool {
    ["points", "status", "at"].contains(&key) || kind.inputs.iter().any(|i| i.name == key)
}

fn input(table: &Table, spec: &InputSpec) -> Result<(String, Value), String> {
    let value = match table.get(&spec.name).map(Spanned::get_ref) {
        Some(TomlValue::Integer(i)) if spec.ty == InputType::Int => Value::Int(*i),
        Some(TomlValue::Integer(i)) => Value::Float(*i as f64),
        Some(TomlValue::Float(f)) if spec.ty == InputType::Float && f.is_finite() => {
            Value::Float(*f)
        }
        Some(other) => {
            return Err(format!(
                "input `{}` must be a number of type {:?}, got {other}",
                spec.name, spec.ty
            ));
        }
        None => match (spec.default, spec.optional) {
            (Some(d), _) => d,
            (None, true) => Value::ABSENT,
            (None, false) => return Err(format!("missing input `{}`", spec.name)),
        },
    };
    Ok((spec.name.clone(), value))
}
