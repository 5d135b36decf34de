//! Shell completions and man pages (#15): generated from the command line's own definition,
//! so every subcommand `--help` lists is in every completion script and has a page.

use crate::util::jobpoints;

/// The subcommands `jobpoints --help` lists.
fn subcommands() -> Vec<String> {
    let out = jobpoints().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect();
    assert!(commands.len() >= 9, "{commands:?}");
    commands
}

#[test]
fn every_shell_completion_names_every_subcommand() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = jobpoints().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for c in &commands {
            assert!(
                script.contains(c.as_str()),
                "{shell} completion lacks `{c}`"
            );
        }
        // And the options of a subcommand.
        assert!(script.contains("explain"), "{shell}: eval's options");
    }
    let bad = jobpoints().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_writes_one_page_per_subcommand() {
    let commands = subcommands();
    let dir = tempfile::tempdir().unwrap();
    let out = jobpoints()
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main = std::fs::read_to_string(dir.path().join("jobpoints.1")).unwrap();
    for c in &commands {
        let page = dir.path().join(format!("jobpoints-{c}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("no page for `{c}`: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{c}: not roff"
        );
        assert!(main.contains(c.as_str()), "the main page lacks `{c}`");
    }
    let stdout = jobpoints().arg("man").output().unwrap();
    assert!(
        String::from_utf8(stdout.stdout)
            .unwrap()
            .contains(".TH jobpoints 1")
    );
}
