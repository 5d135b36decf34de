//! What a rule change does: the rule-set change model (shared by `diff`, `watch` and
//! `serve`'s reload log), its impact on a corpus of jobs, and the reports.

pub mod changes;
pub mod corpus;
pub mod describe;
pub mod impact;
pub mod report;
pub mod windows;
