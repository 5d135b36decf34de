//! Reading a job's JSON without losing anything silently.
//!
//! serde_json keeps the last of two equal keys and turns an integer literal too large for 64
//! bits into a float, both without a word. A job file is hostile input: `{"steps": 20,
//! "steps": 2000}` must not be scored as whichever copy the parser liked. [`StrictJson`]
//! builds the same `serde_json::Value` while noting both, with the path of the offending key,
//! so the reader can turn the job into one `invalid` result naming the field.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value as Json};

use super::{Field, JobError, JobSource, Undecided};

/// Longest job text accepted (a JSONL line, an array element); longer ones are invalid
/// without being parsed.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

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
            let message =
                format!("`{path}` = {text} is an integer outside the signed 64-bit range");
            Some((Some(path.clone()), message))
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

    fn tree(&self, path: &[String]) -> Result<Option<&'a Json>, Undecided> {
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        Ok(self.at(&keys))
    }
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

/// Reads one job's text (a JSONL line without its line end) strictly.
pub fn parse_line(line: u64, buf: &[u8]) -> JobRecord {
    if buf.len() > MAX_LINE_BYTES {
        return Err(invalid(
            line,
            format!("line is longer than {MAX_LINE_BYTES} bytes"),
        ));
    }
    match read_value(buf, true) {
        Ok((v, _)) => Ok(StrictJob::new(line, v)),
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

/// serde_json appends " at line L column C"; the record already names the line.
pub(crate) fn strip_position(msg: &str) -> &str {
    msg.rsplit_once(" at line ").map_or(msg, |(m, _)| m)
}

/// A JSON value and what was noticed while reading it.
pub struct StrictJson {
    pub value: Json,
    /// Path (`a.b.0`) of the first key that appears twice in one object.
    pub duplicate: Option<String>,
    /// Paths of numbers that are whole and outside the 64-bit integer range, in document
    /// order (whether they were written as integers is decided from the text).
    huge: Vec<String>,
    /// Paths of numbers read as `-0.0`, in document order: `-0` is the integer 0, and a
    /// number too large for a float is read as `-0.0` (see [`read_value`]).
    neg_zero: Vec<Vec<String>>,
    /// The first integer literal beyond 64 bits: (path, its text).
    huge_integer: Option<(String, String)>,
    /// Numbers too large even for a float (`1e400`): (path, their text).
    out_of_range: Vec<(Vec<String>, String)>,
}

/// Reads the first JSON value of `buf` strictly; `whole` requires nothing but whitespace
/// after it. Returns the value and the bytes it took.
///
/// serde_json refuses a number too large for a float (`1e400`) as "number out of range",
/// which would make a whole job unreadable for a field nobody reads. Such a number is read
/// instead as if it were `-0` (rewritten in a copy of the text, same length), and noted with
/// its path and text: a field that is read reports it, any other is ignored.
pub(crate) fn read_value(
    buf: &[u8],
    whole: bool,
) -> Result<(StrictJson, usize), serde_json::Error> {
    match parse_first(buf, whole) {
        Err(e) if e.to_string().starts_with("number out of range") => {
            let (text, rewritten) = rewrite_out_of_range(buf);
            let (json, used) = parse_first(&text, whole)?;
            Ok((json.resolve(&text[..used], &rewritten), used))
        }
        Ok((json, used)) => Ok((json.resolve(&buf[..used], &[]), used)),
        Err(e) => Err(e),
    }
}

fn parse_first(buf: &[u8], whole: bool) -> Result<(StrictJson, usize), serde_json::Error> {
    if whole {
        let json = serde_json::from_slice::<StrictJson>(buf)?;
        return Ok((json, buf.len()));
    }
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<StrictJson>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, stream.byte_offset())),
        Some(Err(e)) => Err(e),
        None => Err(serde::de::Error::custom("unexpected end of input")),
    }
}

/// A copy of `buf` with every number literal too large for a float replaced by `-0` and
/// spaces, and where each was with its text.
fn rewrite_out_of_range(buf: &[u8]) -> (Vec<u8>, Vec<(usize, String)>) {
    let mut text = buf.to_vec();
    let mut rewritten = Vec::new();
    for (start, end) in number_literals(buf) {
        let literal = String::from_utf8_lossy(&buf[start..end]);
        if literal.parse::<f64>().is_ok_and(f64::is_infinite) {
            text[start..end].fill(b' ');
            text[start..start + 2].copy_from_slice(b"-0");
            rewritten.push((start, literal.into_owned()));
        }
    }
    (text, rewritten)
}

impl StrictJson {
    /// Settles what needs the text: which huge number was an integer literal, which `-0.0`
    /// was `-0` (the integer 0) and which was an out-of-range number. `raw` is the text the
    /// value was parsed from; `rewritten` are the out-of-range literals (start, text) in it.
    /// Ordinary jobs have none of these and never pay for the scan.
    fn resolve(mut self, raw: &[u8], rewritten: &[(usize, String)]) -> StrictJson {
        if self.huge.is_empty() && self.neg_zero.is_empty() {
            return self;
        }
        // The parser visits numbers in document order, so the k-th number of a kind it saw is
        // the k-th literal of that kind in the text.
        let literals: Vec<(usize, String)> = number_literals(raw)
            .map(|(s, e)| (s, String::from_utf8_lossy(&raw[s..e]).into_owned()))
            .collect();
        let is_integer = |t: &str| t.bytes().all(|c| c.is_ascii_digit() || c == b'-');
        self.huge_integer = self
            .huge
            .iter()
            .zip(
                literals
                    .iter()
                    .filter(|(_, t)| t.parse::<f64>().is_ok_and(is_huge)),
            )
            .find(|(_, (_, text))| is_integer(text))
            .map(|(path, (_, text))| (path.clone(), text.clone()));
        let neg_zeros = literals.iter().filter(|(_, t)| {
            t.parse::<f64>()
                .is_ok_and(|f| f == 0.0 && f.is_sign_negative())
        });
        for (path, (start, text)) in std::mem::take(&mut self.neg_zero)
            .into_iter()
            .zip(neg_zeros)
        {
            if let Some((_, original)) = rewritten.iter().find(|(s, _)| s == start) {
                self.out_of_range.push((path, original.clone()));
            } else if is_integer(text)
                && let Some(v) = value_at_mut(&mut self.value, &path)
            {
                *v = Json::Number(0.into());
            }
        }
        self
    }
}

fn value_at_mut<'v>(mut v: &'v mut Json, path: &[String]) -> Option<&'v mut Json> {
    for key in path {
        v = match v {
            Json::Object(m) => m.get_mut(key)?,
            Json::Array(a) => a.get_mut(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

impl<'de> Deserialize<'de> for StrictJson {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut state = State::default();
        let value = Seed(&mut state).deserialize(d)?;
        let join = |mut segments: Vec<String>| {
            // Segments are collected leaf first, as the parse unwinds.
            segments.reverse();
            segments.join(".")
        };
        Ok(StrictJson {
            value,
            duplicate: state.duplicate.map(join),
            huge: state.huge.into_iter().map(join).collect(),
            neg_zero: state
                .neg_zero
                .into_iter()
                .map(|mut segments| {
                    segments.reverse();
                    segments
                })
                .collect(),
            huge_integer: None,
            out_of_range: Vec::new(),
        })
    }
}

/// For a fast path that skips values it does not need: visits an already started map like
/// [`StrictJson`] does, and fails on a duplicate key or a huge number inside it, so the
/// caller falls back to the plain path, which reports the job exactly.
pub(crate) fn skip_map<'de, A: MapAccess<'de>>(map: A) -> Result<(), A::Error> {
    let mut state = State::default();
    Seed(&mut state).visit_map(map)?;
    state.clean()
}

/// [`skip_map`] for a sequence.
pub(crate) fn skip_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<(), A::Error> {
    let mut state = State::default();
    Seed(&mut state).visit_seq(seq)?;
    state.clean()
}

/// Whole and outside what `i64`/`u64` hold: serde_json gives these as floats. (-2^63 itself
/// is `i64::MIN`, but a literal below it that rounds to -2^63 arrives here as a float.)
pub(crate) fn is_huge(f: f64) -> bool {
    f.fract() == 0.0 && (f <= -9_223_372_036_854_775_808.0 || f >= 18_446_744_073_709_551_616.0)
}

#[derive(Default)]
struct State {
    duplicate: Option<Vec<String>>,
    huge: Vec<Vec<String>>,
    neg_zero: Vec<Vec<String>>,
}

impl State {
    fn clean<E: de::Error>(&self) -> Result<(), E> {
        if self.duplicate.is_some() || !self.huge.is_empty() {
            return Err(E::custom(
                "a duplicate key or a huge number: for the strict reader",
            ));
        }
        Ok(())
    }
}

struct Seed<'s>(&'s mut State);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Json;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl Seed<'_> {
    /// Visits one child value; any finding made inside it gets `segment` prepended, so paths
    /// are built only for the rare findings, never for ordinary keys.
    fn child<T, E>(
        &mut self,
        segment: impl FnOnce() -> String,
        visit: impl FnOnce(Seed<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let had_duplicate = self.0.duplicate.is_some();
        let huge_before = self.0.huge.len();
        let neg_zero_before = self.0.neg_zero.len();
        let value = visit(Seed(self.0))?;
        let new_duplicate = !had_duplicate && self.0.duplicate.is_some();
        let new_huge = self.0.huge.len() > huge_before;
        if new_duplicate || new_huge || self.0.neg_zero.len() > neg_zero_before {
            let segment = segment();
            if let Some(path) = self.0.duplicate.as_mut().filter(|_| new_duplicate) {
                path.push(segment.clone());
            }
            for path in &mut self.0.huge[huge_before..] {
                path.push(segment.clone());
            }
            for path in &mut self.0.neg_zero[neg_zero_before..] {
                path.push(segment.clone());
            }
        }
        Ok(value)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        if is_huge(v) {
            self.0.huge.push(Vec::new());
        }
        if v == 0.0 && v.is_sign_negative() {
            self.0.neg_zero.push(Vec::new());
        }
        Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom(format!("`{v}` is not a finite number")))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Seed(self.0).deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        loop {
            let index = out.len();
            match self.child(|| index.to_string(), |seed| seq.next_element_seed(seed))? {
                Some(v) => out.push(v),
                None => return Ok(Json::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Json, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = self.child(|| key.clone(), |seed| map.next_value_seed(seed))?;
            match out.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                // The first copy stays; the job is reported invalid anyway.
                Entry::Occupied(slot) => {
                    if self.0.duplicate.is_none() {
                        self.0.duplicate = Some(vec![slot.key().clone()]);
                    }
                }
            }
        }
        Ok(Json::Object(out))
    }
}

/// Where the number literals of `raw` are (outside strings), in order.
fn number_literals(raw: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < raw.len() {
            match raw[i] {
                b'"' => {
                    i += 1;
                    while i < raw.len() && raw[i] != b'"' {
                        i += if raw[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    while i < raw.len()
                        && matches!(raw[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                    {
                        i += 1;
                    }
                    return Some((start, i));
                }
                _ => i += 1,
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn huge_integers_keep_their_text() {
        let text = r#"{"s":"99999999999999999999","f":1e30,"n":{"t":-99999999999999999999}}"#;
        let strict = parse(text);
        assert_eq!(strict.huge, ["f", "n.t"]);
        assert_eq!(
            strict.huge_integer,
            Some(("n.t".to_string(), "-99999999999999999999".to_string())),
            "1e30 is a float literal; the string is not a number"
        );
        let u64_max = r#"{"n":18446744073709551615}"#;
        assert!(
            parse(u64_max).huge.is_empty(),
            "u64 values are read exactly"
        );
    }
}
