//! The catalog as the network had it over time: each model's windows (when it was listed, and
//! in which family), and aliases (another name a job may carry for a model, inside a window).
//! Every bound the network's catalog history gave names the catalog version and commit it
//! comes from, so `--explain`, `models` and `diff` can show it.

use std::ops::Range;

use jiff::Timestamp;
use serde::Serialize;

use super::time::{day_or_time, utc_string};

/// A version of the network's catalog (`models.json` at one commit), as `[versions]` of
/// catalog.toml records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogVersion {
    /// Its number in the history, `001` for the first (`[versions]` key).
    pub number: String,
    /// The full commit id.
    pub commit: String,
    /// The commit time, UTC.
    #[serde(serialize_with = "serialize_time")]
    pub at: Timestamp,
    /// The commit's subject line, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl CatalogVersion {
    /// `catalog 012, commit e0facfc126`.
    pub fn label(&self) -> String {
        let short = self.commit.get(..10).unwrap_or(&self.commit);
        format!("catalog {}, commit {short}", self.number)
    }
}

fn serialize_time<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&utc_string(*t))
}

fn serialize_opt_time<S: serde::Serializer>(
    t: &Option<Timestamp>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&utc_string(*t)),
        None => s.serialize_none(),
    }
}

/// A time range `[since, until)`, each bound optional (unbounded), with the catalog version
/// that set it when it came from the catalog's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dated {
    #[serde(serialize_with = "serialize_opt_time")]
    pub since: Option<Timestamp>,
    #[serde(serialize_with = "serialize_opt_time")]
    pub until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_catalog: Option<CatalogVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_catalog: Option<CatalogVersion>,
}

impl Dated {
    /// Whether `at` is inside (`None`: the latest, which is inside unless there is an end).
    pub fn contains(&self, at: Option<Timestamp>) -> bool {
        match at {
            None => self.until.is_none(),
            Some(t) => self.since.is_none_or(|s| s <= t) && self.until.is_none_or(|u| t < u),
        }
    }

    /// Whether the two ranges share an instant.
    pub fn overlaps(&self, o: &Dated) -> bool {
        let starts_before_end = |a: Option<Timestamp>, end: Option<Timestamp>| match (a, end) {
            (Some(a), Some(e)) => a < e,
            _ => true,
        };
        starts_before_end(self.since, o.until) && starts_before_end(o.since, self.until)
    }

    /// `from 2024-04-24T03:08:19Z (catalog 014, commit 2e6665a1ee) until 2025-01-28T04:20:36Z
    /// (catalog 047, commit 92dd19b6be)`, `always` without bounds.
    pub fn text(&self) -> String {
        let bound = |word: &str, t: Option<Timestamp>, v: &Option<CatalogVersion>| {
            t.map(|t| match v {
                Some(v) => format!("{word} {} ({})", day_or_time(t), v.label()),
                None => format!("{word} {}", day_or_time(t)),
            })
        };
        let parts: Vec<String> = [
            bound("from", self.since, &self.since_catalog),
            bound("until", self.until, &self.until_catalog),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            "always".to_string()
        } else {
            parts.join(" ")
        }
    }

    /// The bounds, for cutting time into segments where nothing changes.
    pub fn bounds(&self) -> impl Iterator<Item = Timestamp> {
        self.since.into_iter().chain(self.until)
    }
}

/// The item of `sorted` (in time order, never overlapping, as the loader keeps windows and
/// aliases) in force at `at` (`None`: the last, when it is open), by binary search: a name
/// may have many windows, and this runs for every resolution.
pub fn in_force<T>(sorted: &[T], at: Option<Timestamp>, when: impl Fn(&T) -> &Dated) -> Option<&T> {
    let candidate = match at {
        None => sorted.last(),
        Some(t) => {
            let after = sorted.partition_point(|x| when(x).since.is_none_or(|s| s <= t));
            after.checked_sub(1).map(|i| &sorted[i])
        }
    };
    candidate.filter(|x| when(x).contains(at))
}

/// The items of `sorted` (in time order, never overlapping) that share an instant with
/// `range`, found by binary search: they are contiguous.
pub fn overlapping<'a, T>(
    sorted: &'a [T],
    range: &Dated,
    when: impl Fn(&T) -> &Dated,
) -> impl Iterator<Item = &'a T> {
    // Items that end at or before `range` starts cannot overlap it; they come first.
    let first = sorted.partition_point(|x| match (when(x).until, range.since) {
        (Some(u), Some(s)) => u <= s,
        _ => false,
    });
    let range = range.clone();
    sorted[first..]
        .iter()
        .take_while(move |x| when(x).overlaps(&range))
}

/// One window of a model in the catalog: when it was listed, in which family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogWindow {
    pub family: String,
    pub when: Dated,
    /// The file that declared it (`catalog.toml` or a model rule file).
    pub file: String,
    /// Byte range of the declaration in `file`.
    pub span: Range<usize>,
}

/// A model name the network uses: its windows, in time order, never overlapping. Outside
/// them its jobs get `no_rule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub windows: Vec<CatalogWindow>,
}

impl CatalogEntry {
    /// The window in force at `at` (`None`: the latest, open-ended window).
    pub fn window_at(&self, at: Option<Timestamp>) -> Option<&CatalogWindow> {
        in_force(&self.windows, at, |w| &w.when)
    }

    /// Whether the entry prices jobs at `at` (inside one of its windows).
    pub fn in_window(&self, at: Option<Timestamp>) -> bool {
        self.window_at(at).is_some()
    }

    /// The family at `at`, or else of the latest window (what the model was last).
    pub fn family_at(&self, at: Option<Timestamp>) -> &str {
        self.window_at(at)
            .or(self.windows.last())
            .map_or("", |w| w.family.as_str())
    }

    /// Whether some window puts the model in `family`.
    pub fn has_family(&self, family: &str) -> bool {
        self.windows.iter().any(|w| w.family == family)
    }

    /// Whether every window is unbounded (the plain `Model = "family"` form).
    pub fn is_undated(&self) -> bool {
        self.windows
            .iter()
            .all(|w| w.when.since.is_none() && w.when.until.is_none())
    }

    /// The windows as text (`from ... until ...; from ...`), or `None` for an undated entry.
    pub fn window(&self) -> Option<String> {
        if self.is_undated() {
            return None;
        }
        let parts: Vec<String> = self.windows.iter().map(|w| w.when.text()).collect();
        Some(parts.join("; "))
    }

    /// Each window with its family: `llm8x7b4b from ... until ...; llm8x7b from ...`.
    pub fn text(&self) -> String {
        let parts: Vec<String> = (self.windows.iter())
            .map(|w| match (w.when.since, w.when.until) {
                (None, None) => w.family.clone(),
                _ => format!("{} {}", w.family, w.when.text()),
            })
            .collect();
        parts.join("; ")
    }

    /// Where it is declared: the first window's file and span.
    pub fn file(&self) -> &str {
        self.windows.first().map_or("", |w| w.file.as_str())
    }

    pub fn span(&self) -> Range<usize> {
        self.windows.first().map_or(0..0, |w| w.span.clone())
    }
}

/// Why a name is an alias of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AliasKind {
    /// The catalog replaced the name by another for the same model (one removed and the
    /// other added in the same version, same family; accepted by governance).
    Rename,
    /// The network's gateway rewrote the name before submitting the job.
    Gateway,
    /// The catalog's `redirect`: jobs for the model were submitted under this name.
    Redirect,
}

impl AliasKind {
    pub const ALL: [AliasKind; 3] = [AliasKind::Rename, AliasKind::Gateway, AliasKind::Redirect];

    pub fn as_str(self) -> &'static str {
        match self {
            AliasKind::Rename => "rename",
            AliasKind::Gateway => "gateway",
            AliasKind::Redirect => "redirect",
        }
    }

    pub fn from_name(name: &str) -> Option<AliasKind> {
        AliasKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for AliasKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Another name for a model, inside a window: a job carrying `name` is priced as `model`
/// would be at its time (keeping its own name in the result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The name jobs carry (NFC).
    pub name: String,
    /// The model it prices as (NFC).
    pub model: String,
    pub kind: AliasKind,
    pub when: Dated,
    /// Where the fact comes from, and governance's reason for it.
    pub source: String,
    pub file: String,
    pub span: Range<usize>,
}

impl Alias {
    /// `alias of `X` (rename from 2024-04-24T03:08:19Z (catalog 014 (2e6665a1ee)))`.
    pub fn text(&self) -> String {
        format!(
            "alias of `{}` ({} {})",
            self.model,
            self.kind,
            self.when.text()
        )
    }
}
