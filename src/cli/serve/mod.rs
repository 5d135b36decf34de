//! `jobpoints serve`: a long-running HTTP JSON scorer that reloads its rules without a restart,
//! within limits that anonymous clients cannot exhaust.
//!
//! `handlers` is the HTTP API and the per-request limits (body size, jobs, body timeout, score
//! requests in flight, scoring threads); `conn` the accept loop and the per-connection limits
//! (connections open, header, idle and send timeouts); `metrics` what `/metrics` counts.

mod conn;
mod handlers;
mod host;
mod metrics;
mod shadow;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::cli::{CliError, Exit, RulesArg, ThreadsArg, rules_invalid};
use crate::playground::http::{PAGE_PATH, Playground, router as playground_router};
use conn::ConnLimits;
use handlers::{AppState, RequestLimits};
use jobpoints::audit::decision::{DecisionLog, LogConfig};
use jobpoints::live::handle::{OpenError, ReloadOutcome, RulesHandle};
use jobpoints::live::watcher::RulesWatcher;
use jobpoints::rules::diagnostic::Severity;
use jobpoints::rules::files::RuleFiles;
use metrics::{HashLabels, Metrics, ReloadLabels};
use shadow::Shadow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// The default of `--max-connections`, lowered to what the open-file limit allows.
const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Options of `jobpoints serve`; its help text is on [`crate::cli::Command::Serve`].
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Refuse to start with, or to reload to, rules not signed by a trusted key: the last
    /// good rules keep serving and the reason is in the log, /v1/rules and /metrics.
    #[command(flatten)]
    pub trust: crate::cli::sign::TrustedKeysArg,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Price each job by its own `completed_at`, for a trusted scheduler. Without it, a job is
    /// priced by the rules in force when its request was received (a client cannot backdate a
    /// job into a better-paying version); `?at=` overrides both.
    #[arg(long)]
    pub trust_job_time: bool,
    /// Largest request body accepted, in bytes; larger requests get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024 * 1024,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 30))]
    pub max_body_bytes: usize,
    /// Most jobs in one request; more get 413 (counted as they are read, before any is
    /// scored). With `?explain=true`, at most 1,000.
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_jobs: u64,
    /// Score requests handled at once, from their headers until their results are sent; more
    /// get 503 with `Retry-After: 1`. /healthz, /metrics and /v1/rules are not limited.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub max_requests: usize,
    #[command(flatten)]
    pub threads: ThreadsArg,
    /// Connections open at once (default 512, or fewer to stay below the open-file limit). At
    /// the limit, a new connection closes the one idle longest; it is refused only if every
    /// connection is in the middle of a request.
    #[arg(long, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: Option<usize>,
    /// Seconds a client may take to send a request's headers, from their first byte; then the
    /// connection is closed.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub header_timeout: Duration,
    /// Seconds a client may take to send a request body, from the end of its headers; then 408
    /// and the connection is closed.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub body_timeout: Duration,
    /// Seconds a client may take to read a response, from its first byte; then the connection
    /// is closed.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub send_timeout: Duration,
    /// Seconds a connection may stay open waiting for a request (keep-alive included).
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub idle_timeout: Duration,
    /// Log format (logs go to stderr; filter with RUST_LOG, default `info`).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Append one JSON line per scored job to this file: a decision id (also in the
    /// response), the time received, the job as received, the result, the rule set's hash
    /// and the engine. `jobpoints verify PATH` replays it. Written off the request path,
    /// flushed at least every second and at shutdown.
    #[arg(long, value_name = "PATH")]
    pub decision_log: Option<PathBuf>,
    /// A field of the job not to store in the decision log (repeat, or separate with
    /// commas; a dotted path reaches inside objects: `model_input.SD.prompt`). A field the
    /// rules read makes the record impossible to verify.
    #[arg(
        long,
        value_name = "FIELD",
        value_delimiter = ',',
        requires = "decision_log"
    )]
    pub decision_log_omit: Vec<String>,
    /// Start a new decision log file before one would grow past this size; the old ones are
    /// kept as PATH.1, PATH.2, ... (see --decision-log-files).
    #[arg(long, value_name = "BYTES", requires = "decision_log",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub decision_log_max_bytes: Option<u64>,
    /// Decision log files kept when rotating, the current one included.
    #[arg(long, value_name = "N", default_value_t = 10, requires = "decision_log",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub decision_log_files: usize,
    /// Bytes of decision records that may wait for the disk; records beyond are dropped and
    /// counted (`jobpoints_decision_log_records_total{outcome="dropped"}`), never waited for.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, requires = "decision_log",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub decision_log_queue_bytes: usize,
    /// Score every job with these rules too, off the response path, and count how their
    /// points differ (`/metrics`, `GET /v1/shadow`; decision records get the shadow result
    /// when it differs). Reloaded on change like --rules, with their own last good set.
    #[arg(long, value_name = "DIR")]
    pub shadow_rules: Option<PathBuf>,
    /// Jobs that may wait for the shadow rules (one thread scores them); a request that
    /// would go beyond is not shadowed, and counted as `skipped`.
    #[arg(long, value_name = "N", default_value_t = 100_000, requires = "shadow_rules",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub shadow_queue_jobs: u64,
    /// Bytes of requests (bodies and decision records) that may wait for the shadow rules;
    /// a request that would go beyond is not shadowed, and counted as `skipped`.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, requires = "shadow_rules",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub shadow_queue_bytes: u64,
    /// Also serve the playground: the rule editor at /playground/ and its JSON API (POST
    /// /v1/check, /v1/eval, /v1/diff), which work on rule files sent in the request and never
    /// change the rules being served. Off by default.
    #[arg(long)]
    pub playground: bool,
    /// A name clients may reach this server by, besides its IP addresses and `localhost`
    /// (repeat, or separate with commas; `*` accepts any). Requests other than GET and HEAD
    /// that name another host in their `Host` header get 403: a web page cannot then drive
    /// the server through DNS rebinding. Needed when clients use a DNS name
    /// (`--allow-host scorer.internal`).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub allow_host: Vec<String>,
    /// Seconds one playground API request may work (loading its rules, scoring its jobs);
    /// then 503.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub playground_timeout: Duration,
}

/// A timeout in seconds: a positive number (decimals allowed), at most a day.
pub(crate) fn parse_secs(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "`{text}`: expected a number of seconds above 0 and at most 86400"
        )),
    }
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
    let rules_dir = match &files.origin {
        jobpoints::engine::model::RulesOrigin::Directory(d) => Some(d.clone()),
        _ => None,
    };
    let trusted = args.trust.load(rules_dir.as_deref())?;
    let handle = match RulesHandle::open_trusted(files, trusted) {
        Ok(h) => Arc::new(h),
        Err(OpenError::Dir(e)) => return Err(e.into()),
        Err(e @ OpenError::Untrusted { .. }) => {
            return Err(CliError::RulesInvalid {
                diagnostics: String::new(),
                message: format!("{e}; not serving"),
            });
        }
        Err(OpenError::Invalid { loaded, .. }) => {
            let message = format!(
                "the rules in `{}` are invalid; not serving (run `jobpoints check`)",
                loaded.files.origin
            );
            return Err(rules_invalid(&loaded, message));
        }
    };
    let threads = args.threads.get();
    let metrics = Arc::new(Metrics::new());
    let decision_log = match &args.decision_log {
        None => None,
        Some(path) => {
            let config = LogConfig {
                path: path.clone(),
                max_bytes: args.decision_log_max_bytes,
                files: args.decision_log_files,
                queue_bytes: args.decision_log_queue_bytes,
            };
            let log = DecisionLog::open(config, metrics.log_counters()).map_err(|source| {
                serve_error(
                    format!("cannot open the decision log `{}`", path.display()),
                    source,
                )
            })?;
            tracing::info!(path = %path.display(), omit = ?args.decision_log_omit, "decision log");
            Some(Arc::new(log))
        }
    };
    let shadow = match &args.shadow_rules {
        None => None,
        Some(dir) => {
            let handle = match RulesHandle::open(RuleFiles::from_dir(dir)?) {
                Ok(h) => Arc::new(h),
                Err(OpenError::Dir(e)) => return Err(e.into()),
                Err(OpenError::Invalid { loaded, .. }) => {
                    let message = format!(
                        "the shadow rules in `{}` are invalid; not serving (run `jobpoints check`)",
                        loaded.files.origin
                    );
                    return Err(rules_invalid(&loaded, message));
                }
                Err(e @ OpenError::Untrusted { .. }) => {
                    return Err(CliError::RulesInvalid {
                        diagnostics: String::new(),
                        message: format!("shadow: {e}"),
                    });
                }
            };
            metrics.init_shadow();
            metrics
                .shadow_active
                .get_or_create(&HashLabels {
                    hash: handle.current().hash.to_string(),
                })
                .set(1);
            tracing::info!(rules = %dir.display(), hash = %handle.current().hash, "shadow rules loaded");
            let shadow = Shadow::start(
                handle,
                args.shadow_queue_jobs,
                args.shadow_queue_bytes,
                metrics.clone(),
                decision_log.clone(),
            )
            .map_err(|source| serve_error("cannot start the shadow thread", source))?;
            Some(Arc::new(shadow))
        }
    };
    let state = Arc::new(AppState {
        rules: handle.clone(),
        metrics: metrics.clone(),
        decision_log: decision_log.clone(),
        decision_ids: jobpoints::audit::decision::DecisionIds::new(),
        omit: args.decision_log_omit.clone(),
        shadow: shadow.clone(),
        limits: RequestLimits {
            max_body_bytes: args.max_body_bytes,
            max_jobs: args.max_jobs,
            body_timeout: args.body_timeout,
        },
        requests: Arc::new(Semaphore::new(args.max_requests)),
        max_requests: args.max_requests,
        scoring: Arc::new(Semaphore::new(threads)),
        trust_job_time: args.trust_job_time,
        watching: handle.dir().is_some(),
    });
    let playground = args.playground.then(|| {
        Arc::new(Playground {
            rules: handle.clone(),
            requests: state.requests.clone(),
            max_requests: args.max_requests,
            scoring: state.scoring.clone(),
            max_body_bytes: args.max_body_bytes,
            max_jobs: args.max_jobs,
            body_timeout: args.body_timeout,
            timeout: args.playground_timeout,
        })
    });
    let allowed = conn::connections_allowed();
    let wanted = args.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let max_connections = allowed.map_or(wanted, |a| wanted.min(a.max(1)));
    if max_connections < wanted && args.max_connections.is_some() {
        tracing::warn!(
            wanted,
            max_connections,
            "--max-connections lowered to stay below the open-file limit (ulimit -n)"
        );
    }
    if max_connections <= args.max_requests {
        // Every connection could then be busy with a score request, leaving none to close
        // for /healthz.
        tracing::warn!(
            max_connections,
            max_requests = args.max_requests,
            "--max-connections should be well above --max-requests"
        );
    }
    let conn_limits = ConnLimits {
        max_connections,
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        send_timeout: args.send_timeout,
    };
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
    tracing::info!(
        max_connections,
        max_requests = args.max_requests,
        threads,
        max_jobs = args.max_jobs,
        max_body_bytes = args.max_body_bytes,
        header_timeout = ?args.header_timeout,
        body_timeout = ?args.body_timeout,
        send_timeout = ?args.send_timeout,
        idle_timeout = ?args.idle_timeout,
        trust_job_time = args.trust_job_time,
        "limits"
    );
    let _shadow_watcher = match &shadow {
        None => None,
        Some(sh) => {
            let (sh2, m) = (sh.clone(), metrics.clone());
            let dir = sh.rules.dir().map(PathBuf::from).expect("a directory");
            let w = RulesWatcher::spawn(&dir, move || on_shadow_change(&sh2.rules, &m))?;
            on_shadow_change(&sh.rules, &metrics);
            Some(w)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| serve_error("cannot start the async runtime", source))?;
    let allowed = Arc::new(host::AllowedHosts::new(&args.allow_host));
    let served = runtime.block_on(serve(args.listen, state, playground, allowed, conn_limits));
    // Every request has finished: shadow what is queued, then write every record.
    if let Some(sh) = &shadow {
        sh.close();
    }
    if let Some(log) = &decision_log {
        log.close();
        tracing::info!("decision log flushed");
    }
    served
}

/// Reloads the shadow rules after a change on disk; an invalid change keeps their last good
/// set, as for the live rules.
fn on_shadow_change(handle: &RulesHandle, m: &Metrics) {
    match handle.reload() {
        ReloadOutcome::Unchanged { recovered, .. } => {
            if recovered {
                m.shadow_failing.set(0);
            }
        }
        ReloadOutcome::Swapped { old, new, .. } => {
            m.shadow_failing.set(0);
            if let Some(old) = &old {
                m.shadow_active.remove(&HashLabels {
                    hash: old.hash.to_string(),
                });
            }
            m.shadow_active
                .get_or_create(&HashLabels {
                    hash: new.hash.to_string(),
                })
                .set(1);
            tracing::info!(new = %new.hash, "shadow rules reloaded");
        }
        ReloadOutcome::StillRejected { .. } => {}
        ReloadOutcome::Rejected(f) => {
            m.shadow_failing.set(1);
            tracing::error!(
                active = f.active_hash.as_deref().unwrap_or("-"),
                "shadow rules reload failed: {}; still shadowing with the last good shadow rules",
                f.message
            );
        }
    }
}

fn serve_error(what: impl Into<String>, source: std::io::Error) -> CliError {
    CliError::Serve {
        what: what.into(),
        source,
    }
}

async fn serve(
    addr: SocketAddr,
    state: Arc<AppState>,
    playground: Option<Arc<Playground>>,
    allowed: Arc<host::AllowedHosts>,
    limits: ConnLimits,
) -> Result<Exit, CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| serve_error(format!("cannot listen on {addr}"), source))?;
    let shutdown = shutdown_signal()
        .map_err(|source| serve_error("cannot install signal handlers", source))?;
    let bound = listener.local_addr().unwrap_or(addr);
    // Said before the address is announced, so whoever reads that has been warned.
    if playground.is_some() && !bound.ip().is_loopback() {
        tracing::warn!(
            %bound,
            "the playground is reachable from other machines: anyone who can reach this \
             address can make the server check, score and compare rule files they send \
             (within --playground-timeout and --threads); bind to 127.0.0.1 unless that is meant"
        );
    }
    // Tests and scripts read this line to find an ephemeral port. A server with nowhere to
    // print it still serves: the log says where too.
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let page = playground
        .as_ref()
        .map(|_| format!("playground on http://{bound}{PAGE_PATH}\n"))
        .unwrap_or_default();
    if let Err(e) =
        write!(stdout, "listening on http://{bound}\n{page}").and_then(|()| stdout.flush())
    {
        tracing::warn!("cannot print the address to stdout: {e}");
    }
    drop(stdout);
    tracing::info!(%bound, "listening");
    if playground.is_some() {
        tracing::info!("playground on http://{bound}{PAGE_PATH}");
    }
    let conn_metrics = state.metrics.conns.clone();
    let mut app = handlers::router(state);
    if let Some(pg) = playground {
        app = app.merge(playground_router(pg));
    }
    let app = app.layer(axum::middleware::from_fn_with_state(
        allowed,
        host::check_host,
    ));
    conn::serve(listener, app, limits, conn_metrics, shutdown).await;
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
                let file = d.file().unwrap_or("-");
                let line = d.line().unwrap_or(0);
                match d.severity() {
                    Severity::Error => {
                        tracing::error!(code = %d.code(), file, line, "{}", d.message())
                    }
                    Severity::Warning => {
                        tracing::warn!(code = %d.code(), file, line, "{}", d.message())
                    }
                }
            }
        }
    }
}
