//! Hostile job files: each case is a file with one hostile job (or hostile bytes) between good
//! ones. Each must give exactly one `invalid` result naming its line and field, the good jobs
//! around it must still be scored, and the count of results must equal the count of jobs.

use std::sync::OnceLock;

use crate::util::score_record;
use jobpoints::Status;
use jobpoints::internals::{JobReader, RuleSet, ScoreOptions};

use crate::util::{jobpoints, shipped_rules, with_snapshots};

const OK: &str = r#"{"id":"ok","model":"BrainDance","width":512,"height":512,"steps":20}"#;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(shipped_rules)
}

/// (line, status, field, error) of every result for `bytes`.
fn score(bytes: &[u8]) -> Vec<(u64, Status, Option<String>, String)> {
    JobReader::new(bytes)
        .map(|r| score_record(rules(), &r, ScoreOptions::default()))
        .map(|s| {
            (
                s.line(),
                s.status(),
                s.field().map(String::from),
                s.error().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// One hostile JSONL line: (what, the line, the field it must name, text the error must show).
fn hostile_lines() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let job = |extra: &str| {
        format!(r#"{{"id":"h","model":"BrainDance","width":512,"height":512,"steps":20,{extra}}}"#)
    };
    let image = |w: &str| {
        format!(r#"{{"id":"h","model":"BrainDance","width":{w},"height":512,"steps":20}}"#)
    };
    let deep = format!(
        r#"{{"model":"BrainDance","width":512,"height":512,"steps":20,"x":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    vec![
        ("integer beyond u64", image("99999999999999999999"), "width", "99999999999999999999"),
        ("integer beyond i64", image("9223372036854775808"), "width", "9223372036854775808"),
        ("negative beyond i64", image("-9223372036854775809"), "width", "-9223372036854775809"),
        ("huge integer in an ignored field", job(r#""seed":123456789012345678901234567890"#), "seed", "123456789012345678901234567890"),
        ("float where an integer belongs", image("512.5"), "width", "512.5"),
        ("whole float where an integer belongs", image("512.0"), "width", "must be an integer"),
        ("float beyond every range", image("1e300"), "width", "too large for an integer"),
        // #11: serde_json refuses these outright; they are invalid only where they are read.
        ("float beyond f64", image("1e400"), "width", "`width` = 1e400 is too large to be a number"),
        ("negative float beyond f64", image("-1e400"), "width", "-1e400"),
        ("minus zero is the integer 0", image("-0"), "width", "`width` = 0 is below the minimum 1"),
        ("minus zero point zero is a float", image("-0.0"), "width", "must be an integer, got -0.0"),
        ("time past the representable range", job(r#""completed_at":"9999-12-31T23:59:59Z""#), "completed_at", "outside the range jobpoints can represent"),
        ("time zone name without an offset", job(r#""completed_at":"2024-06-01T00:00:00[Europe/Paris]""#), "completed_at", "no UTC offset"),
        ("string", image(r#""512""#), "width", "\"512\""),
        ("null", image("null"), "width", "null"),
        ("boolean", image("true"), "width", "true"),
        ("nested object", image(r#"{"value":512}"#), "width", "{\"value\":512}"),
        ("array", image("[512]"), "width", "[512]"),
        ("negative", image("-512"), "width", "below the minimum"),
        ("absurdly large", image("1000000"), "width", "above the maximum"),
        ("duplicate key", job(r#""steps":2000"#), "steps", "duplicate key `steps`"),
        (
            "duplicate nested key",
            r#"{"job_id":"h","model_id":"BrainDance","model_input":{"SD":{"width":512,"height":512,"num_iterations":20,"width":4096}}}"#.into(),
            "model_input.SD.width",
            "duplicate key `model_input.SD.width`",
        ),
        ("duplicate model", job(r#""model":"OtherModel""#), "model", "duplicate key `model`"),
        ("model is an object", r#"{"id":"h","model":{"name":"BrainDance"}}"#.into(), "model", "must be a string"),
        ("model is empty", r#"{"id":"h","model":"  "}"#.into(), "model", "is empty"),
        ("id is a float", r#"{"id":1.5,"model":"BrainDance"}"#.into(), "id", "1.5"),
        ("unparseable time", job(r#""completed_at":"last tuesday""#), "completed_at", "completed_at"),
        ("time is a number", job(r#""completed_at":1714521600"#), "completed_at", "RFC 3339"),
        ("missing model", r#"{"id":"h","width":512}"#.into(), "model", "missing field `model`"),
        ("deep nesting", deep, "", "recursion limit"),
        ("not an object", "[1, 2, 3]".into(), "", "expected a JSON object"),
        ("broken JSON", r#"{"id":"h","model":"BrainDance","width":512,"#.into(), "", "broken JSON"),
    ]
}

#[test]
fn numbers_serde_json_refuses_do_not_spoil_a_job_that_ignores_them() {
    // `1e400` in a field no rule reads used to make the whole job "broken JSON" (#11).
    let line = r#"{"id":"big","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-05-01T00:00:00Z","seed":1e400,"noise":[-2e999,{"x":-0}]}"#;
    let mut results = score(format!("{line}\n{line}\n").as_bytes());
    results.extend(score(format!("[{line},\n{line}]").as_bytes()));
    assert_eq!(results.len(), 4);
    for (_, status, _, error) in &results {
        assert_eq!(*status, Status::Ok, "{error}");
    }
}

#[test]
fn each_hostile_line_is_one_invalid_result_naming_its_field() {
    for (what, line, field, shows) in hostile_lines() {
        let file = format!("{OK}\n{line}\n{OK}\n");
        let results = score(file.as_bytes());
        assert_eq!(
            results.len(),
            3,
            "{what}: results out = jobs in: {results:?}"
        );
        assert_eq!(results[0].1, Status::Ok, "{what}: the job before is scored");
        assert_eq!(results[2].1, Status::Ok, "{what}: the job after is scored");
        let (at, status, got_field, error) = &results[1];
        assert_eq!((*at, *status), (2, Status::Invalid), "{what}: {error}");
        if !field.is_empty() {
            assert_eq!(got_field.as_deref(), Some(field), "{what}: {error}");
        }
        assert!(
            error.contains(shows),
            "{what}: `{error}` must show `{shows}`"
        );
    }
}

#[test]
fn hostile_lines_through_the_binary() {
    // All the cases in one file, as `jobpoints eval` sees it: one result per job, in order.
    let cases = hostile_lines();
    let mut file = String::new();
    for (_, line, _, _) in &cases {
        file.push_str(OK);
        file.push('\n');
        file.push_str(line);
        file.push('\n');
    }
    let out = jobpoints()
        .args(["eval", "-"])
        .write_stdin(file.clone())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "invalid jobs make the exit code 1"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), cases.len() * 2, "results out = jobs in");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["line"], i as u64 + 1);
        let want = if i % 2 == 0 { "ok" } else { "invalid" };
        assert_eq!(row["status"], want, "{row}");
    }
    let invalid: Vec<String> = rows
        .iter()
        .skip(1)
        .step_by(2)
        .map(|r| r.to_string())
        .collect();
    with_snapshots(|| {
        insta::with_settings!({ description => file }, {
            insta::assert_snapshot!("eval_hostile_jobs", invalid.join("\n"));
        })
    });
}

/// Hostile bytes that are not one JSONL line: (what, file, expected (line, status) per result).
#[test]
fn hostile_files_lose_nothing() {
    use Status::{Invalid, Ok as Scored};
    type Case = (&'static str, Vec<u8>, Vec<(u64, Status)>);
    let cases: Vec<Case> = vec![
        (
            "BOM, CRLF and blank lines",
            format!("\u{feff}{OK}\r\n\r\n   \r\n{OK}\r\n").into_bytes(),
            vec![(1, Scored), (4, Scored)],
        ),
        (
            "invalid UTF-8",
            [OK.as_bytes(), b"\n{\"model\":\"Brain\xffDance\"}\n", OK.as_bytes()].concat(),
            vec![(1, Scored), (2, Invalid), (3, Scored)],
        ),
        (
            "truncated last line",
            format!("{OK}\n{OK}\n{{\"model\":\"BrainDance\",\"wid").into_bytes(),
            vec![(1, Scored), (2, Scored), (3, Invalid)],
        ),
        (
            "truncated first line",
            format!("{{\"model\":\"BrainDance\",\"width\":5\n{OK}\n{OK}\n").into_bytes(),
            vec![(1, Invalid), (2, Scored), (3, Scored)],
        ),
        (
            "a broken line in a file read as documents",
            format!("{{\"model\":\n{OK}\n{{\"id\":\"x\",\"model\":\"BrainDance\"\n{OK}\n").into_bytes(),
            vec![(1, Invalid), (2, Scored), (3, Invalid), (4, Scored)],
        ),
        (
            "array with one invalid element",
            format!("[\n  {OK},\n  {{\"model\":\"BrainDance\",\"width\":\"x\"}},\n  {OK}\n]\n").into_bytes(),
            vec![(2, Scored), (3, Invalid), (4, Scored)],
        ),
        (
            "array with one broken element",
            format!("[\n  {OK},\n  {{\"model\": ,\"width\":1}},\n  {OK}\n]\n").into_bytes(),
            vec![(2, Scored), (3, Invalid), (4, Scored)],
        ),
        (
            "array with a broken multi-line element",
            format!("[\n  {OK},\n  {{\n    \"model\": \"BrainDance\",\n    \"x\": {{\"y\": }}\n  }},\n  {OK}\n]\n").into_bytes(),
            vec![(2, Scored), (3, Invalid), (7, Scored)],
        ),
        (
            "array with a duplicate key",
            format!("[{OK},\n{{\"model\":\"BrainDance\",\"model\":\"x\"}},\n{OK}]").into_bytes(),
            vec![(1, Scored), (2, Invalid), (3, Scored)],
        ),
    ];
    for (what, bytes, want) in cases {
        let got: Vec<(u64, Status)> = score(&bytes).into_iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn a_ten_megabyte_line_is_read_and_a_longer_than_allowed_one_is_refused() {
    let big = "x".repeat(10 * 1024 * 1024);
    let long_ok = format!(
        r#"{{"id":"big","model":"BrainDance","width":512,"height":512,"steps":20,"note":"{big}"}}"#
    );
    let long_broken = format!(r#"{{"id":"big","model":"{big}"#);
    let file = format!("{OK}\n{long_ok}\n{long_broken}\n{OK}\n");
    let got: Vec<(u64, Status)> = score(file.as_bytes())
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(
        got,
        [
            (1, Status::Ok),
            (2, Status::Ok),
            (3, Status::Invalid),
            (4, Status::Ok)
        ]
    );

    let overlong = "y".repeat(jobpoints::internals::MAX_LINE_BYTES + 10);
    let file = format!("{OK}\n{overlong}\n{OK}\n");
    let results = score(file.as_bytes());
    let got: Vec<(u64, Status)> = results.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        got,
        [(1, Status::Ok), (2, Status::Invalid), (3, Status::Ok)]
    );
    assert!(results[1].3.contains("longer than"), "{}", results[1].3);
}

#[test]
fn the_ledger_fast_path_treats_hostile_lines_exactly_like_the_plain_path() {
    // `eval` scores JSONL through the fast path (borrowing parser, compiled formulas); a
    // hostile line must fall back to, or agree with, the plain strict reader byte for byte.
    let mut file = String::new();
    for (_, line, _, _) in hostile_lines() {
        file.push_str(OK);
        file.push('\n');
        file.push_str(&line);
        file.push('\n');
    }
    // Nested duplicates and huge integers in fields the fast path would otherwise skip.
    file.push_str(
        r#"{"model":"BrainDance","width":512,"height":512,"steps":20,"meta":{"a":1,"a":2}}"#,
    );
    file.push('\n');
    file.push_str(r#"{"model":"BrainDance","width":512,"height":512,"steps":20,"meta":[{"n":99999999999999999999}]}"#);
    file.push('\n');
    let plain = crate::ledger::score(&file, false, 1, None);
    let fast = crate::ledger::score(&file, true, 2, None);
    assert_eq!(
        String::from_utf8_lossy(&fast),
        String::from_utf8_lossy(&plain)
    );
    let text = String::from_utf8(plain).unwrap();
    let last: Vec<&str> = text.lines().rev().take(2).collect();
    assert!(last[1].contains("duplicate key `meta.a`"), "{}", last[1]);
    assert!(
        last[0].contains("`meta.0.n` = 99999999999999999999"),
        "{}",
        last[0]
    );
}

#[test]
fn miner_strings_cannot_spoof_a_terminal_or_run_in_a_spreadsheet() {
    // Ids, models and miners come from miners. Raw, an ANSI escape recoloured or hid text,
    // a CR or LF faked a row on the operator's terminal, and a cell starting with `=` ran as
    // a spreadsheet formula (#11).
    let jobs = concat!(
        r#"{"id":"\u001b[2J\u001b[31mFAKE","model":"BrainDance","width":512,"height":512,"steps":20,"miner":"0xabc\r\n0xevil      1   1   0   0   0   0   999999.000000"}"#,
        "\n",
        r#"{"id":"=HYPERLINK(\"http://x\",\"click\")","model":"BrainDance","width":512,"height":512,"steps":20,"miner":"@SUM(A1)"}"#,
        "\n",
        r#"{"id":"-2+3","model":"Brain\u202eecnaD","width":512,"height":512,"steps":20,"miner":"+1"}"#,
        "\n",
    );
    let run = |args: &[&str]| {
        let out = jobpoints().args(args).write_stdin(jobs).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    for args in [
        &["eval", "--format", "table", "-"][..],
        &["tally", "--by", "miner,model", "-"][..],
        &["eval", "--format", "table", "--explain", "-"][..],
    ] {
        let text = run(args);
        for bad in ['\u{1b}', '\r', '\u{202e}'] {
            assert!(!text.contains(bad), "{args:?} printed {bad:?}:\n{text}");
        }
        assert!(
            text.contains(r"\u{1b}[2J") || !args.contains(&"eval"),
            "{args:?} shows the escape as text:\n{text}"
        );
    }
    let tally = run(&["tally", "--by", "miner", "-"]);
    assert!(
        tally.contains(r"0xabc\r\n0xevil"),
        "the fake row stays inside its cell:\n{tally}"
    );
    for (args, cells) in [
        (
            &["eval", "--format", "csv", "-"][..],
            &[
                r#""'=HYPERLINK(""http://x"",""click"")""#,
                "'@SUM(A1)",
                "'-2+3",
                "'+1",
            ][..],
        ),
        (
            &["tally", "--by", "miner", "--format", "csv", "-"][..],
            &["'@SUM(A1)", "'+1"][..],
        ),
    ] {
        let csv = run(args);
        for cell in cells {
            assert!(csv.contains(cell), "{args:?} lacks {cell}:\n{csv}");
        }
        assert!(!csv.contains(",=") && !csv.contains(",@"), "{csv}");
    }
}
