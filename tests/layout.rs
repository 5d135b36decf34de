//! The workspace's shape (#24): the engine crate (`crates/engine/`) builds without the command
//! line's server and terminal stack, and its modules form layers without circles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// The engine's dependency tree.

/// Crates an embedder of the engine must not get: the server, the command line, terminal UI.
const NOT_IN_THE_ENGINE: [&str; 11] = [
    "tokio",
    "axum",
    "hyper",
    "hyper-util",
    "clap",
    "clap_builder",
    "indicatif",
    "prometheus-client",
    "plotters",
    "pulldown-cmark",
    "tower-service",
];

/// The names of every crate in the normal (non-dev, non-build) dependency tree of `package`,
/// as `cargo tree` resolves it from the lock file, without the network.
fn dependency_names(package: &str, features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package, "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .args(features)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} {features:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert!(
        names.contains(package),
        "{package} is in its own tree: {names:?}"
    );
    names
}

#[test]
fn the_engine_crate_has_no_server_command_line_or_terminal_ui() {
    for features in [&[][..], &["--no-default-features"], &["--all-features"]] {
        let names = dependency_names("jobpoints", features);
        let found: Vec<_> = NOT_IN_THE_ENGINE
            .iter()
            .filter(|n| names.contains(**n))
            .collect();
        assert!(
            found.is_empty(),
            "the engine crate (features {features:?}) depends on {found:?}"
        );
    }
    // The check sees them where they are: the command line has the server and clap.
    let cli = dependency_names("jobpoints-cli", &[]);
    for name in ["tokio", "axum", "hyper", "clap", "jobpoints"] {
        assert!(cli.contains(name), "jobpoints-cli without {name}: {cli:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The engine's import graph.

/// The layers, bottom up; a module may import from its own layer's modules (without circles)
/// and from lower layers, never from a higher one. `review`, `audit` and `live` are one level.
/// The crate root and the `api` façade sit on top.
fn layer_rank(layer: &str) -> Option<u8> {
    Some(match layer {
        "engine" => 0,
        "rules" => 1,
        "ledger" => 2,
        "review" | "audit" | "live" => 3,
        "" | "api" => 4,
        _ => return None,
    })
}

/// A module's node in the graph: its layer and the module under it (`engine::score`,
/// `rules::load`; a folder module and all its files are one node), or the layer itself.
fn node(path: &[String]) -> String {
    path.iter().take(2).cloned().collect::<Vec<_>>().join("::")
}

/// The module path of a source file under `src/` (`engine/formula/mod.rs` → engine::formula).
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap();
    match file.as_str() {
        "mod.rs" | "lib.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_string()),
    }
    parts
}

/// The code of a file without comments and without its unit tests (`#[cfg(test)]` modules,
/// which by convention close a file): what the crate itself imports.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every path a use tree names: `a::{b, c::{d, e as f}}` → a::b, a::c::d, a::c::e.
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap().trim();
        let path = path.trim_end_matches("::*").trim_end_matches("::self");
        return vec![path.replace(' ', "")];
    };
    let prefix = tree[..open].trim().trim_end_matches("::").replace(' ', "");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| {
            expand_use(p).into_iter().map(|rest| match rest.as_str() {
                "self" | "*" => prefix.clone(),
                _ if prefix.is_empty() => rest,
                _ => format!("{prefix}::{rest}"),
            })
        })
        .collect()
}

/// The paths a file's code refers to through `crate::`, `super::` or `self::`: its `use`
/// declarations and paths written inline.
fn referenced_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    // `use` declarations (also `pub use`, `pub(crate) use`), up to their `;`.
    let mut outside_uses = String::new();
    while let Some(at) = find_use(rest) {
        outside_uses.push_str(&rest[..at]);
        let body_start = at + "use ".len();
        let end = rest[body_start..]
            .find(';')
            .map_or(rest.len(), |e| body_start + e);
        paths.extend(expand_use(&rest[body_start..end]));
        rest = &rest[(end + 1).min(rest.len())..];
    }
    outside_uses.push_str(rest);
    // Inline paths: `crate::ledger::tally::Tally::new(...)`.
    let bytes = outside_uses.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = outside_uses[from..].find(start) {
            let i = from + i;
            from = i + start.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let end = outside_uses[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(outside_uses.len(), |e| i + e);
            paths.push(outside_uses[i..end].trim_end_matches(':').to_string());
        }
    }
    paths
        .into_iter()
        .filter(|p| p.starts_with("crate") || p.starts_with("super") || p.starts_with("self"))
        .collect()
}

/// The byte offset of the next `use` keyword that starts a declaration.
fn find_use(code: &str) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find("use ") {
        let i = from + i;
        from = i + 4;
        let before = code[..i].trim_end();
        let starts = i == 0
            || bytes[i - 1] == b'\n'
            || bytes[i - 1] == b' ' && (before.ends_with("pub") || before.ends_with(')'))
            || before.ends_with(';')
            || before.ends_with('{')
            || before.ends_with('}')
            || before.ends_with(']');
        if starts && !(i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) {
            return Some(i);
        }
    }
    None
}

/// The module a path refers to, resolved from the module `here`: the longest known module
/// that prefixes it.
fn target_module(
    path: &str,
    here: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut segments = path.split("::");
    let mut resolved: Vec<String> = match segments.next()? {
        "crate" => Vec::new(),
        "self" => here.to_vec(),
        "super" => here[..here.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    for s in segments {
        if s == "super" {
            resolved.pop();
        } else {
            resolved.push(s.to_string());
        }
    }
    (0..=resolved.len())
        .rev()
        .map(|n| resolved[..n].to_vec())
        .find(|m| modules.contains(m))
}

/// The graph's edges (`from → to`, between nodes) with one example import each.
type Edges = BTreeMap<(String, String), String>;

fn import_graph(files: &[(Vec<String>, String)]) -> Edges {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = Edges::new();
    for (module, text) in files {
        let from = node(module);
        for path in referenced_paths(&code_of(text)) {
            let Some(target) = target_module(&path, module, &modules) else {
                continue;
            };
            let to = node(&target);
            // The crate root and a layer's own mod.rs declare modules; a path to them names
            // an item they re-export or a module under them, not the root's code.
            if to != from && !to.is_empty() && target.len() > 1 {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| format!("{} uses {path}", module.join("::")));
            }
        }
    }
    edges
}

/// Every upward edge and every circle of the graph, in words.
fn layering_problems(edges: &Edges) -> Vec<String> {
    let mut problems = Vec::new();
    for ((from, to), example) in edges {
        let layer = |n: &str| n.split("::").next().unwrap_or("").to_string();
        match (layer_rank(&layer(from)), layer_rank(&layer(to))) {
            (Some(f), Some(t)) if t > f => {
                problems.push(format!("upward: {from} → {to} ({example})"))
            }
            (None, _) | (_, None) => problems.push(format!(
                "not in a known layer: {from} → {to} ({example}); add it to layer_rank"
            )),
            _ => {}
        }
    }
    // Circles: a node that reaches itself. Each is named once, by its smallest node.
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
    }
    let mut seen_cycles = BTreeSet::new();
    for start in next.keys() {
        // Breadth-first from `start`, keeping the way back, until it comes back to `start`.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([*start]);
        let mut closing = None;
        while let Some(n) = queue.pop_front() {
            for &m in next.get(n).map(Vec::as_slice).unwrap_or(&[]) {
                if m == *start {
                    closing = Some(n);
                    break;
                }
                if !parent.contains_key(m) {
                    parent.insert(m, n);
                    queue.push_back(m);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        let Some(mut n) = closing else { continue };
        let mut cycle = vec![n];
        while n != *start {
            n = parent[n];
            cycle.push(n);
        }
        cycle.reverse();
        let key: BTreeSet<&str> = cycle.iter().copied().collect();
        if seen_cycles.insert(key) {
            let steps: Vec<String> = cycle
                .iter()
                .zip(cycle.iter().cycle().skip(1))
                .map(|(a, b)| format!("{a} → {b} ({})", edges[&(a.to_string(), b.to_string())]))
                .collect();
            problems.push(format!("circle: {}", steps.join("; ")));
        }
    }
    problems
}

/// Every `.rs` file under `dir`, with its module path.
fn sources(dir: &Path) -> Vec<(Vec<String>, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(Vec<String>, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(base).unwrap();
                out.push((module_of(rel), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn the_engine_modules_are_layered_without_circles() {
    let files = sources(&root().join("crates/engine/src"));
    assert!(files.len() > 50, "{} files", files.len());
    let edges = import_graph(&files);
    // The graph is read at all: the score imports the model, the ledger the score.
    assert!(edges.contains_key(&("engine::score".into(), "engine::model".into())));
    assert!(edges.contains_key(&("ledger::pipeline".into(), "engine::score".into())));
    let problems = layering_problems(&edges);
    assert!(
        problems.is_empty(),
        "the engine's imports break its layers:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_layering_check_finds_circles_and_upward_imports() {
    let file = |m: &str, text: &str| {
        (
            m.split("::").map(String::from).collect::<Vec<_>>(),
            text.to_string(),
        )
    };
    let files = [
        file("engine", "pub mod a;\npub mod b;\n"),
        file("engine::a", "use crate::engine::b::{X, y::Z};\n"),
        file(
            "engine::b",
            "pub(crate) use super::a::{\n    self,\n    W as V,\n};\n",
        ),
        file("rules", "pub mod c;"),
        file(
            "rules::c",
            "fn f() { crate::ledger::d::go(); }\n#[cfg(test)]\nmod tests {\n    use crate::review::e::T;\n}\n",
        ),
        file("ledger", "pub mod d;"),
        file("ledger::d", "// use crate::rules::c::F;\npub fn go() {}"),
        file("review", "pub mod e;"),
        file("review::e", ""),
    ];
    let edges = import_graph(&files);
    assert_eq!(
        edges.keys().cloned().collect::<Vec<_>>(),
        [
            ("engine::a".to_string(), "engine::b".to_string()),
            ("engine::b".into(), "engine::a".into()),
            ("rules::c".into(), "ledger::d".into()),
        ]
    );
    let problems = layering_problems(&edges);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("upward: rules::c → ledger::d"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("circle: engine::a → engine::b"),
        "{problems:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// File size.

/// No source file of the workspace passes this many lines: split it along its seams.
const MAX_LINES: usize = 1000;

#[test]
fn no_source_file_passes_a_thousand_lines() {
    let mut long = Vec::new();
    for dir in ["crates/engine/src", "src"] {
        for (module, text) in sources(&root().join(dir)) {
            let lines = text.lines().count();
            if lines > MAX_LINES {
                long.push(format!("{dir}: {} ({lines} lines)", module.join("::")));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these along their seams:\n{}",
        long.join("\n")
    );
}
