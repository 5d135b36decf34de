//! Records the git commit the engine is built from, so every result can say which engine made
//! it (`jobpoints 0.1.0 (3f2a9c1d4e5f)`, `... (3f2a9c1d4e5f+dirty)` with uncommitted changes to
//! the engine; see `build/stamp.rs` for what counts). A build outside a git checkout (a source
//! tarball, a vendored crate) simply has no commit; `JOBPOINTS_BUILD_COMMIT` can supply one.
//!
//! Only files that exist are watched (`rerun-if-changed` on a missing file makes cargo rerun
//! this script, and rebuild the crate, on every build).

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/stamp.rs"]
mod stamp;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=JOBPOINTS_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/stamp.rs");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let supplied = std::env::var("JOBPOINTS_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty());
    if let Some(commit) = supplied {
        // A supplied commit is taken as it is: the builder vouches for the tree.
        let long = stamp::stamp(&version, Some(&commit), false);
        println!("cargo:rustc-env=JOBPOINTS_VERSION_LONG={long}");
        return;
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let dirty = commit.is_some() && engine_dirty();
    let long = stamp::stamp(&version, commit.as_deref(), dirty);
    println!("cargo:rustc-env=JOBPOINTS_VERSION_LONG={long}");
    watch_git();
}

/// Whether the engine's files differ from HEAD. `--no-optional-locks`: status must not
/// refresh (rewrite) the index of a tree someone is working in.
fn engine_dirty() -> bool {
    let mut paths = vec![".".to_string()];
    if let Some(top) = git(&["rev-parse", "--show-toplevel"]) {
        for file in ["Cargo.toml", "Cargo.lock"] {
            paths.push(Path::new(&top).join(file).display().to_string());
        }
    }
    let mut args = vec![
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=normal",
        "--",
    ];
    args.extend(paths.iter().map(String::as_str));
    // Watch what the answer depends on: the crate's sources and the workspace's manifests.
    // (Cargo rebuilds the crate when its sources change anyway; this reruns the stamp then.)
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    for p in &paths[1..] {
        if Path::new(p).is_file() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    match Command::new("git").args(&args).output() {
        Ok(out) if out.status.success() => stamp::is_dirty(&String::from_utf8_lossy(&out.stdout)),
        // git answered HEAD but not status: say nothing rather than guess.
        _ => false,
    }
}

/// Rebuild when HEAD moves: see `stamp::head_files`.
fn watch_git() {
    let absolute = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        }
    };
    let (Some(git_dir), Some(common)) = (
        git(&["rev-parse", "--git-dir"]).map(absolute),
        git(&["rev-parse", "--git-common-dir"]).map(absolute),
    ) else {
        return;
    };
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for file in stamp::head_files(&git_dir, &common, branch.as_deref()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}
