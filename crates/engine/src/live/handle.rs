//! Hot reload: a shared handle to the current rule set, swapped atomically on a valid reload.
//!
//! Readers take one snapshot ([`RulesHandle::current`]) and score against it, so a job (or a
//! batch) never sees half of one rule set and half of another, and every result carries the
//! hash of the set that priced it. A reload runs the same validation as `jobpoints check`; an
//! invalid edit keeps the last good set active and records why, since when, and which hash is
//! still serving, so a broken file never silently changes points. `serve` and `watch` both
//! reload through this handle, and a valid reload reports its changes in the model of
//! `jobpoints diff` ([`RuleSetChange`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use jiff::Timestamp;
use serde::Serialize;

use crate::audit::signing::{SignatureFile, TrustedKeys};
use crate::engine::model::RuleSet;
use crate::engine::time::utc_string;
use crate::review::changes::{FileChanges, RuleSetChange, diff_files, diff_rules_as_of};
use crate::rules::diagnostic::{Code, Diagnostic, render_human};
use crate::rules::files::{RuleFiles, RulesDirError, RulesOrigin};
use crate::rules::load::{Loaded, load};

/// Why the first load of a [`RulesHandle`] failed (there is no last good set to fall back to).
#[derive(thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Dir(#[from] RulesDirError),
    #[error("the rules in `{origin}` are not trusted: {why}")]
    Untrusted { origin: String, why: String },
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
            OpenError::Untrusted { origin, why } => f
                .debug_struct("Untrusted")
                .field("origin", origin)
                .field("why", why)
                .finish(),
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
    /// The hash that is still active; `None` only for a handle from [`RulesHandle::empty`]
    /// whose rules have never been valid.
    pub active_hash: Option<String>,
    /// Every diagnostic of the rejected set, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// The same diagnostics rendered for people, with source excerpts.
    #[serde(skip)]
    pub rendered: String,
    /// When the only errors are examples that do not pay what they say: the rejected rule
    /// set itself, complete, for `watch` to preview (never served).
    #[serde(skip)]
    pub preview: Option<Arc<RuleSet>>,
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
        /// The set it replaced; `None` on the first valid load of a [`RulesHandle::empty`].
        old: Option<Arc<RuleSet>>,
        new: Arc<RuleSet>,
        /// What changed, as `jobpoints diff` shows it (empty when `old` is `None`).
        changes: Vec<RuleSetChange>,
        /// Which rule files were added, removed or modified (empty when `old` is `None`).
        files: FileChanges,
        /// The new set's diagnostics: only warnings, since it loaded.
        diagnostics: Vec<Diagnostic>,
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
    /// `None` only while a [`RulesHandle::empty`] has never loaded valid rules.
    pub active_hash: Option<String>,
    pub loaded_at: String,
    /// The last rejected reload, until a later reload succeeds (or the files are restored).
    pub last_error: Option<ReloadFailure>,
    /// What the last successful reload changed, as `jobpoints diff` shows it.
    pub last_changes: Vec<RuleSetChange>,
    /// Which rule files the last successful reload added, removed or modified.
    pub last_files: FileChanges,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

/// A shared, atomically swappable rule set plus the state of its reloads.
pub struct RulesHandle {
    dir: Option<PathBuf>,
    /// Always `Some` except in a [`RulesHandle::empty`] before its first valid reload; never
    /// set back to `None`.
    current: ArcSwapOption<RuleSet>,
    status: Mutex<ReloadStatus>,
    /// Serialises reloads so two never interleave their read-validate-swap.
    reloading: Mutex<()>,
    /// With `--trusted-keys`: a set loads only when one of these keys signed it.
    trusted: Option<TrustedKeys>,
    /// The signature file of the last rejected attempt: a new signature for the same files
    /// is a new attempt, not the same failure again.
    rejected_signature: Mutex<Option<Option<SignatureFile>>>,
}

impl fmt::Debug for RulesHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RulesHandle")
            .field("dir", &self.dir)
            .field(
                "hash",
                &self.current.load().as_ref().map(|r| r.hash.clone()),
            )
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
        Self::open_trusted(files, None)
    }

    /// [`RulesHandle::open`], and with `trusted` keys every set it loads (this one and each
    /// reload) must be signed by one of them: an unsigned or wrongly signed set is refused
    /// like an invalid one (#25). Only a rules directory can carry a signature.
    pub fn open_trusted(files: RuleFiles, trusted: Option<TrustedKeys>) -> Result<Self, OpenError> {
        let dir = match &files.origin {
            RulesOrigin::Directory(d) => Some(d.clone()),
            // Built-in rules, a git revision and files sent in a request never change, so
            // there is nothing to watch.
            RulesOrigin::Embedded | RulesOrigin::Git { .. } | RulesOrigin::Sent(_) => None,
        };
        let loaded = load(files);
        match loaded.ruleset {
            Some(rs) => {
                if let Some(keys) = &trusted {
                    let origin = loaded.files.origin.to_string();
                    let checked = match &dir {
                        Some(d) => keys.check_dir(d, &rs.hash),
                        None => Err(crate::audit::signing::TrustError::Unsigned),
                    };
                    checked.map_err(|e| OpenError::Untrusted {
                        origin,
                        why: e.to_string(),
                    })?;
                }
                let mut handle = Self::new(dir, rs);
                handle.trusted = trusted;
                Ok(handle)
            }
            None => Err(OpenError::Invalid {
                origin: loaded.files.origin.to_string(),
                errors: loaded.diagnostics.iter().filter(|d| d.is_error()).count(),
                loaded: Box::new(loaded),
            }),
        }
    }

    /// Wraps an already loaded set; `dir` is where reloads read from.
    pub fn new(dir: Option<PathBuf>, rules: RuleSet) -> Self {
        let handle = Self::empty_at(dir);
        handle.status_mut().active_hash = Some(rules.hash.to_string());
        handle.current.store(Some(Arc::new(rules)));
        handle
    }

    /// A handle for `dir` with no rules yet, for an author's loop that must start even when
    /// the rules are broken: the first [`reload`](Self::reload) loads them (`Swapped` with no
    /// `old`, or `Rejected`), and from then on it keeps the last good set like any handle.
    /// Until a valid load, [`current`](Self::current) must not be called; use
    /// [`active`](Self::active).
    pub fn empty(dir: PathBuf) -> Self {
        Self::empty_at(Some(dir))
    }

    /// From now on, a set loads only when one of `trusted` signed it (see
    /// [`RulesHandle::open_trusted`]); for a handle from [`empty`](Self::empty).
    pub fn with_trusted_keys(mut self, trusted: Option<TrustedKeys>) -> Self {
        self.trusted = trusted;
        self
    }

    fn empty_at(dir: Option<PathBuf>) -> Self {
        let status = ReloadStatus {
            active_hash: None,
            loaded_at: now(),
            last_error: None,
            last_changes: Vec::new(),
            last_files: FileChanges::default(),
            reloads_ok: 0,
            reloads_failed: 0,
        };
        RulesHandle {
            dir,
            current: ArcSwapOption::empty(),
            status: Mutex::new(status),
            reloading: Mutex::new(()),
            trusted: None,
            rejected_signature: Mutex::new(None),
        }
    }

    /// The rules directory reloads read, if the rules came from one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// One consistent snapshot of the active set. Take it once per job or batch.
    ///
    /// # Panics
    /// On a handle from [`empty`](Self::empty) that has never loaded valid rules (a handle
    /// from [`open`](Self::open) or [`new`](Self::new) always has a set).
    pub fn current(&self) -> Arc<RuleSet> {
        self.active()
            .expect("a rules handle made with rules always has a set; `empty` ones use `active`")
    }

    /// The active set, or `None` while a handle from [`empty`](Self::empty) has never
    /// loaded valid rules.
    pub fn active(&self) -> Option<Arc<RuleSet>> {
        self.current.load_full()
    }

    /// The active set together with the reload state that describes it.
    pub fn snapshot(&self) -> (Arc<RuleSet>, ReloadStatus) {
        let st = self.status_mut();
        (self.current(), st.clone())
    }

    /// The reload state, for `/v1/rules` and metrics.
    pub fn status(&self) -> ReloadStatus {
        self.status_mut().clone()
    }

    fn status_mut(&self) -> std::sync::MutexGuard<'_, ReloadStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads and validates the whole directory; swaps only when the new set is valid.
    /// Built-in rules cannot change, so their reload is always `Unchanged`.
    ///
    /// A reload that panics (a bug, never bad rules) is a failed reload like any other: the
    /// last good rules stay active, and the status and metrics say it failed (#22).
    pub fn reload(&self) -> ReloadOutcome {
        self.reload_with(&load)
    }

    /// [`RulesHandle::reload`] with the loader given (tests give one that panics).
    fn reload_with(&self, load: &dyn Fn(RuleFiles) -> Loaded) -> ReloadOutcome {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.active();
        let attempted = Mutex::new(None);
        let run =
            std::panic::AssertUnwindSafe(|| self.reload_locked(old.clone(), load, &attempted));
        match std::panic::catch_unwind(run) {
            Ok(outcome) => outcome,
            Err(panic) => {
                let why = (panic.downcast_ref::<&str>().copied())
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("no message");
                let message = format!("reloading the rules panicked ({why}); this is a bug");
                let hash = attempted.into_inner().unwrap_or_else(|e| e.into_inner());
                self.reject(old.as_deref(), message.clone(), hash, Vec::new(), message)
            }
        }
    }

    /// The body of a reload, under the reload lock; notes the hash it tries in `attempted`.
    fn reload_locked(
        &self,
        old: Option<Arc<RuleSet>>,
        load: &dyn Fn(RuleFiles) -> Loaded,
        attempted: &Mutex<Option<String>>,
    ) -> ReloadOutcome {
        let Some(dir) = &self.dir else {
            return ReloadOutcome::Unchanged {
                // Without a directory the handle was made with rules (`open` or `new`).
                hash: old.map_or_else(|| Arc::from(""), |o| o.hash.clone()),
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
                return self.reject(old.as_deref(), message.clone(), None, Vec::new(), message);
            }
        };
        let hash = files.hash();
        *attempted.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash.clone());
        // With trusted keys, the signature is part of what is tried.
        let signature = self
            .trusted
            .as_ref()
            .map(|_| SignatureFile::read_from(dir).ok().flatten());
        let last_rejected = self.status().last_error.and_then(|e| e.rejected_hash);
        let same_signature = *self
            .rejected_signature
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            == Some(signature.clone().flatten());
        if last_rejected.as_deref() == Some(hash.as_str())
            && (self.trusted.is_none() || same_signature)
        {
            return ReloadOutcome::StillRejected { hash };
        }
        if let Some(old) = old.as_ref().filter(|o| *o.hash == *hash) {
            let recovered = self.status_mut().last_error.take().is_some();
            return ReloadOutcome::Unchanged {
                hash: old.hash.clone(),
                recovered,
            };
        }
        // Should this attempt fail, a later one with the same files and signature is the
        // same failure.
        *self
            .rejected_signature
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(signature.flatten());
        let loaded = load(files);
        let Some(new) = loaded.ruleset else {
            let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
            let f = &loaded.files;
            let rendered = render_human(&loaded.diagnostics, &|p| f.text(p).map(String::from));
            // Failing examples are checked on a fully built set: it can be previewed.
            let only_examples = (loaded.diagnostics.iter())
                .filter(|d| d.is_error())
                .all(|d| d.code == Code::ExampleFailed);
            let preview = loaded.partial.filter(|_| only_examples).map(Arc::new);
            return self.reject_with_preview(
                old.as_deref(),
                format!(
                    "the rules in `{}` are invalid ({errors} error{})",
                    dir.display(),
                    if errors == 1 { "" } else { "s" }
                ),
                Some(hash),
                loaded.diagnostics,
                rendered,
                preview,
            );
        };
        if let Some(keys) = &self.trusted
            && let Err(e) = keys.check_dir(dir, &new.hash)
        {
            let message = format!("the rules in `{}` are not trusted: {e}", dir.display());
            return self.reject(
                old.as_deref(),
                message.clone(),
                Some(hash),
                Vec::new(),
                message,
            );
        }
        let new = Arc::new(new);
        let (changes, files) = match &old {
            Some(o) => (
                diff_rules_as_of(o, &new, jiff::Timestamp::now()),
                diff_files(&o.files, &new.files),
            ),
            None => (Vec::new(), FileChanges::default()),
        };
        // Swap under the status lock, so `snapshot` never pairs a set with another's status.
        let mut st = self.status_mut();
        self.current.store(Some(new.clone()));
        let recovered = st.last_error.take().is_some();
        st.active_hash = Some(new.hash.to_string());
        st.loaded_at = now();
        st.last_changes = changes.clone();
        st.last_files = files.clone();
        st.reloads_ok += 1;
        ReloadOutcome::Swapped {
            old,
            new,
            changes,
            files,
            diagnostics: loaded.diagnostics,
            recovered,
        }
    }

    fn reject(
        &self,
        active: Option<&RuleSet>,
        message: String,
        rejected_hash: Option<String>,
        diagnostics: Vec<Diagnostic>,
        rendered: String,
    ) -> ReloadOutcome {
        self.reject_with_preview(active, message, rejected_hash, diagnostics, rendered, None)
    }

    fn reject_with_preview(
        &self,
        active: Option<&RuleSet>,
        message: String,
        rejected_hash: Option<String>,
        diagnostics: Vec<Diagnostic>,
        rendered: String,
        preview: Option<Arc<RuleSet>>,
    ) -> ReloadOutcome {
        let mut st = self.status_mut();
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
            active_hash: active.map(|a| a.hash.to_string()),
            diagnostics,
            rendered,
            preview,
        };
        st.last_error = Some(failure.clone());
        st.reloads_failed += 1;
        ReloadOutcome::Rejected(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::changes::{Entity, Op};

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
    fn a_reload_that_panics_is_a_failed_reload() {
        let tmp = copy_rules();
        let h = RulesHandle::open(RuleFiles::from_dir(tmp.path()).unwrap()).unwrap();
        let first = h.current().hash.clone();
        edit(tmp.path(), "families/sd15.toml", "Stable Diffusion", "SD");
        let ReloadOutcome::Rejected(f) = h.reload_with(&|_| panic!("a bug in the loader")) else {
            panic!("a panicking reload must be rejected")
        };
        assert!(f.message.contains("a bug in the loader"), "{}", f.message);
        let st = h.status();
        assert_eq!(st.reloads_failed, 1);
        assert!(
            st.last_error.is_some(),
            "the status says the reload is failing"
        );
        assert_eq!(h.current().hash, first, "the old set is still active");
        // The same files are not retried; a fix (here: the loader working again) recovers.
        assert!(matches!(h.reload(), ReloadOutcome::StillRejected { .. }));
        edit(tmp.path(), "families/sd15.toml", "SD", "Stable Diffusion");
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
        assert_eq!(f.active_hash.as_deref(), Some(&*first));
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
            old,
            changes,
            files,
            recovered,
            ..
        } = h.reload()
        else {
            panic!("a valid edit must be swapped in")
        };
        assert!(recovered);
        assert_eq!(old.map(|o| o.hash.clone()), Some(first.clone()));
        // The field-level change of `jobpoints diff`, flagged because it rewrites a version.
        let summaries: Vec<String> = changes.iter().map(RuleSetChange::summary).collect();
        assert_eq!(
            summaries,
            [
                "~ rule `sd15` version 2: multiplier 0.3 → 0.6",
                // The examples edited with it are changes of their own.
                "~ rule `sd15` version 2 example (width=512, height=512, steps=20): expects 0.300000 points → 0.600000 points",
                "~ rule `sd15` version 2 example (width=1024, height=1024, steps=20): expects 1.800000 points → 3.600000 points",
            ],
            "{changes:?}"
        );
        assert!(
            changes[0]
                .flag
                .as_deref()
                .is_some_and(|f| f.contains("re-priced")),
            "{changes:?}"
        );
        assert_eq!(files.modified, ["families/sd15.toml"]);
        assert_eq!(h.status().last_changes, changes);
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
    fn a_swap_reports_the_changes_of_jobpoints_diff() {
        let tmp = copy_rules();
        let h = RulesHandle::open(RuleFiles::from_dir(tmp.path()).unwrap()).unwrap();
        let theia = "models/theia-llama-3.1-8b.toml";
        let text = std::fs::read(tmp.path().join(theia)).unwrap();
        std::fs::remove_file(tmp.path().join(theia)).unwrap();
        let ReloadOutcome::Swapped { changes, files, .. } = h.reload() else {
            panic!("removing a model rule leaves a valid set")
        };
        let removed = changes
            .iter()
            .find(|c| c.subject == "model rule `theia-llama-3.1-8b`")
            .unwrap_or_else(|| panic!("{changes:?}"));
        assert_eq!((removed.entity, removed.op), (Entity::Rule, Op::Removed));
        assert!(removed.flag.is_some(), "removing a rule rewrites history");
        assert_eq!(files.removed, [theia]);

        std::fs::write(tmp.path().join(theia), &text).unwrap();
        let ReloadOutcome::Swapped { changes, files, .. } = h.reload() else {
            panic!("restoring the file is valid")
        };
        assert!(
            changes
                .iter()
                .any(|c| c.subject == "model rule `theia-llama-3.1-8b`"
                    && (c.entity, c.op) == (Entity::Rule, Op::Added)),
            "{changes:?}"
        );
        assert_eq!(files.added, [theia]);

        // A comment changes the hash but no rule: no rule-level change, one modified file.
        let mut commented = text.clone();
        commented.extend_from_slice(b"\n# reviewed\n");
        std::fs::write(tmp.path().join(theia), commented).unwrap();
        let ReloadOutcome::Swapped { changes, files, .. } = h.reload() else {
            panic!("a comment is valid")
        };
        assert_eq!(changes, []);
        assert_eq!(files.modified, [theia]);
        assert_eq!(h.status().last_files, files);
    }

    #[test]
    fn an_empty_handle_waits_for_the_first_valid_rules() {
        let tmp = copy_rules();
        edit(
            tmp.path(),
            "families/sd15.toml",
            "multiplier = 0.3",
            "multiplier = [",
        );
        let h = RulesHandle::empty(tmp.path().to_path_buf());
        assert!(h.active().is_none());
        let ReloadOutcome::Rejected(f) = h.reload() else {
            panic!("broken rules at start must be rejected")
        };
        assert_eq!(f.active_hash, None, "nothing is active yet");
        assert!(f.rendered.contains("families/sd15.toml"), "{}", f.rendered);
        assert!(h.active().is_none());
        // The same bytes again are not a new failure.
        assert!(matches!(h.reload(), ReloadOutcome::StillRejected { .. }));

        edit(
            tmp.path(),
            "families/sd15.toml",
            "multiplier = [",
            "multiplier = 0.3",
        );
        let ReloadOutcome::Swapped {
            old,
            new,
            changes,
            files,
            recovered,
            ..
        } = h.reload()
        else {
            panic!("the fixed rules must be loaded")
        };
        assert!(old.is_none(), "there was nothing before");
        assert!(recovered);
        assert_eq!((changes, files), (Vec::new(), FileChanges::default()));
        assert_eq!(h.current().hash, new.hash);
        assert_eq!(h.status().active_hash.as_deref(), Some(&*new.hash));
        // From now on it keeps the last good set like any handle.
        assert!(matches!(
            h.reload(),
            ReloadOutcome::Unchanged {
                recovered: false,
                ..
            }
        ));
        edit(
            tmp.path(),
            "families/sd15.toml",
            "multiplier = 0.3",
            "multiplier = [",
        );
        let ReloadOutcome::Rejected(f) = h.reload() else {
            panic!("a broken save must be rejected")
        };
        assert_eq!(f.active_hash.as_deref(), Some(&*new.hash));
        assert_eq!(h.current().hash, new.hash);
    }
}
