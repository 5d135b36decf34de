//! Turning a rule-set hash back into rules: a directory, the built-in rules, or any commit in
//! the git history of a repository's `rules/`.
//!
//! The hash is of the rule files' paths and contents ([`RuleFiles::hash`]), so finding it in
//! history means hashing the `rules/` tree of every commit that changed it. That is done once
//! per tree: `git log` lists the commits, one `git cat-file --batch-check` names each commit's
//! `rules/` tree, `git ls-tree` lists a tree's files and one `git cat-file --batch` reads every
//! blob not read before. Trees are content-addressed, so tree → hash never goes stale; it is
//! kept in `jobpoints-rules-index` in the repository's git directory, and a later run only
//! hashes trees it has not seen.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::engine::model::{Refusal, RuleFiles, RuleFilesHasher, RuleSet};
use crate::rules::files::{is_rule_file, size_limit};
use crate::rules::git::{GitRulesError, git, git_batch, rule_files_at};
use crate::rules::load::load;

/// The first line of the cache file; another line means another format: the file is rebuilt.
const INDEX_HEADER: &str = "# jobpoints rules index v1 (tree hash)";
/// The cache file, in the repository's (common) git directory.
const INDEX_FILE: &str = "jobpoints-rules-index";

/// Where a rule set was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    /// A rules directory given on the command line (or `./rules`).
    Dir { dir: String },
    /// The rules built into this binary.
    Builtin,
    /// A commit of the repository: the oldest commit whose `rules/` has this hash, its
    /// committer date, and how many commits that changed `rules/` have it.
    Commit {
        commit: String,
        date: String,
        commits: usize,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Dir { dir } => write!(f, "rules directory {dir}"),
            Source::Builtin => f.write_str("the built-in rules"),
            Source::Commit { commit, date, .. } => {
                let short = commit.get(..12).unwrap_or(commit);
                write!(f, "commit {short} ({date})")
            }
        }
    }
}

/// A rule set found by its hash.
pub struct Known {
    pub rules: Arc<RuleSet>,
    pub source: Source,
}

/// What looking a hash up gave.
#[derive(Clone)]
pub enum Lookup {
    Found(Arc<Known>),
    /// Found nowhere, or found but not loadable by this engine: why.
    Unknown(Arc<str>),
}

/// One commit that changed `rules/`.
#[derive(Debug, Clone)]
struct CommitInfo {
    commit: String,
    date: String,
    tree: String,
}

/// The git history of one repository's `rules/`: hash → commits, built on first use.
pub struct GitHistory {
    repo: PathBuf,
    path: String,
    /// hash → the commits (oldest first) whose `rules/` tree has it.
    index: HashMap<String, Vec<CommitInfo>>,
    /// Commits that changed `rules/`, and distinct trees hashed.
    pub commits: usize,
    pub trees: usize,
    /// Trees hashed in this run (the others came from the cache).
    pub hashed: usize,
}

/// A file of a `rules/` tree, as `git ls-tree -r --long` lists it.
struct TreeEntry {
    mode: String,
    oid: String,
    size: Option<u64>,
    path: String,
}

impl GitHistory {
    /// Indexes every commit (on any ref) that changed `path` (e.g. `rules`) in `repo`.
    pub fn open(repo: &Path, path: &str) -> Result<Self, GitRulesError> {
        let path = path.trim_end_matches('/').to_string();
        let mut h = GitHistory {
            repo: repo.to_path_buf(),
            path,
            index: HashMap::new(),
            commits: 0,
            trees: 0,
            hashed: 0,
        };
        h.build()?;
        Ok(h)
    }

    fn build(&mut self) -> Result<(), GitRulesError> {
        let repo = self.repo.clone();
        // Oldest first, so the first commit listed for a hash is where it appeared.
        let log = git(
            &repo,
            &[
                "log",
                "--all",
                "--reverse",
                "--format=%H %cI",
                "--",
                &format!("{}/", self.path),
            ],
        )?;
        let commits: Vec<(String, String)> = String::from_utf8_lossy(&log)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(c, d)| (c.to_string(), d.to_string()))
            .collect();
        self.commits = commits.len();
        if commits.is_empty() {
            return Ok(());
        }
        // Each commit's `rules/` tree, in one process.
        let mut ask = Vec::new();
        for (c, _) in &commits {
            ask.extend_from_slice(format!("{c}:{}\n", self.path).as_bytes());
        }
        let trees = git_batch(&repo, &["cat-file", "--batch-check"], ask, |out| {
            let mut trees = Vec::with_capacity(commits.len());
            let mut line = String::new();
            for _ in 0..commits.len() {
                line.clear();
                out.read_line(&mut line)?;
                // `OID tree SIZE`, or `COMMIT:rules missing` where a commit deleted rules/.
                let mut parts = line.split_whitespace();
                let (oid, kind) = (parts.next(), parts.next());
                trees.push((kind == Some("tree")).then(|| oid.unwrap_or("").to_string()));
            }
            Ok(trees)
        })?;
        let cache_path = self.cache_path();
        let mut cache = cache_path.as_deref().map(read_cache).unwrap_or_default();
        let before = cache.len();
        let distinct: Vec<&String> = {
            let mut seen = HashSet::new();
            trees.iter().flatten().filter(|t| seen.insert(*t)).collect()
        };
        self.trees = distinct.len();
        let missing: Vec<&String> = distinct
            .into_iter()
            .filter(|t| !cache.contains_key(*t))
            .collect();
        self.hashed = missing.len();
        if !missing.is_empty() {
            for (tree, hash) in self.hash_trees(&missing)? {
                cache.insert(tree, hash);
            }
        }
        if cache.len() > before
            && let Some(p) = &cache_path
        {
            // A cache that cannot be written only costs the next run time.
            let _ = write_cache(p, &cache);
        }
        for ((commit, date), tree) in commits.into_iter().zip(trees) {
            let Some(tree) = tree else { continue };
            let Some(hash) = cache.get(&tree) else {
                continue;
            };
            self.index
                .entry(hash.clone())
                .or_default()
                .push(CommitInfo { commit, date, tree });
        }
        Ok(())
    }

    /// Where the cache lives: the common git directory (shared by worktrees).
    fn cache_path(&self) -> Option<PathBuf> {
        let dir = git(
            &self.repo,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )
        .ok()?;
        let dir = String::from_utf8(dir).ok()?;
        Some(PathBuf::from(dir.trim()).join(INDEX_FILE))
    }

    /// The hash of each tree, its blobs streamed through one `git cat-file --batch` into the
    /// hash a chunk at a time: memory holds a tree's listing, never its files (#22: 300
    /// commits of 0.92 MB held 298 MB). A blob in several trees is read once per tree.
    fn hash_trees(&self, trees: &[&String]) -> Result<Vec<(String, String)>, GitRulesError> {
        let mut listings = Vec::with_capacity(trees.len());
        let mut ask = Vec::new();
        for tree in trees {
            let mut entries = self.list_tree(tree)?;
            // The hash takes files in path order (a `BTreeMap` of the paths).
            entries.sort_by(|a, b| a.path.cmp(&b.path));
            for e in &entries {
                if read_blob(e) {
                    ask.extend_from_slice(e.oid.as_bytes());
                    ask.push(b'\n');
                }
            }
            listings.push(entries);
        }
        git_batch(&self.repo, &["cat-file", "--batch"], ask, |out| {
            let mut hashes = Vec::with_capacity(trees.len());
            let mut chunk = vec![0u8; 1 << 16];
            let mut header = String::new();
            for (tree, entries) in trees.iter().zip(&listings) {
                let hash = hash_tree(entries, &mut |e, h| {
                    header.clear();
                    out.read_line(&mut header)?;
                    // `OID blob SIZE`, then SIZE bytes and a newline; `OID missing` (an empty
                    // file, as before).
                    let mut parts = header.split_whitespace();
                    let (Some(_), Some("blob"), Some(size)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        h.file(&e.path, 0);
                        return Ok(());
                    };
                    let mut left: u64 = size.parse().map_err(std::io::Error::other)?;
                    h.file(&e.path, left);
                    while left > 0 {
                        let n = (left as usize).min(chunk.len());
                        out.read_exact(&mut chunk[..n])?;
                        h.bytes(&chunk[..n]);
                        left -= n as u64;
                    }
                    let mut nl = [0u8; 1];
                    out.read_exact(&mut nl)
                })?;
                hashes.push(((*tree).clone(), hash));
            }
            Ok(hashes)
        })
    }

    fn list_tree(&self, tree: &str) -> Result<Vec<TreeEntry>, GitRulesError> {
        let listing = git(&self.repo, &["ls-tree", "-r", "-z", "--long", tree])?;
        let mut entries = Vec::new();
        for entry in listing.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            let Some((meta, path)) = entry.split_once('\t') else {
                continue;
            };
            if !is_rule_file(path) {
                continue;
            }
            let mut fields = meta.split_whitespace();
            let mode = fields.next().unwrap_or("").to_string();
            let _kind = fields.next();
            let oid = fields.next().unwrap_or("").to_string();
            let size = fields.next().and_then(|s| s.parse().ok());
            entries.push(TreeEntry {
                mode,
                oid,
                size,
                path: path.to_string(),
            });
        }
        Ok(entries)
    }

    /// The commits whose `rules/` has `hash`, oldest first.
    fn commits_of(&self, hash: &str) -> Option<&[CommitInfo]> {
        self.index.get(hash).map(Vec::as_slice)
    }

    /// The rule files of the oldest commit with `hash`.
    fn files(&self, hash: &str) -> Option<Result<(RuleFiles, Source), GitRulesError>> {
        let commits = self.commits_of(hash)?;
        let first = &commits[0];
        debug_assert!(!first.tree.is_empty());
        Some(
            rule_files_at(&self.repo, &first.commit, &self.path).map(|files| {
                (
                    files,
                    Source::Commit {
                        commit: first.commit.clone(),
                        date: first.date.clone(),
                        commits: commits.len(),
                    },
                )
            }),
        )
    }
}

/// Whether the hash of a tree reads this entry's blob: a regular file within its size limit.
fn read_blob(e: &TreeEntry) -> bool {
    regular(&e.mode) && e.size.is_some_and(|s| s <= size_limit(&e.path))
}

/// The [`RuleFiles::hash`] of a tree's `entries` (sorted by path) as `rule_files_at` would
/// read them: `blob` feeds the hasher the bytes of each entry [`read_blob`] says to read, in
/// order; the others are refused, or empty files (a size git did not give).
fn hash_tree(
    entries: &[TreeEntry],
    blob: &mut dyn FnMut(&TreeEntry, &mut RuleFilesHasher) -> std::io::Result<()>,
) -> std::io::Result<String> {
    let mut h = RuleFilesHasher::default();
    let mut refused = BTreeMap::new();
    for e in entries {
        if !regular(&e.mode) {
            // As `rule_files_at` refuses them (`jobpoints diff --base` reads the same).
            let what = match &*e.mode {
                "120000" => "a symlink, not a regular file",
                "160000" => "a git submodule, not a regular file",
                _ => "not a regular file",
            };
            refused.insert(&*e.path, Refusal::NotConfined(what.to_string()));
            continue;
        }
        let limit = size_limit(&e.path);
        match e.size {
            Some(bytes) if bytes > limit => {
                refused.insert(&*e.path, Refusal::TooLarge { bytes, limit });
            }
            Some(_) => blob(e, &mut h)?,
            None => h.file(&e.path, 0),
        }
    }
    for (path, why) in refused {
        h.refused(path, &why);
    }
    Ok(h.finish())
}

fn regular(mode: &str) -> bool {
    mode == "100644" || mode == "100755"
}

fn read_cache(path: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    let mut lines = text.lines();
    if lines.next() != Some(INDEX_HEADER) {
        return HashMap::new();
    }
    lines
        .filter_map(|l| l.split_once(' '))
        .filter(|(t, h)| is_hex(t) && h.len() == 64 && is_hex(h))
        .map(|(t, h)| (t.to_string(), h.to_string()))
        .collect()
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Writes the cache whole, to a temporary file renamed over the old one, so a concurrent
/// reader never sees half of it.
fn write_cache(path: &Path, cache: &HashMap<String, String>) -> std::io::Result<()> {
    let mut rows: Vec<_> = cache.iter().collect();
    rows.sort();
    let mut text = String::with_capacity(rows.len() * 106 + 64);
    text.push_str(INDEX_HEADER);
    text.push('\n');
    for (t, h) in rows {
        text.push_str(t);
        text.push(' ');
        text.push_str(h);
        text.push('\n');
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Every place a rule set may be found, searched in order: the given rule sets (a directory,
/// the built-in rules), then the git history. Lookups are cached; the history is read on the
/// first hash not found otherwise.
pub struct RulesLibrary {
    given: Vec<(Arc<RuleSet>, Source)>,
    repo: Option<(PathBuf, String)>,
    history: Mutex<Option<Result<Arc<GitHistory>, Arc<str>>>>,
    found: Mutex<HashMap<String, Lookup>>,
}

impl RulesLibrary {
    /// `given`: rule sets already loaded, searched first. `repo`: a repository and the path of
    /// its rules (`rules`), whose history is searched for any other hash.
    pub fn new(given: Vec<(RuleSet, Source)>, repo: Option<(PathBuf, String)>) -> Self {
        RulesLibrary {
            given: given
                .into_iter()
                .map(|(rs, src)| (Arc::new(rs), src))
                .collect(),
            repo,
            history: Mutex::new(None),
            found: Mutex::new(HashMap::new()),
        }
    }

    /// The history, read once (an error is kept and reported for every lookup).
    pub fn history(&self) -> Option<Result<Arc<GitHistory>, Arc<str>>> {
        let (repo, path) = self.repo.as_ref()?;
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            h.get_or_insert_with(|| {
                GitHistory::open(repo, path)
                    .map(Arc::new)
                    .map_err(|e| Arc::from(e.to_string()))
            })
            .clone(),
        )
    }

    /// The rule set whose hash is `hash`.
    pub fn lookup(&self, hash: &str) -> Lookup {
        if let Some(l) = self.found_mut().get(hash) {
            return l.clone();
        }
        let l = self.search(hash);
        self.found_mut().insert(hash.to_string(), l.clone());
        l
    }

    fn found_mut(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lookup>> {
        self.found.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn search(&self, hash: &str) -> Lookup {
        for (rs, src) in &self.given {
            if &*rs.hash == hash {
                return Lookup::Found(Arc::new(Known {
                    rules: rs.clone(),
                    source: src.clone(),
                }));
            }
        }
        let searched = match &self.repo {
            None => "not the rules given (--rules, ./rules) nor the built-in rules; give --repo to search a repository's history".to_string(),
            Some((repo, path)) => format!(
                "not the rules given, the built-in rules, nor any commit of `{path}/` in `{}`",
                repo.display()
            ),
        };
        let history = match self.history() {
            None => return Lookup::Unknown(searched.into()),
            Some(Err(e)) => return Lookup::Unknown(format!("{searched}: {e}").into()),
            Some(Ok(h)) => h,
        };
        let (files, source) = match history.files(hash) {
            None => return Lookup::Unknown(searched.into()),
            Some(Err(e)) => return Lookup::Unknown(e.to_string().into()),
            Some(Ok(found)) => found,
        };
        let loaded = load(files);
        match loaded.ruleset {
            Some(rs) if &*rs.hash == hash => Lookup::Found(Arc::new(Known {
                rules: Arc::new(rs),
                source,
            })),
            Some(rs) => Lookup::Unknown(
                format!(
                    "{source} was indexed with this hash but reads as {} now",
                    rs.hash
                )
                .into(),
            ),
            None => {
                let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
                Lookup::Unknown(
                    format!(
                        "found in {source}, but this engine rejects those rules ({errors} errors; run `jobpoints check` on them)"
                    )
                    .into(),
                )
            }
        }
    }
}
