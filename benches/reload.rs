//! Hot-reload timings: how long a full validating load takes, and how long after a save the
//! new rules are active (debounce included). Rerun with `cargo bench --bench reload`
//! (`--profile dev` for a quick, slower-than-release run).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobpoints::internals::{RuleFiles, RulesHandle, RulesWatcher, load};

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn summary(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: n={} median={:.1} ms p95={:.1} ms max={:.1} ms",
        xs.len(),
        ms(p(0.5)),
        ms(p(0.95)),
        ms(*xs.last().unwrap())
    );
}

fn main() {
    const N: usize = 20;
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");

    let mut loads = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        let l = load(RuleFiles::from_dir(&rules).unwrap());
        assert!(l.ruleset.is_some());
        loads.push(t.elapsed());
    }
    summary("full load + validation of rules/", loads);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rules");
    copy_dir(&rules, &dir);
    let sd15 = dir.join("families/sd15.toml");
    let a = std::fs::read_to_string(&sd15).unwrap();
    let b = format!("{a}\n# edited\n");
    let handle = Arc::new(RulesHandle::open(RuleFiles::from_dir(&dir).unwrap()).unwrap());
    let h = handle.clone();
    let _watcher = RulesWatcher::spawn(&dir, move || {
        h.reload();
    })
    .unwrap();
    let mut latencies = Vec::new();
    for i in 0..N {
        let text = if i % 2 == 0 { &b } else { &a };
        let before = handle.current().hash.clone();
        let tmp_file = dir.join("families/.sd15.toml.tmp");
        std::fs::write(&tmp_file, text).unwrap();
        let t = Instant::now();
        std::fs::rename(&tmp_file, &sd15).unwrap();
        let deadline = t + Duration::from_secs(10);
        while handle.current().hash == before {
            assert!(Instant::now() < deadline, "reload {i} not seen in 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(t.elapsed());
    }
    summary(
        &format!(
            "save → active (rename-save, {} ms debounce + {} ms quiet)",
            jobpoints::internals::DEBOUNCE.as_millis(),
            jobpoints::internals::QUIET.as_millis()
        ),
        latencies,
    );
    hostile_check(&rules);
}

/// The worst a rules pull request can ask of `check` (and of every reload): a 1 MiB model rule
/// of versions whose formula burns about 90,000 rhai operations on every input (just under
/// the per-job limit), each with an example. Before the check budget (#11) its grids alone
/// would have taken about 1.5 hours; the issue asks for under 10 s.
fn hostile_check(rules: &Path) {
    let mut text =
        String::from("[rule]\nmodel = \"Burner\"\nfamily = \"sd15\"\nkind = \"image\"\n");
    let start = jiff::Timestamp::from_second(946_684_800).unwrap(); // 2000-01-01
    let mut versions = 0;
    while text.len() < 1000 * 1024 {
        versions += 1;
        let from = start
            .checked_add(jiff::SignedDuration::from_hours(versions))
            .unwrap();
        text.push_str(&format!(
            "\n[[version]]\nversion = {versions}\neffective_from = {}\nsource = \"burns operations\"\nexpr = \"let i = 0; while i < 9000 {{ i += 1; }} steps * 0.0 + 1.0\"\nmin = {{ pixels = 262144, steps = 20 }}\nexamples = [{{ width = 512, height = 512, steps = 20, points = 1.0 }}]\n",
            from.strftime("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    let mut files = RuleFiles::from_dir(rules).unwrap();
    files
        .files
        .insert("models/burner.toml".into(), text.clone().into_bytes());
    let mut times = Vec::new();
    let mut codes = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let loaded = load(files.clone());
        times.push(t.elapsed());
        codes = loaded.diagnostics.iter().map(|d| d.code()).collect();
    }
    summary(
        &format!(
            "check of a {} KiB rule set of {versions} versions burning ~90k operations each (diagnostics: {codes:?})",
            text.len() / 1024
        ),
        times,
    );
}
