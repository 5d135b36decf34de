//! Parquet and CSV ledgers (#16): files made by pyarrow and DuckDB
//! (`tests/fixtures/ledgers/`, see its PROVENANCE.md) give the same results and byte-identical
//! tallies as the same jobs in JSONL, through `eval`, `tally` and `diff --jobs`; bad rows are
//! `invalid` results naming row and column; `eval --format parquet` writes a typed file that
//! reads back to the same results.

use std::path::PathBuf;

use crate::util::{fixture, jobpoints};

fn ledger(name: &str) -> PathBuf {
    fixture(&format!("ledgers/{name}"))
}

/// `eval`'s JSONL results for `args`, each without its line (rows and lines differ by format).
fn eval(args: &[&str]) -> Vec<serde_json::Value> {
    let out = jobpoints()
        .args(["eval", "--invalid-exit-code", "0"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn without_line(rows: &[serde_json::Value]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("line");
            r
        })
        .collect()
}

fn tally(args: &[&str]) -> String {
    let out = jobpoints()
        .args([
            "tally",
            "--invalid-exit-code",
            "0",
            "--by",
            "miner,model,day",
            "--format",
            "json",
        ])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

const FORMATS: [&str; 3] = ["mixed.parquet", "mixed_dotted.parquet", "mixed.csv"];

#[test]
fn parquet_and_csv_score_exactly_like_jsonl() {
    let jsonl = ledger("mixed.jsonl");
    let want = eval(&[jsonl.to_str().unwrap()]);
    assert_eq!(want.len(), 48);
    let want_tally = tally(&[jsonl.to_str().unwrap()]);
    for name in FORMATS {
        let path = ledger(name);
        let got = eval(&[path.to_str().unwrap()]);
        assert_eq!(without_line(&got), without_line(&want), "{name}");
        // A Parquet row's line is its row number; a CSV record's, its line in the file.
        let first_line = if name.ends_with(".csv") { 2 } else { 1 };
        for (i, row) in got.iter().enumerate() {
            assert_eq!(row["line"], first_line + i as u64, "{name}");
        }
        assert_eq!(
            tally(&[path.to_str().unwrap()]),
            want_tally,
            "{name}: tally"
        );
    }
    // Every status is there, and the invalid jobs too: the comparison is not vacuous.
    for status in ["ok", "below_threshold", "no_rule", "invalid"] {
        assert!(want.iter().any(|r| r["status"] == status), "{status}");
    }
    // Several files at once, in any format, add up like one.
    let all: Vec<String> = std::iter::once("mixed.jsonl")
        .chain(FORMATS)
        .map(|n| ledger(n).to_str().unwrap().to_string())
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let doc: serde_json::Value = serde_json::from_str(&tally(&all)).unwrap();
    assert_eq!(doc["total"]["jobs"], 4 * 48);
}

#[test]
fn input_format_overrides_the_extension_and_csv_reads_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("ledger.data");
    std::fs::copy(ledger("mixed.parquet"), &renamed).unwrap();
    let want = without_line(&eval(&[ledger("mixed.jsonl").to_str().unwrap()]));
    let got = eval(&["--input-format", "parquet", renamed.to_str().unwrap()]);
    assert_eq!(without_line(&got), want);
    let csv = std::fs::read(ledger("mixed.csv")).unwrap();
    let out = jobpoints()
        .args([
            "eval",
            "--invalid-exit-code",
            "0",
            "--input-format",
            "csv",
            "-",
        ])
        .write_stdin(csv)
        .output()
        .unwrap();
    let got: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(without_line(&got), want);
}

#[test]
fn bad_rows_are_invalid_results_naming_row_and_column() {
    let got = eval(&[ledger("bad.parquet").to_str().unwrap()]);
    let show: Vec<(u64, &str, &str, &str)> = got
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
                r["field"].as_str().unwrap_or(""),
                r["error"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        show,
        [
            (
                1,
                "invalid",
                "width",
                "`width` must be an integer, got 512.0"
            ),
            (
                2,
                "invalid",
                "width",
                "missing field `width` (looked for `width`, `model_input.SD.width`)"
            ),
            (
                3,
                "invalid",
                "width",
                "row 3, column `width`: inf is not a finite number"
            ),
            (
                4,
                "invalid",
                "model",
                "row 4, column `model`: is binary, not UTF-8 text"
            ),
            (
                5,
                "invalid",
                "width",
                "`width` must be an integer, got 512.0"
            ),
        ]
    );
    let got = eval(&[ledger("bad.csv").to_str().unwrap()]);
    let show: Vec<(u64, &str, &str)> = got
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
                r["error"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        show,
        [
            (2, "ok", ""),
            (3, "invalid", "line 3 has 3 fields, the header has 5"),
            (4, "invalid", "`width` must be an integer, got \"wide\""),
            (
                5,
                "invalid",
                "line 5, column `model` is not valid UTF-8 (at byte 6)"
            ),
            (6, "ok", ""),
            (8, "invalid", "missing field `model`"),
            (9, "ok", ""),
        ]
    );
}

#[test]
fn unreadable_parquet_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.parquet");
    std::fs::write(&fake, "{\"model\":\"BrainDance\"}\n").unwrap();
    let bytes = std::fs::read(ledger("mixed.parquet")).unwrap();
    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let scrambled = dir.path().join("scrambled.parquet");
    let mut s = bytes.clone();
    // Keep the footer and magic, spoil the pages.
    for b in &mut s[8..bytes.len() / 2] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    std::fs::write(&scrambled, &s).unwrap();
    for path in [&fake, &cut, &scrambled] {
        let out = jobpoints().arg("eval").arg(path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{}: {out:?}",
            path.display()
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("error:"), "{err}");
    }
    let out = jobpoints()
        .args(["eval", "--input-format", "parquet", "-"])
        .write_stdin(bytes)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Parquet cannot be read from stdin"), "{err}");
}

#[test]
fn parquet_results_have_a_typed_schema_and_read_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("results.parquet");
    let jsonl = ledger("mixed.jsonl");
    let out = jobpoints()
        .args([
            "eval",
            "--invalid-exit-code",
            "0",
            "--format",
            "parquet",
            "--out",
        ])
        .arg(&out_path)
        .arg(&jsonl)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty());
    let want = eval(&[jsonl.to_str().unwrap()]);
    // The schema is typed: points an exact DECIMAL(20,6), line an INT64, status required.
    {
        use parquet::basic::{LogicalType, Repetition, Type as Physical};
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let file = SerializedFileReader::new(std::fs::File::open(&out_path).unwrap()).unwrap();
        let schema = file.metadata().file_metadata().schema_descr_ptr();
        let column = |name: &str| {
            schema
                .columns()
                .iter()
                .find(|c| c.name() == name)
                .unwrap_or_else(|| panic!("column {name}"))
                .clone()
        };
        let points = column("points");
        assert_eq!(points.physical_type(), Physical::FIXED_LEN_BYTE_ARRAY);
        assert_eq!(
            points.logical_type_ref(),
            Some(&LogicalType::decimal(6, 20)),
            "points"
        );
        assert_eq!(column("line").physical_type(), Physical::INT64);
        let status = column("status");
        assert_eq!(status.logical_type_ref(), Some(&LogicalType::String));
        assert_eq!(
            status.self_type().get_basic_info().repetition(),
            Repetition::REQUIRED
        );
        assert_eq!(
            column("miner").self_type().get_basic_info().repetition(),
            Repetition::OPTIONAL
        );
        assert_eq!(file.metadata().file_metadata().num_rows(), 48);
    }
    // Read the results file back as rows (jobpoints' own Parquet reader turns each row into a
    // JSON object: the decimal points come back as the exact number).
    let rows: Vec<serde_json::Value> =
        jobpoints::internals::open_ledger(&out_path, jobpoints::internals::InputFormat::Parquet)
            .unwrap()
            .map(|r| {
                let job = r.expect("a result row");
                job.value().clone()
            })
            .collect();
    assert_eq!(rows.len(), want.len());
    for (row, want) in rows.iter().zip(&want) {
        // JSONL writes absent values as null (or leaves them out); Parquet nulls are absent.
        let mut want = want.as_object().unwrap().clone();
        want.retain(|_, v| !v.is_null());
        assert_eq!(row.as_object().unwrap(), &want);
    }
    // Without --out, or with --explain, it is a usage error.
    for args in [
        &["eval", "--format", "parquet", "-"][..],
        &[
            "eval",
            "--format",
            "parquet",
            "--explain",
            "--out",
            "x.parquet",
            "-",
        ][..],
    ] {
        let out = jobpoints().args(args).write_stdin("").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn diff_reads_parquet_and_csv_jobs() {
    let rules = crate::util::rules_dir();
    for name in ["mixed.parquet", "mixed.csv", "mixed.jsonl"] {
        let out = jobpoints()
            .arg("diff")
            .arg(&rules)
            .arg(&rules)
            .args(["--format", "json", "--jobs"])
            .arg(ledger(name))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["impact"]["files"][0]["jobs"], 48, "{name}");
    }
}

#[test]
fn out_writes_any_format_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = ledger("mixed.jsonl");
    for format in ["jsonl", "csv", "json"] {
        let path = dir.path().join(format!("results.{format}"));
        let out = jobpoints()
            .args([
                "eval",
                "--invalid-exit-code",
                "0",
                "--format",
                format,
                "--out",
            ])
            .arg(&path)
            .arg(&jsonl)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(out.stdout.is_empty(), "{format}");
        let stdout = jobpoints()
            .args(["eval", "--invalid-exit-code", "0", "--format", format])
            .arg(&jsonl)
            .output()
            .unwrap()
            .stdout;
        assert!(!stdout.is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), stdout, "{format}");
    }
}

#[test]
fn verify_reads_parquet_and_csv_jobs() {
    // Results of a Parquet or CSV ledger verify against that ledger (matched by row and id);
    // a tampered result does not.
    let dir = tempfile::tempdir().unwrap();
    for name in ["mixed.parquet", "mixed.csv"] {
        let jobs = ledger(name);
        let out = jobpoints()
            .args(["eval", "--invalid-exit-code", "0"])
            .arg(&jobs)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let results = dir.path().join(format!("{name}.results.jsonl"));
        std::fs::write(&results, &out.stdout).unwrap();
        let verify = |results: &std::path::Path| {
            jobpoints()
                .args(["verify", "--format", "json"])
                .arg(results)
                .arg("--jobs")
                .arg(&jobs)
                .output()
                .unwrap()
        };
        let ok = verify(&results);
        assert_eq!(ok.status.code(), Some(0), "{name}: {ok:?}");
        let report: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
        let lines = String::from_utf8(out.stdout.clone()).unwrap();
        assert_eq!(
            report["verified"].as_u64(),
            Some(lines.lines().count() as u64),
            "{name}: {report}"
        );

        // Change the points of the first `ok` result: a mismatch (exit 5).
        let tampered: String = lines
            .lines()
            .scan(false, |done, l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                if !*done && v["status"] == "ok" {
                    v["points"] = serde_json::json!(123456.0);
                    *done = true;
                }
                Some(format!("{v}\n"))
            })
            .collect();
        let bad = dir.path().join(format!("{name}.tampered.jsonl"));
        std::fs::write(&bad, tampered).unwrap();
        assert_eq!(verify(&bad).status.code(), Some(5), "{name}");
    }
}

#[test]
fn parquet_results_carry_the_engine_and_the_pricing_time() {
    // Every field of a JSONL result is in the Parquet results too: `engine`,
    // `schema_version`, and with `--at` the `priced_at`/`priced_by` that `verify` needs.
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("at.parquet");
    let jsonl = ledger("mixed.jsonl");
    let at = "2024-10-20T00:00:00Z";
    let out = jobpoints()
        .args(["eval", "--invalid-exit-code", "0", "--at", at])
        .args(["--format", "parquet", "--out"])
        .arg(&out_path)
        .arg(&jsonl)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let want = eval(&["--at", at, jsonl.to_str().unwrap()]);
    let rows: Vec<serde_json::Value> =
        jobpoints::internals::open_ledger(&out_path, jobpoints::internals::InputFormat::Parquet)
            .unwrap()
            .map(|r| r.expect("a result row").value().clone())
            .collect();
    assert_eq!(rows.len(), want.len());
    let priced_at = rows.iter().filter(|r| r["priced_by"] == "at").count();
    assert!(
        priced_at > 40,
        "{priced_at} of {} rows say priced_by at",
        rows.len()
    );
    for (row, want) in rows.iter().zip(&want) {
        let mut want = want.as_object().unwrap().clone();
        want.retain(|_, v| !v.is_null());
        assert!(want.contains_key("engine") && want.contains_key("schema_version"));
        assert_eq!(row.as_object().unwrap(), &want);
    }
}
