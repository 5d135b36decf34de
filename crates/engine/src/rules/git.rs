//! Reading a rule set as it was at a git revision, through the `git` command line (so
//! whatever git understands — branches, tags, `origin/main`, `HEAD~2` — works).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::rules::files::{Refusal, RuleFiles, RulesOrigin, is_rule_file, size_limit};

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

/// Runs `git -C repo ARGS` (stdin closed) and returns its stdout; a failure carries stderr.
pub(crate) fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, GitRulesError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
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

/// Feeds `input` to `git ARGS` on stdin (from a thread, so a large answer cannot deadlock
/// it) and hands its stdout to `read` (`git cat-file --batch` and friends).
pub(crate) fn git_batch<T>(
    repo: &Path,
    args: &[&str],
    input: Vec<u8>,
    read: impl FnOnce(&mut dyn BufRead) -> std::io::Result<T>,
) -> Result<T, GitRulesError> {
    let spawn_error = |source| GitRulesError::Spawn {
        dir: repo.to_path_buf(),
        source,
    };
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut stdout = BufReader::with_capacity(1 << 16, child.stdout.take().expect("piped"));
    let read = read(&mut stdout);
    // Whatever was not read is drained, so git can exit.
    let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    let _ = writer.join();
    let out = child.wait_with_output().map_err(spawn_error)?;
    if !out.status.success() {
        return Err(GitRulesError::Failed {
            dir: repo.to_path_buf(),
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    read.map_err(spawn_error)
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
            "--long",
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
    let mut refused = BTreeMap::new();
    // Each entry: `MODE TYPE OBJECT SIZE\tPATH`.
    for entry in listing.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let entry = String::from_utf8_lossy(entry).into_owned();
        let Some((meta, full)) = entry.split_once('\t') else {
            continue;
        };
        let Some(rel) = full.strip_prefix(&root_dir) else {
            continue;
        };
        if !is_rule_file(rel) {
            continue;
        }
        let mut fields = meta.split_whitespace();
        let mode = fields.next().unwrap_or("");
        let size = fields.nth(2).and_then(|s| s.parse::<u64>().ok());
        // A symlink's blob is its target path, a submodule is another repository: neither is
        // a rule file, and neither is read.
        if mode != "100644" && mode != "100755" {
            let what = match mode {
                "120000" => "a symlink, not a regular file",
                "160000" => "a git submodule, not a regular file",
                _ => "not a regular file",
            };
            refused.insert(rel.to_string(), Refusal::NotConfined(what.to_string()));
            continue;
        }
        let limit = size_limit(rel);
        if let Some(bytes) = size.filter(|s| *s > limit) {
            refused.insert(rel.to_string(), Refusal::TooLarge { bytes, limit });
            continue;
        }
        let bytes = git(repo, &["show", &format!("{commit}:{full}")])?;
        files.insert(rel.to_string(), bytes);
    }
    if files.is_empty() && refused.is_empty() {
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
        refused,
    })
}
