//! The network's LLM job records of both eras (#21): a first-era prompt (one string written
//! with the gateway's template) and plain answer count exactly as the same conversation in
//! the second era's JSON; tool definitions and tool calls are counted; streamed jobs are
//! `unmeasured`; a count the record claims never outranks its text. Through the library,
//! `eval`, `serve` and `verify`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::util::score_record;
use jobpoints::internals::{
    Message, PromptTemplate, Role, RuleSet, ScoreOptions, Tokenizer, parse_job, parse_time,
};

use crate::serve::Server;
use crate::util::{fixture, jobpoints, rules_dir, shipped_rules};

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(shipped_rules)
}

/// The shipped prompt templates and tokenizer, as the `llm` job kind's prompt counts with.
fn prompt_counting() -> (&'static [PromptTemplate], &'static Tokenizer) {
    let t = rules().job_kinds["llm"].inputs[0]
        .tokens_of
        .as_ref()
        .expect("input_tokens is counted from text");
    (&t.templates, &t.model)
}

fn lines(rel: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(rel))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn role(name: &str) -> Role {
    match name {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => panic!("role {other}"),
    }
}

fn messages(v: &Value) -> Vec<Message> {
    (v.as_array().unwrap().iter())
        .map(|m| Message {
            role: role(m["role"].as_str().unwrap()),
            content: m["content"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn as_json(ms: &[Message]) -> Value {
    ms.iter()
        .map(|m| json!({"role": m.role.name(), "content": m.content}))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The gateway's three templates, restated from its code (heurist-network/litellm main-old,
// factory.py; see kinds.toml): the proptest renders generated conversations with them, and
// `the_restated_templates_write_what_the_gateway_wrote` ties them to the gateway's own output.

fn chatml(ms: &[Message]) -> String {
    ms.iter()
        .map(|m| format!("<|im_start|>{}{}<|im_end|>\n", m.role.name(), m.content))
        .collect()
}

fn llama_2(ms: &[Message]) -> String {
    ms.iter()
        .map(|m| match m.role {
            Role::System => format!("[INST] <<SYS>>\n{}\n<</SYS>>\n [/INST]\n", m.content),
            Role::User => format!("[INST] {} [/INST]\n", m.content),
            Role::Assistant => format!("{}\n</s>", m.content),
        })
        .collect()
}

fn mistral(ms: &[Message]) -> String {
    if let [only] = ms {
        return format!("[INST] {} [/INST]", only.content);
    }
    let last_user = ms.last().is_some_and(|m| m.role == Role::User);
    let history = if last_user { &ms[..ms.len() - 1] } else { ms };
    let mut out = String::from("<s>");
    for m in history {
        out.push_str(&match m.role {
            Role::System => format!("[INST] \n{} [/INST]\n", m.content),
            Role::User => format!("[INST] {} [/INST]\n", m.content),
            Role::Assistant => format!(" {}</s>", m.content),
        });
    }
    out.push_str("</s>");
    if last_user {
        out.push_str(&format!("[INST] {} [/INST]", ms[ms.len() - 1].content));
    }
    out
}

fn render(template: &str, ms: &[Message]) -> String {
    match template {
        "chatml" => chatml(ms),
        "llama-2" => llama_2(ms),
        "mistral" => mistral(ms),
        other => panic!("template {other}"),
    }
}

/// The messages the engine reads from a templated prompt: the first template that reads it.
fn decode(prompt: &str) -> Option<(String, Vec<Message>)> {
    let (templates, _) = prompt_counting();
    templates
        .iter()
        .find_map(|t| t.decode(prompt).ok().map(|m| (t.name.clone(), m)))
}

/// `text` as the second era's answer: the JSON of one choice.
fn choices(text: &str) -> String {
    json!([{"index": 0, "message": {"role": "assistant", "content": text}}]).to_string()
}

/// A network record with `prompt` (a templated string or JSON messages) and `answer` (plain
/// text or JSON choices), scored in-process with `--explain` at one time: its result.
fn score(prompt: &str, answer: &str) -> Value {
    let job = json!({
        "job_id": "j", "model_id": "mistralai/mixtral-8x7b-instruct",
        "model_input": {"LLM": {"prompt": prompt}},
        "result": {"Text": answer},
    });
    let opts = ScoreOptions {
        at: Some(parse_time("2024-06-01").unwrap()),
        explain: true,
    };
    serde_json::to_value(score_record(rules(), &parse_job(1, job), opts)).unwrap()
}

/// The input's count in a result's trace, and the path it was counted from.
fn counted(result: &Value, input: &str) -> (u64, String) {
    let c = (result["trace"]["counted"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["input"] == input))
        .unwrap_or_else(|| panic!("{input} not counted: {result}"));
    (
        c["tokens"].as_u64().unwrap(),
        c["field"].as_str().unwrap().to_string(),
    )
}

/// Contents that a template cannot carry: they hold one of its markers, so the string
/// reads differently (kinds.toml's assumptions say so). The Mistral template also writes a
/// lone message as a user turn whatever its role, and a user message that starts with a
/// newline looks like its system marker.
fn cannot_carry(template: &str, ms: &[Message]) -> bool {
    const MARKERS: [&str; 8] = [
        "<|im_start|>",
        "<|im_end|>",
        "[INST]",
        "[/INST]",
        "<<SYS>>",
        "<</SYS>>",
        "<s>",
        "</s>",
    ];
    ms.iter()
        .any(|m| MARKERS.iter().any(|k| m.content.contains(k)))
        || (template == "mistral"
            && ((ms.len() == 1 && ms[0].role != Role::User)
                || ms
                    .iter()
                    .any(|m| m.role != Role::Assistant && m.content.starts_with('\n'))))
}

#[test]
fn first_era_prompts_written_by_the_gateway_count_as_their_messages_given_as_json() {
    // templated_corpus.jsonl: chat_corpus.jsonl's 360 conversations written by the gateway's
    // own template functions (gen_templated.py); chat_corpus.jsonl has mistral-common's count
    // of each conversation given as JSON messages.
    let reference: BTreeMap<String, (Vec<Message>, u64)> = lines("tokens/chat_corpus.jsonl")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                (
                    messages(&r["messages"]),
                    r["prompt_tokens"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    let rows = lines("tokens/templated_corpus.jsonl");
    assert_eq!(rows.len(), 3 * reference.len());
    let (_, tokenizer) = prompt_counting();
    let mut exact = BTreeMap::<&str, usize>::new();
    let mut lossy = Vec::new();
    for r in &rows {
        let (template, prompt) = (
            r["template"].as_str().unwrap(),
            r["prompt"].as_str().unwrap(),
        );
        let (original, want) = &reference[r["id"].as_str().unwrap()];
        let result = score(prompt, "ok");
        if cannot_carry(template, original) {
            // Read as the string says: counted as whatever messages it reads to.
            lossy.push(format!("{} {template}", r["id"]));
            if let Some((_, read)) = decode(prompt)
                && let Ok(n) = tokenizer.count_chat(&read)
            {
                assert_eq!(counted(&result, "input_tokens").0, n, "{r}");
            }
            continue;
        }
        let (read_with, read) = decode(prompt).unwrap_or_else(|| panic!("unread: {r}"));
        assert_eq!(&read, original, "{r}");
        // The single-user-turn string is the same in Llama-2 and Mistral but for its end; any
        // template that reads a string reads these messages.
        assert!(
            read_with == template || template == "mistral" || original.len() == 1,
            "{r}: read with {read_with}"
        );
        assert_eq!(result["status"], "ok", "{result}");
        let (tokens, field) = counted(&result, "input_tokens");
        assert_eq!(field, "model_input.LLM.prompt.@template");
        assert_eq!(tokens, *want, "{} {template}", r["id"]);
        *exact.entry(template).or_default() += 1;
    }
    // What a template cannot carry is rare (here: the corpus's contents written to look like
    // markers, and its 30 lone system messages in Mistral's template), and is only what
    // kinds.toml says.
    assert!(lossy.len() <= rows.len() / 10, "{}: {lossy:?}", lossy.len());
    for template in ["chatml", "llama-2", "mistral"] {
        assert!(exact[template] >= 300, "{template}: {exact:?}");
    }
}

#[test]
fn the_restated_templates_write_what_the_gateway_wrote() {
    let reference: BTreeMap<String, Vec<Message>> = lines("tokens/chat_corpus.jsonl")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                messages(&r["messages"]),
            )
        })
        .collect();
    for r in lines("tokens/templated_corpus.jsonl") {
        let ms = &reference[r["id"].as_str().unwrap()];
        let template = r["template"].as_str().unwrap();
        assert_eq!(render(template, ms), r["prompt"].as_str().unwrap(), "{r}");
    }
}

/// A conversation mistral-common counts, ending with a user turn: its roles and contents
/// (assistant contents not empty), from an alphabet without any template's markers.
fn conversation() -> impl Strategy<Value = Vec<Message>> {
    let content = "[a-zA-Z0-9éß日本🙂,.!?'\"{}:][a-zA-Z0-9 ,.!?\n\téß日本🙂'\"{}:]{0,40}|";
    let turn = (
        prop_oneof![Just(Role::System), Just(Role::Assistant), Just(Role::User)],
        content,
    );
    (prop::collection::vec(turn, 0..6), content).prop_map(|(turns, last)| {
        let mut ms: Vec<Message> = Vec::new();
        for (role, content) in turns {
            // mistral-common refuses a system message right after an assistant's, and an
            // assistant message without content.
            if role == Role::System && ms.last().is_some_and(|m| m.role == Role::Assistant) {
                continue;
            }
            let content = if role == Role::Assistant && content.is_empty() {
                "ok".to_string()
            } else {
                content
            };
            ms.push(Message { role, content });
        }
        ms.push(Message {
            role: Role::User,
            content: last,
        });
        ms
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_conversation_costs_the_same_in_every_template_and_as_json(ms in conversation()) {
        let (_, tokenizer) = prompt_counting();
        let want = tokenizer.count_chat(&ms).unwrap();
        let as_json = score(&as_json(&ms).to_string(), &choices("ok"));
        prop_assert_eq!(counted(&as_json, "input_tokens").0, want);
        for template in ["chatml", "llama-2", "mistral"] {
            if cannot_carry(template, &ms) {
                continue;
            }
            let result = score(&render(template, &ms), "ok");
            prop_assert_eq!(counted(&result, "input_tokens").0, want, "{}: {}", template, result);
            prop_assert_eq!(&result["points"], &as_json["points"]);
        }
    }
}

#[test]
fn a_plain_answer_counts_as_its_json_choice_even_when_it_looks_like_json() {
    let prompt = chatml(&[Message {
        role: Role::User,
        content: "Hello".into(),
    }]);
    let json_prompt = json!([{"role": "user", "content": "Hello"}]).to_string();
    let texts: Vec<String> = lines("tokens/corpus.jsonl")
        .iter()
        .filter(|r| r["chars"].as_u64().unwrap() <= 2000)
        .step_by(23)
        .map(|r| r["text"].as_str().unwrap().to_string())
        .chain([
            // What a second-era answer looks like, as a first-era answer's text.
            json!([{"index": 0, "message": {"role": "assistant", "content": "hi"}}]).to_string(),
            "[]".to_string(),
            "null".to_string(),
        ])
        .collect();
    assert!(texts.len() > 40);
    let (_, tokenizer) = prompt_counting();
    for text in &texts {
        let plain = score(&prompt, text);
        let json_form = score(&json_prompt, &choices(text));
        let (n, field) = counted(&plain, "output_tokens");
        assert_eq!(field, "result.Text", "{plain}");
        assert_eq!(n, counted(&json_form, "output_tokens").0, "{text:?}");
        assert_eq!(n, tokenizer.count(text).unwrap(), "{text:?}");
        assert_eq!(plain["points"], json_form["points"], "{text:?}");
    }
}

/// `eval --format json --explain` of a fixture: its exit code and the results by id.
fn eval(rel: &str, extra: &[&str]) -> (Option<i32>, BTreeMap<String, Value>) {
    let out = jobpoints()
        .args(["eval", "--format", "json", "--explain"])
        .args(extra)
        .arg(fixture(rel))
        .output()
        .unwrap();
    let results: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let by_id = results
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    (out.status.code(), by_id)
}

/// The JSON text mistral-common writes for the fixtures' one tool call (kinds.toml).
const CALL_TEXT: &str =
    r#"[{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}]"#;

#[test]
fn every_network_record_shape_prices_or_says_why() {
    // Well-formed records of every shape: `eval` exits 0, streamed jobs included.
    let (code, r) = eval("tokens/jobs/eras.jsonl", &["--at", "2024-06-01"]);
    assert_eq!(code, Some(0), "{r:#?}");
    assert_eq!(r.len(), 15);
    // The same conversation costs the same in both eras and in every template.
    for name in ["chat", "hello", "json-looking-answer"] {
        let e2 = &r[&format!("e2-{name}")];
        let templates: &[&str] = if name == "json-looking-answer" {
            &["chatml"]
        } else {
            &["chatml", "llama-2", "mistral"]
        };
        for t in templates {
            let id = if name == "json-looking-answer" {
                format!("e1-{name}")
            } else {
                format!("e1-{t}-{name}")
            };
            let e1 = &r[&id];
            assert_eq!(e1["status"], "ok", "{e1}");
            assert_eq!(e1["points"], e2["points"], "{id}");
            for input in ["input_tokens", "output_tokens"] {
                assert_eq!(counted(e1, input).0, counted(e2, input).0, "{id} {input}");
            }
            let c = &e1["trace"]["counted"][0];
            assert_eq!(c["field"], "model_input.LLM.prompt.@template", "{e1}");
            assert_eq!(counted(e1, "output_tokens").1, "result.Text", "{e1}");
        }
        assert_eq!(
            counted(e2, "input_tokens").1,
            "model_input.LLM.prompt.@json"
        );
        assert_eq!(
            counted(e2, "output_tokens").1,
            "result.Text.@json.*.message"
        );
    }
    // Each first-era prompt was read by the template that wrote it.
    for t in ["chatml", "llama-2", "mistral"] {
        let c = &r[&format!("e1-{t}-chat")]["trace"]["counted"][0];
        assert_eq!(c["template"], *t, "{c}");
    }
    let (_, tokenizer) = prompt_counting();
    // Tool definitions are counted with the prompt, as their JSON text.
    let tools = &r["e2-tools"]["trace"]["counted"][0];
    assert_eq!(tools["tools"]["definitions"], 1, "{tools}");
    assert_eq!(tools["tools"]["field"], "model_input.LLM.tools.@json");
    let weather = [Message {
        role: Role::User,
        content: "What is the weather in Paris?".into(),
    }];
    let prompt_only = tokenizer.count_chat(&weather).unwrap();
    let tool_tokens = tools["tools"]["tokens"].as_u64().unwrap();
    assert!(tool_tokens > 40, "{tools}");
    assert_eq!(tools["tokens"].as_u64(), Some(prompt_only + tool_tokens));
    // A tool-call answer is the JSON text of its calls.
    let call = &r["e2-tool-call"];
    let (n, _) = counted(call, "output_tokens");
    assert_eq!(n, tokenizer.count(CALL_TEXT).unwrap(), "{call}");
    assert_eq!(call["trace"]["counted"][1]["tool_calls"], 1);
    // A prompt with a tool call and its result: an assistant turn of the call's text, then a
    // user turn of the result.
    let turns = [
        weather[0].clone(),
        Message {
            role: Role::Assistant,
            content: CALL_TEXT.into(),
        },
        Message {
            role: Role::User,
            content: r#"{"temperature": 14, "sky": "overcast"}"#.into(),
        },
    ];
    let (n, _) = counted(&r["e2-tool-result"], "input_tokens");
    assert_eq!(n, tokenizer.count_chat(&turns).unwrap() + tool_tokens);
    // Streamed jobs: their own status and reason, no points, the prompt still read.
    for id in ["e1-stream", "e2-stream"] {
        let s = &r[id];
        assert_eq!(s["status"], "unmeasured", "{s}");
        assert_eq!(s["points"], 0.0);
        assert_eq!(s["kind"], "llama");
        assert!(s["reason"].as_str().unwrap().contains("streamed"), "{s}");
        assert!(s.get("error").is_none(), "{s}");
    }

    // Records that cannot be counted: `invalid`, naming the field and why.
    let (code, bad) = eval("tokens/jobs/eras_malformed.jsonl", &[]);
    assert_eq!(code, Some(1));
    for (id, field, says) in [
        (
            "bad-template-unclosed",
            "model_input.LLM.prompt",
            "chatml: the user message at byte 0 never ends",
        ),
        (
            "bad-prompt-plain-text",
            "model_input.LLM.prompt",
            "does not hold JSON: expected value (at column 1), and no prompt template reads",
        ),
        (
            "bad-template-ends-with-assistant",
            "model_input.LLM.prompt.@template",
            "ends with an assistant message",
        ),
        ("bad-e2-plain-answer", "result.Text", "does not hold JSON"),
        (
            "bad-tool-call-without-name",
            "result.Text.@json.0.message.tool_calls.0",
            "must be a tool call with `function.name`",
        ),
        (
            "bad-tools-not-a-list",
            "model_input.LLM.tools.@json",
            "must be a list of tool definitions",
        ),
        (
            "bad-tools-not-json",
            "model_input.LLM.tools",
            "does not hold JSON",
        ),
        (
            "bad-no-answer-not-streamed",
            "output_tokens",
            "missing field `output_tokens`",
        ),
    ] {
        let b = &bad[id];
        assert_eq!(b["status"], "invalid", "{b}");
        assert_eq!(b["field"], field, "{b}");
        assert!(b["error"].as_str().unwrap().contains(says), "{b}");
    }
    assert_eq!(bad.len(), 8);
}

#[test]
fn serve_prices_every_record_shape_as_eval_does() {
    let server = Server::start(&rules_dir(), &["--trust-job-time"]);
    for rel in ["tokens/jobs/eras.jsonl", "tokens/jobs/eras_malformed.jsonl"] {
        let (_, want) = eval(rel, &[]);
        let body = std::fs::read(fixture(rel)).unwrap();
        let (status, text, _) = server.post("application/x-ndjson", &body);
        assert_eq!(status, 200, "{text}");
        let got: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(got.len(), want.len());
        for g in &got {
            let w = &want[g["id"].as_str().unwrap()];
            for key in ["status", "points", "rule", "reason", "error", "field"] {
                assert_eq!(g.get(key), w.get(key), "{rel} {key}: {g}");
            }
        }
    }
}

/// The fixture's record `id`, changed by `edit`.
fn record(id: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut r = lines("tokens/jobs/eras.jsonl")
        .into_iter()
        .find(|r| r["job_id"] == id)
        .unwrap();
    edit(&mut r);
    r
}

#[test]
fn a_claimed_count_never_outranks_the_text() {
    // The issue's numbers: before #21 the short chat earned 0.027 points from its text and
    // 900.005 when the record also said "input_tokens": 900000.
    let plain = record("e2-hello", |r| r["job_id"] = json!("plain"));
    let inflated = record("e2-hello", |r| {
        r["job_id"] = json!("inflated");
        r["input_tokens"] = json!(900_000);
    });
    let (_, tokenizer) = prompt_counting();
    let hello = [Message {
        role: Role::User,
        content: "Hello, how are you?".into(),
    }];
    let input = tokenizer.count_chat(&hello).unwrap();
    let close = record("e2-hello", |r| {
        r["job_id"] = json!("close");
        r["input_tokens"] = json!(input + 3);
    });
    let answer_claim = record("e2-hello", |r| {
        r["job_id"] = json!("answer-claim");
        r["usage"] = json!({"completion_tokens": 5000});
    });
    // No text to count: the claim is all there is.
    let streamed_claim = record("e2-stream", |r| {
        r["job_id"] = json!("streamed-claim");
        r["output_tokens"] = json!(250);
    });
    let bad_claim = record("e2-hello", |r| {
        r["job_id"] = json!("bad-claim");
        r["input_tokens"] = json!("many");
    });
    let body: String = [
        plain,
        inflated,
        close,
        answer_claim,
        streamed_claim,
        bad_claim,
    ]
    .iter()
    .map(|j| format!("{j}\n"))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("claims.jsonl");
    std::fs::write(&jobs, &body).unwrap();
    let run = |format: &str| {
        jobpoints()
            .args(["eval", "--format", format])
            .arg(&jobs)
            .output()
            .unwrap()
    };
    let out = run("jsonl");
    assert_eq!(out.status.code(), Some(1), "the malformed claim");
    let results: Vec<Value> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let r: BTreeMap<&str, &Value> = results
        .iter()
        .map(|v| (v["id"].as_str().unwrap(), v))
        .collect();
    let plain = r["plain"];
    assert_eq!(plain["status"], "ok");
    assert!(plain.get("disputed_claim").is_none(), "{plain}");
    for id in ["inflated", "close", "answer-claim"] {
        assert_eq!(
            r[id]["points"], plain["points"],
            "{id}: the text is counted"
        );
    }
    assert_eq!(
        r["inflated"]["disputed_claim"],
        format!(
            "input_tokens: the job claims 900000 (`input_tokens`), its text counts {input} (`model_input.LLM.prompt.@json`)"
        )
    );
    assert!(
        r["close"].get("disputed_claim").is_none(),
        "within tolerance"
    );
    let answer = r["answer-claim"]["disputed_claim"].as_str().unwrap();
    assert!(
        answer.starts_with("output_tokens: the job claims 5000 (`usage.completion_tokens`)"),
        "{answer}"
    );
    let streamed = r["streamed-claim"];
    assert_eq!(streamed["status"], "ok", "{streamed}");
    assert_eq!(
        streamed["points"].as_f64().unwrap(),
        (input + 250) as f64 / 1000.0,
        "priced by the claim: no text to outrank it"
    );
    assert_eq!(r["bad-claim"]["status"], "invalid");
    assert_eq!(r["bad-claim"]["field"], "input_tokens");

    // Every writer carries it: CSV, the table's note, Parquet; `verify` checks it.
    let csv = String::from_utf8(run("csv").stdout).unwrap();
    assert!(
        csv.lines().next().unwrap().ends_with(",disputed_claim"),
        "{csv}"
    );
    assert!(csv.contains("the job claims 900000"), "{csv}");
    let table = String::from_utf8(run("table").stdout).unwrap();
    assert!(
        table.contains("disputed claim: input_tokens: the job claims 900000"),
        "{table}"
    );
    let explain = jobpoints()
        .args(["eval", "--format", "table", "--explain"])
        .arg(&jobs)
        .output()
        .unwrap();
    let explain = String::from_utf8(explain.stdout).unwrap();
    assert!(
        explain.contains(
            "claim        the job claims input_tokens = 900000 (`input_tokens`): DISPUTED by its text, which is counted"
        ),
        "{explain}"
    );
    #[cfg(feature = "parquet")]
    {
        let parquet = dir.path().join("results.parquet");
        let out = jobpoints()
            .args([
                "eval",
                "--invalid-exit-code",
                "0",
                "--format",
                "parquet",
                "--out",
            ])
            .arg(&parquet)
            .arg(&jobs)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let rows: Vec<Value> =
            jobpoints::internals::open_ledger(&parquet, jobpoints::internals::InputFormat::Parquet)
                .unwrap()
                .map(|r| r.expect("a result row").value().clone())
                .collect();
        assert_eq!(rows[1]["disputed_claim"], r["inflated"]["disputed_claim"]);
    }
    let results_file = dir.path().join("results.jsonl");
    std::fs::write(&results_file, &out.stdout).unwrap();
    let verify = |file: &std::path::Path| {
        jobpoints()
            .args(["verify", "--format", "json"])
            .arg(file)
            .arg("--jobs")
            .arg(&jobs)
            .output()
            .unwrap()
    };
    assert_eq!(verify(&results_file).status.code(), Some(0));
    let tampered = String::from_utf8(out.stdout)
        .unwrap()
        .replace("the job claims 900000", "the job claims 14");
    let tampered_file = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered_file, tampered).unwrap();
    let v = verify(&tampered_file);
    assert_eq!(v.status.code(), Some(5), "{v:?}");
    assert!(String::from_utf8_lossy(&v.stdout).contains("disputed_claim"));
}

#[test]
fn a_templated_prompt_over_the_size_limit_is_invalid_before_it_is_read() {
    let big = format!(
        "<|im_start|>user{}<|im_end|>\n",
        "a".repeat(jobpoints::internals::MAX_COUNTED_TEXT_BYTES)
    );
    let started = std::time::Instant::now();
    let result = score(&big, "ok");
    assert_eq!(result["status"], "invalid", "{result}");
    assert_eq!(result["field"], "model_input.LLM.prompt");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("longer than 1048576 bytes"),
        "{result}"
    );
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}
