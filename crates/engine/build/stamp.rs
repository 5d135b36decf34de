//! The version stamp's logic, shared by `build.rs` and the crate's unit tests (a build script
//! cannot be tested by itself).
//!
//! The stamp is `VERSION (COMMIT)`, `VERSION (COMMIT+dirty)` when the engine's own files differ
//! from that commit, or `VERSION` outside git. "Dirty" covers what the `engine` field of a
//! result vouches for: this crate's files and the workspace's `Cargo.toml` and `Cargo.lock`
//! (tracked and modified, or new and not ignored). Rule files are not part of it: a result
//! names its rules by their own hash (`ruleset`); the command line's code (the root crate) is
//! not either, since it does not change a score.

use std::path::{Path, PathBuf};

/// The stamp for `version`, built from `commit` (none outside git), marked when `dirty`.
pub fn stamp(version: &str, commit: Option<&str>, dirty: bool) -> String {
    match commit {
        Some(c) if dirty => format!("{version} ({c}+dirty)"),
        Some(c) => format!("{version} ({c})"),
        None => version.to_string(),
    }
}

/// Whether `git status --porcelain` printed a change (any non-empty line).
pub fn is_dirty(porcelain: &str) -> bool {
    porcelain.lines().any(|l| !l.trim().is_empty())
}

/// The git files whose change means HEAD may have moved, among those that exist: a file that
/// does not exist would make cargo rerun the build script (and rebuild the crate) every time.
///
/// - `GIT_DIR/HEAD`: a checkout, a detached commit;
/// - `GIT_DIR/logs/HEAD`: appended on every commit, reset or checkout (when reflogs are on, as
///   git's default is outside bare repositories), so a commit to a branch whose ref is packed is
///   seen too;
/// - `COMMON_DIR/refs/heads/BRANCH`: the branch's loose ref, when there is one;
/// - `COMMON_DIR/packed-refs`: the packed refs, when there are some.
///
/// `git_dir` is the worktree's (`.git`, or `.git/worktrees/NAME` in a linked worktree) and
/// `common_dir` the repository's.
pub fn head_files(git_dir: &Path, common_dir: &Path, branch: Option<&str>) -> Vec<PathBuf> {
    let mut files = vec![git_dir.join("HEAD"), git_dir.join("logs").join("HEAD")];
    if let Some(branch) = branch {
        files.push(common_dir.join(branch));
    }
    files.push(common_dir.join("packed-refs"));
    files.retain(|f| f.is_file());
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_names_the_commit_and_marks_a_dirty_tree() {
        assert_eq!(
            stamp("0.1.0", Some("e3b1a269354f"), false),
            "0.1.0 (e3b1a269354f)"
        );
        assert_eq!(
            stamp("0.1.0", Some("e3b1a269354f"), true),
            "0.1.0 (e3b1a269354f+dirty)"
        );
        // Outside git there is no commit to be dirty against.
        assert_eq!(stamp("0.1.0", None, true), "0.1.0");
        assert_eq!(stamp("0.1.0", None, false), "0.1.0");
    }

    #[test]
    fn any_status_line_is_dirty() {
        assert!(!is_dirty(""));
        assert!(!is_dirty("\n"));
        assert!(is_dirty(" M src/engine/score.rs\n"));
        assert!(is_dirty("?? src/engine/new.rs\n"));
        assert!(is_dirty("M  ../../Cargo.lock\n"));
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x").unwrap();
    }

    #[test]
    fn only_existing_git_files_are_watched() {
        // A fresh clone: HEAD, its reflog, a loose branch ref, no packed-refs (the checkout
        // that made every build rebuild the crate).
        let repo = tempfile::tempdir().unwrap();
        let git = repo.path().join(".git");
        touch(&git.join("HEAD"));
        touch(&git.join("logs/HEAD"));
        touch(&git.join("refs/heads/main"));
        assert_eq!(
            head_files(&git, &git, Some("refs/heads/main")),
            [
                git.join("HEAD"),
                git.join("logs/HEAD"),
                git.join("refs/heads/main")
            ]
        );
        // The branch packed (`git gc`): its loose ref is gone; packed-refs and the reflog say
        // when it moves.
        std::fs::remove_file(git.join("refs/heads/main")).unwrap();
        touch(&git.join("packed-refs"));
        assert_eq!(
            head_files(&git, &git, Some("refs/heads/main")),
            [
                git.join("HEAD"),
                git.join("logs/HEAD"),
                git.join("packed-refs")
            ]
        );
        // Detached HEAD, no reflog.
        std::fs::remove_file(git.join("logs/HEAD")).unwrap();
        assert_eq!(
            head_files(&git, &git, None),
            [git.join("HEAD"), git.join("packed-refs")]
        );
    }

    #[test]
    fn a_linked_worktree_watches_its_own_head_and_the_shared_branch() {
        // `.git` is a file in a linked worktree; git reports the two directories.
        let repo = tempfile::tempdir().unwrap();
        let common = repo.path().join("main/.git");
        let git_dir = common.join("worktrees/house");
        touch(&git_dir.join("HEAD"));
        touch(&git_dir.join("logs/HEAD"));
        touch(&common.join("refs/heads/house"));
        touch(&common.join("HEAD"));
        assert_eq!(
            head_files(&git_dir, &common, Some("refs/heads/house")),
            [
                git_dir.join("HEAD"),
                git_dir.join("logs/HEAD"),
                common.join("refs/heads/house")
            ]
        );
    }
}
