//! Ledger benchmark: rules-driven scoring against a hand-written native scorer and an ideal
//! pipeline, in one run, on the same generated ledger, producing the same bytes.
//!
//! ```text
//! cargo bench --bench ledger                      # 1M jobs, all cores, 7 interleaved rounds
//! cargo bench --bench ledger -- --jobs 200000 --threads 1 --runs 5
//! cargo bench --bench ledger -- --rss-jobs 10000000   # also peak RSS of `jobpoints eval` on 10M
//! ```
//!
//! (a) `rules`: jobpoints scoring from `rules/`, exactly what `jobpoints eval` runs;
//! (b) `native`: Season 1 and the later published multipliers hard-coded in Rust, through
//!     jobpoints' own reader, parser, pipeline and JSONL writer: the cost of the rules engine;
//! (c) `ideal`: no rules engine at all: workers cut lines out of 1 MiB blocks, parse them with
//!     serde_json's derived borrowing deserializer, score natively and write the same bytes:
//!     what the machine can do for this job;
//! (d) `plain` (with `--plain`): every job through the JSON tree and the rhai interpreter,
//!     single-threaded.
//! The machine is shared and noisy, so the scorers run in interleaved rounds (a, b, c, a, b,
//! c, ...) and the report quotes each one's median (and best), with the median CPU time per
//! job (all threads), which other work on the machine disturbs less than wall time; every
//! scorer's output is checked byte for byte against the others.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jobpoints::internals::{
    BATCH_OUTPUT_BYTES, BorrowedJob, BorrowedValue, ENGINE, Fields, JobInput, JobReader, JobScorer,
    RuleFiles, SchemaVersion, ScoreContext, ScoreRef, Scorer, engine_verbatim, load,
    parse_time_exact, run_ledger, utc_string, write_jsonl,
};
use jobpoints::{Points, Status};

struct Args {
    jobs: u64,
    seed: u64,
    threads: usize,
    runs: usize,
    plain: bool,
    dump: bool,
    rss_jobs: Option<u64>,
    /// Time only this scorer (for profiling).
    only: Option<String>,
    /// Also time the readers alone, on one thread.
    parsers: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        jobs: 1_000_000,
        seed: 42,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        runs: 7,
        plain: false,
        dump: false,
        rss_jobs: None,
        only: None,
        parsers: false,
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
            "--seed" => a.seed = num(),
            "--threads" => a.threads = num() as usize,
            "--runs" => a.runs = num() as usize,
            "--rss-jobs" => a.rss_jobs = Some(num()),
            "--plain" => a.plain = true,
            "--dump" => a.dump = true,
            "--only" => a.only = Some(it.next().expect("a scorer name")),
            "--parsers" => a.parsers = true,
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument `{other}`"),
        }
    }
    a
}

/// The generated ledger, cached under target/ so repeated runs skip generation.
fn ledger(jobs: u64, seed: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let path = dir.join(format!("ledger-{jobs}-{seed}.jsonl"));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        let mut out =
            BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).expect("create"));
        jobpoints::internals::synth::write_ledger(&mut out, jobs, seed).expect("write ledger");
        out.flush().expect("flush");
        drop(out);
        std::fs::rename(&tmp, &path).expect("rename");
    }
    path
}

/// FNV-1a over output bytes, to show that every scorer writes the same bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Checksum(u64);

impl Checksum {
    fn new() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// One timed run: wall seconds, CPU seconds of the whole process, jobs and output bytes.
struct Run {
    secs: f64,
    cpu: f64,
    jobs: u64,
    bytes: u64,
}

/// CPU time (user + system) this process has used, in seconds, over all its threads, living
/// and finished: robust where wall time is not, on a machine shared with other work. Linux
/// only (NaN elsewhere); resolution 10 ms.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may contain spaces): utime and stime are the
    // 12th and 13th, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}

/// A scorer under comparison: runs over the whole ledger, handing JSONL chunks out in order,
/// and returns the number of jobs.
type Contender<'c> = &'c dyn Fn(&mut dyn FnMut(&[u8])) -> u64;

/// Runs `score` once with output to a sink, timed.
fn timed(score: Contender<'_>) -> Run {
    let mut sink = io::sink();
    let mut bytes = 0u64;
    let cpu = cpu_secs();
    let start = Instant::now();
    let jobs = score(&mut |chunk: &[u8]| {
        bytes += chunk.len() as u64;
        sink.write_all(chunk).expect("sink");
    });
    Run {
        secs: start.elapsed().as_secs_f64(),
        cpu: cpu_secs() - cpu,
        jobs,
        bytes,
    }
}

/// Runs `score` once into a checksum (and a dump file with `--dump`).
fn checksum(score: Contender<'_>, dump: Option<PathBuf>) -> Checksum {
    let mut sum = Checksum::new();
    let mut out = dump.map(|p| BufWriter::new(std::fs::File::create(p).expect("create dump")));
    score(&mut |chunk: &[u8]| {
        sum.add(chunk);
        if let Some(out) = out.as_mut() {
            out.write_all(chunk).expect("dump");
        }
    });
    sum
}

/// Scores the ledger through jobpoints' pipeline with `scorer`, handing JSONL chunks out.
fn through_pipeline<S: JobScorer>(
    path: &Path,
    scorer: &S,
    threads: usize,
    consume: &mut dyn FnMut(&[u8]),
) -> u64 {
    let file = std::fs::File::open(path).expect("open ledger");
    let reader = JobReader::new(BufReader::with_capacity(1 << 16, file));
    run_ledger(
        reader,
        scorer,
        threads,
        |s, c: &mut Vec<u8>| {
            if c.capacity() == 0 {
                // As `eval` does.
                c.reserve(BATCH_OUTPUT_BYTES);
            }
            write_jsonl(c, s);
        },
        |c| {
            consume(&c);
            Ok(())
        },
    )
    .expect("score ledger")
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
    let path = ledger(args.jobs, args.seed);
    let loaded = load(
        RuleFiles::from_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).expect("rules/"),
    );
    let rules = loaded.ruleset.expect("rules/ is valid");
    println!(
        "ledger: {} ({} jobs, seed {}), threads: {}, {} interleaved rounds",
        path.display(),
        args.jobs,
        args.seed,
        args.threads,
        args.runs
    );

    let rules_scorer = Scorer::new(&rules);
    let native = NativeScorer::new(&rules);
    let threads = args.threads;
    let run_rules = |c: &mut dyn FnMut(&[u8])| through_pipeline(&path, &rules_scorer, threads, c);
    let run_native = |c: &mut dyn FnMut(&[u8])| through_pipeline(&path, &native, threads, c);
    let run_ideal = |c: &mut dyn FnMut(&[u8])| ideal_pipeline(&path, &native, threads, c);
    let contenders: [(&str, Contender<'_>); 3] = [
        ("rules", &run_rules),
        ("native", &run_native),
        ("ideal", &run_ideal),
    ];

    // Untimed: every scorer must write the same bytes.
    let sums: Vec<Checksum> = contenders
        .iter()
        .filter(|_| args.only.is_none())
        .map(|(name, f)| {
            let dump = args
                .dump
                .then(|| path.with_file_name(format!("out-{name}.jsonl")));
            checksum(*f, dump)
        })
        .collect();
    let identical = sums.iter().all(|s| *s == sums[0]);
    println!(
        "output  {} (JSONL of rules, native and ideal)",
        if identical {
            "byte-identical"
        } else {
            "DIFFERENT (rerun with --dump and diff target/bench/out-*.jsonl)"
        }
    );

    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let mut jobs = 0;
    for round in 0..args.runs.max(1) {
        for (i, (name, f)) in contenders.iter().enumerate() {
            if args.only.as_deref().is_some_and(|o| o != *name) {
                continue;
            }
            let r = timed(*f);
            eprintln!(
                "  round {round} {name:<7} {} jobs in {:.3} s ({:.0} jobs/s, {:.0} ns CPU/job, {} bytes out)",
                r.jobs,
                r.secs,
                r.jobs as f64 / r.secs,
                r.cpu * 1e9 / r.jobs as f64,
                r.bytes
            );
            jobs = r.jobs;
            secs[i].push(r.secs);
            cpus[i].push(r.cpu);
        }
    }
    let rate = |s: f64| jobs as f64 / s;
    let mut medians = Vec::new();
    for (((name, _), s), c) in contenders.iter().zip(&mut secs).zip(&mut cpus) {
        if s.is_empty() {
            medians.push(f64::NAN);
            continue;
        }
        let best = s.iter().copied().fold(f64::INFINITY, f64::min);
        let med = median(s);
        medians.push(med);
        println!(
            "{name:<7} {:>10.0} jobs/s median  ({:>10.0} best; {:.0} ns of wall time, {:.0} ns of CPU per job)",
            rate(med),
            rate(best),
            med * 1e9 / jobs as f64,
            median(c) * 1e9 / jobs as f64
        );
    }
    println!(
        "ratio   {:>10.3} rules / native (median throughput)",
        medians[1] / medians[0]
    );
    println!(
        "ratio   {:>10.3} rules / ideal (median throughput)",
        medians[2] / medians[0]
    );
    if args.plain {
        let plain = Scorer {
            reference: true,
            ..rules_scorer.clone()
        };
        let r = timed(&|c: &mut dyn FnMut(&[u8])| through_pipeline(&path, &plain, 1, c));
        println!(
            "plain   {:>10.0} jobs/s  (1 thread, JSON tree + rhai interpreter, one run)",
            r.jobs as f64 / r.secs
        );
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(l) = status.lines().find(|l| l.starts_with("VmHWM:"))
    {
        println!(
            "peak RSS of this benchmark process: {}",
            l.trim_start_matches("VmHWM:").trim()
        );
    }
    if args.parsers {
        time_parsers(&path, args.runs);
    }
    if let Some(n) = args.rss_jobs {
        rss_of_cli(n, args.seed, args.threads);
    }
}

/// Nanoseconds per line of each way of reading a ledger line, on one thread, the file in
/// memory (median of `runs`): what the scanner costs next to serde_json.
fn time_parsers(path: &Path, runs: usize) {
    let bytes = std::fs::read(path).expect("read ledger");
    let text = std::str::from_utf8(&bytes).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    let mut fields = Fields::default();
    let time = |name: &str, f: &mut dyn FnMut(&str) -> bool| {
        let mut ns = Vec::new();
        let mut read = 0;
        for _ in 0..runs.max(1) {
            let start = Instant::now();
            read = lines.iter().filter(|l| f(std::hint::black_box(l))).count();
            ns.push(start.elapsed().as_secs_f64() * 1e9 / lines.len() as f64);
        }
        println!(
            "parse   {name:<44} {:>6.0} ns/line  ({read} of {} lines read)",
            median(&mut ns),
            lines.len()
        );
    };
    time("scanner (the borrowed reader), from &str", &mut |l| {
        BorrowedJob::parse(l, &mut fields).is_some()
    });
    time("scanner, from bytes (UTF-8 checked per line)", &mut |l| {
        std::str::from_utf8(l.as_bytes())
            .ok()
            .and_then(|t| BorrowedJob::parse(t, &mut fields))
            .is_some()
    });
    time("serde_json derive, borrowed, from &str (ideal)", &mut |l| {
        NativeJob::from_serde(l).is_some()
    });
    time("strict reader (JSON tree)", &mut |l| {
        jobpoints::internals::parse_line(1, l.as_bytes()).is_ok()
    });
}

/// Peak RSS of the real `jobpoints eval` on a large ledger (release binary, output discarded).
fn rss_of_cli(jobs: u64, seed: u64, threads: usize) {
    let path = ledger(jobs, seed);
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/jobpoints");
    if !bin.exists() {
        println!("(build the release binary first for the RSS measurement: cargo build --release)");
        return;
    }
    let start = Instant::now();
    let out = std::process::Command::new(&bin)
        .args(["eval", "--threads", &threads.to_string()])
        .arg(&path)
        .env("JOBPOINTS_REPORT_PEAK_RSS", "1")
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run jobpoints");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss "))
        .unwrap_or("?");
    println!(
        "jobpoints eval on {jobs} jobs: peak RSS {rss}, {:.1} s, exit {:?}",
        start.elapsed().as_secs_f64(),
        out.status.code()
    );
}

// ---------------------------------------------------------------------------------------------
// The native scorer: the shipped rules written out by hand.

#[derive(Clone, Copy)]
enum Base {
    Waifu,
    Llama,
}

#[derive(Clone, Copy)]
struct NativeVersion {
    from: i64, // unix seconds
    label: &'static str,
    /// `None`: an explicit no-rule (or disabled) version.
    multiplier: Option<f64>,
    /// The `no_rule` (or `disabled`) reason of a version that does not price, written once.
    reason: &'static str,
    /// A `disabled` version: status `disabled` instead of `no_rule`.
    disabled: bool,
    /// The version's timeout: `max` on `inference_latency` and on `request_latency`.
    timeout: Option<f64>,
}

struct NativeRule {
    family: &'static str,
    kind: &'static str,
    base: Base,
    versions: Vec<NativeVersion>,
}

const D_0401: i64 = 1_711_929_600; // 2024-04-01
const D_0415: i64 = 1_713_139_200; // 2024-04-15
const D_0916: i64 = 1_726_444_800; // 2024-09-16
const D_0918: i64 = 1_726_617_600; // 2024-09-18
const D_1008: i64 = 1_728_345_600; // 2024-10-08
const D_1016: i64 = 1_729_036_800; // 2024-10-16
const D_1026: i64 = 1_729_900_800; // 2024-10-26
const D_250116: i64 = 1_736_985_600; // 2025-01-16

fn v(from: i64, label: &'static str, multiplier: Option<f64>) -> NativeVersion {
    NativeVersion {
        from,
        label,
        multiplier,
        reason: if multiplier.is_none() {
            Box::leak(no_rule_reason(label).into_boxed_str())
        } else {
            ""
        },
        disabled: false,
        timeout: None,
    }
}

/// A priced version with a timeout (seconds).
fn with_timeout(from: i64, label: &'static str, multiplier: f64, timeout: f64) -> NativeVersion {
    NativeVersion {
        timeout: Some(timeout),
        ..v(from, label, Some(multiplier))
    }
}

/// A `disabled` version.
fn disabled(from: i64, label: &'static str, reason: &'static str) -> NativeVersion {
    NativeVersion {
        from,
        label,
        multiplier: None,
        reason,
        disabled: true,
        timeout: None,
    }
}

/// When the catalog lists a model (#21): its windows in unix seconds (`since`, `until`;
/// `None`: unbounded), and the text a `no_rule` outside them names them with.
struct Listed {
    windows: Vec<(Option<i64>, Option<i64>)>,
    text: String,
}

/// A model's rules and its catalog windows.
type NativeModel = (Option<NativeRule>, NativeRule, Listed);

struct NativeScorer<'a> {
    hash: &'a str,
    /// model → (model rule, family rule, catalog windows)
    models: HashMap<&'static str, NativeModel>,
    /// Malformed lines (about 1% of the ledger) take the same plain path in both scorers:
    /// producing their error messages is parsing, not scoring.
    plain: Scorer<'a>,
    /// The rule set's hash needs no JSON escaping (checked once, as jobpoints does).
    hash_verbatim: bool,
}

/// The `no_rule` reasons of the shipped rules, written out as the rule files state them.
fn no_rule_reason(label: &str) -> String {
    match label {
        "composite15@1" => "Season 1 published no rule for LoRA models (the first composite15 model entered the catalog on 2024-05-03)".into(),
        "compositexl@1" => "Season 1 published no rule for SDXL LoRA models (the first compositexl model entered the catalog on 2024-07-29)".into(),
        "flux-dev-lora@1" => "no published multiplier for FLUX.1 [dev] LoRA models".into(),
        "openhermes-mixtral-8x7b-gptq@2" => "openhermes-mixtral-8x7b-gptq left the network on 2025-01-16".into(),
        "openhermes-2-pro-mistral-7b@2" => "openhermes-2-pro-mistral-7b was discontinued (removed from the catalog on 2024-10-08)".into(),
        other => {
            let family = other.split('@').next().unwrap_or(other);
            format!("the Season 1 multiplier for family `{family}` was never recovered from the announcement, so it cannot be priced without inventing a number")
        }
    }
}

impl<'a> NativeScorer<'a> {
    fn new(rules: &'a jobpoints::internals::RuleSet) -> Self {
        let hash: &str = &rules.hash;
        let family = |name: &str| -> NativeRule {
            let (kind, base, versions) = match name {
                "sd15" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0401, "sd15@1", Some(1.0)),
                        v(D_0918, "sd15@2", Some(0.3)),
                        with_timeout(D_1016, "sd15@3", 0.3, 18.0),
                    ],
                ),
                "sdxl10" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0401, "sdxl10@1", Some(1.8)),
                        v(D_0918, "sdxl10@2", Some(1.0)),
                        with_timeout(D_1016, "sdxl10@3", 1.0, 18.0),
                    ],
                ),
                "composite15" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0401, "composite15@1", None),
                        v(D_0918, "composite15@2", Some(0.3)),
                        with_timeout(D_1016, "composite15@3", 0.3, 18.0),
                    ],
                ),
                "compositexl" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0401, "compositexl@1", None),
                        v(D_0918, "compositexl@2", Some(1.2)),
                        with_timeout(D_1016, "compositexl@3", 1.2, 18.0),
                    ],
                ),
                "flux-dev" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0918, "flux-dev@1", Some(10.0)),
                        disabled(
                            D_1016,
                            "flux-dev@2",
                            "FLUX.1 [dev] is temporarily disabled: the network's multiplier table (version B) says '0 (Temporarily Disabled)'",
                        ),
                    ],
                ),
                "flux-dev-lora" => (
                    "waifu",
                    Base::Waifu,
                    vec![v(D_1026, "flux-dev-lora@1", None)],
                ),
                "llm8x7b4b" => (
                    "llama",
                    Base::Llama,
                    vec![
                        v(D_0401, "llm8x7b4b@1", Some(1.0)),
                        with_timeout(D_0415, "llm8x7b4b@2", 1.0, 210.0),
                        with_timeout(D_0916, "llm8x7b4b@3", 1.0, 180.0),
                    ],
                ),
                "llm7b16b" => ("llama", Base::Llama, vec![v(D_0401, "llm7b16b@1", None)]),
                "llm8b16b" => ("llama", Base::Llama, vec![v(D_0401, "llm8b16b@1", None)]),
                "llm70b4b" => ("llama", Base::Llama, vec![v(D_0401, "llm70b4b@1", None)]),
                other => panic!("no native family {other}"),
            };
            let family: &'static str = Box::leak(name.to_string().into_boxed_str());
            NativeRule {
                family,
                kind,
                base,
                versions,
            }
        };
        let llm_model = |fam: &'static str, versions: Vec<NativeVersion>| NativeRule {
            family: fam,
            kind: "llama",
            base: Base::Llama,
            versions,
        };
        // The catalog's windows, read from the rules once (what varies with the catalog's
        // history; pricing below is hard-coded). The models it lists have at most three
        // windows, so a reason names them all, as the engine's does.
        let listed = |m: &str| -> Listed {
            let entry = &rules.catalog[m];
            assert!(
                entry.windows.len() <= 3,
                "{m}: a reason would name only some windows"
            );
            let secs = |t: Option<jiff::Timestamp>| t.map(|t| t.as_second());
            let texts: Vec<String> = entry.windows.iter().map(|w| w.when.text()).collect();
            Listed {
                windows: (entry.windows.iter())
                    .map(|w| (secs(w.when.since), secs(w.when.until)))
                    .collect(),
                text: texts.join(", and "),
            }
        };
        let mut models = HashMap::new();
        for m in [
            "BrainDance",
            "BlazingDrive",
            "BluePencilRealistic",
            "YamersCartoonArcadia",
            "ArthemyComics",
            "ArthemyReal",
            "Aurora",
            "HelloWorldFilmGrain",
        ] {
            models.insert(m, (None, family("sd15"), listed(m)));
        }
        for m in [
            "AnimagineXL",
            "CyberRealisticXL",
            "DreamShaperXL",
            "AAMXLAnimeMix",
            "SDXLUnstableDiffusersV11",
        ] {
            models.insert(m, (None, family("sdxl10"), listed(m)));
        }
        models.insert(
            "MagusDevon",
            (None, family("composite15"), listed("MagusDevon")),
        );
        models.insert("PepeXL", (None, family("compositexl"), listed("PepeXL")));
        models.insert(
            "FLUX.1-dev",
            (None, family("flux-dev"), listed("FLUX.1-dev")),
        );
        models.insert(
            "mistralai/mixtral-8x7b-instruct",
            (
                None,
                family("llm8x7b4b"),
                listed("mistralai/mixtral-8x7b-instruct"),
            ),
        );
        // Listed in llm8x7b4b until catalog 014, then a rename alias of Mixtral (llm8x7b4b
        // until 2025): priced the same way all through the ledger's 2024.
        models.insert(
            "mistralai/mixtral-8x7b-instruct-v0.1",
            (
                None,
                family("llm8x7b4b"),
                Listed {
                    windows: vec![(None, None)],
                    text: String::new(),
                },
            ),
        );
        models.insert(
            "openhermes-mixtral-8x7b-gptq",
            (
                Some(llm_model(
                    "llm8x7b4b",
                    vec![
                        v(D_1016, "openhermes-mixtral-8x7b-gptq@1", Some(1.0)),
                        v(D_250116, "openhermes-mixtral-8x7b-gptq@2", None),
                    ],
                )),
                family("llm8x7b4b"),
                listed("openhermes-mixtral-8x7b-gptq"),
            ),
        );
        models.insert(
            "dolphin-2.9-llama3-8b",
            (
                Some(llm_model(
                    "llm8b16b",
                    vec![
                        v(D_0918, "dolphin-2.9-llama3-8b@1", Some(0.24)),
                        v(D_1016, "dolphin-2.9-llama3-8b@2", Some(0.5)),
                    ],
                )),
                family("llm8b16b"),
                listed("dolphin-2.9-llama3-8b"),
            ),
        );
        models.insert(
            "hermes-3-llama3.1-8b",
            (
                Some(llm_model(
                    "llm8b16b",
                    vec![v(D_1016, "hermes-3-llama3.1-8b@1", Some(0.5))],
                )),
                family("llm8b16b"),
                listed("hermes-3-llama3.1-8b"),
            ),
        );
        models.insert(
            "openhermes-2-pro-mistral-7b",
            (
                Some(llm_model(
                    "llm7b16b",
                    vec![
                        v(D_0918, "openhermes-2-pro-mistral-7b@1", Some(0.2)),
                        v(D_1008, "openhermes-2-pro-mistral-7b@2", None),
                    ],
                )),
                family("llm7b16b"),
                listed("openhermes-2-pro-mistral-7b"),
            ),
        );
        models.insert(
            "meta-llama/llama-2-70b-chat",
            (
                None,
                family("llm70b4b"),
                listed("meta-llama/llama-2-70b-chat"),
            ),
        );
        let plain = Scorer {
            reference: true,
            ..Scorer::new(rules)
        };
        NativeScorer {
            hash,
            models,
            plain,
            hash_verbatim: hash
                .bytes()
                .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\')
                && engine_verbatim(),
        }
    }
}

/// The SD miner's execution limits (kinds.toml): from (unix seconds), width and height
/// rounded down to a multiple of, capped at, and steps capped at.
const MINER_LIMITS: [(i64, i64, i64, i64); 4] = [
    (1_707_580_375, 1, 1024, 50), // e475d32, 2024-02-10T15:52:55Z
    (1_708_345_740, 8, 1024, 50), // 9ca67d1, 2024-02-19T12:29:00Z
    (1_726_451_350, 8, 2048, 50), // 1dcaa7a, 2024-09-16T01:49:10Z
    (1_729_376_089, 8, 2048, 35), // 2eea7cf, 2024-10-19T22:14:49Z
];

fn pick(rule: &NativeRule, at: i64) -> Option<&NativeVersion> {
    rule.versions.iter().rev().find(|v| v.from <= at)
}

/// The fields the native scorer reads, whichever parser produced them.
#[derive(Default)]
struct NativeJob<'j> {
    id: Option<Cow<'j, str>>,
    model: &'j str,
    completed_at: Option<&'j str>,
    miner: Option<&'j str>,
    width: Option<i64>,
    height: Option<i64>,
    steps: Option<i64>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    /// `None` when absent; a present value that is not a finite number ≥ 0 within 86400
    /// sends the job to the plain path (it is invalid).
    inference_latency: Option<f64>,
    request_latency: Option<f64>,
    /// A latency that is present but not a plain number.
    odd_latency: bool,
}

impl<'j> NativeJob<'j> {
    /// Through jobpoints' own borrowing parser, so (b) parses exactly as (a) does.
    fn from_fast(text: &'j str, fields: &mut Fields) -> Option<NativeJob<'j>> {
        let job = BorrowedJob::parse(text, fields)?;
        let int = |k: &str| match job.value(k) {
            Some(BorrowedValue::Int(i)) => Some(i),
            _ => None,
        };
        let text = |k: &str| match job.value(k) {
            Some(BorrowedValue::Str(s)) => Some(s),
            _ => None,
        };
        let mut odd_latency = false;
        let mut latency = |k: &str| match job.value(k) {
            None | Some(BorrowedValue::Null) => None,
            Some(BorrowedValue::Int(i)) => Some(i as f64),
            Some(BorrowedValue::Float(f)) => Some(f),
            Some(_) => {
                odd_latency = true;
                None
            }
        };
        let inference_latency = latency("inference_latency");
        let request_latency = latency("request_latency");
        let id = match job.value("id") {
            Some(BorrowedValue::Str(s)) => Cow::Borrowed(s),
            Some(BorrowedValue::Int(i)) => Cow::Owned(i.to_string()),
            _ => return None,
        };
        Some(NativeJob {
            id: Some(id),
            model: text("model")?,
            completed_at: text("completed_at"),
            miner: text("miner"),
            width: int("width"),
            height: int("height"),
            steps: int("steps"),
            input_tokens: int("input_tokens"),
            output_tokens: int("output_tokens"),
            inference_latency,
            request_latency,
            odd_latency,
        })
    }

    /// Through serde_json's derived, borrowing deserializer on text already known to be UTF-8:
    /// what a hand-written pipeline would use.
    fn from_serde(text: &'j str) -> Option<NativeJob<'j>> {
        #[derive(serde::Deserialize)]
        struct Raw<'r> {
            #[serde(borrow)]
            id: Option<&'r str>,
            #[serde(borrow)]
            model: &'r str,
            #[serde(borrow)]
            completed_at: Option<&'r str>,
            #[serde(borrow)]
            miner: Option<&'r str>,
            width: Option<i64>,
            height: Option<i64>,
            steps: Option<i64>,
            input_tokens: Option<i64>,
            output_tokens: Option<i64>,
            inference_latency: Option<f64>,
            request_latency: Option<f64>,
        }
        let r: Raw<'j> = serde_json::from_str(text).ok()?;
        Some(NativeJob {
            id: r.id.map(Cow::Borrowed),
            model: r.model,
            completed_at: r.completed_at,
            miner: r.miner,
            width: r.width,
            height: r.height,
            steps: r.steps,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            inference_latency: r.inference_latency,
            request_latency: r.request_latency,
            odd_latency: false,
        })
    }
}

/// Per-worker scratch of the native scorer.
#[derive(Default)]
struct NativeScratch {
    when: String,
    reason: String,
    fields: Fields,
}

impl<'a> NativeScorer<'a> {
    /// Scores one parsed job natively; false when the job needs the plain path (a missing or
    /// mistyped field, an unknown model, no time).
    fn score_native(
        &self,
        job: &NativeJob<'_>,
        line: u64,
        scratch: &mut NativeScratch,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) -> bool {
        let NativeScratch { when, reason, .. } = scratch;
        let mut s = ScoreRef {
            file: None,
            line,
            id: job.id.as_deref(),
            model: Some(job.model),
            miner: job.miner,
            status: Status::NoRule,
            kind: None,
            family: None,
            rule: None,
            points: Points::ZERO,
            ruleset: self.hash,
            engine: ENGINE,
            schema_version: SchemaVersion,
            reason: None,
            error: None,
            field: None,
            completed_at: None,
            priced_at: None,
            priced_by: None,
            disputed_claim: None,
            trace: None,
            // Its strings come from a parser that borrows only unescaped strings.
            verbatim: self.hash_verbatim,
        };
        if job.model.trim().is_empty() {
            return false;
        }
        let Some((at, canonical)) = job.completed_at.and_then(|t| parse_time_exact(t).ok()) else {
            return false;
        };
        s.completed_at = match job.completed_at {
            Some(t) if canonical => Some(t),
            _ => {
                *when = utc_string(at);
                Some(when.as_str())
            }
        };
        let Some((model_rule, family_rule, listed)) = self.models.get(job.model) else {
            return false;
        };
        let secs = at.as_second();
        let inside = |(since, until): &(Option<i64>, Option<i64>)| {
            since.is_none_or(|s| s <= secs) && until.is_none_or(|u| secs < u)
        };
        if !listed.windows.iter().any(inside) {
            s.family = Some(model_rule.as_ref().unwrap_or(family_rule).family);
            let first = listed.windows.first().and_then(|w| w.0);
            let last = listed.windows.last().and_then(|w| w.1);
            let when = match () {
                _ if first.is_some_and(|f| secs < f) => "not yet at this time",
                _ if last.is_some_and(|l| l <= secs) => "no longer at this time",
                _ => "not at this time (between two of its windows)",
            };
            reason.clear();
            let _ = write!(
                reason,
                "model `{}` is in the catalog only {} (catalog.toml): {when}",
                job.model, listed.text
            );
            s.reason = Some(reason.as_str());
            emit(&s);
            return true;
        }
        let (rule, version) = match model_rule
            .as_ref()
            .and_then(|r| pick(r, secs).map(|v| (r, v)))
        {
            Some(found) => found,
            None => match pick(family_rule, secs) {
                Some(v) => (family_rule, v),
                None => {
                    s.family = Some(family_rule.family);
                    s.kind = Some(family_rule.kind);
                    reason.clear();
                    let _ = write!(
                        reason,
                        "no version of rule `{}` is in force at {}; the first takes effect {}",
                        family_rule.family,
                        jobpoints::internals::utc_date(at),
                        jobpoints::internals::utc_date(
                            jiff::Timestamp::from_second(family_rule.versions[0].from)
                                .expect("date")
                        )
                    );
                    s.reason = Some(reason.as_str());
                    emit(&s);
                    return true;
                }
            },
        };
        s.family = Some(rule.family);
        s.kind = Some(rule.kind);
        s.rule = Some(version.label);
        let Some(multiplier) = version.multiplier else {
            if version.disabled {
                s.status = Status::Disabled;
            }
            s.reason = Some(version.reason);
            emit(&s);
            return true;
        };
        if job.odd_latency
            || [job.inference_latency, job.request_latency]
                .iter()
                .flatten()
                .any(|l| !(0.0..=86_400.0).contains(l))
        {
            return false;
        }
        let base = match rule.base {
            Base::Waifu => {
                let (Some(w), Some(h), Some(steps)) = (job.width, job.height, job.steps) else {
                    return false;
                };
                // As the miner ran it (kinds.toml execution limits).
                let (w, h, steps) = match MINER_LIMITS.iter().rev().find(|l| l.0 <= secs) {
                    Some(&(_, multiple, max_side, max_steps)) => (
                        (w - w.rem_euclid(multiple)).min(max_side),
                        (h - h.rem_euclid(multiple)).min(max_side),
                        steps.min(max_steps),
                    ),
                    None => (w, h, steps),
                };
                let pixels = w * h;
                if pixels < 262_144 || steps < 20 {
                    reason.clear();
                    reason.push_str("below threshold: ");
                    if pixels < 262_144 {
                        let _ = write!(reason, "pixels {pixels} < min 262144");
                    }
                    if steps < 20 {
                        if pixels < 262_144 {
                            reason.push_str(", ");
                        }
                        let _ = write!(reason, "steps {steps} < min 20");
                    }
                    s.status = Status::BelowThreshold;
                    s.reason = Some(reason.as_str());
                    emit(&s);
                    return true;
                }
                (1.0 + 5.0 * (pixels - 262_144) as f64 / 786_432.0) * steps as f64 / 20.0
            }
            Base::Llama => {
                let (Some(i), Some(o)) = (job.input_tokens, job.output_tokens) else {
                    return false;
                };
                (i + o) as f64 / 1000.0
            }
        };
        // The timeout: `max` on each latency the job reports (a job without one is not timed
        // out), checked after the thresholds.
        if let Some(max) = version.timeout {
            reason.clear();
            for (name, value) in [
                ("inference_latency", job.inference_latency),
                ("request_latency", job.request_latency),
            ] {
                if let Some(value) = value.filter(|v| *v > max) {
                    let sep = if reason.is_empty() {
                        "over limit: "
                    } else {
                        ", "
                    };
                    let _ = write!(reason, "{sep}{name} {value} > max {max}");
                }
            }
            if !reason.is_empty() {
                s.status = Status::OverLimit;
                s.reason = Some(reason.as_str());
                emit(&s);
                return true;
            }
        }
        s.status = Status::Ok;
        s.points = Points::from_f64(base * multiplier).expect("finite, non-negative");
        emit(&s);
        true
    }
}

impl<'a> JobScorer for NativeScorer<'a> {
    type Ctx = (NativeScratch, ScoreContext<'a>);

    fn context(&self) -> Self::Ctx {
        (NativeScratch::default(), self.plain.context())
    }

    fn score_job(
        &self,
        ctx: &mut Self::Ctx,
        job: JobInput<'_>,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        let (line, text) = match job {
            JobInput::Text { line, text } => (line, text),
            JobInput::Line { line, bytes } => match std::str::from_utf8(bytes) {
                Ok(text) => (line, text),
                Err(_) => return self.plain.score_job(&mut ctx.1, job, emit),
            },
            JobInput::Record(_) => return self.plain.score_job(&mut ctx.1, job, emit),
        };
        // Malformed lines (about 1% of the ledger) take the same plain path in every scorer:
        // producing their error messages is parsing, not scoring.
        let done = NativeJob::from_fast(text, &mut ctx.0.fields)
            .is_some_and(|job| self.score_native(&job, line, &mut ctx.0, emit));
        if !done {
            self.plain
                .score_job(&mut ctx.1, JobInput::Text { line, text }, emit);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ideal pipeline: what the machine can do for this job with no rules engine at all.

/// Bytes per block the reader hands to a worker.
const IDEAL_BLOCK: usize = 1 << 20;

/// Reads the file in 1 MiB blocks cut at line ends (no per-line copy), lets `threads` workers
/// split, parse (serde_json, borrowed), score natively and write each block's JSONL, and
/// hands the outputs to `consume` in input order. Returns the number of jobs.
fn ideal_pipeline(
    path: &Path,
    native: &NativeScorer<'_>,
    threads: usize,
    mut consume: impl FnMut(&[u8]),
) -> u64 {
    use std::io::Read;
    let (block_tx, block_rx) = crossbeam_channel::bounded::<(u64, u64, Vec<u8>)>(threads * 2);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<(u64, u64, Vec<u8>)>(threads * 2);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut file = std::fs::File::open(path).expect("open ledger");
            let (mut seq, mut line, mut carry) = (0u64, 1u64, Vec::new());
            loop {
                let mut block = std::mem::take(&mut carry);
                block.reserve(IDEAL_BLOCK);
                let start = block.len();
                block.resize(start + IDEAL_BLOCK, 0);
                let n = file.read(&mut block[start..]).expect("read ledger");
                block.truncate(start + n);
                if block.is_empty() {
                    break;
                }
                if n > 0 {
                    // Keep the partial last line for the next block.
                    match memchr::memrchr(b'\n', &block) {
                        Some(i) => carry = block.split_off(i + 1),
                        None => {
                            carry = block;
                            continue;
                        }
                    }
                }
                let lines = memchr::memchr_iter(b'\n', &block).count() as u64
                    + u64::from(block.last() != Some(&b'\n'));
                if block_tx.send((seq, line, block)).is_err() {
                    break;
                }
                seq += 1;
                line += lines;
                if n == 0 {
                    break;
                }
            }
        });
        for _ in 0..threads {
            let (rx, tx) = (block_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                let mut scratch = NativeScratch::default();
                let mut plain = native.plain.context();
                for (seq, first_line, block) in rx {
                    let mut out = Vec::with_capacity(block.len() * 2 + 4096);
                    let mut jobs = 0u64;
                    let mut emit = |s: &ScoreRef<'_>| write_jsonl(&mut out, s);
                    // UTF-8 is validated once per block, not once per string.
                    let text = std::str::from_utf8(&block).ok();
                    let (mut start, mut line) = (0, first_line);
                    let ends = memchr::memchr_iter(b'\n', &block)
                        .chain((block.last() != Some(&b'\n')).then_some(block.len()));
                    for end in ends {
                        let (from, line_no) = (start, line);
                        start = end + 1;
                        line += 1;
                        let raw = &block[from..end];
                        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                        if raw.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        jobs += 1;
                        // `from..end` are at ASCII newlines, so they are char boundaries.
                        let job = match text {
                            Some(t) => NativeJob::from_serde(&t[from..from + raw.len()]),
                            None => std::str::from_utf8(raw)
                                .ok()
                                .and_then(NativeJob::from_serde),
                        };
                        let done = job.is_some_and(|job| {
                            native.score_native(&job, line_no, &mut scratch, &mut emit)
                        });
                        if !done {
                            let job = JobInput::Line {
                                line: line_no,
                                bytes: raw,
                            };
                            native.plain.score_job(&mut plain, job, &mut emit);
                        }
                    }
                    if tx.send((seq, jobs, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        drop(block_rx);
        let mut pending = std::collections::BTreeMap::new();
        let (mut next, mut jobs) = (0u64, 0u64);
        for (seq, n, out) in done_rx.iter() {
            pending.insert(seq, (n, out));
            while let Some((n, out)) = pending.remove(&next) {
                next += 1;
                jobs += n;
                consume(&out);
            }
        }
        jobs
    })
}
