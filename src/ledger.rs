//! Scoring ledgers at scale: JSONL read once, parsed and scored on every core, results
//! delivered in input order, in constant memory.
//!
//! A reader thread cuts the input into batches of lines; worker threads score them; the
//! caller receives each batch's accumulated output in order. Memory is bounded by the
//! batches in flight, whatever the ledger's size.
//!
//! Each line first tries a fast path that borrows from the line instead of building a JSON
//! tree, caches model resolution per time segment, and evaluates compiled formulas. The fast
//! path handles only well-formed jobs; anything unusual (escapes, duplicate keys, a missing
//! or mistyped field, nested inputs, a rule error) falls back to the plain path, which
//! produces the canonical result. Both give identical bytes (see `tests/ledger.rs`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead};

use jiff::Timestamp;
use serde::Deserializer as _;
use serde::de::{self, MapAccess, Visitor};

use crate::evaluate::{EvalContext, Outcome, evaluate};
use crate::job::JobRecord;
use crate::model::{Resolution, RuleSet, Value};
use crate::output::ScoreRef;
use crate::points::Points;
use crate::reader::{JobReader, RawItem, parse_line};
use crate::schema::InputType;
use crate::score::{ScoreOptions, Status, score_record};
use crate::time::{parse_time, utc_string};

/// Lines per batch handed to a worker.
const BATCH_ITEMS: usize = 4096;
/// Bytes per batch (whichever limit comes first).
const BATCH_BYTES: usize = 1 << 20;

/// Something that turns job lines into results: the rules engine, or (in the benchmark) a
/// hand-written scorer. Results are handed to `emit` as borrowed views.
pub trait LineScorer: Sync {
    /// Per-worker state.
    type Ctx: Send;
    fn context(&self) -> Self::Ctx;
    /// Scores one JSONL line (without its line end).
    fn score_line(
        &self,
        ctx: &mut Self::Ctx,
        line: u64,
        bytes: &[u8],
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    );
    /// Scores a record parsed up front (JSON array or document input).
    fn score_record(
        &self,
        ctx: &mut Self::Ctx,
        record: JobRecord,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    );
}

enum Item {
    Line { line: u64, start: usize, end: usize },
    Record(JobRecord),
}

struct Batch {
    seq: u64,
    bytes: Vec<u8>,
    items: Vec<Item>,
}

/// Scores every job of `reader` on `threads` workers. For each job `per_job` folds its result
/// into the batch's accumulator; `consume` receives the accumulators in input order. Returns
/// the number of jobs read, or the first error from `consume` or from reading.
pub fn run_ledger<R, S, A>(
    reader: JobReader<R>,
    scorer: &S,
    threads: usize,
    per_job: impl Fn(&ScoreRef<'_>, &mut A) + Sync,
    mut consume: impl FnMut(A) -> io::Result<()>,
) -> io::Result<u64>
where
    R: BufRead + Send,
    S: LineScorer,
    A: Default + Send,
{
    let threads = threads.max(1);
    let (batch_tx, batch_rx) = crossbeam_channel::bounded::<Batch>(threads * 2);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<(u64, A)>(threads * 2);
    std::thread::scope(|scope| {
        let reading = scope.spawn(move || read_batches(reader, batch_tx));
        for _ in 0..threads {
            let (rx, tx) = (batch_rx.clone(), done_tx.clone());
            let per_job = &per_job;
            scope.spawn(move || {
                let mut ctx = scorer.context();
                for batch in rx {
                    let mut acc = A::default();
                    let mut emit = |s: &ScoreRef<'_>| per_job(s, &mut acc);
                    for item in batch.items {
                        match item {
                            Item::Line { line, start, end } => {
                                scorer.score_line(
                                    &mut ctx,
                                    line,
                                    &batch.bytes[start..end],
                                    &mut emit,
                                );
                            }
                            Item::Record(r) => scorer.score_record(&mut ctx, r, &mut emit),
                        }
                    }
                    if tx.send((batch.seq, acc)).is_err() {
                        return; // the consumer stopped
                    }
                }
            });
        }
        drop(done_tx);
        drop(batch_rx);
        // Deliver in order; out-of-order batches wait here (bounded by the channels).
        let mut pending: BTreeMap<u64, A> = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        for (seq, acc) in done_rx.iter() {
            pending.insert(seq, acc);
            while let Some(acc) = pending.remove(&next) {
                next += 1;
                if result.is_ok() {
                    result = consume(acc);
                }
            }
            if result.is_err() {
                // Stop reading: dropping the receiver ends the workers, then the reader.
                break;
            }
        }
        drop(done_rx);
        let (jobs, io_error) = reading.join().expect("reader thread");
        result?;
        match io_error {
            Some(e) => Err(e),
            None => Ok(jobs),
        }
    })
}

fn read_batches<R: BufRead>(
    mut reader: JobReader<R>,
    tx: crossbeam_channel::Sender<Batch>,
) -> (u64, Option<io::Error>) {
    let mut seq = 0;
    let mut jobs = 0u64;
    loop {
        let mut batch = Batch {
            seq,
            bytes: Vec::with_capacity(BATCH_BYTES + 4096),
            items: Vec::with_capacity(BATCH_ITEMS),
        };
        while batch.items.len() < BATCH_ITEMS && batch.bytes.len() < BATCH_BYTES {
            let start = batch.bytes.len();
            match reader.next_raw(&mut batch.bytes) {
                Some(RawItem::Line(line)) => batch.items.push(Item::Line {
                    line,
                    start,
                    end: batch.bytes.len(),
                }),
                Some(RawItem::Record(r)) => batch.items.push(Item::Record(r)),
                None => break,
            }
        }
        if batch.items.is_empty() {
            break;
        }
        let last = batch.items.len() < BATCH_ITEMS && batch.bytes.len() < BATCH_BYTES;
        jobs += batch.items.len() as u64;
        if tx.send(batch).is_err() {
            break;
        }
        seq += 1;
        if last {
            break;
        }
    }
    (jobs, reader.io_error.take())
}

/// The rules engine as a [`LineScorer`]: the fast path where it applies, else plain scoring.
pub struct RulesScorer<'rs> {
    pub rules: &'rs RuleSet,
    pub opts: ScoreOptions,
    /// Shown as `file` in every result (when several files are scored).
    pub file: Option<String>,
    /// Use the fast path (parse-free envelope, cached resolution, compiled formulas). When
    /// false, every job goes through plain parsing and rhai: the reference behaviour.
    pub fast: bool,
}

/// Per-worker state of [`RulesScorer`].
pub struct RulesContext<'rs> {
    eval: EvalContext,
    resolutions: ResolutionCache<'rs>,
    inputs: Vec<Value>,
    when: String,
}

impl<'rs> LineScorer for RulesScorer<'rs> {
    type Ctx = RulesContext<'rs>;

    fn context(&self) -> RulesContext<'rs> {
        RulesContext {
            eval: if self.fast {
                EvalContext::new()
            } else {
                EvalContext::interpreter_only()
            },
            resolutions: ResolutionCache::new(self.rules),
            inputs: Vec::with_capacity(8),
            when: String::with_capacity(24),
        }
    }

    fn score_line(
        &self,
        ctx: &mut RulesContext<'rs>,
        line: u64,
        bytes: &[u8],
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        if self.fast && self.try_fast(ctx, line, bytes, emit) {
            return;
        }
        self.score_record(ctx, parse_line(line, bytes), emit);
    }

    fn score_record(
        &self,
        ctx: &mut RulesContext<'rs>,
        record: JobRecord,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        let mut s = score_record(self.rules, record, self.opts, &mut ctx.eval);
        s.file.clone_from(&self.file);
        emit(&s.as_ref());
    }
}

impl<'rs> RulesScorer<'rs> {
    /// Scores a well-formed job without building a JSON tree. Returns false (having emitted
    /// nothing) whenever the plain path must decide.
    fn try_fast(
        &self,
        ctx: &mut RulesContext<'rs>,
        line: u64,
        bytes: &[u8],
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) -> bool {
        if self.opts.explain {
            return false;
        }
        let Some(job) = FastJob::parse(bytes) else {
            return false;
        };
        let Some(env) = job.envelope() else {
            return false;
        };
        let completed = match env.completed_at {
            None => None,
            Some(text) => match parse_time(text) {
                Ok(t) => Some(t),
                Err(_) => return false,
            },
        };
        let at = self.opts.at.or(completed);
        let Some(resolution) = ctx.resolutions.get(env.model, at) else {
            return false;
        };
        // Shown exactly as the plain path shows it: UTC, second precision.
        let completed_text: Option<&str> = match (completed, env.completed_at) {
            (Some(_), Some(text)) if is_canonical_utc(text) => Some(text),
            (Some(t), _) => {
                ctx.when.clear();
                ctx.when.push_str(&utc_string(t));
                Some(ctx.when.as_str())
            }
            _ => None,
        };
        let mut s = ScoreRef {
            file: self.file.as_deref(),
            line,
            id: env.id.as_deref(),
            model: Some(env.model),
            miner: env.miner,
            status: Status::NoRule,
            kind: None,
            family: None,
            rule: None,
            points: Points::ZERO,
            ruleset: &self.rules.hash,
            reason: None,
            error: None,
            field: None,
            completed_at: completed_text,
        };
        match resolution {
            Resolution::NoRule {
                family,
                rule,
                kind,
                reason,
            } => {
                s.family = family.as_deref();
                s.kind = kind.map(|k| k.points.as_str());
                s.rule = rule.map(|(_, v)| v.label.as_str());
                s.reason = Some(reason);
                emit(&s);
                true
            }
            Resolution::Priced {
                rule,
                version,
                kind,
            } => {
                ctx.inputs.clear();
                for spec in &kind.inputs {
                    if spec.ty != InputType::Int {
                        return false;
                    }
                    let mut found = None;
                    for path in &spec.from {
                        match path.as_slice() {
                            [key] => {
                                if let Some(v) = job.get(key) {
                                    found = Some(v);
                                    break;
                                }
                            }
                            // Nested paths are the plain path's business, when present.
                            [first, ..] if job.get(first).is_some() => return false,
                            _ => {}
                        }
                    }
                    let Some(FastVal::Int(i)) = found else {
                        return false;
                    };
                    let x = i as f64;
                    if spec.min.is_some_and(|m| x < m) || spec.max.is_some_and(|m| x > m) {
                        return false;
                    }
                    ctx.inputs.push(Value::Int(i));
                }
                s.family = Some(&rule.family);
                s.kind = Some(&kind.points);
                s.rule = Some(&version.label);
                let reason;
                match evaluate(
                    &self.rules.engine,
                    kind,
                    version,
                    &ctx.inputs,
                    &mut ctx.eval,
                    None,
                ) {
                    Outcome::Ok { points, .. } => {
                        s.status = Status::Ok;
                        s.points = points;
                    }
                    Outcome::BelowThreshold { reason: r } => {
                        reason = r;
                        s.status = Status::BelowThreshold;
                        s.reason = Some(&reason);
                    }
                    Outcome::Failed { .. } => return false,
                }
                emit(&s);
                true
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`: what `utc_string` prints, so the input text can be reused.
pub fn is_canonical_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// Resolutions per model, cached per time segment: between two consecutive `effective_from`
/// dates of a model's rules, the resolution cannot change.
struct ResolutionCache<'rs> {
    rules: &'rs RuleSet,
    // aHash: the cache is hit once per job, and SipHash showed in profiles.
    models: ahash::AHashMap<String, Timeline<'rs>>,
}

struct Timeline<'rs> {
    breaks: Vec<Timestamp>,
    segments: Vec<Option<Resolution<'rs>>>,
    latest: Option<Resolution<'rs>>,
}

impl<'rs> ResolutionCache<'rs> {
    fn new(rules: &'rs RuleSet) -> Self {
        ResolutionCache {
            rules,
            models: ahash::AHashMap::new(),
        }
    }

    /// `None` when the resolution depends on more than the segment (the fast path then
    /// defers to the plain path).
    fn get(&mut self, model: &str, at: Option<Timestamp>) -> Option<&Resolution<'rs>> {
        let rules = self.rules;
        if !self.models.contains_key(model) {
            if self.models.len() > 100_000 {
                // Hostile ledgers with endless model names must not grow memory without bound.
                self.models.clear();
            }
            self.models
                .insert(model.to_string(), Timeline::new(rules, model));
        }
        let tl = self.models.get_mut(model)?;
        let slot = match at {
            None => &mut tl.latest,
            Some(t) => {
                let i = tl.breaks.partition_point(|b| *b <= t);
                &mut tl.segments[i]
            }
        };
        if slot.is_none() {
            let r = rules.resolve(model, at);
            if r.depends_on_exact_time() {
                return None;
            }
            *slot = Some(r);
        }
        slot.as_ref()
    }
}

impl<'rs> Timeline<'rs> {
    fn new(rules: &'rs RuleSet, model: &str) -> Self {
        let mut breaks = Vec::new();
        let model_rule = rules.model_rules.get(model);
        let family = model_rule
            .map(|r| r.family.as_str())
            .or_else(|| rules.catalog.get(model).map(|c| c.family.as_str()));
        for rule in model_rule
            .into_iter()
            .chain(family.and_then(|f| rules.family_rules.get(f)))
        {
            breaks.extend(rule.versions.iter().map(|v| v.effective_from));
        }
        breaks.sort();
        breaks.dedup();
        Timeline {
            segments: vec![None; breaks.len() + 1],
            breaks,
            latest: None,
        }
    }
}

/// A job line's fields, borrowed from the line: the fast path's parser, public so the
/// benchmark's native scorer parses exactly the same way.
pub struct FastJob<'a> {
    fields: Vec<(&'a str, FastVal<'a>)>,
}

/// A value of a [`FastJob`] field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FastVal<'a> {
    Null,
    Int(i64),
    /// An integer above `i64::MAX`.
    BigUint(u64),
    Float(f64),
    Str(&'a str),
    /// Booleans, escaped strings, arrays, objects.
    Other,
}

/// The envelope fields of a job, as the plain path reads them.
pub struct Envelope<'a> {
    pub id: Option<Cow<'a, str>>,
    pub model: &'a str,
    pub completed_at: Option<&'a str>,
    pub miner: Option<&'a str>,
}

impl<'a> FastJob<'a> {
    /// Parses a flat JSON object; `None` for anything else, or a duplicate key.
    pub fn parse(bytes: &'a [u8]) -> Option<FastJob<'a>> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let job = de.deserialize_map(JobVisitor).ok()?;
        de.end().ok()?;
        Some(job)
    }

    pub fn get(&self, key: &str) -> Option<FastVal<'a>> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn first(&self, keys: &[&str]) -> Option<FastVal<'a>> {
        keys.iter().find_map(|k| self.get(k))
    }

    /// The envelope, or `None` where the plain path would report the job invalid.
    pub fn envelope(&self) -> Option<Envelope<'a>> {
        let id = match self.first(&["id", "job_id"]) {
            None | Some(FastVal::Null) => None,
            Some(FastVal::Str(s)) => Some(Cow::Borrowed(s)),
            Some(FastVal::Int(i)) => Some(Cow::Owned(i.to_string())),
            Some(FastVal::BigUint(u)) => Some(Cow::Owned(u.to_string())),
            Some(_) => return None,
        };
        let model = match self.first(&["model", "model_id"]) {
            Some(FastVal::Str(s)) if !s.trim().is_empty() => s,
            _ => return None,
        };
        let completed_at = match self.get("completed_at") {
            None | Some(FastVal::Null) => None,
            Some(FastVal::Str(s)) => Some(s),
            Some(_) => return None,
        };
        let miner = match self.first(&["miner", "miner_id"]) {
            None | Some(FastVal::Null) => None,
            Some(FastVal::Str(s)) => Some(s),
            Some(_) => return None,
        };
        Some(Envelope {
            id,
            model,
            completed_at,
            miner,
        })
    }
}

struct JobVisitor;

impl<'de> Visitor<'de> for JobVisitor {
    type Value = FastJob<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a job object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<FastJob<'de>, M::Error> {
        let mut fields: Vec<(&'de str, FastVal<'de>)> = Vec::with_capacity(12);
        // A borrowed `&str` key fails on escapes, which sends the line to the plain path.
        while let Some(key) = map.next_key::<&'de str>()? {
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(ValSeed)?;
            fields.push((key, value));
        }
        Ok(FastJob { fields })
    }
}

struct ValSeed;

impl<'de> de::DeserializeSeed<'de> for ValSeed {
    type Value = FastVal<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<FastVal<'de>, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = FastVal<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<FastVal<'de>, E> {
        Ok(FastVal::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<FastVal<'de>, E> {
        Ok(FastVal::Other)
    }

    fn visit_i64<E>(self, v: i64) -> Result<FastVal<'de>, E> {
        Ok(FastVal::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<FastVal<'de>, E> {
        Ok(i64::try_from(v).map_or(FastVal::BigUint(v), FastVal::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<FastVal<'de>, E> {
        // An integer beyond 64 bits makes the job invalid wherever it is (#7): the plain
        // path reports it with its original text.
        if crate::strict_json::is_huge(v) {
            return Err(E::custom("huge number"));
        }
        Ok(FastVal::Float(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<FastVal<'de>, E> {
        Ok(FastVal::Str(v))
    }

    fn visit_str<E>(self, _: &str) -> Result<FastVal<'de>, E> {
        // An escaped string: not borrowable; the plain path decides.
        Ok(FastVal::Other)
    }

    // Nested values are rare in ledgers; they are checked like the plain path checks them
    // (duplicate keys, huge integers), and anything suspicious goes to the plain path.
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<FastVal<'de>, A::Error> {
        crate::strict_json::skip_seq(seq)?;
        Ok(FastVal::Other)
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<FastVal<'de>, M::Error> {
        crate::strict_json::skip_map(map)?;
        Ok(FastVal::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_times() {
        assert!(is_canonical_utc("2024-05-01T00:00:00Z"));
        assert!(!is_canonical_utc("2024-05-01T00:00:00+00:00"));
        assert!(!is_canonical_utc("2024-05-01"));
        assert!(!is_canonical_utc("2024-05-01T00:00:00.5Z"));
    }

    #[test]
    fn fast_parse_refuses_what_it_cannot_borrow() {
        assert!(FastJob::parse(br#"{"model":"a","width":512}"#).is_some());
        assert!(
            FastJob::parse(br#"{"model":"a","model":"b"}"#).is_none(),
            "duplicate key"
        );
        assert!(
            FastJob::parse(br#"{"mod\u0065l":"a"}"#).is_none(),
            "escaped key"
        );
        assert!(FastJob::parse(br#"[1]"#).is_none());
        assert!(FastJob::parse(br#"{"model":"a"} x"#).is_none());
        let j = FastJob::parse(br#"{"model":"a\"b","n":{"x":[1,2]},"big":18446744073709551615}"#)
            .unwrap();
        assert_eq!(j.get("model"), Some(FastVal::Other));
        assert_eq!(j.get("n"), Some(FastVal::Other));
        assert_eq!(j.get("big"), Some(FastVal::BigUint(u64::MAX)));
    }
}
