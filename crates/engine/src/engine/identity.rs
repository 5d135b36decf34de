//! Which engine made a result: its version and the git commit it was built from, carried by
//! every result next to the rule set's hash so an auditor knows what to reproduce it with;
//! and the version of the JSON contract every JSON output follows.

/// `0.1.0 (3f2a9c1b0d4e)`, or `0.1.0` when built outside a git checkout (see `build.rs`).
pub const VERSION: &str = env!("JOBPOINTS_VERSION_LONG");

/// `jobpoints 0.1.0 (3f2a9c1b0d4e)`: what results name as their `engine`.
pub const ENGINE: &str = concat!("jobpoints ", env!("JOBPOINTS_VERSION_LONG"));

/// The version of the JSON output contract: the fields of a result object (JSONL, JSON,
/// `serve`, the decision log) and of the documents of `check`, `diff`, `verify` and the
/// decision log. It goes up when a field is removed, renamed or changes meaning; a new
/// optional field does not change it. (`tally`'s partial has its own, `TALLY_SCHEMA_VERSION`.)
pub const SCHEMA_VERSION: u32 = 1;

/// Whether `ENGINE` can be written into JSON without escaping (it can unless a build supplied
/// a strange `JOBPOINTS_BUILD_COMMIT`); checked once per scoring context.
pub fn engine_verbatim() -> bool {
    ENGINE
        .bytes()
        .all(|c| (c.is_ascii_graphic() || c == b' ') && c != b'"' && c != b'\\')
}
