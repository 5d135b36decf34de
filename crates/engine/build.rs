//! Records the git commit the binary is built from, so every result can say which engine made
//! it (`jobpoints 0.1.0 (3f2a9c1)`). A build outside a git checkout (a source tarball, a
//! vendored crate) simply has no commit; `JOBPOINTS_BUILD_COMMIT` can supply one.

use std::process::Command;

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
    let commit = std::env::var("JOBPOINTS_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let long = match &commit {
        Some(c) => format!("{version} ({c})"),
        None => version,
    };
    println!("cargo:rustc-env=JOBPOINTS_VERSION_LONG={long}");
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it points to (a commit).
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        if let (Some(common), Some(branch)) = (
            git(&["rev-parse", "--git-common-dir"]),
            git(&["symbolic-ref", "-q", "HEAD"]),
        ) {
            println!("cargo:rerun-if-changed={common}/{branch}");
            println!("cargo:rerun-if-changed={common}/packed-refs");
        }
    }
}
