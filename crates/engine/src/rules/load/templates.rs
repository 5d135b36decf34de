//! `[prompt_templates]` of kinds.toml: how a conversation was written into one string, for
//! the `@template` step of a text path.

use std::sync::Arc;

use indexmap::IndexMap;
use toml::Spanned;

use super::{KINDS_FILE, Sink};
use crate::engine::tokens::{PromptTemplate, Role, RoleMarks};
use crate::rules::diagnostic::Code;
use crate::rules::schema::PromptTemplateToml;

/// The declared templates, in order; one whose markers are unusable is reported and left out.
pub(super) fn build(
    sink: &mut Sink,
    declared: IndexMap<String, Spanned<PromptTemplateToml>>,
) -> Arc<[PromptTemplate]> {
    let mut out = Vec::with_capacity(declared.len());
    for (name, spanned) in declared {
        let span = spanned.span();
        let t = spanned.into_inner();
        let roles: Vec<RoleMarks> = [
            (Role::System, t.system),
            (Role::User, t.user),
            (Role::Assistant, t.assistant),
        ]
        .into_iter()
        .filter_map(|(role, marks)| {
            marks.map(|m| {
                let m = m.into_inner();
                RoleMarks {
                    role,
                    before: m.before,
                    after: m.after.into_vec(),
                }
            })
        })
        .collect();
        match PromptTemplate::new(&name, &t.source, roles, t.between) {
            Ok(template) => out.push(template),
            Err(msg) => {
                let help = "a message is `before` + content + `after`; its content ends at the first `after` marker, so `after` markers cannot be empty, and only one role may start without a marker";
                sink.error(
                    Code::PromptTemplate,
                    KINDS_FILE,
                    Some(span),
                    msg,
                    Some(help),
                );
            }
        }
    }
    out.into()
}
