//! Reading JSON strictly: the same `serde_json::Value`, noting what serde_json would lose
//! silently (a key given twice, an integer beyond 64 bits, a number too large for a float).
//! Used for a job's text (`job::strict`) and for JSON inside a job's strings (`tokens`).
//!
//! A tree costs far more than its text (a `BTreeMap` node of ~600 bytes per object: an 8 MiB
//! field of small nested objects took 420 MB), so only what is read is built: [`Keep`] names
//! the paths the rules read (a field nobody reads is checked as it is parsed, then dropped)
//! and how many values the tree may hold (a field read that goes beyond is kept empty and
//! noted: reading it makes the job invalid, naming the field).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value as Json};

/// Longest job text accepted (a JSONL line, an array element); longer ones are invalid
/// without being parsed. Also the bound on JSON read from inside a job's string.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Most JSON values a job's tree may hold in the fields the rules read (and JSON read from
/// inside one of its strings): about 30 MB of tree at worst (small objects). Far above any
/// real prompt or answer (a 1 MiB text to count is a few thousand messages); 270,000
/// `choices` in one job are refused instead of taking 1.3 GB.
pub const MAX_READ_VALUES: usize = 50_000;

/// Huge numbers whose path is noted (the first integer among them makes the job invalid);
/// a job of a million `1e30` must not note a million paths.
const MAX_NOTED: usize = 64;
#[cfg(test)]
pub(crate) const MAX_NOTED_FOR_TESTS: usize = MAX_NOTED;

/// The paths of a JSON value to build into a tree: a trie of keys, where a path's end keeps
/// everything below it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReadPaths {
    all: bool,
    keys: HashMap<String, ReadPaths>,
}

impl ReadPaths {
    /// Keeps the value at `path` (a list of object keys) and everything below it.
    pub fn add<S: AsRef<str>>(&mut self, path: &[S]) {
        let mut node = self;
        for key in path {
            if node.all {
                return;
            }
            node = node.keys.entry(key.as_ref().to_string()).or_default();
        }
        node.all = true;
        node.keys.clear();
    }

    fn child(&self, key: &str) -> Mode<'_> {
        match self.keys.get(key) {
            Some(node) if node.all => Mode::All,
            Some(node) => Mode::Under(node),
            None => Mode::Drop,
        }
    }
}

/// What [`read_value_keeping`] builds into a tree.
#[derive(Debug, Clone, Copy)]
pub struct Keep<'k> {
    /// `None`: the whole value.
    pub paths: Option<&'k ReadPaths>,
    /// Values the fields kept may hold (inside them: a field that is a number or a string
    /// always fits); a field that goes beyond is kept empty and noted in
    /// [`StrictJson::truncated`].
    pub max_values: usize,
}

impl Keep<'static> {
    /// The whole value, without a limit: for values built by the program or already bounded.
    pub const ALL: Keep<'static> = Keep {
        paths: None,
        max_values: usize::MAX,
    };
    /// The whole value, at most [`MAX_READ_VALUES`] of it (JSON inside a string that is read).
    pub const READ: Keep<'static> = Keep {
        paths: None,
        max_values: MAX_READ_VALUES,
    };
}

/// How a value is read: built whole, built along some paths (a container off them is kept
/// empty, for its type), or checked and dropped.
#[derive(Debug, Clone, Copy)]
enum Mode<'k> {
    All,
    Under(&'k ReadPaths),
    Drop,
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

/// serde_json appends " at line L column C"; the record already names the line.
pub fn strip_position(msg: &str) -> &str {
    msg.rsplit_once(" at line ").map_or(msg, |(m, _)| m)
}

/// A JSON value and what was noticed while reading it.
pub struct StrictJson {
    pub value: Json,
    /// Path (`a.b.0`) of the first key that appears twice in one object.
    pub duplicate: Option<String>,
    /// Paths of the first [`MAX_NOTED`] numbers that are whole and outside the 64-bit integer
    /// range, in document order (whether they were written as integers is decided from the
    /// text), and how many there are.
    pub(crate) huge: Vec<String>,
    pub(crate) huge_seen: usize,
    /// Numbers read as `-0.0` in the tree, in document order, each with its place among all
    /// such numbers of the text: `-0` is the integer 0, and a number too large for a float is
    /// read as `-0.0` (see [`read_value`]).
    pub(crate) neg_zero: Vec<(usize, Vec<String>)>,
    /// The first integer literal beyond 64 bits: (its path when noted, its text).
    pub(crate) huge_integer: Option<(Option<String>, String)>,
    /// Numbers too large even for a float (`1e400`) in the tree: (path, their text).
    pub(crate) out_of_range: Vec<(Vec<String>, String)>,
    /// The fields kept empty because they hold more than [`Keep::max_values`] values (the
    /// whole value: an empty path).
    pub(crate) truncated: Vec<Vec<String>>,
}

/// Reads the first JSON value of `buf` strictly; `whole` requires nothing but whitespace
/// after it. Returns the value and the bytes it took.
///
/// serde_json refuses a number too large for a float (`1e400`) as "number out of range",
/// which would make a whole job unreadable for a field nobody reads. Such a number is read
/// instead as if it were `-0` (rewritten in a copy of the text, same length), and noted with
/// its path and text: a field that is read reports it, any other is ignored.
pub fn read_value(buf: &[u8], whole: bool) -> Result<(StrictJson, usize), serde_json::Error> {
    read_with(buf, whole, Keep::ALL)
}

/// [`read_value`] of a whole text, building only what `keep` keeps.
pub fn read_value_keeping(buf: &[u8], keep: Keep<'_>) -> Result<StrictJson, serde_json::Error> {
    read_with(buf, true, keep).map(|(json, _)| json)
}

fn read_with(
    buf: &[u8],
    whole: bool,
    keep: Keep<'_>,
) -> Result<(StrictJson, usize), serde_json::Error> {
    match parse_first(buf, whole, keep) {
        Err(e) if e.to_string().starts_with("number out of range") => {
            let (text, rewritten) = rewrite_out_of_range(buf);
            let (json, used) = parse_first(&text, whole, keep)?;
            Ok((json.resolve(&text[..used], &rewritten), used))
        }
        Ok((json, used)) => Ok((json.resolve(&buf[..used], &[]), used)),
        Err(e) => Err(e),
    }
}

fn parse_first(
    buf: &[u8],
    whole: bool,
    keep: Keep<'_>,
) -> Result<(StrictJson, usize), serde_json::Error> {
    if whole {
        let mut de = serde_json::Deserializer::from_slice(buf);
        let json = keep.deserialize(&mut de)?;
        de.end()?;
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
        if self.huge_seen == 0 && self.neg_zero.is_empty() {
            return self;
        }
        // The parser visits numbers in document order, so the k-th number of a kind it saw is
        // the k-th literal of that kind in the text. The literals are walked, never collected:
        // a text may hold millions.
        let literal = |(s, e): (usize, usize)| (s, std::str::from_utf8(&raw[s..e]).unwrap_or(""));
        let is_integer = |t: &str| t.bytes().all(|c| c.is_ascii_digit() || c == b'-');
        if self.huge_seen > 0 {
            self.huge_integer = number_literals(raw)
                .map(literal)
                .filter(|(_, t)| t.parse::<f64>().is_ok_and(is_huge))
                .enumerate()
                .find(|(_, (_, t))| is_integer(t))
                .map(|(k, (_, t))| (self.huge.get(k).cloned(), t.to_string()));
        }
        if !self.neg_zero.is_empty() {
            let mut wanted = std::mem::take(&mut self.neg_zero).into_iter().peekable();
            let neg_zeros = number_literals(raw).map(literal).filter(|(_, t)| {
                t.parse::<f64>()
                    .is_ok_and(|f| f == 0.0 && f.is_sign_negative())
            });
            for (k, (start, text)) in neg_zeros.enumerate() {
                let Some((ordinal, _)) = wanted.peek() else {
                    break;
                };
                if *ordinal != k {
                    continue;
                }
                let (_, path) = wanted.next().expect("peeked");
                if let Ok(i) = rewritten.binary_search_by_key(&start, |(s, _)| *s) {
                    self.out_of_range.push((path, rewritten[i].1.clone()));
                } else if is_integer(text)
                    && let Some(v) = value_at_mut(&mut self.value, &path)
                {
                    *v = Json::Number(0.into());
                }
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
        Keep::ALL.deserialize(d)
    }
}

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = StrictJson;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<StrictJson, D::Error> {
        let mut state = State {
            max_kept: self.max_values,
            ..State::default()
        };
        let mode = self.paths.map_or(Mode::All, Mode::Under);
        let mut value = Seed {
            state: &mut state,
            mode,
            counted: false,
        }
        .deserialize(d)?;
        if state.over {
            value = empty_like(&value);
            state.truncated.push(Vec::new());
        }
        let join = |mut segments: Vec<String>| {
            // Segments are collected leaf first, as the parse unwinds.
            segments.reverse();
            segments.join(".")
        };
        Ok(StrictJson {
            value,
            duplicate: state.duplicate.map(join),
            huge: state.huge.into_iter().map(join).collect(),
            huge_seen: state.huge_seen,
            neg_zero: state
                .neg_zero
                .into_iter()
                .map(|(ordinal, mut segments)| {
                    segments.reverse();
                    (ordinal, segments)
                })
                .collect(),
            huge_integer: None,
            out_of_range: Vec::new(),
            truncated: state
                .truncated
                .into_iter()
                .map(|mut segments| {
                    segments.reverse();
                    segments
                })
                .collect(),
        })
    }
}

/// For a fast path that skips values it does not need: visits an already started map like
/// [`StrictJson`] does, and fails on a duplicate key or a huge number inside it, so the
/// caller falls back to the plain path, which reports the job exactly.
pub fn skip_map<'de, A: MapAccess<'de>>(map: A) -> Result<(), A::Error> {
    let mut state = State::default();
    Seed::dropping(&mut state).visit_map(map)?;
    state.clean()
}

/// [`skip_map`] for a sequence.
pub fn skip_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<(), A::Error> {
    let mut state = State::default();
    Seed::dropping(&mut state).visit_seq(seq)?;
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
    huge: Vec<Vec<String>>,
    huge_seen: usize,
    neg_zero: Vec<(usize, Vec<String>)>,
    neg_zero_seen: usize,
    /// Values built into the kept fields, and how many may be.
    kept: usize,
    max_kept: usize,
    /// The field being built went past `max_kept`: the rest of it is dropped.
    over: bool,
    truncated: Vec<Vec<String>>,
}

impl State {
    fn clean<E: de::Error>(&self) -> Result<(), E> {
        if self.duplicate.is_some() || self.huge_seen > 0 {
            return Err(E::custom(
                "a duplicate key or a huge number: for the strict reader",
            ));
        }
        Ok(())
    }
}

struct Seed<'s, 'k> {
    state: &'s mut State,
    mode: Mode<'k>,
    /// Whether the value counts against `max_kept`: not a kept field itself (a scalar field
    /// always fits), only what is inside one.
    counted: bool,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Json;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'s> Seed<'s, '_> {
    fn dropping(state: &'s mut State) -> Seed<'s, 'static> {
        Seed {
            state,
            mode: Mode::Drop,
            counted: false,
        }
    }

    /// Whether this value goes into the tree; counts it if so. Past the limit, nothing more
    /// of the field being built does (it is then kept empty; see `visit_map`).
    fn keeps(&mut self) -> bool {
        match self.mode {
            Mode::Drop => false,
            // The objects on the way to a kept field: as many as the paths have keys.
            Mode::Under(_) => true,
            Mode::All => {
                if self.state.over {
                    return false;
                }
                if self.counted {
                    self.state.kept += 1;
                    if self.state.kept > self.state.max_kept {
                        self.state.over = true;
                        return false;
                    }
                }
                true
            }
        }
    }

    /// Visits one child value read in `mode`; any finding made inside it gets `segment`
    /// prepended, so paths are built only for the rare findings, never for ordinary keys.
    fn child<T, E>(
        &mut self,
        mode: Mode<'_>,
        counted: bool,
        segment: impl FnOnce() -> String,
        visit: impl FnOnce(Seed<'_, '_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let state = &mut *self.state;
        let had_duplicate = state.duplicate.is_some();
        let truncated_before = state.truncated.len();
        let huge_before = state.huge.len();
        let neg_zero_before = state.neg_zero.len();
        let value = visit(Seed {
            state: &mut *state,
            mode,
            counted,
        })?;
        let new_duplicate = !had_duplicate && state.duplicate.is_some();
        let new_truncated = state.truncated.len() > truncated_before;
        let new_huge = state.huge.len() > huge_before;
        if new_duplicate || new_truncated || new_huge || state.neg_zero.len() > neg_zero_before {
            let segment = segment();
            if let Some(path) = state.duplicate.as_mut().filter(|_| new_duplicate) {
                path.push(segment.clone());
            }
            for path in &mut state.truncated[truncated_before..] {
                path.push(segment.clone());
            }
            for path in &mut state.huge[huge_before..] {
                path.push(segment.clone());
            }
            for (_, path) in &mut state.neg_zero[neg_zero_before..] {
                path.push(segment.clone());
            }
        }
        Ok(value)
    }
}

/// A key as written: borrowed from the text unless it has escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(mut self, v: bool) -> Result<Json, E> {
        Ok(if self.keeps() {
            Json::Bool(v)
        } else {
            Json::Null
        })
    }
    fn visit_i64<E>(mut self, v: i64) -> Result<Json, E> {
        Ok(if self.keeps() {
            Json::Number(v.into())
        } else {
            Json::Null
        })
    }
    fn visit_u64<E>(mut self, v: u64) -> Result<Json, E> {
        Ok(if self.keeps() {
            Json::Number(v.into())
        } else {
            Json::Null
        })
    }
    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<Json, E> {
        if is_huge(v) {
            if self.state.huge.len() < MAX_NOTED {
                self.state.huge.push(Vec::new());
            }
            self.state.huge_seen += 1;
        }
        let number = Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom(format!("`{v}` is not a finite number")))?;
        let keeps = self.keeps();
        if v == 0.0 && v.is_sign_negative() {
            // Only a `-0.0` in the tree needs settling (see [`StrictJson::resolve`]); every
            // one is counted, to know which literal of the text it is.
            if keeps {
                let ordinal = self.state.neg_zero_seen;
                self.state.neg_zero.push((ordinal, Vec::new()));
            }
            self.state.neg_zero_seen += 1;
        }
        Ok(if keeps { number } else { Json::Null })
    }
    fn visit_str<E>(mut self, v: &str) -> Result<Json, E> {
        Ok(if self.keeps() {
            Json::String(v.to_owned())
        } else {
            Json::Null
        })
    }
    fn visit_string<E>(mut self, v: String) -> Result<Json, E> {
        Ok(if self.keeps() {
            Json::String(v)
        } else {
            Json::Null
        })
    }
    fn visit_unit<E>(mut self) -> Result<Json, E> {
        self.keeps();
        Ok(Json::Null)
    }
    fn visit_none<E>(mut self) -> Result<Json, E> {
        self.keeps();
        Ok(Json::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Json, A::Error> {
        let keeps = self.keeps();
        // Elements are kept only inside a kept field: paths name object keys.
        let mode = match self.mode {
            Mode::All if keeps => Mode::All,
            _ => Mode::Drop,
        };
        let mut out = Vec::new();
        if matches!(mode, Mode::All) {
            out.reserve(seq.size_hint().unwrap_or(0).min(64));
        }
        let mut index = 0usize;
        loop {
            let i = index;
            let next = self.child(
                mode,
                true,
                || i.to_string(),
                |seed| seq.next_element_seed(seed),
            )?;
            match next {
                Some(v) => {
                    if matches!(mode, Mode::All) && !self.state.over {
                        out.push(v);
                    }
                }
                None => break,
            }
            index += 1;
        }
        Ok(if keeps { Json::Array(out) } else { Json::Null })
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Json, A::Error> {
        let keeps = self.keeps();
        let mut out = Map::new();
        // Keys whose values are not kept, borrowed from the text where they can be: a key
        // given twice is found among them too.
        let mut dropped: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let (mode, field) = match self.mode {
                _ if !keeps => (Mode::Drop, false),
                Mode::Under(node) => {
                    let mode = node.child(&key);
                    (mode, matches!(mode, Mode::All))
                }
                mode => (mode, false),
            };
            let kept_before = self.state.kept;
            let mut value = self.child(
                mode,
                !field,
                || key.to_string(),
                |seed| map.next_value_seed(seed),
            )?;
            if field && self.state.over {
                // A kept field with more values than allowed: kept empty (its type still
                // shows) and noted; what it held is freed, and the next field starts afresh.
                self.state.over = false;
                self.state.kept = kept_before;
                value = empty_like(&value);
                self.state.truncated.push(vec![key.to_string()]);
            }
            if out.contains_key(key.as_ref()) || dropped.contains(&key) {
                // The first copy stays; the job is reported invalid anyway.
                if self.state.duplicate.is_none() {
                    self.state.duplicate = Some(vec![key.into_owned()]);
                }
                continue;
            }
            if matches!(mode, Mode::Drop) || self.state.over {
                dropped.insert(key);
            } else {
                out.insert(key.into_owned(), value);
            }
        }
        Ok(if keeps { Json::Object(out) } else { Json::Null })
    }
}

/// An empty value of `v`'s type, for a field too large to keep.
fn empty_like(v: &Json) -> Json {
    match v {
        Json::Array(_) => Json::Array(Vec::new()),
        Json::Object(_) => Json::Object(Map::new()),
        _ => Json::Null,
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
