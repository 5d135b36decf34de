//! What a rule change does to real jobs: every job of a corpus is scored with the old and
//! the new rule set, and only aggregates are kept — per model, per point kind, per status
//! change — plus a bounded heap of the biggest movers. Memory does not grow with the number
//! of jobs, so a multi-million-line ledger streams through.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::job::strict::{JobRecord, parse_line};
use crate::engine::job::{read_envelope, read_inputs};
use crate::engine::model::RuleSet;
use crate::engine::points::{Points, PointsSum};
use crate::engine::score::{ScoreContext, ScoreOptions, ScoreRef, Scorer, Status};

/// Distinct models tracked one by one; further models are pooled so that a ledger of
/// random model names cannot grow memory without bound.
pub const MAX_MODEL_GROUPS: usize = 1000;
/// The pooled group's name.
pub const OTHER_MODELS: &str = "(other models)";
/// The group of jobs that carry no model (malformed lines).
pub const NO_MODEL: &str = "(no model)";
/// The point-kind group of jobs that no rule set gives a kind (`no_rule`, `invalid`).
pub const NO_KIND: &str = "(no kind)";
/// Distinct `old rule → new rule` pairs remembered per model.
const MAX_RULE_PAIRS: usize = 8;

/// How to score the corpus.
#[derive(Debug, Clone, Copy)]
pub struct ImpactOptions {
    /// Pick rule versions as of this time instead of each job's `completed_at`.
    pub at: Option<Timestamp>,
    /// How many of the biggest movers to keep.
    pub top: usize,
}

/// Points before and after, over a group of jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Group {
    pub jobs: u64,
    /// Jobs whose points or status differ.
    pub changed: u64,
    pub before: PointsSum,
    pub after: PointsSum,
    /// `after - before` (may be negative).
    pub delta: PointsSum,
    /// `delta / before` in percent, rounded to 2 decimals; `null` when `before` is 0.
    pub delta_percent: Option<f64>,
    /// `"ok → below_threshold"` → number of jobs.
    pub status_changes: BTreeMap<String, u64>,
}

impl Group {
    fn add(&mut self, old: &ScoreRef<'_>, new: &ScoreRef<'_>) {
        self.jobs += 1;
        self.before += old.points;
        self.after += new.points;
        let status_changed = old.status != new.status;
        if status_changed || old.points != new.points {
            self.changed += 1;
        }
        if status_changed {
            *self
                .status_changes
                .entry(transition(old.status, new.status))
                .or_default() += 1;
        }
    }

    fn finish(&mut self) {
        let delta = self.after.micros() - self.before.micros();
        self.delta = PointsSum::from_micros(delta);
        self.delta_percent = percent(self.before.micros(), delta);
    }
}

/// `ok → below_threshold`.
pub fn transition(a: Status, b: Status) -> String {
    format!("{a} → {b}")
}

fn percent(before: i128, delta: i128) -> Option<f64> {
    if before == 0 {
        return None;
    }
    // Basis points, rounded half away from zero, in integers so the figure is exact.
    let bp = delta * 10_000 * 2 / before;
    let bp = (bp + bp.signum()) / 2;
    Some(bp as f64 / 100.0)
}

/// A model's aggregate, with its point kind and the rule versions that priced it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelGroup {
    pub model: String,
    pub kind: Option<String>,
    /// Distinct `old rule → new rule` (e.g. `sdxl10@2 → sdxl10@3`), at most a few.
    pub rules: BTreeSet<String>,
    #[serde(flatten)]
    pub totals: Group,
}

/// One job whose points or status changed, with what it was scored on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mover {
    pub file: String,
    pub line: u64,
    pub id: Option<String>,
    pub model: Option<String>,
    /// The job's inputs as the rules read them: `width=1024 height=1024 steps=20`.
    pub inputs: String,
    pub status_before: Status,
    pub status_after: Status,
    pub rule_before: Option<String>,
    pub rule_after: Option<String>,
    pub before: Points,
    pub after: Points,
    pub delta: PointsSum,
    /// Why the new rules gave what they gave, when not `ok` (threshold, no rule, error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Ranks movers: the largest absolute change first; a status change before none; then
/// input order, so the selection is deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rank {
    magnitude: i128,
    status_changed: bool,
    seq: u64,
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.magnitude, self.status_changed, Reverse(self.seq)).cmp(&(
            other.magnitude,
            other.status_changed,
            Reverse(other.seq),
        ))
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Ranked(Rank, Mover);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

/// A job file of the corpus and how many jobs it held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorpusFile {
    pub file: String,
    pub jobs: u64,
    /// An I/O error that stopped reading it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The impact of a rule change on a corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impact {
    pub files: Vec<CorpusFile>,
    /// Every job; its points add up all point kinds (meaningful only with one kind).
    pub total: Group,
    /// By point kind (the new kind, else the old one, else `(no kind)`). Points of different
    /// kinds are not comparable, so these, not `total`, are the sums to read.
    pub kinds: BTreeMap<String, Group>,
    pub models: Vec<ModelGroup>,
    /// The biggest movers, largest first.
    pub movers: Vec<Mover>,
}

/// Scores jobs with both rule sets and keeps the aggregates.
pub struct ImpactBuilder<'r> {
    old: Scorer<'r>,
    new: Scorer<'r>,
    old_ctx: ScoreContext<'r>,
    new_ctx: ScoreContext<'r>,
    sums: Sums<'r>,
}

/// What the builder keeps of the jobs it has seen.
struct Sums<'r> {
    old: &'r RuleSet,
    new: &'r RuleSet,
    opts: ImpactOptions,
    seq: u64,
    files: Vec<CorpusFile>,
    total: Group,
    kinds: BTreeMap<String, Group>,
    models: BTreeMap<String, ModelGroup>,
    // A min-heap of the best `top` movers: its root is the weakest one kept.
    movers: BinaryHeap<Reverse<Ranked>>,
}

impl<'r> ImpactBuilder<'r> {
    pub fn new(old: &'r RuleSet, new: &'r RuleSet, opts: ImpactOptions) -> Self {
        let scorer = |rules| Scorer {
            opts: ScoreOptions {
                at: opts.at,
                explain: false,
            },
            ..Scorer::new(rules)
        };
        let (old_scorer, new_scorer) = (scorer(old), scorer(new));
        ImpactBuilder {
            old_ctx: old_scorer.context(),
            new_ctx: new_scorer.context(),
            old: old_scorer,
            new: new_scorer,
            sums: Sums {
                old,
                new,
                opts,
                seq: 0,
                files: Vec::new(),
                total: Group::default(),
                kinds: BTreeMap::new(),
                models: BTreeMap::new(),
                movers: BinaryHeap::new(),
            },
        }
    }

    /// Starts a new corpus file; the following jobs belong to it.
    pub fn start_file(&mut self, name: &str) {
        self.sums.files.push(CorpusFile {
            file: name.to_string(),
            jobs: 0,
            error: None,
        });
    }

    /// Records that reading the current file stopped early.
    pub fn file_error(&mut self, error: String) {
        if let Some(f) = self.sums.files.last_mut() {
            f.error = Some(error);
        }
    }

    /// Scores one job line with both rule sets.
    pub fn add_line(&mut self, line: u64, bytes: &[u8]) {
        let ImpactBuilder {
            old,
            new,
            old_ctx,
            new_ctx,
            sums,
        } = self;
        old.score_line(old_ctx, line, bytes, &mut |o| {
            new.score_line(new_ctx, line, bytes, &mut |n| {
                sums.add(o, n, &|| parse_line(line, bytes));
            });
        });
    }

    /// Scores one record read strictly with both rule sets.
    pub fn add_record(&mut self, record: &JobRecord) {
        let ImpactBuilder {
            old,
            new,
            old_ctx,
            new_ctx,
            sums,
        } = self;
        old.score_record(old_ctx, record, &mut |o| {
            new.score_record(new_ctx, record, &mut |n| {
                sums.add(o, n, &|| record.clone());
            });
        });
    }

    /// The aggregates: models by name, movers largest first.
    pub fn finish(self) -> Impact {
        self.sums.finish()
    }
}

impl<'r> Sums<'r> {
    fn add(&mut self, old: &ScoreRef<'_>, new: &ScoreRef<'_>, record: &dyn Fn() -> JobRecord) {
        if self.files.is_empty() {
            self.files.push(CorpusFile {
                file: "-".to_string(),
                jobs: 0,
                error: None,
            });
        }
        self.seq += 1;
        let file = self.files.last_mut().expect("a file was started");
        file.jobs += 1;

        self.total.add(old, new);
        let kind = new.kind.or(old.kind).unwrap_or(NO_KIND).to_string();
        self.kinds.entry(kind.clone()).or_default().add(old, new);

        let model = new.model.unwrap_or(NO_MODEL);
        let key = if self.models.contains_key(model) || self.models.len() < MAX_MODEL_GROUPS {
            model
        } else {
            OTHER_MODELS
        };
        let group = self
            .models
            .entry(key.to_string())
            .or_insert_with(|| ModelGroup {
                model: key.to_string(),
                ..ModelGroup::default()
            });
        group.totals.add(old, new);
        if group.kind.is_none() && kind != NO_KIND {
            group.kind = Some(kind);
        }
        if group.rules.len() < MAX_RULE_PAIRS {
            let pair = format!("{} → {}", old.rule.unwrap_or("-"), new.rule.unwrap_or("-"));
            if !group.rules.contains(&pair) {
                group.rules.insert(pair);
            }
        }

        if old.status != new.status || old.points != new.points {
            self.offer_mover(old, new, record);
        }
    }

    fn offer_mover(
        &mut self,
        old: &ScoreRef<'_>,
        new: &ScoreRef<'_>,
        record: &dyn Fn() -> JobRecord,
    ) {
        if self.opts.top == 0 {
            return;
        }
        let delta = new.points.micros() as i128 - old.points.micros() as i128;
        let rank = Rank {
            magnitude: delta.abs(),
            status_changed: old.status != new.status,
            seq: self.seq,
        };
        if self.movers.len() >= self.opts.top {
            match self.movers.peek() {
                Some(Reverse(weakest)) if rank > weakest.0 => {
                    self.movers.pop();
                }
                _ => return,
            }
        }
        let mover = Mover {
            file: self
                .files
                .last()
                .map(|f| f.file.clone())
                .unwrap_or_default(),
            line: new.line,
            id: new.id.map(String::from),
            model: new.model.map(String::from),
            inputs: self.inputs_of(&record()),
            status_before: old.status,
            status_after: new.status,
            rule_before: old.rule.map(String::from),
            rule_after: new.rule.map(String::from),
            before: old.points,
            after: new.points,
            delta: PointsSum::from_micros(delta),
            reason: new.reason.or(new.error).map(String::from),
        };
        self.movers.push(Reverse(Ranked(rank, mover)));
    }

    /// The job's inputs as the new (else old) rules read them.
    fn inputs_of(&self, record: &JobRecord) -> String {
        let Ok(job) = record else {
            return String::new();
        };
        let Ok(Ok(env)) = read_envelope(&job, job.line) else {
            return String::new();
        };
        let at = self.opts.at.or(env.completed_at.map(|(t, _)| t));
        let mut values = Vec::new();
        for rs in [self.new, self.old] {
            if let Some(kind) = rs.resolve(env.model, at).kind()
                && let Ok(Ok(())) = read_inputs(&job, kind, &mut values)
            {
                return kind
                    .inputs
                    .iter()
                    .zip(&values)
                    // An optional input the job leaves out (a latency) is not shown.
                    .filter(|(_, v)| !v.is_absent())
                    .map(|(spec, v)| format!("{}={v}", spec.name))
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
        String::new()
    }

    fn finish(self) -> Impact {
        let mut total = self.total;
        total.finish();
        let mut kinds = self.kinds;
        kinds.values_mut().for_each(Group::finish);
        let mut models: Vec<ModelGroup> = self.models.into_values().collect();
        models.iter_mut().for_each(|m| m.totals.finish());
        let mut movers: Vec<Ranked> = self.movers.into_iter().map(|Reverse(r)| r).collect();
        movers.sort_by(|a, b| b.cmp(a));
        Impact {
            files: self.files,
            total,
            kinds,
            models,
            movers: movers.into_iter().map(|r| r.1).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_rounded_half_away_from_zero() {
        assert_eq!(percent(0, 5), None);
        assert_eq!(percent(1_000_000, 111_111), Some(11.11));
        assert_eq!(percent(1_000_000, -111_115), Some(-11.11));
        assert_eq!(percent(3, 1), Some(33.33));
        assert_eq!(percent(8, 1), Some(12.5));
        assert_eq!(percent(1_800_000, 200_000), Some(11.11));
    }

    #[test]
    fn ranks_prefer_magnitude_then_status_then_input_order() {
        let r = |m, s, q| Rank {
            magnitude: m,
            status_changed: s,
            seq: q,
        };
        assert!(r(5, false, 9) > r(4, true, 1));
        assert!(r(5, true, 9) > r(5, false, 1));
        assert!(r(5, true, 1) > r(5, true, 2));
    }
}
