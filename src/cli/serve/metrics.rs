//! What `serve` counts for `/metrics`: jobs scored, reloads, and what its limits turned away.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct JobLabels {
    pub status: String,
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ReloadLabels {
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HashLabels {
    pub hash: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShadowPointsLabels {
    rules: &'static str,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Why a request was turned away by a limit (`jobpoints_requests_rejected_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejected {
    /// 503: `--max-requests` score requests were already in flight.
    Overloaded,
    /// 413: the body is over `--max-body-bytes`.
    BodyTooLarge,
    /// 413: more than `--max-jobs` jobs (or the explain limit).
    TooManyJobs,
    /// 408: the body did not arrive within `--body-timeout`.
    BodyTimeout,
}

impl Rejected {
    const ALL: [Rejected; 4] = [
        Rejected::Overloaded,
        Rejected::BodyTooLarge,
        Rejected::TooManyJobs,
        Rejected::BodyTimeout,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Rejected::Overloaded => "overloaded",
            Rejected::BodyTooLarge => "body_too_large",
            Rejected::TooManyJobs => "too_many_jobs",
            Rejected::BodyTimeout => "body_timeout",
        }
    }
}

/// Why the server closed a connection (`jobpoints_connections_closed_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closed {
    /// A request's headers did not arrive within `--header-timeout` of their first byte.
    HeaderTimeout,
    /// No request within `--idle-timeout`.
    IdleTimeout,
    /// The client did not read its response within `--send-timeout`.
    SendTimeout,
    /// Closed, idle, to make room for a new connection at `--max-connections`.
    Evicted,
    /// A new connection at `--max-connections` when none was idle.
    Refused,
}

impl Closed {
    const ALL: [Closed; 5] = [
        Closed::HeaderTimeout,
        Closed::IdleTimeout,
        Closed::SendTimeout,
        Closed::Evicted,
        Closed::Refused,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::SendTimeout => "send_timeout",
            Closed::Evicted => "evicted",
            Closed::Refused => "refused",
        }
    }
}

pub(super) struct Metrics {
    pub registry: Registry,
    pub jobs: Family<JobLabels, Counter>,
    pub reloads: Family<ReloadLabels, Counter>,
    pub active: Family<HashLabels, Gauge>,
    pub failing: Gauge,
    pub latency: Histogram,
    rejected: Family<ReasonLabels, Counter>,
    pub conns: ConnMetrics,
    log_records: Family<OutcomeLabels, Counter>,
    pub log_errors: Counter,
    shadow_jobs: Family<OutcomeLabels, Counter>,
    shadow_points: Family<ShadowPointsLabels, Counter<f64, AtomicU64>>,
    shadow_delta: Family<KindLabels, Gauge<f64, AtomicU64>>,
    pub shadow_active: Family<HashLabels, Gauge>,
    pub shadow_failing: Gauge,
}

/// The connection counters, shared with the accept loop (clones count into the same series).
#[derive(Clone)]
pub(super) struct ConnMetrics {
    pub open: Gauge,
    closed: Family<ReasonLabels, Counter>,
}

impl ConnMetrics {
    pub fn closed(&self, why: Closed) {
        self.closed
            .get_or_create(&ReasonLabels {
                reason: why.as_str(),
            })
            .inc();
    }
}

impl Metrics {
    pub fn new() -> Self {
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
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "requests_rejected",
            "Requests turned away by a limit: overloaded (503), body_too_large and too_many_jobs (413), body_timeout (408)",
            rejected.clone(),
        );
        let open = Gauge::default();
        registry.register("connections_open", "Open client connections", open.clone());
        let closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections closed by the server: header_timeout, idle_timeout, send_timeout, evicted (idle, for a new connection at the limit), refused (at the limit, none idle)",
            closed.clone(),
        );
        // Every reason shows from the start, at 0, so a dashboard sees the series before the
        // first rejection.
        for why in Rejected::ALL {
            let _ = rejected.get_or_create(&ReasonLabels {
                reason: why.as_str(),
            });
        }
        for why in Closed::ALL {
            let _ = closed.get_or_create(&ReasonLabels {
                reason: why.as_str(),
            });
        }
        let log_records = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "decision_log_records",
            "Decision log records: written to the file, dropped (the queue was full), failed (lost to a write error)",
            log_records.clone(),
        );
        let log_errors = Counter::default();
        registry.register(
            "decision_log_write_errors",
            "Errors writing or rotating the decision log",
            log_errors.clone(),
        );
        let shadow_jobs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "shadow_jobs",
            "Jobs scored by the shadow rules too: same (status, kind and points as the live rules), changed, error (the shadow rule failed), skipped (the shadow queue was full)",
            shadow_jobs.clone(),
        );
        let shadow_points = Family::<ShadowPointsLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "shadow_points",
            "Points of the shadowed jobs under the live and the shadow rules, by point kind",
            shadow_points.clone(),
        );
        let shadow_delta = Family::<KindLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "shadow_points_delta",
            "Points the shadow rules would have paid minus what the live rules paid, by point kind, since start",
            shadow_delta.clone(),
        );
        let shadow_active = Family::<HashLabels, Gauge>::default();
        registry.register(
            "shadow_rules_active",
            "The active shadow rule set, by hash (always 1)",
            shadow_active.clone(),
        );
        let shadow_failing = Gauge::default();
        registry.register(
            "shadow_rules_reload_failing",
            "1 while the shadow rules on disk are invalid and their last good set is used",
            shadow_failing.clone(),
        );
        Metrics {
            registry,
            jobs,
            reloads,
            active,
            failing,
            latency,
            rejected,
            conns: ConnMetrics { open, closed },
            log_records,
            log_errors,
            shadow_jobs,
            shadow_points,
            shadow_delta,
            shadow_active,
            shadow_failing,
        }
    }

    /// The decision log's counters, each series shown from the start at 0.
    pub fn log_counters(&self) -> jobpoints::audit::decision::LogCounters {
        let c = |outcome| {
            Arc::new(LogCounter(
                self.log_records
                    .get_or_create(&OutcomeLabels { outcome })
                    .clone(),
            )) as Arc<dyn jobpoints::audit::decision::Counter>
        };
        jobpoints::audit::decision::LogCounters {
            written: c("written"),
            dropped: c("dropped"),
            failed: c("failed"),
            errors: Arc::new(LogCounter(self.log_errors.clone())),
        }
    }

    /// `jobpoints_shadow_jobs_total{outcome}`; every outcome shows from the start at 0.
    pub fn shadow_jobs(&self, outcome: &'static str) -> Counter {
        self.shadow_jobs
            .get_or_create(&OutcomeLabels { outcome })
            .clone()
    }

    pub fn init_shadow(&self) {
        for o in ["same", "changed", "error", "skipped"] {
            let _ = self.shadow_jobs(o);
        }
    }

    pub fn shadow_points(
        &self,
        rules: &'static str,
        kind: &str,
        points: jobpoints::engine::points::Points,
    ) {
        self.shadow_points
            .get_or_create(&ShadowPointsLabels {
                rules,
                kind: kind.to_string(),
            })
            .inc_by(points.to_f64());
    }

    pub fn shadow_delta(&self, kind: &str) -> Gauge<f64, AtomicU64> {
        self.shadow_delta
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .clone()
    }

    pub fn rejected(&self, why: Rejected) {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: why.as_str(),
            })
            .inc();
    }
}

/// A Prometheus counter as the decision log's [`Counter`](jobpoints::audit::decision::Counter).
struct LogCounter(Counter);

impl jobpoints::audit::decision::Counter for LogCounter {
    fn inc_by(&self, n: u64) {
        self.0.inc_by(n);
    }

    fn get(&self) -> u64 {
        self.0.get()
    }
}
