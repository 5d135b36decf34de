//! The edits of a playground session as one patch that `git apply` takes (paths
//! `a/rules/...`, `b/rules/...`), so an author can open a pull request with them.

use std::collections::BTreeMap;
use std::fmt::Write;

use similar::TextDiff;

/// Lines of context around each change, as `git diff` gives.
const CONTEXT: usize = 3;

/// A git-style unified diff from `old` to `new` (rule files by path relative to the rules
/// directory), every path under `dir/`. Files in both with the same text are left out; a file
/// only in `new` is created, one only in `old` deleted. Empty when nothing changed.
pub fn unified(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    dir: &str,
) -> String {
    let mut out = String::new();
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for path in paths {
        let (before, after) = (old.get(path), new.get(path));
        if before == after {
            continue;
        }
        let a = format!("a/{dir}/{path}");
        let b = format!("b/{dir}/{path}");
        let _ = writeln!(out, "diff --git {a} {b}");
        let (from, to) = match (before, after) {
            (None, _) => {
                out.push_str("new file mode 100644\n");
                ("/dev/null".to_string(), b)
            }
            (_, None) => {
                out.push_str("deleted file mode 100644\n");
                (a, "/dev/null".to_string())
            }
            _ => (a, b),
        };
        let (before, after) = (
            before.map_or("", String::as_str),
            after.map_or("", String::as_str),
        );
        // Every line is taken to end with a newline, so a last line without one gets git's
        // `\ No newline at end of file` marker rather than a silently added line end.
        let diff = TextDiff::configure()
            .newline_terminated(true)
            .diff_lines(before, after);
        // An empty file created or deleted has no hunks: git's header alone says it.
        let _ = write!(
            out,
            "{}",
            diff.unified_diff()
                .context_radius(CONTEXT)
                .missing_newline_hint(true)
                .header(&from, &to)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_modified_file_gets_git_headers_and_a_hunk() {
        let old = files(&[("a.toml", "x = 1\ny = 2\n"), ("same.toml", "s\n")]);
        let new = files(&[("a.toml", "x = 1\ny = 3\n"), ("same.toml", "s\n")]);
        assert_eq!(
            unified(&old, &new, "rules"),
            "diff --git a/rules/a.toml b/rules/a.toml\n--- a/rules/a.toml\n+++ b/rules/a.toml\n@@ -1,2 +1,2 @@\n x = 1\n-y = 2\n+y = 3\n"
        );
    }

    #[test]
    fn created_deleted_and_unterminated_files() {
        let old = files(&[("gone.toml", "g\n"), ("tail.rhai", "1")]);
        let new = files(&[("new.toml", "n\n"), ("tail.rhai", "2"), ("empty.toml", "")]);
        let p = unified(&old, &new, "rules");
        assert!(
            p.contains(
                "diff --git a/rules/empty.toml b/rules/empty.toml\nnew file mode 100644\ndiff --git"
            ),
            "{p}"
        );
        assert!(p.contains("deleted file mode 100644\n--- a/rules/gone.toml\n+++ /dev/null\n@@ -1 +0,0 @@\n-g\n"), "{p}");
        assert!(
            p.contains(
                "new file mode 100644\n--- /dev/null\n+++ b/rules/new.toml\n@@ -0,0 +1 @@\n+n\n"
            ),
            "{p}"
        );
        assert!(
            p.contains("-1\n\\ No newline at end of file\n+2\n\\ No newline at end of file\n"),
            "{p}"
        );
    }

    #[test]
    fn no_change_is_an_empty_patch() {
        let old = files(&[("a.toml", "x\n")]);
        assert_eq!(unified(&old, &old.clone(), "rules"), "");
    }
}
