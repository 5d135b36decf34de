//! `jobpoints serve`: a long-running HTTP JSON scorer that reloads its rules without a restart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::json;

use crate::cli::{CliError, Exit, RulesArg, rules_invalid};
use crate::engine::model::{Pricing, RuleSet};
use crate::engine::score::{Score, ScoreOptions, Scorer};
use crate::engine::time::{parse_time, utc_string};
use crate::ledger::pipeline::score_each;
use crate::ledger::reader::JobReader;
use crate::live::handle::{OpenError, ReloadOutcome, RulesHandle};
use crate::live::watcher::RulesWatcher;
use crate::rules::diagnostic::Severity;
use crate::rules::files::RuleFiles;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// Options of `jobpoints serve`; its help text is on [`crate::cli::Command::Serve`].
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger requests get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Log format (logs go to stderr; filter with RUST_LOG, default `info`).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    status: String,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HashLabels {
    hash: String,
}

struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    active: Family<HashLabels, Gauge>,
    failing: Gauge,
    latency: Histogram,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("jobpoints");
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs_scored",
            "Jobs scored, by result status and point kind",
            jobs.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "rules_reloads",
            "Rule reloads after a change on disk: ok (swapped in) or failed (kept the last good rules)",
            reloads.clone(),
        );
        let active = Family::<HashLabels, Gauge>::default();
        registry.register(
            "rules_active",
            "The active rule set, by hash (always 1)",
            active.clone(),
        );
        let failing = Gauge::default();
        registry.register(
            "rules_reload_failing",
            "1 while the rules on disk are invalid and the last good rules are served",
            failing.clone(),
        );
        let latency = Histogram::new(exponential_buckets(1e-6, 4.0, 10));
        registry.register(
            "job_evaluation_seconds",
            "Time to score one job",
            latency.clone(),
        );
        Metrics {
            registry,
            jobs,
            reloads,
            active,
            failing,
            latency,
        }
    }
}

struct AppState {
    rules: Arc<RulesHandle>,
    metrics: Metrics,
    max_body_bytes: usize,
    watching: bool,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Serves until stopped. Errors go to the log (set up first), through `cli::main`.
pub fn run(args: ServeArgs) -> Result<Exit, CliError> {
    init_logging(args.log_format);
    let files = RuleFiles::locate(args.rules.rules.as_deref())?;
    let handle = match RulesHandle::open(files) {
        Ok(h) => Arc::new(h),
        Err(OpenError::Dir(e)) => return Err(e.into()),
        Err(OpenError::Invalid { loaded, .. }) => {
            let message = format!(
                "the rules in `{}` are invalid; not serving (run `jobpoints check`)",
                loaded.files.origin
            );
            return Err(rules_invalid(&loaded, message));
        }
    };
    let state = Arc::new(AppState {
        rules: handle.clone(),
        metrics: Metrics::new(),
        max_body_bytes: args.max_body_bytes,
        watching: handle.dir().is_some(),
    });
    state
        .metrics
        .active
        .get_or_create(&HashLabels {
            hash: handle.current().hash.to_string(),
        })
        .set(1);
    tracing::info!(
        rules = %handle.current().origin,
        hash = %handle.current().hash,
        "rules loaded"
    );
    let _watcher = match handle.dir().map(PathBuf::from) {
        None => {
            tracing::warn!("serving the rules built into the binary; they cannot be reloaded");
            None
        }
        Some(dir) => {
            let st = state.clone();
            match RulesWatcher::spawn(&dir, move || on_change(&st)) {
                Ok(w) => {
                    // A save between the first load and the watch start is caught here.
                    on_change(&state);
                    Some(w)
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| serve_error("cannot start the async runtime", source))?;
    runtime.block_on(serve(args.listen, state))
}

fn serve_error(what: impl Into<String>, source: std::io::Error) -> CliError {
    CliError::Serve {
        what: what.into(),
        source,
    }
}

async fn serve(addr: SocketAddr, state: Arc<AppState>) -> Result<Exit, CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| serve_error(format!("cannot listen on {addr}"), source))?;
    let shutdown = shutdown_signal()
        .map_err(|source| serve_error("cannot install signal handlers", source))?;
    let bound = listener.local_addr().unwrap_or(addr);
    // Tests and scripts read this line to find an ephemeral port. A server with nowhere to
    // print it still serves: the log says where too.
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "listening on http://{bound}").and_then(|()| stdout.flush()) {
        tracing::warn!("cannot print the address to stdout: {e}");
    }
    drop(stdout);
    tracing::info!(%bound, "listening");
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| serve_error("server failed", source))?;
    tracing::info!("stopped");
    Ok(Exit::Ok)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, before the
/// address is announced, so a signal sent right after start is never the default (kill).
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("shutting down: finishing in-flight requests");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: finishing in-flight requests");
        })
    }
}

/// Reloads after a change on disk and says what happened, loudly when it failed.
fn on_change(state: &AppState) {
    let m = &state.metrics;
    match state.rules.reload() {
        ReloadOutcome::Unchanged { hash, recovered } => {
            if recovered {
                m.failing.set(0);
                tracing::info!(%hash, "rules on disk match the active rules again; reload error cleared");
            } else {
                tracing::debug!(%hash, "rules unchanged");
            }
        }
        ReloadOutcome::Swapped {
            old,
            new,
            changes,
            files,
            recovered,
            ..
        } => {
            m.reloads
                .get_or_create(&ReloadLabels {
                    result: "ok".into(),
                })
                .inc();
            m.failing.set(0);
            // The info gauge carries exactly one hash: the active one. (`serve` opens its
            // handle with valid rules, so there is always an old set.)
            let old_hash = old.as_ref().map_or("-", |o| &*o.hash);
            m.active.remove(&HashLabels {
                hash: old_hash.to_string(),
            });
            m.active
                .get_or_create(&HashLabels {
                    hash: new.hash.to_string(),
                })
                .set(1);
            tracing::info!(
                old = %old_hash,
                new = %new.hash,
                changes = changes.len(),
                recovered,
                "rules reloaded: {} → {}",
                old_hash,
                new.hash
            );
            // One line per change, as `jobpoints diff` summarises it, with its flag. Rule
            // text (notes, inline formulas) may span lines; a log line must not.
            for c in &changes {
                let summary = c.summary().replace('\r', "\\r").replace('\n', "\\n");
                match &c.flag {
                    Some(flag) => tracing::info!(
                        new = %new.hash,
                        flagged = true,
                        "rules change: {summary} (! {flag})"
                    ),
                    None => tracing::info!(new = %new.hash, "rules change: {summary}"),
                }
            }
            if changes.is_empty() && !files.is_empty() {
                tracing::info!(
                    new = %new.hash,
                    "rules change: no rule changes; files changed: {}",
                    files.summary()
                );
            }
        }
        ReloadOutcome::StillRejected { hash } => {
            tracing::debug!(%hash, "rules still invalid (unchanged since the last failure)");
        }
        ReloadOutcome::Rejected(f) => {
            m.reloads
                .get_or_create(&ReloadLabels {
                    result: "failed".into(),
                })
                .inc();
            m.failing.set(1);
            let active = f.active_hash.as_deref().unwrap_or("-");
            tracing::error!(
                active,
                rejected = f.rejected_hash.as_deref().unwrap_or("-"),
                since = %f.since,
                "rules reload failed: {}; still serving the last good rules {active}",
                f.message,
            );
            for d in &f.diagnostics {
                let file = d.file.as_deref().unwrap_or("-");
                let line = d.line.unwrap_or(0);
                match d.severity {
                    Severity::Error => {
                        tracing::error!(code = %d.code, file, line, "{}", d.message)
                    }
                    Severity::Warning => {
                        tracing::warn!(code = %d.code, file, line, "{}", d.message)
                    }
                }
            }
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/score", post(score))
        .route("/v1/rules", get(rules))
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

async fn score(
    State(st): State<Arc<AppState>>,
    query: Result<Query<ScoreQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
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
    let too_large = || {
        let mut r = json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than {} bytes (see --max-body-bytes)",
                st.max_body_bytes
            ),
        );
        // The rest of the body is not read, so the connection cannot be reused.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.max_body_bytes as u64) {
        return too_large();
    }
    let bytes: Bytes = match axum::body::to_bytes(body, st.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if limit {
                return too_large();
            }
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("cannot read request body: {e}"),
            );
        }
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let single = match shape {
        BodyShape::Json => {
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                let text = e.to_string();
                let what = text.rsplit_once(" at line ").map_or(&*text, |(m, _)| m);
                let hint = if what == "trailing characters" {
                    "; for one job per line (JSONL) send `Content-Type: application/x-ndjson`"
                } else {
                    ""
                };
                return json_error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "broken JSON at line {} column {}: {what}{hint}",
                        e.line(),
                        e.column(),
                    ),
                );
            }
            match first {
                Some(b'{') => true,
                Some(b'[') => false,
                _ => {
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        "expected a job object or an array of jobs".into(),
                    );
                }
            }
        }
        BodyShape::Lines => false,
    };
    let st2 = st.clone();
    let scored = tokio::task::spawn_blocking(move || score_body(&st2, &bytes, opts)).await;
    let (rules, scores) = match scored {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("scoring task failed: {e}");
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "scoring failed".into());
        }
    };
    let body = if single && scores.len() == 1 {
        serde_json::to_vec(&scores[0])
    } else {
        serde_json::to_vec(&scores)
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode results: {e}"),
            );
        }
    };
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&rules.hash) {
        resp.headers_mut().insert("x-jobpoints-ruleset", v);
    }
    resp
}

/// Scores every job of one request against one snapshot of the rules.
fn score_body(st: &AppState, bytes: &[u8], opts: ScoreOptions) -> (Arc<RuleSet>, Vec<Score>) {
    let rules = st.rules.current();
    let scorer = Scorer {
        opts,
        ..Scorer::new(&rules)
    };
    let mut ctx = scorer.context();
    let mut out = Vec::new();
    let mut t0 = Instant::now();
    // A request body is in memory: reading it cannot fail.
    let _ = score_each(&mut JobReader::new(bytes), &scorer, &mut ctx, &mut |s| {
        st.metrics.latency.observe(t0.elapsed().as_secs_f64());
        st.metrics
            .jobs
            .get_or_create(&JobLabels {
                status: s.status.as_str().to_string(),
                kind: s.kind.unwrap_or("none").to_string(),
            })
            .inc();
        out.push(s.to_score());
        t0 = Instant::now();
    });
    drop(scorer);
    (rules, out)
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
    let models: Vec<_> = rs
        .catalog
        .iter()
        .map(|(m, e)| json!({ "model": m, "family": e.family }))
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
