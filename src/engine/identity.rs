//! Which engine made a result: its version and the git commit it was built from, carried by
//! every result next to the rule set's hash so an auditor knows what to reproduce it with.

/// `0.1.0 (3f2a9c1b0d4e)`, or `0.1.0` when built outside a git checkout (see `build.rs`).
pub const VERSION: &str = env!("JOBPOINTS_VERSION_LONG");

/// `jobpoints 0.1.0 (3f2a9c1b0d4e)`: what results name as their `engine`.
#[allow(dead_code)] // carried by results once #14 lands
pub const ENGINE: &str = concat!("jobpoints ", env!("JOBPOINTS_VERSION_LONG"));
