//! The shapes of the values the loader reads by hand from a `toml::Value` (dates, catalog
//! entries, aliases, examples): types that parse nothing and only describe those values to
//! the JSON Schemas (`schema.rs` names them in its `#[schemars(with = ...)]` attributes).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::json;

use crate::engine::status::Status;

/// Statuses an example may expect: every status a valid job can get (also the schema's).
pub const EXAMPLE_STATUSES: [Status; 5] = [
    Status::Ok,
    Status::BelowThreshold,
    Status::OverLimit,
    Status::NoRule,
    Status::Disabled,
];

/// A date as the loader reads it (`effective_from`, a catalog entry's `since` and `until`).
/// Editors see a TOML date as a string, so both forms are strings here.
#[derive(JsonSchema)]
#[schemars(
    example = "2024-04-01",
    example = "2024-04-01T12:00:00Z",
    example = "2024-04-01T14:00:00+02:00"
)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub struct TomlDate(String);

/// A `catalog.toml` entry: the model's family, a window (the family and the instants between
/// which the model was listed), or an array of windows in time order.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub enum CatalogEntryShape {
    /// `Model = "family"`: listed always, priced whenever its family is.
    Family(String),
    /// `Model = { family = "...", since = TIME, until = TIME }`.
    Dated(DatedEntryShape),
    /// One window per line: removed and re-added, or a family change.
    Windows(Vec<DatedEntryShape>),
}

/// A catalog window; outside every window of a model its jobs get `no_rule`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub struct DatedEntryShape {
    /// The family whose rule prices the model inside the window.
    family: String,
    /// The first instant the model is listed (a TOML date or date-time, UTC unless an offset
    /// is given; a bare date is its UTC midnight). Default: always was.
    since: Option<TomlDate>,
    /// The first instant it no longer is; after `since`. Default: still is.
    until: Option<TomlDate>,
    /// The catalog versions (keys of `[versions]`) whose commits set `since` and `until`.
    catalog: Option<CatalogRefsShape>,
}

/// Which catalog versions set a window's bounds: `{ since = "014", until = "047" }`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub struct CatalogRefsShape {
    /// The version whose commit time is `since`.
    since: Option<String>,
    /// The version whose commit time is `until`.
    until: Option<String>,
}

/// A version of the network's catalog, as windows name it.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub struct CatalogVersionShape {
    /// The full commit id (hex).
    commit: String,
    /// The commit time, UTC.
    at: TomlDate,
    /// The commit's subject line.
    subject: Option<String>,
    /// Why the version was left out (it does not parse); windows cannot name it.
    skipped: Option<String>,
}

/// An alias: one window, or an array of windows in time order.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub enum AliasEntryShape {
    One(AliasShape),
    Windows(Vec<AliasShape>),
}

/// Inside its window, a job carrying the alias's name is priced as `model`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub struct AliasShape {
    /// The catalog model it prices as.
    model: String,
    /// `rename` (the catalog replaced the name), `gateway` (the gateway rewrote it) or
    /// `redirect` (the catalog's `redirect`: jobs were submitted under this name).
    kind: AliasKindShape,
    /// Where the fact comes from, and why it is an alias.
    source: String,
    /// The first instant it is an alias. Default: always was.
    since: Option<TomlDate>,
    /// The first instant it no longer is. Default: still is.
    until: Option<TomlDate>,
    /// The catalog versions whose commits set `since` and `until`.
    catalog: Option<CatalogRefsShape>,
}

/// The kinds of alias.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub enum AliasKindShape {
    Rename,
    Gateway,
    Redirect,
}

/// A declined alias: one, or an array.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub enum DeclinedEntryShape {
    One(DeclinedShape),
    Many(Vec<DeclinedShape>),
}

/// A rename or redirect governance decided is not an alias.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub struct DeclinedShape {
    /// The other name of the candidate.
    model: String,
    /// `rename` or `redirect`.
    kind: AliasKindShape,
    /// The catalog version where the candidate appeared.
    catalog: Option<String>,
    /// Why it is not an alias.
    reason: String,
}

/// The floors of one job kind: value (an input or derived value) = the smallest `min` every
/// priced version of the kind must set on it.
#[derive(JsonSchema)]
#[allow(dead_code)] // describes a table the loader reads as a map; never built
pub struct FloorsShape(indexmap::IndexMap<String, f64>);

/// An example job of a rule version, verified by `jobpoints check`: the job kind's inputs
/// (those with a `default`, or `optional`, may be left out), the `points` it must earn and
/// optionally its `status` and the time `at` which it is priced.
#[derive(JsonSchema)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub struct ExampleShape {
    /// The points the job must earn, exact to 6 decimals: a number ≥ 0, or a decimal string
    /// (`"1.8"`). 0 unless the status is `ok`.
    points: PointsShape,
    /// The status the job must get: `ok` (the default for a priced version),
    /// `below_threshold`, `over_limit`, `no_rule` or `disabled` (the default for a `no_rule`
    /// or `disabled` version).
    status: Option<ExampleStatus>,
    /// The time the example is priced at, which picks the execution limits of kinds.toml it
    /// runs under: within the version's time in force. Default: the version's
    /// `effective_from`.
    at: Option<TomlDate>,
    /// The job's inputs, named as in kinds.toml: numbers of the input's type.
    #[serde(flatten)]
    inputs: indexmap::IndexMap<String, f64>,
}

/// Expected points: a number, or a decimal string read exactly.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes a TOML value read by hand; never built
pub enum PointsShape {
    Number(#[schemars(range(min = 0))] f64),
    Decimal(#[schemars(regex(pattern = r"^[0-9]+(\.[0-9]{0,6})?$"))] String),
}

/// The status an example expects: one of the loader's own list.
pub struct ExampleStatus;

impl JsonSchema for ExampleStatus {
    fn schema_name() -> Cow<'static, str> {
        "ExampleStatus".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = (EXAMPLE_STATUSES.iter()).map(|s| s.as_str()).collect();
        schemars::json_schema!({ "type": "string", "enum": names })
    }
}

/// The keys of a version that say how it prices (or why it does not); exactly one is given.
const FORMULA_KEYS: [&str; 3] = ["formula", "formula_file", "expr"];
const UNPRICED_KEYS: [&str; 2] = ["no_rule", "disabled"];
/// What only a priced version may give.
const PRICING_KEYS: [&str; 3] = ["multiplier", "min", "max"];

/// A version gives exactly one of `formula`, `formula_file`, `expr`, `no_rule` and
/// `disabled`, and a `no_rule` or `disabled` one no multiplier, `min` or `max` (`check`'s
/// `formula-choice`), so an editor flags a version that would not load.
pub fn one_pricing(schema: &mut Schema) {
    let one_of = (FORMULA_KEYS.iter().chain(&UNPRICED_KEYS))
        .map(|k| json!({ "required": [k] }))
        .collect();
    let unpriced_with_pricing = (UNPRICED_KEYS.iter())
        .flat_map(|u| {
            PRICING_KEYS
                .iter()
                .map(move |p| json!({ "required": [u, p] }))
        })
        .collect::<Vec<_>>();
    schema.insert("oneOf".into(), one_of);
    schema.insert("not".into(), json!({ "anyOf": unpriced_with_pricing }));
}
