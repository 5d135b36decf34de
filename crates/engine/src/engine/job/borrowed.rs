//! The borrowed reader: a flat job's fields as slices of its line, found by a scanner written
//! for flat JSON objects, without a JSON tree.
//!
//! Ledgers hold millions of flat, well-formed jobs; building a tree for each, or even running a
//! general JSON parser over them, costs more than scoring them. The scanner reads one object of
//! `"key": value` pairs and keeps where each value is; its own code covers only what ledgers are
//! made of (unescaped strings, integers of up to 18 digits, `null`), and hands the rare rest to
//! serde_json one value at a time (an escaped string, any other number, a nested value), so
//! every value is read exactly as serde_json reads it. It decides only what it can decide
//! exactly: anything else — an escaped key, a duplicate key, an integer beyond 64 bits, broken
//! JSON, and every invalid job — is [`Undecided`], and the job is then read by the strict
//! reader, which gives the canonical result.
//!
//! Its strings are the text between two quotes with no escape in it, so they cannot contain
//! `"`, `\` or a control character: [`JobSource::verbatim`] is true, and the JSONL writer
//! copies them without checking.

use std::fmt;

use serde::de::{self, Deserializer as _, MapAccess, Visitor};

use super::{Field, JobSource, Undecided};

/// A job line's fields, borrowed from the line (`'a`) and from the caller's reused field
/// buffer (`'f`).
pub struct BorrowedJob<'a, 'f> {
    text: &'a str,
    fields: &'f [Slot],
}

/// Where the scanner found each field of a line: a buffer reused from line to line, so that
/// reading a job does not allocate.
#[derive(Debug, Default)]
pub struct Fields(Vec<Slot>);

/// One field: its key's place in the line, and its value. Plain numbers rather than an enum,
/// so that the scanner writes them straight into the buffer.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: Key,
    /// A number's bits (`i64`, `u64` or `f64`), or a string's place in the line (start in the
    /// high half, end in the low half).
    bits: u64,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Int,
    BigUint,
    Float,
    Str,
    Other,
}

impl Slot {
    fn new(key: Key, value: Scanned) -> Slot {
        let (kind, bits) = match value {
            Scanned::Null => (Kind::Null, 0),
            Scanned::Int(i) => (Kind::Int, i as u64),
            Scanned::BigUint(u) => (Kind::BigUint, u),
            Scanned::Float(f) => (Kind::Float, f.to_bits()),
            Scanned::Other => (Kind::Other, 0),
        };
        Slot { key, bits, kind }
    }
}

/// A key's place in the line, with its first eight bytes for quick comparison.
#[derive(Debug, Clone, Copy)]
struct Key {
    start: u32,
    len: u32,
    head: u64,
}

/// A value serde_json read for the scanner (never a borrowed string).
#[derive(Debug, Clone, Copy)]
enum Scanned {
    Null,
    Int(i64),
    BigUint(u64),
    Float(f64),
    Other,
}

/// A value of a [`BorrowedJob`] field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BorrowedValue<'a> {
    Null,
    Int(i64),
    /// An integer above `i64::MAX`.
    BigUint(u64),
    Float(f64),
    Str(&'a str),
    /// Booleans, escaped strings, arrays, objects: for the strict reader.
    Other,
}

impl<'a, 'f> BorrowedJob<'a, 'f> {
    /// Reads a flat JSON object, keeping its fields in `fields`; `None` for anything else, a
    /// duplicate key, an escaped key or an integer beyond 64 bits anywhere.
    pub fn parse(text: &'a str, fields: &'f mut Fields) -> Option<BorrowedJob<'a, 'f>> {
        // Offsets are kept as u32; the strict reader refuses lines this long anyway.
        if text.len() > u32::MAX as usize {
            return None;
        }
        scan(text, &mut fields.0)?;
        Some(BorrowedJob {
            text,
            fields: &fields.0,
        })
    }

    /// The value under `key`, if present.
    pub fn value(&self, key: &str) -> Option<BorrowedValue<'a>> {
        let want = Key::of(key.as_bytes());
        let bytes = self.text.as_bytes();
        let slot = self
            .fields
            .iter()
            .find(|s| s.key.same(&want, bytes, key.as_bytes()))?;
        Some(match slot.kind {
            Kind::Null => BorrowedValue::Null,
            Kind::Int => BorrowedValue::Int(slot.bits as i64),
            Kind::BigUint => BorrowedValue::BigUint(slot.bits),
            Kind::Float => BorrowedValue::Float(f64::from_bits(slot.bits)),
            // The scanner cut the line at ASCII quotes: char boundaries.
            Kind::Str => self
                .text
                .get((slot.bits >> 32) as usize..slot.bits as u32 as usize)
                .map_or(BorrowedValue::Other, BorrowedValue::Str),
            Kind::Other => BorrowedValue::Other,
        })
    }
}

impl<'a> JobSource<'a> for BorrowedJob<'a, '_> {
    fn get(&self, key: &str) -> Result<Option<Field<'a>>, Undecided> {
        Ok(match self.value(key) {
            None => None,
            Some(BorrowedValue::Null) => Some(Field::Null),
            Some(BorrowedValue::Int(i)) => Some(Field::Int(i)),
            Some(BorrowedValue::BigUint(u)) => Some(Field::BigUint(u)),
            Some(BorrowedValue::Float(f)) => Some(Field::Float(f)),
            Some(BorrowedValue::Str(s)) => Some(Field::Str(s)),
            Some(BorrowedValue::Other) => return Err(Undecided),
        })
    }

    fn lookup(&self, path: &[String]) -> Result<Option<Field<'a>>, Undecided> {
        match path {
            [key] => self.get(key),
            // A nested value is never borrowed: present means undecided.
            [first, ..] if self.value(first).is_some() => Err(Undecided),
            _ => Ok(None),
        }
    }

    fn show(&self, _path: &[&str]) -> Result<String, Undecided> {
        // Only invalid jobs are shown; their message is the strict reader's.
        Err(Undecided)
    }

    fn problem(&self) -> Option<(Option<String>, String)> {
        // Scanning refused duplicates and huge integers; the rest is a flat object.
        None
    }

    fn verbatim(&self) -> bool {
        true
    }

    fn tree(&self, path: &[String]) -> Result<Option<&'a serde_json::Value>, Undecided> {
        // Text to count is never borrowed: the strict reader counts it.
        match path.first() {
            Some(first) if self.value(first).is_some() => Err(Undecided),
            _ => Ok(None),
        }
    }
}

impl Key {
    /// The key `bytes` (for lookups).
    #[inline]
    fn of(bytes: &[u8]) -> Key {
        let mut head = 0u64;
        for (i, &c) in bytes.iter().take(8).enumerate() {
            head |= u64::from(c) << (8 * i);
        }
        Key {
            start: 0,
            len: bytes.len() as u32,
            head,
        }
    }

    /// The key at `line[start..end]`.
    #[inline]
    fn at(line: &[u8], start: usize, end: usize) -> Key {
        let len = end - start;
        // Eight bytes at once where the line has them (a key is followed by at least `":`
        // and a value, so it nearly always does), masked to the key's length.
        let head = match line.get(start..start + 8) {
            Some(word) => {
                let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                if len >= 8 {
                    word
                } else {
                    word & ((1u64 << (8 * len)) - 1)
                }
            }
            None => Key::of(&line[start..end]).head,
        };
        Key {
            start: start as u32,
            len: len as u32,
            head,
        }
    }

    /// Whether `self` (a key of the line `line`) is `other`, whose text is `text`.
    #[inline]
    fn same(&self, other: &Key, line: &[u8], text: &[u8]) -> bool {
        if self.len != other.len || self.head != other.head {
            return false;
        }
        let (start, len) = (self.start as usize, self.len as usize);
        match len {
            0..=8 => true,
            // The last eight bytes (overlapping the first eight): no call to memcmp.
            9..=16 => {
                let word = |b: &[u8], at: usize| {
                    b.get(at..at + 8)
                        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
                };
                word(line, start + len - 8) == word(text, len - 8)
            }
            _ => &line[start..][..len] == text,
        }
    }
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    // JSON whitespace, exactly serde_json's set.
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// Where the string starting at `i` (just after its opening quote) stops: the position of the
/// first `"`, `\` or control character, or of the end of the text. The same bytes are the
/// ones JSON output must escape, so the writer uses this too.
#[inline]
pub(crate) fn string_stop(b: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Eight bytes at a time. In each test the lowest flagged byte is exact (bytes above it may
    // be flagged falsely by a borrow, which does not matter for the first one); bytes >= 0x80
    // never match.
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let quote = x ^ (LO * u64::from(b'"'));
        let backslash = x ^ (LO * u64::from(b'\\'));
        let found = (quote.wrapping_sub(LO) & !quote
            | backslash.wrapping_sub(LO) & !backslash
            | x.wrapping_sub(LO * 0x20) & !x)
            & HI;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// Scans `text` as one flat-enough JSON object into `out`; `None` when the job must be read
/// strictly.
fn scan(text: &str, out: &mut Vec<Slot>) -> Option<()> {
    out.clear();
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_ws(b, i + 1) == b.len()).then_some(());
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let start = i + 1;
        let end = string_stop(b, start);
        // An escaped key cannot be borrowed; a control character or no closing quote is
        // broken JSON.
        if b.get(end) != Some(&b'"') {
            return None;
        }
        let key = Key::at(b, start, end);
        let key_text = &b[start..end];
        if out.iter().any(|s| s.key.same(&key, b, key_text)) {
            return None;
        }
        i = skip_ws(b, end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        i = skip_ws(b, scan_value(text, i, key, out)?);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return (skip_ws(b, i + 1) == b.len()).then_some(()),
            _ => return None,
        }
    }
}

/// Scans the value starting at `i` into a new field `key` of `out`; returns where it ends.
#[inline(always)]
fn scan_value(text: &str, i: usize, key: Key, out: &mut Vec<Slot>) -> Option<usize> {
    let b = text.as_bytes();
    let (kind, bits, next) = match *b.get(i)? {
        b'"' => {
            let end = string_stop(b, i + 1);
            if b.get(end) != Some(&b'"') {
                // An escape (or a raw control character, or no closing quote: broken JSON).
                return rare_value(text, i, key, out);
            }
            (Kind::Str, ((i as u64 + 1) << 32) | end as u64, end + 1)
        }
        b'-' | b'0'..=b'9' => {
            // `-?[1-9][0-9]{0,17}` or `0`, not followed by anything a number can go on with:
            // an integer serde_json reads as exactly this value. Anything else is rare.
            let neg = b[i] == b'-';
            let digits = i + usize::from(neg);
            let mut end = digits;
            let mut v = 0i64;
            while let Some(&c) = b.get(end) {
                if !c.is_ascii_digit() {
                    break;
                }
                v = v.wrapping_mul(10).wrapping_add(i64::from(c - b'0'));
                end += 1;
            }
            let n = end - digits;
            if n == 0
                || n > 18
                || (b[digits] == b'0' && (n > 1 || neg))
                || matches!(b.get(end), Some(b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                return rare_value(text, i, key, out);
            }
            (Kind::Int, (if neg { -v } else { v }) as u64, end)
        }
        b'n' if b[i..].starts_with(b"null") => (Kind::Null, 0, i + 4),
        _ => return rare_value(text, i, key, out),
    };
    out.push(Slot { key, bits, kind });
    Some(next)
}

/// The values ledgers rarely hold, read exactly as serde_json reads them: an escaped string,
/// any number but a small integer (a fraction, an exponent, `-0`, 19 digits or more; no valid
/// JSON number is followed by one of the bytes taken, so the text handed over is the number),
/// a boolean, a nested value. Anything broken is `None`.
#[cold]
#[inline(never)]
fn rare_value(text: &str, i: usize, key: Key, out: &mut Vec<Slot>) -> Option<usize> {
    let b = text.as_bytes();
    let (value, next) = match *b.get(i)? {
        b'"' => by_serde(text, i)?,
        b'-' | b'0'..=b'9' => {
            let end = i + b[i..]
                .iter()
                .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(b.len() - i);
            let mut de = serde_json::Deserializer::from_str(&text[i..end]);
            let v = de.deserialize_any(ValVisitor).ok()?;
            de.end().ok()?;
            (v, end)
        }
        b't' if b[i..].starts_with(b"true") => (Scanned::Other, i + 4),
        b'f' if b[i..].starts_with(b"false") => (Scanned::Other, i + 5),
        // Nested values are checked as the strict reader checks them (duplicate keys, huge
        // integers), and anything suspicious goes to it.
        b'{' | b'[' if !too_deep(b, i) => by_serde(text, i)?,
        _ => return None,
    };
    out.push(Slot::new(key, value));
    Some(next)
}

/// Reads the one value at `text[i..]` with serde_json; the value and where it ends.
fn by_serde(text: &str, i: usize) -> Option<(Scanned, usize)> {
    let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<AnyValue>();
    let v = stream.next()?.ok()?;
    Some((v.0, i + stream.byte_offset()))
}

/// Any value, read as [`ValVisitor`] reads it.
struct AnyValue(Scanned);

impl<'de> serde::Deserialize<'de> for AnyValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor).map(AnyValue)
    }
}

/// Levels of nesting serde_json allows inside a job object: it refuses the 128th level,
/// counting the job itself.
const MAX_NESTED: usize = 126;

/// Whether the array or object at `b[i..]` nests deeper than serde_json allows inside a job
/// (it would refuse the line, and so must the scanner, though the value alone would pass).
/// Exact for valid JSON; for anything else serde_json refuses the value anyway.
fn too_deep(b: &[u8], i: usize) -> bool {
    let mut depth = 0usize;
    let mut at = i;
    while let Some(&c) = b.get(at) {
        match c {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTED {
                    return true;
                }
            }
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return false;
                }
            }
            b'"' => {
                // Skip the string, escapes included.
                at += 1;
                while let Some(&c) = b.get(at) {
                    match c {
                        b'"' => break,
                        b'\\' => at += 2,
                        _ => at += 1,
                    }
                }
            }
            _ => {}
        }
        at += 1;
    }
    false
}

/// How a value looks to the borrowed reader (only used for the values the scanner does not
/// read itself, so its strings are never borrowed).
struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Scanned;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Scanned, E> {
        Ok(Scanned::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Scanned, E> {
        Ok(Scanned::Other)
    }

    fn visit_i64<E>(self, v: i64) -> Result<Scanned, E> {
        Ok(Scanned::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Scanned, E> {
        Ok(i64::try_from(v).map_or(Scanned::BigUint(v), Scanned::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scanned, E> {
        // An integer beyond 64 bits makes the job invalid wherever it is: the strict reader
        // reports it with its original text.
        if crate::engine::json::is_huge(v) {
            return Err(E::custom("huge number"));
        }
        // `-0` is the integer 0 but arrives as `-0.0`: only the text can tell, so the strict
        // reader decides.
        if v == 0.0 && v.is_sign_negative() {
            return Err(E::custom("negative zero"));
        }
        Ok(Scanned::Float(v))
    }

    fn visit_str<E>(self, _: &str) -> Result<Scanned, E> {
        // An escaped string: not borrowable.
        Ok(Scanned::Other)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Scanned, A::Error> {
        crate::engine::json::skip_seq(seq)?;
        Ok(Scanned::Other)
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Scanned, M::Error> {
        crate::engine::json::skip_map(map)?;
        Ok(Scanned::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Vec<(String, BorrowedValue<'_>)>> {
        let mut fields = Fields::default();
        let job = BorrowedJob::parse(text, &mut fields)?;
        let keys: Vec<String> = fields_keys(text, &job);
        Some(
            keys.into_iter()
                .map(|k| {
                    let v = job.value(&k).unwrap();
                    (k, v)
                })
                .collect(),
        )
    }

    fn fields_keys(text: &str, job: &BorrowedJob<'_, '_>) -> Vec<String> {
        job.fields
            .iter()
            .map(|s| text[s.key.start as usize..][..s.key.len as usize].to_string())
            .collect()
    }

    #[test]
    fn refuses_what_it_cannot_borrow() {
        assert!(parse(r#"{"model":"a","width":512}"#).is_some());
        assert!(
            parse(r#"{"model":"a","model":"b"}"#).is_none(),
            "duplicate key"
        );
        assert!(parse(r#"{"mod\u0065l":"a"}"#).is_none(), "escaped key");
        assert!(parse(r#"[1]"#).is_none());
        assert!(parse(r#"{"model":"a"} x"#).is_none());
        let text = r#"{"model":"a\"b","n":{"x":[1,2]},"big":18446744073709551615}"#;
        let mut fields = Fields::default();
        let j = BorrowedJob::parse(text, &mut fields).unwrap();
        assert_eq!(j.value("model"), Some(BorrowedValue::Other));
        assert_eq!(j.get("model"), Err(Undecided), "escaped: undecided");
        assert_eq!(j.value("n"), Some(BorrowedValue::Other));
        assert_eq!(j.value("big"), Some(BorrowedValue::BigUint(u64::MAX)));
        assert_eq!(
            j.lookup(&["n".to_string(), "x".to_string()]),
            Err(Undecided)
        );
        assert_eq!(
            j.lookup(&["m".to_string(), "x".to_string()]),
            Ok(None),
            "absent"
        );
    }

    #[test]
    fn keys_that_share_their_first_eight_bytes() {
        let text = r#"{"completed_a":1,"completed_at":"t","completed_ax":2}"#;
        let mut fields = Fields::default();
        let j = BorrowedJob::parse(text, &mut fields).unwrap();
        assert_eq!(j.value("completed_at"), Some(BorrowedValue::Str("t")));
        assert_eq!(j.value("completed_a"), Some(BorrowedValue::Int(1)));
        assert_eq!(j.value("completed_ax"), Some(BorrowedValue::Int(2)));
        assert_eq!(j.value("completed_"), None);
        assert!(
            parse(r#"{"completed_at":1,"completed_at":2}"#).is_none(),
            "long duplicate"
        );
        assert!(parse(r#"{"":1,"":2}"#).is_none(), "empty duplicate");
    }

    /// The borrowed reader as it was before the scanner: serde_json's deserializer with a map
    /// visitor. The scanner must agree with it on every text.
    fn oracle(text: &str) -> Option<Vec<(String, BorrowedValue<'_>)>> {
        struct JobVisitor;
        impl<'de> Visitor<'de> for JobVisitor {
            type Value = Vec<(String, BorrowedValue<'de>)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a job object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields: Self::Value = Vec::new();
                while let Some(key) = map.next_key::<&'de str>()? {
                    if fields.iter().any(|(k, _)| k == key) {
                        return Err(de::Error::custom("duplicate key"));
                    }
                    let value = map.next_value_seed(OracleSeed)?;
                    fields.push((key.to_string(), value));
                }
                Ok(fields)
            }
        }
        struct OracleSeed;
        impl<'de> de::DeserializeSeed<'de> for OracleSeed {
            type Value = BorrowedValue<'de>;
            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = BorrowedValue<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a JSON value")
                    }
                    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                        Ok(BorrowedValue::Str(v))
                    }
                    fn visit_unit<E>(self) -> Result<Self::Value, E> {
                        Ok(BorrowedValue::Null)
                    }
                    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                        Ok(BorrowedValue::Other)
                    }
                    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                        Ok(BorrowedValue::Int(v))
                    }
                    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                        Ok(i64::try_from(v).map_or(BorrowedValue::BigUint(v), BorrowedValue::Int))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                        if crate::engine::json::is_huge(v) {
                            return Err(E::custom("huge number"));
                        }
                        if v == 0.0 && v.is_sign_negative() {
                            return Err(E::custom("negative zero"));
                        }
                        Ok(BorrowedValue::Float(v))
                    }
                    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                        Ok(BorrowedValue::Other)
                    }
                    fn visit_seq<A: de::SeqAccess<'de>>(
                        self,
                        seq: A,
                    ) -> Result<Self::Value, A::Error> {
                        crate::engine::json::skip_seq(seq)?;
                        Ok(BorrowedValue::Other)
                    }
                    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                        crate::engine::json::skip_map(map)?;
                        Ok(BorrowedValue::Other)
                    }
                }
                d.deserialize_any(V)
            }
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let job = de.deserialize_map(JobVisitor).ok()?;
        de.end().ok()?;
        Some(job)
    }

    fn same(text: &str) {
        let (got, want) = (parse(text), oracle(text));
        // Floats compare by bits (NaN never occurs; -0.0 must stay -0.0).
        let bits = |v: Option<Vec<(String, BorrowedValue<'_>)>>| {
            v.map(|fields| {
                fields
                    .into_iter()
                    .map(|(k, v)| match v {
                        BorrowedValue::Float(f) => (k, format!("float {:x}", f.to_bits())),
                        other => (k, format!("{other:?}")),
                    })
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(bits(got), bits(want), "{text:?}");
    }

    #[test]
    fn agrees_with_serde_json_on_hostile_text() {
        for text in [
            r#"{}"#,
            r#" { } "#,
            "\t{\r\n\"a\" :\t1 , \"b\":\"x\"\n}\r",
            r#"{"a":1,}"#,
            r#"{"a":1"#,
            r#"{"a":"x"#,
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{,"a":1}"#,
            r#"{"a":1}}"#,
            r#"{"a":1} {"b":2}"#,
            "{\"a\":\"x\ty\"}",
            "{\"a\":\"\u{0}\"}",
            r#"{"a":"\u0000"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\\"}"#,
            r#"{"a":"\"","b":1}"#,
            r#"{"a":"é","é":"日本語"}"#,
            r#"{"a":0,"b":-0,"c":00,"d":-00,"e":01,"f":-1}"#,
            r#"{"a":512.0,"b":1e2,"c":1E+2,"d":-1.5e-3,"e":0.1,"f":1.,"g":.5,"h":1e}"#,
            r#"{"a":123456789012345678,"b":1234567890123456789,"c":-1234567890123456789}"#,
            r#"{"a":9223372036854775807,"b":9223372036854775808,"c":-9223372036854775808}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":18446744073709551615}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":99999999999999999999}"#,
            r#"{"a":1e400}"#,
            r#"{"a":1.5e300}"#,
            r#"{"a":1e20}"#,
            r#"{"a":-}"#,
            r#"{"a":1-2}"#,
            r#"{"a":+1}"#,
            r#"{"a":1x}"#,
            r#"{"a":true,"b":false,"c":null,"d":nul,"e":truex}"#,
            r#"{"a":[1,{"b":2,"b":3}]}"#,
            r#"{"a":{"b":[99999999999999999999]}}"#,
            r#"{"a":{"b":{"c":"\u00e9"}},"d":[]}"#,
            r#"{"a":[1,2,}"#,
            r#"{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
            "\u{feff}{\"a\":1}",
            r#"{"a":"x\"]]]]","b":[["\"[[[",{"c":"]"}]]}"#,
            r#"{"a" : "b" , "c" : 2 }"#,
            r#"{"a":1,"a ":2,"a":3}"#,
            r#"{"model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-05-01T00:00:00Z","miner":"0x0000000000392322ff2a58923245440d1819a0ec"}"#,
            r#"[]"#,
            r#""x""#,
            r#"1"#,
            "",
            " ",
        ] {
            same(text);
        }
    }

    #[test]
    fn agrees_with_serde_json_on_every_shape_of_number() {
        for number in [
            "0",
            "-0",
            "00",
            "-00",
            "01",
            "-01",
            "1",
            "-1",
            "7",
            "10",
            "1.0",
            "-0.0",
            "0.0",
            "0e0",
            "1e2",
            "1E+2",
            "1e-2",
            "-1.5e-3",
            "0.1",
            "1.",
            ".5",
            "1e",
            "1e+",
            "1E5.",
            "--1",
            "-",
            "+1",
            "1-2",
            "1x",
            "0x10",
            "1e400",
            "-1e400",
            "1e-400",
            "1.5e300",
            "1e20",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "-1234567890123456789",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "-99999999999999999999",
            "100000000000000000000.0",
        ] {
            same(&format!("{{\"n\":{number}}}"));
            same(&format!("{{\"n\":{number},\"m\":1}}"));
            same(&format!("{{ \"n\" : {number} }}"));
        }
    }

    #[test]
    fn nesting_is_limited_as_serde_json_limits_it() {
        for depth in 120..135 {
            for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
                let text = format!("{{\"a\":{}1{}}}", open.repeat(depth), close.repeat(depth));
                same(&text);
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_mutated_jobs() {
        // Every one-byte change of a few typical jobs (to a set of bytes that matter to JSON).
        let jobs = [
            r#"{"id":"j1","model":"BrainDance","width":512,"height":768,"steps":-20,"completed_at":"2024-05-01T00:00:00Z","miner":"0xabc","x":[1.5,{"y":null}]}"#,
            r#"{"id":7,"model":"m","input_tokens":1e3,"output_tokens":0,"flag":true,"n":null}"#,
        ];
        let bytes = b"\"\\{}[]:,-+.eE0123456789 \tntfux\x01\x7f";
        let mut count = 0;
        for job in jobs {
            for at in 0..job.len() {
                for &b in bytes.iter() {
                    let mut v = job.as_bytes().to_vec();
                    v[at] = b;
                    if let Ok(text) = std::str::from_utf8(&v) {
                        same(text);
                        count += 1;
                    }
                    // And with the byte inserted.
                    let mut v = job.as_bytes().to_vec();
                    v.insert(at, b);
                    if let Ok(text) = std::str::from_utf8(&v) {
                        same(text);
                        count += 1;
                    }
                }
            }
        }
        assert!(count > 10_000);
    }

    #[test]
    fn string_stop_is_exact() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..40 {
            for _ in 0..300 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        match state % 29 {
                            0 => (state >> 8) as u8 % 0x20,
                            1 => b'"',
                            2 => b'\\',
                            3 => 0x80 | (state >> 8) as u8,
                            _ => 0x20 + (state >> 8) as u8 % 0x5f,
                        }
                    })
                    .collect();
                for from in 0..=bytes.len() {
                    let want = bytes[from..]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                        .map_or(bytes.len(), |p| from + p);
                    assert_eq!(string_stop(&bytes, from), want, "{bytes:?} from {from}");
                }
            }
        }
    }
}
