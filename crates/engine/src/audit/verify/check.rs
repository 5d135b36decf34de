//! Checking a batch of results: each job re-scored with the rules its result names, at the
//! time it was priced, and compared field by field.

use super::*;
use crate::engine::score::JobInput;

/// How a result's version was picked: the job's own time, `--at`, or the time received.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Pricing {
    JobTime,
    At(Timestamp),
    Received(Timestamp),
}

/// A parsed item, ready to be scored.
pub(super) struct Ready<'b> {
    pub(super) item: &'b Item,
    pub(super) at: Location,
    pub(super) expected: ResultIn<'b>,
    pub(super) embedded: Option<Cow<'b, str>>,
    pub(super) known: Arc<crate::audit::history::Known>,
    pub(super) hash: Arc<str>,
    pub(super) pricing: Pricing,
}

pub(super) fn check_batch(
    batch: &Batch,
    library: &RulesLibrary,
    opts: &VerifyOptions,
    names: &[String],
    job_names: &[String],
) -> Partial {
    let mut part = Partial::default();
    let mut ready: Vec<Ready<'_>> = Vec::with_capacity(batch.items.len());
    let mut hashes: HashMap<String, (Arc<str>, Lookup)> = HashMap::new();
    for item in &batch.items {
        part.results += 1;
        let mut at = Location {
            file: names[item.results_file as usize].clone(),
            line: item.results_line,
            decision_id: None,
        };
        let problem = |part: &mut Partial, at: Location, why: String| {
            part.mismatches.push(Mismatch {
                at,
                job: None,
                ruleset: None,
                differences: Vec::new(),
                problem: Some(why),
            });
        };
        let text = &batch.bytes[item.start..item.end];
        if let JobSlot::Missing { file: None, why } = &item.job
            && !why.is_empty()
        {
            problem(&mut part, at, why.clone());
            continue;
        }
        let mut parsed: LineIn<'_> = match serde_json::from_slice(text) {
            Ok(p) => p,
            Err(e) => {
                problem(&mut part, at, format!("not a result: {e}"));
                continue;
            }
        };
        at.decision_id = parsed.decision_id.as_ref().map(|d| d.to_string());
        let is_decision = parsed.decision_id.is_some();
        let (input, input_text) = (parsed.input.take(), parsed.input_text.take());
        let received_at = parsed.received_at.take();
        let (expected, embedded) = match (is_decision, parsed.result.take()) {
            (true, Some(result)) => {
                let embedded = match (input, input_text) {
                    (Some(raw), _) => Some(Cow::Borrowed(raw.get())),
                    (None, Some(text)) => Some(text),
                    (None, None) => None,
                };
                let Some(embedded) = embedded else {
                    problem(
                        &mut part,
                        at,
                        "the decision record has no `input` (or `input_text`) to score".into(),
                    );
                    continue;
                };
                (result, Some(embedded))
            }
            (true, None) => {
                problem(&mut part, at, "the decision record has no `result`".into());
                continue;
            }
            (false, _) => (parsed.plain(), None),
        };
        let Some(hash_text) = expected.ruleset.as_deref() else {
            problem(&mut part, at, "the result has no `ruleset`".into());
            continue;
        };
        let (hash, lookup) = hashes
            .entry(hash_text.to_string())
            .or_insert_with(|| (Arc::from(hash_text), library.lookup(hash_text)))
            .clone();
        match expected.engine.as_deref() {
            Some(ENGINE) => {}
            Some(other) => *part.engines.entry(other.to_string()).or_default() += 1,
            None => *part.engines.entry("(not named)".into()).or_default() += 1,
        }
        let known = match lookup {
            Lookup::Found(k) => k,
            Lookup::Unknown(reason) => {
                part.unknown.push((hash, reason, at));
                continue;
            }
        };
        let pricing = match (expected.priced_by.as_deref(), expected.priced_at.as_deref()) {
            (None, _) => opts.at.map_or(Pricing::JobTime, Pricing::At),
            (Some(by @ ("at" | "received")), Some(t)) => match parse_time(t) {
                Ok(t) if by == "at" => Pricing::At(t),
                Ok(t) => Pricing::Received(t),
                Err(e) => {
                    problem(&mut part, at, format!("`priced_at`: {e}"));
                    continue;
                }
            },
            (Some(by), _) => {
                problem(
                    &mut part,
                    at,
                    format!("`priced_by` is `{by}` without a usable `priced_at`"),
                );
                continue;
            }
        };
        // A decision priced at the time received must name the second its record says the
        // server received it: a backdated `priced_at` (rule and points changed to match) is
        // caught here, not by scoring again (#22).
        if let (true, Pricing::Received(t)) = (is_decision, pricing)
            && let Err(why) = received_second(received_at.as_deref(), t)
        {
            problem(&mut part, at, why);
            continue;
        }
        ready.push(Ready {
            item,
            at,
            expected,
            embedded,
            known,
            hash,
            pricing,
        });
    }
    // Score in runs that share a rule set and a pricing time, one scorer context per run.
    let mut i = 0;
    while i < ready.len() {
        let (known, pricing) = (ready[i].known.clone(), ready[i].pricing);
        let scorer = Scorer {
            opts: ScoreOptions {
                at: match pricing {
                    Pricing::At(t) => Some(t),
                    _ => None,
                },
                explain: false,
            },
            received: match pricing {
                Pricing::Received(t) => Some(t),
                _ => None,
            },
            ..Scorer::new(&known.rules)
        };
        let mut ctx = scorer.context();
        while i < ready.len() && Arc::ptr_eq(&ready[i].known, &known) && ready[i].pricing == pricing
        {
            let r = &ready[i];
            i += 1;
            let mut differences = Vec::new();
            let mut check = |s: &ScoreRef<'_>| {
                differences = compare(&r.expected, s, r.embedded.is_none());
            };
            let line = r.expected.line.unwrap_or(1);
            let mut job_at = None;
            match (&r.embedded, &r.item.job) {
                (Some(text), _) => {
                    let job = JobInput::Line {
                        line,
                        bytes: text.as_bytes(),
                    };
                    scorer.score_job(&mut ctx, job, &mut check)
                }
                (
                    None,
                    JobSlot::Bytes {
                        file,
                        line,
                        start,
                        end,
                    },
                ) => {
                    job_at = Some(format!("{}:{line}", job_names[*file as usize]));
                    let bytes = &batch.bytes[*start..*end];
                    let job = JobInput::Line { line: *line, bytes };
                    scorer.score_job(&mut ctx, job, &mut check);
                }
                (None, JobSlot::Record { file, record }) => {
                    let line = match record {
                        Ok(j) => j.line,
                        Err(e) => e.line,
                    };
                    job_at = Some(format!("{}:{line}", job_names[*file as usize]));
                    scorer.score_job(&mut ctx, JobInput::Record(record), &mut check);
                }
                (None, JobSlot::Missing { file, why }) => {
                    part.count_ruleset(&r.hash, Some(&r.known.source), false);
                    part.mismatches.push(Mismatch {
                        at: r.at.clone(),
                        job: file.map(|f| job_names[f as usize].clone()),
                        ruleset: Some(r.hash.to_string()),
                        differences: Vec::new(),
                        problem: Some(why.clone()),
                    });
                    continue;
                }
                (None, JobSlot::Embedded) => unreachable!("a plain result is paired"),
            }
            let ok = differences.is_empty();
            part.count_ruleset(&r.hash, Some(&r.known.source), ok);
            if ok {
                part.verified += 1;
            } else {
                part.mismatches.push(Mismatch {
                    at: r.at.clone(),
                    job: job_at,
                    ruleset: Some(r.hash.to_string()),
                    differences,
                    problem: None,
                });
            }
        }
    }
    part
}

/// Whether `priced_at` (`t`) is the second of `received_at`, as `serve` prices a job.
fn received_second(received_at: Option<&str>, t: Timestamp) -> Result<(), String> {
    let Some(text) = received_at else {
        return Err("the decision is priced when received but has no `received_at`".into());
    };
    let received = parse_time(text).map_err(|e| format!("`received_at`: {e}"))?;
    if received.as_second() == t.as_second() {
        Ok(())
    } else {
        Err(format!(
            "`priced_at` {} is not when the server received the job (`received_at` {text}): \
             the pricing time was changed",
            crate::engine::time::utc_string(t)
        ))
    }
}

/// The fields that differ between a result and its re-score. A result paired with a job
/// file must also name the job's id (else it was paired with another job).
pub(super) fn compare(
    expected: &ResultIn<'_>,
    actual: &ScoreRef<'_>,
    check_id: bool,
) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut field = |name: &'static str, e: Option<&str>, a: Option<&str>| {
        if e != a {
            out.push(Difference {
                field: name,
                expected: e.map(String::from),
                actual: a.map(String::from),
            });
        }
    };
    if check_id {
        field("id", expected.id.as_deref(), actual.id);
    }
    field(
        "status",
        expected.status.as_deref(),
        Some(actual.status.as_str()),
    );
    field("kind", expected.kind.as_deref(), actual.kind);
    field("rule", expected.rule.as_deref(), actual.rule);
    field(
        "disputed_claim",
        expected.disputed_claim.as_deref(),
        actual.disputed_claim,
    );
    let points_text = expected.points.map(RawValue::get);
    let same_points = points_text
        .and_then(|t| t.parse::<Points>().ok())
        .is_some_and(|p| p == actual.points);
    if !same_points {
        out.push(Difference {
            field: "points",
            expected: points_text.map(String::from),
            actual: Some(actual.points.to_string()),
        });
    }
    out
}
