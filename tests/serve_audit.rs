//! `serve --decision-log` and `--shadow-rules` through the real binary (#14): every response
//! sent has its record, even when stopped mid-load; the log verifies; shadow rules that
//! change SDXL show in `/metrics` and `/v1/shadow` while responses stay the live rules'.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::Server;
use crate::util::{copy_rules_to, jobpoints_in, poll};

fn decision_ids(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a record is one JSON line");
            v["decision_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn every_response_sent_before_sigterm_has_its_record_and_the_log_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let log = tmp.path().join("decisions.jsonl");
    let mut s = Server::start(
        &rules,
        &[
            "--decision-log",
            log.to_str().unwrap(),
            "--decision-log-omit",
            "prompt",
        ],
    );
    let examples = std::fs::read(crate::util::root().join("examples/jobs.jsonl")).unwrap();
    let sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (base, sent, stop, body) =
                (s.base.clone(), sent.clone(), stop.clone(), examples.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .into();
                let deadline = Instant::now() + Duration::from_secs(20);
                // Bounded in count and time; ends when the server stops answering.
                for i in 0..2_000 {
                    if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let one = json!({"id": format!("c{c}-{i}"), "model": "AnimagineXL",
                        "width": 1024, "height": 1024, "steps": 20, "prompt": "secret"});
                    let (ctype, payload) = if i % 2 == 0 {
                        ("application/x-ndjson", body.clone())
                    } else {
                        ("application/json", one.to_string().into_bytes())
                    };
                    let Ok(mut r) = agent
                        .post(format!("{base}/v1/score"))
                        .header("content-type", ctype)
                        .send(&payload[..])
                    else {
                        break;
                    };
                    if r.status().as_u16() != 200 {
                        continue;
                    }
                    let Ok(text) = r.body_mut().read_to_string() else {
                        break;
                    };
                    let v: Value = serde_json::from_str(&text).unwrap();
                    let results = v.as_array().cloned().unwrap_or_else(|| vec![v]);
                    let mut sent = sent.lock().unwrap();
                    for r in results {
                        sent.push(r["decision_id"].as_str().expect("a decision id").into());
                    }
                }
            })
        })
        .collect();
    poll(20, "some responses before SIGTERM", || {
        (sent.lock().unwrap().len() >= 200).then_some(())
    });
    let st = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let code = poll(20, "server exit after SIGTERM", || {
        s.child.try_wait().unwrap().map(|st| st.code())
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(code, Some(0), "{}", s.log());
    let text = std::fs::read_to_string(&log).unwrap();
    let logged: HashSet<String> = decision_ids(&text).into_iter().collect();
    let sent = sent.lock().unwrap();
    assert!(sent.len() >= 200);
    let missing: Vec<_> = sent.iter().filter(|id| !logged.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} responses have no record, e.g. {:?}",
        missing.len(),
        sent.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        logged.len(),
        text.lines().count(),
        "decision ids are unique"
    );
    // The omitted field is not stored, and says so.
    assert!(!text.contains("secret"));
    assert!(text.contains("\"omitted\":[\"prompt\"]"));
    // The whole log replays: every record verifies with the rules that served it.
    let out = jobpoints_in(tmp.path())
        .args(["verify", log.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(doc["verified"].as_u64().unwrap(), logged.len() as u64);
    assert_eq!(doc["rulesets"][0]["source"], "dir");

    // A tampered record is caught, by its line and decision id.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let i = lines
        .iter()
        .position(|l| l.contains("\"points\":6.000000"))
        .expect("an SDXL record");
    lines[i] = lines[i].replacen("\"points\":6.000000", "\"points\":60.000000", 1);
    let tampered = tmp.path().join("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n") + "\n").unwrap();
    let out = jobpoints_in(tmp.path())
        .args(["verify", tampered.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(5), "{text}");
    let id = &decision_ids(&lines[i])[0];
    assert!(
        text.contains(&format!(
            "MISMATCH {}:{} (decision {id})",
            tampered.display(),
            i + 1
        )),
        "{text}"
    );
}

/// SDXL's latest version (3, which prices jobs received now) paying 1.5 instead of 1.0, its
/// examples updated so the rules stay valid.
/// The latest sdxl10 version pays 1.5× (AnimagineXL at 1024², 20 steps: 9 points, not 6).
pub(crate) fn sdxl_pays_more(rules: &Path) {
    let path = rules.join("families/sdxl10.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.rfind("[[version]]").unwrap();
    let (head, latest) = text.split_at(at);
    let latest = latest
        .replacen("multiplier = 1.0\n", "multiplier = 1.5\n", 1)
        .replace("points = 6 }", "points = 9 }");
    assert!(latest.contains("multiplier = 1.5"));
    std::fs::write(&path, format!("{head}{latest}")).unwrap();
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
}

#[test]
fn shadow_rules_that_change_sdxl_show_in_metrics_and_v1_shadow_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (live, shadow) = (tmp.path().join("live"), tmp.path().join("shadow"));
    copy_rules_to(&live);
    copy_rules_to(&shadow);
    sdxl_pays_more(&shadow);
    let log = tmp.path().join("d.jsonl");
    let s = Server::start(
        &live,
        &[
            "--shadow-rules",
            shadow.to_str().unwrap(),
            "--decision-log",
            log.to_str().unwrap(),
        ],
    );
    let sdxl = json!({"id": "x1", "model": "AnimagineXL", "width": 1024, "height": 1024,
        "steps": 20});
    let sd15 = json!({"id": "s1", "model": "BrainDance", "width": 512, "height": 512,
        "steps": 20});
    for _ in 0..3 {
        // The response is the live rules' (SDXL v2 × 1.0 at 1024², 20 steps: 6 points).
        let r = s.score(sdxl.clone());
        assert_eq!(r["points"].as_f64(), Some(6.0), "{r}");
        assert_eq!(r["rule"], "sdxl10@3");
        assert!(r["decision_id"].is_string());
        let r = s.score(sd15.clone());
        assert_eq!(r["points"].as_f64(), Some(0.3), "{r}");
    }
    let metrics = poll(10, "6 shadowed jobs", || {
        let (_, m) = s.get("/metrics");
        let done = m
            .lines()
            .filter(|l| l.starts_with("jobpoints_shadow_jobs_total"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>();
        (done >= 6.0).then_some(m)
    });
    assert_eq!(
        metric(&metrics, "jobpoints_shadow_jobs_total{outcome=\"changed\"}"),
        3.0
    );
    assert_eq!(
        metric(&metrics, "jobpoints_shadow_jobs_total{outcome=\"same\"}"),
        3.0
    );
    assert_eq!(
        metric(&metrics, "jobpoints_shadow_jobs_total{outcome=\"error\"}"),
        0.0
    );
    // 3 SDXL jobs × 3 more points each.
    assert_eq!(
        metric(&metrics, "jobpoints_shadow_points_delta{kind=\"waifu\"}"),
        9.0
    );
    let (status, body) = s.get("/v1/shadow");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["jobs"].as_u64(), v["changed"].as_u64()),
        (Some(6), Some(3)),
        "{v}"
    );
    assert_eq!(v["total"]["delta_points"], "9.000000");
    let sdxl_row = v["by_model"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "AnimagineXL")
        .unwrap();
    assert_eq!(sdxl_row["changed"], 3);
    assert_eq!(sdxl_row["live_points"], "18.000000");
    assert_eq!(sdxl_row["shadow_points"], "27.000000");
    let example = &v["examples"][0];
    assert_eq!(example["model"], "AnimagineXL");
    assert_eq!(example["shadow"]["points"], "9.000000");
    assert!(example["decision_id"].is_string(), "{example}");
    // The decision log keeps the shadow result where it differs, and still verifies.
    let text = poll(10, "6 decision records", || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        (t.lines().count() == 6).then_some(t)
    });
    let shadowed: Vec<&str> = text.lines().filter(|l| l.contains("\"shadow\":")).collect();
    assert_eq!(shadowed.len(), 3, "{text}");
    assert!(shadowed.iter().all(|l| l.contains("AnimagineXL")));
    let out = jobpoints_in(tmp.path())
        .args([
            "verify",
            log.to_str().unwrap(),
            "--rules",
            live.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn v1_shadow_without_shadow_rules_is_404() {
    let tmp = tempfile::tempdir().unwrap();
    copy_rules_to(&tmp.path().join("rules"));
    let s = Server::start(&tmp.path().join("rules"), &[]);
    let (status, body) = s.get("/v1/shadow");
    assert_eq!(status, 404, "{body}");
    // Without a decision log, responses have no decision id.
    let r = s.score(json!({"model": "AnimagineXL", "width": 512, "height": 512, "steps": 20}));
    assert!(r.get("decision_id").is_none(), "{r}");
}
