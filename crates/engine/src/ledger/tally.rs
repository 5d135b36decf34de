//! Exact totals per group (miner, model, point kind, day): what operators pay out from.
//!
//! Totals are integer micro-points, so they are identical to the last digit whatever the
//! thread count or the order of the input lines. A tally is also a *partial*: written as
//! JSON (`tally --format json`), partials of any split of a ledger merge (`jobpoints merge`)
//! into exactly the tally of the whole.
//!
//! Memory is proportional to the number of groups: a group is its key (one string) and a
//! few integers per status and point kind.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::engine::points::PointsSum;
use crate::engine::score::{ScoreRef, Status};
use crate::ledger::safe::{csv_safe, terminal_safe};

/// The version of the JSON partial format; a change to its meaning bumps it.
pub const TALLY_SCHEMA_VERSION: u32 = 1;

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The job's `miner` (or `miner_id`).
    Miner,
    /// The job's model name.
    Model,
    /// The point kind earned (`waifu`, `llama`, ...).
    Kind,
    /// The UTC day of the job's `completed_at`.
    Day,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Miner => "miner",
            GroupBy::Model => "model",
            GroupBy::Kind => "kind",
            GroupBy::Day => "day",
        }
    }
}

/// How a tally is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TallyFormat {
    /// Aligned columns with a total row, for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// The versioned partial: one object per group, exact decimal strings; mergeable.
    Json,
}

/// Job and status counts of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub jobs: u64,
    pub ok: u64,
    pub below_threshold: u64,
    pub over_limit: u64,
    pub no_rule: u64,
    pub disabled: u64,
    /// Absent from partials written before it existed: 0.
    #[serde(default)]
    pub unmeasured: u64,
    pub invalid: u64,
    pub error: u64,
}

impl Counts {
    fn add(&mut self, status: Status) {
        self.jobs += 1;
        match status {
            Status::Ok => self.ok += 1,
            Status::BelowThreshold => self.below_threshold += 1,
            Status::OverLimit => self.over_limit += 1,
            Status::NoRule => self.no_rule += 1,
            Status::Disabled => self.disabled += 1,
            Status::Unmeasured => self.unmeasured += 1,
            Status::Invalid => self.invalid += 1,
            Status::Error => self.error += 1,
        }
    }

    pub fn merge(&mut self, o: &Counts) {
        self.jobs += o.jobs;
        self.ok += o.ok;
        self.below_threshold += o.below_threshold;
        self.over_limit += o.over_limit;
        self.no_rule += o.no_rule;
        self.disabled += o.disabled;
        self.unmeasured += o.unmeasured;
        self.invalid += o.invalid;
        self.error += o.error;
    }

    /// Jobs that were `invalid` or whose rule failed.
    pub fn failed(&self) -> u64 {
        self.invalid + self.error
    }

    fn cells(&self) -> [u64; 9] {
        [
            self.jobs,
            self.ok,
            self.below_threshold,
            self.over_limit,
            self.no_rule,
            self.disabled,
            self.unmeasured,
            self.invalid,
            self.error,
        ]
    }
}

/// Counts and exact points of one group; `points[i]` is for point kind `i` of the tally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTotals {
    pub counts: Counts,
    points: Vec<PointsSum>,
}

impl GroupTotals {
    fn add_points(&mut self, kind: usize, sum: PointsSum) {
        if self.points.len() <= kind {
            self.points.resize(kind + 1, PointsSum::default());
        }
        self.points[kind] += sum;
    }
}

/// Group separator inside a key: a control character no model, miner or day contains.
const SEP: char = '\u{1f}';

/// Writes the group of `s` under `by` into `key` (cleared first): its values joined by
/// [`KEY_SEP`], `-` for a value the job lacks. `diff --by` groups the same way.
pub fn group_key(by: &[GroupBy], s: &ScoreRef<'_>, key: &mut String) {
    key.clear();
    for (i, g) in by.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        let v = match g {
            GroupBy::Miner => s.miner,
            GroupBy::Model => s.model,
            GroupBy::Kind => s.kind,
            GroupBy::Day => s.completed_at.and_then(|t| t.get(..10)),
        };
        // Keep keys well-formed even for hostile values.
        key.extend(
            v.unwrap_or("-")
                .chars()
                .map(|c| if c == SEP { ' ' } else { c }),
        );
    }
}

/// What separates the values of a group key.
pub const KEY_SEP: char = SEP;

/// Partial totals, as a worker builds them for one batch.
#[derive(Debug, Default)]
pub struct PartialTally {
    groups: HashMap<Box<str>, GroupTotals>,
    kinds: Vec<String>,
    key: String,
}

impl PartialTally {
    /// Adds one result under its group.
    pub fn add(&mut self, by: &[GroupBy], s: &ScoreRef<'_>) {
        group_key(by, s, &mut self.key);
        let kind = (s.status == Status::Ok).then(|| {
            let name = s.kind.unwrap_or("-");
            match self.kinds.iter().position(|k| k == name) {
                Some(i) => i,
                None => {
                    self.kinds.push(name.to_string());
                    self.kinds.len() - 1
                }
            }
        });
        let group = match self.groups.get_mut(self.key.as_str()) {
            Some(t) => t,
            None => self.groups.entry(self.key.as_str().into()).or_default(),
        };
        group.counts.add(s.status);
        if let Some(kind) = kind {
            group.add_points(kind, PointsSum::default() + s.points);
        }
    }
}

/// Totals per group, sorted by group, and what they were made with.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub by: Vec<GroupBy>,
    /// The `--at` time the jobs were priced at, if one was forced.
    pub at: Option<String>,
    /// The rule sets that priced the jobs (one, unless partials of several were merged).
    pub rulesets: BTreeSet<String>,
    /// Groups are split by rule set too (merging partials of different rule sets).
    pub per_ruleset: bool,
    kinds: Vec<String>,
    groups: BTreeMap<Box<str>, GroupTotals>,
}

impl Tally {
    pub fn new(by: Vec<GroupBy>, at: Option<String>, ruleset: &str) -> Self {
        Tally {
            by,
            at,
            rulesets: BTreeSet::from([ruleset.to_string()]),
            ..Tally::default()
        }
    }

    /// Index of point kind `name`, added if new.
    fn kind(&mut self, name: &str) -> usize {
        match self.kinds.iter().position(|k| k == name) {
            Some(i) => i,
            None => {
                self.kinds.push(name.to_string());
                self.kinds.len() - 1
            }
        }
    }

    pub fn merge(&mut self, part: PartialTally) {
        let map: Vec<usize> = part.kinds.iter().map(|k| self.kind(k)).collect();
        for (key, totals) in part.groups {
            let group = self.groups.entry(key).or_default();
            group.counts.merge(&totals.counts);
            for (i, sum) in totals.points.into_iter().enumerate() {
                group.add_points(map[i], sum);
            }
        }
    }

    /// Every point kind that appears, sorted.
    pub fn point_kinds(&self) -> Vec<String> {
        let mut kinds = self.kinds.clone();
        kinds.sort();
        kinds
    }

    /// Each group's key, counts and points of every kind added together (for a table whose
    /// rows are point kinds, where that sum is the kind's own).
    pub fn each(&self) -> impl Iterator<Item = (Vec<&str>, Counts, PointsSum)> {
        self.groups.iter().map(|(k, t)| {
            let mut sum = PointsSum::default();
            for p in &t.points {
                sum += *p;
            }
            (k.split(SEP).collect(), t.counts, sum)
        })
    }

    /// Totals over every group.
    pub fn total(&self) -> GroupTotals {
        let mut all = GroupTotals::default();
        for t in self.groups.values() {
            all.counts.merge(&t.counts);
            for (i, sum) in t.points.iter().enumerate() {
                all.add_points(i, *sum);
            }
        }
        all
    }

    /// The dimension names of a group key: the rule set first when split by it.
    fn dimensions(&self) -> Vec<&'static str> {
        let mut dims: Vec<&'static str> =
            self.per_ruleset.then_some("ruleset").into_iter().collect();
        dims.extend(self.by.iter().map(|g| g.as_str()));
        dims
    }

    /// The header: dimensions, counts, then `KIND_points` per point kind (sorted).
    fn header(&self, kinds: &[String]) -> Vec<String> {
        let mut header: Vec<String> = self.dimensions().into_iter().map(String::from).collect();
        header.extend(
            [
                "jobs",
                "ok",
                "below_threshold",
                "over_limit",
                "no_rule",
                "disabled",
                "unmeasured",
                "invalid",
                "error",
            ]
            .map(String::from),
        );
        header.extend(kinds.iter().map(|k| format!("{k}_points")));
        header
    }

    /// Where each of `kinds` (sorted names) is in a group's points.
    fn columns(&self, kinds: &[String]) -> Vec<Option<usize>> {
        kinds
            .iter()
            .map(|k| self.kinds.iter().position(|x| x == k))
            .collect()
    }

    /// One row's cells: `key`, the counts, points per column.
    fn row(key: Vec<String>, t: &GroupTotals, columns: &[Option<usize>]) -> Vec<String> {
        let mut r = key;
        r.extend(t.counts.cells().map(|n| n.to_string()));
        r.extend(columns.iter().map(|c| {
            c.and_then(|i| t.points.get(i).copied())
                .unwrap_or_default()
                .to_string()
        }));
        r
    }

    /// Each row, made as it is written (so writing takes no memory beyond the tally), then
    /// the total row when asked.
    fn rows<'s>(
        &'s self,
        columns: &'s [Option<usize>],
        with_total: bool,
    ) -> impl Iterator<Item = Vec<String>> + 's {
        let total = with_total.then(|| {
            let mut key = vec!["-".to_string(); self.dimensions().len()];
            if let Some(first) = key.first_mut() {
                *first = "total".to_string();
            }
            Self::row(key, &self.total(), columns)
        });
        self.groups
            .iter()
            .map(move |(k, t)| Self::row(k.split(SEP).map(String::from).collect(), t, columns))
            .chain(total)
    }

    /// Writes the tally in `format`.
    pub fn write(&self, format: TallyFormat, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match format {
            TallyFormat::Table => self.write_table(out),
            TallyFormat::Csv => self.write_csv(out),
            TallyFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, &DocView(self))?;
                out.write_all(b"\n")
            }
        }
    }

    /// The tally in `format`, as text.
    pub fn render(&self, format: TallyFormat) -> String {
        let mut out = Vec::new();
        self.write(format, &mut out).expect("writing to memory");
        String::from_utf8(out).expect("tallies are UTF-8")
    }

    fn write_table(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let kinds = self.point_kinds();
        let columns = self.columns(&kinds);
        let header = self.header(&kinds);
        let dims = self.dimensions().len();
        // Miner and model names come from job files.
        let safe = |mut r: Vec<String>| {
            for cell in r.iter_mut().take(dims) {
                if let std::borrow::Cow::Owned(safe) = terminal_safe(cell) {
                    *cell = safe;
                }
            }
            r
        };
        // Two passes: the widths, then the rows.
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for r in self.rows(&columns, true).map(safe) {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut line = String::new();
        let mut write_row = |r: &[String]| {
            line.clear();
            for (i, c) in r.iter().enumerate() {
                if i < dims {
                    let _ = write!(line, "{c:<w$}  ", w = widths[i]);
                } else {
                    let _ = write!(line, "{c:>w$}  ", w = widths[i]);
                }
            }
            let end = line.trim_end().len();
            line.truncate(end);
            line.push('\n');
            out.write_all(line.as_bytes())
        };
        write_row(&header)?;
        for r in self.rows(&columns, true).map(safe) {
            write_row(&r)?;
        }
        Ok(())
    }

    fn write_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let kinds = self.point_kinds();
        let columns = self.columns(&kinds);
        let dims = self.dimensions().len();
        let mut w = csv::Writer::from_writer(out);
        w.write_record(self.header(&kinds))?;
        for r in self.rows(&columns, false) {
            w.write_record(r.iter().enumerate().map(|(i, c)| {
                if i < dims {
                    csv_safe(c).into_owned()
                } else {
                    c.clone()
                }
            }))?;
        }
        w.flush()
    }

    /// Each point kind (sorted) with its sum in `t`, as exact decimal strings. Every group
    /// names every point kind of the tally (0 where it earned none), so a partial's text does
    /// not depend on which kinds its own jobs happened to earn.
    fn points_doc(
        t: &GroupTotals,
        kinds: &[String],
        columns: &[Option<usize>],
    ) -> BTreeMap<String, String> {
        kinds
            .iter()
            .zip(columns)
            .map(|(k, c)| {
                let p = c.and_then(|i| t.points.get(i).copied()).unwrap_or_default();
                (k.clone(), p.to_string())
            })
            .collect()
    }

    /// Reads a partial written by `tally --format json` (or `merge --format json`).
    pub fn from_json(text: &str) -> Result<Tally, String> {
        let doc: TallyDoc = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if doc.schema_version != TALLY_SCHEMA_VERSION {
            return Err(format!(
                "schema_version {} is not the one this jobpoints reads ({TALLY_SCHEMA_VERSION})",
                doc.schema_version
            ));
        }
        let per_ruleset = doc.groups.iter().any(|g| g.ruleset.is_some());
        let mut tally = Tally {
            by: doc.by.clone(),
            at: doc.at,
            rulesets: doc.rulesets.into_iter().collect(),
            per_ruleset,
            ..Tally::default()
        };
        if tally.rulesets.len() > 1 && !per_ruleset {
            return Err("it names several rule sets but its groups do not say which".into());
        }
        let mut sum = GroupTotals::default();
        for g in doc.groups {
            if g.ruleset.is_some() != per_ruleset {
                return Err("some groups name a rule set and some do not".into());
            }
            let mut key = String::new();
            if let Some(r) = &g.ruleset {
                key.push_str(r);
            }
            for (i, dim) in tally.by.iter().enumerate() {
                let value = g.group.get(dim.as_str()).ok_or_else(|| {
                    format!(
                        "a group has no `{}` although the tally is by it",
                        dim.as_str()
                    )
                })?;
                if i > 0 || per_ruleset {
                    key.push(SEP);
                }
                key.push_str(value);
            }
            if g.group.len() != tally.by.len() {
                return Err(format!("group {:?} does not match `by`", g.group));
            }
            // A partial is written by `tally`; one whose counts do not add up, or that pays
            // negative points, was edited, and would skew the merge (#22).
            let statuses = g.counts.cells()[1..].iter().sum::<u64>();
            if g.counts.jobs != statuses {
                return Err(format!(
                    "group {:?} counts {} jobs but its statuses add up to {statuses}",
                    g.group, g.counts.jobs
                ));
            }
            let mut totals = GroupTotals {
                counts: g.counts,
                points: Vec::new(),
            };
            for (kind, text) in &g.points {
                let p = parse_sum(text).map_err(|e| format!("points of `{kind}`: {e}"))?;
                if p.micros() < 0 {
                    return Err(format!(
                        "group {:?} has negative points of `{kind}` ({text})",
                        g.group
                    ));
                }
                let i = tally.kind(kind);
                totals.add_points(i, p);
            }
            sum.counts.merge(&totals.counts);
            for (i, p) in totals.points.iter().enumerate() {
                sum.add_points(i, *p);
            }
            if tally.groups.insert(key.into(), totals).is_some() {
                return Err("a group appears twice".into());
            }
        }
        // The total is written for people; it must agree with the groups it sums.
        let mut total = GroupTotals {
            counts: doc.total.counts,
            points: Vec::new(),
        };
        for (kind, text) in &doc.total.points {
            let i = tally.kind(kind);
            total.add_points(
                i,
                parse_sum(text).map_err(|e| format!("total `{kind}`: {e}"))?,
            );
        }
        sum.points.resize(tally.kinds.len(), PointsSum::default());
        total.points.resize(tally.kinds.len(), PointsSum::default());
        if sum != total {
            return Err("its `total` does not equal the sum of its groups (was it edited?)".into());
        }
        Ok(tally)
    }

    /// Splits every group by rule set (so partials of different rule sets can be merged).
    pub fn split_by_ruleset(&mut self) {
        if self.per_ruleset {
            return;
        }
        let Some(hash) = self.rulesets.iter().next().cloned() else {
            return;
        };
        let groups = std::mem::take(&mut self.groups);
        self.groups = groups
            .into_iter()
            .map(|(k, t)| {
                let key = if self.by.is_empty() {
                    hash.clone()
                } else {
                    format!("{hash}{SEP}{k}")
                };
                (key.into_boxed_str(), t)
            })
            .collect();
        self.per_ruleset = true;
    }

    /// Adds another tally's groups (same grouping, same `--at`, and the same rule sets unless
    /// both are split by rule set).
    pub fn absorb(&mut self, other: Tally) {
        let map: Vec<usize> = other.kinds.iter().map(|k| self.kind(k)).collect();
        for (key, totals) in other.groups {
            let group = self.groups.entry(key).or_default();
            group.counts.merge(&totals.counts);
            for (i, sum) in totals.points.into_iter().enumerate() {
                group.add_points(map[i], sum);
            }
        }
        self.rulesets.extend(other.rulesets);
    }
}

/// The JSON partial of a tally, serialized group by group without building it first.
struct DocView<'t>(&'t Tally);

impl Serialize for DocView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let t = self.0;
        let mut doc = s.serialize_struct("TallyDoc", 6)?;
        doc.serialize_field("schema_version", &TALLY_SCHEMA_VERSION)?;
        doc.serialize_field("by", &t.by)?;
        doc.serialize_field("at", &t.at)?;
        doc.serialize_field("rulesets", &t.rulesets)?;
        doc.serialize_field("groups", &GroupsView(t))?;
        let total = t.total();
        let kinds = t.point_kinds();
        let columns = t.columns(&kinds);
        doc.serialize_field(
            "total",
            &TotalDoc {
                counts: total.counts,
                points: Tally::points_doc(&total, &kinds, &columns),
            },
        )?;
        doc.end()
    }
}

struct GroupsView<'t>(&'t Tally);

impl Serialize for GroupsView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let dims = t.dimensions();
        let kinds = t.point_kinds();
        let columns = t.columns(&kinds);
        s.collect_seq(t.groups.iter().map(|(key, totals)| {
            let mut parts = key.split(SEP);
            let ruleset = if t.per_ruleset {
                parts.next().map(String::from)
            } else {
                None
            };
            GroupDoc {
                group: dims
                    .iter()
                    .skip(usize::from(t.per_ruleset))
                    .map(|d| d.to_string())
                    .zip(parts.map(String::from))
                    .collect(),
                ruleset,
                counts: totals.counts,
                points: Tally::points_doc(totals, &kinds, &columns),
            }
        }))
    }
}

/// `"123.456000"` as exact micro-points (may be any size; sums never round).
fn parse_sum(text: &str) -> Result<PointsSum, String> {
    let bad = || format!("`{text}` is not a decimal with at most 6 fractional digits");
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let (neg, int) = match int.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, int),
    };
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 6
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i128 = int.parse().map_err(|_| bad())?;
    let mut micros = whole.checked_mul(1_000_000).ok_or_else(bad)?;
    for (i, b) in frac.bytes().enumerate() {
        micros += i128::from(b - b'0') * 10i128.pow(5 - i as u32);
    }
    Ok(PointsSum::from_micros(if neg { -micros } else { micros }))
}

/// The JSON partial, as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TallyDoc {
    schema_version: u32,
    by: Vec<GroupBy>,
    at: Option<String>,
    rulesets: Vec<String>,
    groups: Vec<GroupDoc>,
    total: TotalDoc,
}

#[derive(Debug, Serialize, Deserialize)]
struct GroupDoc {
    group: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    ruleset: Option<String>,
    #[serde(flatten)]
    counts: Counts,
    /// Exact decimals, as strings so that no JSON reader rounds them.
    points: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TotalDoc {
    #[serde(flatten)]
    counts: Counts,
    points: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_parse_exactly() {
        assert_eq!(parse_sum("1.5").unwrap().micros(), 1_500_000);
        assert_eq!(
            parse_sum("170141183460469231731687.303715")
                .unwrap()
                .to_string(),
            "170141183460469231731687.303715"
        );
        assert!(parse_sum("1.2345678").is_err());
        assert!(parse_sum("1e3").is_err());
        assert!(parse_sum("").is_err());
    }
}
