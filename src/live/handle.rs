//! Hot reload: a shared handle to the current rule set, swapped atomically on a valid reload.
//!
//! Readers take one snapshot ([`RulesHandle::current`]) and score against it, so a job (or a
//! batch) never sees half of one rule set and half of another, and every result carries the
//! hash of the set that priced it. A reload runs the same validation as `jobpoints check`; an
//! invalid edit keeps the last good set active and records why, since when, and which hash is
//! still serving, so a broken file never silently changes points.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use jiff::Timestamp;
use serde::Serialize;

use crate::engine::model::{Pricing, Rule, RuleSet, RuleVersion};
use crate::engine::time::utc_string;
use crate::rules::diagnostic::{Diagnostic, render_human};
use crate::rules::files::{RuleFiles, RulesDirError, RulesOrigin};
use crate::rules::load::{Loaded, load};

/// Why the first load of a [`RulesHandle`] failed (there is no last good set to fall back to).
#[derive(thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Dir(#[from] RulesDirError),
    #[error("the rules in `{origin}` are invalid ({errors} errors)")]
    Invalid {
        origin: String,
        errors: usize,
        /// The failed load, for rendering its diagnostics.
        loaded: Box<Loaded>,
    },
}

impl fmt::Debug for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Dir(e) => f.debug_tuple("Dir").field(e).finish(),
            OpenError::Invalid { origin, errors, .. } => f
                .debug_struct("Invalid")
                .field("origin", origin)
                .field("errors", errors)
                .finish_non_exhaustive(),
        }
    }
}

/// A reload that was rejected: the previous rule set stays active.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadFailure {
    /// One line: what failed.
    pub message: String,
    /// When the rules first became invalid (unchanged by further failing attempts).
    pub since: String,
    /// The latest failing attempt.
    pub failed_at: String,
    /// Hash of the files that were rejected, when they could be read.
    pub rejected_hash: Option<String>,
    /// The hash that is still active.
    pub active_hash: String,
    /// Every diagnostic of the rejected set, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// The same diagnostics rendered for people, with source excerpts.
    #[serde(skip)]
    pub rendered: String,
}

/// What a reload did.
#[derive(Debug, Clone)]
pub enum ReloadOutcome {
    /// The files hash the same as the active set (an editor touched a file, or a save
    /// without changes): nothing to do. Clears a pending failure, since the active set is
    /// again what is on disk.
    Unchanged { hash: Arc<str>, recovered: bool },
    /// A valid new set is active.
    Swapped {
        old: Arc<RuleSet>,
        new: Arc<RuleSet>,
        changes: Vec<RuleChange>,
        recovered: bool,
    },
    /// The new files are invalid or unreadable; the previous set stays active.
    Rejected(ReloadFailure),
    /// The files are byte for byte the ones last rejected (a temporary file came and went),
    /// or the directory is still unreadable the same way: the failure stands and is not
    /// counted again. `hash` is empty when the files could not be read.
    StillRejected { hash: String },
}

/// Where the active set came from and whether the files on disk match it.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    pub active_hash: String,
    pub loaded_at: String,
    /// The last rejected reload, until a later reload succeeds (or the files are restored).
    pub last_error: Option<ReloadFailure>,
    /// What the last successful reload changed.
    pub last_changes: Vec<RuleChange>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

/// A shared, atomically swappable rule set plus the state of its reloads.
pub struct RulesHandle {
    dir: Option<PathBuf>,
    current: ArcSwap<RuleSet>,
    status: Mutex<ReloadStatus>,
    /// Serialises reloads so two never interleave their read-validate-swap.
    reloading: Mutex<()>,
}

impl fmt::Debug for RulesHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RulesHandle")
            .field("dir", &self.dir)
            .field("hash", &self.current.load().hash)
            .finish()
    }
}

fn now() -> String {
    utc_string(Timestamp::now())
}

impl RulesHandle {
    /// Loads `files`; fails when they are invalid, since there is nothing to fall back to.
    /// Only a directory origin can be reloaded.
    pub fn open(files: RuleFiles) -> Result<Self, OpenError> {
        let dir = match &files.origin {
            RulesOrigin::Directory(d) => Some(d.clone()),
            // Built-in rules and a git revision never change, so there is nothing to watch.
            RulesOrigin::Embedded | RulesOrigin::Git { .. } => None,
        };
        let loaded = load(files);
        match loaded.ruleset {
            Some(rs) => Ok(Self::new(dir, rs)),
            None => Err(OpenError::Invalid {
                origin: loaded.files.origin.to_string(),
                errors: loaded.diagnostics.iter().filter(|d| d.is_error()).count(),
                loaded: Box::new(loaded),
            }),
        }
    }

    /// Wraps an already loaded set; `dir` is where reloads read from.
    pub fn new(dir: Option<PathBuf>, rules: RuleSet) -> Self {
        let status = ReloadStatus {
            active_hash: rules.hash.to_string(),
            loaded_at: now(),
            last_error: None,
            last_changes: Vec::new(),
            reloads_ok: 0,
            reloads_failed: 0,
        };
        RulesHandle {
            dir,
            current: ArcSwap::from_pointee(rules),
            status: Mutex::new(status),
            reloading: Mutex::new(()),
        }
    }

    /// The rules directory reloads read, if the rules came from one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// One consistent snapshot of the active set. Take it once per job or batch.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// The active set together with the reload state that describes it.
    pub fn snapshot(&self) -> (Arc<RuleSet>, ReloadStatus) {
        let st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        (self.current(), st.clone())
    }

    /// The reload state, for `/v1/rules` and metrics.
    pub fn status(&self) -> ReloadStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads and validates the whole directory; swaps only when the new set is valid.
    /// Built-in rules cannot change, so their reload is always `Unchanged`.
    pub fn reload(&self) -> ReloadOutcome {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current();
        let Some(dir) = &self.dir else {
            return ReloadOutcome::Unchanged {
                hash: old.hash.clone(),
                recovered: false,
            };
        };
        let files = match RuleFiles::from_dir(dir) {
            Ok(f) => f,
            Err(e) => {
                let message = e.to_string();
                let last = self.status().last_error;
                if last.is_some_and(|l| l.rejected_hash.is_none() && l.message == message) {
                    return ReloadOutcome::StillRejected {
                        hash: String::new(),
                    };
                }
                return self.reject(&old, message.clone(), None, Vec::new(), message);
            }
        };
        let hash = files.hash();
        let last_rejected = self.status().last_error.and_then(|e| e.rejected_hash);
        if last_rejected.as_deref() == Some(hash.as_str()) {
            return ReloadOutcome::StillRejected { hash };
        }
        if *hash == *old.hash {
            let recovered = self.clear_error();
            return ReloadOutcome::Unchanged {
                hash: old.hash.clone(),
                recovered,
            };
        }
        let loaded = load(files);
        let Some(new) = loaded.ruleset else {
            let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
            let f = &loaded.files;
            let rendered = render_human(&loaded.diagnostics, &|p| f.text(p).map(String::from));
            return self.reject(
                &old,
                format!(
                    "the rules in `{}` are invalid ({errors} error{})",
                    dir.display(),
                    if errors == 1 { "" } else { "s" }
                ),
                Some(hash),
                loaded.diagnostics,
                rendered,
            );
        };
        let new = Arc::new(new);
        let changes = changes(&old, &new);
        // Swap under the status lock, so `snapshot` never pairs a set with another's status.
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        self.current.store(new.clone());
        let recovered = st.last_error.take().is_some();
        st.active_hash = new.hash.to_string();
        st.loaded_at = now();
        st.last_changes = changes.clone();
        st.reloads_ok += 1;
        ReloadOutcome::Swapped {
            old,
            new,
            changes,
            recovered,
        }
    }

    fn clear_error(&self) -> bool {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        st.last_error.take().is_some()
    }

    fn reject(
        &self,
        active: &RuleSet,
        message: String,
        rejected_hash: Option<String>,
        diagnostics: Vec<Diagnostic>,
        rendered: String,
    ) -> ReloadOutcome {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let at = now();
        let since = st
            .last_error
            .as_ref()
            .map_or_else(|| at.clone(), |e| e.since.clone());
        let failure = ReloadFailure {
            message,
            since,
            failed_at: at,
            rejected_hash,
            active_hash: active.hash.to_string(),
            diagnostics,
            rendered,
        };
        st.last_error = Some(failure.clone());
        st.reloads_failed += 1;
        ReloadOutcome::Rejected(failure)
    }
}

/// One difference between two rule sets, as logged on a reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RuleChange {
    RuleAdded {
        rule: String,
        versions: Vec<i64>,
    },
    RuleRemoved {
        rule: String,
    },
    VersionAdded {
        rule: String,
        version: i64,
    },
    VersionRemoved {
        rule: String,
        version: i64,
    },
    /// Same version number, different date, pricing or no-rule reason.
    VersionChanged {
        rule: String,
        version: i64,
    },
    ModelAdded {
        model: String,
        family: String,
    },
    ModelRemoved {
        model: String,
    },
    ModelMoved {
        model: String,
        from: String,
        to: String,
    },
    /// Files that changed without changing any rule version or catalog entry (kinds,
    /// policy, examples, notes).
    OtherFiles {
        files: Vec<String>,
    },
}

impl fmt::Display for RuleChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleChange::RuleAdded { rule, versions } => {
                let v: Vec<String> = versions.iter().map(i64::to_string).collect();
                write!(f, "rule `{rule}` added (versions {})", v.join(", "))
            }
            RuleChange::RuleRemoved { rule } => write!(f, "rule `{rule}` removed"),
            RuleChange::VersionAdded { rule, version } => {
                write!(f, "rule `{rule}`: version {version} added")
            }
            RuleChange::VersionRemoved { rule, version } => {
                write!(f, "rule `{rule}`: version {version} removed")
            }
            RuleChange::VersionChanged { rule, version } => {
                write!(f, "rule `{rule}`: version {version} changed")
            }
            RuleChange::ModelAdded { model, family } => {
                write!(f, "model `{model}` added to family `{family}`")
            }
            RuleChange::ModelRemoved { model } => write!(f, "model `{model}` removed"),
            RuleChange::ModelMoved { model, from, to } => {
                write!(f, "model `{model}` moved from family `{from}` to `{to}`")
            }
            RuleChange::OtherFiles { files } => {
                write!(
                    f,
                    "no rule version changed; files changed: {}",
                    files.join(", ")
                )
            }
        }
    }
}

/// What identifies a version's behaviour: a change to any of it changes points.
fn fingerprint(rule: &Rule, v: &RuleVersion) -> String {
    let pricing = match &v.pricing {
        Pricing::NoRule { reason } => format!("no_rule:{reason}"),
        Pricing::Priced {
            formula,
            multiplier,
            thresholds,
        } => {
            let t: Vec<String> = thresholds
                .iter()
                .map(|t| format!("{}>={}", t.name, t.min))
                .collect();
            format!("{}|{multiplier}|{}", formula.source, t.join(","))
        }
    };
    format!(
        "{}|{}|{}|{pricing}",
        rule.kind, rule.family, v.effective_from
    )
}

fn versions_of(rs: &RuleSet) -> BTreeMap<String, BTreeMap<i64, String>> {
    rs.rules()
        .map(|r| {
            let key = match r.scope {
                crate::engine::model::RuleScope::Family => r.id.clone(),
                crate::engine::model::RuleScope::Model => format!("model:{}", r.id),
            };
            let vs = r
                .versions
                .iter()
                .map(|v| (v.version, fingerprint(r, v)))
                .collect();
            (key, vs)
        })
        .collect()
}

/// The rule versions and catalog models that differ between `old` and `new`.
pub fn changes(old: &RuleSet, new: &RuleSet) -> Vec<RuleChange> {
    let mut out = Vec::new();
    let (a, b) = (versions_of(old), versions_of(new));
    let name = |k: &str| k.strip_prefix("model:").unwrap_or(k).to_string();
    for (rule, va) in &a {
        match b.get(rule) {
            None => out.push(RuleChange::RuleRemoved { rule: name(rule) }),
            Some(vb) => {
                for (v, fa) in va {
                    match vb.get(v) {
                        None => out.push(RuleChange::VersionRemoved {
                            rule: name(rule),
                            version: *v,
                        }),
                        Some(fb) if fb != fa => out.push(RuleChange::VersionChanged {
                            rule: name(rule),
                            version: *v,
                        }),
                        Some(_) => {}
                    }
                }
                for v in vb.keys().filter(|v| !va.contains_key(v)) {
                    out.push(RuleChange::VersionAdded {
                        rule: name(rule),
                        version: *v,
                    });
                }
            }
        }
    }
    for (rule, vb) in b.iter().filter(|(r, _)| !a.contains_key(*r)) {
        out.push(RuleChange::RuleAdded {
            rule: name(rule),
            versions: vb.keys().copied().collect(),
        });
    }
    for (model, e) in &old.catalog {
        match new.catalog.get(model) {
            None => out.push(RuleChange::ModelRemoved {
                model: model.clone(),
            }),
            Some(n) if n.family != e.family => out.push(RuleChange::ModelMoved {
                model: model.clone(),
                from: e.family.clone(),
                to: n.family.clone(),
            }),
            Some(_) => {}
        }
    }
    for (model, e) in new.catalog.iter() {
        if !old.catalog.contains_key(model) {
            out.push(RuleChange::ModelAdded {
                model: model.clone(),
                family: e.family.clone(),
            });
        }
    }
    if out.is_empty() {
        let (fa, fb) = (&old.files.files, &new.files.files);
        let files: Vec<String> = fa
            .keys()
            .chain(fb.keys())
            .filter(|k| fa.get(*k) != fb.get(*k))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !files.is_empty() {
            out.push(RuleChange::OtherFiles { files });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_rules() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let src =
            RuleFiles::from_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
        for (rel, bytes) in &src.files {
            let p = tmp.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        tmp
    }

    fn edit(dir: &Path, rel: &str, from: &str, to: &str) {
        let p = dir.join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "`{from}` not in {rel}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    }

    #[test]
    fn a_bad_edit_keeps_the_old_set_and_a_fix_recovers() {
        let tmp = copy_rules();
        let h = RulesHandle::open(RuleFiles::from_dir(tmp.path()).unwrap()).unwrap();
        let first = h.current().hash.clone();
        assert!(matches!(h.reload(), ReloadOutcome::Unchanged { .. }));

        edit(
            tmp.path(),
            "families/sd15.toml",
            "multiplier = 0.3",
            "multiplier = [",
        );
        let ReloadOutcome::Rejected(f) = h.reload() else {
            panic!("a syntax error must be rejected")
        };
        assert_eq!(f.active_hash, *first);
        assert!(
            f.diagnostics
                .iter()
                .any(|d| d.code.as_str() == "toml-syntax")
        );
        assert_eq!(h.current().hash, first, "the old set is still active");
        let since = h.status().last_error.unwrap().since;

        // A second, different failure keeps `since`.
        edit(
            tmp.path(),
            "families/sd15.toml",
            "multiplier = [",
            "multiplier = 0.3\nbogus = 1",
        );
        assert!(matches!(h.reload(), ReloadOutcome::Rejected(_)));
        assert_eq!(h.status().last_error.unwrap().since, since);
        // The same broken bytes again are not a new failure.
        assert!(matches!(h.reload(), ReloadOutcome::StillRejected { .. }));

        edit(
            tmp.path(),
            "families/sd15.toml",
            "multiplier = 0.3\nbogus = 1",
            "multiplier = 0.6",
        );
        edit(
            tmp.path(),
            "families/sd15.toml",
            "{ width = 512, height = 512, steps = 20, points = 0.3 }",
            "{ width = 512, height = 512, steps = 20, points = 0.6 }",
        );
        edit(
            tmp.path(),
            "families/sd15.toml",
            "{ width = 1024, height = 1024, steps = 20, points = 1.8 }",
            "{ width = 1024, height = 1024, steps = 20, points = 3.6 }",
        );
        let ReloadOutcome::Swapped {
            changes, recovered, ..
        } = h.reload()
        else {
            panic!("a valid edit must be swapped in")
        };
        assert!(recovered);
        assert_eq!(
            changes,
            vec![RuleChange::VersionChanged {
                rule: "sd15".into(),
                version: 2
            }]
        );
        assert_ne!(h.current().hash, first);
        let st = h.status();
        assert!(st.last_error.is_none());
        assert_eq!((st.reloads_ok, st.reloads_failed), (1, 2));
    }

    #[test]
    fn a_vanished_directory_keeps_the_old_set() {
        let tmp = copy_rules();
        let h = RulesHandle::open(RuleFiles::from_dir(tmp.path()).unwrap()).unwrap();
        let first = h.current().hash.clone();
        let moved = tmp.path().with_extension("gone");
        std::fs::rename(tmp.path(), &moved).unwrap();
        let outcome = h.reload();
        std::fs::rename(&moved, tmp.path()).unwrap();
        let ReloadOutcome::Rejected(f) = outcome else {
            panic!("a missing directory must be rejected")
        };
        assert!(f.message.contains("does not exist"), "{}", f.message);
        assert_eq!(f.rejected_hash, None);
        assert_eq!(h.current().hash, first);
        std::fs::rename(tmp.path(), &moved).unwrap();
        let again = h.reload();
        std::fs::rename(&moved, tmp.path()).unwrap();
        assert!(matches!(again, ReloadOutcome::StillRejected { .. }));
        assert_eq!(h.status().reloads_failed, 1, "the same failure counts once");
        // Back in place: the same files as the active set, so the error clears.
        assert!(matches!(
            h.reload(),
            ReloadOutcome::Unchanged {
                recovered: true,
                ..
            }
        ));
        assert!(h.status().last_error.is_none());
    }

    #[test]
    fn changes_name_added_and_removed_rules_and_models() {
        let tmp = copy_rules();
        let old = load(RuleFiles::from_dir(tmp.path()).unwrap())
            .ruleset
            .unwrap();
        std::fs::remove_file(tmp.path().join("models/theia-llama-3.1-8b.toml")).unwrap();
        let new = load(RuleFiles::from_dir(tmp.path()).unwrap());
        let new = new
            .ruleset
            .expect("removing a model rule leaves a valid set");
        let c = changes(&old, &new);
        assert!(
            c.iter().any(
                |c| matches!(c, RuleChange::RuleRemoved { rule } if rule == "theia-llama-3.1-8b")
            ),
            "{c:?}"
        );
        let back = changes(&new, &old);
        assert!(
            back.iter().any(
                |c| matches!(c, RuleChange::RuleAdded { rule, .. } if rule == "theia-llama-3.1-8b")
            ),
            "{back:?}"
        );
    }
}
