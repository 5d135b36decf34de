//! The files of a rule set, read from a directory or from the copy built into the binary.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

pub use crate::engine::model::{Refusal, RuleFiles, RulesOrigin};
use crate::engine::tokens::MAX_TOKENIZER_FILE_BYTES;
use crate::rules::diagnostic::{Code, Diagnostic};

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

/// Reserved file names at the root of `rules/`.
pub const KINDS_FILE: &str = "kinds.toml";
pub const POLICY_FILE: &str = "policy.toml";
pub const CATALOG_FILE: &str = "catalog.toml";
/// Shared formulas live here as `NAME.rhai`.
pub const FORMULAS_DIR: &str = "formulas/";
/// Largest rules file that is parsed. The shipped rules are about 20 KB in all; a hostile
/// pull request with a giant file is refused before the TOML parser or rhai spends time on it.
pub const MAX_RULE_FILE_BYTES: usize = 1024 * 1024;

/// The folder of the rule files' JSON Schemas (`jobpoints schema`): kept beside the rules for
/// editors, but not part of the rule set, so regenerating them never changes its hash.
pub const SCHEMAS_DIR: &str = "schemas";

/// Whether a relative path belongs to the rule set: `*.toml` and `*.rhai` files, and
/// tokenizer models (`tokenizers/NAME.model`, see [`is_tokenizer_file`]).
pub fn is_rule_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let hidden = rel.split('/').any(|part| part.starts_with('.'));
    let schemas = rel.split('/').next() == Some(SCHEMAS_DIR);
    !hidden
        && !schemas
        && (name.ends_with(".toml") || name.ends_with(".rhai") || is_tokenizer_file(rel))
}

/// Where tokenizer model files live in a rule set.
pub const TOKENIZERS_DIR: &str = "tokenizers/";

/// Whether a relative path is a tokenizer model: `tokenizers/NAME.model`, directly in that
/// directory. These are binary, read with their own size limit ([`size_limit`]) and hashed like
/// every rule file; one is loaded only when a tokenizer of kinds.toml declares it and pins its
/// SHA-256.
pub fn is_tokenizer_file(rel: &str) -> bool {
    rel.strip_prefix(TOKENIZERS_DIR)
        .and_then(|name| name.strip_suffix(".model"))
        .is_some_and(|stem| !stem.is_empty() && !stem.contains('/') && !stem.starts_with('.'))
}

/// The largest a rule file may be: [`MAX_TOKENIZER_FILE_BYTES`] for a tokenizer model,
/// [`MAX_RULE_FILE_BYTES`] for any other.
pub fn size_limit(rel: &str) -> u64 {
    if is_tokenizer_file(rel) {
        MAX_TOKENIZER_FILE_BYTES as u64
    } else {
        MAX_RULE_FILE_BYTES as u64
    }
}

impl RuleFiles {
    /// Reads every rule file under `dir`. `dir` itself may be a symlink (a directory swapped
    /// through a link, a Kubernetes ConfigMap mount): it is resolved once, and the rule set is
    /// then the regular files found below that real directory, nothing else. An entry named
    /// like a rule file that is a FIFO, socket or device, a symlink that leads outside the
    /// directory, a second path to a directory already read (a loop), or a file over its
    /// [`size_limit`] is not read (so nothing can block, and no byte of it can reach
    /// a diagnostic or a report) and is listed in `refused`.
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
        let root = std::fs::canonicalize(dir).map_err(|e| RulesDirError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let mut walk = Walk {
            root: root.clone(),
            files: BTreeMap::new(),
            refused: BTreeMap::new(),
            open: vec![root.clone()],
            seen: BTreeSet::from([root.clone()]),
        };
        walk.dir(&root, "")?;
        Ok(RuleFiles {
            origin: RulesOrigin::Directory(dir.to_path_buf()),
            files: walk.files,
            refused: walk.refused,
        })
    }

    /// The rules built into the binary (the repository's `rules/` at build time).
    pub fn embedded() -> Self {
        let mut files = BTreeMap::new();
        collect_embedded(&EMBEDDED, &mut files);
        RuleFiles::new(RulesOrigin::Embedded, files)
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

/// Directories deeper than this are not read (no rule set needs more than two levels).
const MAX_DEPTH: usize = 16;

/// A walk of a rules directory.
struct Walk {
    /// The directory's real path: everything read must be below it.
    root: PathBuf,
    files: BTreeMap<String, Vec<u8>>,
    refused: BTreeMap<String, Refusal>,
    /// Real paths of the directories being read, outermost first (a link to one is a loop).
    open: Vec<PathBuf>,
    /// Real paths of every directory read (a second link to one would read it twice).
    seen: BTreeSet<PathBuf>,
}

impl Walk {
    fn io(path: &Path, source: std::io::Error) -> RulesDirError {
        RulesDirError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Reads the directory whose real path is `real`, shown as `prefix` (`""` or `"a/b/"`).
    fn dir(&mut self, real: &Path, prefix: &str) -> Result<(), RulesDirError> {
        let mut entries: Vec<_> = std::fs::read_dir(real)
            .map_err(|e| Self::io(real, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Self::io(real, e))?;
        // Sorted, so which of two paths to one directory counts as the second is stable.
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Hidden entries (editor files, `.git`, Kubernetes' `..data`) are not rules;
            // rule files may still link into them, as a ConfigMap mount does.
            if name.starts_with('.') {
                continue;
            }
            self.entry(&entry.path(), &format!("{prefix}{name}"))?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &str) -> Result<(), RulesDirError> {
        let link = std::fs::symlink_metadata(path).map_err(|e| Self::io(path, e))?;
        let is_link = link.file_type().is_symlink();
        // Where the entry really is. A dangling link is skipped like an editor's lock file;
        // a link that never resolves (`a -> a`) is a loop.
        let real = match std::fs::canonicalize(path) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(ELOOP) => {
                return self.refuse(rel, "a symlink loop (it never resolves)".into());
            }
            Err(_) if is_link => return Ok(()),
            Err(e) => return Err(Self::io(path, e)),
        };
        let meta = if is_link {
            match std::fs::metadata(&real) {
                Ok(m) => m,
                Err(_) => return Ok(()),
            }
        } else {
            link
        };
        let relevant = (meta.is_dir() && rel != SCHEMAS_DIR) || is_rule_file(rel);
        if !relevant {
            return Ok(());
        }
        if !real.starts_with(&self.root) {
            return self.refuse(
                rel,
                "a symlink to something outside the rules directory".into(),
            );
        }
        if meta.is_dir() {
            return self.subdir(&real, rel);
        }
        if !meta.is_file() {
            return self.refuse(
                rel,
                format!("a {}, not a regular file", kind_of(&meta.file_type())),
            );
        }
        self.file(&real, rel, meta.len())
    }

    fn subdir(&mut self, real: &Path, rel: &str) -> Result<(), RulesDirError> {
        if self.open.iter().any(|d| d == real) {
            return self.refuse(
                rel,
                "a symlink loop (it leads back to a directory that contains it)".into(),
            );
        }
        if !self.seen.insert(real.to_path_buf()) {
            return self.refuse(
                rel,
                "a second path to a directory already in the rule set".into(),
            );
        }
        if self.open.len() > MAX_DEPTH {
            return self.refuse(
                rel,
                format!("a directory nested more than {MAX_DEPTH} levels deep"),
            );
        }
        self.open.push(real.to_path_buf());
        let result = self.dir(real, &format!("{rel}/"));
        self.open.pop();
        result
    }

    /// Reads a regular file of `size` bytes (from metadata), at most the limit + 1 bytes of
    /// it, without blocking even if it was swapped for a FIFO since.
    fn file(&mut self, real: &Path, rel: &str, size: u64) -> Result<(), RulesDirError> {
        let limit = size_limit(rel);
        if size > limit {
            self.refused
                .insert(rel.to_string(), Refusal::TooLarge { bytes: size, limit });
            return Ok(());
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.custom_flags(O_NONBLOCK);
        }
        let file = opts.open(real).map_err(|e| Self::io(real, e))?;
        let meta = file.metadata().map_err(|e| Self::io(real, e))?;
        if !meta.is_file() {
            return self.refuse(rel, "not a regular file".into());
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Self::io(real, e))?;
        if bytes.len() as u64 > limit {
            // It grew while being read.
            self.refused.insert(
                rel.to_string(),
                Refusal::TooLarge {
                    bytes: bytes.len() as u64,
                    limit,
                },
            );
            return Ok(());
        }
        self.files.insert(rel.to_string(), bytes);
        Ok(())
    }

    fn refuse(&mut self, rel: &str, why: String) -> Result<(), RulesDirError> {
        self.refused
            .insert(rel.to_string(), Refusal::NotConfined(why));
        Ok(())
    }
}

/// `ELOOP` ("too many levels of symbolic links") on Linux and the BSDs.
#[cfg(target_os = "linux")]
const ELOOP: i32 = 40;
#[cfg(not(target_os = "linux"))]
const ELOOP: i32 = 62;

/// `O_NONBLOCK`: opening a FIFO must not wait for a writer.
#[cfg(target_os = "linux")]
pub(crate) const O_NONBLOCK: i32 = 0o4000;
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) const O_NONBLOCK: i32 = 0x4;

fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO (named pipe)";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    let _ = t;
    "special file"
}

/// One error per refused entry: its path and why, never its content.
pub fn refusals(files: &RuleFiles) -> Vec<Diagnostic> {
    files
        .refused
        .iter()
        .map(|(rel, why)| match why {
            Refusal::TooLarge { bytes, limit } => Diagnostic::error(
                Code::FileTooLarge,
                format!("file is {bytes} bytes, more than the limit of {limit}; it was not read"),
            )
            .with_help(if is_tokenizer_file(rel) {
                "tokenizer models have their own limit; a larger model cannot be part of a rule set"
            } else {
                "rule files are short; split the file or remove what it does not need"
            })
            .in_file(rel),
            Refusal::NotConfined(what) => Diagnostic::error(
                Code::RefusedFile,
                format!("refused: {what}; it was not read"),
            )
            .with_help(
                "a rule set is the regular files inside the rules directory: replace the entry \
                 with a regular file, or remove it",
            )
            .in_file(rel),
        })
        .collect()
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
