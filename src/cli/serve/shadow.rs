//! Shadow rules (`serve --shadow-rules DIR`): a second rule set scores every job off the
//! response path, and what it would have paid differently is counted.
//!
//! After a request is scored, its body, the live rule set that priced it and its decision
//! records go to a queue (at most `--shadow-queue-jobs` jobs and `--shadow-queue-bytes` bytes
//! wait; beyond that a request is skipped and counted). One thread takes them in turn, scores
//! each job with the live snapshot (again: scoring is deterministic, so this reproduces the
//! response) and with the shadow rules, compares status, kind and points, counts, keeps the
//! divergence for `GET /v1/shadow`, adds the shadow result to the records that differ, and
//! hands the records to the decision log. The response never waits for any of it, and the
//! shadow uses one core at most.
//!
//! Records waiting here are the decision log's too: they hold room in its queue
//! (`--decision-log-queue-bytes`) from the start, and they never wait long. A request queued
//! for more than [`MAX_WAIT`] is not shadowed (counted as `skipped`) and its records go to the
//! log as they are; at shutdown, whatever is still queued goes so at once. So a SIGKILL loses
//! at most the records of about `MAX_WAIT` + the log's flush interval, plus those of the one
//! request being shadowed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::json;

use super::metrics::Metrics;
use jobpoints::audit::decision::{DecisionLog, Reserved, add_shadow, finish};
use jobpoints::engine::model::RuleSet;
use jobpoints::engine::points::{Points, PointsSum};
use jobpoints::engine::score::{ScoreOptions, ScoreRef, Scorer, Status};
use jobpoints::engine::time::utc_string;
use jobpoints::ledger::reader::JobReader;
use jobpoints::live::handle::RulesHandle;

/// Models kept apart in `/v1/shadow`; the rest are summed as `(other models)` (a model name
/// is the client's text: it must not grow the summary without bound).
const MAX_MODELS: usize = 1_000;
/// Example decisions kept.
const EXAMPLES: usize = 10;
/// A request that waited longer than this for the shadow is not shadowed: its records go to
/// the log at once (the decision log's promise of at most ~1 s lost holds with a backlog).
pub(super) const MAX_WAIT: Duration = Duration::from_secs(1);

/// One scored request, for the shadow.
pub(super) struct Work {
    pub body: Vec<u8>,
    pub opts: ScoreOptions,
    pub received: Option<Timestamp>,
    pub live: Arc<RuleSet>,
    /// The request's decision records, each ending `}\n`, with where each ends.
    pub records: Option<(Vec<u8>, Vec<usize>)>,
    pub jobs: u64,
}

/// A request waiting for the shadow.
struct Queued {
    work: Work,
    /// The room its records hold in the decision log's queue.
    reserved: Option<Reserved>,
    at: Instant,
    /// Its body and records, counted against `--shadow-queue-bytes`.
    bytes: u64,
}

enum Msg {
    Work(Queued),
    Stop,
}

/// Sums for one kind or model.
#[derive(Default, Clone)]
struct Sums {
    jobs: u64,
    changed: u64,
    live: PointsSum,
    shadow: PointsSum,
}

impl Sums {
    fn json(&self) -> serde_json::Value {
        let delta = PointsSum::from_micros(self.shadow.micros() - self.live.micros());
        json!({
            "jobs": self.jobs,
            "changed": self.changed,
            "live_points": self.live.to_string(),
            "shadow_points": self.shadow.to_string(),
            "delta_points": delta.to_string(),
        })
    }
}

#[derive(Default)]
struct Summary {
    since: String,
    same: u64,
    changed: u64,
    error: u64,
    skipped: u64,
    by_kind: BTreeMap<String, Sums>,
    by_model: HashMap<String, Sums>,
    examples: Vec<serde_json::Value>,
}

/// The shadow rule set, its queue and its thread.
pub(super) struct Shadow {
    pub rules: Arc<RulesHandle>,
    tx: crossbeam_channel::Sender<Msg>,
    queued: Arc<AtomicU64>,
    max_queued: u64,
    queued_bytes: Arc<AtomicU64>,
    max_queued_bytes: u64,
    /// Set at shutdown: what is queued goes to the log without being shadowed.
    draining: Arc<AtomicBool>,
    summary: Arc<Mutex<Summary>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    log: Option<Arc<DecisionLog>>,
}

impl Shadow {
    pub fn start(
        rules: Arc<RulesHandle>,
        max_queued: u64,
        max_queued_bytes: u64,
        metrics: Arc<Metrics>,
        log: Option<Arc<DecisionLog>>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Msg>();
        let queued = Arc::new(AtomicU64::new(0));
        let queued_bytes = Arc::new(AtomicU64::new(0));
        let draining = Arc::new(AtomicBool::new(false));
        let summary = Arc::new(Mutex::new(Summary {
            since: utc_string(Timestamp::now()),
            ..Summary::default()
        }));
        let (r, q, qb, d, s, m, l) = (
            rules.clone(),
            queued.clone(),
            queued_bytes.clone(),
            draining.clone(),
            summary.clone(),
            metrics.clone(),
            log.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("shadow".into())
            .spawn(move || {
                for msg in rx {
                    let Msg::Work(w) = msg else { break };
                    q.fetch_sub(w.work.jobs, Ordering::AcqRel);
                    qb.fetch_sub(w.bytes, Ordering::AcqRel);
                    if d.load(Ordering::Relaxed) || w.at.elapsed() > MAX_WAIT {
                        skipped(&s, &m, l.as_deref(), w.work, w.reserved);
                    } else {
                        run(&r, &s, &m, l.as_deref(), &d, w.work, w.reserved);
                    }
                }
            })?;
        Ok(Shadow {
            rules,
            tx,
            queued,
            max_queued,
            queued_bytes,
            max_queued_bytes,
            draining,
            summary,
            thread: Mutex::new(Some(thread)),
            metrics,
            log,
        })
    }

    /// Queues a scored request; never waits. When the queue is full (in jobs or bytes) the
    /// request is not shadowed (counted as `skipped`) and its records go straight to the log.
    pub fn submit(&self, mut work: Work) {
        let bytes = (work.body.len() + work.records.as_ref().map_or(0, |(r, _)| r.len())) as u64;
        let before = self.queued.fetch_add(work.jobs, Ordering::AcqRel);
        let before_bytes = self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        let full = before > 0 && before + work.jobs > self.max_queued
            || before_bytes > 0 && before_bytes + bytes > self.max_queued_bytes;
        let undo = || {
            self.queued.fetch_sub(work.jobs, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        };
        if full {
            undo();
            skipped(
                &self.summary,
                &self.metrics,
                self.log.as_deref(),
                work,
                None,
            );
            return;
        }
        // The records hold their room in the log's queue while they wait here; without
        // room they are dropped now (and counted by the log), as the log would drop them.
        let reserved = match (&self.log, &work.records) {
            (Some(log), Some((records, ends))) => {
                let r = log.reserve(records.len(), ends.len() as u64);
                if r.is_none() {
                    work.records = None;
                }
                r
            }
            _ => None,
        };
        let queued = Queued {
            work,
            reserved,
            at: Instant::now(),
            bytes,
        };
        if let Err(crossbeam_channel::SendError(Msg::Work(q))) = self.tx.send(Msg::Work(queued)) {
            self.queued.fetch_sub(q.work.jobs, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(q.bytes, Ordering::AcqRel);
            skipped(
                &self.summary,
                &self.metrics,
                self.log.as_deref(),
                q.work,
                q.reserved,
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Summary> {
        self.summary.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands everything queued to the log without shadowing it (counted as `skipped`), then
    /// stops: at shutdown, before the log is closed, so that draining takes moments.
    pub fn close(&self) {
        let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        self.draining.store(true, Ordering::Relaxed);
        let _ = self.tx.send(Msg::Stop);
        let _ = t.join();
    }

    /// `GET /v1/shadow`.
    pub fn report(&self, live_hash: &str) -> serde_json::Value {
        let (shadow_rules, status) = self.rules.snapshot();
        let s = self.lock();
        let mut all = Sums::default();
        for k in s.by_kind.values() {
            all.jobs += k.jobs;
            all.changed += k.changed;
            all.live += k.live;
            all.shadow += k.shadow;
        }
        let by_kind: Vec<_> = s
            .by_kind
            .iter()
            .map(|(kind, sums)| {
                let mut v = sums.json();
                v["kind"] = json!(kind);
                v
            })
            .collect();
        // Models that moved most first.
        let mut models: Vec<_> = s.by_model.iter().collect();
        models.sort_by_key(|(m, sums)| {
            (
                std::cmp::Reverse((sums.shadow.micros() - sums.live.micros()).abs()),
                std::cmp::Reverse(sums.changed),
                (*m).clone(),
            )
        });
        let by_model: Vec<_> = models
            .into_iter()
            .map(|(model, sums)| {
                let mut v = sums.json();
                v["model"] = json!(model);
                v
            })
            .collect();
        json!({
            "schema_version": jobpoints::engine::identity::SCHEMA_VERSION,
            "live": { "ruleset": live_hash },
            "shadow": {
                "ruleset": shadow_rules.hash,
                "rules_dir": shadow_rules.origin.to_string(),
                "state": if status.last_error.is_some() { "reload_failed" } else { "ok" },
                "last_error": status.last_error.as_ref().map(|e| &e.message),
            },
            "since": s.since,
            "jobs": s.same + s.changed + s.error,
            "same": s.same,
            "changed": s.changed,
            "error": s.error,
            "skipped": s.skipped,
            "queued_jobs": self.queued.load(Ordering::Acquire),
            "total": all.json(),
            "by_kind": by_kind,
            "by_model": by_model,
            "examples": s.examples,
        })
    }
}

impl Drop for Shadow {
    fn drop(&mut self) {
        self.close();
    }
}

/// What the shadow compares of one result.
struct Brief {
    status: Status,
    kind: Option<String>,
    rule: Option<String>,
    points: Points,
    model: Option<String>,
    id: Option<String>,
}

impl Brief {
    fn of(s: &ScoreRef<'_>) -> Self {
        Brief {
            status: s.status,
            kind: s.kind.map(String::from),
            rule: s.rule.map(String::from),
            points: s.points,
            model: s.model.map(String::from),
            id: s.id.map(String::from),
        }
    }
}

/// A request not shadowed: counted as `skipped`, its records to the log as they are.
fn skipped(
    summary: &Mutex<Summary>,
    metrics: &Metrics,
    log: Option<&DecisionLog>,
    w: Work,
    reserved: Option<Reserved>,
) {
    metrics.shadow_jobs("skipped").inc_by(w.jobs);
    summary.lock().unwrap_or_else(|e| e.into_inner()).skipped += w.jobs;
    if let (Some(log), Some((records, ends))) = (log, w.records) {
        submit_records(log, reserved, records, ends.len() as u64);
    }
}

fn submit_records(log: &DecisionLog, reserved: Option<Reserved>, records: Vec<u8>, count: u64) {
    match reserved {
        Some(r) => log.submit_reserved(r, records, count),
        None => log.submit(records, count),
    };
}

/// Shadows one request; stops (the rest skipped, its records as they are) when draining.
fn run(
    handle: &RulesHandle,
    summary: &Mutex<Summary>,
    metrics: &Metrics,
    log: Option<&DecisionLog>,
    draining: &AtomicBool,
    w: Work,
    reserved: Option<Reserved>,
) {
    let shadow_rules = handle.current();
    let scorer = |rules| Scorer {
        opts: w.opts,
        received: w.received,
        name_pricing_time: true,
        ..Scorer::new(rules)
    };
    let (live, shadow) = (scorer(&w.live), scorer(&shadow_rules));
    let (mut live_ctx, mut shadow_ctx) = (live.context(), shadow.context());
    let mut reader = JobReader::new(&w.body[..]);
    let mut buf = Vec::new();
    let mut out = w.records.as_ref().map(|(r, _)| Vec::with_capacity(r.len()));
    let mut index = 0usize;
    let mut record_start = 0usize;
    let mut shadowed = 0u64;
    loop {
        if draining.load(Ordering::Relaxed) {
            break;
        }
        buf.clear();
        let Some(item) = reader.next_raw(&mut buf) else {
            break;
        };
        let mut before = None;
        live.score_job(&mut live_ctx, item.job(&buf), &mut |r| {
            before = Some(Brief::of(r));
        });
        let Some(before) = before else { continue };
        let mut shadow_json = None;
        let mut after = None;
        shadow.score_job(&mut shadow_ctx, item.job(&buf), &mut |r| {
            let b = Brief::of(r);
            let differs =
                b.status != before.status || b.kind != before.kind || b.points != before.points;
            if differs && out.is_some() {
                let mut j = Vec::new();
                add_shadow(&mut j, r);
                shadow_json = Some(j);
            }
            after = Some(b);
        });
        let Some(after) = after else { continue };
        let differs = after.status != before.status
            || after.kind != before.kind
            || after.points != before.points;
        let outcome = if after.status == Status::Error && before.status != Status::Error {
            "error"
        } else if differs {
            "changed"
        } else {
            "same"
        };
        metrics.shadow_jobs(outcome).inc();
        shadowed += 1;
        // Held per job, not per request: `/v1/shadow` never waits for a large request.
        let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            "error" => s.error += 1,
            "changed" => s.changed += 1,
            _ => s.same += 1,
        }
        let kind_live = before.kind.clone().unwrap_or_else(|| "none".into());
        let kind_shadow = after.kind.clone().unwrap_or_else(|| "none".into());
        metrics.shadow_points("live", &kind_live, before.points);
        metrics.shadow_points("shadow", &kind_shadow, after.points);
        {
            let k = s.by_kind.entry(kind_live.clone()).or_default();
            k.jobs += 1;
            k.changed += u64::from(outcome != "same");
            k.live += before.points;
        }
        s.by_kind.entry(kind_shadow).or_default().shadow += after.points;
        let model = before.model.clone().unwrap_or_else(|| "(none)".into());
        let key = if s.by_model.contains_key(&model) || s.by_model.len() < MAX_MODELS {
            model
        } else {
            "(other models)".to_string()
        };
        let m = s.by_model.entry(key).or_default();
        m.jobs += 1;
        m.changed += u64::from(outcome != "same");
        m.live += before.points;
        m.shadow += after.points;
        // The request's decision record for this job: copied, with the shadow result when
        // it differs.
        drop(s);
        let mut decision_id = None;
        if let (Some(out), Some((records, ends))) = (&mut out, &w.records)
            && let Some(&end) = ends.get(index)
        {
            let record = &records[record_start..end];
            record_start = end;
            decision_id = record_decision_id(record);
            match &shadow_json {
                Some(j) => {
                    // `…}\n` → `…,"shadow":{…}}\n`
                    out.extend_from_slice(&record[..record.len().saturating_sub(2)]);
                    out.extend_from_slice(j);
                    finish(out);
                }
                None => out.extend_from_slice(record),
            }
        }
        index += 1;
        let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
        if outcome != "same" && s.examples.len() < EXAMPLES {
            let brief = |b: &Brief| {
                json!({
                    "status": b.status.as_str(),
                    "kind": b.kind,
                    "rule": b.rule,
                    "points": b.points.to_string(),
                })
            };
            s.examples.push(json!({
                "decision_id": decision_id,
                "id": before.id,
                "model": before.model,
                "live": brief(&before),
                "shadow": brief(&after),
            }));
        }
    }
    let s = summary.lock().unwrap_or_else(|e| e.into_inner());
    for (kind, k) in &s.by_kind {
        let delta = (k.shadow.micros() - k.live.micros()) as f64 / 1e6;
        metrics.shadow_delta(kind).set(delta);
    }
    drop(s);
    let not_shadowed = w.jobs.saturating_sub(shadowed);
    if not_shadowed > 0 && draining.load(Ordering::Relaxed) {
        metrics.shadow_jobs("skipped").inc_by(not_shadowed);
        summary.lock().unwrap_or_else(|e| e.into_inner()).skipped += not_shadowed;
    }
    if let (Some(log), Some(mut out), Some((records, ends))) = (log, out, w.records) {
        // Records not reached (draining, or the body changed meaning between two reads of
        // it) are kept as they were.
        out.extend_from_slice(&records[record_start..]);
        submit_records(log, reserved, out, ends.len() as u64);
    }
}

/// The id at the start of a record: `{"decision_id":"ID",…`.
fn record_decision_id(record: &[u8]) -> Option<String> {
    let rest = record.strip_prefix(b"{\"decision_id\":\"")?;
    let end = memchr::memchr(b'"', rest)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}
