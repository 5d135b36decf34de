//! The files of a rule set, read from a directory or from the copy built into the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

pub use crate::engine::model::{RuleFiles, RulesOrigin};

/// The repository's `rules/`, compiled in so the binary works from any directory.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/rules");

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
