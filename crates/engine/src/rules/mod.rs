//! From files to a [`RuleSet`](crate::engine::model::RuleSet): where the files come from
//! (a directory, the binary, git), their TOML schema (and its JSON Schema for editors), the
//! builder, the checks, and the diagnostics that report what is wrong.

pub mod catalog_sync;
pub mod diagnostic;
#[cfg(feature = "fancy")]
pub mod excerpt;
pub mod files;
pub mod git;
pub mod json_schema;
pub mod lines;
pub mod load;
pub(crate) mod prove;
pub mod schema;
pub mod shapes;
pub mod validate;
