//! The playground's JSON API (#15) through the real binary: `POST /v1/check`, `/v1/eval` and
//! `/v1/diff` give what `check`, `eval` and `diff` give for the same files, never touch the
//! served rules or the disk, and stay within their limits. (The page itself is driven in a
//! real browser by `playground_browser`.)

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{copy_rules_to, jobpoints_in, root};

/// A running `jobpoints playground` (or `serve --playground`), killed on drop.
pub(crate) struct Playground {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub(crate) base: String,
    /// The URL it printed for the page.
    pub(crate) page: Option<String>,
    agent: ureq::Agent,
}

impl Playground {
    /// `jobpoints ARGS... --listen 127.0.0.1:0 --rules NAME`, started in the directory of
    /// `rules` (so the page names the rules by their directory's name, as from a checkout);
    /// reads the address (and the page's URL, when it prints one) from stdout.
    pub(crate) fn start(args: &[&str], rules: &Path) -> Playground {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("jobpoints"))
            .current_dir(rules.parent().unwrap())
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--rules"])
            .arg(rules.file_name().unwrap())
            .env_remove("JOBPOINTS_RULES")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start jobpoints");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let page = args
            .iter()
            .any(|a| *a == "playground" || *a == "--playground")
            .then(|| {
                let mut line = String::new();
                out.read_line(&mut line).unwrap();
                line.trim()
                    .strip_prefix("playground on ")
                    .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
                    .to_string()
            });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Playground {
            child,
            base,
            page,
            agent,
        }
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String, ureq::http::HeaderMap) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .expect("GET");
        let headers = r.headers().clone();
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap(),
            headers,
        )
    }

    /// POSTs `body` as `content_type`; the status and the body parsed as JSON.
    pub(crate) fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .send(body)
            .expect("POST");
        let status = r.status().as_u16();
        let text = r
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, v)
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, "application/json", body.to_string().as_bytes())
    }

    /// The rule files the session starts from.
    pub(crate) fn session_files(&self) -> BTreeMap<String, String> {
        let (status, body, _) = self.get("/playground/session.json");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        serde_json::from_value(v["files"].clone()).unwrap()
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every rule file under `dir`, by relative path.
pub(crate) fn read_rules(dir: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{rel}/"), out);
            } else if name.ends_with(".toml") || name.ends_with(".rhai") {
                out.insert(rel, std::fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &mut out);
    out
}

/// Writes `files` as a rules directory at `dir`, with the repository's tokenizer models
/// (which the playground never sends: every sent rule set holds the served ones).
fn write_rules(dir: &Path, files: &BTreeMap<String, String>) {
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/tokenizers");
    std::fs::create_dir_all(dir.join("tokenizers")).unwrap();
    for e in std::fs::read_dir(models).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().ends_with(".model") {
            std::fs::copy(e.path(), dir.join("tokenizers").join(e.file_name())).unwrap();
        }
    }
}

/// The SDXL edit of the issue on the latest version (3, which prices undated jobs and the
/// undated corpus): its multiplier 1.0 → 1.5, with (`fixed`) or without its examples (6
/// points at 1024², with and without a latency) updated to match.
pub(crate) fn sdxl_edit(files: &BTreeMap<String, String>, fixed: bool) -> BTreeMap<String, String> {
    let mut out = files.clone();
    let text = &files["families/sdxl10.toml"];
    let at = text.rfind("[[version]]").expect("a version");
    let (head, latest) = text.split_at(at);
    let mut latest = latest.replacen("multiplier = 1.0\n", "multiplier = 1.5\n", 1);
    if fixed {
        latest = latest.replace("points = 6 }", "points = 9 }");
    }
    let new = format!("{head}{latest}");
    assert_ne!(&new, text);
    out.insert("families/sdxl10.toml".into(), new);
    out
}

/// The 1-based lines of `families/sdxl10.toml` of its latest version, from its `[[version]]`
/// to the end: where its `example-failed` diagnostics may be placed.
pub(crate) fn sdxl_latest_lines(
    files: &BTreeMap<String, String>,
) -> std::ops::RangeInclusive<usize> {
    let text = &files["families/sdxl10.toml"];
    let first = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("[[version]]"))
        .last()
        .expect("a version")
        .0
        + 1;
    first..=text.lines().count()
}

fn files_json(files: &BTreeMap<String, String>) -> Value {
    serde_json::to_value(files).unwrap()
}

/// `jobpoints ARGS` in `dir`: exit code and stdout.
fn run_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = jobpoints_in(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

struct Dirs {
    _tmp: tempfile::TempDir,
    served: PathBuf,
    edited: PathBuf,
    work: PathBuf,
}

/// A copy of the repository's rules to serve, and an empty directory for the CLI to run in
/// (no `./rules` or `./corpus`, so `diff` uses the built-in corpus as the playground does).
fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    copy_rules_to(&served);
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    Dirs {
        served,
        edited: tmp.path().join("edited"),
        work,
        _tmp: tmp,
    }
}

#[test]
fn check_eval_and_diff_of_sent_files_match_the_cli_and_touch_nothing() {
    let d = dirs();
    let pg = Playground::start(&["playground"], &d.served);
    let page = pg.page.clone().expect("the page's URL");
    assert_eq!(page, format!("{}/playground/", pg.base));
    let original = pg.session_files();
    assert_eq!(original, read_rules(&d.served));
    let (_, rules_before, _) = pg.get("/v1/rules");

    // check: the broken edit's diagnostic, where `check --format json` puts it.
    let broken = sdxl_edit(&original, false);
    let (status, checked) = pg.post("/v1/check", &json!({ "files": files_json(&broken) }));
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["ok"], false);
    let diags = checked["diagnostics"].as_array().unwrap();
    // Both of the version's 6-point examples now fail.
    assert_eq!(diags.len(), 2, "{checked}");
    for d in diags {
        assert_eq!(d["code"], "example-failed");
        assert_eq!(d["file"], "families/sdxl10.toml");
        let line = d["line"].as_u64().unwrap() as usize;
        assert!(sdxl_latest_lines(&original).contains(&line), "{checked}");
    }
    assert!(diags[0]["end_line"].as_u64().is_some(), "{checked}");
    write_rules(&d.edited, &broken);
    let (code, cli) = run_in(
        &d.work,
        &[
            "check",
            "--format",
            "json",
            "--rules",
            d.edited.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 3);
    let cli: Value = serde_json::from_str(&cli).unwrap();
    assert_eq!(cli["ruleset"], checked["ruleset"]);
    let strip = |ds: &Value| -> Vec<Value> {
        ds.as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.as_object_mut().unwrap().remove("end_line");
                d.as_object_mut().unwrap().remove("end_column");
                d
            })
            .collect()
    };
    assert_eq!(strip(&checked["diagnostics"]), strip(&cli["diagnostics"]));

    // eval of broken rules: 422 with the same diagnostics.
    let (status, refused) = pg.post(
        "/v1/eval",
        &json!({ "files": files_json(&broken), "jobs": "{}" }),
    );
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["diagnostics"], checked["diagnostics"]);

    // eval: every shape of job file gives what `eval --format json` gives.
    let fixed = sdxl_edit(&original, true);
    std::fs::remove_dir_all(&d.edited).unwrap();
    write_rules(&d.edited, &fixed);
    let examples = std::fs::read_to_string(root().join("examples/jobs.jsonl")).unwrap();
    let lines: Vec<&str> = examples.lines().collect();
    let undated =
        r#"{"id": "u1", "model": "AnimagineXL", "width": 512, "height": 512, "steps": 20}"#;
    let jobl = format!("{examples}{undated}\nnot json\n");
    let array = format!("[\n{}\n]\n", lines.join(",\n"));
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(undated).unwrap()).unwrap();
    let rules = d.edited.to_str().unwrap();
    for (name, text) in [("jsonl", &jobl), ("array", &array), ("document", &pretty)] {
        let file = d.work.join(format!("{name}.json"));
        std::fs::write(&file, text).unwrap();
        for explain in [false, true] {
            let mut args = vec!["eval", "--format", "json", "--rules", rules];
            if explain {
                args.push("--explain");
            }
            args.push(file.to_str().unwrap());
            let (_, cli) = run_in(&d.work, &args);
            let cli: Value = serde_json::from_str(&cli).unwrap();
            let (status, got) = pg.post(
                "/v1/eval",
                &json!({ "files": files_json(&fixed), "jobs": text, "explain": explain }),
            );
            assert_eq!(status, 200, "{got}");
            let mut results = got["results"].as_array().unwrap().clone();
            for r in &mut results {
                let explained = r.as_object_mut().unwrap().remove("explain");
                assert_eq!(
                    explained.is_some(),
                    explain && r["trace"].is_object(),
                    "{r}"
                );
            }
            assert_eq!(Value::Array(results), cli, "{name}, explain {explain}");
        }
    }
    // Jobs as JSON rather than text read the same; `before` is the base rules' result.
    let (status, got) = pg.post(
        "/v1/eval",
        &json!({ "files": files_json(&fixed), "base": files_json(&original),
                 "jobs": serde_json::from_str::<Value>(undated).unwrap(), "explain": true }),
    );
    assert_eq!(status, 200, "{got}");
    let r = &got["results"][0];
    assert_eq!(
        (r["rule"].as_str(), r["points"].as_f64()),
        (Some("sdxl10@3"), Some(1.5))
    );
    assert_eq!(
        r["before"],
        json!({"status": "ok", "points": 1.0, "rule": "sdxl10@3"})
    );
    assert_eq!(got["base_ruleset"], json!(rules_before_hash(&rules_before)));
    // The trace as `eval --format table --explain` prints it.
    let doc = d.work.join("document.json");
    let (_, table) = run_in(
        &d.work,
        &[
            "eval",
            "--format",
            "table",
            "--explain",
            "--rules",
            rules,
            doc.to_str().unwrap(),
        ],
    );
    let explain = r["explain"].as_str().unwrap();
    assert!(
        explain.contains("sdxl10 version 3") && table.contains(explain),
        "{explain}\n{table}"
    );

    // diff: the markdown of `diff --format markdown` on the built-in corpus, and a patch.
    let served_again = d.work.join("original");
    write_rules(&served_again, &original);
    let (status, diffed) = pg.post(
        "/v1/diff",
        &json!({ "files": files_json(&fixed), "base": files_json(&original) }),
    );
    assert_eq!(status, 200, "{diffed}");
    let (code, cli) = run_in(
        &d.work,
        &[
            "diff",
            "--format",
            "markdown",
            served_again.to_str().unwrap(),
            rules,
        ],
    );
    assert_eq!(code, 0);
    let cli = cli.replace(
        &format!("`{}` → `{rules}`", served_again.display()),
        "`rules (original)` → `rules (edited)`",
    );
    assert_eq!(diffed["markdown"].as_str().unwrap(), cli);
    assert!(
        cli.contains("multiplier 1.0 → 1.5") && cli.contains("AnimagineXL"),
        "{cli}"
    );
    let html = diffed["html"].as_str().unwrap();
    assert!(
        html.contains("<table>") && html.contains("multiplier 1.0 → 1.5"),
        "{html}"
    );
    assert!(diffed["changed"].as_bool().unwrap());
    assert!(
        diffed["patch"]
            .as_str()
            .unwrap()
            .starts_with("diff --git a/rules/families/sdxl10.toml b/rules/families/sdxl10.toml\n"),
        "{diffed}"
    );
    assert_eq!(diffed["report"]["new"]["valid"], true);

    // Nothing reached the served rules or the disk.
    assert_eq!(read_rules(&d.served), original);
    let (_, rules_after, _) = pg.get("/v1/rules");
    assert_eq!(
        rules_before_hash(&rules_after),
        rules_before_hash(&rules_before)
    );
    assert_eq!(pg.session_files(), original);
}

fn rules_before_hash(rules_json: &str) -> String {
    let v: Value = serde_json::from_str(rules_json).unwrap();
    v["ruleset"].as_str().unwrap().to_string()
}

#[test]
fn the_patch_applies_with_git_and_recreates_the_edited_files() {
    let d = dirs();
    let pg = Playground::start(&["serve", "--playground"], &d.served);
    let original = pg.session_files();
    let mut edited = sdxl_edit(&original, true);
    // A created file without a final newline, a deleted file, and a file whose last line
    // lost its newline.
    edited.insert("formulas/extra.rhai".into(), "1.0".into());
    edited.remove("models/theia-llama-3.1-8b.toml");
    let kinds = edited["kinds.toml"].trim_end().to_string();
    edited.insert("kinds.toml".into(), kinds);
    let (status, diffed) = pg.post(
        "/v1/diff",
        &json!({ "files": files_json(&edited), "base": files_json(&original) }),
    );
    assert_eq!(status, 200, "{diffed}");
    let patch = diffed["patch"].as_str().unwrap();
    let repo = d.work.join("repo");
    write_rules(&repo.join("rules"), &original);
    std::fs::write(d.work.join("rules.patch"), patch).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["apply", "--check", "../rules.patch"]);
    git(&["apply", "../rules.patch"]);
    assert_eq!(read_rules(&repo.join("rules")), edited);
    let (code, out) = run_in(&repo, &["check"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_playground_is_off_unless_asked_for() {
    let d = dirs();
    let pg = Playground::start(&["serve"], &d.served);
    for path in [
        "/playground/",
        "/playground/session.json",
        "/playground/assets/app.js",
    ] {
        assert_eq!(pg.get(path).0, 404, "{path}");
    }
    for path in ["/v1/check", "/v1/eval", "/v1/diff"] {
        let (status, _) = pg.post(path, &json!({ "files": {} }));
        assert_eq!(status, 404, "{path}");
    }
}

#[test]
fn the_page_and_its_assets_are_in_the_binary_and_lock_down_scripts() {
    let d = dirs();
    let pg = Playground::start(&["playground"], &d.served);
    let (status, html, headers) = pg.get("/playground/");
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    // Every script and stylesheet the page loads is served from here (no CDN).
    let mut refs = 0;
    for part in html.split(['"', '\'']).filter(|p| p.starts_with("assets/")) {
        let (status, body, headers) = pg.get(&format!("/playground/{part}"));
        assert_eq!(status, 200, "{part}");
        assert!(!body.is_empty());
        let kind = headers["content-type"].to_str().unwrap();
        assert!(
            kind.starts_with(if part.ends_with(".js") {
                "text/javascript"
            } else {
                "text/css"
            }),
            "{part}: {kind}"
        );
        refs += 1;
    }
    assert!(refs >= 5, "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let (status, license, _) = pg.get("/playground/assets/codemirror/LICENSE");
    assert_eq!(status, 200);
    assert!(license.contains("MIT License"));
    assert_eq!(pg.get("/playground/assets/nope.js").0, 404);
    // `/` leads to the page.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let r = agent.get(format!("{}/", pg.base)).call().unwrap();
    assert_eq!(r.headers()["location"], "/playground/");
}

#[test]
fn requests_are_bounded_and_bad_ones_are_refused_with_reasons() {
    let d = dirs();
    let pg = Playground::start(
        &[
            "serve",
            "--playground",
            "--max-body-bytes",
            "300000",
            "--max-jobs",
            "5",
        ],
        &d.served,
    );
    let original = pg.session_files();
    let files = files_json(&original);
    let err = |v: &Value| v["error"].as_str().unwrap_or_default().to_string();

    assert_eq!(pg.get("/v1/check").0, 405);
    let (s, v) = pg.post_raw(
        "/v1/check",
        "text/plain",
        json!({ "files": files }).to_string().as_bytes(),
    );
    assert_eq!(s, 415, "{v}");
    let (s, v) = pg.post_raw("/v1/check", "application/json", b"{\"files\": ");
    assert_eq!(s, 400, "{v}");
    let (s, v) = pg.post("/v1/check", &json!({ "files": files, "extra": 1 }));
    assert!(s == 400 && err(&v).contains("unknown field"), "{v}");
    for bad in [
        "../x.toml",
        "/etc/x.toml",
        ".git/config.toml",
        "README.md",
        "a b.toml",
        // Binary models are never sent: the served rule set's are used.
        "tokenizers/mistral-v1.model",
    ] {
        let (s, v) = pg.post("/v1/check", &json!({ "files": { bad: "" } }));
        assert!(s == 400 && err(&v).contains("path"), "{bad}: {v}");
    }
    let many: BTreeMap<String, String> = (0..257)
        .map(|i| (format!("m/{i}.toml"), String::new()))
        .collect();
    let (s, v) = pg.post("/v1/check", &json!({ "files": many }));
    assert!(s == 413 && err(&v).contains("256"), "{v}");
    // Refused from its Content-Length, before a byte of the body is read.
    let head = raw_request(
        &pg,
        "POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 300001\r\n\r\n",
    );
    assert!(
        head.starts_with("HTTP/1.1 413") && head.contains("300000"),
        "{head}"
    );
    // And as it arrives, without a Content-Length.
    let chunk = format!("{:x}\r\n{}\r\n", 300_001, "#".repeat(300_001));
    let head = raw_request(
        &pg,
        &format!(
            "POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}0\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let six = "{\"model\":\"BrainDance\"}\n".repeat(6);
    let (s, v) = pg.post("/v1/eval", &json!({ "files": files, "jobs": six }));
    assert!(s == 413 && err(&v).contains("more than 5 jobs"), "{v}");
    let (s, v) = pg.post(
        "/v1/eval",
        &json!({ "files": files, "jobs": "{}", "at": "soon" }),
    );
    assert!(s == 400 && err(&v).contains("`at`"), "{v}");
    let (s, v) = pg.post("/v1/diff", &json!({ "files": files }));
    assert!(s == 400 && err(&v).contains("base"), "{v}");
    // Files sent are checked like files on disk: an empty rule set says what is missing.
    let (s, v) = pg.post("/v1/check", &json!({ "files": {} }));
    assert_eq!(s, 200);
    assert_eq!(v["diagnostics"][0]["code"], "missing-file", "{v}");
    // The server still serves.
    assert_eq!(pg.get("/healthz").0, 200);
}

/// Sends `request` as it is and reads the response until the server closes the connection
/// (or 10 s pass).
fn raw_request(pg: &Playground, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(pg.base.strip_prefix("http://").unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may close before it has read everything: that is the point.
    let _ = s.write_all(request.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_rule_file_over_the_size_limit_is_refused_as_on_disk() {
    let d = dirs();
    let pg = Playground::start(&["playground"], &d.served);
    let mut files = pg.session_files();
    files.insert(
        "formulas/huge.rhai".into(),
        format!("1.0 {}", " ".repeat(1 << 20)),
    );
    let (s, v) = pg.post("/v1/check", &json!({ "files": files }));
    assert_eq!(s, 200, "{v}");
    let codes: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"file-too-large"), "{codes:?}");
}

#[test]
fn a_request_over_its_time_limit_is_503_and_the_server_goes_on() {
    let d = dirs();
    let pg = Playground::start(
        &[
            "serve",
            "--playground",
            "--playground-timeout",
            "0.001",
            "--threads",
            "1",
        ],
        &d.served,
    );
    let files = files_json(&pg.session_files());
    let t0 = Instant::now();
    for (path, body) in [
        ("/v1/diff", json!({ "files": files, "base": files })),
        (
            "/v1/eval",
            json!({ "files": files, "jobs": "{\"model\":\"BrainDance\"}\n".repeat(1000) }),
        ),
        ("/v1/check", json!({ "files": files })),
    ] {
        let (s, v) = pg.post(path, &body);
        assert!(
            s == 503
                && v["error"]
                    .as_str()
                    .unwrap()
                    .contains("--playground-timeout"),
            "{path}: {s} {v}"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(pg.get("/healthz").0, 200);
    let (s, _) = pg.post_raw(
        "/v1/score",
        "application/json",
        br#"{"model":"BrainDance","width":512,"height":512,"steps":20}"#,
    );
    assert_eq!(s, 200);
}

#[test]
fn the_playground_shares_serves_request_slots() {
    use std::io::Write;
    let d = dirs();
    // The slow body below must outlive the polling on a loaded machine: with the default 10 s
    // body timeout it was cut off before the first /v1/check ran, and every check got 200.
    let pg = Playground::start(
        &[
            "serve",
            "--playground",
            "--max-requests",
            "1",
            "--body-timeout",
            "300",
        ],
        &d.served,
    );
    let files = files_json(&pg.session_files());
    // A score request whose body is still arriving holds the only request slot...
    let mut slow = std::net::TcpStream::connect(pg.base.strip_prefix("http://").unwrap()).unwrap();
    slow.write_all(b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":")
        .unwrap();
    // ...so the playground's requests are shed like score requests.
    let (s, v) = poll_status(&pg, &json!({ "files": files }), 503);
    assert!(
        v["error"].as_str().unwrap().contains("--max-requests"),
        "{s} {v}"
    );
    drop(slow);
    let (s, v) = poll_status(&pg, &json!({ "files": files }), 200);
    assert_eq!(v["ok"], true, "{s} {v}");
}

/// POSTs `body` to `/v1/check` until it answers `want` (the server sees a closed or opened
/// connection a moment after the client), for at most 30 s (a busy 2-core machine is slow).
fn poll_status(pg: &Playground, body: &Value, want: u16) -> (u16, Value) {
    let t0 = Instant::now();
    loop {
        let (s, v) = pg.post("/v1/check", body);
        if s == want || t0.elapsed() > Duration::from_secs(30) {
            assert_eq!(s, want, "{v}");
            return (s, v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
