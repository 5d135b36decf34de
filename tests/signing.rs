//! Signed rule sets (#25): `keygen`, `sign`, and `--trusted-keys` on `check`, `serve` and
//! `watch`'s handle: an unsigned or wrongly signed set is refused, and a running server keeps
//! its last good rules until a trusted signature comes.

use std::path::Path;

use crate::serve::{Server, braindance};
use crate::util::{copy_rules_to, jobpoints_in, poll, set_sd15_v2_multiplier};

/// `keygen NAME` in `dir`: the public key it prints.
fn keygen(dir: &Path, name: &str) -> String {
    let out = jobpoints_in(dir).args(["keygen", name]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let public = line.split_whitespace().next().unwrap().to_string();
    assert_eq!(public.len(), 64, "{line}");
    // The printed line is itself a trusted-keys file line.
    std::fs::write(dir.join(format!("{name}.pub")), &line).unwrap();
    public
}

fn sign(dir: &Path, key: &str) -> std::process::Output {
    jobpoints_in(dir)
        .args(["sign", "--rules", "rules", "--key", key])
        .output()
        .unwrap()
}

fn check(dir: &Path, trusted: &str) -> (i32, String) {
    let out = jobpoints_in(dir)
        .args(["check", "--rules", "rules", "--trusted-keys", trusted])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), text)
}

#[test]
fn keygen_writes_a_private_key_once_and_prints_the_public_key() {
    let tmp = tempfile::tempdir().unwrap();
    let public = keygen(tmp.path(), "a.key");
    let text = std::fs::read_to_string(tmp.path().join("a.key")).unwrap();
    assert!(
        !text.contains(&public),
        "the file holds the secret, not the public key"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join("a.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never overwritten.
    let again = jobpoints_in(tmp.path())
        .args(["keygen", "a.key"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("a.key")).unwrap(),
        text
    );
    // Two keys differ.
    assert_ne!(keygen(tmp.path(), "b.key"), public);
}

#[test]
fn check_accepts_only_rules_signed_by_a_trusted_key_over_these_exact_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_rules_to(&dir.join("rules"));
    keygen(dir, "gov.key");
    keygen(dir, "mallory.key");

    let (code, text) = check(dir, "gov.key.pub");
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("untrusted-rules") && text.contains("not signed"),
        "{text}"
    );

    // Signed by a key nobody trusts.
    assert!(sign(dir, "mallory.key").status.success());
    let (code, text) = check(dir, "gov.key.pub");
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("no valid signature by a trusted key"),
        "{text}"
    );

    // Signed by the trusted key too: accepted.
    let out = sign(dir, "gov.key");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 signatures"));
    let (code, text) = check(dir, "gov.key.pub");
    assert_eq!(code, 0, "{text}");

    // Any rule file changed after signing: refused, naming why.
    set_sd15_v2_multiplier(&dir.join("rules"), "0.3", "0.6");
    let (code, text) = check(dir, "gov.key.pub");
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("changed since they were signed"), "{text}");

    // A signature edited by hand: refused as forged.
    assert!(sign(dir, "gov.key").status.success());
    let sig_path = dir.join("rules/ruleset.sig");
    let sig = std::fs::read_to_string(&sig_path).unwrap();
    let at = sig.rfind("\"signature\": \"").unwrap() + "\"signature\": \"".len();
    let mut edited = sig.clone();
    let flipped = if &sig[at..at + 1] == "0" { "1" } else { "0" };
    edited.replace_range(at..at + 1, flipped);
    std::fs::write(&sig_path, edited).unwrap();
    let (code, text) = check(dir, "gov.key.pub");
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("does not verify"), "{text}");
}

#[test]
fn keys_inside_the_rules_directory_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_rules_to(&dir.join("rules"));
    keygen(&dir.join("rules"), "inside.key");
    let out = sign(dir, "rules/inside.key");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the rules directory"));
    assert!(!dir.join("rules/ruleset.sig").exists());
    let (code, text) = check(dir, "rules/inside.key.pub");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("inside the rules directory"), "{text}");
}

#[test]
fn serve_refuses_unsigned_rules_and_keeps_the_last_good_set_until_a_trusted_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rules = dir.join("rules");
    copy_rules_to(&rules);
    keygen(dir, "gov.key");
    let trusted = dir.join("gov.key.pub");
    let trusted = trusted.to_str().unwrap();

    // Unsigned at start: not serving, exit 3.
    let out = jobpoints_in(dir)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rules",
            "rules",
            "--trusted-keys",
            trusted,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not signed"));
    assert!(out.stdout.is_empty(), "never listened");

    assert!(sign(dir, "gov.key").status.success());
    let s = Server::start(&rules, &["--trusted-keys", trusted]);
    let signed = s.score(braindance());
    let signed_hash = signed["ruleset"].as_str().unwrap().to_string();

    // A valid but unsigned edit: refused, the signed set keeps serving.
    set_sd15_v2_multiplier(&rules, "0.3", "0.6");
    let r = poll(10, "the unsigned reload to be refused", || {
        let r = s.rules();
        (r["reloads"]["failed"] == 1).then_some(r)
    });
    let error = r["last_error"]["message"].as_str().unwrap();
    assert!(
        error.contains("not trusted") && error.contains("changed since"),
        "{error}"
    );
    assert_eq!(s.score(braindance())["ruleset"], signed_hash.as_str());
    let (_, metrics) = s.get("/metrics");
    assert!(
        metrics.contains("jobpoints_rules_reload_failing 1\n"),
        "{metrics}"
    );

    // Signing the edit (only ruleset.sig changes) is what lets it in.
    assert!(sign(dir, "gov.key").status.success());
    let hash = poll(10, "the signed edit to be served", || {
        let h = s.score(braindance())["ruleset"]
            .as_str()
            .unwrap()
            .to_string();
        (h != signed_hash).then_some(h)
    });
    assert_eq!(s.rules()["last_error"], serde_json::Value::Null, "{hash}");
}
