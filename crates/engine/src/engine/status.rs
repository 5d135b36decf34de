//! What happened to a job: the status of every result. Below the model (rule examples name
//! the status they expect) and the score (which decides it).

use serde::Serialize;

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Priced by a rule.
    Ok,
    /// Valid, but under a threshold: earns 0.
    BelowThreshold,
    /// Valid, but above a ceiling (e.g. it took longer than the timeout): earns 0.
    OverLimit,
    /// No rule prices this model at this time: earns 0, explicitly.
    NoRule,
    /// The version in force is disabled (`disabled = "why"`): earns 0, on purpose.
    Disabled,
    /// The job carries neither a value nor the text its job kind measures, for a reason the
    /// job kind declares (`unmeasured`, e.g. a streamed LLM answer): earns 0, explicitly.
    Unmeasured,
    /// The job itself is malformed.
    Invalid,
    /// The rule failed on this job (formula error, limit hit, bad result).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::BelowThreshold => "below_threshold",
            Status::OverLimit => "over_limit",
            Status::NoRule => "no_rule",
            Status::Disabled => "disabled",
            Status::Unmeasured => "unmeasured",
            Status::Invalid => "invalid",
            Status::Error => "error",
        }
    }

    /// Every status, in the order reports list them.
    pub const ALL: [Status; 8] = [
        Status::Ok,
        Status::BelowThreshold,
        Status::OverLimit,
        Status::NoRule,
        Status::Disabled,
        Status::Unmeasured,
        Status::Invalid,
        Status::Error,
    ];

    /// The status named `name` (as results write it).
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the job could not be scored (it is malformed, or its rule failed).
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Invalid | Status::Error)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
