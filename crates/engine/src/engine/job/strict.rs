//! Reading a job's JSON without losing anything silently.
//!
//! serde_json keeps the last of two equal keys and turns an integer literal too large for 64
//! bits into a float, both without a word. A job file is hostile input: `{"steps": 20,
//! "steps": 2000}` must not be scored as whichever copy the parser liked. [`StrictJson`]
//! (`engine::json`) builds the same `serde_json::Value` while noting both, with the path of the offending key,
//! so the reader can turn the job into one `invalid` result naming the field.

use serde_json::{Map, Value as Json};

use super::{Field, JobError, JobSource, Undecided};
pub use crate::engine::json::MAX_LINE_BYTES;
pub use crate::engine::json::StrictJson;
use crate::engine::json::{
    Keep, MAX_READ_VALUES, ReadPaths, read_value_keeping, show_json, strip_position,
};

/// A job read strictly: its JSON tree, and what makes it invalid as a whole, if anything.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictJob {
    /// 1-based line where the job starts in its file.
    pub line: u64,
    value: Json,
    problem: Option<(Option<String>, String)>,
    /// Numbers too large even for a float, with their text: read as infinite, shown as
    /// written.
    out_of_range: Vec<(Vec<String>, String)>,
    /// Fields read that hold more than [`MAX_READ_VALUES`] values: kept empty, and the job
    /// is invalid when one of them is read.
    truncated: Vec<Vec<String>>,
}

/// A record read from a job file: a job, or why its text is not JSON at all.
pub type JobRecord = Result<StrictJob, JobError>;

impl StrictJob {
    /// A job from a strictly parsed value; `raw` is the text it was parsed from.
    pub(crate) fn new(line: u64, json: StrictJson) -> Self {
        let problem = if let Some(path) = &json.duplicate {
            Some((
                Some(path.clone()),
                format!("duplicate key `{path}`: a job gives each field once"),
            ))
        } else if let Some((path, text)) = &json.huge_integer {
            let message = match path {
                Some(path) => {
                    format!("`{path}` = {text} is an integer outside the signed 64-bit range")
                }
                None => format!("{text} is an integer outside the signed 64-bit range"),
            };
            Some((path.clone(), message))
        } else if !json.value.is_object() {
            Some((
                None,
                format!("expected a JSON object, got {}", json_type(&json.value)),
            ))
        } else {
            None
        };
        StrictJob {
            line,
            value: json.value,
            problem,
            out_of_range: json.out_of_range,
            truncated: json.truncated,
        }
    }

    /// A job from a JSON value built in memory (nothing can be duplicated or out of range).
    pub fn from_value(line: u64, value: Json) -> Self {
        let problem = (!value.is_object()).then(|| {
            (
                None,
                format!("expected a JSON object, got {}", json_type(&value)),
            )
        });
        StrictJob {
            line,
            value,
            problem,
            out_of_range: Vec::new(),
            truncated: Vec::new(),
        }
    }

    /// The job's JSON value.
    pub fn value(&self) -> &Json {
        &self.value
    }

    fn fields(&self) -> Option<&Map<String, Json>> {
        self.value.as_object()
    }

    /// The text of an out-of-range number at `path`, if that is what it holds.
    fn out_of_range<'p>(&self, path: impl Iterator<Item = &'p str> + Clone) -> Option<&str> {
        self.out_of_range
            .iter()
            .find(|(p, _)| p.iter().map(String::as_str).eq(path.clone()))
            .map(|(_, text)| text.as_str())
    }

    fn at(&self, path: &[&str]) -> Option<&Json> {
        let (first, rest) = path.split_first()?;
        let mut cur = self.fields()?.get(*first)?;
        for key in rest {
            cur = cur.as_object()?.get(*key)?;
        }
        Some(cur)
    }
}

fn field(v: &Json) -> Field<'_> {
    match v {
        Json::Null => Field::Null,
        Json::Bool(_) => Field::Bool,
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Field::Int(i)
            } else if let Some(u) = n.as_u64() {
                Field::BigUint(u)
            } else {
                Field::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Field::Str(s),
        Json::Array(_) => Field::Array,
        Json::Object(_) => Field::Object,
    }
}

/// An out-of-range number (`1e400`, `-1e400`) as a field: an infinite float.
fn infinite(text: &str) -> Field<'static> {
    Field::Float(if text.starts_with('-') {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    })
}

impl<'a> JobSource<'a> for &'a StrictJob {
    fn get(&self, key: &str) -> Result<Option<Field<'a>>, Undecided> {
        if !self.out_of_range.is_empty()
            && let Some(text) = self.out_of_range(std::iter::once(key))
        {
            return Ok(Some(infinite(text)));
        }
        Ok(self.fields().and_then(|f| f.get(key)).map(field))
    }

    fn lookup(&self, path: &[String]) -> Result<Option<Field<'a>>, Undecided> {
        if !self.out_of_range.is_empty()
            && let Some(text) = self.out_of_range(path.iter().map(String::as_str))
        {
            return Ok(Some(infinite(text)));
        }
        let (first, rest) = match path.split_first() {
            Some(p) => p,
            None => return Ok(None),
        };
        let mut cur = match self.fields().and_then(|f| f.get(first)) {
            Some(v) => v,
            None => return Ok(None),
        };
        for key in rest {
            match cur.as_object().and_then(|o| o.get(key)) {
                Some(v) => cur = v,
                None => return Ok(None),
            }
        }
        Ok(Some(field(cur)))
    }

    fn show(&self, path: &[&str]) -> Result<String, Undecided> {
        if let Some(text) = self.out_of_range(path.iter().copied()) {
            return Ok(text.to_string());
        }
        Ok(self.at(path).map(show_json).unwrap_or_default())
    }

    fn problem(&self) -> Option<(Option<String>, String)> {
        self.problem.clone()
    }

    fn too_large(&self, path: &[String]) -> Option<(String, String)> {
        let cut = self.truncated.iter().find(|t| path.starts_with(t))?;
        let field = cut.join(".");
        let message = format!(
            "`{field}` holds more than {MAX_READ_VALUES} JSON values: more than the rules \
             read of one job"
        );
        Some((field, message))
    }

    fn tree(&self, path: &[String]) -> Result<Option<&'a Json>, Undecided> {
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        Ok(self.at(&keys))
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

/// Reads one job's text (a JSONL line without its line end) strictly, as a whole tree.
pub fn parse_line(line: u64, buf: &[u8]) -> JobRecord {
    parse_line_keeping(line, buf, Keep::ALL)
}

/// [`parse_line`] building only the fields at `reads` (what a rule set reads: see
/// `Scorer`), at most [`MAX_READ_VALUES`] values of them. Every field is still checked (a
/// duplicate key or a huge integer anywhere makes the job invalid), so the result is the
/// same as with the whole tree, in a fraction of the memory.
pub fn parse_line_reading(line: u64, buf: &[u8], reads: &ReadPaths) -> JobRecord {
    let keep = Keep {
        paths: Some(reads),
        max_values: MAX_READ_VALUES,
    };
    parse_line_keeping(line, buf, keep)
}

fn parse_line_keeping(line: u64, buf: &[u8], keep: Keep<'_>) -> JobRecord {
    if buf.len() > MAX_LINE_BYTES {
        return Err(invalid(
            line,
            format!("line is longer than {MAX_LINE_BYTES} bytes"),
        ));
    }
    match read_value_keeping(buf, keep) {
        Ok(v) => Ok(StrictJob::new(line, v)),
        Err(e) => Err(invalid(line, describe_json_error(&e, buf, line))),
    }
}

/// An invalid record that names only its line.
pub(crate) fn invalid(line: u64, message: String) -> JobError {
    JobError {
        line,
        id: None,
        model: None,
        field: None,
        message,
    }
}

fn describe_json_error(e: &serde_json::Error, text: &[u8], line: u64) -> String {
    if let Err(bad) = std::str::from_utf8(text) {
        return format!(
            "line is not valid UTF-8 (at byte {})",
            bad.valid_up_to() + 1
        );
    }
    if e.line() > 1 {
        // A job over several lines (an array element, a pretty document): the file's line.
        return format!(
            "broken JSON at line {} column {}: {}",
            line + e.line() as u64 - 1,
            e.column(),
            strip_position(&e.to_string())
        );
    }
    format!(
        "broken JSON at column {}: {}",
        e.column(),
        strip_position(&e.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::json::{MAX_NOTED_FOR_TESTS, read_value};

    fn parse(s: &str) -> StrictJson {
        read_value(s.as_bytes(), true).unwrap().0
    }

    #[test]
    fn same_value_as_serde_json() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        let strict = parse(text);
        assert_eq!(strict.value, serde_json::from_str::<Json>(text).unwrap());
        assert!(strict.duplicate.is_none() && strict.huge.is_empty());
    }

    #[test]
    fn duplicate_keys_are_found_with_their_path() {
        assert_eq!(parse(r#"{"a":1,"a":2}"#).duplicate.as_deref(), Some("a"));
        let nested = parse(r#"{"x":1,"m":{"SD":{"w":1,"h":2,"w":3}},"x":9}"#);
        assert_eq!(nested.duplicate.as_deref(), Some("m.SD.w"), "the first one");
        assert_eq!(nested.value["x"], 1, "the first copy is kept");
        let in_array = parse(r#"{"t":[{}, {"k":1,"k":1}]}"#);
        assert_eq!(in_array.duplicate.as_deref(), Some("t.1.k"));
    }

    #[test]
    fn minus_zero_is_the_integer_zero_and_minus_zero_point_zero_a_float() {
        let strict = parse(r#"{"a":-0,"b":-0.0,"c":[1,-0],"d":{"e":-0e0}}"#);
        assert_eq!(strict.value["a"], serde_json::json!(0));
        assert!(strict.value["a"].is_i64());
        assert!(strict.value["b"].is_f64());
        assert!(strict.value["c"][1].is_i64());
        assert!(strict.value["d"]["e"].is_f64());
    }

    #[test]
    fn a_number_too_large_for_a_float_is_noted_not_fatal() {
        let text = r#"{"x":1e400,"s":"1e400 in a string","n":{"y":-2e999},"z":-0}"#;
        let strict = parse(text);
        assert_eq!(
            strict.out_of_range,
            [
                (vec!["x".to_string()], "1e400".to_string()),
                (vec!["n".to_string(), "y".to_string()], "-2e999".to_string())
            ]
        );
        assert_eq!(strict.value["s"], "1e400 in a string");
        assert!(
            strict.value["z"].is_i64(),
            "a real -0 next to them is still 0"
        );
        // Inside an array of jobs (a stream of values), the rest still parses.
        let (first, used) = read_value(br#"{"a":1e400} {"b":2}"#, false).unwrap();
        assert_eq!(used, 11);
        assert_eq!(first.out_of_range.len(), 1);
    }

    /// What the rules read of `{"id", "model", "usage": {"prompt_tokens"}}`.
    fn reads() -> ReadPaths {
        let mut reads = ReadPaths::default();
        reads.add(&["id"]);
        reads.add(&["model"]);
        reads.add(&["usage", "prompt_tokens"]);
        reads.add(&["request", "messages"]);
        reads
    }

    fn read(s: &str) -> StrictJob {
        parse_line_reading(1, s.as_bytes(), &reads()).unwrap()
    }

    #[test]
    fn only_the_fields_read_are_built_and_the_rest_is_still_checked() {
        let job = read(
            r#"{"id":"a","model":"m","usage":{"prompt_tokens":-0,"other":[1,2]},
                "request":{"messages":[{"role":"user","content":"hi"}],"n":-0},
                "pad":[{"k":{"k":-0}},{"k":1e400}],"tail":"x"}"#,
        );
        assert_eq!(
            job.value(),
            &serde_json::json!({"id":"a","model":"m","usage":{"prompt_tokens":0},
                "request":{"messages":[{"role":"user","content":"hi"}]}}),
            "the fields no rule reads are not built; `-0` read is still the integer 0"
        );
        assert!(job.problem.is_none());
        // A key given twice or an integer beyond 64 bits in a field nobody reads still makes
        // the job invalid, with its path, as the whole tree does.
        for (text, field) in [
            (r#"{"model":"m","pad":[{},{"k":1,"k":2}]}"#, "pad.1.k"),
            (
                r#"{"model":"m","pad":{"a":{"b":[99999999999999999999]}}}"#,
                "pad.a.b.0",
            ),
            (r#"{"model":"m","pad":1,"pad":2}"#, "pad"),
            (r#"{"model":"m","usage":{"x":1,"x":1}}"#, "usage.x"),
        ] {
            let whole = StrictJob::new(1, parse(text));
            let pruned = read(text);
            assert_eq!(pruned.problem, whole.problem, "{text}");
            assert_eq!(pruned.problem.unwrap().0.as_deref(), Some(field), "{text}");
        }
    }

    #[test]
    fn a_field_read_with_too_many_values_is_refused_by_name() {
        let many = vec![r#"{"role":"user","content":"x"}"#; MAX_READ_VALUES / 3 + 1].join(",");
        let job = read(&format!(
            r#"{{"request":{{"messages":[{many}]}},"model":"m"}}"#
        ));
        assert!(job.problem.is_none(), "not a problem until it is read");
        let src = &job;
        let path = |p: &str| p.split('.').map(String::from).collect::<Vec<_>>();
        let (field, message) = src.too_large(&path("request.messages")).unwrap();
        assert_eq!(field, "request.messages", "{message}");
        assert!(message.contains("more than 50000 JSON values"), "{message}");
        assert_eq!(src.too_large(&path("model")), None);
        assert_eq!(
            job.value(),
            &serde_json::json!({"model": "m", "request": {"messages": []}}),
            "kept empty, its type still showing; the fields after it are still built"
        );
        // The same number of values in a field nobody reads costs nothing and is no problem.
        let job = read(&format!(r#"{{"model":"m","pad":[{many}]}}"#));
        assert!(job.problem.is_none());
        assert!(job.truncated.is_empty());
        assert_eq!(job.value(), &serde_json::json!({"model": "m"}));
    }

    #[test]
    fn only_the_first_huge_numbers_are_noted_and_the_first_integer_still_found() {
        let floats = vec!["1e30"; 1000].join(",");
        let text = format!(r#"{{"pad":[{floats},-99999999999999999999]}}"#);
        let strict = parse(&text);
        assert_eq!(strict.huge.len(), MAX_NOTED_FOR_TESTS);
        assert_eq!(
            strict.huge_integer,
            Some((None, "-99999999999999999999".to_string())),
            "found by its text, though its path was not noted"
        );
        let job = StrictJob::new(1, strict);
        assert!(job.problem.unwrap().1.contains("-99999999999999999999"));
    }

    #[test]
    fn huge_integers_keep_their_text() {
        let text = r#"{"s":"99999999999999999999","f":1e30,"n":{"t":-99999999999999999999}}"#;
        let strict = parse(text);
        assert_eq!(strict.huge, ["f", "n.t"]);
        assert_eq!(
            strict.huge_integer,
            Some((Some("n.t".to_string()), "-99999999999999999999".to_string())),
            "1e30 is a float literal; the string is not a number"
        );
        let u64_max = r#"{"n":18446744073709551615}"#;
        assert!(
            parse(u64_max).huge.is_empty(),
            "u64 values are read exactly"
        );
    }
}
