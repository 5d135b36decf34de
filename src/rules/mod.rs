//! From files to a [`RuleSet`](crate::engine::model::RuleSet): where the files come from
//! (a directory, the binary, git), their TOML schema, the builder, the checks, and the
//! diagnostics that report what is wrong.

pub mod diagnostic;
pub mod files;
pub mod git;
pub mod load;
pub mod schema;
pub mod validate;
