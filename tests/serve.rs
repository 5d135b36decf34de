//! `jobpoints serve` through the real binary on a loopback port: the HTTP API, and rules
//! reloaded while it runs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::util::{
    copy_rules_to, edit_rule, jobpoints, poll, root, set_sd15_v2_multiplier, with_snapshots,
};

/// A running `jobpoints serve`, killed on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    log: Arc<Mutex<String>>,
    pub(crate) agent: ureq::Agent,
}

impl Server {
    /// `jobpoints serve --rules RULES EXTRA...` on a free loopback port.
    pub(crate) fn start(rules: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("jobpoints"));
        cmd.args(serve_args(rules, extra));
        Server::spawn(cmd)
    }

    /// Starts `cmd`, which must run `jobpoints serve` as its process (possibly by `exec`).
    pub(crate) fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .env_remove("JOBPOINTS_RULES")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start jobpoints serve");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        // The first stdout line names the bound address; reading it blocks until the server
        // is listening (or has exited, which fails the test with its log).
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).expect("read stdout");
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {first:?}; log:\n{}",
                    log.lock().unwrap()
                )
            })
            .to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .into();
        Server {
            child,
            base,
            log,
            agent,
        }
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.base.strip_prefix("http://").unwrap().parse().unwrap()
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .expect("GET");
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    pub(crate) fn post(&self, content_type: &str, body: &[u8]) -> (u16, String, Option<String>) {
        let mut r = self
            .agent
            .post(format!("{}/v1/score", self.base))
            .header("content-type", content_type)
            .send(body)
            .expect("POST");
        let hash = r
            .headers()
            .get("x-jobpoints-ruleset")
            .map(|v| v.to_str().unwrap().to_string());
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap(),
            hash,
        )
    }

    pub(crate) fn score(&self, job: Value) -> Value {
        let (status, body, _) = self.post("application/json", job.to_string().as_bytes());
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub(crate) fn rules(&self) -> Value {
        let (status, body) = self.get("/v1/rules");
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap()
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// The arguments of `jobpoints serve` on a free loopback port.
pub(crate) fn serve_args(rules: &Path, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = ["serve", "--listen", "127.0.0.1:0", "--rules"]
        .iter()
        .map(Into::into)
        .collect();
    args.push(rules.into());
    args.extend(extra.iter().map(Into::into));
    args
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn braindance() -> Value {
    // No `completed_at`: priced by the latest sd15 version, the one these tests edit.
    json!({"id": "b1", "model": "BrainDance", "width": 512, "height": 512, "steps": 20})
}

fn points(v: &Value) -> String {
    // `points` is a JSON number with 6 decimals; serde_json keeps it as f64, which is exact
    // enough to compare at 6 decimals.
    format!("{:.6}", v["points"].as_f64().expect("points"))
}

#[test]
fn http_api_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    // `eval` prices the operator's own ledgers by each job's `completed_at`; so does `serve`
    // for a trusted scheduler, which is the mode compared with `eval` here.
    let s = Server::start(&rules, &["--max-body-bytes", "100000", "--trust-job-time"]);

    let (status, body) = s.get("/healthz");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ok"
    );

    // JSONL gives exactly the objects `eval --format json` gives for the same file.
    let jobs = std::fs::read(root().join("examples/jobs.jsonl")).unwrap();
    let (status, body, header_hash) = s.post("application/x-ndjson", &jobs);
    assert_eq!(status, 200, "{body}");
    let served: Value = serde_json::from_str(&body).unwrap();
    let out = jobpoints()
        .args(["eval", "--format", "json", "--rules"])
        .arg(&rules)
        .arg("examples/jobs.jsonl")
        .output()
        .unwrap();
    let evaluated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(served, evaluated);
    let hash = served[0]["ruleset"].as_str().unwrap().to_string();
    assert_eq!(header_hash.as_deref(), Some(hash.as_str()));
    // Byte-exact points: 6 decimals as written by eval.
    assert!(body.contains("\"points\":2.566667"), "{body}");

    // One object in, one object out; an array in, an array out, with element lines.
    let one = s.score(braindance());
    assert_eq!(one["status"], "ok");
    assert_eq!(one["rule"], "sd15@3");
    let (status, body, _) = s.post(
        "application/json; charset=utf-8",
        b"[\n  {\"model\": \"BrainDance\", \"width\": 512, \"height\": 512, \"steps\": 20},\n  42\n]",
    );
    assert_eq!(status, 200);
    let arr: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(arr[0]["line"], 2);
    assert_eq!(arr[1]["line"], 3);
    assert_eq!(arr[1]["status"], "invalid");

    // `at` and `explain` work as in `eval`.
    let job = br#"{"model": "BrainDance", "width": 512, "height": 512, "steps": 20}"#;
    let mut r = s
        .agent
        .post(format!("{}/v1/score?at=2024-05-15&explain=true", s.base))
        .header("content-type", "application/json")
        .send(&job[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let dated: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(dated["rule"], "sd15@1");
    assert_eq!(dated["trace"]["formula"], "waifu_season1");
    for q in ["at=someday", "explain=maybe", "bogus=1"] {
        let mut r = s
            .agent
            .post(format!("{}/v1/score?{q}", s.base))
            .header("content-type", "application/json")
            .send(&job[..])
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{q}");
        let e: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert!(e["error"].is_string(), "{q}: {e}");
    }

    // Bad requests: a 4xx with a JSON error, and the server keeps going.
    let cases: [(&str, &[u8], u16, &str); 5] = [
        (
            "application/json",
            b"{\"model\": ",
            400,
            "broken JSON at line 1",
        ),
        ("application/json", b"42", 400, "expected a job object"),
        ("application/json", b"", 400, "broken JSON"),
        ("text/plain", b"{}", 415, "Content-Type"),
        (
            "application/json",
            &[b' '; 100_001],
            413,
            "larger than 100000 bytes",
        ),
    ];
    for (ct, body, want, msg) in cases {
        let (status, text, _) = s.post(ct, body);
        assert_eq!(status, want, "{ct} {text}");
        let err: Value = serde_json::from_str(&text).expect("error body is JSON");
        let e = err["error"].as_str().unwrap();
        assert!(e.contains(msg), "`{e}` should mention `{msg}`");
    }
    // Without a Content-Length (chunked), the limit holds too.
    let big = vec![b' '; 100_001];
    let mut reader = &big[..];
    let mut r = s
        .agent
        .post(format!("{}/v1/score", s.base))
        .header("content-type", "application/json")
        .send(ureq::SendBody::from_reader(&mut reader))
        .expect("POST chunked");
    assert_eq!(r.status().as_u16(), 413);
    assert!(
        r.body_mut()
            .read_to_string()
            .unwrap()
            .contains("larger than")
    );
    // JSONL sent as JSON gets a hint.
    let (status, text, _) = s.post(
        "application/json",
        b"{\"model\": \"a\"}\n{\"model\": \"b\"}\n",
    );
    assert_eq!(status, 400);
    assert!(text.contains("application/x-ndjson"), "{text}");

    for (path, want) in [("/nope", 404), ("/v1/score", 405)] {
        let (status, text) = s.get(path);
        assert_eq!(status, want, "GET {path}");
        assert!(serde_json::from_str::<Value>(&text).unwrap()["error"].is_string());
    }

    let r = s.rules();
    assert_eq!(r["ruleset"], hash);
    assert_eq!(r["state"], "ok");
    assert_eq!(r["watching"], true);
    assert!(r["last_error"].is_null());
    let sd15 = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == "sd15")
        .expect("sd15 in /v1/rules");
    assert_eq!(sd15["versions"][1]["multiplier"], 0.3);
    assert!(
        r["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["model"] == "BrainDance" && m["family"] == "sd15")
    );
    // Each model's windows with the catalog versions that bound them, and every alias (#21).
    let mixtral = (r["models"].as_array().unwrap())
        .iter()
        .find(|m| m["model"] == "mistralai/mixtral-8x7b-instruct")
        .unwrap();
    let windows = mixtral["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "{mixtral}");
    assert_eq!(
        (
            &windows[1]["family"],
            &windows[1]["since"],
            &windows[1]["since_catalog"]["number"]
        ),
        (
            &json!("llm8x7b"),
            &json!("2025-01-28T04:20:36Z"),
            &json!("047")
        ),
        "{mixtral}"
    );
    let redirect = (r["aliases"].as_array().unwrap())
        .iter()
        .find(|a| a["alias"] == "dolphin-2.9.4-llama3.1-8b")
        .unwrap();
    assert_eq!(
        (&redirect["model"], &redirect["kind"], &redirect["until"]),
        (
            &json!("dolphin-2.9-llama3-8b"),
            &json!("redirect"),
            &json!("2024-10-20T02:48:43Z")
        )
    );

    // Metrics count what was scored above, by status and kind.
    let ok_waifu = served
        .as_array()
        .unwrap()
        .iter()
        .chain(arr.as_array().unwrap())
        .chain([&one, &dated])
        .filter(|r| r["status"] == "ok" && r["kind"] == "waifu")
        .count();
    let (status, m) = s.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        m.contains(&format!(
            "jobpoints_jobs_scored_total{{status=\"ok\",kind=\"waifu\"}} {ok_waifu}\n"
        )),
        "{m}"
    );
    assert!(m.contains(&format!("jobpoints_rules_active{{hash=\"{hash}\"}} 1\n")));
    assert!(m.contains("jobpoints_rules_reload_failing 0\n"));
    assert!(m.contains("jobpoints_job_evaluation_seconds_bucket"));
    // The JSONL file, one job, an array of two, one dated job.
    let scored = served.as_array().unwrap().len() + 4;
    assert!(m.contains(&format!(
        "jobpoints_job_evaluation_seconds_count {scored}\n"
    )));
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    copy_rules_to(&tmp.path().join("rules"));
    let mut s = Server::start(&tmp.path().join("rules"), &[]);
    let st = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let code = poll(10, "server exit after SIGTERM", || {
        s.child.try_wait().unwrap().map(|st| st.code())
    });
    assert_eq!(code, Some(0));
    poll(5, "shutdown logged", || {
        s.log().contains("shutting down").then_some(())
    });
}

#[test]
fn serve_refuses_invalid_rules_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    edit_rule(
        &rules,
        "families/sd15.toml",
        "multiplier = 0.3",
        "multiplier = [",
    );
    let out = jobpoints()
        .args(["serve", "--listen", "127.0.0.1:0", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("families/sd15.toml"), "{err}");
    assert!(out.stdout.is_empty(), "never listened");
}

/// Waits until the server has rejected `n` reloads in total.
fn wait_failed(s: &Server, n: u64) -> Value {
    poll(10, &format!("{n} failed reloads"), || {
        let r = s.rules();
        (r["reloads"]["failed"] == n).then_some(r)
    })
}

#[test]
fn bad_edits_keep_the_last_good_rules_and_a_fix_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let s = Server::start(&rules, &[]);
    let good = s.score(braindance());
    let good_hash = good["ruleset"].as_str().unwrap().to_string();
    assert_eq!(points(&good), "0.300000");

    type Break = fn(&Path);
    let breaks: [(&str, Break, &str); 4] = [
        (
            "syntax error",
            |d| {
                edit_rule(
                    d,
                    "families/sd15.toml",
                    "multiplier = 0.3",
                    "multiplier = [",
                )
            },
            "toml-syntax",
        ),
        (
            "unknown field",
            |d| {
                edit_rule(
                    d,
                    "families/sd15.toml",
                    "multiplier = 0.3",
                    "multiplier = 0.3\nmultipler = 3.0",
                )
            },
            "unknown-field",
        ),
        (
            "formula failing its examples",
            |d| {
                edit_rule(
                    d,
                    "formulas/waifu_season1.rhai",
                    "steps / 20.0",
                    "steps / 10.0",
                )
            },
            "example-failed",
        ),
        (
            "deleted file",
            |d| std::fs::remove_file(d.join("formulas/waifu_season1.rhai")).unwrap(),
            "unknown-formula",
        ),
    ];
    let pristine = |rel: &str| std::fs::read(crate::util::rules_dir().join(rel)).unwrap();
    for (n, (what, break_it, code)) in breaks.into_iter().enumerate() {
        break_it(&rules);
        let r = wait_failed(&s, n as u64 + 1);
        assert_eq!(r["state"], "reload_failed", "{what}");
        assert_eq!(
            r["ruleset"], good_hash,
            "{what}: the last good rules stay active"
        );
        let err = &r["last_error"];
        assert_eq!(err["active_hash"], good_hash);
        assert!(err["since"].is_string() && err["rejected_hash"].is_string());
        assert!(
            err["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["code"] == code && d["severity"] == "error"),
            "{what}: expected `{code}` in {err}"
        );
        let mut shown = err.clone();
        for k in ["since", "failed_at"] {
            assert!(shown[k].as_str().unwrap().ends_with('Z'), "{k} is UTC");
            shown[k] = "[time]".into();
        }
        with_snapshots(|| {
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_suffix(what.replace(' ', "_"));
            settings.set_description(format!("/v1/rules `last_error` after: {what}"));
            settings.bind(|| {
                insta::assert_snapshot!(
                    "serve_reload_error",
                    serde_json::to_string_pretty(&shown)
                        .unwrap()
                        .replace(rules.to_str().unwrap(), "[rules]")
                )
            })
        });
        // Jobs are still priced by the last good rules, and say so by their hash.
        let now = s.score(braindance());
        assert_eq!(points(&now), "0.300000", "{what}");
        assert_eq!(now["ruleset"], good_hash);
        // The state is visible before the reloader has finished logging: wait for the log.
        poll(10, &format!("{what}: the log to say what failed"), || {
            let log = s.log();
            (log.contains("rules reload failed") && log.contains(code)).then_some(())
        });
        let (_, m) = s.get("/metrics");
        assert!(m.contains("jobpoints_rules_reload_failing 1\n"));

        // Restoring the files clears the error without a swap (same hash as active).
        for rel in ["families/sd15.toml", "formulas/waifu_season1.rhai"] {
            if std::fs::read(rules.join(rel)).ok() != Some(pristine(rel)) {
                let tmp = rules.join(".restore.tmp");
                std::fs::write(&tmp, pristine(rel)).unwrap();
                std::fs::rename(&tmp, rules.join(rel)).unwrap();
            }
        }
        poll(10, "error cleared after the fix", || {
            let r = s.rules();
            (r["state"] == "ok").then_some(())
        });
        assert_eq!(s.rules()["ruleset"], good_hash);
    }

    // A valid edit takes effect, and the change is reported.
    set_sd15_v2_multiplier(&rules, "0.3", "0.6");
    let r = poll(10, "the valid edit to be active", || {
        let r = s.rules();
        (r["ruleset"] != good_hash).then_some(r)
    });
    assert_eq!(r["state"], "ok");
    // The field-level change of `jobpoints diff`, with its flag: it rewrites a version.
    let rewrites = "changes an existing version, so jobs it already priced are re-priced; add a new version instead";
    // It rewrites the version in force since 2024-10-17T02:46:23Z, so it is retroactive; the edited
    // examples follow as changes of their own.
    let changes = r["last_changes"].as_array().unwrap();
    assert_eq!(
        changes[0],
        json!({
            "entity": "version",
            "op": "changed",
            "subject": "rule `sd15` version 3",
            "file": "families/sd15.toml",
            "line": 56,
            "field": "multiplier",
            "old": "0.3",
            "new": "0.6",
            "flag": rewrites,
            "retroactive": {"from": "2024-10-17T02:46:23Z", "until": null},
        })
    );
    // Its four priced examples (two of them at 60 steps, run as 50 and 35).
    assert_eq!(changes.len(), 5, "{changes:#?}");
    assert!(
        changes[1..].iter().all(|c| c["entity"] == "example"),
        "{changes:#?}"
    );
    assert_eq!(
        r["last_files"],
        json!({"added": [], "removed": [], "modified": ["families/sd15.toml"]})
    );
    // Exactly what `jobpoints diff --format json` says about the same two rule sets.
    let diff = jobpoints()
        .args(["diff", "--format", "json"])
        .arg(crate::util::rules_dir())
        .arg(&rules)
        .output()
        .unwrap();
    let diff: Value = serde_json::from_slice(&diff.stdout).unwrap();
    assert_eq!(r["last_changes"], diff["changes"]);
    assert_eq!(r["last_files"], diff["files"]);
    let after = s.score(braindance());
    assert_eq!(points(&after), "0.600000");
    assert_eq!(after["ruleset"], r["ruleset"]);
    let log = s.log();
    assert!(
        log.contains(&format!("rules reloaded: {good_hash} → ")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "rules change: ~ rule `sd15` version 3: multiplier 0.3 → 0.6 (! {rewrites})"
        )),
        "{log}"
    );
    let (_, m) = s.get("/metrics");
    assert!(
        m.contains("jobpoints_rules_reloads_total{result=\"failed\"} 4\n"),
        "{m}"
    );
    assert!(
        m.contains("jobpoints_rules_reloads_total{result=\"ok\"} 1\n"),
        "{m}"
    );
}

#[cfg(unix)]
#[test]
fn rename_save_and_a_symlink_swap_of_the_directory_are_picked_up() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("rules-a"), tmp.path().join("rules-b"));
    copy_rules_to(&a);
    copy_rules_to(&b);
    set_sd15_v2_multiplier(&b, "0.3", "0.6");
    let link = tmp.path().join("rules");
    symlink("rules-a", &link).unwrap();
    let s = Server::start(&link, &[]);
    assert_eq!(points(&s.score(braindance())), "0.300000");

    // Swap the whole directory atomically: a new symlink renamed over the old one.
    symlink("rules-b", tmp.path().join("rules.next")).unwrap();
    std::fs::rename(tmp.path().join("rules.next"), &link).unwrap();
    poll(10, "the swapped directory to be active", || {
        (points(&s.score(braindance())) == "0.600000").then_some(())
    });

    // An editor's rename-save inside the new directory is seen (the watch moved with it).
    set_sd15_v2_multiplier(&b, "0.6", "0.9");
    poll(10, "the rename-save to be active", || {
        (points(&s.score(braindance())) == "0.900000").then_some(())
    });
    // And the old directory no longer matters.
    set_sd15_v2_multiplier(&a, "0.3", "1.2");
    set_sd15_v2_multiplier(&b, "0.9", "1.5");
    poll(10, "the last edit to be active", || {
        (points(&s.score(braindance())) == "1.500000").then_some(())
    });
}

#[cfg(unix)]
#[test]
fn a_container_style_data_swap_is_picked_up() {
    // Kubernetes mounts a ConfigMap as `NAME -> ..data/NAME`, `..data -> ..TIMESTAMP`, and
    // updates it by re-pointing `..data`.
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let mount = tmp.path().join("mount");
    copy_rules_to(&mount.join("..v1/rules"));
    copy_rules_to(&mount.join("..v2/rules"));
    set_sd15_v2_multiplier(&mount.join("..v2/rules"), "0.3", "0.6");
    symlink("..v1", mount.join("..data")).unwrap();
    symlink("..data/rules", mount.join("rules")).unwrap();
    let s = Server::start(&mount.join("rules"), &[]);
    assert_eq!(points(&s.score(braindance())), "0.300000");
    symlink("..v2", mount.join("..data_tmp")).unwrap();
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
    poll(10, "the ..data swap to be active", || {
        (points(&s.score(braindance())) == "0.600000").then_some(())
    });
}

#[test]
fn under_load_every_result_matches_the_rules_whose_hash_it_carries() {
    const FLIPS: usize = 12;
    const CLIENTS: usize = 3;
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    copy_rules_to(&live);
    // The two versions the rules flip between, and the points each gives the jobs below.
    let text_a = std::fs::read_to_string(live.join("families/sd15.toml")).unwrap();
    set_sd15_v2_multiplier(&live, "0.3", "0.6");
    let text_b = std::fs::read_to_string(live.join("families/sd15.toml")).unwrap();
    let hash_b = jobpoints::internals::RuleFiles::from_dir(&live)
        .unwrap()
        .hash();
    std::fs::write(live.join("families/sd15.toml"), &text_a).unwrap();
    let hash_a = jobpoints::internals::RuleFiles::from_dir(&live)
        .unwrap()
        .hash();
    let jobs = json!([
        {"model": "BrainDance", "width": 512, "height": 512, "steps": 20},
        {"model": "BrainDance", "width": 1024, "height": 1024, "steps": 20},
        {"model": "BrainDance", "width": 512, "height": 768, "steps": 28},
        {"model": "meta-llama/llama-2-70b-chat", "input_tokens": 100, "output_tokens": 900},
    ]);
    let expect = |hash: &str| -> Vec<String> {
        let (sd15, big, odd) = if hash == hash_a {
            ("0.300000", "1.800000", "0.770000")
        } else {
            ("0.600000", "3.600000", "1.540000")
        };
        vec![sd15.into(), big.into(), odd.into(), "?".into()]
    };

    let s = Arc::new(Server::start(&live, &[]));
    let llama = points(&s.score(jobs[3].clone()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (s, stop, body) = (s.clone(), stop.clone(), jobs.to_string());
            let (ha, hb, llama) = (hash_a.clone(), hash_b.clone(), llama.clone());
            let expect_a = expect(&ha);
            let expect_b = expect(&hb);
            std::thread::spawn(move || {
                let mut seen = (0usize, 0usize);
                // Bounded: stops when the flips are done, or after a minute at most.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while std::time::Instant::now() < deadline {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let (status, text, header) = s.post("application/json", body.as_bytes());
                    assert_eq!(status, 200, "{text}");
                    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
                    let hash = rows[0]["ruleset"].as_str().unwrap().to_string();
                    assert_eq!(header.as_deref(), Some(hash.as_str()));
                    let want = if hash == ha {
                        seen.0 += 1;
                        &expect_a
                    } else {
                        assert_eq!(hash, hb, "a result from an unknown rule set");
                        seen.1 += 1;
                        &expect_b
                    };
                    for (i, r) in rows.iter().enumerate() {
                        assert_eq!(r["ruleset"], hash.as_str(), "one rule set per request");
                        let w = if i == 3 { &llama } else { &want[i] };
                        assert_eq!(&points(r), w, "job {i} under {hash}");
                    }
                }
                seen
            })
        })
        .collect();
    for i in 0..FLIPS {
        let (text, hash) = if i % 2 == 0 {
            (&text_b, &hash_b)
        } else {
            (&text_a, &hash_a)
        };
        let tmp_file = live.join("families/.sd15.toml.tmp");
        std::fs::write(&tmp_file, text).unwrap();
        std::fs::rename(&tmp_file, live.join("families/sd15.toml")).unwrap();
        poll(10, &format!("flip {i} to be active"), || {
            (s.rules()["ruleset"] == hash.as_str()).then_some(())
        });
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = (0, 0);
    for c in clients {
        let (a, b) = c
            .join()
            .expect("a client saw a failed request or a wrong result");
        total = (total.0 + a, total.1 + b);
    }
    assert!(
        total.0 > 0 && total.1 > 0,
        "clients must have seen both rule sets: {total:?}"
    );
    let r = s.rules();
    assert_eq!(r["reloads"]["ok"], FLIPS as u64);
    assert_eq!(r["reloads"]["failed"], 0);
    eprintln!(
        "{} requests under rules A, {} under B across {FLIPS} flips",
        total.0, total.1
    );
}

#[test]
fn created_and_renamed_files_are_picked_up() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let theia = "models/theia-llama-3.1-8b.toml";
    let text = std::fs::read(rules.join(theia)).unwrap();
    std::fs::remove_file(rules.join(theia)).unwrap();
    let s = Server::start(&rules, &[]);
    let rule_file = |r: &Value| -> Option<String> {
        r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["rule"] == "theia-llama-3.1-8b")
            .map(|x| x["file"].as_str().unwrap().to_string())
    };
    assert_eq!(rule_file(&s.rules()), None);

    std::fs::write(rules.join(theia), text).unwrap();
    let r = poll(10, "the created rule file to be active", || {
        let r = s.rules();
        rule_file(&r).is_some().then_some(r)
    });
    assert!(
        r["last_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["entity"] == "rule"
                && c["op"] == "added"
                && c["subject"] == "model rule `theia-llama-3.1-8b`"),
        "{}",
        r["last_changes"]
    );

    std::fs::rename(rules.join(theia), rules.join("models/theia.toml")).unwrap();
    poll(10, "the renamed rule file to be active", || {
        (rule_file(&s.rules()).as_deref() == Some("models/theia.toml")).then_some(())
    });

    // Written in place (no rename): a comment changes the hash but no rule version.
    let before = s.rules()["ruleset"].clone();
    let path = rules.join("models/theia.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n# reviewed\n");
    std::fs::write(&path, text).unwrap();
    let r = poll(10, "the in-place write to be active", || {
        let r = s.rules();
        (r["ruleset"] != before && r["state"] == "ok").then_some(r)
    });
    // No rule-level change; the file list says what was saved.
    assert_eq!(r["last_changes"], json!([]));
    assert_eq!(
        r["last_files"],
        json!({"added": [], "removed": [], "modified": ["models/theia.toml"]})
    );
    let log = s.log();
    assert!(
        log.contains("rules change: no rule changes; files changed: ~ models/theia.toml"),
        "{log}"
    );
}

#[test]
fn a_deleted_and_recreated_directory_is_picked_up() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let s = Server::start(&rules, &[]);
    let good = s.rules()["ruleset"].clone();

    std::fs::remove_dir_all(&rules).unwrap();
    // (A reload during the deletion may first see a partial, invalid set.)
    let r = poll(10, "the missing directory to be reported", || {
        let r = s.rules();
        r["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not exist"))
            .then_some(r)
    });
    assert_eq!(r["state"], "reload_failed");
    assert_eq!(r["ruleset"], good);
    assert_eq!(points(&s.score(braindance())), "0.300000");

    // Recreated (a deploy's `rm -rf rules && cp -r new rules`), with an edit.
    let staging = tmp.path().join("staging");
    copy_rules_to(&staging);
    set_sd15_v2_multiplier(&staging, "0.3", "0.6");
    std::fs::rename(&staging, &rules).unwrap();
    poll(10, "the recreated directory to be active", || {
        (points(&s.score(braindance())) == "0.600000").then_some(())
    });
    assert_eq!(s.rules()["state"], "ok");
}

/// Jobs whose reading has corners: a leap second, offsets and bare dates, integer and huge
/// ids, escapes, the network's nested shape, nulls, a float where an integer belongs, a
/// duplicate key, an input out of bounds, a model nobody prices, no time at all.
const TRICKY_JOBS: &[&str] = &[
    r#"{"id":"leap","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-06-30T23:59:60Z"}"#,
    r#"{"id":"offset","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-09-18T01:00:00+02:00"}"#,
    r#"{"id":"date","model":"AnimagineXL","width":1024,"height":1024,"steps":20,"completed_at":"2024-06-01"}"#,
    r#"{"id":42,"model":"BrainDance","width":512,"height":768,"steps":28,"completed_at":"2024-05-15T12:00:00Z"}"#,
    r#"{"id":18446744073709551615,"model":"BrainDance","width":512,"height":512,"steps":19}"#,
    r#"{"id":"esc\u00e9\"q","model":"Brain\u0044ance","miner":"0x\u0041","width":512,"height":512,"steps":20}"#,
    r#"{"job_id":"net","model_id":"BrainDance","miner_id":"0xabc","completed_at":"2024-05-01T00:00:00Z","model_input":{"SD":{"width":1024,"height":1024,"num_iterations":20}}}"#,
    r#"{"id":"nulls","model":"mistralai/mixtral-8x7b-instruct","input_tokens":812,"output_tokens":240,"miner":null,"completed_at":null}"#,
    r#"{"id":"float","model":"BrainDance","width":512.0,"height":512,"steps":20}"#,
    r#"{"id":"dup","model":"BrainDance","width":512,"width":1024,"height":512,"steps":20}"#,
    r#"{"id":"bounds","model":"BrainDance","width":-5,"height":512,"steps":20}"#,
    r#"{"id":"nobody","model":"NoSuchModel","width":512,"height":512,"steps":20}"#,
    r#"{"id":"early","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-03-01T00:00:00Z"}"#,
    r#"{"id":"badtime","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"yesterday"}"#,
];

/// The results without `line` (which differs between file shapes), in order.
fn without_lines(results: Vec<Value>) -> Vec<Value> {
    results
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("line");
            r
        })
        .collect()
}

#[test]
fn every_input_shape_and_serve_give_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = TRICKY_JOBS.join("\n") + "\n";
    let array = format!("[\n  {}\n]\n", TRICKY_JOBS.join(",\n  "));
    // Multi-line documents, as `jq .` writes them.
    let pretty: String = TRICKY_JOBS
        .iter()
        .map(|j| {
            let v: Value = serde_json::from_str(j).unwrap_or(Value::Null);
            // The duplicate key would vanish through serde_json: keep that job as written.
            if j.contains(r#""width":512,"width""#) {
                format!("{{\n  {}\n}}\n", &j[1..j.len() - 1])
            } else {
                serde_json::to_string_pretty(&v).unwrap() + "\n"
            }
        })
        .collect();
    let files = [
        ("jobs.jsonl", jsonl.as_str()),
        ("jobs.json", array.as_str()),
        ("pretty.json", pretty.as_str()),
    ];
    let eval = |file: &str, format: &str| -> Vec<Value> {
        let out = jobpoints()
            .args(["eval", "--format", format])
            .arg(dir.path().join(file))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        if format == "json" {
            serde_json::from_str(&text).unwrap()
        } else {
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    };
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let reference = without_lines(eval("jobs.jsonl", "jsonl"));
    assert_eq!(reference.len(), TRICKY_JOBS.len());
    let leap = &reference[0];
    assert_eq!(leap["completed_at"], "2024-06-30T23:59:59Z", "{leap}");
    assert_eq!(leap["rule"], "sd15@1", "{leap}");
    for (name, _) in files {
        for format in ["jsonl", "json"] {
            assert_eq!(
                without_lines(eval(name, format)),
                reference,
                "{name} as {format}"
            );
        }
    }
    // Trusting `completed_at`, as `eval` does with the operator's own files.
    let server = Server::start(&crate::util::rules_dir(), &["--trust-job-time"]);
    for (content_type, body) in [
        ("application/x-ndjson", jsonl.as_str()),
        ("application/json", array.as_str()),
    ] {
        let (status, body, _) = server.post(content_type, body.as_bytes());
        assert_eq!(status, 200, "{body}");
        let results: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(without_lines(results), reference, "serve, {content_type}");
    }
}

#[test]
fn a_fifo_or_a_symlink_loop_in_the_rules_is_a_failed_reload_not_a_hang() {
    // Before #11 the reloader opened the FIFO and waited for a writer forever, while
    // `/v1/rules` kept saying `ok`.
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let s = Server::start(&rules, &[]);
    let made = Command::new("mkfifo")
        .arg(rules.join("formulas/pipe.rhai"))
        .status()
        .unwrap();
    assert!(made.success());
    let failed = wait_failed(&s, 1);
    assert!(
        failed["last_error"]["diagnostics"]
            .to_string()
            .contains("refused-file"),
        "{failed}"
    );
    assert_eq!(points(&s.score(braindance())), "0.300000", "still serving");
    std::fs::remove_file(rules.join("formulas/pipe.rhai")).unwrap();
    std::os::unix::fs::symlink(".", rules.join("loop")).unwrap();
    let failed = wait_failed(&s, 2);
    assert!(
        failed["last_error"]["diagnostics"]
            .to_string()
            .contains("symlink loop"),
        "{failed}"
    );
    std::fs::remove_file(rules.join("loop")).unwrap();
    poll(10, "the reload error to clear", || {
        (s.rules()["state"] == "ok").then_some(())
    });
    let (status, _) = s.get("/healthz");
    assert_eq!(status, 200);
}

#[test]
fn a_slow_file_by_file_copy_is_read_once_whole() {
    // `cp -r` or a CI checkout writes file by file; with pauses longer than the debounce,
    // each pause used to publish half a rule set (#11). Now the watcher waits until the tree
    // has been quiet for `QUIET` before it reads.
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let s = Server::start(&rules, &[]);
    let before = s.rules()["ruleset"].clone();
    for rel in [
        "families/sd15.toml",
        "families/sdxl10.toml",
        "families/composite15.toml",
        "catalog.toml",
    ] {
        let path = rules.join(rel);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("\n# copied\n");
        std::fs::write(&path, text).unwrap();
        // Longer than the 150 ms debounce, shorter than the 400 ms quiet window.
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let r = poll(10, "the copy to be active", || {
        let r = s.rules();
        (r["ruleset"] != before).then_some(r)
    });
    // Give a stray second reload the time it would need to show.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let r2 = s.rules();
    assert_eq!(r2["ruleset"], r["ruleset"]);
    assert_eq!(
        (
            r2["reloads"]["ok"].as_u64(),
            r2["reloads"]["failed"].as_u64()
        ),
        (Some(1), Some(0)),
        "one reload of the whole copy: {}",
        s.log()
    );
    assert_eq!(
        r2["last_files"]["modified"].as_array().map(Vec::len),
        Some(4),
        "{r2}"
    );
}

#[test]
fn a_body_that_is_not_utf8_is_400_naming_the_byte_offset() {
    // It used to be 200 with one `invalid` result.
    let s = Server::start(&crate::util::rules_dir(), &[]);
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "application/json",
            b"{\"model\": \"Brain\xffDance\", \"width\": 512, \"height\": 512, \"steps\": 20}",
            "offset 16 (line 1)",
        ),
        (
            "application/x-ndjson",
            b"{\"model\": \"BrainDance\", \"width\": 512, \"height\": 512, \"steps\": 20}\n{\"model\": \"\xc3\x28\"}\n",
            "offset 77 (line 2)",
        ),
        // A UTF-16 body (with its byte order mark) is not UTF-8 either.
        ("application/json", b"\xff\xfe[\x00]\x00", "offset 0 (line 1)"),
    ];
    for (ct, body, at) in cases {
        let (status, text, _) = s.post(ct, body);
        assert_eq!(status, 400, "{ct}: {text}");
        let e: Value = serde_json::from_str(&text).expect("error body is JSON");
        let e = e["error"].as_str().unwrap();
        assert!(
            e.contains("not valid UTF-8") && e.contains(at),
            "`{e}` should name `{at}`"
        );
    }
    assert_eq!(points(&s.score(braindance())), "0.300000", "still serving");
}

/// Far enough in the past that sd15 version 1 (multiplier 1.0) priced it; version 2 (0.3)
/// is in force today.
fn backdated() -> Value {
    json!({"id": "old", "model": "BrainDance", "width": 512, "height": 512, "steps": 20,
           "completed_at": "2024-05-01T00:00:00Z"})
}

#[test]
fn serve_prices_a_job_by_when_it_was_received_unless_job_time_is_trusted() {
    let rules = crate::util::rules_dir();
    let s = Server::start(&rules, &[]);
    let before = jiff::Timestamp::now().as_second();
    let r = s.score(backdated());
    let after = jiff::Timestamp::now().as_second();
    // A miner's `completed_at` no longer picks the 3.3× better-paying version.
    assert_eq!(r["rule"], "sd15@3", "{r}");
    assert_eq!(points(&r), "0.300000");
    assert_eq!(
        r["completed_at"], "2024-05-01T00:00:00Z",
        "still shown, as sent"
    );
    assert_eq!(r["priced_by"], "received");
    let priced: jiff::Timestamp = r["priced_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (before..=after).contains(&priced.as_second()),
        "priced_at {priced} is when the request came"
    );
    // One time for the whole request, and `?explain=true` shows it as the time that picked
    // the version.
    let jobs = json!([backdated(), braindance(), {"model": "NoSuchModel"}]);
    let mut resp = s
        .agent
        .post(format!("{}/v1/score?explain=true", s.base))
        .header("content-type", "application/json")
        .send(jobs.to_string().as_bytes())
        .unwrap();
    let rows: Vec<Value> =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    let t = &rows[0]["priced_at"];
    assert!(t.is_string());
    for row in &rows[..2] {
        assert_eq!(&row["priced_at"], t, "{row}");
        assert_eq!(row["priced_by"], "received");
        assert_eq!(&row["trace"]["at"], t, "{row}");
    }
    assert_eq!(rows[2]["status"], "no_rule");
    assert_eq!(
        &rows[2]["priced_at"], t,
        "no rule at that time: the time is named too"
    );
    // `?at=` overrides both, and says so.
    let mut resp = s
        .agent
        .post(format!("{}/v1/score?at=2024-05-15", s.base))
        .header("content-type", "application/json")
        .send(backdated().to_string().as_bytes())
        .unwrap();
    let dated: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(dated["rule"], "sd15@1");
    assert_eq!(dated["priced_at"], "2024-05-15T00:00:00Z");
    assert_eq!(dated["priced_by"], "at");
    // A job that cannot be read picked no version: no time to name.
    let (_, text, _) = s.post("application/json", br#"{"width": 512}"#);
    let invalid: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(invalid["status"], "invalid");
    assert!(invalid.get("priced_by").is_none(), "{invalid}");
    drop(s);

    // A trusted scheduler's `completed_at` picks the version, as in `eval`: no new fields.
    let trusted = Server::start(&rules, &["--trust-job-time"]);
    let r = trusted.score(backdated());
    assert_eq!(r["rule"], "sd15@1", "{r}");
    assert_eq!(points(&r), "1.000000");
    assert!(
        r.get("priced_at").is_none() && r.get("priced_by").is_none(),
        "{r}"
    );
    let out = jobpoints()
        .args(["eval", "--format", "json", "-"])
        .write_stdin(backdated().to_string())
        .output()
        .unwrap();
    let evaluated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        evaluated[0], r,
        "serve --trust-job-time gives eval's result"
    );
    let mut resp = trusted
        .agent
        .post(format!("{}/v1/score?at=2025-01-01", trusted.base))
        .header("content-type", "application/json")
        .send(backdated().to_string().as_bytes())
        .unwrap();
    let dated: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(dated["rule"], "sd15@3");
    assert_eq!(dated["priced_by"], "at");
    assert_eq!(dated["priced_at"], "2025-01-01T00:00:00Z");
    // `eval --at` names its pricing time the same way, so `verify` can reproduce either.
    let out = jobpoints()
        .args(["eval", "--at", "2025-01-01", "-"])
        .write_stdin(backdated().to_string())
        .output()
        .unwrap();
    let evaluated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(evaluated["rule"], "sd15@3");
    assert_eq!(evaluated["priced_by"], "at");
    assert_eq!(evaluated["priced_at"], "2025-01-01T00:00:00Z");
}
