//! What `corpus/network.jsonl` holds, counted from its records and from what the real binary
//! makes of them (`eval --explain` with the shipped rules): every shape the corpus promises is
//! there in numbers, and prices as it should. A regenerated corpus that lost a shape fails here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::network::{LLM_ERA_2, timeouts};
use crate::util::{jobpoints, root, shipped_rules};

/// The network corpus's records and their results, pair by pair.
struct Corpus {
    jobs: Vec<Json>,
    results: Vec<Json>,
}

/// Read and scored once for every test here.
fn corpus() -> &'static Corpus {
    static CORPUS: std::sync::OnceLock<Corpus> = std::sync::OnceLock::new();
    CORPUS.get_or_init(score_corpus)
}

fn score_corpus() -> Corpus {
    let path = root().join("corpus/network.jsonl");
    let jobs: Vec<Json> = (std::fs::read_to_string(&path).unwrap().lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let out = jobpoints()
        .args(["eval", "--explain"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Json> = (String::from_utf8(out.stdout).unwrap().lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), jobs.len(), "one result per job");
    for (j, r) in jobs.iter().zip(&results) {
        assert_eq!(j["job_id"], r["id"]);
    }
    Corpus { jobs, results }
}

fn seconds(text: &str) -> i64 {
    jobpoints::internals::parse_time(text).unwrap().as_second()
}

fn at(job: &Json) -> i64 {
    seconds(job["completed_at"].as_str().expect("every job is dated"))
}

fn status(r: &Json) -> &str {
    r["status"].as_str().unwrap()
}

/// The counted input `name` of a result's trace.
fn counted<'a>(r: &'a Json, name: &str) -> Option<&'a Json> {
    (r["trace"]["counted"].as_array()?.iter()).find(|c| c["input"] == name)
}

/// Asserts each shape has at least its minimum, naming every shortfall at once.
fn assert_at_least(census: &BTreeMap<&str, usize>, minimum: &[(&str, usize)]) {
    let short: Vec<String> = (minimum.iter())
        .filter(|(shape, n)| census.get(shape).copied().unwrap_or(0) < *n)
        .map(|(shape, n)| format!("{shape}: {} < {n}", census.get(shape).unwrap_or(&0)))
        .collect();
    assert!(
        short.is_empty(),
        "shapes missing: {short:#?}\nall: {census:#?}"
    );
}

#[test]
fn every_job_is_dated_and_priced_or_given_a_precise_reason() {
    let c = corpus();
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &c.results {
        *statuses.entry(status(r)).or_default() += 1;
    }
    assert_eq!(statuses.get("invalid"), None, "{statuses:?}");
    assert_eq!(statuses.get("error"), None, "{statuses:?}");
    assert_at_least(
        &statuses,
        &[
            ("ok", 500),
            ("below_threshold", 50),
            ("over_limit", 30),
            ("no_rule", 300),
            ("disabled", 50),
            ("unmeasured", 8),
        ],
    );
    for (j, r) in c.jobs.iter().zip(&c.results) {
        if status(r) != "ok" {
            assert!(r["reason"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
        }
        assert_eq!(r["completed_at"], j["completed_at"]);
    }
    // A few thousand jobs.
    assert!((2000..5000).contains(&c.jobs.len()), "{}", c.jobs.len());
}

#[test]
fn every_catalog_window_alias_and_unpriced_family_has_jobs() {
    let rules = shipped_rules();
    let c = corpus();
    let mut by_model: BTreeMap<&str, Vec<(i64, &Json)>> = BTreeMap::new();
    for (j, r) in c.jobs.iter().zip(&c.results) {
        by_model
            .entry(j["model_id"].as_str().unwrap())
            .or_default()
            .push((at(j), r));
    }
    let none = Vec::new();
    let mut windows = 0;
    for (model, entry) in &rules.catalog {
        let jobs = by_model.get(model.as_str()).unwrap_or(&none);
        for w in &entry.windows {
            windows += 1;
            let since = w.when.since.map(|t| t.as_second()).unwrap();
            let until = w.when.until.map(|t| t.as_second());
            let inside: Vec<i64> = (jobs.iter())
                .map(|(t, _)| *t)
                .filter(|t| *t >= since && until.is_none_or(|u| *t < u))
                .collect();
            let what = format!("{model} {}", w.when.text());
            assert!(inside.contains(&since), "no job at the start of {what}");
            assert!(inside.len() >= 3, "{what}: {} jobs", inside.len());
            if let Some(u) = until {
                assert!(inside.contains(&(u - 1)), "no job at the end of {what}");
            }
        }
        // After its last window, the model is priced no more (unless the name lives on as
        // an alias of another).
        let aliased = |t: i64| {
            (rules.aliases_of(model).iter()).any(|a| {
                a.when.since.is_none_or(|s| t >= s.as_second())
                    && a.when.until.is_none_or(|u| t < u.as_second())
            })
        };
        if let Some(until) = entry.windows.last().and_then(|w| w.when.until) {
            let after: Vec<(i64, &Json)> = (jobs.iter())
                .filter(|(t, _)| *t >= until.as_second())
                .map(|(t, r)| (*t, *r))
                .collect();
            assert!(!after.is_empty(), "no job of {model} after its removal");
            for (_, r) in after.into_iter().filter(|(t, _)| !aliased(*t)) {
                assert_eq!(status(r), "no_rule", "{r}");
                assert!(r["reason"].as_str().unwrap().contains("no longer"), "{r}");
            }
        }
        // A family no rule prices on purpose gives its reason.
        for w in &entry.windows {
            if let Some(reason) = rules.unpriced.get(&w.family) {
                let since = w.when.since.unwrap().as_second();
                let r = (jobs.iter()).find(|(t, _)| *t == since).unwrap().1;
                assert!(r["reason"].as_str().unwrap().contains(reason), "{r}");
            }
        }
    }
    assert!(windows > 60, "{windows} catalog windows");
    // Every alias window: a job under the name inside, priced as its model; and outside.
    for (name, aliases) in &rules.aliases {
        let jobs = by_model.get(name.as_str()).unwrap_or(&none);
        for a in aliases {
            let inside = |t: i64| {
                a.when.since.is_none_or(|s| t >= s.as_second())
                    && a.when.until.is_none_or(|u| t < u.as_second())
            };
            let (ins, outs): (Vec<_>, Vec<_>) = jobs.iter().partition(|(t, _)| inside(*t));
            assert!(
                ins.len() >= 3,
                "{name} {}: {} jobs",
                a.when.text(),
                ins.len()
            );
            for (_, r) in &ins {
                assert_eq!(r["trace"]["alias"]["model"], a.model.as_str(), "{r}");
            }
            assert!(!outs.is_empty(), "{name}: no job outside {}", a.when.text());
        }
    }
}

#[test]
fn image_jobs_have_the_network_shape_presets_caps_and_thresholds() {
    let rules = shipped_rules();
    let c = corpus();
    let examples = std::fs::read_to_string(root().join("corpus/example_jobs.jsonl")).unwrap();
    let presets: BTreeSet<(u64, u64)> = (examples.lines())
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter_map(|e| Some((e["width"].as_u64()?, e["height"].as_u64()?)))
        .collect();
    // Each entry of the miner's limits: from when, and its caps.
    let limits: Vec<(i64, BTreeMap<String, u64>)> = (rules.job_kinds["image"].execution_limits)
        .iter()
        .map(|l| {
            let caps = (l.inputs.iter())
                .filter_map(|i| Some((i.name.clone(), i.max? as u64)))
                .collect();
            (l.effective_from.as_second(), caps)
        })
        .collect();
    let mut census: BTreeMap<&str, usize> = BTreeMap::new();
    // Requests above the caps of the limits in force, per entry; and in the hour before it.
    let mut above_caps: BTreeMap<i64, usize> = BTreeMap::new();
    let mut above_next_caps_before: BTreeMap<i64, usize> = BTreeMap::new();
    let mut sizes = BTreeSet::new();
    for (j, r) in c.jobs.iter().zip(&c.results) {
        let Some(sd) = j["model_input"].get("SD") else {
            continue;
        };
        *census.entry("image").or_default() += 1;
        for key in ["prompt", "neg_prompt", "guidance_scale", "seed"] {
            assert!(sd.get(key).is_some(), "{key} missing: {j}");
        }
        let key = format!(
            "{}-{}.png",
            j["job_id"].as_str().unwrap(),
            j["miner_id"].as_str().unwrap()
        );
        assert_eq!(j["result"]["S3Key"], key.as_str());
        assert!(
            j["inference_latency"].is_f64() && j["request_latency"].is_f64(),
            "{j}"
        );
        let (w, h, s) = (
            sd["width"].as_u64().unwrap(),
            sd["height"].as_u64().unwrap(),
            sd["num_iterations"].as_u64().unwrap(),
        );
        sizes.insert((w, h));
        if w * h >= 2048 * 2048 {
            *census.entry("2048² requested").or_default() += 1;
        }
        if s > 50 {
            *census.entry("over 50 steps requested").or_default() += 1;
        }
        if w % 8 != 0 {
            *census.entry("width not a multiple of 8").or_default() += 1;
        }
        let run = &r["trace"]["execution"]["inputs"];
        if (run.as_array().into_iter().flatten()).any(|i| i["requested"] != i["executed"]) {
            *census.entry("run smaller than requested").or_default() += 1;
        }
        let above = |caps: &BTreeMap<String, u64>| {
            [("width", w), ("height", h), ("steps", s)]
                .iter()
                .any(|(name, v)| caps.get(*name).is_some_and(|max| v > max))
        };
        let t = at(j);
        for (i, (from, caps)) in limits.iter().enumerate() {
            let until = limits.get(i + 1).map_or(i64::MAX, |l| l.0);
            if (*from..until).contains(&t) && above(caps) {
                *above_caps.entry(*from).or_default() += 1;
            }
            if (from - 3600..*from).contains(&t) && above(caps) {
                *above_next_caps_before.entry(*from).or_default() += 1;
            }
        }
        match status(r) {
            "below_threshold" => *census.entry("below a threshold").or_default() += 1,
            "disabled" => *census.entry("disabled (FLUX.1-dev)").or_default() += 1,
            _ => {}
        }
    }
    assert_at_least(
        &census,
        &[
            ("image", 1000),
            ("2048² requested", 12),
            ("over 50 steps requested", 40),
            ("width not a multiple of 8", 25),
            ("run smaller than requested", 100),
            ("below a threshold", 50),
            ("disabled (FLUX.1-dev)", 20),
        ],
    );
    for p in &presets {
        assert!(sizes.contains(p), "no job of the preset size {p:?}");
    }
    // Requests above the caps under every entry of the miner's limits, and right before it.
    for (from, _) in &limits {
        let (under, before) = (above_caps.get(from), above_next_caps_before.get(from));
        assert!(
            under >= Some(&3) && before >= Some(&1),
            "limits from {from}: {above_caps:?} {above_next_caps_before:?}"
        );
    }
}

#[test]
fn llm_jobs_cover_both_eras_tools_streams_and_claims() {
    let c = corpus();
    let era_2 = seconds(LLM_ERA_2);
    let mut census: BTreeMap<&str, usize> = BTreeMap::new();
    let mut tokens = Vec::new();
    for (j, r) in c.jobs.iter().zip(&c.results) {
        let Some(llm) = j["model_input"].get("LLM") else {
            continue;
        };
        *census.entry("llm").or_default() += 1;
        let prompt = llm["prompt"].as_str().unwrap();
        let json_prompt = serde_json::from_str::<Json>(prompt).is_ok_and(|p| p.is_array());
        // The first era writes templated strings and plain answers; the second JSON.
        assert_eq!(json_prompt, at(j) >= era_2, "{j}");
        // Each record's form, by the template's own marks: (census key, template name).
        let (form, template) = if json_prompt {
            ("era 2, JSON", None)
        } else if prompt.starts_with("<|im_start|>") {
            ("era 1, ChatML", Some("chatml"))
        } else if prompt.ends_with(" [/INST]\n") {
            ("era 1, Llama-2", Some("llama-2"))
        } else if prompt.ends_with(" [/INST]") {
            ("era 1, Mistral", Some("mistral"))
        } else {
            panic!("a prompt in no form of the network's: {j}")
        };
        *census.entry(form).or_default() += 1;
        let streamed = llm["use_stream"] == true;
        let claims = j.get("usage").is_some();
        if streamed {
            assert!(j.get("result").is_none(), "{j}");
            *census.entry("streamed").or_default() += 1;
            match (claims, status(r)) {
                (false, "unmeasured") => *census.entry("streamed, unmeasured").or_default() += 1,
                (true, "ok") => *census.entry("streamed, priced from its claim").or_default() += 1,
                (false, s) => assert_eq!(s, "no_rule", "{r}"),
                (true, s) => assert_ne!(s, "unmeasured", "{r}"),
            }
        }
        if let Some(d) = r["disputed_claim"].as_str() {
            assert!(claims, "{r}");
            assert!(d.contains("the job claims"), "{d}");
            *census.entry("claim disputed").or_default() += 1;
        } else if claims && status(r) == "ok" {
            *census.entry("claim agreeing").or_default() += 1;
        }
        if status(r) != "ok" {
            continue;
        }
        // Priced: read back by the template that wrote it, or as JSON.
        let input = counted(r, "input_tokens").unwrap();
        assert_eq!(input["template"].as_str(), template, "{r}");
        if template.is_none() {
            assert_eq!(input["field"], "model_input.LLM.prompt.@json", "{r}");
        }
        *census
            .entry(match template {
                Some("chatml") => "priced, ChatML",
                Some("llama-2") => "priced, Llama-2",
                Some(_) => "priced, Mistral",
                None => "priced, JSON",
            })
            .or_default() += 1;
        if !input["tools"].is_null() {
            *census.entry("tool definitions").or_default() += 1;
        }
        if prompt.contains(r#""role": "tool""#) {
            *census.entry("tool result in the prompt").or_default() += 1;
        }
        let output = counted(r, "output_tokens");
        if output.is_some_and(|o| o["tool_calls"].as_u64() > Some(0)) {
            *census.entry("tool-call answer").or_default() += 1;
        }
        let total =
            input["tokens"].as_u64().unwrap() + output.map_or(0, |o| o["tokens"].as_u64().unwrap());
        tokens.push(total);
    }
    assert_at_least(
        &census,
        &[
            ("llm", 600),
            ("era 1, ChatML", 80),
            ("era 1, Llama-2", 20),
            ("era 1, Mistral", 50),
            ("era 2, JSON", 250),
            ("priced, ChatML", 30),
            ("priced, Mistral", 30),
            ("priced, JSON", 50),
            ("tool definitions", 12),
            ("tool result in the prompt", 3),
            ("tool-call answer", 5),
            ("streamed", 30),
            ("streamed, unmeasured", 8),
            ("streamed, priced from its claim", 4),
            ("claim agreeing", 10),
            ("claim disputed", 5),
        ],
    );
    // Tens to thousands of tokens among the jobs priced; prompts of a few thousand tokens
    // (over 8,000 bytes of English) among all.
    tokens.sort();
    assert!(
        tokens[0] < 50 && tokens[tokens.len() - 1] >= 1000,
        "{tokens:?}"
    );
    let longest = (c.jobs.iter())
        .filter_map(|j| j["model_input"]["LLM"]["prompt"].as_str())
        .map(str::len)
        .max();
    assert!(longest > Some(8_000), "{longest:?}");
}

#[test]
fn miners_share_the_work_unevenly_and_latencies_straddle_every_timeout() {
    let rules = shipped_rules();
    let c = corpus();
    let mut per_miner: BTreeMap<&str, usize> = BTreeMap::new();
    for j in &c.jobs {
        let m = j["miner_id"].as_str().unwrap();
        assert!(m.len() == 42 && m.starts_with("0x"), "{m}");
        *per_miner.entry(m).or_default() += 1;
    }
    let mut counts: Vec<usize> = per_miner.values().copied().collect();
    counts.sort();
    assert!(counts.len() >= 45, "{} miners", counts.len());
    let (median, top) = (counts[counts.len() / 2], counts[counts.len() - 1]);
    assert!(top >= 4 * median, "top {top}, median {median}");

    for (kind, key) in [("image", "SD"), ("llm", "LLM")] {
        let latencies: Vec<u64> = (c.jobs.iter())
            .filter(|j| j["model_input"].get(key).is_some())
            .flat_map(|j| [&j["inference_latency"], &j["request_latency"]])
            .filter_map(|l| l.as_f64())
            .map(|l| (l * 1000.0).round() as u64)
            .collect();
        for t in timeouts(&rules, kind) {
            let below = latencies
                .iter()
                .filter(|l| (t - 3000..=t).contains(l))
                .count();
            let above = latencies
                .iter()
                .filter(|l| (t + 1..=t + 3000).contains(l))
                .count();
            assert!(
                below >= 3 && above >= 3,
                "{kind} {t} ms: {below} below, {above} above"
            );
        }
    }
}
