//! The HTTP API of `serve`: routes, and scoring a request within its limits.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use jiff::Timestamp;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::json;
use tokio::sync::Semaphore;

use super::conn::{Chunks, Guarded};
use super::metrics::{JobLabels, Metrics, Rejected};
use super::shadow::{Shadow, Work};
use jobpoints::audit::decision::{DecisionIds, DecisionLog, Input, begin_record, finish};
use jobpoints::engine::model::{Pricing, RuleSet};
use jobpoints::engine::score::{ScoreOptions, ScoreRef, Scorer};
use jobpoints::engine::time::{parse_time, utc_string};
use jobpoints::ledger::reader::{JobReader, RawItem};
use jobpoints::live::handle::RulesHandle;

/// `?explain=true` traces are for reading: at most this many jobs per request.
const EXPLAIN_MAX_JOBS: u64 = 1_000;

/// The per-request limits.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestLimits {
    pub max_body_bytes: usize,
    pub max_jobs: u64,
    pub body_timeout: Duration,
}

pub(super) struct AppState {
    pub rules: Arc<RulesHandle>,
    pub metrics: Arc<Metrics>,
    /// `--decision-log`: every scored job gets a decision id and a record.
    pub decision_log: Option<Arc<DecisionLog>>,
    pub decision_ids: DecisionIds,
    /// `--decision-log-omit`: fields of the job not stored.
    pub omit: Vec<String>,
    /// `--shadow-rules`.
    pub shadow: Option<Arc<Shadow>>,
    pub limits: RequestLimits,
    /// Score requests in flight (`--max-requests`): from the headers until the results are
    /// sent. None free: 503.
    pub requests: Arc<Semaphore>,
    pub max_requests: usize,
    /// Requests being scored at once (`--threads`); admitted requests wait for one.
    pub scoring: Arc<Semaphore>,
    /// `--trust-job-time`: a job's own `completed_at` picks its rule version.
    pub trust_job_time: bool,
    pub watching: bool,
}

pub(super) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/score", post(score))
        .route("/v1/rules", get(rules))
        .route("/v1/shadow", get(shadow))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed for this endpoint".into(),
            )
        })
        .with_state(state)
}

fn json_error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// An error after which the connection is closed: the rest of the request body was not
/// read, so the connection cannot carry another request.
fn closing(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

#[derive(Clone, Copy)]
enum BodyShape {
    /// One JSON value: a job or an array of jobs.
    Json,
    /// JSONL: one job per line; a broken line is one `invalid` result.
    Lines,
}

/// `POST /v1/score?at=TIME&explain=true`: the `--at` and `--explain` of `eval`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreQuery {
    at: Option<String>,
    #[serde(default)]
    explain: bool,
}

/// Sets its flag when dropped: a request whose client went away stops being scored.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn score(
    State(st): State<Arc<AppState>>,
    query: Result<Query<ScoreQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // One time per request, to the second, so `priced_at` given back as `?at=` prices alike.
    let now = Timestamp::now();
    let received = Timestamp::from_second(now.as_second()).ok();
    // The decision log's `received_at`, to the millisecond.
    let received_at = now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let Ok(permit) = st.requests.clone().try_acquire_owned() else {
        st.metrics.rejected(Rejected::Overloaded);
        let mut r = closing(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many requests in progress (at most {}, see --max-requests); retry shortly",
                st.max_requests
            ),
        ));
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let resp = score_admitted(&st, query, &headers, body, received, received_at).await;
    resp.map(|b| Guarded::permit(b, permit))
}

async fn score_admitted(
    st: &Arc<AppState>,
    query: Result<Query<ScoreQuery>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
    received: Option<Timestamp>,
    received_at: String,
) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let opts = match query.at.as_deref().map(parse_time).transpose() {
        Ok(at) => ScoreOptions {
            at,
            explain: query.explain,
        },
        Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("`at`: {e}")),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let shape = match content_type.as_deref() {
        Some("application/json") => BodyShape::Json,
        Some("application/x-ndjson" | "application/jsonl" | "application/jsonlines") => {
            BodyShape::Lines
        }
        other => {
            return json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "expected `Content-Type: application/json` (a job or an array of jobs) or `application/x-ndjson` (JSONL), got {}",
                    other.map_or("none".to_string(), |t| format!("`{t}`"))
                ),
            );
        }
    };
    let limits = st.limits;
    let too_large = || {
        st.metrics.rejected(Rejected::BodyTooLarge);
        closing(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than {} bytes (see --max-body-bytes)",
                limits.max_body_bytes
            ),
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large();
    }
    let bytes = match read_body(body, limits.max_body_bytes, declared, limits.body_timeout).await {
        Ok(b) => b,
        Err(ReadError::TooLarge) => return too_large(),
        Err(ReadError::Failed(e)) => {
            return closing(json_error(
                StatusCode::BAD_REQUEST,
                format!("cannot read request body: {e}"),
            ));
        }
    };
    let bytes = match bytes {
        Some(b) => b,
        None => {
            st.metrics.rejected(Rejected::BodyTimeout);
            return closing(json_error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} s (see --body-timeout)",
                    limits.body_timeout.as_secs_f64()
                ),
            ));
        }
    };
    // Checking, counting and scoring the body is CPU work: it runs on a scoring thread, so
    // the async workers stay free for other requests (`/healthz` included).
    let Ok(slot) = st.scoring.clone().acquire_owned().await else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into());
    };
    let received = if st.trust_job_time { None } else { received };
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let (st2, flag) = (st.clone(), cancel.0.clone());
    let scored = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let scored = check_and_score(&st2, &bytes, shape, opts, received, &received_at, &flag);
        // The records (and the shadow's copy of the body) are queued before the response
        // goes: a response sent always has its record queued.
        scored.map(|(rules, single, results, out, records)| {
            audit(&st2, bytes, opts, received, &rules, records, results);
            (rules, single, results, out)
        })
    })
    .await;
    drop(cancel);
    let (rules, single, results, out) = match scored {
        Ok(Ok(r)) => r,
        Ok(Err(Refused { status, message })) => return json_error(status, message),
        Err(e) => {
            tracing::error!("scoring task failed: {e}");
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "scoring failed".into());
        }
    };
    let mut out = Bytes::from(out);
    if single && results == 1 {
        // One object in, one object out: the array's brackets go.
        out = out.slice(1..out.len() - 1);
    }
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::new(Chunks(out)),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&rules.hash) {
        resp.headers_mut().insert("x-jobpoints-ruleset", v);
    }
    resp
}

/// A request refused after its body was read.
struct Refused {
    status: StatusCode,
    message: String,
}

impl Refused {
    fn bad(message: String) -> Self {
        Refused {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

/// Decision records, one line each, and where each ends.
type Records = (Vec<u8>, Vec<usize>);

/// The rules used, the number of results, the results, their records.
type BodyScored = (Arc<RuleSet>, u64, Vec<u8>, Option<Records>);

/// The rules used, whether one object answers (one job object in), the number of results,
/// the results as a JSON array, and their decision records (with `--decision-log`).
type Scored = (Arc<RuleSet>, bool, u64, Vec<u8>, Option<Records>);

/// Hands a scored request to the shadow rules, or its records to the decision log.
fn audit(
    st: &AppState,
    body: Vec<u8>,
    opts: ScoreOptions,
    received: Option<Timestamp>,
    rules: &Arc<RuleSet>,
    records: Option<Records>,
    jobs: u64,
) {
    match &st.shadow {
        Some(shadow) => shadow.submit(Work {
            body,
            opts: ScoreOptions {
                explain: false,
                ..opts
            },
            received,
            live: rules.clone(),
            records,
            jobs,
        }),
        None => {
            if let (Some(log), Some((bytes, ends))) = (&st.decision_log, records) {
                log.submit(bytes, ends.len() as u64);
            }
        }
    }
}

/// Checks a request body (UTF-8, JSON, job count) and scores it.
fn check_and_score(
    st: &AppState,
    bytes: &[u8],
    shape: BodyShape,
    opts: ScoreOptions,
    received: Option<Timestamp>,
    received_at: &str,
    cancel: &AtomicBool,
) -> Result<Scored, Refused> {
    if let Err(e) = std::str::from_utf8(bytes) {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(Refused::bad(format!(
            "request body is not valid UTF-8: invalid byte at offset {at} (line {line})"
        )));
    }
    // One pass checks the JSON (for `application/json`) and counts the jobs, before the reader
    // parses anything up front (it reads a whole array at once); the scoring loop counts
    // again as it reads, and stops at the limit.
    let (single, jobs) = match shape {
        BodyShape::Json => {
            // Exactly `serde_json::from_slice`: one value, then only whitespace.
            let counted = Cell::new(0);
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let read = Jobs(&counted).deserialize(&mut de).and_then(|()| de.end());
            let jobs = match read {
                Ok(()) => counted.get(),
                Err(e) => {
                    let text = e.to_string();
                    let what = text.rsplit_once(" at line ").map_or(&*text, |(m, _)| m);
                    let hint = if what == "trailing characters" {
                        "; for one job per line (JSONL) send `Content-Type: application/x-ndjson`"
                    } else {
                        ""
                    };
                    return Err(Refused::bad(format!(
                        "broken JSON at line {} column {}: {what}{hint}",
                        e.line(),
                        e.column(),
                    )));
                }
            };
            match first_content(bytes) {
                Some(b'{') => (true, jobs),
                Some(b'[') => (false, jobs),
                _ => {
                    return Err(Refused::bad(
                        "expected a job object or an array of jobs".into(),
                    ));
                }
            }
        }
        // A broken line is one `invalid` result, not an error: count what is well-formed.
        BodyShape::Lines => (false, count_jobs(bytes)),
    };
    let limit = st.limits.max_jobs;
    let max_jobs = if opts.explain {
        limit.min(EXPLAIN_MAX_JOBS)
    } else {
        limit
    };
    let too_many = || {
        st.metrics.rejected(Rejected::TooManyJobs);
        Refused {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: if max_jobs < limit {
                format!(
                    "more than {max_jobs} jobs in one request with `explain=true`; send fewer, or leave out `explain`"
                )
            } else {
                format!(
                    "more than {max_jobs} jobs in one request (see --max-jobs); send them in several requests"
                )
            },
        }
    };
    if jobs > max_jobs {
        return Err(too_many());
    }
    match score_body(st, bytes, opts, received, received_at, max_jobs, cancel) {
        Ok((rules, results, out, records)) => Ok((rules, single, results, out, records)),
        Err(Stopped::TooManyJobs) => Err(too_many()),
        Err(Stopped::Cancelled) => Err(Refused::bad("the client went away".into())),
    }
}

enum ReadError {
    TooLarge,
    Failed(axum::Error),
}

/// Reads the whole body, at most `max` bytes; `None` when it has not all arrived within
/// `timeout`.
async fn read_body(
    mut body: Body,
    max: usize,
    declared: Option<u64>,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, ReadError> {
    let read = async move {
        // Room for the declared length (at most `max`): pages are only used as they fill.
        let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(max));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(ReadError::Failed)?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > max {
                    return Err(ReadError::TooLarge);
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r.map(Some),
        Err(_) => Ok(None),
    }
}

/// How many jobs `body` holds, counted without building anything: its JSON values, an array
/// that comes first counting as its elements (as the job reader reads it). Stops at a syntax
/// error, counting the broken value as one: the scoring loop counts exactly as it reads.
fn count_jobs(body: &[u8]) -> u64 {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let counted = Cell::new(0);
    let mut de = serde_json::Deserializer::from_slice(body);
    if de.end().is_ok() {
        return 0;
    }
    if Jobs(&counted).deserialize(&mut de).is_err() {
        return counted.get() + 1;
    }
    let mut n = counted.get();
    for value in de.into_iter::<IgnoredAny>() {
        n += 1;
        if value.is_err() {
            break;
        }
    }
    n
}

/// Counts one JSON value as jobs into its cell, as it reads: an array counts its elements,
/// anything else is one. Nothing is kept (elements and fields are skipped as [`IgnoredAny`]).
struct Jobs<'a>(&'a Cell<u64>);

impl<'de> DeserializeSeed<'de> for Jobs<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Jobs<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a job or an array of jobs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {
            self.0.set(self.0.get() + 1);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.set(1);
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.0.set(1);
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.0.set(1);
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.0.set(1);
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.0.set(1);
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.0.set(1);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.set(1);
        Ok(())
    }
}

fn first_content(b: &[u8]) -> Option<u8> {
    b.iter().find(|b| !b.is_ascii_whitespace()).copied()
}

enum Stopped {
    TooManyJobs,
    Cancelled,
}

/// The text of each value of a body that the job reader reads as records (a JSON array's
/// elements, or documents one after another), as written: what the decision log stores.
fn raw_values(body: &[u8]) -> Vec<&str> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let Ok(text) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    if text.trim_start().starts_with('[') {
        return serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text)
            .map(|v| v.into_iter().map(|r| r.get()).collect())
            .unwrap_or_default();
    }
    serde_json::Deserializer::from_str(text)
        .into_iter::<&serde_json::value::RawValue>()
        .map_while(Result::ok)
        .map(|r| r.get())
        .collect()
}

/// Scores every job of one request against one snapshot of the rules, writing the results as
/// a JSON array (and with `--decision-log`, a decision id in each and a record for each);
/// stops at `max_jobs` + 1 jobs or when `cancel` is set.
fn score_body(
    st: &AppState,
    bytes: &[u8],
    opts: ScoreOptions,
    received: Option<Timestamp>,
    received_at: &str,
    max_jobs: u64,
    cancel: &AtomicBool,
) -> Result<BodyScored, Stopped> {
    let rules = st.rules.current();
    let scorer = Scorer {
        opts,
        received,
        name_pricing_time: true,
        ..Scorer::new(&rules)
    };
    let mut ctx = scorer.context();
    // A result is about 250 bytes; the body's size is a fair first guess for the output.
    let mut out = Vec::with_capacity(bytes.len().min(1 << 20) + 2);
    out.push(b'[');
    let mut results = 0u64;
    let mut t0 = Instant::now();
    let logging = st.decision_log.is_some();
    let mut records: Option<Records> =
        logging.then(|| (Vec::with_capacity(bytes.len() * 2), Vec::new()));
    let mut raw: Option<Vec<&str>> = None;
    let mut record_index = 0usize;
    let mut reader = JobReader::new(bytes);
    let mut buf = Vec::new();
    let mut jobs = 0u64;
    loop {
        buf.clear();
        let Some(item) = reader.next_raw(&mut buf) else {
            break;
        };
        jobs += 1;
        if jobs > max_jobs {
            return Err(Stopped::TooManyJobs);
        }
        if jobs.is_multiple_of(1024) && cancel.load(Ordering::Relaxed) {
            return Err(Stopped::Cancelled);
        }
        // The job as received, for its decision record.
        let input = match (&item, logging) {
            (_, false) => None,
            (RawItem::Line(_), true) => Some(Input::of(std::str::from_utf8(&buf).unwrap_or(""))),
            (RawItem::Record(_), true) => {
                let values = raw.get_or_insert_with(|| raw_values(bytes));
                let value = values.get(record_index).copied();
                record_index += 1;
                // A record of broken syntax has no value of its own: its text is unknown.
                Some(value.map_or(Input::Text(""), Input::Json))
            }
        };
        let mut emit = |s: &ScoreRef<'_>| {
            st.metrics.latency.observe(t0.elapsed().as_secs_f64());
            st.metrics
                .jobs
                .get_or_create(&JobLabels {
                    status: s.status.as_str().to_string(),
                    kind: s.kind.unwrap_or("none").to_string(),
                })
                .inc();
            if results > 0 {
                out.push(b',');
            }
            // Serializing a result into memory cannot fail (strings and numbers only).
            let _ = serde_json::to_writer(&mut out, s);
            if let (Some(input), Some((log, ends))) = (input, records.as_mut()) {
                let id = st.decision_ids.next();
                // `{…}` → `{…,"decision_id":"…"}`
                out.pop();
                out.extend_from_slice(b",\"decision_id\":");
                let _ = serde_json::to_writer(&mut out, &id);
                out.push(b'}');
                begin_record(log, &id, received_at, input, &st.omit, s);
                finish(log);
                ends.push(log.len());
            }
            results += 1;
            t0 = Instant::now();
        };
        scorer.score_job(&mut ctx, item.job(&buf), &mut emit);
    }
    out.push(b']');
    drop(ctx);
    drop(scorer);
    Ok((rules, results, out, records))
}

/// `GET /v1/shadow`: how the shadow rules' points differ from the live ones so far.
async fn shadow(State(st): State<Arc<AppState>>) -> Response {
    match &st.shadow {
        None => json_error(
            StatusCode::NOT_FOUND,
            "no shadow rules (start serve with --shadow-rules DIR)".into(),
        ),
        Some(sh) => axum::Json(sh.report(&st.rules.current().hash)).into_response(),
    }
}

async fn rules(State(st): State<Arc<AppState>>) -> Response {
    let (rs, status) = st.rules.snapshot();
    let rules: Vec<_> = rs
        .rules()
        .map(|r| {
            let versions: Vec<_> = r
                .versions
                .iter()
                .map(|v| {
                    let (multiplier, no_rule, disabled) = match &v.pricing {
                        Pricing::Priced { multiplier, .. } => (Some(*multiplier), None, None),
                        Pricing::NoRule { reason } => (None, Some(reason.clone()), None),
                        Pricing::Disabled { reason } => (None, None, Some(reason.clone())),
                    };
                    json!({
                        "version": v.version,
                        "effective_from": utc_string(v.effective_from),
                        "multiplier": multiplier,
                        "no_rule": no_rule,
                        "disabled": disabled,
                    })
                })
                .collect();
            json!({
                "rule": r.id,
                "scope": r.scope,
                "family": r.family,
                "kind": r.kind,
                "file": r.file,
                "versions": versions,
            })
        })
        .collect();
    // Each model with its family (of its latest window) and, when dated, its windows; each
    // alias name with its windows.
    let models: Vec<_> = rs
        .catalog
        .iter()
        .map(|(m, e)| {
            let mut row = json!({
                "model": m,
                "family": e.family_at(None),
            });
            if !e.is_undated() {
                let windows: Vec<_> = (e.windows.iter())
                    .map(|w| {
                        let mut v = json!(w.when);
                        v["family"] = json!(w.family);
                        v
                    })
                    .collect();
                row["windows"] = json!(windows);
            }
            row
        })
        .collect();
    let aliases: Vec<_> = (rs.aliases.values().flatten())
        .map(|a| {
            let mut v = json!(a.when);
            v["alias"] = json!(a.name);
            v["model"] = json!(a.model);
            v["kind"] = json!(a.kind);
            v["source"] = json!(a.source);
            v
        })
        .collect();
    axum::Json(json!({
        "ruleset": rs.hash,
        "rules_dir": rs.origin.to_string(),
        "watching": st.watching,
        "loaded_at": status.loaded_at,
        "state": if status.last_error.is_some() { "reload_failed" } else { "ok" },
        "last_error": status.last_error,
        "last_changes": status.last_changes,
        "last_files": status.last_files,
        "reloads": { "ok": status.reloads_ok, "failed": status.reloads_failed },
        "rules": rules,
        "models": models,
        "aliases": aliases,
    }))
    .into_response()
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    axum::Json(json!({ "status": "ok", "ruleset": st.rules.current().hash })).into_response()
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let m = &st.metrics;
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &m.registry) {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}"),
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
