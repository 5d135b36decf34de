//! Auditing: reproducing past results. `history` turns a rule-set hash back into rules (a
//! directory, the built-in rules, or a commit of a repository's `rules/`); `verify` scores
//! results' jobs again and compares; `decision` is the decision log `serve` writes, which
//! `verify` replays; `signing` signs rule sets and checks that a set is signed by a trusted
//! key.

pub mod decision;
pub mod history;
pub mod signing;
pub mod verify;
