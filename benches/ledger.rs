//! Ledger benchmark: rules-driven scoring against a hand-written native scorer, in one run,
//! on the same generated ledger, with the same parsing, pipeline and output.
//!
//! ```text
//! cargo bench --bench ledger                      # 1M jobs, all cores
//! cargo bench --bench ledger -- --jobs 200000 --threads 1 --runs 5
//! cargo bench --bench ledger -- --rss-jobs 10000000   # also peak RSS of `jobpoints eval` on 10M
//! ```
//!
//! (a) `rules`: jobpoints scoring from `rules/` (fast path + compiled formulas, falling back
//!     to plain evaluation where needed), exactly what `jobpoints eval` runs;
//! (b) `native`: Season 1 and the later published multipliers hard-coded in Rust;
//! (c) `plain` (with `--plain`): every job through the JSON tree and the rhai interpreter,
//!     single-threaded: the reference the fast path is proven identical to.
//! Each is run `--runs` times and the best run is reported.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jobpoints::{
    FastJob, FastVal, JobReader, JobRecord, LineScorer, Points, RuleFiles, RulesScorer,
    ScoreOptions, ScoreRef, Status, is_canonical_utc, load, parse_time, run_ledger, utc_string,
    write_jsonl,
};

struct Args {
    jobs: u64,
    seed: u64,
    threads: usize,
    runs: usize,
    plain: bool,
    dump: bool,
    rss_jobs: Option<u64>,
}

fn parse_args() -> Args {
    let mut a = Args {
        jobs: 1_000_000,
        seed: 42,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        runs: 3,
        plain: false,
        dump: false,
        rss_jobs: None,
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
        jobpoints::synth::write_ledger(&mut out, jobs, seed).expect("write ledger");
        out.flush().expect("flush");
        drop(out);
        std::fs::rename(&tmp, &path).expect("rename");
    }
    path
}

#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    ok: u64,
    points: i128,
}

/// FNV-1a over every output byte, to show both scorers write the same bytes (untimed pass).
fn checksum<S: LineScorer>(path: &Path, scorer: &S, threads: usize, dump: Option<&str>) -> u64 {
    let file = std::fs::File::open(path).expect("open ledger");
    let reader = JobReader::new(BufReader::with_capacity(1 << 16, file));
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    // With --dump, also keep the output (target/bench/out-NAME.jsonl) to diff by hand.
    let mut out = dump.map(|name| {
        let p = path.with_file_name(format!("out-{name}.jsonl"));
        BufWriter::new(std::fs::File::create(p).expect("create dump"))
    });
    run_ledger(
        reader,
        scorer,
        threads,
        |s, c: &mut Vec<u8>| write_jsonl(c, s),
        |c| {
            if let Some(out) = out.as_mut() {
                out.write_all(&c)?;
            }
            for b in c {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            Ok(())
        },
    )
    .expect("score ledger");
    h
}

/// Runs one scorer over the ledger; returns (seconds, jobs, ok jobs, total micro-points, output bytes).
fn run<S: LineScorer>(path: &Path, scorer: &S, threads: usize) -> (f64, u64, u64, i128, u64) {
    let file = std::fs::File::open(path).expect("open ledger");
    let reader = JobReader::new(BufReader::with_capacity(1 << 16, file));
    let mut sink = io::sink();
    let (mut ok, mut points, mut bytes) = (0, 0, 0);
    let start = Instant::now();
    let jobs = run_ledger(
        reader,
        scorer,
        threads,
        |s, c: &mut Chunk| {
            if c.bytes.capacity() == 0 {
                c.bytes.reserve(1 << 20);
            }
            write_jsonl(&mut c.bytes, s);
            if s.status == Status::Ok {
                c.ok += 1;
                c.points += i128::from(s.points.micros());
            }
        },
        |c| {
            ok += c.ok;
            points += c.points;
            bytes += c.bytes.len() as u64;
            sink.write_all(&c.bytes)
        },
    )
    .expect("score ledger");
    (start.elapsed().as_secs_f64(), jobs, ok, points, bytes)
}

fn best<S: LineScorer>(
    name: &str,
    path: &Path,
    scorer: &S,
    threads: usize,
    runs: usize,
) -> (f64, u64, u64, i128) {
    let mut best: Option<(f64, u64, u64, i128)> = None;
    for _ in 0..runs.max(1) {
        let (secs, jobs, ok, points, bytes) = run(path, scorer, threads);
        eprintln!(
            "  {name:<7} {jobs} jobs in {secs:.3} s ({:.0} jobs/s, {bytes} bytes out)",
            jobs as f64 / secs
        );
        if best.is_none_or(|b| secs < b.0) {
            best = Some((secs, jobs, ok, points));
        }
    }
    best.expect("at least one run")
}

fn main() {
    let args = parse_args();
    let path = ledger(args.jobs, args.seed);
    let loaded = load(
        RuleFiles::from_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).expect("rules/"),
    );
    let rules = loaded.ruleset.expect("rules/ is valid");
    println!(
        "ledger: {} ({} jobs, seed {}), threads: {}, best of {} runs",
        path.display(),
        args.jobs,
        args.seed,
        args.threads,
        args.runs
    );

    let rules_scorer = RulesScorer {
        rules: &rules,
        opts: ScoreOptions::default(),
        file: None,
        fast: true,
    };
    let native = NativeScorer::new(&rules);
    let (r_secs, jobs, r_ok, r_points) =
        best("rules", &path, &rules_scorer, args.threads, args.runs);
    let (n_secs, _, n_ok, n_points) = best("native", &path, &native, args.threads, args.runs);
    let rules_rate = jobs as f64 / r_secs;
    let native_rate = jobs as f64 / n_secs;
    println!("rules   {rules_rate:>12.0} jobs/s  ({r_secs:.3} s)");
    println!("native  {native_rate:>12.0} jobs/s  ({n_secs:.3} s)");
    println!(
        "ratio   {:>12.3} (rules / native throughput)",
        rules_rate / native_rate
    );
    println!(
        "agree   {} (ok jobs {r_ok} vs {n_ok}; points {} vs {})",
        if r_ok == n_ok && r_points == n_points {
            "yes"
        } else {
            "NO"
        },
        Points::from_micros(r_points as i64),
        Points::from_micros(n_points as i64)
    );
    let same = checksum(
        &path,
        &rules_scorer,
        args.threads,
        args.dump.then_some("rules"),
    ) == checksum(&path, &native, args.threads, args.dump.then_some("native"));
    println!(
        "output  {} (byte-identical JSONL from both)",
        if same { "identical" } else { "DIFFERENT" }
    );
    if args.plain {
        let plain = RulesScorer {
            fast: false,
            ..rules_scorer
        };
        let (p_secs, _, _, _) = best("plain", &path, &plain, 1, 1);
        println!(
            "plain   {:>12.0} jobs/s  (1 thread, JSON tree + rhai interpreter)",
            jobs as f64 / p_secs
        );
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM:")) {
            println!(
                "peak RSS of this benchmark process: {}",
                l.trim_start_matches("VmHWM:").trim()
            );
        }
    }
    if let Some(n) = args.rss_jobs {
        rss_of_cli(n, args.seed, args.threads);
    }
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
    /// `None`: an explicit no-rule version.
    multiplier: Option<f64>,
}

struct NativeRule {
    family: &'static str,
    kind: &'static str,
    base: Base,
    versions: Vec<NativeVersion>,
}

const D_0401: i64 = 1_711_929_600; // 2024-04-01
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
    }
}

struct NativeScorer<'a> {
    hash: &'a str,
    /// model → (model rule, family rule)
    models: HashMap<&'static str, (Option<NativeRule>, NativeRule)>,
    /// Malformed lines (about 1% of the ledger) take the same plain path in both scorers:
    /// producing their error messages is parsing, not scoring.
    plain: RulesScorer<'a>,
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
    fn new(rules: &'a jobpoints::RuleSet) -> Self {
        let hash: &str = &rules.hash;
        let family = |name: &str| -> NativeRule {
            let (kind, base, versions) = match name {
                "sd15" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0401, "sd15@1", Some(1.0)),
                        v(D_0918, "sd15@2", Some(0.3)),
                    ],
                ),
                "sdxl10" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0401, "sdxl10@1", Some(1.8)),
                        v(D_0918, "sdxl10@2", Some(1.0)),
                    ],
                ),
                "composite15" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0401, "composite15@1", None),
                        v(D_0918, "composite15@2", Some(0.3)),
                    ],
                ),
                "compositexl" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0401, "compositexl@1", None),
                        v(D_0918, "compositexl@2", Some(1.2)),
                    ],
                ),
                "flux-dev" => (
                    "waifu",
                    Base::Waifu,
                    vec![
                        v(D_0918, "flux-dev@1", Some(10.0)),
                        v(D_1016, "flux-dev@2", Some(0.0)),
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
                    vec![v(D_0401, "llm8x7b4b@1", Some(1.0))],
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
            models.insert(m, (None, family("sd15")));
        }
        for m in [
            "AnimagineXL",
            "CyberRealisticXL",
            "DreamShaperXL",
            "AAMXLAnimeMix",
            "SDXLUnstableDiffusersV11",
        ] {
            models.insert(m, (None, family("sdxl10")));
        }
        models.insert("MagusDevon", (None, family("composite15")));
        models.insert("PepeXL", (None, family("compositexl")));
        models.insert("FLUX.1-dev", (None, family("flux-dev")));
        models.insert(
            "mistralai/mixtral-8x7b-instruct",
            (None, family("llm8x7b4b")),
        );
        models.insert(
            "mistralai/mixtral-8x7b-instruct-v0.1",
            (None, family("llm8x7b4b")),
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
            ),
        );
        models.insert("meta-llama/llama-2-70b-chat", (None, family("llm70b4b")));
        let plain = RulesScorer {
            rules,
            opts: ScoreOptions::default(),
            file: None,
            fast: false,
        };
        NativeScorer {
            hash,
            models,
            plain,
        }
    }
}

fn pick(rule: &NativeRule, at: i64) -> Option<&NativeVersion> {
    rule.versions.iter().rev().find(|v| v.from <= at)
}

impl<'a> LineScorer for NativeScorer<'a> {
    type Ctx = (String, String, jobpoints::RulesContext<'a>);

    fn context(&self) -> Self::Ctx {
        (String::new(), String::new(), self.plain.context())
    }

    fn score_line(
        &self,
        ctx: &mut Self::Ctx,
        line: u64,
        bytes: &[u8],
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        let (when, reason, plain) = ctx;
        let mut s = ScoreRef {
            file: None,
            line,
            id: None,
            model: None,
            miner: None,
            status: Status::Invalid,
            kind: None,
            family: None,
            rule: None,
            points: Points::ZERO,
            ruleset: self.hash,
            reason: None,
            error: Some("invalid job"),
            field: None,
            completed_at: None,
        };
        let job = FastJob::parse(bytes);
        let env = job.as_ref().and_then(FastJob::envelope);
        let (Some(job), Some(env)) = (job.as_ref(), env) else {
            self.plain.score_line(plain, line, bytes, emit);
            return;
        };
        let id: Option<Cow<'_, str>> = env.id;
        s.id = id.as_deref();
        s.model = Some(env.model);
        s.miner = env.miner;
        let Some(at) = env.completed_at.and_then(|t| parse_time(t).ok()) else {
            self.plain.score_line(plain, line, bytes, emit);
            return;
        };
        s.completed_at = match env.completed_at {
            Some(t) if is_canonical_utc(t) => Some(t),
            _ => {
                *when = utc_string(at);
                Some(when.as_str())
            }
        };
        s.error = None;
        s.status = Status::NoRule;
        let Some((model_rule, family_rule)) = self.models.get(env.model) else {
            self.plain.score_line(plain, line, bytes, emit);
            return;
        };
        let secs = at.as_second();
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
                    *reason = format!(
                        "no version of rule `{}` is in force at {}; the first takes effect {}",
                        family_rule.family,
                        jobpoints::utc_date(at),
                        jobpoints::utc_date(
                            jiff::Timestamp::from_second(family_rule.versions[0].from)
                                .expect("date")
                        )
                    );
                    s.reason = Some(reason.as_str());
                    emit(&s);
                    return;
                }
            },
        };
        s.family = Some(rule.family);
        s.kind = Some(rule.kind);
        s.rule = Some(version.label);
        let Some(multiplier) = version.multiplier else {
            *reason = no_rule_reason(version.label);
            s.reason = Some(reason.as_str());
            emit(&s);
            return;
        };
        let int = |k: &str| match job.get(k) {
            Some(FastVal::Int(i)) => Some(i),
            _ => None,
        };
        let base = match rule.base {
            Base::Waifu => {
                let (Some(w), Some(h), Some(steps)) = (int("width"), int("height"), int("steps"))
                else {
                    self.plain.score_line(plain, line, bytes, emit);
                    return;
                };
                let pixels = w * h;
                if pixels < 262_144 || steps < 20 {
                    let mut missed = Vec::new();
                    if pixels < 262_144 {
                        missed.push(format!("pixels {} < min 262144", pixels as f64));
                    }
                    if steps < 20 {
                        missed.push(format!("steps {} < min 20", steps as f64));
                    }
                    *reason = format!("below threshold: {}", missed.join(", "));
                    s.status = Status::BelowThreshold;
                    s.reason = Some(reason.as_str());
                    emit(&s);
                    return;
                }
                (1.0 + 5.0 * (pixels - 262_144) as f64 / 786_432.0) * steps as f64 / 20.0
            }
            Base::Llama => {
                let (Some(i), Some(o)) = (int("input_tokens"), int("output_tokens")) else {
                    self.plain.score_line(plain, line, bytes, emit);
                    return;
                };
                (i + o) as f64 / 1000.0
            }
        };
        s.status = Status::Ok;
        s.points = Points::from_f64(base * multiplier).expect("finite, non-negative");
        emit(&s);
    }

    fn score_record(
        &self,
        ctx: &mut Self::Ctx,
        record: JobRecord,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        self.plain.score_record(&mut ctx.2, record, emit);
    }
}
