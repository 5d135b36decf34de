//! The manual cannot drift (#24): every command example in README.md and docs/ runs against
//! its shown output, and every internal link of the manual resolves, anchors included.
//!
//! Examples are fenced ```` ```console ```` blocks, as trycmd writes them (this harness is a
//! page of code over the Markdown parser the playground already builds, where trycmd would add
//! a dozen crates to the build):
//!
//! - `$ COMMAND` runs COMMAND with `sh -c` in a scratch copy of the repository's `rules/`,
//!   `examples/`, `corpus/` and `tests/fixtures/bench/` (one copy per Markdown file, its
//!   blocks run in order, so a later command sees what an earlier one wrote), with the
//!   `jobpoints` built for this test run first on `PATH`. A line ending in `\` goes on.
//! - `? N` right after the command: it must exit with N (otherwise with 0).
//! - The lines after it, up to the next `$`, are its stdout and stderr as one stream.
//!   Redactions: `[..]` in a line matches any text within that line (hashes, versions,
//!   times), a line `...` matches any number of lines, and the scratch directory's path
//!   is shown as `[ROOT]`. Trailing spaces are ignored.
//!
//! A block of any language whose info string has `file=PATH` (```` ```toml file=rules/x.toml ````)
//! is written to PATH in the scratch copy, for the commands after it (a rule file the text
//! asks the reader to add).
//!
//! Every ```` ```sh ```` (or `bash`, `shell`) block is an example that is not run, and must
//! say so and why on its first line: `# not run by the tests: REASON` (a server, a download,
//! a nightly toolchain, a write outside the repository). A ```` ```text ```` block holds no
//! `$ ` lines: a shown command is a ```` ```console ```` block, so it is run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::util::root;

const NOT_RUN: &str = "# not run by the tests: ";

/// The chapters under docs/, sorted.
fn chapters() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

/// Where command examples live: the front page, the chapters, and the rule files' reference.
fn example_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    files.extend(chapters());
    files.push(root().join("rules/README.md"));
    files
}

/// Where internal links are checked: the manual and the other documents it links to.
fn linked_files() -> Vec<PathBuf> {
    let mut files = example_files();
    for rel in [
        "corpus/README.md",
        "CHANGELOG.md",
        "tests/fixtures/README.md",
        "tests/fixtures/tokens/README.md",
        "tests/fixtures/ledgers/PROVENANCE.md",
        "rules/tokenizers/PROVENANCE.md",
    ] {
        files.push(root().join(rel));
    }
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// A fenced code block: its info string, first line in the file and text.
struct Block {
    info: String,
    line: usize,
    text: String,
}

fn code_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (event, range) in Parser::new_ext(text, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                open = Some(Block {
                    info,
                    line: line_of(text, range.start) + 1,
                    text: String::new(),
                });
            }
            Event::Text(t) => {
                if let Some(b) = open.as_mut() {
                    b.text.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(open.take()),
            _ => {}
        }
    }
    blocks
}

/// One `$ COMMAND` of a console block with what it must print.
struct Step {
    line: usize,
    command: String,
    code: i32,
    expected: Vec<String>,
}

fn steps(block: &Block, file: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = block.text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            let mut command = cmd.to_string();
            while command.ends_with('\\') {
                let (_, more) = lines
                    .next()
                    .unwrap_or_else(|| panic!("{file}:{}: `\\` ends the block", block.line + i));
                command.push('\n');
                command.push_str(more);
            }
            let mut code = 0;
            if let Some((_, l)) = lines.peek()
                && let Some(n) = l.strip_prefix("? ")
            {
                code = n.trim().parse().unwrap_or_else(|_| {
                    panic!("{file}:{}: `? {n}` is not an exit code", block.line + i + 1)
                });
                lines.next();
            }
            steps.push(Step {
                line: block.line + i,
                command,
                code,
                expected: Vec::new(),
            });
        } else {
            let step = steps.last_mut().unwrap_or_else(|| {
                panic!(
                    "{file}:{}: a console block starts with `$ COMMAND`",
                    block.line + i
                )
            });
            step.expected.push(line.trim_end().to_string());
        }
    }
    steps
}

/// `expected` with `[..]` matching any text of one line.
fn line_matches(expected: &str, actual: &str) -> bool {
    let mut parts = expected.split("[..]");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `expected` lines against `actual`, a line `...` matching any number of lines.
fn output_matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(e, a) && output_matches(rest, more)),
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create dir");
    for entry in std::fs::read_dir(src).expect("read dir") {
        let entry = entry.expect("dir entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy file");
        }
    }
}

/// A scratch copy of what the examples read.
fn scratch_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for part in ["rules", "examples", "corpus", "tests/fixtures/bench"] {
        copy_tree(&root().join(part), &dir.path().join(part));
    }
    dir
}

/// Runs `step` in `dir`; `None` when it printed and exited as shown, else what it did.
fn run(step: &Step, dir: &Path) -> Option<String> {
    let bin = Path::new(env!("CARGO_BIN_EXE_jobpoints"))
        .parent()
        .expect("the binary's directory")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1\n{}", step.command))
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("JOBPOINTS_RULES")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let text = String::from_utf8_lossy(&out.stdout).replace(&dir.display().to_string(), "[ROOT]");
    let actual: Vec<&str> = text.lines().map(str::trim_end).collect();
    let code = out.status.code().unwrap_or(-1);
    if code == step.code && output_matches(&step.expected, &actual) {
        return None;
    }
    Some(format!(
        "exit code {code} (shown: {}){}, output:\n{}",
        step.code,
        first_difference(&step.expected, &actual),
        actual.join("\n")
    ))
}

/// Where the output first leaves what is shown, before any `...`, to point at the line to fix.
fn first_difference(expected: &[String], actual: &[&str]) -> String {
    for (i, e) in expected.iter().enumerate() {
        if e == "..." {
            return String::new();
        }
        match actual.get(i) {
            Some(a) if line_matches(e, a) => {}
            Some(a) => return format!("; output line {}: shown `{e}`, printed `{a}`", i + 1),
            None => return format!("; output line {}: shown `{e}`, printed nothing", i + 1),
        }
    }
    match actual.get(expected.len()) {
        Some(a) => format!("; printed more than shown: `{a}`"),
        None => String::new(),
    }
}

#[test]
fn every_console_example_prints_what_the_manual_shows() {
    let mut failures = Vec::new();
    let (mut ran, mut not_run) = (0, BTreeMap::<String, usize>::new());
    for path in example_files() {
        let file = rel(&path);
        let text = read(&path);
        let blocks = code_blocks(&text);
        let mut scratch: Option<tempfile::TempDir> = None;
        for block in &blocks {
            let mut words = block.info.split([' ', ',']);
            let lang = words.next().unwrap_or("");
            if let Some(to) = words.find_map(|w| w.strip_prefix("file=")) {
                let dir = scratch.get_or_insert_with(scratch_repo);
                let to = dir.path().join(to);
                std::fs::create_dir_all(to.parent().expect("a file's directory")).expect("mkdir");
                std::fs::write(&to, &block.text).expect("write the block's file");
                continue;
            }
            match lang {
                "console" => {
                    let dir = scratch.get_or_insert_with(scratch_repo);
                    for step in steps(block, &file) {
                        ran += 1;
                        if let Some(what) = run(&step, dir.path()) {
                            failures.push(format!(
                                "{file}:{}: `{}` does not print what the manual shows: {what}",
                                step.line, step.command
                            ));
                        }
                    }
                }
                "sh" | "bash" | "shell" => match block.text.lines().next() {
                    Some(first) if first.starts_with(NOT_RUN) && first.len() > NOT_RUN.len() => {
                        *not_run
                            .entry(first[NOT_RUN.len()..].to_string())
                            .or_default() += 1;
                    }
                    _ => failures.push(format!(
                        "{file}:{}: a ```{lang} block is not run: say why on its first line \
                         (`{NOT_RUN}REASON`), or make it a ```console block with its output",
                        block.line
                    )),
                },
                _ => {
                    if let Some(i) = block.text.lines().position(|l| l.starts_with("$ ")) {
                        failures.push(format!(
                            "{file}:{}: a command shown in a ```{lang} block: make it a \
                             ```console block, so it is run",
                            block.line + i
                        ));
                    }
                }
            }
        }
    }
    eprintln!("manual: {ran} commands run; not run: {not_run:?}");
    assert!(ran > 0, "no console example found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation other than `-` and
/// `_` dropped; a repeated one gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeMap::<String, usize>::new();
    let mut out = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let title = heading.take().unwrap_or_default();
                let slug: String = title
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect();
                let n = seen.entry(slug.clone()).or_default();
                out.insert(if *n == 0 {
                    slug.clone()
                } else {
                    format!("{slug}-{n}")
                });
                *n += 1;
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_internal_link_of_the_manual_resolves() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in linked_files() {
        let file = rel(&path);
        let text = read(&path);
        for (event, range) in Parser::new_ext(&text, Options::ENABLE_TABLES).into_offset_iter() {
            let dest = match event {
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => dest_url,
                _ => continue,
            };
            if dest.contains("://") || dest.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let at = format!("{file}:{}: `{dest}`", line_of(&text, range.start));
            let (target, anchor) = dest.split_once('#').unwrap_or((&dest, ""));
            let target = if target.is_empty() {
                path.clone()
            } else {
                path.parent().expect("a file's directory").join(target)
            };
            if !target.exists() {
                failures.push(format!("{at}: no such file"));
            } else if !anchor.is_empty() {
                if target.extension().is_none_or(|e| e != "md") {
                    failures.push(format!("{at}: an anchor in a file that is not Markdown"));
                } else if !anchors(&read(&target)).contains(anchor) {
                    failures.push(format!("{at}: no heading has this anchor"));
                }
            }
        }
    }
    assert!(checked > 0, "no internal link found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_book_lists_every_chapter() {
    let summary = read(&root().join("docs/SUMMARY.md"));
    let listed: BTreeSet<String> = Parser::new(&summary)
        .filter_map(|e| match e {
            Event::Start(Tag::Link { dest_url, .. }) => Some(dest_url.to_string()),
            _ => None,
        })
        .collect();
    for chapter in chapters() {
        let name = chapter.file_name().unwrap().to_string_lossy().to_string();
        if name != "SUMMARY.md" {
            assert!(
                listed.contains(&name),
                "docs/SUMMARY.md does not list {name}"
            );
        }
        // One title per chapter, so the book's sidebar and the forge agree.
        let titles = Parser::new(&read(&chapter))
            .filter(|e| {
                matches!(
                    e,
                    Event::Start(Tag::Heading {
                        level: HeadingLevel::H1,
                        ..
                    })
                )
            })
            .count();
        assert_eq!(titles, 1, "{name} has {titles} `# ` titles");
    }
}

#[test]
fn the_front_page_stays_a_front_page() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines: it is the front page; move detail to a chapter in docs/"
    );
}

#[test]
fn the_exit_codes_chapter_and_help_list_the_same_codes() {
    let chapter = read(&root().join("docs/exit-codes.md"));
    let in_chapter: BTreeSet<u8> = chapter
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok())
        .collect();
    let help = crate::util::jobpoints()
        .arg("--help")
        .output()
        .expect("run");
    let help = String::from_utf8(help.stdout).expect("UTF-8 help");
    let codes = help
        .split_once("Exit codes:")
        .expect("`--help` lists the exit codes")
        .1;
    let in_help: BTreeSet<u8> = codes
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split("  ").next()?.parse().ok())
        .collect();
    assert!(in_chapter.len() > 5, "{in_chapter:?}");
    assert_eq!(
        in_chapter, in_help,
        "docs/exit-codes.md and `jobpoints --help`"
    );
}

#[test]
fn redactions_stand_for_what_they_say_and_no_more() {
    let lines = |s: &str| s.lines().map(String::from).collect::<Vec<_>>();
    assert!(line_matches("ruleset [..]", "ruleset c38f948d"));
    assert!(line_matches("a [..] b [..] c", "a x b y c"));
    assert!(!line_matches("a [..] b [..] c", "a x c y b"));
    assert!(!line_matches("ruleset [..]", "rules c38f948d"));
    assert!(!line_matches("points 1.0", "points 1.0 extra"));
    assert!(output_matches(&lines("a\n...\nd"), &["a", "b", "c", "d"]));
    assert!(output_matches(&lines("a\n...\nd"), &["a", "d"]));
    assert!(!output_matches(&lines("a\n...\nd"), &["a", "b"]));
    assert!(!output_matches(&lines("a\nb"), &["a", "b", "c"]));
    assert_eq!(
        first_difference(&lines("a\nb"), &["a", "c"]),
        "; output line 2: shown `b`, printed `c`"
    );
}

/// Flags the manual mentions that belong to other programs: cargo, curl, `git apply`,
/// spark-submit, and the benchmarks' own options (`cargo bench -- --runs N`).
const OTHER_PROGRAMS_FLAGS: &[&str] = &[
    "--bench",
    "--data-binary",
    "--directory",
    "--files",
    "--locked",
    "--no-default-features",
    "--only",
    "--parsers",
    "--path",
    "--plain",
    "--release",
    "--rss-jobs",
    "--runs",
];

/// Every `--flag` word in `text`.
fn flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("--") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '-') {
            continue;
        }
        let name: String = text[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.insert(format!("--{}", name.trim_end_matches('-')));
        }
    }
    out
}

/// The `--help` of `jobpoints ARGS` and of every subcommand under it.
fn help_tree(args: &mut Vec<String>, out: &mut String) {
    let help = crate::util::jobpoints()
        .args(args.iter())
        .arg("--help")
        .output()
        .expect("run");
    let help = String::from_utf8(help.stdout).expect("UTF-8 help");
    out.push_str(&help);
    let Some((_, commands)) = help.split_once("Commands:\n") else {
        return;
    };
    let names: Vec<String> = commands
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("  ")?.split(' ').next().map(String::from))
        .filter(|name| name != "help")
        .collect();
    for name in names {
        args.push(name);
        help_tree(args, out);
        args.pop();
    }
}

#[test]
fn every_flag_the_manual_names_is_one_the_command_line_has() {
    let mut help = String::new();
    help_tree(&mut Vec::new(), &mut help);
    let known = flags(&help);
    assert!(known.contains("--decision-log-omit"), "{known:?}");
    let mut unknown = Vec::new();
    for path in example_files() {
        for flag in flags(&read(&path)) {
            if !known.contains(&flag) && !OTHER_PROGRAMS_FLAGS.contains(&flag.as_str()) {
                unknown.push(format!("{}: {flag}", rel(&path)));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "the manual names flags that no `jobpoints` command has (renamed or removed?):\n{}",
        unknown.join("\n")
    );
}
