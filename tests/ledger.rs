//! Ledger scale: scoring the usual way (parallel, compiled formulas, the borrowed reader)
//! gives byte-identical results to the reference way (the strict reader and the rhai
//! interpreter, one thread) on the benchmark's ledger plus hostile lines; tallies are exact
//! and independent of thread count and line order.

use std::io::BufReader;

use jobpoints::internals::{
    GroupBy, JobReader, PartialTally, ScoreOptions, Scorer, Tally, TallyFormat, parse_time,
    run_ledger, write_jsonl,
};

use crate::util::{jobpoints, shipped_rules};

/// Lines every fallback of the fast path must handle exactly as the plain path does.
const HOSTILE: &str = r#"{"id":"h1","model":"Brain\u0044ance","width":512,"height":512,"steps":20,"completed_at":"2024-05-01T00:00:00Z"}
{"id":"h2","model":"BrainDance","model":"AnimagineXL","width":512,"height":512,"steps":20}
{"job_id":"h3","model_id":"BrainDance","miner_id":"0xabc","completed_at":"2024-05-01T00:00:00Z","model_input":{"SD":{"width":1024,"height":1024,"num_iterations":20}}}
{"id":42,"model":"BrainDance","width":512,"height":512,"steps":20}
{"id":18446744073709551615,"model":"BrainDance","width":512,"height":512,"steps":20}
{"id":"h6","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-05-01T02:00:00+02:00"}
{"id":"h7","model":"BrainDance","width":512,"height":512,"steps":20,"miner":null}
{"id":"h8","model":"BrainDance","width":512.0,"height":512,"steps":20}
{"id":"h9","model":"BrainDance","width":null,"height":512,"steps":20}
{"id":"h10","model":"BrainDance","width":"512","height":512,"steps":20}
{"id":"h11","model":"NoSuchModel","width":512,"height":512,"steps":20}
{"id":"h12","model":"mistralai/mixtral-8x7b-instruct","input_tokens":99999999999999999999,"output_tokens":1}
{"id":"h13","model":"BrainDance","width":-5,"height":512,"steps":20}

[1,2,3]
{"id":"h16","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-03-01T00:00:00Z"}
{"id":"h17","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"not a time"}
{"id":"h18","model":"  ","width":512,"height":512,"steps":20}
{"id":"h19","model":"BrainDance","width":512,"height":512,"steps":20,"extra":{"nested":[1,{"a":"\u00e9"}]},"flag":true}
{"id":"h20","model":"FLUX.1-dev","width":1024,"height":1024,"steps":20,"completed_at":"2024-09-20T00:00:00Z"}
{"id":"h21","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-05-01"}
{"id":"h22","model":"dolphin-2.9-llama3-8b","input_tokens":1000,"output_tokens":0,"completed_at":"2024-05-01T00:00:00Z"}
{"id":"h23","model":"BrainDance","width":512,"height":512,"steps":20} trailing
{"id":"h24","model":"BrainDance","width":512,"height":512,"steps":20,
"#;

/// More lines for what the scanner reads itself or hands to serde_json: escapes, unicode,
/// whitespace inside objects, numbers of every shape, huge integers and duplicate keys in
/// nested values, nesting at serde_json's limit, control characters, a BOM that is not at the
/// start, CRLF and lone CRs.
const SCANNED: &str = concat!(
    "{\"id\":\"s1\",\"model\":\"BrainDance\",\"miner\":\"0x\\u0041\\\"\\\\\",\"width\":512,\"height\":512,\"steps\":20}\n",
    "{\"id\":\"s2 ü 日本\",\"model\":\"BrainDance\",\"miner\":\"ü\",\"width\":512,\"height\":512,\"steps\":20}\n",
    "{\"id\":\"s3\",\"model\":\"日本\",\"width\":512,\"height\":512,\"steps\":20}\n",
    " { \"id\" : \"s4\" ,\t\"model\" :\"BrainDance\", \"width\":512 , \"height\" : 512,\"steps\":20 } \t\n",
    "{\"id\":\"s5\",\"model\":\"BrainDance\",\"width\":5.12e2,\"height\":512,\"steps\":2e1}\n",
    "{\"id\":\"s6\",\"model\":\"BrainDance\",\"width\":1E3,\"height\":-0,\"steps\":20}\n",
    "{\"id\":\"s7\",\"model\":\"mistralai/mixtral-8x7b-instruct\",\"input_tokens\":512.0,\"output_tokens\":1e2}\n",
    "{\"id\":\"s8\",\"model\":\"mistralai/mixtral-8x7b-instruct\",\"input_tokens\":999999999999999999,\"output_tokens\":-1}\n",
    "{\"id\":\"s9\",\"model\":\"mistralai/mixtral-8x7b-instruct\",\"input_tokens\":9223372036854775807,\"output_tokens\":1}\n",
    "{\"id\":\"s10\",\"model\":\"mistralai/mixtral-8x7b-instruct\",\"input_tokens\":-9223372036854775808,\"output_tokens\":1}\n",
    "{\"id\":\"s11\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20,\"x\":{\"n\":[99999999999999999999]}}\n",
    "{\"id\":\"s12\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20,\"x\":[{\"a\":1,\"a\":2}]}\n",
    "{\"id\":-0,\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}\n",
    "{\"id\":1.0,\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}\n",
    "{\"id\":\"s15\",\"model\":\"BrainDance\",\"width\":true,\"height\":512,\"steps\":20}\n",
    "{\"id\":\"s16\",\"model\":\"Brain\\u0000Dance\",\"width\":512,\"height\":512,\"steps\":20}\n",
    "{\"id\":\"s17\",\"model\":\"Brain\tDance\",\"width\":512,\"height\":512,\"steps\":20}\n",
    "{\"id\":\"s18\",\"st\\u0065ps\":20,\"model\":\"BrainDance\",\"width\":512,\"height\":512}\n",
    "\u{feff}{\"id\":\"s19\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}\n",
    "{\"id\":\"s20\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}\r\n",
    "{\"id\":\"s21\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}\r\r\n",
    "{\"id\":\"s22\",\"model\":\"BrainDance\",\r\"width\":512,\"height\":512,\"steps\":20}\n",
    "{}\n",
    "{\"id\":\"s24\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20,}\n",
    "{\"id\":\"s25\",\"model\":\"BrainDance\",\"width\":00512,\"height\":512,\"steps\":20}\n",
    "{\"id\":\"s26\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20,\"n\":nul}\n",
    "{\"id\":\"s27\",\"model\":\"BrainDance\",\"completed_at\":\"2024-05-01T00:00:00.5Z\",\"width\":512,\"height\":512,\"steps\":20}\n",
    "{\"id\":\"s28\",\"model\":\"FLUX.1-dev\",\"completed_at\":\"2024-09-17T23:59:59Z\",\"width\":1024,\"height\":1024,\"steps\":20}\n",
    "{\"id\":\"s29\",\"model\":\"FLUX.1-dev\",\"completed_at\":\"2024-09-17T00:00:00Z\",\"width\":1024,\"height\":1024,\"steps\":20}\n",
    "{\"id\":\"s30\",\"model\":\"FLUX.1-dev\",\"completed_at\":\"2024-09-16T23:59:59.999Z\",\"width\":1024,\"height\":1024,\"steps\":20}\n",
);

fn ledger_text(jobs: u64) -> String {
    let mut bytes = Vec::new();
    jobpoints::internals::synth::write_ledger(&mut bytes, jobs, 7).unwrap();
    let mut text = String::from_utf8(bytes).unwrap();
    text.push_str(HOSTILE);
    text.push_str(SCANNED);
    // Nesting at serde_json's depth limit, in a field no rule reads: one level below it is
    // fine, at it the whole line is broken JSON.
    for depth in [125, 126, 127] {
        text.push_str(&format!(
            "{{\"id\":\"d{depth}\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20,\"x\":{}{}}}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ));
    }
    text
}

pub fn score(text: &str, fast: bool, threads: usize, at: Option<&str>) -> Vec<u8> {
    let rules = shipped_rules();
    let scorer = Scorer {
        opts: ScoreOptions {
            at: at.map(|t| parse_time(t).unwrap()),
            explain: false,
        },
        reference: !fast,
        ..Scorer::new(&rules)
    };
    let mut out = Vec::new();
    let reader = JobReader::new(BufReader::new(text.as_bytes()));
    let jobs = run_ledger(
        reader,
        &scorer,
        threads,
        |s, buf: &mut Vec<u8>| write_jsonl(buf, s),
        |buf| {
            out.extend_from_slice(&buf);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(
        jobs as usize,
        out.iter().filter(|&&b| b == b'\n').count(),
        "one result per job"
    );
    out
}

#[test]
fn fast_path_is_byte_identical_to_plain_evaluation() {
    let text = ledger_text(20_000);
    for at in [
        None,
        Some("2024-05-01"),
        Some("2024-03-01T00:00:00Z"),
        Some("2025-06-01"),
    ] {
        let plain = score(&text, false, 1, at);
        for threads in [1, 3] {
            let fast = score(&text, true, threads, at);
            if fast != plain {
                let (f, p) = (
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&plain),
                );
                let diff = f.lines().zip(p.lines()).find(|(a, b)| a != b);
                panic!("fast path differs (at {at:?}, {threads} threads): {diff:?}");
            }
        }
        let text = String::from_utf8(plain).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            20_000 + HOSTILE.lines().filter(|l| !l.trim().is_empty()).count() + 30 + 3
        );
        if at == Some("2024-03-01T00:00:00Z") {
            // Before Season 1 nothing is priced, and the reason names the time.
            assert!(!text.contains(r#""status":"ok""#));
            assert!(text.contains("is in force at 2024-03-01"));
            continue;
        }
        assert!(text.contains(r#""status":"ok""#));
        assert!(text.contains(r#""status":"invalid""#));
        assert!(text.contains(r#""status":"below_threshold""#));
        assert!(text.contains(r#""status":"no_rule""#));
    }
}

/// The tally of `text`, as its exact JSON partial.
fn tally(text: &str, threads: usize, by: &[GroupBy]) -> String {
    let rules = shipped_rules();
    let scorer = Scorer::new(&rules);
    let mut t = Tally::new(by.to_vec(), None, &rules.hash);
    let reader = JobReader::new(BufReader::new(text.as_bytes()));
    run_ledger(
        reader,
        &scorer,
        threads,
        |s, p: &mut PartialTally| p.add(by, s),
        |p| {
            t.merge(p);
            Ok(())
        },
    )
    .unwrap();
    t.render(TallyFormat::Json)
}

#[test]
fn tallies_are_exact_for_any_thread_count_and_line_order() {
    let text = ledger_text(10_000);
    let by = [GroupBy::Miner, GroupBy::Kind];
    let one = tally(&text, 1, &by);
    assert_eq!(tally(&text, 4, &by), one);
    // Reverse and shuffle the lines: the same totals to the last digit.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.reverse();
    assert_eq!(tally(&lines.join("\n"), 2, &by), one);
    let mut state = 0x9e37_79b9_u64;
    for i in (1..lines.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        lines.swap(i, (state % (i as u64 + 1)) as usize);
    }
    assert_eq!(tally(&lines.join("\n"), 3, &by), one);
    // And they add up to what the plain results say.
    let doc: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(
        doc["total"]["jobs"],
        text.lines().filter(|l| !l.trim().is_empty()).count() as u64
    );
    let plain = String::from_utf8(score(&text, false, 1, None)).unwrap();
    let micros: i128 = plain
        .lines()
        .filter(|l| l.contains(r#""status":"ok""#))
        .map(|l| {
            crate::eval_cli::raw_points(l)
                .replace('.', "")
                .parse::<i128>()
                .unwrap()
        })
        .sum();
    let tallied: i128 = doc["total"]["points"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| {
            p.as_str()
                .unwrap()
                .replace('.', "")
                .parse::<i128>()
                .unwrap()
        })
        .sum();
    assert_eq!(tallied, micros);
}

#[test]
fn eval_threads_do_not_change_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    std::fs::write(&path, ledger_text(3_000)).unwrap();
    let run = |threads: &str| {
        let out = jobpoints()
            .args(["eval", "--threads", threads])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "the ledger has invalid lines");
        out.stdout
    };
    let one = run("1");
    assert_eq!(run("3"), one);
    // The plain sequential writer (CSV path aside) agrees with the parallel one.
    let json = jobpoints()
        .args(["eval", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let array: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(one)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(array, lines);
}

#[test]
fn tally_cli_totals_and_formats() {
    let out = jobpoints()
        .args([
            "tally",
            "--by",
            "kind",
            "--format",
            "csv",
            "examples/jobs.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        csv,
        "kind,jobs,ok,below_threshold,over_limit,no_rule,disabled,unmeasured,invalid,error,llama_points,waifu_points\n\
         llama,3,2,0,0,1,0,0,0,0,2.052000,0.000000\n\
         waifu,5,4,1,0,0,0,0,0,0,0.000000,24.527605\n"
    );
    let out = jobpoints()
        .args(["tally", "--by", "miner,day", "examples/jobs.jsonl"])
        .output()
        .unwrap();
    crate::util::with_snapshots(|| {
        insta::assert_snapshot!(
            "tally_examples_miner_day",
            String::from_utf8(out.stdout).unwrap()
        )
    });
    let out = jobpoints()
        .args(["tally", "--format", "json", "examples/jobs.jsonl"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // The partial format (#16): versioned, exact decimal strings, what it was made with.
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["by"], serde_json::json!(["miner"]));
    assert_eq!(doc["at"], serde_json::Value::Null);
    assert_eq!(doc["rulesets"].as_array().unwrap().len(), 1);
    assert_eq!(doc["total"]["points"]["waifu"], "24.527605");
    assert_eq!(doc["total"]["jobs"], 8);
}
