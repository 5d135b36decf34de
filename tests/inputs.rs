//! Every input shape, streamed and lossless (#11): JSONL, arrays on one line or pretty,
//! multi-line documents and any mix of them, with LF, CRLF or CR line ends, a BOM and blank
//! lines, give one result per job, each good job scored exactly as it would be alone — one at
//! a time and through the parallel pipeline — in linear time and bounded memory.

use std::io::{self, Read};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::score_record;
use jobpoints::Status;
use jobpoints::internals::{
    JobReader, RuleSet, ScoreOptions, Scorer, parse_line, run_ledger, write_jsonl,
};
use proptest::prelude::*;

use crate::util::{jobpoints, shipped_rules};

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(shipped_rules)
}

const OK: &str = r#"{"id":"ok","model":"BrainDance","width":512,"height":512,"steps":20}"#;

/// (line, status) of every result, read one job at a time.
fn statuses(bytes: &[u8]) -> Vec<(u64, Status)> {
    JobReader::new(bytes)
        .map(|r| score_record(rules(), &r, ScoreOptions::default()))
        .map(|s| (s.line(), s.status()))
        .collect()
}

/// The JSONL results of `bytes` through the parallel pipeline, from an input that gives
/// `chunk` bytes per read.
fn pipeline(bytes: &[u8], threads: usize, chunk: usize) -> Vec<serde_json::Value> {
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let scorer = Scorer::new(rules());
    let mut out = Vec::new();
    let jobs = run_ledger(
        JobReader::new(io::BufReader::with_capacity(chunk, Trickle(bytes, chunk))),
        &scorer,
        threads,
        |s, buf: &mut Vec<u8>| write_jsonl(buf, s),
        |buf| {
            out.extend_from_slice(&buf);
            Ok(())
        },
    )
    .expect("in memory");
    let rows: Vec<serde_json::Value> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("JSONL"))
        .collect();
    assert_eq!(rows.len() as u64, jobs, "the pipeline counts what it wrote");
    rows
}

/// The statuses of `text` through the binary (`eval -`).
fn through_binary(text: &str) -> Vec<(u64, String)> {
    let out = jobpoints()
        .args(["eval", "--invalid-exit-code", "0", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["line"].as_u64().unwrap(),
                v["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

use Status::{Invalid, Ok as Scored};

#[test]
fn one_broken_element_of_a_one_line_array_costs_only_itself() {
    // Before: 2 results for 4 jobs (the rest of the file "could not be read").
    let text = format!("[{OK},{{\"model\":x}},{OK},{OK}]");
    let want = vec![(1, Scored), (1, Invalid), (1, Scored), (1, Scored)];
    assert_eq!(statuses(text.as_bytes()), want);
    let bin = through_binary(&text);
    assert_eq!(bin.len(), 4);
    assert_eq!(bin[1].1, "invalid");
    // A missing comma: the element after it is invalid, the others are scored.
    let text = format!("[{OK},{OK} {OK},{OK}]");
    let want = vec![(1, Scored), (1, Scored), (1, Invalid), (1, Scored)];
    assert_eq!(statuses(text.as_bytes()), want);
}

#[test]
fn jsonl_after_an_array_is_one_result_per_line() {
    // Before: everything after the `]` was one invalid result.
    let text = format!("[{OK},\n{OK}]\n{OK}\n{{\"model\":x}}\n\n{OK}\n");
    let want = vec![
        (1, Scored),
        (2, Scored),
        (3, Scored),
        (4, Invalid),
        (6, Scored),
    ];
    assert_eq!(statuses(text.as_bytes()), want);
    assert_eq!(through_binary(&text).len(), 5);
}

#[test]
fn cr_alone_ends_a_line() {
    // Before: 5 jobs on CR-only lines were one invalid result.
    let text = format!("{OK}\r{OK}\r{{\"model\":x}}\r{OK}\r{OK}\r");
    let want = vec![
        (1, Scored),
        (2, Scored),
        (3, Invalid),
        (4, Scored),
        (5, Scored),
    ];
    assert_eq!(statuses(text.as_bytes()), want);
    assert_eq!(through_binary(&text).len(), 5);
}

#[test]
fn an_object_over_several_lines_is_one_job_whatever_its_first_line() {
    // Before: one invalid result per line unless the first line was a lone `{`.
    let text = concat!(
        "{\"id\": \"a\", \"model\": \"BrainDance\",\n",
        "  \"width\": 512, \"height\": 512,\n",
        "  \"steps\": 20}\n",
        "{ \"id\": \"b\",\n",
        "  \"model\": \"BrainDance\", \"width\": 512, \"height\": 512, \"steps\": 20 }\n",
    );
    assert_eq!(statuses(text.as_bytes()), [(1, Scored), (4, Scored)]);
    assert_eq!(through_binary(text), [(1, "ok".into()), (4, "ok".into())]);
}

#[test]
fn a_broken_nested_element_indented_like_its_siblings_is_one_result() {
    // Before: the nested `{` at the jobs' indent was taken for the next job: 2 results.
    let text = concat!(
        "[\n",
        "  {\n",
        "    \"model\": \"BrainDance\", \"width\": 512, \"height\": 512, \"steps\": 20,\n",
        "    \"history\": [\n",
        "  {\"seed\": 1},\n",
        "  {\"seed\": oops}\n",
        "    ]\n",
        "  },\n",
        "  {\"model\": \"BrainDance\", \"width\": 512, \"height\": 512, \"steps\": 20}\n",
        "]\n",
    );
    assert_eq!(statuses(text.as_bytes()), [(2, Invalid), (9, Scored)]);
}

#[test]
fn pretty_documents_are_read_in_linear_time() {
    // Before: 10k/20k/40k/80k pretty jobs took 2/8/32/128 s (release); one pretty job before
    // 10^6 JSONL lines did not finish in 120 s. Generous bounds for a debug build on a shared
    // machine; linear reading takes a fraction of them.
    let job = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(OK).unwrap())
        .unwrap();
    let text = format!("{job}\n").repeat(40_000);
    let start = Instant::now();
    let n = JobReader::new(text.as_bytes()).count();
    assert_eq!(n, 40_000);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "40k pretty jobs took {:?}",
        start.elapsed()
    );
    let text = format!("{job}\n{}", format!("{OK}\n").repeat(200_000));
    let start = Instant::now();
    let n = JobReader::new(text.as_bytes()).count();
    assert_eq!(n, 200_001);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "a pretty job then 200k lines took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_file_without_jobs_says_so() {
    // Before: a closed stdin gave exit 0, no results and no word.
    for input in ["", "\n\n  \n", "[]", "\u{feff}"] {
        let out = jobpoints()
            .args(["eval", "-"])
            .write_stdin(input)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err, "note: no jobs in standard input\n", "{input:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = jobpoints()
        .args(["tally", "--format", "json"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no jobs in `") && err.contains("empty.jsonl"),
        "{err}"
    );
}

/// Peak RSS in kB of the binary running `args` on `input`, from its own report.
fn peak_rss_kb(args: &[&str], input: &std::path::Path) -> u64 {
    let out = jobpoints()
        .args(args)
        .arg(input)
        .env("JOBPOINTS_REPORT_PEAK_RSS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    err.lines()
        .find_map(|l| l.strip_prefix("peak_rss "))
        .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak_rss in {err}"))
}

#[test]
fn arrays_and_tables_are_streamed_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // 600k tiny elements on one line (1.8 MB): before, a 10 MB array of tiny elements took
    // 953 MB, about 95 bytes per byte of input.
    let tiny = dir.path().join("tiny.json");
    let elements = vec!["{}"; 600_000].join(",");
    std::fs::write(&tiny, format!("[{elements}]")).unwrap();
    let rss = peak_rss_kb(&["tally", "--invalid-exit-code", "0"], &tiny);
    assert!(rss < 64 * 1024, "a 1.8 MB array peaked at {rss} kB");
    // A 100k-row table: before, every row was kept until the end (10^6 rows: 914 MB).
    let ledger = dir.path().join("ledger.jsonl");
    let mut bytes = Vec::new();
    jobpoints::internals::synth::write_ledger(&mut bytes, 100_000, 3).unwrap();
    std::fs::write(&ledger, &bytes).unwrap();
    let rss = peak_rss_kb(
        &[
            "eval",
            "--format",
            "table",
            "--invalid-exit-code",
            "0",
            "--threads",
            "2",
        ],
        &ledger,
    );
    assert!(rss < 96 * 1024, "a 100k-row table peaked at {rss} kB");
}

#[test]
fn the_table_streams_rows_and_keeps_the_totals() {
    // More rows than one batch (2.1 MB): the totals count every job; the widths come from the
    // first batch, so a wider id later does not widen the columns above it.
    let mut text = String::new();
    for i in 0..25_000 {
        text.push_str(&format!(
            "{{\"id\":\"j{i}\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}}\n"
        ));
    }
    text.push_str("{\"id\":\"a-much-longer-id-than-any-before-it\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}\n");
    let out = jobpoints()
        .args(["eval", "--format", "table", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    let model_column = lines[0].find("model").unwrap();
    assert_eq!(
        lines[1].find("BrainDance"),
        Some(model_column),
        "{}",
        lines[0]
    );
    // header, rows, blank, totals (header, kind, total), `ruleset` and `engine` lines.
    assert_eq!(lines.len(), 1 + 25_001 + 1 + 3 + 2);
    assert!(lines.last().unwrap().starts_with("engine "));
    assert!(lines[25_001].contains("a-much-longer-id-than-any-before-it"));
    assert!(
        lines[25_001].find("BrainDance").unwrap() > model_column,
        "only its row widens"
    );
    // Points are summed per kind; the total row counts jobs only (kinds are never added).
    let waifu = lines.iter().find(|l| l.starts_with("waifu")).unwrap();
    assert!(
        waifu.contains(" 25001 ") && waifu.contains("7500.300000"),
        "{waifu}"
    );
    let total = lines.iter().find(|l| l.starts_with("total")).unwrap();
    assert!(total.contains(" 25001 "), "{total}");
}

// The property: any mix of shapes, line ends, BOM and blank lines, good and broken jobs.

/// Good jobs: each is scored alone as its compact text on line 1.
fn good_jobs() -> Vec<serde_json::Value> {
    [
        OK,
        r#"{"id":7,"model":"BrainDance","width":768,"height":512,"steps":30,"completed_at":"2024-05-15T12:00:00Z","miner":"0xabc"}"#,
        r#"{"job_id":"n1","model_id":"AnimagineXL","miner_id":"0x1","model_input":{"SD":{"width":1024,"height":1024,"num_iterations":25}}}"#,
        r#"{"id":"llm","model":"mistralai/mixtral-8x7b-instruct","input_tokens":812,"output_tokens":240}"#,
        r#"{"id":"esc \"q\" ü\u00e9 \\ ]}[{,:","model":"BrainDance","width":512,"height":512,"steps":20,"note":{"list":[1,{"a":[]}],"s":"x\ny"}}"#,
        r#"{"id":"below","model":"BrainDance","width":512,"height":512,"steps":2}"#,
        r#"{"id":"norule","model":"NoSuchModel","width":512,"height":512,"steps":20}"#,
        r#"{"id":"badfield","model":"BrainDance","width":"512","height":512,"steps":20}"#,
    ]
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect()
}

/// Broken jobs: `(text, allowed in arrays, allowed in JSONL and documents)`. Every one gives
/// exactly one `invalid` result. A job cut short is only written where jobs are cut short:
/// at the end of a JSONL line or document (its next job starts a line).
const BROKEN: &[(&str, bool, bool)] = &[
    (r#"{"id":"b1","model":x}"#, true, true),
    (
        r#"{"id":"b2","model":"BrainDance" "width":512}"#,
        true,
        true,
    ),
    (r#"{"id":"b3","model" "BrainDance"}"#, true, true),
    (r#"{"id":"b4","model":"BrainDance",}"#, true, true),
    (
        r#"{"id":"b5","model":"BrainDance","model":"x"}"#,
        true,
        true,
    ),
    (
        r#"{"id":"b6","model":"BrainDance","width":1e999999}"#,
        true,
        true,
    ),
    (r#"{"id":"b7","model":"BrainDance"}}"#, true, true),
    (r#"{"id":"b8","model":"Brain\qDance"}"#, true, true),
    ("42", true, true),
    // After a job cut short where a key was due, a line holding only a string is read as
    // that key (an object written with `indent=0` has its keys at its own column).
    ("\"a string\"", true, false),
    ("null", true, true),
    (r#"{"id":"b9","model":"Brain"#, false, true),
    (r#"{"id":"b10","model":"BrainDance","#, false, true),
    (r#"{"id":"b11","model":"#, false, true),
    (
        r#"{"id":"b12","model":"BrainDance","width":512"#,
        false,
        true,
    ),
    (
        r#"{"id":"b13","model":"BrainDance","x":{"y":[1,2]"#,
        false,
        true,
    ),
];

#[derive(Debug, Clone)]
enum Job {
    Good(usize),
    Broken(usize),
}

#[derive(Debug, Clone)]
enum Shape {
    Jsonl,
    /// An array on one line (only as the first thing in a file: later, a line `[...]` is
    /// one JSONL line).
    OneLineArray,
    PrettyArray,
    Documents,
}

#[derive(Debug, Clone)]
struct Segment {
    shape: Shape,
    jobs: Vec<(Job, bool, usize)>,
}

fn job_strategy(good: usize) -> impl Strategy<Value = Job> {
    prop_oneof![
        3 => (0..good).prop_map(Job::Good),
        1 => (0..BROKEN.len()).prop_map(Job::Broken),
    ]
}

fn segment_strategy(good: usize) -> impl Strategy<Value = Segment> {
    let shape = prop_oneof![
        Just(Shape::Jsonl),
        Just(Shape::OneLineArray),
        Just(Shape::PrettyArray),
        Just(Shape::Documents)
    ];
    // Each job: pretty or compact, and blank lines before it.
    let jobs = prop::collection::vec((job_strategy(good), any::<bool>(), 0usize..3), 1..8);
    (shape, jobs).prop_map(|(shape, jobs)| Segment { shape, jobs })
}

/// Renders a file: its bytes, and per job (in order) its start line and what it is.
fn render(
    segments: &[Segment],
    good: &[serde_json::Value],
    bom: bool,
    ending: &str,
) -> (Vec<u8>, Vec<(u64, Job)>) {
    let mut text: Vec<u8> = Vec::new();
    let mut jobs = Vec::new();
    let line_now = |text: &[u8]| text.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let compact = |j: &Job| -> Vec<u8> {
        match j {
            Job::Good(i) => serde_json::to_vec(&good[*i]).unwrap(),
            Job::Broken(i) => BROKEN[*i].0.as_bytes().to_vec(),
        }
    };
    let pretty = |j: &Job, indent: &str| -> Vec<u8> {
        match j {
            Job::Good(i) => serde_json::to_string_pretty(&good[*i])
                .unwrap()
                .replace('\n', &format!("\n{indent}"))
                .into_bytes(),
            Job::Broken(_) => compact(j),
        }
    };
    for (k, seg) in segments.iter().enumerate() {
        // Arrays may hold only what resynchronises inside an array.
        let in_array = matches!(seg.shape, Shape::OneLineArray | Shape::PrettyArray);
        let usable = |j: &Job| match j {
            Job::Good(_) => true,
            Job::Broken(i) => {
                if in_array {
                    BROKEN[*i].1
                } else {
                    BROKEN[*i].2
                }
            }
        };
        let seg_jobs: Vec<&(Job, bool, usize)> =
            seg.jobs.iter().filter(|(j, _, _)| usable(j)).collect();
        let shape = match seg.shape {
            Shape::OneLineArray if k > 0 => Shape::PrettyArray,
            ref s => s.clone(),
        };
        match shape {
            Shape::Jsonl => {
                for (j, _, blanks) in seg_jobs {
                    text.extend(std::iter::repeat_n(b'\n', *blanks));
                    jobs.push((line_now(&text), j.clone()));
                    text.extend(compact(j));
                    text.push(b'\n');
                }
            }
            Shape::Documents => {
                for (j, is_pretty, blanks) in seg_jobs {
                    text.extend(std::iter::repeat_n(b'\n', *blanks));
                    jobs.push((line_now(&text), j.clone()));
                    text.extend(if *is_pretty {
                        pretty(j, "")
                    } else {
                        compact(j)
                    });
                    text.push(b'\n');
                }
            }
            Shape::OneLineArray => {
                text.push(b'[');
                for (n, (j, _, _)) in seg_jobs.iter().enumerate() {
                    if n > 0 {
                        text.push(b',');
                    }
                    jobs.push((line_now(&text), j.clone()));
                    text.extend(compact(j));
                }
                text.extend(b"]\n");
            }
            Shape::PrettyArray => {
                text.extend(b"[\n");
                for (n, (j, is_pretty, blanks)) in seg_jobs.iter().enumerate() {
                    if n > 0 {
                        text.extend(b",\n");
                    }
                    text.extend(std::iter::repeat_n(b'\n', *blanks));
                    text.extend(b"  ");
                    jobs.push((line_now(&text), j.clone()));
                    text.extend(if *is_pretty {
                        pretty(j, "  ")
                    } else {
                        compact(j)
                    });
                }
                text.extend(b"\n]\n");
            }
        }
    }
    let mut bytes = Vec::new();
    if bom {
        bytes.extend(b"\xEF\xBB\xBF");
    }
    for &b in &text {
        if b == b'\n' {
            bytes.extend(ending.as_bytes());
        } else {
            bytes.push(b);
        }
    }
    (bytes, jobs)
}

/// What a good job gives alone, as JSON without its line.
fn alone(job: &serde_json::Value) -> serde_json::Value {
    let text = serde_json::to_vec(job).unwrap();
    let score = score_record(rules(), &parse_line(1, &text), ScoreOptions::default());
    without_line(serde_json::to_value(&score).unwrap())
}

fn without_line(mut v: serde_json::Value) -> serde_json::Value {
    v.as_object_mut().unwrap().remove("line");
    v
}

fn check(rows: &[serde_json::Value], jobs: &[(u64, Job)], good: &[serde_json::Value], how: &str) {
    assert_eq!(rows.len(), jobs.len(), "{how}: results out = jobs in");
    for (row, (line, job)) in rows.iter().zip(jobs) {
        assert_eq!(row["line"], *line, "{how}: {job:?}: {row}");
        match job {
            Job::Good(i) => assert_eq!(without_line(row.clone()), alone(&good[*i]), "{how}"),
            Job::Broken(i) => {
                assert_eq!(row["status"], "invalid", "{how}: {}: {row}", BROKEN[*i].0)
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_shape_gives_one_result_per_job_and_good_jobs_score_as_alone(
        segments in prop::collection::vec(segment_strategy(8), 1..5),
        bom in any::<bool>(),
        ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        chunk in prop_oneof![Just(1usize), Just(5), Just(64), Just(1 << 16)],
    ) {
        let good = good_jobs();
        let (bytes, jobs) = render(&segments, &good, bom, ending);
        let one_at_a_time: Vec<serde_json::Value> = JobReader::new(&bytes[..])
            .map(|r| serde_json::to_value(score_record(rules(), &r, ScoreOptions::default())).unwrap())
            .collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        check(&one_at_a_time, &jobs, &good, &format!("one at a time: {text:?}"));
        let parallel = pipeline(&bytes, 2, chunk);
        check(&parallel, &jobs, &good, &format!("pipeline: {text:?}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes, mostly JSON's own: nothing panics, and the pipeline (any read size,
    /// any thread count) gives exactly what reading one job at a time gives.
    #[test]
    fn any_bytes_read_the_same_one_at_a_time_and_in_parallel(
        bytes in prop::collection::vec(
            prop_oneof![
                8 => prop::sample::select(b"{}[]:,\"\\ \n\r\tax1-.e".to_vec()),
                1 => any::<u8>(),
            ],
            0..400,
        ),
        chunk in prop_oneof![Just(1usize), Just(7), Just(1 << 16)],
        threads in 1usize..3,
    ) {
        let one_at_a_time: Vec<serde_json::Value> = JobReader::new(&bytes[..])
            .map(|r| serde_json::to_value(score_record(rules(), &r, ScoreOptions::default())).unwrap())
            .collect();
        let parallel = pipeline(&bytes, threads, chunk);
        prop_assert_eq!(parallel, one_at_a_time);
    }
}
