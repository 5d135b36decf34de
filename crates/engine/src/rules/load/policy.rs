//! `policy.toml`: the protocol floors every priced rule version must respect, and the
//! ceilings on what any version may pay.

use indexmap::IndexMap;
use toml::Spanned;

use super::{POLICY_FILE, Sink, did_you_mean, span_of};
use crate::engine::model::{JobKind, PolicyCeilings, Threshold};
use crate::rules::diagnostic::{Code, Diagnostic};
use crate::rules::schema::{CeilingsToml, PolicyFile};

/// Per job kind, its floors.
pub(super) type Floors = IndexMap<String, Vec<Threshold>>;
/// Per job kind, its ceilings.
pub(super) type Ceilings = IndexMap<String, PolicyCeilings>;

/// What `policy.toml` declares, checked against the job kinds.
#[derive(Default)]
pub(super) struct Policy {
    pub floors: Floors,
    pub ceilings: Ceilings,
}

/// Reads `policy.toml`, checked against the job kinds.
pub(super) fn read_policy(sink: &mut Sink, job_kinds: &IndexMap<String, JobKind>) -> Policy {
    let Some(policy) = read(sink) else {
        return Policy::default();
    };
    if job_kinds.is_empty() {
        // kinds.toml is missing or broken and already reported; do not cascade.
        return Policy::default();
    }
    let mut out = Policy::default();
    for (kind, table) in policy.floors {
        let Some(jk) = known_kind(sink, job_kinds, &kind, "floors", table.span()) else {
            continue;
        };
        let list = kind_floors(sink, jk, table.into_inner());
        out.floors.insert(kind, list);
    }
    for (kind, table) in policy.ceilings {
        if known_kind(sink, job_kinds, &kind, "ceilings", table.span()).is_none() {
            continue;
        }
        let c = kind_ceilings(sink, &kind, table.into_inner());
        out.ceilings.insert(kind, c);
    }
    for name in job_kinds.keys() {
        let floors = out.floors.get(name).is_some_and(|f| !f.is_empty());
        let ceilings = out
            .ceilings
            .get(name)
            .is_some_and(|c| c.max_multiplier.is_some() || c.max_points.is_some());
        if !floors && !ceilings {
            let msg = format!(
                "job kind `{name}` has no floors and no ceilings: any version may pay anything for any job"
            );
            let help = format!(
                "bound it in policy.toml, e.g. `[ceilings.{name}]` with `max_multiplier` and `max_points`"
            );
            sink.warning(
                Code::UnboundedJobKind,
                POLICY_FILE,
                Some(0..0),
                msg,
                Some(&help),
            );
        }
    }
    out
}

fn known_kind<'k>(
    sink: &mut Sink,
    job_kinds: &'k IndexMap<String, JobKind>,
    kind: &str,
    what: &str,
    span: std::ops::Range<usize>,
) -> Option<&'k JobKind> {
    let jk = job_kinds.get(kind);
    if jk.is_none() {
        let msg = format!("{what} name job kind `{kind}`, which kinds.toml does not declare");
        let help = did_you_mean(kind, job_kinds.keys().map(String::as_str));
        sink.error(
            Code::UnknownJobKind,
            POLICY_FILE,
            Some(span),
            msg,
            help.as_deref(),
        );
    }
    jk
}

fn read(sink: &mut Sink) -> Option<PolicyFile> {
    if !sink.contains(POLICY_FILE) {
        sink.push(
            Diagnostic::warning(
                Code::NoPolicy,
                format!("the rule set has no `{POLICY_FILE}`: no protocol floors are enforced"),
            )
            .in_file(POLICY_FILE),
        );
        return None;
    }
    sink.parse(POLICY_FILE)
}

/// One job kind's floors; one on a value the kind does not have is reported and left out.
fn kind_floors(
    sink: &mut Sink,
    jk: &JobKind,
    table: IndexMap<String, Spanned<f64>>,
) -> Vec<Threshold> {
    let mut list = Vec::new();
    for (name, v) in table {
        let Some(slot) = jk.value_names().position(|n| n == name) else {
            let msg = format!(
                "floor `{name}` is not an input or derived value of job kind `{}`",
                jk.name
            );
            let known: Vec<&str> = jk.value_names().collect();
            let help = match did_you_mean(&name, known.iter().copied()) {
                Some(hint) => format!("{hint} (known: {})", known.join(", ")),
                None => format!("known: {}", known.join(", ")),
            };
            sink.error(
                Code::UnknownInput,
                POLICY_FILE,
                span_of(&v),
                msg,
                Some(&help),
            );
            continue;
        };
        let min = v.into_inner();
        list.push(Threshold {
            name,
            min,
            slot,
            place: None,
        });
    }
    list
}

/// One job kind's ceilings; each must be a finite number ≥ 0.
fn kind_ceilings(sink: &mut Sink, kind: &str, table: CeilingsToml) -> PolicyCeilings {
    let mut bound = |key: &str, v: Option<Spanned<f64>>| -> Option<f64> {
        let v = v?;
        let x = *v.get_ref();
        if x.is_finite() && x >= 0.0 {
            return Some(x);
        }
        let msg = format!(
            "ceiling `{key}` of job kind `{kind}` is `{x}`; it must be a finite number ≥ 0"
        );
        sink.error(
            Code::BadType,
            POLICY_FILE,
            span_of(&v),
            msg,
            Some("e.g. `max_points = 10000`"),
        );
        None
    };
    PolicyCeilings {
        max_multiplier: bound("max_multiplier", table.max_multiplier),
        max_points: bound("max_points", table.max_points),
    }
}
