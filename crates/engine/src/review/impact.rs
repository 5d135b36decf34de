//! What a rule change does to real jobs: every job of a corpus is scored with the old and
//! the new rule set, and only aggregates are kept — per model, per point kind, per status
//! change — plus a bounded heap of the biggest movers. Memory does not grow with the number
//! of jobs, so a multi-million-line ledger streams through.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::job::strict::JobRecord;
use crate::engine::job::{read_envelope, read_inputs};
use crate::engine::model::RuleSet;
use crate::engine::points::{Points, PointsSum};
use crate::engine::score::{JobInput, Score, ScoreContext, ScoreOptions, ScoreRef, Scorer, Status};
use crate::engine::time::utc_string;
use crate::ledger::ordered::{Feed, ordered};
use crate::ledger::reader::{Ledger, RawItem};
use crate::ledger::tally::{GroupBy, KEY_SEP, group_key};
use crate::review::windows::{Span, Timelines};

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
#[derive(Debug, Clone, Default)]
pub struct ImpactOptions {
    /// Pick rule versions as of this time instead of each job's `completed_at`.
    pub at: Option<Timestamp>,
    /// How many of the biggest movers to keep.
    pub top: usize,
    /// Changes that alter jobs dated before this time are retroactive (`None`: now).
    pub cutoff: Option<Timestamp>,
    /// Also sum before → after per group of these dimensions (as `tally --by`).
    pub by: Vec<GroupBy>,
    /// Worker threads scoring the corpus (at least 1); the report is the same for any number.
    pub threads: usize,
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
        self.add_outcomes((old.status, old.points), (new.status, new.points));
    }

    fn add_outcomes(&mut self, old: (Status, Points), new: (Status, Points)) {
        self.jobs += 1;
        self.before += old.1;
        self.after += new.1;
        let status_changed = old.0 != new.0;
        if status_changed || old.1 != new.1 {
            self.changed += 1;
        }
        if status_changed {
            *self
                .status_changes
                .entry(transition(old.0, new.0))
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
    /// The time that picked its rule versions: `--at`, else its `completed_at`; `null`: it
    /// has no date, so the latest versions priced it.
    pub priced_at: Option<String>,
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
    /// With `--by`: per group (and point kind), the top gainers and losers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<GroupImpact>,
    /// Models the change re-prices (in some window) that no corpus job runs: its effect on
    /// them is not measured.
    pub not_exercised: Vec<String>,
    /// Every time window the change re-prices, with the corpus jobs that can reach it
    /// replayed in it (see [`crate::review::windows`]), in time order.
    pub windows: Vec<WindowImpact>,
    /// The rule sets were too large to cut every model's history: `windows` is partial, and
    /// every change that can re-price was flagged retroactive.
    pub windows_incomplete: bool,
}

/// The jobs summed per group of `by` and point kind, at the jobs' own times: how many
/// groups, and the `top` that gain and lose the most. Sums are exact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupImpact {
    pub by: Vec<GroupBy>,
    /// Distinct (group, point kind) pairs, and how many of them changed.
    pub groups: u64,
    pub changed: u64,
    /// Largest gain first.
    pub gainers: Vec<KeyedGroup>,
    /// Largest loss first.
    pub losers: Vec<KeyedGroup>,
}

/// One group's values (one per `by` dimension, `-` when the job lacks it) and point kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyedGroup {
    pub group: Vec<String>,
    pub kind: String,
    #[serde(flatten)]
    pub totals: Group,
}

/// The sums behind [`GroupImpact`]: every group is kept (memory grows with the number of
/// groups, as in `tally`, not with the number of jobs).
#[derive(Default)]
struct ByGroups {
    by: Vec<GroupBy>,
    /// The group key, then [`KEY_SEP`] and the point kind.
    key: String,
    groups: HashMap<Box<str>, Group>,
}

impl ByGroups {
    fn add(&mut self, old: &ScoreRef<'_>, new: &ScoreRef<'_>) {
        if self.by.is_empty() {
            return;
        }
        group_key(&self.by, new, &mut self.key);
        self.key.push(KEY_SEP);
        self.key.push_str(new.kind.or(old.kind).unwrap_or(NO_KIND));
        // Most jobs land in an existing group: look up by the borrowed key first.
        match self.groups.get_mut(self.key.as_str()) {
            Some(g) => g.add(old, new),
            None => self
                .groups
                .entry(self.key.as_str().into())
                .or_default()
                .add(old, new),
        }
    }

    fn finish(self, top: usize) -> Option<GroupImpact> {
        if self.by.is_empty() {
            return None;
        }
        let mut all: Vec<KeyedGroup> = (self.groups.into_iter())
            .map(|(key, mut totals)| {
                totals.finish();
                let mut group: Vec<String> = key.split(KEY_SEP).map(String::from).collect();
                let kind = group.pop().unwrap_or_default();
                KeyedGroup {
                    group,
                    kind,
                    totals,
                }
            })
            .collect();
        let groups = all.len() as u64;
        let changed = all.iter().filter(|g| g.totals.changed > 0).count() as u64;
        // Ties by group and kind, so the selection is deterministic.
        all.sort_by(|a, b| {
            (b.totals.delta, &a.group, &a.kind).cmp(&(a.totals.delta, &b.group, &b.kind))
        });
        let zero = PointsSum::default();
        let gainers: Vec<KeyedGroup> = (all.iter())
            .filter(|g| g.totals.delta > zero)
            .take(top)
            .cloned()
            .collect();
        let losers: Vec<KeyedGroup> = (all.iter().rev())
            .filter(|g| g.totals.delta < zero)
            .take(top)
            .cloned()
            .collect();
        Some(GroupImpact {
            by: self.by,
            groups,
            changed,
            gainers,
            losers,
        })
    }
}

/// A window of time the change re-prices, and what it does there to the corpus jobs whose
/// model it covers: each replayed at its model's first affected time in the window, with
/// both rule sets, whatever the job's own date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowImpact {
    /// `sdxl10@1 (2024-04-01 → 2024-09-18T16:17:11Z)`.
    pub window: String,
    /// The rule version in force in it on each side (`null`: none prices the models).
    pub old: Option<String>,
    pub new: Option<String>,
    pub span: Span,
    /// When its first job is re-priced: before the cut-off, it rewrites history.
    pub first: String,
    pub retroactive: bool,
    /// The catalog models it re-prices.
    pub models: Vec<String>,
    /// Every replayed job; 0 means no corpus job exercises the window.
    pub total: Group,
    /// By point kind, as in [`Impact::kinds`].
    pub kinds: BTreeMap<String, Group>,
}

/// Scores jobs with both rule sets and keeps the aggregates.
pub struct ImpactBuilder<'r> {
    old: Scorer<'r>,
    new: Scorer<'r>,
    sums: Sums<'r>,
    replay: Replay,
}

/// The per-window replay: which windows each model has, and their sums.
struct Replay {
    timelines: Timelines,
    /// Per window: every job, and by point kind.
    sums: Vec<(Group, BTreeMap<String, Group>)>,
}

/// A worker's scoring state: a context per side, and both sides' scorer and context by
/// pricing time for the replay (a few: the rules' dates).
struct Worker<'r> {
    old: ScoreContext<'r>,
    new: ScoreContext<'r>,
    pinned: BTreeMap<Timestamp, [(Scorer<'r>, ScoreContext<'r>); 2]>,
}

/// A status, points and point kind: what the window sums read of a result.
struct Outcome {
    status: Status,
    points: Points,
    kind: Option<String>,
}

impl Outcome {
    fn of(s: &ScoreRef<'_>) -> Self {
        Outcome {
            status: s.status,
            points: s.points,
            kind: s.kind.map(String::from),
        }
    }
}

/// One corpus job scored with both rule sets and replayed in its model's windows: what a
/// worker hands to the aggregation, which runs in input order.
struct Scored {
    old: Score,
    new: Score,
    /// The job itself when its result moved (for the movers' inputs).
    moved: Option<KeptJob>,
    /// Per window the job was replayed in: both sides' outcomes.
    windows: Vec<(usize, Outcome, Outcome)>,
}

/// A job kept as it came (a line's bytes are parsed only if it becomes a mover).
enum KeptJob {
    Line(u64, Vec<u8>),
    Record(JobRecord),
}

impl KeptJob {
    fn of(job: JobInput<'_>) -> Self {
        match job {
            JobInput::Line { line, bytes } => KeptJob::Line(line, bytes.to_vec()),
            JobInput::Text { line, text } => KeptJob::Line(line, text.as_bytes().to_vec()),
            JobInput::Record(r) => KeptJob::Record(r.clone()),
        }
    }

    fn record(&self) -> JobRecord {
        match self {
            KeptJob::Line(line, bytes) => JobInput::Line { line: *line, bytes }.to_record(),
            KeptJob::Record(r) => r.clone(),
        }
    }
}

/// What the reader hands the workers: the start of a corpus file, a batch of its jobs, or
/// why reading it stopped.
enum Piece {
    File(String),
    Jobs { bytes: Vec<u8>, items: Vec<Item> },
    Error(String),
}

/// A job of a batch: a line's bytes in the batch's buffer, or a parsed record.
enum Item {
    Line { line: u64, start: usize, end: usize },
    Record(JobRecord),
}

/// What a worker hands back for a [`Piece`].
enum Done {
    File(String),
    Jobs(Vec<Scored>),
    Error(String),
}

/// Jobs per batch handed to a worker, and bytes of job text: small, since a few batches per
/// thread are in flight and each job's result holds two owned scores (a diff of a ledger
/// stays within `tests/diff_cli.rs`'s 64 MiB whatever its size).
const BATCH_JOBS: usize = 256;
const BATCH_BYTES: usize = 256 << 10;

impl Replay {
    fn finish(self, cutoff: Timestamp) -> Vec<WindowImpact> {
        let mut out: Vec<WindowImpact> = self
            .timelines
            .windows
            .into_iter()
            .zip(self.sums)
            .map(|(w, (mut total, mut kinds))| {
                total.finish();
                kinds.values_mut().for_each(Group::finish);
                WindowImpact {
                    window: w.key.label(w.span),
                    old: w.key.old.as_ref().map(|v| v.label.clone()),
                    new: w.key.new.as_ref().map(|v| v.label.clone()),
                    span: w.span,
                    first: utc_string(w.first),
                    retroactive: w.first < cutoff,
                    models: w.models.into_iter().collect(),
                    total,
                    kinds,
                }
            })
            .collect();
        // In time order (RFC 3339 UTC text sorts as time), then by label.
        out.sort_by(|a, b| (&a.first, &a.window).cmp(&(&b.first, &b.window)));
        out
    }
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
    groups: ByGroups,
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
        let timelines = Timelines::build(old, new);
        ImpactBuilder {
            replay: Replay {
                sums: vec![Default::default(); timelines.windows.len()],
                timelines,
            },
            old: scorer(old),
            new: scorer(new),
            sums: Sums {
                old,
                new,
                seq: 0,
                files: Vec::new(),
                total: Group::default(),
                kinds: BTreeMap::new(),
                models: BTreeMap::new(),
                movers: BinaryHeap::new(),
                groups: ByGroups {
                    by: opts.by.clone(),
                    ..ByGroups::default()
                },
                opts,
            },
        }
    }

    /// Scores every job of the corpus files (each with its name in the report) on
    /// `opts.threads` workers, through the ordered pool every ledger pass uses: the
    /// aggregates are folded in input order, so the report does not depend on the threads.
    pub fn add_corpus(&mut self, corpus: Vec<(String, Ledger)>) {
        let threads = self.sums.opts.threads.max(1);
        let ImpactBuilder {
            old,
            new,
            sums,
            replay,
        } = self;
        let (old, new, timelines) = (&*old, &*new, &replay.timelines);
        let track_movers = sums.opts.top > 0;
        let (done, ()) = ordered(
            threads,
            |feed| read_corpus(corpus, feed),
            || Worker {
                old: old.context(),
                new: new.context(),
                pinned: BTreeMap::new(),
            },
            |worker, piece| match piece {
                Piece::File(name) => Done::File(name),
                Piece::Error(e) => Done::Error(e),
                Piece::Jobs { bytes, items } => Done::Jobs(
                    (items.iter())
                        .map(|item| {
                            let job = match item {
                                Item::Line { line, start, end } => JobInput::Line {
                                    line: *line,
                                    bytes: &bytes[*start..*end],
                                },
                                Item::Record(r) => JobInput::Record(r),
                            };
                            score_both(old, new, timelines, worker, job, track_movers)
                        })
                        .collect(),
                ),
            },
            |done| {
                match done {
                    Done::File(name) => sums.start_file(name),
                    Done::Error(e) => sums.file_error(e),
                    Done::Jobs(jobs) => {
                        for job in jobs {
                            sums.add(&job.old.as_ref(), &job.new.as_ref(), &|| {
                                job.moved.as_ref().map(KeptJob::record)
                            });
                            for (window, o, n) in job.windows {
                                let (total, kinds) = &mut replay.sums[window];
                                let pair = ((o.status, o.points), (n.status, n.points));
                                total.add_outcomes(pair.0, pair.1);
                                let kind = n.kind.or(o.kind).unwrap_or_else(|| NO_KIND.into());
                                kinds.entry(kind).or_default().add_outcomes(pair.0, pair.1);
                            }
                        }
                    }
                }
                Ok(())
            },
        );
        done.expect("folding the aggregates cannot fail");
    }

    /// The aggregates: models by name, movers largest first, windows in time order.
    pub fn finish(self) -> Impact {
        let cutoff = self.sums.opts.cutoff.unwrap_or_else(Timestamp::now);
        let mut impact = self.sums.finish();
        impact.windows_incomplete = self.replay.timelines.incomplete;
        impact.windows = self.replay.finish(cutoff);
        // Catalog names are NFC; job model names may not be.
        let seen: BTreeSet<String> = (impact.models.iter())
            .map(|m| crate::engine::model::nfc(&m.model).into_owned())
            .collect();
        let touched: BTreeSet<&String> = impact.windows.iter().flat_map(|w| &w.models).collect();
        impact.not_exercised = (touched.into_iter())
            .filter(|m| !seen.contains(*m))
            .cloned()
            .collect();
        impact
    }
}

impl<'r> Sums<'r> {
    /// Starts a new corpus file; the following jobs belong to it.
    fn start_file(&mut self, name: String) {
        self.files.push(CorpusFile {
            file: name,
            jobs: 0,
            error: None,
        });
    }

    /// Records that reading the current file stopped early.
    fn file_error(&mut self, error: String) {
        if let Some(f) = self.files.last_mut() {
            f.error = Some(error);
        }
    }

    fn add(
        &mut self,
        old: &ScoreRef<'_>,
        new: &ScoreRef<'_>,
        record: &dyn Fn() -> Option<JobRecord>,
    ) {
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
        self.groups.add(old, new);
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
        record: &dyn Fn() -> Option<JobRecord>,
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
            inputs: record().map(|r| self.inputs_of(&r)).unwrap_or_default(),
            status_before: old.status,
            status_after: new.status,
            rule_before: old.rule.map(String::from),
            rule_after: new.rule.map(String::from),
            before: old.points,
            after: new.points,
            delta: PointsSum::from_micros(delta),
            priced_at: (self.opts.at.map(utc_string))
                .or_else(|| new.completed_at.map(String::from)),
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
            groups: self.groups.finish(self.opts.top),
            not_exercised: Vec::new(),
            windows: Vec::new(),
            windows_incomplete: false,
        }
    }
}

/// Scores one job with both rule sets, then replays it in every window its model has,
/// pinned at the window's first affected time.
fn score_both<'r>(
    old: &Scorer<'r>,
    new: &Scorer<'r>,
    timelines: &Timelines,
    worker: &mut Worker<'r>,
    job: JobInput<'_>,
    track_movers: bool,
) -> Scored {
    let mut old_score = None;
    old.score_job(&mut worker.old, job, &mut |o| {
        old_score = Some(o.to_score())
    });
    let mut new_score = None;
    new.score_job(&mut worker.new, job, &mut |n| {
        new_score = Some(n.to_score())
    });
    let (old_score, new_score) = (
        old_score.expect("every job gets a result"),
        new_score.expect("every job gets a result"),
    );
    let moved = (track_movers
        && (old_score.status != new_score.status || old_score.points != new_score.points))
        .then(|| KeptJob::of(job));
    let mut windows = Vec::new();
    if let Some(model) = new_score.model.as_deref() {
        for (window, at) in timelines.plan(model) {
            let [(os, oc), (ns, nc)] = worker.pinned.entry(at).or_insert_with(|| {
                let pinned = |rules| {
                    let s = Scorer {
                        opts: ScoreOptions {
                            at: Some(at),
                            explain: false,
                        },
                        ..Scorer::new(rules)
                    };
                    let c = s.context();
                    (s, c)
                };
                [pinned(old.rules), pinned(new.rules)]
            });
            let (mut o, mut n) = (None, None);
            os.score_job(oc, job, &mut |s| o = Some(Outcome::of(s)));
            ns.score_job(nc, job, &mut |s| n = Some(Outcome::of(s)));
            if let (Some(o), Some(n)) = (o, n) {
                windows.push((window, o, n));
            }
        }
    }
    Scored {
        old: old_score,
        new: new_score,
        moved,
        windows,
    }
}

/// The reader of [`ImpactBuilder::add_corpus`]: each file's name, its jobs in batches, and
/// the error that stopped reading it, if any.
fn read_corpus(corpus: Vec<(String, Ledger)>, mut feed: Feed<Piece>) {
    for (name, mut reader) in corpus {
        if !feed.send(Piece::File(name)) {
            return;
        }
        let (mut bytes, mut items) = (Vec::new(), Vec::new());
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let Some(item) = reader.next_raw(&mut buf) else {
                break;
            };
            items.push(match item {
                RawItem::Line(line) => {
                    let start = bytes.len();
                    bytes.extend_from_slice(&buf);
                    Item::Line {
                        line,
                        start,
                        end: bytes.len(),
                    }
                }
                RawItem::Record(r) => Item::Record(r),
            });
            if items.len() >= BATCH_JOBS || bytes.len() >= BATCH_BYTES {
                let piece = Piece::Jobs {
                    bytes: std::mem::take(&mut bytes),
                    items: std::mem::take(&mut items),
                };
                if !feed.send(piece) {
                    return;
                }
            }
        }
        if !items.is_empty() && !feed.send(Piece::Jobs { bytes, items }) {
            return;
        }
        if let Some(e) = reader.take_io_error()
            && !feed.send(Piece::Error(e.to_string()))
        {
            return;
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
