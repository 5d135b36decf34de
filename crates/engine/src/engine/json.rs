//! Reading JSON strictly: the same `serde_json::Value`, noting what serde_json would lose
//! silently (a key given twice, an integer beyond 64 bits, a number too large for a float).
//! Used for a job's text (`job::strict`) and for JSON inside a job's strings (`tokens`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value as Json};

/// Longest job text accepted (a JSONL line, an array element); longer ones are invalid
/// without being parsed. Also the bound on JSON read from inside a job's string.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Short rendering of a JSON value for messages.
pub fn show_json(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// serde_json appends " at line L column C"; the record already names the line.
pub fn strip_position(msg: &str) -> &str {
    msg.rsplit_once(" at line ").map_or(msg, |(m, _)| m)
}

/// A JSON value and what was noticed while reading it.
pub struct StrictJson {
    pub value: Json,
    /// Path (`a.b.0`) of the first key that appears twice in one object.
    pub duplicate: Option<String>,
    /// Paths of numbers that are whole and outside the 64-bit integer range, in document
    /// order (whether they were written as integers is decided from the text).
    pub(crate) huge: Vec<String>,
    /// Paths of numbers read as `-0.0`, in document order: `-0` is the integer 0, and a
    /// number too large for a float is read as `-0.0` (see [`read_value`]).
    pub(crate) neg_zero: Vec<Vec<String>>,
    /// The first integer literal beyond 64 bits: (path, its text).
    pub(crate) huge_integer: Option<(String, String)>,
    /// Numbers too large even for a float (`1e400`): (path, their text).
    pub(crate) out_of_range: Vec<(Vec<String>, String)>,
}

/// Reads the first JSON value of `buf` strictly; `whole` requires nothing but whitespace
/// after it. Returns the value and the bytes it took.
///
/// serde_json refuses a number too large for a float (`1e400`) as "number out of range",
/// which would make a whole job unreadable for a field nobody reads. Such a number is read
/// instead as if it were `-0` (rewritten in a copy of the text, same length), and noted with
/// its path and text: a field that is read reports it, any other is ignored.
pub fn read_value(buf: &[u8], whole: bool) -> Result<(StrictJson, usize), serde_json::Error> {
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
pub fn skip_map<'de, A: MapAccess<'de>>(map: A) -> Result<(), A::Error> {
    let mut state = State::default();
    Seed(&mut state).visit_map(map)?;
    state.clean()
}

/// [`skip_map`] for a sequence.
pub fn skip_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<(), A::Error> {
    let mut state = State::default();
    Seed(&mut state).visit_seq(seq)?;
    state.clean()
}

/// Whole and outside what `i64`/`u64` hold: serde_json gives these as floats. (-2^63 itself
/// is `i64::MIN`, but a literal below it that rounds to -2^63 arrives here as a float.)
pub fn is_huge(f: f64) -> bool {
    f.fract() == 0.0 && (f <= -9_223_372_036_854_775_808.0 || f >= 18_446_744_073_709_551_616.0)
}

#[derive(Default)]
struct State {
    duplicate: Option<Vec<String>>,
    pub(crate) huge: Vec<Vec<String>>,
    pub(crate) neg_zero: Vec<Vec<String>>,
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
