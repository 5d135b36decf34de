//! The files of a rule set, read from a directory or from the copy built into the binary.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

/// The repository's `rules/`, compiled in so the binary works from any directory.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/rules");

/// Where a rule set came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesOrigin {
    Directory(PathBuf),
    Embedded,
    /// `path` (e.g. `rules`) at git revision `rev`, as `jobpoints diff --base REV` reads it.
    Git {
        rev: String,
        path: String,
    },
}

impl fmt::Display for RulesOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesOrigin::Directory(p) => write!(f, "{}", p.display()),
            RulesOrigin::Embedded => f.write_str("<built-in rules>"),
            RulesOrigin::Git { rev, path } => write!(f, "{path}/ at {rev}"),
        }
    }
}

/// Error reading a rules directory.
#[derive(Debug, thiserror::Error)]
pub enum RulesDirError {
    #[error("rules directory `{path}` does not exist")]
    NotFound { path: PathBuf },
    #[error("`{path}` is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The `.toml` and `.rhai` files of a rule set, keyed by path relative to the rules root
/// with `/` separators. Other files (README.md, editor backups, hidden files) are not part
/// of the rule set and do not change its hash.
#[derive(Debug, Clone)]
pub struct RuleFiles {
    pub origin: RulesOrigin,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Whether a relative path belongs to the rule set.
pub fn is_rule_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let hidden = rel.split('/').any(|part| part.starts_with('.'));
    !hidden && (name.ends_with(".toml") || name.ends_with(".rhai"))
}

impl RuleFiles {
    /// Reads every rule file under `dir` (following symlinks, so a directory swapped through
    /// a symlink is read as a whole).
    pub fn from_dir(dir: &Path) -> Result<Self, RulesDirError> {
        let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RulesDirError::NotFound {
                path: dir.to_path_buf(),
            },
            _ => RulesDirError::Io {
                path: dir.to_path_buf(),
                source: e,
            },
        })?;
        if !meta.is_dir() {
            return Err(RulesDirError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let mut files = BTreeMap::new();
        collect(dir, "", &mut files, 0)?;
        Ok(RuleFiles {
            origin: RulesOrigin::Directory(dir.to_path_buf()),
            files,
        })
    }

    /// The rules built into the binary (the repository's `rules/` at build time).
    pub fn embedded() -> Self {
        let mut files = BTreeMap::new();
        collect_embedded(&EMBEDDED, &mut files);
        RuleFiles {
            origin: RulesOrigin::Embedded,
            files,
        }
    }

    /// `--rules DIR` if given; else `./rules` if it exists; else the built-in rules.
    pub fn locate(dir: Option<&Path>) -> Result<Self, RulesDirError> {
        match dir {
            Some(d) => RuleFiles::from_dir(d),
            None => {
                let local = Path::new("rules");
                if local.is_dir() {
                    RuleFiles::from_dir(local)
                } else {
                    Ok(RuleFiles::embedded())
                }
            }
        }
    }

    /// SHA-256 over every file's relative path and bytes, in path order: two rule sets with
    /// the same hash score every job the same.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for (path, bytes) in &self.files {
            h.update((path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        hex::encode(h.finalize())
    }

    /// The text of a file, if it exists and is UTF-8.
    pub fn text(&self, rel: &str) -> Option<&str> {
        self.files
            .get(rel)
            .and_then(|b| std::str::from_utf8(b).ok())
    }
}

// Symlink loops and absurd trees are cut off at this depth.
const MAX_DEPTH: usize = 16;

fn collect(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, Vec<u8>>,
    depth: usize,
) -> Result<(), RulesDirError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let io = |e, p: &Path| RulesDirError::Io {
        path: p.to_path_buf(),
        source: e,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| io(e, dir))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(e, dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let rel = format!("{prefix}{name}");
        // metadata() follows symlinks; a dangling one is skipped like an editor's lock file.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            collect(&path, &format!("{rel}/"), out, depth + 1)?;
        } else if is_rule_file(&rel) {
            let bytes = std::fs::read(&path).map_err(|e| io(e, &path))?;
            out.insert(rel, bytes);
        }
    }
    Ok(())
}

fn collect_embedded(dir: &Dir<'_>, out: &mut BTreeMap<String, Vec<u8>>) {
    for file in dir.files() {
        let rel = file.path().to_string_lossy().replace('\\', "/");
        if is_rule_file(&rel) {
            out.insert(rel, file.contents().to_vec());
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}
