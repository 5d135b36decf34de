//! Jobs priced from their text (#17): typical chat jobs (a prompt of about 1,000 tokens, an
//! answer of about 300) in the network's shape, scored through `eval`'s pipeline, against the
//! same jobs carrying their counts, in interleaved rounds; and the tokenizer alone.
//!
//! `cargo bench --bench tokens [-- --jobs N --threads N --runs N]`. Reports the median jobs/s
//! of each ledger, the tokens counted per second, and the cost per 1,000 tokens: the extra
//! wall time of the text ledger times the threads (CPU time), per 1,000 tokens counted; and,
//! for comparison, the tokenizer alone on one thread. Both ledgers must give the same points.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use jobpoints::internals::{
    JobReader, Message, Role, RuleFiles, ScoreRef, Scorer, Tokenizer, load, run_ledger,
};

struct Args {
    jobs: usize,
    threads: usize,
    runs: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        jobs: 4_000,
        threads: 2,
        runs: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse().ok()).expect("a number");
        match flag.as_str() {
            "--jobs" => a.jobs = value(),
            "--threads" => a.threads = value(),
            "--runs" => a.runs = value(),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    a
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

/// Texts of the committed parity corpus, by category.
fn corpus(category: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokens/corpus.jsonl");
    std::fs::read_to_string(path)
        .expect("corpus")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["category"] == category && v["chars"].as_u64().unwrap() < 5_000)
        .map(|v| v["text"].as_str().unwrap().to_string())
        .filter(|t| t.len() > 40)
        .collect()
}

/// Picks texts from `pool`, starting at `at`, until `tok` counts at least `tokens`.
fn text_of(tok: &Tokenizer, pool: &[String], at: usize, tokens: u64) -> String {
    let mut out = String::new();
    let mut i = at;
    while tok.count(&out).unwrap() < tokens {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&pool[i % pool.len()]);
        i += 1;
    }
    out
}

/// The two ledgers (text, counts) and the prompt and answer tokens per job on average.
fn ledgers(tok: &Tokenizer, jobs: usize) -> (PathBuf, PathBuf, f64, f64) {
    let dir = std::env::temp_dir().join(format!("jobpoints-bench-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (text_path, counts_path) = (dir.join("text.jsonl"), dir.join("counts.jsonl"));
    let mut text = std::io::BufWriter::new(std::fs::File::create(&text_path).unwrap());
    let mut counts = std::io::BufWriter::new(std::fs::File::create(&counts_path).unwrap());
    let (prose, code) = (corpus("prose_en"), corpus("code"));
    let (mut prompt_tokens, mut answer_tokens) = (0u64, 0u64);
    for i in 0..jobs {
        // A system prompt, a question with some code: about 1,000 tokens through the template.
        let question = format!(
            "{}\n\n{}",
            text_of(tok, &prose, i * 7, 620),
            text_of(tok, &code, i, 250)
        );
        let messages = [
            (
                "system",
                "You are a helpful assistant. Answer precisely.".to_string(),
            ),
            ("user", question),
        ];
        let answer = text_of(tok, &prose, i * 13 + 3, 260);
        let chat: Vec<Message> = messages
            .iter()
            .map(|(r, c)| Message {
                role: if *r == "system" {
                    Role::System
                } else {
                    Role::User
                },
                content: c.clone(),
            })
            .collect();
        let (input, output) = (tok.count_chat(&chat).unwrap(), tok.count(&answer).unwrap());
        prompt_tokens += input;
        answer_tokens += output;
        let prompt: Vec<Value> = messages
            .iter()
            .map(|(r, c)| json!({"role": r, "content": c}))
            .collect();
        let choices = json!([{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": answer}}]);
        let id = format!("job-{i}");
        let model = "mistralai/mixtral-8x7b-instruct-v0.1";
        let job = json!({"job_id": id, "model_id": model,
            "model_input": {"LLM": {"prompt": Value::Array(prompt).to_string(),
                "temperature": 0.7, "max_tokens": 1024}},
            "result": {"Text": choices.to_string()}, "inference_latency": 9.5});
        writeln!(text, "{job}").unwrap();
        let job = json!({"job_id": id, "model_id": model, "input_tokens": input,
            "output_tokens": output, "inference_latency": 9.5});
        writeln!(counts, "{job}").unwrap();
    }
    text.flush().unwrap();
    counts.flush().unwrap();
    let n = jobs as f64;
    (
        text_path,
        counts_path,
        prompt_tokens as f64 / n,
        answer_tokens as f64 / n,
    )
}

/// Scores `path` on `threads` through `eval`'s pipeline: seconds, and the points' sum in
/// micro-points with the number of `ok` results (to compare the ledgers).
fn run(path: &Path, scorer: &Scorer<'_>, threads: usize) -> (f64, (i64, u64)) {
    let reader = JobReader::new(BufReader::with_capacity(
        1 << 16,
        std::fs::File::open(path).unwrap(),
    ));
    let start = Instant::now();
    let mut total = (0i64, 0u64);
    run_ledger(
        reader,
        scorer,
        threads,
        |s: &ScoreRef<'_>, acc: &mut (i64, u64)| {
            acc.0 += (s.points.to_f64() * 1e6).round() as i64;
            acc.1 += u64::from(s.status == jobpoints::Status::Ok);
        },
        |acc| {
            total.0 += acc.0;
            total.1 += acc.1;
            Ok(())
        },
    )
    .expect("score");
    (start.elapsed().as_secs_f64(), total)
}

fn main() {
    let args = parse_args();
    let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let load_start = Instant::now();
    let rules = load(RuleFiles::from_dir(&rules_dir).unwrap())
        .ruleset
        .expect("valid rules");
    let load_secs = load_start.elapsed().as_secs_f64();
    let bytes = std::fs::read(rules_dir.join("tokenizers/mistral-v1.model")).unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let tok = Tokenizer::sentencepiece(&bytes, &sha).unwrap();
    let (text, counts, prompt, answer) = ledgers(&tok, args.jobs);
    let per_job = prompt + answer;
    println!(
        "{} typical chat jobs (network shape; on average a prompt of {prompt:.0} tokens, an answer \
         of {answer:.0}), {} threads, {} interleaved rounds; rule set loaded in {:.0} ms \
         (tokenizer included)",
        args.jobs,
        args.threads,
        args.runs,
        load_secs * 1e3
    );
    // The jobs carry no time, and the latest catalog no longer lists Mixtral 8x7b: price them
    // when it was listed in the priced family `llm8x7b4b` (catalog 014 to 047, #21).
    let at = jobpoints::internals::parse_time("2024-10-01").unwrap();
    let scorer = Scorer {
        opts: jobpoints::internals::ScoreOptions {
            at: Some(at),
            ..Default::default()
        },
        ..Scorer::new(&rules)
    };
    let (mut t_text, mut t_counts) = (Vec::new(), Vec::new());
    for round in 0..args.runs {
        let (a, sum_text) = run(&text, &scorer, args.threads);
        let (b, sum_counts) = run(&counts, &scorer, args.threads);
        assert_eq!(sum_text, sum_counts, "text and counts must price alike");
        assert_eq!(sum_text.1 as usize, args.jobs, "every job is ok");
        println!("round {round}: text {a:.3} s, counts {b:.3} s");
        t_text.push(a);
        t_counts.push(b);
    }
    let (a, b) = (median(&mut t_text), median(&mut t_counts));
    let jobs = args.jobs as f64;
    println!(
        "text:   {:>10.0} jobs/s ({:.2} M tokens/s)",
        jobs / a,
        jobs * per_job / a / 1e6
    );
    println!("counts: {:>10.0} jobs/s", jobs / b);
    let cpu_per_1k = (a - b) * args.threads as f64 / (jobs * per_job) * 1000.0;
    println!(
        "cost of counting: {:.1} µs CPU per 1,000 tokens",
        cpu_per_1k * 1e6
    );

    // The tokenizer alone, one thread: every answer and prompt text of 200 jobs.
    let sample: Vec<String> = std::fs::read_to_string(&text)
        .unwrap()
        .lines()
        .take(200)
        .flat_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let p: Vec<Value> =
                serde_json::from_str(v["model_input"]["LLM"]["prompt"].as_str().unwrap()).unwrap();
            let c: Vec<Value> =
                serde_json::from_str(v["result"]["Text"].as_str().unwrap()).unwrap();
            p.into_iter()
                .map(|m| m["content"].as_str().unwrap().to_string())
                .chain(
                    c.into_iter()
                        .map(|m| m["message"]["content"].as_str().unwrap().to_string()),
                )
                .collect::<Vec<_>>()
        })
        .collect();
    let mut per_1k = Vec::new();
    for _ in 0..args.runs {
        let start = Instant::now();
        let n: u64 = sample.iter().map(|t| tok.count(t).unwrap()).sum();
        per_1k.push(start.elapsed().as_secs_f64() / n as f64 * 1000.0);
    }
    println!(
        "tokenizer alone, 1 thread: {:.1} µs per 1,000 tokens",
        median(&mut per_1k) * 1e6
    );
    let _ = std::fs::remove_dir_all(text.parent().unwrap());
}
