//! `serve --playground` against #22's server attacks: work that outlives its deadline, DNS
//! rebinding, a playground open to the network.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::playground::Playground;
use crate::util::copy_rules_to;

/// The served rules with `n` wrong examples added to sd15 (under the 1 MiB file limit at
/// 16,000): loading them is quick, but reporting 16,000 diagnostics took minutes.
fn slow_check_files(pg: &Playground, n: usize) -> serde_json::Value {
    let mut files = pg.session_files();
    let sd15 = files.get_mut("families/sd15.toml").unwrap();
    let wrong = "  { width = 512, height = 512, steps = 20, points = 7 },\n".repeat(n);
    *sd15 = sd15.replacen("examples = [\n", &format!("examples = [\n{wrong}"), 1);
    json!(files)
}

fn raw(pg: &Playground, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(pg.base.strip_prefix("http://").unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_request_past_its_deadline_gives_its_scoring_slot_back_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let pg = Playground::start(
        &[
            "serve",
            "--playground",
            "--threads",
            "1",
            "--playground-timeout",
            "1",
        ],
        &rules,
    );
    let body = json!({ "files": slow_check_files(&pg, 16_000) });
    let (status, v) = pg.post("/v1/check", &body);
    assert_eq!(status, 503, "{v}");
    // The only scoring slot is free again: the check stopped when its time was up (it went
    // on for minutes, and every /v1/score waited for it).
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let t0 = Instant::now();
    let r = agent
        .post(format!("{}/v1/score", pg.base))
        .header("content-type", "application/json")
        .send(r#"{"model":"BrainDance","width":512,"height":512,"steps":20}"#)
        .expect("the score request is answered");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "scoring waited {:?} for the cancelled check",
        t0.elapsed()
    );
}

#[test]
fn a_costly_request_naming_another_host_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let pg = Playground::start(
        &["serve", "--playground", "--allow-host", "scorer.internal"],
        &rules,
    );
    let job = r#"{"model":"BrainDance","width":512,"height":512,"steps":20}"#;
    let post = |path: &str, host: &str, body: &str| {
        raw(
            &pg,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let check = json!({ "files": pg.session_files() }).to_string();
    // A page whose name was rebound to this server's address: its name is in `Host`.
    for (path, body) in [("/v1/score", job), ("/v1/check", &check)] {
        let r = post(path, "evil.example:8080", body);
        assert!(r.starts_with("HTTP/1.1 403"), "{path}: {r}");
        assert!(r.contains("--allow-host"), "{r}");
        for host in ["127.0.0.1:1", "localhost", "scorer.internal:8080"] {
            let r = post(path, host, body);
            assert!(r.starts_with("HTTP/1.1 200"), "{path} {host}: {r}");
        }
    }
    // Reading is not work: the page and the health check answer whatever the name.
    let r = raw(
        &pg,
        "GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

#[test]
fn a_playground_bound_beyond_loopback_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let warning = |listen: &str| {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("jobpoints"))
            .args(["serve", "--playground", "--listen", listen, "--rules"])
            .arg(&rules)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening on "), "{line}");
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let open = warning("0.0.0.0:0");
    assert!(open.contains("reachable from other machines"), "{open}");
    let local = warning("127.0.0.1:0");
    assert!(!local.contains("reachable from other machines"), "{local}");
}

/// `jobpoints_decision_log_records_total{outcome}` from `/metrics`.
fn log_records(s: &crate::serve::Server, outcome: &str) -> u64 {
    let (_, text) = s.get("/metrics");
    let prefix = format!("jobpoints_decision_log_records_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn a_full_disk_leaves_whole_records_that_the_metrics_count_and_verify_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let log = tmp.path().join("decisions.jsonl");
    // A file size limit (SIGXFSZ ignored) makes writes past 64 KiB fail with EFBIG after a
    // partial write, as a full disk does with ENOSPC.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 128 && exec \"$@\"")
        .arg("sh")
        .arg(assert_cmd::cargo::cargo_bin!("jobpoints"))
        .args(crate::serve::serve_args(
            &rules,
            &["--decision-log", log.to_str().unwrap()],
        ));
    let s = crate::serve::Server::spawn(cmd);
    // Records of ~700 bytes, flushed about every second: some flush is cut mid-record.
    let job = |i: usize| {
        json!({"id": format!("j{i}"), "model": "BrainDance", "width": 512, "height": 512,
               "steps": 20, "pad": "x".repeat(i % 500)})
    };
    let mut i = 0;
    crate::util::poll(60, "a decision log write error", || {
        for _ in 0..20 {
            s.score(job(i));
            i += 1;
        }
        (log_records(&s, "failed") > 0).then_some(())
    });
    // Nothing more is queued once a second has passed: the file holds what the metrics say.
    std::thread::sleep(Duration::from_millis(1500));
    let written = log_records(&s, "written");
    let failed = log_records(&s, "failed");
    assert_eq!(written + failed, i as u64, "{}", s.log());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'), "the log ends in a partial record");
    assert_eq!(text.lines().count() as u64, written);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a whole record");
        assert!(v["result"].is_object());
    }
    // The next flush after the failure is not glued to a partial record either.
    s.score(job(i));
    std::thread::sleep(Duration::from_millis(1500));
    let after = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        after.lines().count() as u64,
        log_records(&s, "written"),
        "{}",
        s.log()
    );
    drop(s);
    let out = crate::util::jobpoints_in(tmp.path())
        .args(["verify", log.to_str().unwrap(), "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` AnimagineXL jobs as JSONL (60 to 80 bytes each).
fn jsonl_jobs(n: usize, tag: &str) -> Vec<u8> {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"{tag}{i}\",\"model\":\"AnimagineXL\",\"width\":1024,\"height\":1024,\"steps\":20}}\n"
            )
        })
        .collect::<String>()
        .into_bytes()
}

/// Posts `bodies` at once, each from its own thread; the response bodies.
fn post_all(s: &crate::serve::Server, bodies: Vec<Vec<u8>>) -> Vec<String> {
    let threads: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let base = s.base.clone();
            std::thread::spawn(move || {
                // Large requests at once on a busy machine, unoptimised: minutes, not seconds.
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(300)))
                    .build()
                    .into();
                let mut r = agent
                    .post(format!("{base}/v1/score"))
                    .header("content-type", "application/x-ndjson")
                    .send(&body[..])
                    .expect("POST");
                assert_eq!(r.status().as_u16(), 200);
                r.body_mut()
                    .with_config()
                    .limit(256 << 20)
                    .read_to_string()
                    .unwrap()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn shadow_skipped(s: &crate::serve::Server) -> u64 {
    let (_, text) = s.get("/metrics");
    let series = "jobpoints_shadow_jobs_total{outcome=\"skipped\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .unwrap_or_else(|| panic!("no {series} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_shadow_queue_is_bounded_in_bytes_and_its_records_in_the_logs_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let log = tmp.path().join("decisions.jsonl");
    let s = crate::serve::Server::start(
        &rules,
        &[
            "--shadow-rules",
            rules.to_str().unwrap(),
            "--shadow-queue-bytes",
            "1000000",
            "--decision-log",
            log.to_str().unwrap(),
            "--decision-log-queue-bytes",
            "1000",
        ],
    );
    // Four requests of 1.4 MB at once: the shadow queue takes 3 MB of them (in jobs, 80,000
    // would all have waited).
    let bodies = (0..4)
        .map(|c| jsonl_jobs(20_000, &format!("c{c}-")))
        .collect();
    post_all(&s, bodies);
    assert!(shadow_skipped(&s) >= 20_000, "{}", s.log());
    // The records waiting for the shadow held the log's queue (1,000 bytes): the others
    // were dropped at once, not held in memory until the shadow got to them.
    assert!(log_records(&s, "dropped") > 0, "{}", s.log());
}

#[cfg(unix)]
#[test]
fn sigterm_with_a_shadow_backlog_writes_every_record_without_shadowing_the_backlog() {
    let tmp = tempfile::tempdir().unwrap();
    let (rules, shadow) = (tmp.path().join("rules"), tmp.path().join("shadow"));
    copy_rules_to(&rules);
    copy_rules_to(&shadow);
    // Every job differs under the shadow rules, so every record the shadow got to carries
    // `"shadow"`.
    crate::serve_audit::sdxl_pays_more(&shadow);
    let log = tmp.path().join("decisions.jsonl");
    let mut s = crate::serve::Server::start(
        &rules,
        &[
            "--shadow-rules",
            shadow.to_str().unwrap(),
            "--shadow-queue-jobs",
            "1000000",
            "--decision-log",
            log.to_str().unwrap(),
        ],
    );
    // 100,000 jobs scored by two threads; the shadow scores each twice on one: when the last
    // response is back, most of them still wait for it.
    let bodies = (0..5)
        .map(|c| jsonl_jobs(20_000, &format!("c{c}-")))
        .collect();
    let answers = post_all(&s, bodies);
    let st = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let code = crate::util::poll(300, "exit after SIGTERM", || {
        s.child.try_wait().unwrap().map(|st| st.code())
    });
    assert_eq!(code, Some(0), "{}", s.log());
    let text = std::fs::read_to_string(&log).unwrap();
    let mut logged = std::collections::HashSet::new();
    let mut shadowed = 0;
    for l in text.lines() {
        let start = l.find("\"decision_id\":\"").unwrap() + 15;
        logged.insert(&l[start..start + l[start..].find('"').unwrap()]);
        shadowed += usize::from(l.contains("\"shadow\":{"));
    }
    let mut sent = 0;
    for answer in &answers {
        for line in answer.split("\"decision_id\":\"").skip(1) {
            let id = &line[..line.find('"').unwrap()];
            assert!(logged.contains(id), "no record of {id}");
            sent += 1;
        }
    }
    assert_eq!(sent, 100_000);
    // The backlog went to the file as it was (it used to be shadowed first: 40,000 jobs took
    // 32 s, and a SIGKILL meanwhile lost their records); what waited over a second was never
    // shadowed either.
    assert!(shadowed > 0, "the shadow worked meanwhile");
    assert!(
        shadowed < sent,
        "{shadowed} of {sent} records were shadowed first"
    );
}
