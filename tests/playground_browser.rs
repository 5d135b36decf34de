//! The playground in a real browser (#15): headless Chromium, driven through the DevTools
//! protocol, does what an author does: opens the page, changes the SDXL multiplier in the
//! editor, sees `example-failed` at its line, fixes the example, sees the impact report and
//! the jobs move, downloads the patch, and the patch applies to a copy of `rules/` that
//! `jobpoints check` accepts. Without Chromium this test fails (it does not skip):
//! `scripts/test.sh` installs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::{Browser as Cdp, Page};
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;

use crate::playground::{Playground, read_rules, sdxl_latest_lines};
use crate::util::{copy_rules_to, jobpoints_in};

/// Chromium: `$JOBPOINTS_CHROMIUM`, else Debian's `/usr/bin/chromium`, else `chromium` on the
/// PATH. Not found is a failure that says how to get it.
fn chromium() -> PathBuf {
    let mut candidates = Vec::new();
    match std::env::var_os("JOBPOINTS_CHROMIUM") {
        Some(p) => candidates.push(PathBuf::from(p)),
        None => {
            candidates.push(PathBuf::from("/usr/bin/chromium"));
            if let Some(path) = std::env::var_os("PATH") {
                candidates.extend(std::env::split_paths(&path).map(|d| d.join("chromium")));
            }
        }
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "Chromium is needed for the playground's browser test and was not found \
                 (JOBPOINTS_CHROMIUM, /usr/bin/chromium, PATH): run `scripts/test.sh`, which \
                 installs Debian's `chromium` package when it is missing, or `apt-get install \
                 chromium`"
            )
        })
}

/// Evaluates `js` in the page; its value as JSON.
fn eval(tab: &Tab, js: &str) -> Value {
    tab.evaluate(js, false)
        .unwrap_or_else(|e| panic!("evaluate {js}: {e}"))
        .value
        .unwrap_or(Value::Null)
}

/// Polls `js` until it gives something other than `false`/`null`; panics after 60 s.
fn wait_for(tab: &Tab, what: &str, js: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let v = eval(tab, js);
        if !matches!(v, Value::Null | Value::Bool(false)) {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what} ({js}); status: {}; diagnostics: {}",
            eval(tab, "document.getElementById('status').textContent"),
            eval(tab, "document.getElementById('diagnostics').innerText")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the page has answers for every edit made so far.
fn wait_idle(tab: &Tab) {
    wait_for(
        tab,
        "the page to be up to date",
        "document.body.dataset.busy === 'false' && document.body.dataset.gen === String(playground.state.gen)",
    );
}

/// Selects `text` on the first editor line that contains `line_has`, then types `with`
/// through real key events.
/// Selects `text` on the last line of the editor that has `line_has`, and types `with` over it;
/// returns that 1-based line.
fn replace_in_editor(tab: &Tab, line_has: &str, text: &str, with: &str) -> usize {
    let js = format!(
        "(() => {{ const cm = playground.editor; const lines = cm.getValue().split('\\n');
            const i = lines.findLastIndex(l => l.includes({line_has:?}));
            if (i < 0) return -1;
            const ch = lines[i].indexOf({text:?}, lines[i].indexOf({line_has:?}));
            cm.focus(); cm.setSelection({{line: i, ch}}, {{line: i, ch: ch + {len}}});
            return i; }})()",
        len = text.chars().count()
    );
    let line = eval(tab, &js).as_i64().unwrap();
    assert!(line >= 0, "`{line_has}` is not in the editor");
    tab.type_str(with).unwrap();
    line as usize + 1
}

fn screenshot(tab: &Tab, name: &str) -> PathBuf {
    let png = tab
        .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    // The tests' own scratch directory under the target directory, wherever that is
    // (CARGO_TARGET_DIR may put it outside the checkout).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    path
}

fn launch(profile: &Path) -> (Browser, Arc<Tab>) {
    let flags = [
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    .map(std::ffi::OsStr::new);
    let options = LaunchOptions::default_builder()
        .path(Some(chromium()))
        .headless(true)
        .sandbox(false)
        .enable_gpu(false)
        .user_data_dir(Some(profile.to_path_buf()))
        .window_size(Some((1440, 900)))
        .args(flags.to_vec())
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let browser = Browser::new(options).expect("start Chromium");
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(30));
    (browser, tab)
}

#[test]
fn an_author_changes_a_multiplier_in_the_browser_and_leaves_with_a_patch_that_passes_check() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("rules");
    copy_rules_to(&served);
    let original = read_rules(&served);
    let pg = Playground::start(&["playground"], &served);
    let (browser, tab) = launch(&tmp.path().join("profile"));
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    tab.call_method(Cdp::SetDownloadBehavior {
        behavior: Cdp::SetDownloadBehaviorBehaviorOption::Allow,
        browser_context_id: None,
        download_path: Some(downloads.to_str().unwrap().to_string()),
        events_enabled: None,
    })
    .unwrap();

    tab.navigate_to(pg.page.as_deref().unwrap()).unwrap();
    tab.wait_until_navigated().unwrap();
    wait_idle(&tab);
    assert_eq!(
        eval(&tab, "document.getElementById('status').dataset.state"),
        "ok"
    );

    // The tree lists every rule file; open SDXL's from it.
    let listed = eval(
        &tab,
        "JSON.stringify([...document.querySelectorAll('#tree a[data-path]')].map(a => a.dataset.path))",
    );
    let mut listed: Vec<String> = serde_json::from_str(listed.as_str().unwrap()).unwrap();
    listed.sort();
    assert_eq!(listed, original.keys().cloned().collect::<Vec<_>>());
    tab.find_element("#tree a[data-path='kinds.toml']")
        .unwrap()
        .click()
        .unwrap();
    wait_for(
        &tab,
        "kinds.toml open",
        "playground.state.current === 'kinds.toml'",
    );
    tab.find_element("#tree a[data-path='families/sdxl10.toml']")
        .unwrap()
        .click()
        .unwrap();
    wait_for(
        &tab,
        "sdxl10.toml in the editor",
        "playground.editor.getValue().includes('family = \"sdxl10\"')",
    );

    // Change the latest version's multiplier (version 3 prices undated jobs): its examples no
    // longer hold.
    replace_in_editor(&tab, "multiplier = 1.0", "1.0", "1.5");
    wait_idle(&tab);
    let diags = eval(
        &tab,
        "JSON.stringify([...document.querySelectorAll('#diagnostics li[data-code]')].map(li => [li.dataset.code, li.dataset.file, Number(li.dataset.line)]))",
    );
    let diags: Vec<(String, String, usize)> =
        serde_json::from_str(diags.as_str().unwrap()).unwrap();
    // Its two 6-point examples (with and without a latency) fail.
    assert_eq!(diags.len(), 2, "{diags:?}");
    for (code, file, line) in &diags {
        assert_eq!(
            (code.as_str(), file.as_str()),
            ("example-failed", "families/sdxl10.toml")
        );
        assert!(sdxl_latest_lines(&original).contains(line), "line {line}");
    }
    let line = &diags[0].2;
    // Inline, at that line: a gutter marker and the message under it.
    let at_line = eval(
        &tab,
        &format!(
            "(() => {{ const info = playground.editor.lineInfo({});
                return !!(info.gutterMarkers && info.gutterMarkers['diag-gutter'])
                    && (info.widgets || []).some(w => w.node.dataset.code === 'example-failed'
                        && w.node.textContent.includes('expected 6.000000 points, got 9.000000')
                        && w.node.offsetHeight > 0); }})()",
            line - 1
        ),
    );
    assert_eq!(at_line, Value::Bool(true));
    assert_eq!(
        eval(&tab, "document.getElementById('status').textContent"),
        "✗ 2 errors, 0 warnings"
    );
    assert!(
        eval(&tab, "document.getElementById('jobs-note').textContent")
            .as_str()
            .unwrap()
            .contains("invalid")
    );
    screenshot(&tab, "playground-diagnostic.png");

    // Fix the examples: the rules are valid again.
    replace_in_editor(&tab, "inference_latency = 18.0, points = 6 }", "6", "9");
    wait_idle(&tab);
    replace_in_editor(&tab, "steps = 20, points = 6 }", "6", "9");
    wait_idle(&tab);
    assert_eq!(
        eval(&tab, "document.getElementById('status').dataset.state"),
        "ok"
    );
    assert_eq!(
        eval(
            &tab,
            "document.querySelectorAll('#diagnostics li[data-code]').length"
        ),
        0
    );
    assert_eq!(
        eval(
            &tab,
            "document.querySelector('#tree a[data-path=\"families/sdxl10.toml\"]').classList.contains('edited')"
        ),
        true
    );

    // Jobs: a file uploaded (a JSON array), then a job pasted (JSONL); an undated SDXL job is
    // priced by version 3: 1 → 1.5, and explained.
    let upload = tmp.path().join("jobs.json");
    std::fs::write(
        &upload,
        r#"[{"id": "u1", "model": "AnimagineXL", "width": 1024, "height": 1024, "steps": 20},
            {"id": "u2", "model": "BrainDance", "width": 512, "height": 512, "steps": 20}]"#,
    )
    .unwrap();
    tab.find_element("#upload")
        .unwrap()
        .set_input_files(&[upload.to_str().unwrap()])
        .unwrap();
    wait_for(
        &tab,
        "the uploaded jobs",
        "document.getElementById('jobs-input').value.includes('\"u2\"')",
    );
    wait_idle(&tab);
    let uploaded = eval(
        &tab,
        "JSON.stringify([...document.querySelectorAll('#jobs-table tbody tr')].map(tr => [tr.cells[1].textContent, tr.cells[7].textContent]))",
    );
    assert_eq!(uploaded, r#"[["u1","+3.000000"],["u2",""]]"#);
    eval(
        &tab,
        r#"(() => { const t = document.getElementById('jobs-input');
            t.value = '{"id": "p1", "model": "AnimagineXL", "width": 512, "height": 512, "steps": 20}\n';
            t.dispatchEvent(new Event('input')); })()"#,
    );
    wait_idle(&tab);
    let row = eval(
        &tab,
        "JSON.stringify([...document.querySelectorAll('#jobs-table tbody tr')].map(tr => [...tr.cells].slice(0, 8).map(td => td.textContent)))",
    );
    let rows: Vec<Vec<String>> = serde_json::from_str(row.as_str().unwrap()).unwrap();
    assert_eq!(
        rows,
        vec![vec![
            "1",
            "p1",
            "AnimagineXL",
            "ok",
            "sdxl10@3",
            "1.000000",
            "1.500000",
            "+0.500000"
        ]]
    );
    tab.find_element("#jobs-table button.explain")
        .unwrap()
        .click()
        .unwrap();
    let trace = wait_for(
        &tab,
        "the job's trace",
        "(document.querySelector('#jobs-table tr.trace') || {}).textContent",
    );
    let trace = trace.as_str().unwrap();
    assert!(
        trace.contains("sdxl10 version 3") && trace.contains("× 1.5 = 1.500000"),
        "{trace}"
    );

    // Impact: the diff report of the edit on the reference corpus.
    tab.find_element(".tabs button[data-tab='impact']")
        .unwrap()
        .click()
        .unwrap();
    let impact = eval(&tab, "document.getElementById('impact').innerText");
    let impact = impact.as_str().unwrap();
    for want in [
        "multiplier 1.0 → 1.5",
        "rule `sdxl10` version 3",
        "AnimagineXL",
        "+50.00%",
    ] {
        assert!(
            impact.contains(want),
            "`{want}` not in the impact panel:\n{impact}"
        );
    }
    let shot = screenshot(&tab, "playground.png");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // Changes: download the patch, apply it to a copy of rules/, and check it there.
    tab.find_element(".tabs button[data-tab='changes']")
        .unwrap()
        .click()
        .unwrap();
    tab.find_element("#download-patch")
        .unwrap()
        .click()
        .unwrap();
    let patch_file = downloads.join("rules.patch");
    let t0 = Instant::now();
    while !patch_file.is_file() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no download in {downloads:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let patch = std::fs::read_to_string(&patch_file).unwrap();
    assert_eq!(
        patch,
        eval(&tab, "document.getElementById('patch').textContent")
            .as_str()
            .unwrap()
    );
    let repo = tmp.path().join("repo");
    copy_rules_to(&repo.join("rules"));
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
    git(&["apply", patch_file.to_str().unwrap()]);
    let applied = read_rules(&repo.join("rules"));
    assert_ne!(applied, original);
    assert_eq!(
        applied["families/sdxl10.toml"],
        eval(&tab, "playground.state.edited['families/sdxl10.toml']")
            .as_str()
            .unwrap()
    );
    let out = jobpoints_in(&repo).arg("check").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The page's Content-Security-Policy blocked nothing it needs.
    assert_eq!(eval(&tab, "JSON.stringify(playground.violations)"), "[]");
    // The served rules never changed.
    assert_eq!(read_rules(&served), original);
    drop(browser);
}
