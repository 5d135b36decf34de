//! The default corpus of `jobpoints diff` (`corpus/`): the generated files are rebuilt here
//! and compared with the committed ones, so the corpus is exactly what this code says.
//! After changing a generator, rewrite them with
//! `JOBPOINTS_WRITE_CORPUS=1 cargo test --test main corpus::generated` (alone: other tests
//! read the files), review the diff, and run the tests again (the binary embeds the corpus).

use crate::util::{fixture, root};

mod impact;
mod network;
mod phrases;
mod shapes;

/// One model per priced image family, as the network names it.
const IMAGE_MODELS: &[&str] = &[
    "BrainDance",  // sd15
    "AnimagineXL", // sdxl10
    "MagusDevon",  // composite15
    "PepeXL",      // compositexl
    "FLUX.1-dev",  // flux-dev
    "HeuristLogo", // flux-dev-lora
];

/// Below, at and around the Season 1 thresholds (512², 20 steps), the network's common
/// non-square sizes (512x768, 680x1024) and beyond 1024².
const RESOLUTIONS: &[(u32, u32)] = &[
    (256, 256),
    (512, 512),
    (512, 768),
    (768, 768),
    (680, 1024),
    (1024, 1024),
    (1024, 1536),
    (2048, 2048),
];
const STEPS: &[u32] = &[10, 19, 20, 25, 30, 50];

/// Every LLM model some rule prices: one per family plus each per-model rule.
const LLM_MODELS: &[&str] = &[
    "mistralai/mixtral-8x7b-instruct", // llm8x7b4b
    "openhermes-mixtral-8x7b-gptq",    // model rule
    "mistralai/mistral-7b-instruct",   // llm7b16b
    "openhermes-2-pro-mistral-7b",     // model rule
    "openhermes-2.5-mistral-7b-gptq",  // llm7b8b
    "dolphin-2.9.4-llama3.1-8b",       // llm8b16b
    "dolphin-2.9-llama3-8b",           // model rule
    "hermes-3-llama3.1-8b",            // model rule
    "theia-llama-3.1-8b",              // model rule
    "openhermes-2-yi-34b-gptq",        // llm34b8b
    "meta-llama/llama-2-70b-chat",     // llm70b4b
];
const INPUT_TOKENS: &[u32] = &[0, 100, 1000, 8000];
const OUTPUT_TOKENS: &[u32] = &[0, 50, 500, 2000];

fn grid() -> String {
    let mut out = String::new();
    for model in IMAGE_MODELS {
        for (w, h) in RESOLUTIONS {
            for steps in STEPS {
                out.push_str(&format!(
                    "{{\"id\":\"grid-{model}-{w}x{h}-{steps}\",\"model\":\"{model}\",\"width\":{w},\"height\":{h},\"steps\":{steps}}}\n"
                ));
            }
        }
    }
    for model in LLM_MODELS {
        for i in INPUT_TOKENS {
            for o in OUTPUT_TOKENS {
                out.push_str(&format!(
                    "{{\"id\":\"grid-{model}-{i}+{o}\",\"model\":\"{model}\",\"input_tokens\":{i},\"output_tokens\":{o}}}\n"
                ));
            }
        }
    }
    out
}

fn check_or_write(rel: &str, generated: &str) {
    let path = root().join("corpus").join(rel);
    if std::env::var_os("JOBPOINTS_WRITE_CORPUS").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "corpus/{rel} differs from its generator in tests/corpus/; \
         rewrite it with `JOBPOINTS_WRITE_CORPUS=1 cargo test --test main corpus::generated` \
         and review the diff"
    );
}

#[test]
fn generated_corpus_files_match_their_generator() {
    check_or_write("grid.jsonl", &grid());
    let examples = std::fs::read_to_string(root().join("corpus/example_jobs.jsonl")).unwrap();
    check_or_write(
        "network.jsonl",
        &network::network(&crate::util::shipped_rules(), &examples),
    );
}

#[test]
fn real_example_jobs_are_the_fixture_copy() {
    let corpus = std::fs::read(root().join("corpus/example_jobs.jsonl")).unwrap();
    let fixture = std::fs::read(fixture("example_jobs.jsonl")).unwrap();
    assert!(
        corpus == fixture,
        "corpus/example_jobs.jsonl drifted from its source copy"
    );
}

#[test]
fn every_corpus_job_is_valid_and_priced_by_a_rule() {
    // Corpus jobs carry no time; each model is priced inside its catalog windows, in the
    // family of that time, and many have left the catalog since. Each job is scored at the
    // start of each window of its model (Season 1's start at the earliest): valid at every
    // one, and priced by a rule at one at least.
    let rules = crate::util::shipped_rules();
    let season = jobpoints::internals::parse_time("2024-04-01").unwrap();
    for name in ["grid.jsonl"] {
        let text = std::fs::read_to_string(root().join("corpus").join(name)).unwrap();
        let mut n = 0;
        for record in jobpoints::internals::JobReader::new(text.as_bytes()) {
            let model = (record.as_ref().ok())
                .and_then(|j| j.value()["model"].as_str())
                .unwrap_or_default();
            let starts: Vec<_> = (rules.catalog.get(model).into_iter())
                .flat_map(|e| &e.windows)
                .map(|w| w.when.since.map_or(season, |s| s.max(season)))
                .collect();
            let mut ruled = false;
            for at in starts {
                let opts = jobpoints::internals::ScoreOptions {
                    at: Some(at),
                    ..Default::default()
                };
                let s = crate::util::score_record(&rules, &record, opts);
                assert!(
                    !matches!(
                        s.status(),
                        jobpoints::Status::Invalid | jobpoints::Status::Error
                    ),
                    "{name}:{}: {s:?}",
                    s.line()
                );
                ruled |= s.rule().is_some();
            }
            assert!(ruled, "{name}: no rule for {model:?} in any of its windows");
            n += 1;
        }
        assert!(n > 100, "{name} has only {n} jobs");
    }
}

/// The corpus writes first-era prompts with the gateway's templates: the renderer gives, byte
/// for byte, the 1,080 prompts the gateway's own functions wrote for 360 conversations.
#[test]
fn first_era_prompts_are_written_as_the_gateway_wrote_them() {
    let chats: std::collections::HashMap<String, Vec<network::Message>> =
        std::fs::read_to_string(fixture("tokens/chat_corpus.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let messages = (v["messages"].as_array().unwrap().iter())
                    .map(|m| {
                        network::message(
                            m["role"].as_str().unwrap(),
                            m["content"].as_str().unwrap(),
                        )
                    })
                    .collect();
                (v["id"].as_str().unwrap().to_string(), messages)
            })
            .collect();
    let mut n = 0;
    for line in std::fs::read_to_string(fixture("tokens/templated_corpus.jsonl"))
        .unwrap()
        .lines()
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (id, template) = (v["id"].as_str().unwrap(), v["template"].as_str().unwrap());
        assert_eq!(
            network::render_template(template, &chats[id]),
            v["prompt"].as_str().unwrap(),
            "{id} with {template}"
        );
        n += 1;
    }
    assert_eq!(n, 1080);
}
