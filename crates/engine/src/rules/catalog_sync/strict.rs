//! Reading one version of the network's `models.json` strictly: JSON that does not parse, a
//! key given twice in any object, a model without a string `name` or `type`, a `redirect`
//! that is not a string, or a name listed twice with different types is a problem with its
//! line and column, and the version is left out. (serde_json alone keeps the last of two equal
//! keys silently.) A name listed twice the same way (`type` and `redirect`) is unambiguous:
//! a warning, and the version is kept.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// One model of a catalog version: its name (what jobs carry), its family (`type`) and the
/// name its jobs were submitted under (`redirect`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    pub name: String,
    pub family: String,
    pub redirect: Option<String>,
}

/// Why a version was left out (or what is odd in one that was kept), and where in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseProblem {
    /// 1-based; 0 when the problem is not at a place (the file is missing).
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        }
    }
}

/// A version that parsed: its models in file order, and warnings.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub models: Vec<ListedModel>,
    pub warnings: Vec<ParseProblem>,
}

/// 1-based line and column of byte `offset` of `text`.
fn place(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// The models of one `models.json`, in file order.
pub fn parse_catalog(bytes: &[u8]) -> Result<Parsed, ParseProblem> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = match std::str::from_utf8(&bytes[..e.valid_up_to()]) {
            Ok(valid) => place(valid, valid.len()),
            Err(_) => (1, 1),
        };
        ParseProblem {
            line,
            column,
            message: "not UTF-8 text".into(),
        }
    })?;
    let whole = |e: serde_json::Error| ParseProblem {
        line: e.line(),
        column: e.column(),
        message: clean(&e),
    };
    // Each model's text, so every problem in it is placed in the file.
    let elements: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
        let mut p = whole(e);
        if p.message.starts_with("invalid type") {
            p.message = format!("{}: a catalog is an array of models", p.message);
        }
        p
    })?;
    let mut out = Parsed::default();
    // name → (line, family, redirect) of its first listing.
    let mut first: HashMap<String, (usize, String, Option<String>)> = HashMap::new();
    for raw in elements {
        let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        let (line, column) = place(text, offset);
        let at = |e: serde_json::Error| ParseProblem {
            line: line + e.line() - 1,
            column: if e.line() == 1 {
                column + e.column() - 1
            } else {
                e.column()
            },
            message: clean(&e),
        };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let model = de.deserialize_map(ModelSeed).map_err(at)?;
        match first.get(&model.name) {
            None => {
                first.insert(
                    model.name.clone(),
                    (line, model.family.clone(), model.redirect.clone()),
                );
                out.models.push(model);
            }
            Some((l, family, redirect))
                if *family == model.family && *redirect == model.redirect =>
            {
                out.warnings.push(ParseProblem {
                    line,
                    column,
                    message: format!(
                        "model `{}` is listed again (first on line {l}) with the same type; the first is kept",
                        model.name
                    ),
                });
            }
            Some((l, family, _)) => {
                return Err(ParseProblem {
                    line,
                    column,
                    message: format!(
                        "model `{}` is listed again (first on line {l}, type `{family}`) with type `{}`",
                        model.name, model.family
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// serde_json's message without the ` at line L column C` it adds (the place is kept apart).
fn clean(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

struct ModelSeed;

impl<'de> Visitor<'de> for ModelSeed {
    type Value = ListedModel;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a model (an object with `name` and `type`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListedModel, A::Error> {
        let mut seen = HashSet::new();
        let (mut name, mut family, mut redirect) = (None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            match key.as_str() {
                "name" => name = Some(map.next_value::<String>()?),
                "type" => family = Some(map.next_value::<String>()?),
                "redirect" => redirect = map.next_value::<Option<String>>()?,
                _ => map.next_value_seed(NoDuplicates)?,
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        let family = family.ok_or_else(|| de::Error::missing_field("type"))?;
        if name.trim().is_empty() {
            return Err(de::Error::custom("a model's `name` is empty"));
        }
        if family.trim().is_empty() {
            return Err(de::Error::custom(format!(
                "model `{name}`: `type` is empty"
            )));
        }
        Ok(ListedModel {
            name,
            family,
            redirect,
        })
    }
}

/// Any JSON value, read only to check that no object in it repeats a key.
struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicates)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value_seed(NoDuplicates)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> ParseProblem {
        parse_catalog(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn reads_names_families_and_redirects() {
        let parsed = parse_catalog(
            br#"[{"name":"A","type":"sd15","defaults":{"width":512}},
                {"name":"B","type":"llm8b16b","redirect":"C"},{"name":"C","type":"llm8b16b","redirect":null}]"#,
        )
        .unwrap();
        let models = parsed.models;
        assert_eq!(models.len(), 3);
        assert_eq!(models[1].redirect.as_deref(), Some("C"));
        assert_eq!(models[2].redirect, None);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn a_name_listed_twice_the_same_way_is_a_warning_otherwise_a_problem() {
        let same = "[{\"name\": \"A\", \"type\": \"llm\", \"input_price\": 30},\n {\"name\": \"A\", \"type\": \"llm\", \"input_price\": 5}]";
        let parsed = parse_catalog(same.as_bytes()).unwrap();
        assert_eq!(parsed.models.len(), 1);
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!((parsed.warnings[0].line, parsed.warnings[0].column), (2, 2));
        assert!(
            parsed.warnings[0].message.contains("first on line 1"),
            "{:?}",
            parsed.warnings
        );
        let p = problem(
            "[{\"name\": \"A\", \"type\": \"sd15\"},\n {\"name\": \"A\", \"type\": \"sdxl10\"}]",
        );
        assert_eq!(p.line, 2);
        assert!(p.message.contains("with type `sdxl10`"), "{p}");
    }

    #[test]
    fn every_kind_of_bad_version_is_a_problem_with_its_place() {
        let p = problem("[\n {\"name\": \"A\", \"type\": \"sd15\",\n  \"type\": \"sdxl10\"}]");
        assert_eq!((p.line, p.message.as_str()), (3, "duplicate key `type`"));
        let p =
            problem("[{\"name\": \"A\", \"type\": \"sd15\", \"defaults\": {\"w\": 1, \"w\": 2}}]");
        assert!(p.message.contains("duplicate key `w`"), "{p}");
        let p = problem("[{\"name\": 15, \"type\": \"sd15\"}]");
        assert!(
            p.message
                .contains("invalid type: integer `15`, expected a string"),
            "{p}"
        );
        assert_eq!((p.line, p.column), (1, 12), "{p}");
        let p = problem("[{\"name\": \"A\"}]");
        assert!(p.message.contains("missing field `type`"), "{p}");
        let p = problem("{\"name\": \"A\"}");
        assert!(p.message.contains("a catalog is an array of models"), "{p}");
        let p = problem("[{\"name\": \"A\", \"type\": \"sd15\"},\n]");
        assert_eq!((p.line, p.message.as_str()), (2, "trailing comma"), "{p}");
        let p = problem("[] []");
        assert!(p.message.contains("trailing characters"), "{p}");
        let p = problem("[{\"name\": \"A\", \"type\": \"sd15\", \"redirect\": 3}]");
        assert!(p.message.contains("expected a string"), "{p}");
        let p = problem("[{\"name\": \"\", \"type\": \"sd15\"}]");
        assert!(p.message.contains("empty"), "{p}");
        let p = problem("[\"A\"]");
        assert!(p.message.contains("expected a model"), "{p}");
        assert_eq!(parse_catalog(b"[]\n\xff").unwrap_err().line, 2);
    }
}
