//! Command-line plumbing through the real binary: output that cannot be written (a full disk,
//! a closed pipe), errors on a full stderr, and the shared `--at` and `--threads` parsers.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::{copy_rules_to, fixture, jobpoints, root};

/// The binary, started at the repository root.
fn command(args: &[String]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("jobpoints"));
    cmd.args(args)
        .current_dir(root())
        .env_remove("JOBPOINTS_RULES")
        .stdin(Stdio::null());
    cmd
}

struct Ran {
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Ran {
    fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

/// Runs `cmd` with the given stdout and stderr (captured when `Stdio::piped()`); kills it
/// after `secs` (then `status` is `None`).
fn run(mut cmd: Command, stdout: Stdio, stderr: Stdio, secs: u64) -> Ran {
    let mut child = cmd.stdout(stdout).stderr(stderr).spawn().unwrap();
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// One run of every subcommand that writes a report or results to stdout.
fn writing_commands() -> Vec<Vec<String>> {
    let bench = fixture("bench/seed_three_gpus.csv");
    [
        vec!["eval", "examples/jobs.jsonl"],
        vec!["eval", "--format", "json", "examples/jobs.jsonl"],
        vec!["tally", "examples/jobs.jsonl"],
        vec!["check"],
        vec!["check", "--format", "json"],
        vec!["models"],
        vec!["models", "--format", "json"],
        vec![
            "calibrate",
            "--effective-from",
            "2024-06-01",
            bench.to_str().unwrap(),
        ],
        vec!["diff", "rules", "rules"],
        vec!["synth", "--jobs", "10"],
        vec!["schema", "rule"],
        vec!["--help"],
        vec!["eval", "--help"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect()
}

/// `/dev/full`: every write fails with "No space left on device".
#[cfg(target_os = "linux")]
fn dev_full() -> File {
    OpenOptions::new().write(true).open("/dev/full").unwrap()
}

/// A stream whose reader is already gone: every write fails with a broken pipe, at once and
/// every time (no race with a reader closing it).
fn closed_pipe() -> Stdio {
    let (ours, theirs) = UnixStream::pair().unwrap();
    drop(ours);
    Stdio::from(OwnedFd::from(theirs))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_no_panic(args: &[String], out: &Ran) {
    let err = text(&out.stderr);
    assert!(
        !err.contains("panicked") && out.code() != Some(101),
        "{args:?} panicked: {err}"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn output_to_a_full_disk_exits_2_with_one_message() {
    for args in writing_commands() {
        let out = run(command(&args), dev_full().into(), Stdio::piped(), 60);
        assert_no_panic(&args, &out);
        let err = text(&out.stderr);
        assert_eq!(out.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err, "error: cannot write output: No space left on device (os error 28)\n",
            "{args:?}"
        );
    }
}

#[test]
fn output_closed_by_its_reader_exits_0_and_says_nothing() {
    for args in writing_commands() {
        let out = run(command(&args), closed_pipe(), Stdio::piped(), 60);
        assert_no_panic(&args, &out);
        assert_eq!(out.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn eval_piped_into_head_stops_quietly() {
    // As `jobpoints eval big.jsonl | head -1`: the reader takes one line and leaves while
    // results are still being written (far more than a pipe buffers).
    let tmp = tempfile::tempdir().unwrap();
    let ledger = tmp.path().join("ledger.jsonl");
    let synth = run(
        command(&strings(&["synth", "--jobs", "100000"])),
        File::create(&ledger).unwrap().into(),
        Stdio::piped(),
        60,
    );
    assert_eq!(synth.code(), Some(0));
    let mut child = command(&strings(&["eval", "--threads", "2"]))
        .arg(&ledger)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    // The reader (and the pipe) is dropped here.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn watch_stops_when_its_output_is_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let args = strings(&["watch", "--rules", rules.to_str().unwrap()]);
    let out = run(command(&args), closed_pipe(), Stdio::piped(), 20);
    // Before, it kept watching (and failing to write) until killed by the timeout.
    assert_eq!(out.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
#[cfg(target_os = "linux")]
fn errors_on_a_full_stderr_keep_their_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("rules");
    copy_rules_to(&broken);
    std::fs::write(broken.join("policy.toml"), "this is = = not toml").unwrap();
    let cases: [(Vec<String>, i32); 3] = [
        (vec!["eval".into(), "no/such/file.jsonl".into()], 2),
        (
            vec![
                "eval".into(),
                "--rules".into(),
                broken.to_str().unwrap().into(),
                "examples/jobs.jsonl".into(),
            ],
            3,
        ),
        (
            vec![
                "calibrate".into(),
                "--round".into(),
                "0".into(),
                "x.csv".into(),
            ],
            2,
        ),
    ];
    for (args, code) in cases {
        let out = run(command(&args), Stdio::piped(), dev_full().into(), 60);
        assert_eq!(out.code(), Some(code), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn bad_thread_counts_are_usage_errors() {
    for (sub, file) in [
        ("eval", "examples/jobs.jsonl"),
        ("tally", "examples/jobs.jsonl"),
    ] {
        for n in [
            "0",
            "257",
            "1000000000",
            "18446744073709551615",
            "99999999999999999999999",
            "-1",
            "two",
        ] {
            let threads = format!("--threads={n}");
            let out = run(
                command(&strings(&[sub, &threads, file])),
                Stdio::piped(),
                Stdio::piped(),
                60,
            );
            let err = text(&out.stderr);
            // Before: 18446744073709551615 panicked (101), 1000000000 aborted (134), 0 ran.
            assert_eq!(out.code(), Some(2), "{sub} --threads {n}: {err}");
            assert!(err.contains("--threads <N>"), "{sub} --threads {n}: {err}");
            assert!(out.stdout.is_empty(), "{sub} --threads {n}");
        }
        for n in ["1", "256"] {
            let out = jobpoints()
                .args([sub, "--threads", n, file])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{sub} --threads {n}");
        }
    }
    let help = text(
        &jobpoints()
            .args(["eval", "--help"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(help.contains("1 to 256"), "{help}");
}

#[test]
fn a_bad_at_is_a_usage_error_naming_the_format_in_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let rules = rules.to_str().unwrap();
    let cases: [&[&str]; 5] = [
        &["eval", "--at", "someday", "examples/jobs.jsonl"],
        &["tally", "--at", "someday", "examples/jobs.jsonl"],
        &["models", "--at", "someday"],
        &["diff", "rules", "rules", "--at", "someday"],
        &["watch", "--rules", rules, "--at", "someday"],
    ];
    for args in cases {
        let out = run(command(&strings(args)), Stdio::piped(), Stdio::piped(), 20);
        let err = text(&out.stderr);
        assert_eq!(out.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--at <TIME>"), "{args:?}: {err}");
        assert!(err.contains("`someday`"), "{args:?}: {err}");
        assert!(
            err.contains("expected `2024-04-01` or `2024-04-01T12:00:00Z`"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
#[cfg(target_os = "linux")]
fn serve_keeps_serving_when_it_cannot_print_its_address() {
    let mut child = command(&strings(&["serve", "--listen", "127.0.0.1:0"]))
        .env("RUST_LOG", "info")
        .stdout(dev_full())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let child = Kill(child);
    let mut log = String::new();
    // Before, the address line panicked the server (exit 101) before it served anything.
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("serve stopped; log:\n{log}");
        };
        log.push_str(&line);
        log.push('\n');
        if let Some((_, addr)) = line.split_once("listening bound=") {
            break addr.trim().to_string();
        }
    };
    assert!(
        log.contains("cannot print the address to stdout: No space left on device"),
        "{log}"
    );
    let health: String = ureq::get(&format!("http://{addr}/healthz"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(health.contains("\"ok\""), "{health}");
    drop(child);
}
