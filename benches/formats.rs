//! Ledger formats: jobs/s of `jobpoints eval` reading the benchmark ledger as JSONL, Parquet
//! and CSV, and writing its results as JSONL or Parquet, through the release binary exactly as
//! a user runs it.
//!
//! ```text
//! cargo bench --bench formats                          # 1M jobs, all cores, 7 rounds
//! cargo bench --bench formats -- --jobs 200000 --runs 3 --threads 1
//! ```
//!
//! The ledger is `cargo bench --bench ledger`'s (`jobpoints::internals::synth`, seed 42),
//! converted once, by this file, into a Parquet file (typed columns: strings, nullable int64,
//! `completed_at` as a microsecond UTC timestamp; Snappy; row groups of 128Ki rows) and a CSV
//! file. Only the jobs whose fields fit those columns are kept, in all three files alike (the
//! generator's broken-JSON lines and string-typed numbers cannot be a typed row), so every
//! format holds the same jobs, `invalid` ones included. Before timing, the run checks that the
//! JSONL and Parquet inputs give byte-identical results and all three the same tally, and that
//! the Parquet output has one row per job. The machine is shared and noisy, so the cases run in
//! interleaved rounds and the report quotes medians (and CPU per job, all threads, of the
//! child process, which other work disturbs less than wall time).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_jobpoints");
const ROW_GROUP: usize = 128 * 1024;

struct Args {
    jobs: u64,
    threads: usize,
    runs: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        jobs: 1_000_000,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        runs: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = || {
            it.next()
                .and_then(|v| v.replace('_', "").parse::<u64>().ok())
                .expect("a number")
        };
        match arg.as_str() {
            "--jobs" => a.jobs = num(),
            "--threads" => a.threads = num() as usize,
            "--runs" => a.runs = num() as usize,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A job of the generated ledger as a typed row.
#[derive(Default)]
struct Row {
    id: String,
    model: String,
    ints: [Option<i64>; 5],
    completed_at: Option<i64>,
    miner: Option<String>,
}

const INTS: [&str; 5] = ["width", "height", "steps", "input_tokens", "output_tokens"];

/// The row of a JSONL line, when every field it has fits the typed columns.
fn row(line: &str) -> Option<Row> {
    let Value::Object(job) = serde_json::from_str::<Value>(line).ok()? else {
        return None;
    };
    let mut r = Row::default();
    for (key, v) in &job {
        match key.as_str() {
            "id" => r.id = v.as_str()?.to_string(),
            "model" => r.model = v.as_str()?.to_string(),
            "miner" => r.miner = Some(v.as_str()?.to_string()),
            "completed_at" => {
                let t: jiff::Timestamp = v.as_str()?.parse().ok()?;
                r.completed_at = Some(t.as_microsecond());
            }
            k => {
                let i = INTS.iter().position(|n| *n == k)?;
                r.ints[i] = Some(v.as_i64()?);
            }
        }
    }
    (!r.id.is_empty() && !r.model.is_empty()).then_some(r)
}

const SCHEMA: &str = "
message job {
  REQUIRED BYTE_ARRAY id (STRING);
  REQUIRED BYTE_ARRAY model (STRING);
  OPTIONAL INT64 width;
  OPTIONAL INT64 height;
  OPTIONAL INT64 steps;
  OPTIONAL INT64 input_tokens;
  OPTIONAL INT64 output_tokens;
  OPTIONAL INT64 completed_at (TIMESTAMP(MICROS,true));
  OPTIONAL BYTE_ARRAY miner (STRING);
}
";

fn write_group(w: &mut SerializedFileWriter<BufWriter<std::fs::File>>, rows: &[Row]) {
    let mut group = w.next_row_group().expect("row group");
    let text = |f: &dyn Fn(&Row) -> Option<&str>| {
        let mut values = Vec::new();
        let mut defs = Vec::new();
        for r in rows {
            match f(r) {
                Some(s) => {
                    values.push(ByteArray::from(s.as_bytes().to_vec()));
                    defs.push(1);
                }
                None => defs.push(0),
            }
        }
        (values, defs)
    };
    let int = |f: &dyn Fn(&Row) -> Option<i64>| {
        let mut values = Vec::new();
        let mut defs = Vec::new();
        for r in rows {
            match f(r) {
                Some(v) => {
                    values.push(v);
                    defs.push(1);
                }
                None => defs.push(0),
            }
        }
        (values, defs)
    };
    let mut index = 0;
    while let Some(mut col) = group.next_column().expect("column") {
        match index {
            0 | 1 => {
                let (v, _) = text(&|r| Some(if index == 0 { &r.id } else { &r.model }));
                col.typed::<ByteArrayType>()
                    .write_batch(&v, None, None)
                    .expect("write");
            }
            2..=6 => {
                let (v, d) = int(&|r| r.ints[index - 2]);
                col.typed::<Int64Type>()
                    .write_batch(&v, Some(&d), None)
                    .expect("write");
            }
            7 => {
                let (v, d) = int(&|r| r.completed_at);
                col.typed::<Int64Type>()
                    .write_batch(&v, Some(&d), None)
                    .expect("write");
            }
            _ => {
                let (v, d) = text(&|r| r.miner.as_deref());
                col.typed::<ByteArrayType>()
                    .write_batch(&v, Some(&d), None)
                    .expect("write");
            }
        }
        col.close().expect("close column");
        index += 1;
    }
    group.close().expect("close row group");
}

/// The three files of the ledger, made once and cached under target/bench.
fn ledgers(jobs: u64) -> (PathBuf, PathBuf, PathBuf, u64) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench/formats-{jobs}-42"));
    let (jsonl, pq, csv) = (
        dir.join("ledger.jsonl"),
        dir.join("ledger.parquet"),
        dir.join("ledger.csv"),
    );
    let count = dir.join("jobs");
    if let Ok(n) = std::fs::read_to_string(&count) {
        return (jsonl, pq, csv, n.trim().parse().expect("a count"));
    }
    std::fs::create_dir_all(&dir).expect("target/bench");
    let mut generated = Vec::new();
    jobpoints::internals::synth::write_ledger(&mut generated, jobs, 42).expect("generate");
    let text = String::from_utf8(generated).expect("UTF-8");
    let mut out_jsonl = BufWriter::new(std::fs::File::create(&jsonl).expect("create"));
    let mut out_csv = csv::Writer::from_path(&csv).expect("create");
    out_csv
        .write_record(
            ["id", "model"]
                .iter()
                .chain(INTS.iter())
                .chain(["completed_at", "miner"].iter()),
        )
        .expect("csv");
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out_pq = SerializedFileWriter::new(
        BufWriter::new(std::fs::File::create(&pq).expect("create")),
        Arc::new(parse_message_type(SCHEMA).expect("schema")),
        Arc::new(props),
    )
    .expect("parquet writer");
    let mut group = Vec::with_capacity(ROW_GROUP);
    let mut kept = 0u64;
    for (line, r) in text.lines().filter_map(|l| row(l).map(|r| (l, r))) {
        kept += 1;
        writeln!(out_jsonl, "{line}").expect("write");
        let int = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let when = r
            .completed_at
            .map(|us| {
                jiff::Timestamp::from_microsecond(us)
                    .expect("in range")
                    .to_string()
            })
            .unwrap_or_default();
        let mut record = vec![r.id.clone(), r.model.clone()];
        record.extend(r.ints.iter().map(|v| int(*v)));
        record.push(when);
        record.push(r.miner.clone().unwrap_or_default());
        out_csv.write_record(&record).expect("csv");
        group.push(r);
        if group.len() == ROW_GROUP {
            write_group(&mut out_pq, &group);
            group.clear();
        }
    }
    if !group.is_empty() {
        write_group(&mut out_pq, &group);
    }
    out_pq.close().expect("close parquet");
    out_jsonl.flush().expect("flush");
    out_csv.flush().expect("flush");
    std::fs::write(&count, kept.to_string()).expect("write count");
    (jsonl, pq, csv, kept)
}

/// CPU seconds (user + system) of this process's waited-for children (Linux; NaN elsewhere).
fn child_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime, the 14th and 15th fields after the name, in clock ticks.
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(13) + tick(14)) / 100.0
}

/// Runs `jobpoints eval` with `args`, stdout to `stdout` (or nowhere); wall and CPU seconds.
fn run(args: &[&str], threads: usize, stdout: Option<&Path>) -> (f64, f64) {
    let out = match stdout {
        Some(p) => Stdio::from(std::fs::File::create(p).expect("create")),
        None => Stdio::null(),
    };
    let cpu = child_cpu_secs();
    let start = Instant::now();
    let status = Command::new(BIN)
        .args([
            "eval",
            "--invalid-exit-code",
            "0",
            "--threads",
            &threads.to_string(),
        ])
        .args(args)
        .stdout(out)
        .status()
        .expect("run jobpoints");
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success(), "jobpoints eval {args:?}: {status}");
    (secs, child_cpu_secs() - cpu)
}

fn tally(path: &Path) -> Vec<u8> {
    let out = Command::new(BIN)
        .args([
            "tally",
            "--invalid-exit-code",
            "0",
            "--by",
            "miner,model,day",
        ])
        .args(["--format", "json"])
        .arg(path)
        .output()
        .expect("run jobpoints");
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn main() {
    let args = parse_args();
    let (jsonl, pq, csv, jobs) = ledgers(args.jobs);
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_pq = tmp.path().join("results.parquet");
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "ledger: {jobs} jobs (of {} generated); JSONL {:.1} MB, Parquet {:.1} MB, CSV {:.1} MB; {} threads",
        args.jobs,
        size(&jsonl),
        size(&pq),
        size(&csv),
        args.threads
    );

    // Same results, same tallies, a complete Parquet output: checked once, before timing.
    let (a, b) = (tmp.path().join("a.jsonl"), tmp.path().join("b.jsonl"));
    run(&[jsonl.to_str().unwrap()], args.threads, Some(&a));
    run(&[pq.to_str().unwrap()], args.threads, Some(&b));
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "Parquet and JSONL give different results"
    );
    let want = tally(&jsonl);
    assert!(tally(&pq) == want, "Parquet tally differs");
    assert!(tally(&csv) == want, "CSV tally differs");
    let out_args = ["--format", "parquet", "--out", out_pq.to_str().unwrap()];
    let pq_out = |input: &Path| {
        let mut v: Vec<String> = out_args.iter().map(|s| s.to_string()).collect();
        v.push(input.to_str().unwrap().to_string());
        v
    };
    let ju = pq_out(&jsonl);
    run(
        &ju.iter().map(String::as_str).collect::<Vec<_>>(),
        args.threads,
        None,
    );
    let rows = SerializedFileReader::new(std::fs::File::open(&out_pq).unwrap())
        .unwrap()
        .metadata()
        .file_metadata()
        .num_rows();
    assert_eq!(rows as u64, jobs, "Parquet output rows");
    println!(
        "checked: identical results (JSONL, Parquet in), identical tallies (JSONL, Parquet, CSV), {rows} Parquet output rows ({:.1} MB)",
        size(&out_pq)
    );

    let pu = pq_out(&pq);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("JSONL in, JSONL out", vec![jsonl.to_str().unwrap().into()]),
        ("Parquet in, JSONL out", vec![pq.to_str().unwrap().into()]),
        ("CSV in, JSONL out", vec![csv.to_str().unwrap().into()]),
        ("JSONL in, Parquet out", ju),
        ("Parquet in, Parquet out", pu),
    ];
    let mut wall = vec![Vec::new(); cases.len()];
    let mut cpu = vec![Vec::new(); cases.len()];
    for round in 0..args.runs {
        for (i, (_, a)) in cases.iter().enumerate() {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let (w, c) = run(&a, args.threads, None);
            wall[i].push(w);
            cpu[i].push(c);
        }
        eprintln!("round {} of {}", round + 1, args.runs);
    }
    let base = median(&mut wall[0].clone());
    println!(
        "{:<26} {:>9} {:>9} {:>12} {:>12} {:>9}",
        "case", "median s", "best s", "jobs/s", "CPU µs/job", "vs JSONL"
    );
    for (i, (name, _)) in cases.iter().enumerate() {
        let m = median(&mut wall[i]);
        let best = wall[i].iter().copied().fold(f64::INFINITY, f64::min);
        let c = median(&mut cpu[i]);
        println!(
            "{name:<26} {m:>9.3} {best:>9.3} {:>12.0} {:>12.2} {:>8.2}×",
            jobs as f64 / m,
            c / jobs as f64 * 1e6,
            m / base
        );
    }
}
