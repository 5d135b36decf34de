//! The network's catalog history, read offline: every version of `models.json` with its
//! commit and UTC commit time, from a git clone (bare or not) or from a directory of version
//! files with a CSV of their commits (as `shared/data/models/` + `models_commits.csv`).

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::rules::git::{GitRulesError, git, git_batch};

/// One version of the catalog file, not yet parsed.
#[derive(Debug, Clone)]
pub struct RawVersion {
    /// Its number in the history: `001` for the first.
    pub number: String,
    /// The full commit id.
    pub commit: String,
    /// The commit time, UTC (never the committer's local calendar date).
    pub at: Timestamp,
    /// The commit's subject line.
    pub subject: Option<String>,
    /// Where its bytes came from, for messages (`models/007_….json`, `bf00a20:models.json`).
    pub origin: String,
    /// Its bytes, or why it has none (git: the commit deleted the file; a directory: the
    /// file the CSV names cannot be read).
    pub bytes: Result<Vec<u8>, String>,
}

/// Why the history cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(transparent)]
    Git(#[from] GitRulesError),
    #[error("{0}")]
    Empty(String),
}

/// `001`, `002`, ... (three digits at least; more when the history is longer).
fn number(i: usize) -> String {
    format!("{:03}", i + 1)
}

fn parse_utc(text: &str) -> Result<Timestamp, String> {
    crate::engine::time::parse_time(text)
}

/// The versions a directory holds, in the order of `commits` (a CSV with the columns
/// `version_file`, `commit`, `committed_at_utc` and optionally `subject`, one row per version,
/// oldest first). Files of the directory that the CSV does not list are not versions of the
/// main history (side branches) and are not read.
pub fn read_directory(dir: &Path, commits: &Path) -> Result<Vec<RawVersion>, HistoryError> {
    let read_error = |path: &Path, source| HistoryError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(commits).map_err(|e| read_error(commits, e))?;
    let mut csv = csv::ReaderBuilder::new().from_reader(file);
    let csv_error = |line: u64, message: String| HistoryError::Csv {
        path: commits.to_path_buf(),
        line,
        message,
    };
    let headers = csv
        .headers()
        .map_err(|e| csv_error(1, e.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(c_file), Some(c_commit), Some(c_at)) = (
        column("version_file"),
        column("commit"),
        column("committed_at_utc"),
    ) else {
        return Err(csv_error(
            1,
            "expected the columns `version_file`, `commit` and `committed_at_utc` (and optionally `subject`)".into(),
        ));
    };
    let c_subject = column("subject");
    let mut out = Vec::new();
    for (i, row) in csv.records().enumerate() {
        let line = i as u64 + 2;
        let row = row.map_err(|e| csv_error(line, e.to_string()))?;
        let field = |c: usize, name: &str| -> Result<String, HistoryError> {
            match row.get(c).map(str::trim) {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => Err(csv_error(line, format!("`{name}` is empty"))),
            }
        };
        let name = field(c_file, "version_file")?;
        let commit = field(c_commit, "commit")?;
        if !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(csv_error(
                line,
                format!("`commit` is not a commit id: `{commit}`"),
            ));
        }
        let at = parse_utc(&field(c_at, "committed_at_utc")?)
            .map_err(|e| csv_error(line, format!("`committed_at_utc`: {e}")))?;
        // A file name, never a path: the CSV must not read outside the directory.
        if name.contains(['/', '\\']) || name == ".." || name == "." {
            return Err(csv_error(
                line,
                format!(
                    "`version_file` must be a file name in {}, got `{name}`",
                    dir.display()
                ),
            ));
        }
        let path = dir.join(&name);
        // The reason is recorded in catalog.toml: it names the file, never where it is.
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {name}: {e}"));
        out.push(RawVersion {
            number: number(out.len()),
            commit,
            at,
            subject: c_subject
                .and_then(|c| row.get(c))
                .map(|s| s.trim().to_string()),
            origin: path.display().to_string(),
            bytes,
        });
    }
    if out.is_empty() {
        return Err(HistoryError::Empty(format!(
            "{} lists no version",
            commits.display()
        )));
    }
    Ok(out)
}

/// Where a directory's commit list is: `models_commits.csv` next to the directory (as in
/// `shared/data/`) or inside it.
pub fn default_commits_file(dir: &Path) -> Option<PathBuf> {
    const NAME: &str = "models_commits.csv";
    let inside = dir.join(NAME);
    let beside = dir.parent().map(|p| p.join(NAME));
    [Some(inside), beside]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

/// How to walk a git history.
#[derive(Debug, Clone)]
pub struct GitSource {
    pub repo: PathBuf,
    /// The revision whose history is read (`HEAD`: the default branch of a clone).
    pub rev: String,
    /// The catalog file in the repository.
    pub path: String,
    /// Follow only first parents (`git log --first-parent`): a merge is then one version,
    /// dated when it was made. The default follows git's history simplification, which dates
    /// each version by the commit that made it (see rules/README.md).
    pub first_parent: bool,
}

/// Every version of `source.path` in the history of `source.rev`, oldest first: `git log` for
/// the commits (committer time as a Unix time, so no time zone can shift it), one `git
/// cat-file --batch` for every blob.
pub fn read_git(source: &GitSource) -> Result<Vec<RawVersion>, HistoryError> {
    let repo = &source.repo;
    let commit = git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--end-of-options",
            &format!("{}^{{commit}}", source.rev),
        ],
    )?;
    let commit = String::from_utf8_lossy(&commit).trim().to_string();
    let mut args = vec!["log", "--reverse", "--format=%H%x1f%ct%x1f%s"];
    if source.first_parent {
        args.push("--first-parent");
    }
    args.extend([commit.as_str(), "--", source.path.as_str()]);
    let log = git(repo, &args)?;
    let mut commits = Vec::new();
    for line in String::from_utf8_lossy(&log).lines() {
        let mut parts = line.splitn(3, '\u{1f}');
        let (Some(id), Some(time), subject) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let at = time
            .parse::<i64>()
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
            .ok_or_else(|| {
                HistoryError::Empty(format!(
                    "git log gave commit {id} an unreadable time `{time}`"
                ))
            })?;
        commits.push((id.to_string(), at, subject.map(String::from)));
    }
    if commits.is_empty() {
        return Err(HistoryError::Empty(format!(
            "no commit of `{}` changes `{}` in {}",
            source.rev,
            source.path,
            repo.display()
        )));
    }
    let mut ask = Vec::new();
    for (id, _, _) in &commits {
        ask.extend_from_slice(format!("{id}:{}\n", source.path).as_bytes());
    }
    let blobs = git_batch(repo, &["cat-file", "--batch"], ask, |out| {
        let mut blobs = Vec::with_capacity(commits.len());
        let mut header = String::new();
        for _ in &commits {
            header.clear();
            out.read_line(&mut header)?;
            // `OID blob SIZE`, then SIZE bytes and a newline; or `NAME missing`.
            let mut parts = header.split_whitespace();
            let (_, kind, size) = (parts.next(), parts.next(), parts.next());
            match (kind, size.and_then(|s| s.parse::<usize>().ok())) {
                (Some("blob"), Some(size)) => {
                    let mut bytes = vec![0; size];
                    out.read_exact(&mut bytes)?;
                    let mut nl = [0u8; 1];
                    out.read_exact(&mut nl)?;
                    blobs.push(Ok(bytes));
                }
                (Some("missing"), _) => {
                    blobs.push(Err("the file does not exist at this commit".to_string()))
                }
                _ => {
                    let what = header.trim().to_string();
                    // Anything else (a tree where a file was expected) has a body to skip.
                    if let Some(size) = size.and_then(|s| s.parse::<usize>().ok()) {
                        let mut skip = vec![0; size + 1];
                        out.read_exact(&mut skip)?;
                    }
                    blobs.push(Err(format!("not a file at this commit ({what})")));
                }
            }
        }
        Ok(blobs)
    })?;
    Ok(commits
        .into_iter()
        .zip(blobs)
        .enumerate()
        .map(|(i, ((id, at, subject), bytes))| RawVersion {
            number: number(i),
            origin: format!("{}:{}", &id[..id.len().min(10)], source.path),
            commit: id,
            at,
            subject,
            bytes,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_read_in_the_order_of_its_commit_list() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        std::fs::create_dir(&models).unwrap();
        std::fs::write(models.join("a.json"), "[]").unwrap();
        std::fs::write(models.join("side_branch.json"), "[]").unwrap();
        let csv = dir.path().join("models_commits.csv");
        std::fs::write(
            &csv,
            "version_file,commit,committed_at_utc,committer_local_time,subject\n\
             a.json,45b77ad3bb,2024-01-02T01:28:46Z,2024-01-01T17:28:46-08:00,\"first, with a comma\"\n\
             gone.json,ddd45f4a99,2024-01-02T02:30:15Z,,second\n",
        )
        .unwrap();
        assert_eq!(
            default_commits_file(&models),
            Some(csv.clone()),
            "next to the directory"
        );
        let v = read_directory(&models, &csv).unwrap();
        assert_eq!(
            v.len(),
            2,
            "the side branch's file is not listed, so not read"
        );
        assert_eq!((v[0].number.as_str(), v[1].number.as_str()), ("001", "002"));
        assert_eq!(v[0].subject.as_deref(), Some("first, with a comma"));
        assert_eq!(v[0].bytes.as_deref().unwrap(), b"[]");
        // A missing file is a version without bytes; the reason names the file, not its path.
        let why = v[1].bytes.as_ref().unwrap_err();
        assert!(why.starts_with("cannot read gone.json: "), "{why}");
        assert!(!why.contains(&*dir.path().to_string_lossy()), "{why}");
        // Inside the directory is found too.
        std::fs::rename(&csv, models.join("models_commits.csv")).unwrap();
        assert_eq!(
            default_commits_file(&models),
            Some(models.join("models_commits.csv"))
        );
    }

    #[test]
    fn a_bad_commit_list_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("c.csv");
        for (text, says) in [
            ("version_file,commit\n", ":1: expected the columns"),
            (
                "version_file,commit,committed_at_utc\na.json,zz,2024-01-01\n",
                ":2: `commit` is not a commit id",
            ),
            (
                "version_file,commit,committed_at_utc\na.json,ab,\n",
                ":2: `committed_at_utc` is empty",
            ),
            ("version_file,commit,committed_at_utc\n", "lists no version"),
        ] {
            std::fs::write(&csv, text).unwrap();
            let e = read_directory(dir.path(), &csv).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
