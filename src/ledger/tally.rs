//! Exact totals per group (miner, model, point kind, day): what operators pay out from.
//!
//! Totals are integer micro-points, so they are identical to the last digit whatever the
//! thread count or the order of the input lines.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::engine::points::PointsSum;
use crate::engine::score::ScoreRef;
use crate::engine::score::Status;

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
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

/// Counts and exact points of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupTotals {
    pub jobs: u64,
    pub ok: u64,
    pub below_threshold: u64,
    pub no_rule: u64,
    pub invalid: u64,
    pub error: u64,
    /// Points per point kind.
    pub points: BTreeMap<String, PointsSum>,
}

impl GroupTotals {
    fn add(&mut self, s: &ScoreRef<'_>) {
        self.jobs += 1;
        match s.status {
            Status::Ok => self.ok += 1,
            Status::BelowThreshold => self.below_threshold += 1,
            Status::NoRule => self.no_rule += 1,
            Status::Invalid => self.invalid += 1,
            Status::Error => self.error += 1,
        }
        if s.status == Status::Ok {
            let kind = s.kind.unwrap_or("-");
            match self.points.get_mut(kind) {
                Some(sum) => *sum += s.points,
                None => {
                    self.points
                        .insert(kind.to_string(), PointsSum::default() + s.points);
                }
            }
        }
    }

    fn merge(&mut self, other: GroupTotals) {
        self.jobs += other.jobs;
        self.ok += other.ok;
        self.below_threshold += other.below_threshold;
        self.no_rule += other.no_rule;
        self.invalid += other.invalid;
        self.error += other.error;
        for (k, v) in other.points {
            *self.points.entry(k).or_default() += v;
        }
    }
}

/// Group separator inside a key: a control character no model, miner or day contains.
const SEP: char = '\u{1f}';

/// Partial totals, as a worker builds them for one batch.
#[derive(Debug, Default)]
pub struct PartialTally {
    groups: HashMap<String, GroupTotals>,
    key: String,
}

impl PartialTally {
    /// Adds one result under its group.
    pub fn add(&mut self, by: &[GroupBy], s: &ScoreRef<'_>) {
        self.key.clear();
        for (i, g) in by.iter().enumerate() {
            if i > 0 {
                self.key.push(SEP);
            }
            let v = match g {
                GroupBy::Miner => s.miner,
                GroupBy::Model => s.model,
                GroupBy::Kind => s.kind,
                GroupBy::Day => s.completed_at.and_then(|t| t.get(..10)),
            };
            // Keep keys well-formed even for hostile values.
            self.key.extend(
                v.unwrap_or("-")
                    .chars()
                    .map(|c| if c == SEP { ' ' } else { c }),
            );
        }
        match self.groups.get_mut(self.key.as_str()) {
            Some(t) => t.add(s),
            None => {
                let mut t = GroupTotals::default();
                t.add(s);
                self.groups.insert(self.key.clone(), t);
            }
        }
    }
}

/// Totals per group, sorted by group.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub by: Vec<GroupBy>,
    pub groups: BTreeMap<Vec<String>, GroupTotals>,
}

impl Tally {
    pub fn new(by: Vec<GroupBy>) -> Self {
        Tally {
            by,
            groups: BTreeMap::new(),
        }
    }

    pub fn merge(&mut self, part: PartialTally) {
        for (key, totals) in part.groups {
            let key: Vec<String> = key.split(SEP).map(String::from).collect();
            self.groups.entry(key).or_default().merge(totals);
        }
    }

    /// Every point kind that appears, sorted.
    pub fn point_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .groups
            .values()
            .flat_map(|t| t.points.keys().cloned())
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Totals over every group.
    pub fn total(&self) -> GroupTotals {
        let mut all = GroupTotals::default();
        for t in self.groups.values() {
            all.merge(t.clone());
        }
        all
    }

    /// Header and rows, shared by the table and CSV renderings.
    pub fn rows(&self, with_total: bool) -> (Vec<String>, Vec<Vec<String>>) {
        let kinds = self.point_kinds();
        let mut header: Vec<String> = self.by.iter().map(|g| g.as_str().to_string()).collect();
        header.extend(
            [
                "jobs",
                "ok",
                "below_threshold",
                "no_rule",
                "invalid",
                "error",
            ]
            .map(String::from),
        );
        header.extend(kinds.iter().map(|k| format!("{k}_points")));
        let row = |key: Vec<String>, t: &GroupTotals| {
            let mut r = key;
            r.extend(
                [
                    t.jobs,
                    t.ok,
                    t.below_threshold,
                    t.no_rule,
                    t.invalid,
                    t.error,
                ]
                .map(|n| n.to_string()),
            );
            r.extend(
                kinds
                    .iter()
                    .map(|k| t.points.get(k).copied().unwrap_or_default().to_string()),
            );
            r
        };
        let mut rows: Vec<Vec<String>> =
            self.groups.iter().map(|(k, t)| row(k.clone(), t)).collect();
        if with_total {
            let mut key = vec!["-".to_string(); self.by.len()];
            if let Some(first) = key.first_mut() {
                *first = "total".to_string();
            }
            rows.push(row(key, &self.total()));
        }
        (header, rows)
    }
}
