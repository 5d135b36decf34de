//! From the catalog's versions to what it said over time: each model's windows (when it was
//! listed, in which family), each `redirect`'s window, and the events governance decides on
//! (removals, family changes, rename candidates).

use indexmap::IndexMap;
use jiff::Timestamp;

use super::history::RawVersion;
use super::strict::{ListedModel, ParseProblem, parse_catalog};

/// A version of the history, as `[versions]` records it.
#[derive(Debug, Clone)]
pub struct Version {
    pub number: String,
    pub commit: String,
    pub at: Timestamp,
    pub subject: Option<String>,
    pub origin: String,
    /// Why it was left out (it does not parse, or has no file).
    pub skipped: Option<String>,
}

/// A version left out (or a warning about one kept), and where its problem is.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// Index into [`Timeline::versions`].
    pub version: usize,
    pub problem: ParseProblem,
}

/// A time a model was listed in one family: from version `since` until version `until`
/// (indexes into [`Timeline::versions`]; `None`: still listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyWindow {
    pub family: String,
    pub since: usize,
    pub until: Option<usize>,
}

/// A time the catalog redirected `model`'s jobs to `target` (its `redirect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectWindow {
    pub model: String,
    pub target: String,
    pub since: usize,
    pub until: Option<usize>,
}

/// One name removed and another added in the same version, in the same family: maybe the
/// same model renamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameCandidate {
    pub from: String,
    pub to: String,
    pub family: String,
    pub version: usize,
}

/// What the history says.
#[derive(Debug, Default)]
pub struct Timeline {
    pub versions: Vec<Version>,
    pub skipped: Vec<Skipped>,
    /// Oddities of versions that were kept (a model listed twice the same way).
    pub warnings: Vec<Skipped>,
    /// Each model's windows in time order; models in order of first appearance.
    pub models: IndexMap<String, Vec<FamilyWindow>>,
    pub redirects: Vec<RedirectWindow>,
    pub renames: Vec<RenameCandidate>,
}

impl Timeline {
    /// Parses every version strictly and follows every name through them. A version that
    /// does not parse is recorded as skipped: what changed in it shows in the next one.
    pub fn build(raw: Vec<RawVersion>) -> Timeline {
        let mut t = Timeline::default();
        // Open windows and redirects: name → (family or target, since).
        let mut open: IndexMap<String, (String, usize)> = IndexMap::new();
        let mut redirecting: IndexMap<String, (String, usize)> = IndexMap::new();
        for (i, v) in raw.into_iter().enumerate() {
            let parsed = v
                .bytes
                .map_err(|message| ParseProblem {
                    line: 0,
                    column: 0,
                    message,
                })
                .and_then(|b| parse_catalog(&b));
            t.versions.push(Version {
                number: v.number,
                commit: v.commit,
                at: v.at,
                subject: v.subject,
                origin: v.origin,
                skipped: parsed.as_ref().err().map(ToString::to_string),
            });
            let models: Vec<ListedModel> = match parsed {
                Ok(p) => {
                    let warnings = p.warnings.into_iter();
                    t.warnings.extend(warnings.map(|problem| Skipped {
                        version: i,
                        problem,
                    }));
                    p.models
                }
                Err(problem) => {
                    t.skipped.push(Skipped {
                        version: i,
                        problem,
                    });
                    continue;
                }
            };
            let mut removed: Vec<(String, String)> = Vec::new();
            let mut added: Vec<(String, String)> = Vec::new();
            let present: std::collections::HashSet<&str> =
                models.iter().map(|m| m.name.as_str()).collect();
            // Names gone from this version: their windows end here.
            let gone: Vec<String> = (open.keys())
                .filter(|n| !present.contains(n.as_str()))
                .cloned()
                .collect();
            for name in gone {
                let (family, since) = open.shift_remove(&name).expect("listed above");
                t.close(&name, family.clone(), since, i);
                removed.push((name, family));
            }
            let gone: Vec<String> = (redirecting.keys())
                .filter(|n| !present.contains(n.as_str()))
                .cloned()
                .collect();
            for name in gone {
                let (target, since) = redirecting.shift_remove(&name).expect("listed above");
                t.redirects.push(RedirectWindow {
                    model: name,
                    target,
                    since,
                    until: Some(i),
                });
            }
            for m in &models {
                match open.get(&m.name) {
                    None => {
                        open.insert(m.name.clone(), (m.family.clone(), i));
                        t.models.entry(m.name.clone()).or_default();
                        added.push((m.name.clone(), m.family.clone()));
                    }
                    Some((family, since)) if *family != m.family => {
                        let (family, since) = (family.clone(), *since);
                        t.close(&m.name, family, since, i);
                        open.insert(m.name.clone(), (m.family.clone(), i));
                    }
                    Some(_) => {}
                }
                match (redirecting.get(&m.name), &m.redirect) {
                    (None, Some(target)) => {
                        redirecting.insert(m.name.clone(), (target.clone(), i));
                    }
                    (Some((old, since)), new) if new.as_ref() != Some(old) => {
                        t.redirects.push(RedirectWindow {
                            model: m.name.clone(),
                            target: old.clone(),
                            since: *since,
                            until: Some(i),
                        });
                        redirecting.shift_remove(&m.name);
                        if let Some(target) = new {
                            redirecting.insert(m.name.clone(), (target.clone(), i));
                        }
                    }
                    _ => {}
                }
            }
            for (from, family) in &removed {
                for (to, _) in added.iter().filter(|(_, f)| f == family) {
                    t.renames.push(RenameCandidate {
                        from: from.clone(),
                        to: to.clone(),
                        family: family.clone(),
                        version: i,
                    });
                }
            }
        }
        for (name, (family, since)) in open {
            t.models.entry(name).or_default().push(FamilyWindow {
                family,
                since,
                until: None,
            });
        }
        for (model, (target, since)) in redirecting {
            t.redirects.push(RedirectWindow {
                model,
                target,
                since,
                until: None,
            });
        }
        t.redirects
            .sort_by(|a, b| (a.since, &a.model).cmp(&(b.since, &b.model)));
        t
    }

    fn close(&mut self, name: &str, family: String, since: usize, until: usize) {
        let windows = self.models.entry(name.to_string()).or_default();
        windows.push(FamilyWindow {
            family,
            since,
            until: Some(until),
        });
    }

    /// The commit time of version `i`.
    pub fn at(&self, i: usize) -> Timestamp {
        self.versions[i].at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(i: usize, json: &str) -> RawVersion {
        RawVersion {
            number: format!("{:03}", i + 1),
            commit: format!("{i:040x}"),
            at: Timestamp::from_second(1_700_000_000 + i as i64 * 3600).unwrap(),
            subject: None,
            origin: format!("v{i}"),
            bytes: Ok(json.as_bytes().to_vec()),
        }
    }

    #[test]
    fn windows_follow_removals_readditions_family_changes_and_redirects() {
        let t = Timeline::build(vec![
            version(
                0,
                r#"[{"name":"A","type":"sd15"},{"name":"B","type":"llm8b"}]"#,
            ),
            version(
                1,
                r#"[{"name":"A","type":"sd15"},{"name":"B","type":"llm8b16b","redirect":"C"},{"name":"C","type":"llm8b16b"}]"#,
            ),
            version(2, "[{"),
            version(
                3,
                r#"[{"name":"B","type":"llm8b16b"},{"name":"D","type":"sd15"}]"#,
            ),
            version(
                4,
                r#"[{"name":"A","type":"sd15"},{"name":"B","type":"llm8b16b"}]"#,
            ),
        ]);
        assert_eq!(t.skipped.len(), 1);
        assert_eq!(t.skipped[0].version, 2);
        let w = |f: &str, s, u| FamilyWindow {
            family: f.into(),
            since: s,
            until: u,
        };
        assert_eq!(t.models["A"], [w("sd15", 0, Some(3)), w("sd15", 4, None)]);
        assert_eq!(
            t.models["B"],
            [w("llm8b", 0, Some(1)), w("llm8b16b", 1, None)]
        );
        assert_eq!(t.models["C"], [w("llm8b16b", 1, Some(3))]);
        assert_eq!(t.models["D"], [w("sd15", 3, Some(4))]);
        assert_eq!(
            t.redirects,
            [RedirectWindow {
                model: "B".into(),
                target: "C".into(),
                since: 1,
                until: Some(3)
            }]
        );
        // A removed and D added in version 3, both sd15: a candidate (C, llm8b16b, is not);
        // and back in version 4.
        let r = |from: &str, to: &str, version| RenameCandidate {
            from: from.into(),
            to: to.into(),
            family: "sd15".into(),
            version,
        };
        assert_eq!(t.renames, [r("A", "D", 3), r("D", "A", 4)]);
    }
}
