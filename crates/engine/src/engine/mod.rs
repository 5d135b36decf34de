//! The engine: the rule-set model, how a model resolves to a rule version, reading a job,
//! evaluating formulas in their sandbox, and the score. No I/O, no command line, no server.

pub mod cancel;
pub mod catalog;
pub mod execution;
pub mod explain;
pub mod formula;
pub mod identity;
pub mod interval;
pub mod job;
pub mod json;
pub mod model;
pub mod points;
pub mod program;
pub mod resolve;
pub mod score;
pub mod status;
pub mod time;
pub mod tokens;
pub mod value;
