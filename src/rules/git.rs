//! Reading a rule set as it was at a git revision, through the `git` command line (so
//! whatever git understands — branches, tags, `origin/main`, `HEAD~2` — works).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rules::files::{RuleFiles, RulesOrigin, is_rule_file};

/// Why the rules at a revision cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum GitRulesError {
    #[error("cannot run `git` in `{dir}`: {source}")]
    Spawn {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {command}` failed in `{dir}`: {stderr}")]
    Failed {
        dir: PathBuf,
        command: String,
        stderr: String,
    },
    #[error("revision `{rev}` has no rule files under `{path}/`")]
    NoRules { rev: String, path: String },
}

fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, GitRulesError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|source| GitRulesError::Spawn {
            dir: repo.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(GitRulesError::Failed {
            dir: repo.to_path_buf(),
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// Reads every rule file under `path` (relative to `repo`, e.g. `rules`) at revision `rev`.
pub fn rule_files_at(repo: &Path, rev: &str, path: &str) -> Result<RuleFiles, GitRulesError> {
    let dir = path.trim_end_matches('/');
    // `--` keeps a revision that looks like an option from being read as one.
    let commit = git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--end-of-options",
            &format!("{rev}^{{commit}}"),
        ],
    )?;
    let commit = String::from_utf8_lossy(&commit).trim().to_string();
    // --full-name: paths relative to the repository root, whatever the current directory.
    let listing = git(
        repo,
        &[
            "ls-tree",
            "-r",
            "-z",
            "--name-only",
            "--full-name",
            &commit,
            "--",
            &format!("{dir}/"),
        ],
    )?;
    let prefix = git(repo, &["rev-parse", "--show-prefix"])?;
    let prefix = String::from_utf8_lossy(&prefix).trim().to_string();
    let root_dir = format!("{prefix}{dir}/");
    let mut files = BTreeMap::new();
    for full in listing.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let full = String::from_utf8_lossy(full).into_owned();
        let Some(rel) = full.strip_prefix(&root_dir) else {
            continue;
        };
        if !is_rule_file(rel) {
            continue;
        }
        let bytes = git(repo, &["show", &format!("{commit}:{full}")])?;
        files.insert(rel.to_string(), bytes);
    }
    if files.is_empty() {
        return Err(GitRulesError::NoRules {
            rev: rev.to_string(),
            path: root_dir.trim_end_matches('/').to_string(),
        });
    }
    Ok(RuleFiles {
        origin: RulesOrigin::Git {
            rev: rev.to_string(),
            path: dir.to_string(),
        },
        files,
    })
}
