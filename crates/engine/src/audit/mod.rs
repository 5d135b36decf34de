//! Auditing: reproducing past results. `history` turns a rule-set hash back into rules (a
//! directory, the built-in rules, or a commit of a repository's `rules/`); `verify` scores
//! results' jobs again and compares; `decision` is the decision log `serve` writes, which
//! `verify` replays.

pub mod decision;
pub mod history;
pub mod verify;
