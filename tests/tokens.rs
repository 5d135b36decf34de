//! LLM jobs priced from their text (#17): the shipped tokenizer against the reference on the
//! committed corpus, the chat template against mistral-common, both job shapes through `eval`
//! and `serve`, the size bound, and `check` refusing a model file that is not the pinned one.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use jobpoints::internals::{MAX_COUNTED_TEXT_BYTES, Message, Role, Tokenizer};

use crate::serve::Server;
use crate::util::{copy_rules_to, fixture, jobpoints, jobpoints_in, rules_dir};

/// The pinned model, as kinds.toml declares it.
const MODEL_SHA256: &str = "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055";

fn model() -> std::sync::Arc<Tokenizer> {
    let bytes = std::fs::read(rules_dir().join("tokenizers/mistral-v1.model")).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), MODEL_SHA256);
    Tokenizer::sentencepiece(&bytes, MODEL_SHA256).unwrap()
}

fn lines(rel: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(rel))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn counts_equal_python_sentencepiece_on_the_whole_corpus() {
    let tok = model();
    let rows = lines("tokens/corpus.jsonl");
    assert!(rows.len() >= 1000, "{} texts", rows.len());
    let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    let (mut empty, mut long, mut total) = (0, 0, 0);
    for r in &rows {
        let text = r["text"].as_str().unwrap();
        *per_category
            .entry(r["category"].as_str().unwrap())
            .or_default() += 1;
        empty += usize::from(text.is_empty());
        long += usize::from(text.chars().count() >= 100_000);
        let ids = tok.ids(text).unwrap();
        let joined: Vec<String> = ids.iter().map(u32::to_string).collect();
        let ids_sha = hex::encode(Sha256::digest(joined.join(",")));
        let count = tok.count(text).unwrap();
        total += count;
        // Counts, and the ids themselves (a count can be right by accident).
        if count != r["tokens"].as_u64().unwrap() || ids_sha != r["ids_sha256"].as_str().unwrap() {
            bad.push(format!("{}: {} != {}", r["id"], count, r["tokens"]));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches: {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    // The corpus covers what the issue asks for.
    assert!(
        empty >= 1 && long >= 5,
        "empty {empty}, 100k-character texts {long}"
    );
    for category in [
        "prose_en",
        "code",
        "json",
        "lang",
        "script_random",
        "emoji_astral",
        "combining",
        "whitespace",
        "empty",
        "controls",
        "long",
    ] {
        assert!(
            per_category.get(category).is_some_and(|n| *n > 0),
            "{category}"
        );
    }
    assert_eq!(total, 999_627, "the reference's total over the corpus");
}

fn message(m: &Value) -> Message {
    let role = match m["role"].as_str().unwrap() {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => panic!("role {other}"),
    };
    Message {
        role,
        content: m["content"].as_str().unwrap().to_string(),
    }
}

#[test]
fn chat_prompts_count_as_mistral_common_encode_chat_completion() {
    let tok = model();
    let rows = lines("tokens/chat_corpus.jsonl");
    assert!(rows.len() >= 300, "{}", rows.len());
    let mut bad = Vec::new();
    let mut differs_from_joined = 0;
    for r in &rows {
        let messages: Vec<Message> = r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(message)
            .collect();
        let got = tok.count_chat(&messages).unwrap();
        let want = r["prompt_tokens"].as_u64().unwrap();
        if got != want {
            bad.push(format!("{} ({}): {got} != {want}", r["id"], r["shape"]));
        }
        differs_from_joined += usize::from(want != r["joined_tokens"].as_u64().unwrap());
    }
    assert!(
        bad.is_empty(),
        "{} mismatches: {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    // The choice matters: counting the contents joined would give other numbers.
    assert!(
        differs_from_joined > rows.len() / 2,
        "{differs_from_joined}"
    );
    // The documented example: `<s> ▁[ INST ] ▁Hello , ▁how ▁are ▁you ? ▁[ / INST ]`.
    let hello = [Message {
        role: Role::User,
        content: "Hello, how are you?".into(),
    }];
    assert_eq!(tok.count_chat(&hello), Ok(14));
    // Special tokens written in text are text (no BOS counted for "<s>").
    assert_eq!(tok.count("<s>"), Ok(3));
    assert_eq!(tok.count(""), Ok(0));
}

/// When the fixtures' jobs are priced: their model, Mixtral 8x7b, is listed in the priced
/// family `llm8x7b4b` then (catalog 014 to 047); the jobs carry no time, and the latest
/// catalog no longer lists it.
const AT: &str = "2024-10-01";

/// `eval --format json --explain` of a fixture file at [`AT`]: id → result.
fn eval(file: &std::path::Path) -> BTreeMap<String, Value> {
    let out = jobpoints()
        .args(["eval", "--format", "json", "--explain", "--at", AT])
        .arg(file)
        .output()
        .unwrap();
    let results: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    results
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect()
}

#[test]
fn a_job_given_as_text_is_priced_exactly_as_with_the_reference_counts() {
    let counts = eval(&fixture("tokens/jobs/with_counts.jsonl"));
    let mut seen = 0;
    for shape in ["network_text.jsonl", "openai_text.jsonl"] {
        let text = eval(&fixture(&format!("tokens/jobs/{shape}")));
        assert_eq!(text.len(), 6, "{shape}");
        for (id, r) in &text {
            let c = &counts[id];
            assert_eq!(r["status"], "ok", "{r}");
            for key in ["status", "points", "rule", "kind"] {
                assert_eq!(r[key], c[key], "{shape} {id}: {key}");
            }
            // `--explain` names what was counted, with which tokenizer, and the counts.
            let counted = r["trace"]["counted"].as_array().unwrap();
            assert_eq!(counted.len(), 2, "{r}");
            let inputs: BTreeMap<&str, &Value> = (c["trace"]["inputs"].as_array().unwrap())
                .iter()
                .map(|p| (p[0].as_str().unwrap(), &p[1]))
                .collect();
            for n in counted {
                assert_eq!(n["tokenizer"], "mistral-v1");
                let input = n["input"].as_str().unwrap();
                assert_eq!(&n["tokens"], inputs[input], "{shape} {id} {input}");
                assert!(!n["assumptions"].as_array().unwrap().is_empty());
            }
            let fields: Vec<&str> = counted
                .iter()
                .map(|n| n["field"].as_str().unwrap())
                .collect();
            let want = if shape.starts_with("network") {
                [
                    "model_input.LLM.prompt.@json",
                    "result.Text.@json.*.message",
                ]
            } else {
                ["request.messages", "response.choices.*.message"]
            };
            assert_eq!(fields, want);
            // The jobs that carry counts were not counted.
            assert!(c["trace"].get("counted").is_none(), "{c}");
            seen += 1;
        }
    }
    assert_eq!(seen, 12);
}

#[test]
fn the_explain_table_names_the_counted_fields_tokenizer_and_counts() {
    let out = jobpoints()
        .args(["eval", "--format", "table", "--explain", "--at", AT])
        .arg(fixture("tokens/jobs/network_text.jsonl"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "counted      input_tokens = 14 tokens of `model_input.LLM.prompt.@json` (1 message, 19 bytes, through the chat template), tokenizer mistral-v1",
        "counted      output_tokens = 42 tokens of `result.Text.@json.*.message` (2 texts, 188 bytes), tokenizer mistral-v1",
        "assumption   The prompt counted is the chat template",
        "assumption   Neither BOS nor EOS counts in the answer",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
}

#[test]
fn a_job_that_carries_its_text_is_counted_from_it_whatever_it_claims() {
    // Before #21 the claimed counts priced this job (1.052 points): a miner's record could
    // claim any count and be paid for it.
    let text = json!({
        "id": "text", "model": "mistralai/mixtral-8x7b-instruct",
        "request": {"messages": [{"role": "user", "content": "Hello, how are you?"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": "Fine."}}]},
    });
    let mut both = text.clone();
    both["id"] = json!("both");
    both["usage"] = json!({"prompt_tokens": 812, "completion_tokens": 240});
    let out = jobpoints()
        .args(["eval", "--format", "json", "--explain", "--at", AT, "-"])
        .write_stdin(format!("{text}\n{both}\n"))
        .output()
        .unwrap();
    let v: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[1]["points"], v[0]["points"], "{v:?}");
    assert_ne!(v[1]["points"], 1.052, "{v:?}");
    let counted = v[1]["trace"]["counted"].as_array().unwrap();
    assert_eq!(counted.len(), 2, "{v:?}");
    assert_eq!(counted[0]["claim"]["field"], "usage.prompt_tokens");
    assert_eq!(counted[0]["claim"]["disputed"], true);
}

/// One LLM job of the network's shape with `prompt` (the messages) and `answer`.
fn network_job(id: &str, prompt: &Value, answer: &str) -> Value {
    let choices = json!([{"index": 0, "message": {"role": "assistant", "content": answer}}]);
    json!({
        "job_id": id, "model_id": "mistralai/mixtral-8x7b-instruct-v0.1",
        "model_input": {"LLM": {"prompt": prompt.to_string()}},
        "result": {"Text": choices.to_string()},
    })
}

#[test]
fn text_over_the_limit_and_prompts_with_no_count_are_invalid_with_a_reason() {
    let big = "a".repeat(MAX_COUNTED_TEXT_BYTES + 1);
    let user = |c: &str| json!([{"role": "user", "content": c}]);
    let jobs = [
        network_job("big-answer", &user("hi"), &big),
        network_job("big-prompt", &user(&big), "ok"),
        json!({"job_id": "not-json", "model_id": "mistralai/mixtral-8x7b-instruct-v0.1",
               "model_input": {"LLM": {"prompt": "[{\"role\": "}}, "result": {"Text": "[]"}}),
        network_job(
            "ends-with-assistant",
            &json!([{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]),
            "x",
        ),
        network_job(
            "function",
            &json!([{"role": "function", "content": "42"}]),
            "x",
        ),
        // Exactly at the limit is counted.
        network_job("at-limit", &user("hi"), &"a".repeat(MAX_COUNTED_TEXT_BYTES)),
    ];
    let body: String = jobs.iter().map(|j| j.to_string() + "\n").collect();
    let out = jobpoints()
        .args(["eval", "--format", "jsonl", "--at", AT, "-"])
        .write_stdin(body)
        .output()
        .unwrap();
    let results: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_id: BTreeMap<&str, &Value> = results
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    for (id, field, says) in [
        (
            "big-answer",
            "result.Text.@json.0.message.content",
            "longer than 1048576 bytes",
        ),
        (
            "big-prompt",
            "model_input.LLM.prompt.@json",
            "longer than 1048576 bytes",
        ),
        ("not-json", "model_input.LLM.prompt", "does not hold JSON"),
        (
            "ends-with-assistant",
            "model_input.LLM.prompt.@json",
            "ends with an assistant message",
        ),
        (
            "function",
            "model_input.LLM.prompt.@json.0",
            "role \"function\"",
        ),
    ] {
        let r = by_id[id];
        assert_eq!(r["status"], "invalid", "{r}");
        assert_eq!(r["points"], 0.0, "{r}");
        assert_eq!(r["field"], field, "{r}");
        assert!(r["error"].as_str().unwrap().contains(says), "{r}");
    }
    let at_limit = by_id["at-limit"];
    assert_eq!(at_limit["status"], "ok", "{at_limit}");
}

#[test]
fn serve_prices_both_shapes_as_eval_does() {
    let reference = eval(&fixture("tokens/jobs/with_counts.jsonl"));
    let server = Server::start(&rules_dir(), &["--trust-job-time"]);
    for shape in ["network_text.jsonl", "openai_text.jsonl"] {
        let body = std::fs::read(fixture(&format!("tokens/jobs/{shape}"))).unwrap();
        let mut response = (server.agent)
            .post(format!("{}/v1/score?at={AT}", server.base))
            .header("content-type", "application/x-ndjson")
            .send(&body[..])
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        assert_eq!(status, 200, "{text}");
        let results: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(results.len(), 6);
        for r in &results {
            let c = &reference[r["id"].as_str().unwrap()];
            assert_eq!(
                (&r["status"], &r["points"]),
                (&c["status"], &c["points"]),
                "{r}"
            );
        }
    }
}

#[test]
fn check_refuses_a_model_file_that_is_not_the_pinned_one() {
    let dir = tempfile::tempdir().unwrap();
    copy_rules_to(dir.path());
    let path = dir.path().join("tokenizers/mistral-v1.model");
    let mut bytes = std::fs::read(&path).unwrap();
    // One piece's score changed: the file still parses, and counts could differ.
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let out = jobpoints_in(dir.path())
        .args(["check", "--format", "json", "--rules"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = (v["diagnostics"].as_array().unwrap())
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["tokenizer-hash"], "{v}");
    assert_eq!(v["diagnostics"][0]["file"], "kinds.toml", "{v}");
    // The model is part of the rule set's hash.
    let shipped = jobpoints()
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    let shipped: Value = serde_json::from_slice(&shipped.stdout).unwrap();
    assert_ne!(v["ruleset"], shipped["ruleset"]);
}

#[test]
fn diff_flags_a_change_of_what_text_is_counted_as_retroactive() {
    // Corpus jobs carry their counts, so no corpus job moves when the counted text changes;
    // the review must still say that every job counted from its text is re-priced, back to
    // the start of history. The tokenizer model's hash is part of the input's spec, so
    // swapping the model (with its pin) is the same kind of change.
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("rules");
    copy_rules_to(&new);
    crate::util::edit_rule(
        &new,
        "kinds.toml",
        "\"result.Text.@json.*.message\"",
        "\"result.Text.@json.*.message.role\"",
    );
    let out = jobpoints()
        .args([
            "diff",
            "--format",
            "json",
            "--effective-after",
            "2026-12-01",
        ])
        .arg(rules_dir())
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = report["changes"].as_array().expect("changes");
    let input = changes
        .iter()
        .find(|c| c["subject"] == "input `llm.output_tokens`")
        .unwrap_or_else(|| panic!("{changes:#?}"));
    let (old, new_spec) = (
        input["old"].as_str().unwrap(),
        input["new"].as_str().unwrap(),
    );
    assert!(
        old.contains("message by `mistral-v1` (sha256 dadfd56d7667)"),
        "{old}"
    );
    assert!(
        new_spec.contains("message.role by `mistral-v1`"),
        "{new_spec}"
    );
    assert!(
        input["flag"]
            .as_str()
            .is_some_and(|f| f.contains("counted from its text")),
        "{input}"
    );
    assert_eq!(
        input["retroactive"]["from"], "2024-04-01T00:00:00Z",
        "{input}"
    );
}
