//! `policy.toml`: the protocol floors every priced rule version must respect.

use indexmap::IndexMap;
use toml::Spanned;

use super::{POLICY_FILE, Sink, span_of};
use crate::engine::model::{JobKind, Threshold};
use crate::rules::diagnostic::{Code, Diagnostic};
use crate::rules::schema::PolicyFile;

/// Per job kind, its floors.
pub(super) type Floors = IndexMap<String, Vec<Threshold>>;

/// Reads the floors of `policy.toml`, checked against the job kinds.
pub(super) fn floors(sink: &mut Sink, job_kinds: &IndexMap<String, JobKind>) -> Floors {
    let Some(policy) = read(sink) else {
        return Floors::new();
    };
    if job_kinds.is_empty() {
        // kinds.toml is missing or broken and already reported; do not cascade.
        return Floors::new();
    }
    let mut floors = Floors::new();
    for (kind, table) in policy.floors {
        let Some(jk) = job_kinds.get(&kind) else {
            let msg = format!("floors name job kind `{kind}`, which kinds.toml does not declare");
            sink.error(
                Code::UnknownJobKind,
                POLICY_FILE,
                span_of(&table),
                msg,
                None,
            );
            continue;
        };
        let list = kind_floors(sink, jk, table.into_inner());
        floors.insert(kind, list);
    }
    floors
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
            sink.error(Code::UnknownInput, POLICY_FILE, span_of(&v), msg, None);
            continue;
        };
        let min = v.into_inner();
        list.push(Threshold { name, min, slot });
    }
    list
}
