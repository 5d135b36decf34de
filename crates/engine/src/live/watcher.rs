//! Watching a rules directory: calls back once per burst of changes (debounced).
//!
//! What must be seen: editors that save by writing a temporary file and renaming it over the
//! original; files created, deleted and renamed anywhere below the directory; and the whole
//! directory swapped through a symlink, the way container platforms update mounted config
//! (`rules -> ..data/rules`, `..data` atomically re-pointed). A recursive watch alone misses
//! the last one (it follows the old inode), so the parent of the directory and of every
//! symlink on its path are watched too, and every watch is re-established after each burst,
//! so the watch follows wherever the path points now.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

/// How long a burst of file events must be quiet before it is reported.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// After a burst, how long no further event may arrive before the rules are read: a slow,
/// non-atomic copy (`cp -r`, rsync, a CI checkout writing file by file) pauses between files,
/// and reading in such a pause would see half a rule set.
pub const QUIET: Duration = Duration::from_millis(400);

/// The longest the watcher waits for quiet; a directory that never stops changing is read
/// anyway (validation still refuses a broken set).
pub const MAX_SETTLE: Duration = Duration::from_secs(10);

/// Whether events matter for the rules, and whether any touched the directory itself or a
/// symlink on its path (then the watches are re-pointed).
fn classify(result: &DebounceEventResult, watched: &Targets) -> (bool, bool) {
    match result {
        Ok(evs) => {
            let rel: Vec<_> = evs
                .iter()
                .filter(|e| relevant_kind(&e.kind))
                .filter(|e| e.paths.iter().any(|p| watched.matters(p)))
                .collect();
            for e in &rel {
                tracing::debug!(kind = ?e.kind, paths = ?e.paths, "rules file event");
            }
            let top = rel.iter().any(|e| {
                e.paths
                    .iter()
                    .any(|p| watched.names.contains(p) || Some(p) == watched.root.as_ref())
            });
            (!rel.is_empty(), top)
        }
        Err(errs) => {
            for e in errs {
                tracing::warn!(error = %e, "file watch error; reloading to be safe");
            }
            (true, true)
        }
    }
}

enum Msg {
    Events(DebounceEventResult),
    Stop,
}

/// A running watch; stops when dropped.
pub struct RulesWatcher {
    tx: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RulesWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesWatcher").finish_non_exhaustive()
    }
}

/// Error starting a watch.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch `{path}`: {source}")]
pub struct WatchError {
    pub path: PathBuf,
    #[source]
    pub source: notify::Error,
}

/// Whether an event kind can change what a reload reads. Reading the rules opens them, and
/// those `open` events must not trigger another reload.
fn relevant_kind(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// What to watch for one rules directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Targets {
    /// The directory's real path, watched recursively.
    root: Option<PathBuf>,
    /// Directories holding the rules directory or a symlink on the way to it, watched
    /// non-recursively.
    parents: BTreeSet<PathBuf>,
    /// The entries of `parents` that matter: the directory and each symlink. Other entries
    /// (a log file next to `rules/`) must not trigger reloads.
    names: BTreeSet<PathBuf>,
}

impl Targets {
    fn of(dir: &Path) -> Self {
        let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut links = BTreeSet::new();
        symlinks_on(&abs, &mut links, 0);
        links.insert(abs.clone());
        // The real directory too: replacing the symlink's target in place must be seen.
        let root = std::fs::canonicalize(&abs).ok();
        links.extend(root.clone());
        let mut parents = BTreeSet::new();
        let mut names = BTreeSet::new();
        for p in links {
            let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
                continue;
            };
            let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
            names.insert(parent.join(name));
            parents.insert(parent);
        }
        Targets {
            root,
            parents,
            names,
        }
    }

    fn matters(&self, path: &Path) -> bool {
        self.root.as_ref().is_some_and(|r| path.starts_with(r)) || self.names.contains(path)
    }
}

/// Every symlink met while resolving `path`, following link targets (a container mount is
/// `rules -> ..data/rules` with `..data -> ..2024_01_01`: both swaps must be seen).
fn symlinks_on(path: &Path, out: &mut BTreeSet<PathBuf>, depth: usize) {
    if depth > 16 {
        return;
    }
    let comps: Vec<_> = path.components().collect();
    let mut cur = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        if let Ok(target) = std::fs::read_link(&cur) {
            out.insert(cur.clone());
            let mut resolved = cur.parent().unwrap_or(Path::new("/")).join(target);
            for rest in &comps[i + 1..] {
                resolved.push(rest);
            }
            symlinks_on(&resolved, out, depth + 1);
            return;
        }
    }
}

type Debouncer = notify_debouncer_full::Debouncer<
    notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// Points the watches at `t`; the root must be watchable, parents are best effort.
fn watch_all(debouncer: &mut Debouncer, t: &Targets) -> Result<(), WatchError> {
    if let Some(root) = &t.root {
        debouncer
            .watch(root, RecursiveMode::Recursive)
            .map_err(|source| WatchError {
                path: root.clone(),
                source,
            })?;
    }
    for p in &t.parents {
        if let Err(e) = debouncer.watch(p, RecursiveMode::NonRecursive) {
            tracing::debug!(path = %p.display(), error = %e, "cannot watch parent directory");
        }
    }
    Ok(())
}

fn unwatch_all(debouncer: &mut Debouncer, t: &Targets) {
    // Errors are expected: a swapped-out directory may be gone already.
    if let Some(root) = &t.root {
        let _ = debouncer.unwatch(root);
    }
    for p in &t.parents {
        let _ = debouncer.unwatch(p);
    }
}

impl RulesWatcher {
    /// Watches `dir` and calls `on_change` (on a thread of its own) after each burst of
    /// changes. A burst that arrives while `on_change` runs calls it again afterwards.
    pub fn spawn(
        dir: &Path,
        mut on_change: impl FnMut() + Send + 'static,
    ) -> Result<Self, WatchError> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let events = tx.clone();
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |r: DebounceEventResult| {
            let _ = events.send(Msg::Events(r));
        })
        .map_err(|source| WatchError {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut watched = Targets::of(dir);
        if watched.root.is_none() {
            return Err(WatchError {
                path: dir.to_path_buf(),
                source: notify::Error::path_not_found(),
            });
        }
        watch_all(&mut debouncer, &watched)?;
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("rules-watcher".into())
            .spawn(move || {
                while let Ok(Msg::Events(result)) = rx.recv() {
                    let (relevant, mut at_top) = classify(&result, &watched);
                    let mut now = Targets::of(&dir);
                    let mut moved = now != watched;
                    if !(relevant || moved) {
                        continue;
                    }
                    // Wait until the tree is quiet: a slow, file-by-file copy of a rule set
                    // must be read whole, not half copied (#11). Each further change to the
                    // rules restarts the wait, up to `MAX_SETTLE` in all.
                    let settle_until = Instant::now() + MAX_SETTLE;
                    let mut quiet_until = Instant::now() + QUIET;
                    loop {
                        let wait = quiet_until
                            .min(settle_until)
                            .saturating_duration_since(Instant::now());
                        if wait.is_zero() {
                            break;
                        }
                        match rx.recv_timeout(wait) {
                            Ok(Msg::Events(more)) => {
                                let (changed, top) = classify(&more, &watched);
                                at_top |= top;
                                if changed {
                                    quiet_until = Instant::now() + QUIET;
                                }
                            }
                            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                                debouncer.stop();
                                return;
                            }
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                        }
                    }
                    now = Targets::of(&dir);
                    moved |= now != watched;
                    // Re-point the watches first (the path may lead somewhere new, or the
                    // directory was replaced), so a change made during the reload is seen.
                    if moved || at_top {
                        unwatch_all(&mut debouncer, &watched);
                        if let Err(e) = watch_all(&mut debouncer, &now) {
                            tracing::warn!("{e}");
                        }
                        watched = now;
                    }
                    // A panic in one reload must not end the watch: the next save retries.
                    let run = std::panic::AssertUnwindSafe(&mut on_change);
                    if std::panic::catch_unwind(run).is_err() {
                        tracing::error!(
                            "reloading the rules panicked; the last good rules stay active"
                        );
                    }
                }
                debouncer.stop();
            })
            .expect("spawn watcher thread");
        Ok(RulesWatcher {
            tx,
            thread: Some(thread),
        })
    }
}

impl Drop for RulesWatcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
