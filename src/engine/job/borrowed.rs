//! The borrowed reader: a flat job's fields as slices of its line, without a JSON tree.
//!
//! Ledgers hold millions of flat, well-formed jobs; building a tree for each costs more than
//! scoring it. This reader keeps `(key, value)` pairs borrowed from the line and decides only
//! what it can decide exactly: anything else — an escaped string, a nested value, a duplicate
//! key, an integer beyond 64 bits, and every invalid job — is [`Undecided`], and the job is
//! then read by the strict reader, which gives the canonical result.

use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, MapAccess, Visitor};

use super::{Field, JobSource, Undecided};

/// A job line's fields, borrowed from the line.
pub struct BorrowedJob<'a> {
    fields: Vec<(&'a str, BorrowedValue<'a>)>,
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

impl<'a> BorrowedJob<'a> {
    /// Parses a flat JSON object; `None` for anything else, or a duplicate key.
    pub fn parse(bytes: &'a [u8]) -> Option<BorrowedJob<'a>> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let job = de.deserialize_map(JobVisitor).ok()?;
        de.end().ok()?;
        Some(job)
    }

    /// The value under `key`, if present.
    pub fn value(&self, key: &str) -> Option<BorrowedValue<'a>> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<'a> JobSource<'a> for BorrowedJob<'a> {
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
        // Parsing refused duplicates and huge integers; the rest is a flat object.
        None
    }
}

struct JobVisitor;

impl<'de> Visitor<'de> for JobVisitor {
    type Value = BorrowedJob<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a job object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<BorrowedJob<'de>, M::Error> {
        let mut fields: Vec<(&'de str, BorrowedValue<'de>)> = Vec::with_capacity(12);
        // A borrowed `&str` key fails on escapes, which sends the line to the strict reader.
        while let Some(key) = map.next_key::<&'de str>()? {
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(ValSeed)?;
            fields.push((key, value));
        }
        Ok(BorrowedJob { fields })
    }
}

struct ValSeed;

impl<'de> de::DeserializeSeed<'de> for ValSeed {
    type Value = BorrowedValue<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<BorrowedValue<'de>, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = BorrowedValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<BorrowedValue<'de>, E> {
        Ok(BorrowedValue::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<BorrowedValue<'de>, E> {
        Ok(BorrowedValue::Other)
    }

    fn visit_i64<E>(self, v: i64) -> Result<BorrowedValue<'de>, E> {
        Ok(BorrowedValue::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<BorrowedValue<'de>, E> {
        Ok(i64::try_from(v).map_or(BorrowedValue::BigUint(v), BorrowedValue::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<BorrowedValue<'de>, E> {
        // An integer beyond 64 bits makes the job invalid wherever it is: the strict reader
        // reports it with its original text.
        if super::strict::is_huge(v) {
            return Err(E::custom("huge number"));
        }
        // `-0` is the integer 0 but arrives as `-0.0`: only the text can tell.
        if v == 0.0 && v.is_sign_negative() {
            return Err(E::custom("negative zero"));
        }
        Ok(BorrowedValue::Float(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<BorrowedValue<'de>, E> {
        Ok(BorrowedValue::Str(v))
    }

    fn visit_str<E>(self, _: &str) -> Result<BorrowedValue<'de>, E> {
        // An escaped string: not borrowable.
        Ok(BorrowedValue::Other)
    }

    // Nested values are rare in ledgers; they are checked like the strict reader checks them
    // (duplicate keys, huge integers), and anything suspicious goes to it.
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<BorrowedValue<'de>, A::Error> {
        super::strict::skip_seq(seq)?;
        Ok(BorrowedValue::Other)
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<BorrowedValue<'de>, M::Error> {
        super::strict::skip_map(map)?;
        Ok(BorrowedValue::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_cannot_borrow() {
        assert!(BorrowedJob::parse(br#"{"model":"a","width":512}"#).is_some());
        assert!(
            BorrowedJob::parse(br#"{"model":"a","model":"b"}"#).is_none(),
            "duplicate key"
        );
        assert!(
            BorrowedJob::parse(br#"{"mod\u0065l":"a"}"#).is_none(),
            "escaped key"
        );
        assert!(BorrowedJob::parse(br#"[1]"#).is_none());
        assert!(BorrowedJob::parse(br#"{"model":"a"} x"#).is_none());
        let j =
            BorrowedJob::parse(br#"{"model":"a\"b","n":{"x":[1,2]},"big":18446744073709551615}"#)
                .unwrap();
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
}
