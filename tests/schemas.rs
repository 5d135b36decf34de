//! The rule files' JSON Schemas (#15): `jobpoints schema` writes what `rules/schemas/` commits,
//! `.taplo.toml` maps every rule file to its schema, the schemas accept every rule set `check`
//! accepts and reject unknown keys and wrong types as `check` does, and they sit outside the
//! rule set's hash.

use std::collections::BTreeMap;
use std::path::Path;

use jobpoints::internals::{RuleFiles, RulesOrigin, load};
use serde_json::{Value, json};

use crate::rule_errors::overlay;
use crate::util::{fixture, jobpoints, root, rules_dir};

const SCHEMA_NAMES: [&str; 4] = [
    "kinds.schema.json",
    "policy.schema.json",
    "catalog.schema.json",
    "rule.schema.json",
];

/// The schema a rule file (path relative to `rules/`) must be checked against, as the loader
/// reads it: the three named files, and every other `*.toml` is a rule.
fn schema_of(rel: &str) -> &'static str {
    match rel {
        "kinds.toml" => "kinds.schema.json",
        "policy.toml" => "policy.schema.json",
        "catalog.toml" => "catalog.schema.json",
        _ => "rule.schema.json",
    }
}

fn committed(name: &str) -> Value {
    let path = rules_dir().join("schemas").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The committed schemas, compiled as their `$schema` (draft 2020-12) says.
fn validators() -> BTreeMap<&'static str, jsonschema::Validator> {
    SCHEMA_NAMES
        .iter()
        .map(|name| {
            let validator = jsonschema::validator_for(&committed(name))
                .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
            (*name, validator)
        })
        .collect()
}

/// A TOML document as an editor's language server hands it to the schema: dates and times
/// become strings (taplo does the same).
fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

fn parse(rel: &str, text: &str) -> Value {
    let table: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    toml_to_json(&toml::Value::Table(table))
}

/// The schema errors of one rule file, as `path: message` lines (empty: valid).
fn schema_errors(
    validators: &BTreeMap<&'static str, jsonschema::Validator>,
    rel: &str,
    text: &str,
) -> Vec<String> {
    let instance = parse(rel, text);
    validators[schema_of(rel)]
        .iter_errors(&instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Every `*.toml` of a rule set passes its schema.
fn assert_all_valid(what: &str, files: &RuleFiles) {
    let validators = validators();
    let mut checked = 0;
    for (rel, bytes) in &files.files {
        if !rel.ends_with(".toml") {
            continue;
        }
        let errors = schema_errors(&validators, rel, std::str::from_utf8(bytes).unwrap());
        assert!(
            errors.is_empty(),
            "{what}: {rel} fails {}:\n{}",
            schema_of(rel),
            errors.join("\n")
        );
        checked += 1;
    }
    assert!(checked >= 4, "{what}: only {checked} TOML files");
}

#[test]
fn committed_schemas_are_what_jobpoints_schema_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = jobpoints()
        .args(["schema", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let names = |d: &Path| -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    let committed_dir = rules_dir().join("schemas");
    assert_eq!(names(dir.path()), names(&committed_dir));
    assert_eq!(names(dir.path()).len(), SCHEMA_NAMES.len());
    for name in SCHEMA_NAMES {
        let fresh = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let old = std::fs::read_to_string(committed_dir.join(name)).unwrap();
        assert!(
            fresh == old,
            "rules/schemas/{name} is stale: the rule file types changed. Regenerate with \
             `cargo run -- schema --out rules/schemas` and commit the result."
        );
    }
    // One kind to stdout: the same text.
    let out = jobpoints().args(["schema", "rule"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(committed_dir.join("rule.schema.json")).unwrap()
    );
    // Neither a kind nor a directory: a usage error, not four documents run together.
    let out = jobpoints().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// What editors need: valid draft 2020-12 that a draft 7 reader (taplo) also compiles, every
/// key described, unknown keys refused, subschemas inline (taplo hides a description behind a
/// `$ref`), and the documented defaults.
#[test]
fn schemas_describe_every_key_and_refuse_unknown_ones() {
    fn walk(name: &str, at: &str, schema: &Value, keys: &mut usize) {
        let Some(obj) = schema.as_object() else {
            return;
        };
        assert!(
            !obj.contains_key("$ref") && !obj.contains_key("$defs"),
            "{name}{at}: not inlined"
        );
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            assert!(
                obj.contains_key("additionalProperties"),
                "{name}{at}: unknown keys are not refused"
            );
            for (key, sub) in props {
                let described = sub.get("description").and_then(Value::as_str);
                assert!(
                    described.is_some_and(|d| d.len() > 10),
                    "{name}{at}/{key}: no description"
                );
                *keys += 1;
            }
        }
        for (k, sub) in obj {
            match sub {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(name, &format!("{at}/{k}/{i}"), item, keys);
                    }
                }
                _ => walk(name, &format!("{at}/{k}"), sub, keys),
            }
        }
    }
    for name in SCHEMA_NAMES {
        let schema = committed(name);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{name} is not a valid schema: {e}");
        }
        let mut as_draft7 = schema.clone();
        as_draft7.as_object_mut().unwrap().remove("$schema");
        jsonschema::draft7::new(&as_draft7).unwrap_or_else(|e| panic!("{name} as draft 7: {e}"));
        assert_eq!(schema["additionalProperties"], false, "{name}");
        let mut keys = 0;
        walk(name, "", &schema, &mut keys);
        assert!(keys >= 4, "{name}: {keys} keys");
    }
    let kinds = committed("kinds.schema.json");
    let input = &kinds["properties"]["jobs"]["additionalProperties"]["properties"]["inputs"]["additionalProperties"]
        ["properties"];
    assert_eq!(input["type"]["default"], "int");
    assert_eq!(input["type"]["enum"], json!(["int", "float"]));
    assert_eq!(input["optional"]["default"], false);
    let rule = committed("rule.schema.json");
    let version = &rule["properties"]["version"]["items"]["properties"];
    assert_eq!(version["multiplier"]["default"], 1);
    assert_eq!(
        version["examples"]["items"]["properties"]["status"]["enum"],
        json!(["ok", "below_threshold", "over_limit", "no_rule", "disabled"])
    );
}

/// `.taplo.toml`'s rules, as taplo applies them: the last rule whose `include` matches a path
/// (and whose `exclude` does not) gives its schema.
fn taplo_schema_for(config: &toml::Table, path: &str) -> Option<String> {
    let set = |rule: &toml::Table, key: &str| {
        let mut b = globset::GlobSetBuilder::new();
        for p in rule
            .get(key)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            b.add(globset::Glob::new(p.as_str().unwrap()).unwrap());
        }
        b.build().unwrap()
    };
    let rules = config["rule"].as_array().expect("[[rule]] tables");
    rules
        .iter()
        .map(|r| r.as_table().unwrap())
        .filter(|r| set(r, "include").is_match(path) && !set(r, "exclude").is_match(path))
        .filter_map(|r| r.get("schema")?.get("path")?.as_str().map(String::from))
        .next_back()
}

#[test]
fn taplo_maps_every_rule_file_to_its_schema() {
    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join(".taplo.toml")).unwrap()).unwrap();
    let shipped = RuleFiles::from_dir(&rules_dir()).unwrap();
    let new_files = [
        "families/new.toml",
        "models/new-model.toml",
        "more/deep/x.toml",
    ];
    let rels = (shipped.files.keys().map(String::as_str)).chain(new_files);
    let mut mapped = 0;
    for rel in rels.filter(|r| r.ends_with(".toml")) {
        let schema = taplo_schema_for(&config, &format!("rules/{rel}"));
        assert_eq!(
            schema.as_deref(),
            Some(format!("rules/schemas/{}", schema_of(rel)).as_str()),
            "rules/{rel}"
        );
        assert!(root().join(schema.unwrap()).is_file());
        mapped += 1;
    }
    assert!(mapped > 20, "{mapped}");
    for other in [
        "Cargo.toml",
        "fuzz/Cargo.toml",
        ".taplo.toml",
        "rules/schemas/x.toml",
    ] {
        assert_eq!(taplo_schema_for(&config, other), None, "{other}");
    }
}

#[test]
fn every_shipped_rule_file_is_valid() {
    let shipped = RuleFiles::from_dir(&rules_dir()).unwrap();
    assert!(!load(shipped.clone()).has_errors());
    assert_all_valid("rules/", &shipped);
}

/// Every rule set `check` accepts (`ok_*` changes, and `warn_*` ones, which only warn)
/// passes the schemas.
#[test]
fn every_valid_fixture_is_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixture("rules")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("ok_") || name.starts_with("warn_")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // `ok_*` fixtures end with jobs to score: not rule files.
        let rules = text
            .split_once("=== jobs\n")
            .map_or(text.as_str(), |(r, _)| r);
        let files = overlay(rules);
        assert!(!load(files.clone()).has_errors(), "{name} does not load");
        assert_all_valid(&name, &files);
        n += 1;
    }
    assert!(n >= 6, "{n} fixtures");
}

/// The fixtures whose problem is a key `check` does not know, a value of the wrong type, a
/// missing key or two ways to price at once: the schema says so too, at that key.
#[test]
fn fixtures_with_unknown_keys_or_wrong_types_fail() {
    let validators = validators();
    let cases = [
        ("rules/err_unknown_field.txt", "multiplyer"),
        ("rules/err_bad_type.txt", "/version/0/multiplier"),
        (
            "rules/err_missing_field.txt",
            "\"source\" is a required property",
        ),
        ("rules/err_formula_choice.txt", "/version/0"),
        ("rules/loader/kinds_unknown_field.txt", "colour"),
    ];
    for (fixture_path, expect) in cases {
        let text = std::fs::read_to_string(fixture(fixture_path)).unwrap();
        let files = overlay(&text);
        assert!(load(files.clone()).has_errors(), "{fixture_path} loads");
        // The files the overlay writes (each `--- path` line).
        let written: Vec<&str> = (text.lines())
            .filter_map(|l| l.strip_prefix("--- "))
            .map(str::trim)
            .filter(|p| p.ends_with(".toml") && files.files.contains_key(*p))
            .collect();
        let errors: Vec<String> = written
            .iter()
            .flat_map(|rel| {
                let text = std::str::from_utf8(&files.files[*rel]).unwrap();
                // A file that is not TOML at all is the TOML parser's, not the schema's.
                toml::from_str::<toml::Table>(text)
                    .map(|_| schema_errors(&validators, rel, text))
                    .unwrap_or_default()
            })
            .collect();
        assert!(!errors.is_empty(), "{fixture_path} passes the schemas");
        assert!(
            errors.iter().any(|e| e.contains(expect)),
            "{fixture_path}: no error mentions `{expect}`: {errors:#?}"
        );
    }
}

/// Sets `path` (keys, or indexes into arrays) in a TOML document to `value`.
fn set(doc: &mut toml::Value, path: &[&str], value: toml::Value) {
    let mut at = doc;
    for (i, step) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        at = match at {
            toml::Value::Table(t) if last => {
                t.insert(step.to_string(), value);
                return;
            }
            toml::Value::Table(t) => t.get_mut(*step).unwrap_or_else(|| panic!("no {step}")),
            toml::Value::Array(a) => {
                let idx: usize = step.parse().unwrap();
                if last {
                    a[idx] = value;
                    return;
                }
                &mut a[idx]
            }
            _ => panic!("{step}: not a table or array"),
        };
    }
}

/// Unknown keys and wrong types, written into each shipped file kind at the top and nested:
/// `check` refuses every one, and so does the schema.
#[test]
fn schemas_refuse_what_check_refuses() {
    use toml::Value as T;
    let validators = validators();
    let shipped = RuleFiles::from_dir(&rules_dir()).unwrap();
    let s = |v: &str| T::String(v.into());
    let inline = |text: &str| T::Table(toml::from_str(text).unwrap());
    let model = "ArthemyComics";
    let cases: Vec<(&str, Vec<&str>, T)> = vec![
        ("kinds.toml", vec!["pionts"], inline("x = {}")),
        ("kinds.toml", vec!["jobs", "image", "point"], s("waifu")),
        ("kinds.toml", vec!["jobs", "image", "points"], T::Integer(1)),
        (
            "kinds.toml",
            vec!["jobs", "image", "inputs", "width", "type"],
            s("integer"),
        ),
        (
            "kinds.toml",
            vec!["jobs", "image", "inputs", "width", "min"],
            s("1"),
        ),
        (
            "kinds.toml",
            vec!["jobs", "image", "inputs", "width", "optional"],
            s("yes"),
        ),
        (
            "kinds.toml",
            vec!["jobs", "image", "inputs", "width", "defualt"],
            T::Integer(1),
        ),
        (
            "kinds.toml",
            vec!["jobs", "image", "derived", "pixels"],
            T::Integer(1),
        ),
        (
            "policy.toml",
            vec!["floor"],
            inline("image = { steps = 20 }"),
        ),
        ("policy.toml", vec!["floors", "image", "steps"], s("20")),
        (
            "policy.toml",
            vec!["ceilings", "image", "max_multiplier"],
            s("20"),
        ),
        (
            "policy.toml",
            vec!["ceilings", "image", "max_point"],
            T::Integer(9),
        ),
        ("catalog.toml", vec!["model"], inline("x = \"sd15\"")),
        ("catalog.toml", vec!["models", model], T::Integer(15)),
        (
            "catalog.toml",
            vec!["models", model],
            inline("family = \"sd15\"\nfrom = 2024-05-01"),
        ),
        ("catalog.toml", vec!["unpriced"], inline("llm70b = true")),
        (
            "catalog.toml",
            vec!["models", model],
            inline("family = \"sd15\"\ncatalog = { since = \"001\", unitl = \"012\" }"),
        ),
        (
            "catalog.toml",
            vec!["versions", "001", "comit"],
            s("45b77ad3bbabb4db33f234a814b63673b476b6db"),
        ),
        (
            "catalog.toml",
            vec!["aliases", "Aurora#MagusDevon", "kind"],
            s("renamed"),
        ),
        (
            "catalog.toml",
            vec!["aliases", "Aurora#MagusDevon", "sorce"],
            s("a typo"),
        ),
        (
            "catalog.toml",
            vec!["declined", "meta-llama/llama-3-70b-instruct", "reason"],
            T::Integer(1),
        ),
        (
            "families/sdxl10.toml",
            vec!["rules"],
            inline("family = \"sdxl10\""),
        ),
        ("families/sdxl10.toml", vec!["rule", "famly"], s("sdxl10")),
        ("families/sdxl10.toml", vec!["rule", "kind"], T::Integer(1)),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "multiplyer"],
            T::Float(1.8),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "multiplier"],
            s("1.8"),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "multiplier"],
            T::Float(-1.0),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "version"],
            s("1"),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "source"],
            T::Integer(3),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "assumptions"],
            s("one"),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "min", "steps"],
            s("20"),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "expr"],
            s("1.0"),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "no_rule"],
            s("not priced"),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "effective_from"],
            T::Integer(2024),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "examples", "0", "status"],
            s("okay"),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "examples", "0", "points"],
            s("1,8"),
        ),
        (
            "families/sdxl10.toml",
            vec!["version", "0", "examples", "0", "width"],
            s("512"),
        ),
    ];
    let mut refused = 0;
    for (rel, path, value) in cases {
        let what = format!("{rel} {} = {value}", path.join("."));
        let text = std::str::from_utf8(&shipped.files[rel]).unwrap();
        let mut doc = toml::Value::Table(toml::from_str(text).unwrap());
        set(&mut doc, &path, value);
        let edited = toml::to_string(&doc).unwrap();
        let mut files = RuleFiles::from_dir(&rules_dir()).unwrap();
        files.origin = RulesOrigin::Directory("rules+edit".into());
        files.files.insert(rel.into(), edited.clone().into_bytes());
        assert!(load(files).has_errors(), "check accepts {what}");
        let errors = schema_errors(&validators, rel, &edited);
        assert!(!errors.is_empty(), "the schema accepts {what}");
        refused += 1;
    }
    // The same round trip without an edit is valid: what fails above is the edit.
    for rel in [
        "kinds.toml",
        "policy.toml",
        "catalog.toml",
        "families/sdxl10.toml",
    ] {
        let text = std::str::from_utf8(&shipped.files[rel]).unwrap();
        let doc = toml::Value::Table(toml::from_str(text).unwrap());
        let errors = schema_errors(&validators, rel, &toml::to_string(&doc).unwrap());
        assert!(errors.is_empty(), "{rel}: {errors:?}");
    }
    assert!(refused >= 30);
}

/// `rules/schemas/` is beside the rules, not part of them: editing it, or leaving a stray
/// `.toml` in it, changes neither the rule set nor its hash.
#[test]
fn schemas_are_outside_the_rule_set_hash() {
    let shipped = RuleFiles::from_dir(&rules_dir()).unwrap();
    assert!(rules_dir().join("schemas/rule.schema.json").is_file());
    assert!(!shipped.files.keys().any(|k| k.starts_with("schemas")));
    assert!(
        !(RuleFiles::embedded().files.keys()).any(|k| k.starts_with("schemas")),
        "the binary's copy"
    );

    let dir = tempfile::tempdir().unwrap();
    crate::check_cli::copy_rules(dir.path());
    let before = RuleFiles::from_dir(dir.path()).unwrap().hash();
    assert_eq!(before, shipped.hash());
    let schemas = dir.path().join("schemas");
    std::fs::create_dir_all(schemas.join("old")).unwrap();
    for name in SCHEMA_NAMES {
        let text = std::fs::read_to_string(rules_dir().join("schemas").join(name)).unwrap();
        std::fs::write(schemas.join(name), text.replace("jobpoints", "edited")).unwrap();
    }
    let stray = "[rule]\nfamily = \"nope\"\nkind = \"image\"\n[[version]]\nbroken";
    std::fs::write(schemas.join("stray.toml"), stray).unwrap();
    std::fs::write(schemas.join("old/f.rhai"), "1.0").unwrap();
    let after = RuleFiles::from_dir(dir.path()).unwrap();
    assert_eq!(after.hash(), before);
    assert!(after.refused.is_empty());
    let loaded = load(after);
    assert!(!loaded.has_errors());

    // The same stray file anywhere else is a rule file: it changes the hash and fails.
    std::fs::write(dir.path().join("families/stray.toml"), stray).unwrap();
    let elsewhere = RuleFiles::from_dir(dir.path()).unwrap();
    assert_ne!(elsewhere.hash(), before);
    assert!(load(elsewhere).has_errors());
}
