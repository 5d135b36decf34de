//! A job as read from a file, and how its inputs are pulled out for a job kind.

use jiff::Timestamp;
use serde_json::{Map, Value as Json};

use crate::model::{InputSpec, JobKind, Value};
use crate::schema::InputType;
use crate::strict_json::StrictJson;
use crate::time::parse_time;

/// A job whose envelope (id, model, time, miner) is valid. Its inputs are read once its
/// model's job kind is known, since the rules declare what inputs a kind has.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// 1-based line where the job starts in its file.
    pub line: u64,
    pub id: Option<String>,
    pub model: String,
    pub completed_at: Option<Timestamp>,
    pub miner: Option<String>,
    pub fields: Map<String, Json>,
}

/// A job that cannot be scored as written.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub line: u64,
    pub id: Option<String>,
    pub model: Option<String>,
    /// The offending field, when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A record read from a job file: a job, or why it is not one.
pub type JobRecord = Result<Job, JobError>;

fn first_present<'a>(obj: &'a Map<String, Json>, keys: &[&str]) -> Option<(&'a str, &'a Json)> {
    keys.iter()
        .find_map(|k| obj.get_key_value(*k).map(|(k, v)| (k.as_str(), v)))
}

/// Short rendering of a JSON value for messages.
pub fn show_json(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Reads the job envelope from a parsed JSON value. Accepts the jobpoints shape (`id`,
/// `model`, `completed_at`, `miner`) and the network's assignment shape (`job_id`,
/// `model_id`, `miner_id`).
pub fn parse_job(line: u64, value: Json) -> JobRecord {
    let Json::Object(fields) = value else {
        return Err(JobError {
            line,
            id: None,
            model: None,
            field: None,
            message: format!("expected a JSON object, got {}", json_type(&value)),
        });
    };
    let mut err = JobError {
        line,
        id: None,
        model: None,
        field: None,
        message: String::new(),
    };
    let id = match first_present(&fields, &["id", "job_id"]) {
        None | Some((_, Json::Null)) => None,
        Some((_, Json::String(s))) => Some(s.clone()),
        Some((_, Json::Number(n))) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Some((k, other)) => {
            err.field = Some(k.to_string());
            err.message = format!(
                "`{k}` must be a string or an integer, got {}",
                show_json(other)
            );
            return Err(err);
        }
    };
    err.id = id.clone();
    let model = match first_present(&fields, &["model", "model_id"]) {
        Some((_, Json::String(s))) if !s.trim().is_empty() => s.clone(),
        Some((k, Json::String(_))) => {
            err.field = Some(k.to_string());
            err.message = format!("`{k}` is empty");
            return Err(err);
        }
        Some((k, other)) => {
            err.field = Some(k.to_string());
            err.message = format!("`{k}` must be a string, got {}", show_json(other));
            return Err(err);
        }
        None => {
            err.field = Some("model".into());
            err.message = "missing field `model`".into();
            return Err(err);
        }
    };
    err.model = Some(model.clone());
    let completed_at = match fields.get("completed_at") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => match parse_time(s) {
            Ok(t) => Some(t),
            Err(e) => {
                err.field = Some("completed_at".into());
                err.message = format!("`completed_at`: {e}");
                return Err(err);
            }
        },
        Some(other) => {
            err.field = Some("completed_at".into());
            err.message = format!(
                "`completed_at` must be an RFC 3339 string, got {}",
                show_json(other)
            );
            return Err(err);
        }
    };
    let miner = match first_present(&fields, &["miner", "miner_id"]) {
        None | Some((_, Json::Null)) => None,
        Some((_, Json::String(s))) => Some(s.clone()),
        Some((k, other)) => {
            err.field = Some(k.to_string());
            err.message = format!("`{k}` must be a string, got {}", show_json(other));
            return Err(err);
        }
    };
    Ok(Job {
        line,
        id,
        model,
        completed_at,
        miner,
        fields,
    })
}

/// [`parse_job`] for a value read by the strict reader: a repeated key or an integer literal
/// beyond 64 bits anywhere in the job makes it invalid, since either would be scored on a
/// number the file does not unambiguously state. `raw` is the job's text.
pub(crate) fn parse_strict_job(line: u64, json: StrictJson, raw: &[u8]) -> JobRecord {
    let problem = if let Some(path) = &json.duplicate {
        Some((
            path.clone(),
            format!("duplicate key `{path}`: a job gives each field once"),
        ))
    } else {
        json.huge_integer(raw).map(|(path, text)| {
            let message =
                format!("`{path}` = {text} is an integer outside the signed 64-bit range");
            (path, message)
        })
    };
    let record = parse_job(line, json.value);
    let Some((field, message)) = problem else {
        return record;
    };
    let (id, model) = match record {
        Ok(job) => (job.id, Some(job.model)),
        Err(e) => (e.id, e.model),
    };
    Err(JobError {
        line,
        id,
        model,
        field: Some(field),
        message,
    })
}

fn lookup<'a>(fields: &'a Map<String, Json>, path: &[String]) -> Option<&'a Json> {
    let (first, rest) = path.split_first()?;
    let mut cur = fields.get(first)?;
    for key in rest {
        cur = cur.as_object()?.get(key)?;
    }
    Some(cur)
}

/// Reads the inputs `kind` declares, in its order, checking type and bounds.
pub fn read_inputs(job: &Job, kind: &JobKind) -> Result<Vec<Value>, JobError> {
    let mut out = Vec::with_capacity(kind.inputs.len());
    for spec in &kind.inputs {
        out.push(read_input(job, spec)?);
    }
    Ok(out)
}

fn read_input(job: &Job, spec: &InputSpec) -> Result<Value, JobError> {
    let found = spec
        .from
        .iter()
        .find_map(|p| lookup(&job.fields, p).map(|v| (p.join("."), v)));
    let fail = |field: &String, message: String| JobError {
        line: job.line,
        id: job.id.clone(),
        model: Some(job.model.clone()),
        field: Some(field.clone()),
        message,
    };
    let Some((path, raw)) = found else {
        let names = spec
            .from
            .iter()
            .map(|p| format!("`{}`", p.join(".")))
            .collect::<Vec<_>>();
        return Err(fail(
            &spec.name,
            format!(
                "missing field `{}` (looked for {})",
                spec.name,
                names.join(", ")
            ),
        ));
    };
    let value = match (spec.ty, raw) {
        (InputType::Int, Json::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if n.is_u64() {
                return Err(fail(
                    &path,
                    format!("`{path}` = {n} is an integer outside the signed 64-bit range"),
                ));
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() >= 9.2e18 {
                    return Err(fail(
                        &path,
                        format!("`{path}` = {n} is too large for an integer"),
                    ));
                }
                return Err(fail(&path, format!("`{path}` must be an integer, got {n}")));
            }
        }
        (InputType::Float, Json::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => Value::Float(f),
            _ => {
                return Err(fail(
                    &path,
                    format!("`{path}` = {n} is not a finite number"),
                ));
            }
        },
        (ty, other) => {
            let want = if ty == InputType::Int {
                "an integer"
            } else {
                "a number"
            };
            return Err(fail(
                &path,
                format!("`{path}` must be {want}, got {}", show_json(other)),
            ));
        }
    };
    let x = value.as_f64();
    if let Some(min) = spec.min {
        if x < min {
            return Err(fail(
                &path,
                format!("`{path}` = {value} is below the minimum {min}"),
            ));
        }
    }
    if let Some(max) = spec.max {
        if x > max {
            return Err(fail(
                &path,
                format!("`{path}` = {value} is above the maximum {max}"),
            ));
        }
    }
    Ok(value)
}
