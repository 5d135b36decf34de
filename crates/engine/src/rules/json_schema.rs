//! JSON Schemas (draft 2020-12) of the rule files, for editors with a TOML language server
//! (`jobpoints schema`, committed under `rules/schemas/`).
//!
//! They are derived from the types in [`schema`](crate::rules::schema) that parse the files, so
//! a key added there is in the schemas, with its doc comment as description. The few values the
//! loader reads by hand from a `toml::Value` (dates, catalog entries, examples) are described by
//! the shapes of [`shapes`](crate::rules::shapes), which parse nothing. Subschemas are inlined: taplo reads a schema as draft
//! 7 and shows a key's own description only when it is not behind a `$ref`.

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};
use serde_json::Value;

use crate::rules::files::{CATALOG_FILE, KINDS_FILE, POLICY_FILE};
use crate::rules::schema::{CatalogFile, KindsFile, PolicyFile, RuleFile};

/// A schema file: its name under `rules/schemas/`, the rule files it describes, its text.
pub struct SchemaFile {
    pub name: &'static str,
    /// Which files of a rule set it applies to, for people (`.taplo.toml` has the globs).
    pub applies_to: &'static str,
    pub text: String,
}

/// The four schemas, in a stable order, rendered as they are committed.
pub fn schema_files() -> Vec<SchemaFile> {
    let settings = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .with_transform(RecursiveTransform(no_null));
    let file = |name, applies_to, schema: Schema| SchemaFile {
        name,
        applies_to,
        text: render(&schema),
    };
    vec![
        file(
            "kinds.schema.json",
            KINDS_FILE,
            root::<KindsFile>(&settings),
        ),
        file(
            "policy.schema.json",
            POLICY_FILE,
            root::<PolicyFile>(&settings),
        ),
        file(
            "catalog.schema.json",
            CATALOG_FILE,
            root::<CatalogFile>(&settings),
        ),
        file(
            "rule.schema.json",
            "families/*.toml, models/*.toml",
            root::<RuleFile>(&settings),
        ),
    ]
}

fn root<T: JsonSchema>(settings: &SchemaSettings) -> Schema {
    settings
        .clone()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// TOML has no null: an optional key is one left out, so `Option`'s `"null"` type, enum value
/// and default go.
fn no_null(schema: &mut Schema) {
    if schema.get("default").is_some_and(Value::is_null) {
        schema.remove("default");
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    // `Option` of an enum is `anyOf: [the enum, {"type": "null"}]`: keep the enum alone, with
    // the key's own description.
    if let Some(Value::Array(options)) = schema.get_mut("anyOf") {
        options.retain(|o| o.get("type").and_then(Value::as_str) != Some("null"));
        if let [Value::Object(only)] = options.as_slice() {
            let only = only.clone();
            schema.remove("anyOf");
            for (k, v) in only {
                if schema.get(&k).is_none() {
                    schema.insert(k, v);
                }
            }
        }
    }
    let Some(Value::Array(types)) = schema.get_mut("type") else {
        return;
    };
    types.retain(|t| t != "null");
    if let [only] = types.as_slice() {
        let only = only.clone();
        schema.insert("type".into(), only);
    }
}

/// Pretty JSON with a final newline: the committed form, compared byte for byte by a test.
fn render(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema is JSON");
    text.push('\n');
    text
}
