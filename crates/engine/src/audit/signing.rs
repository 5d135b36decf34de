//! Signed rule sets (#25): a detached Ed25519 signature over a rule set's hash, kept beside
//! the rules as [`SIGNATURE_FILE`], and the check that a set is signed by a trusted key.
//!
//! A signature covers the rule set's hash, which covers every rule file byte for byte: the
//! rules cannot change without the signature failing, and a signature made for one set proves
//! nothing about another of the same directory name. The signature file is not a rule file,
//! so adding it changes no hash. Keys are never read from the rules directory: whoever can
//! change the rules must not also hold what makes them trusted.

use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The signature file, at the root of the rules directory.
pub const SIGNATURE_FILE: &str = "ruleset.sig";
/// The `format` of a signature file.
pub const SIGNATURE_FORMAT: &str = "jobpoints-ruleset-signature/1";
/// What is signed is this prefix and the hash, so a rule-set signature can never be taken for
/// a signature of anything else made with the same key.
const DOMAIN: &[u8] = b"jobpoints rule set\n";
/// A signature file is a few hundred bytes; anything far larger is not one.
const MAX_SIGNATURE_FILE_BYTES: u64 = 64 * 1024;

/// Why a key, a key list or a signature could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error(
        "the rules are not signed: `{SIGNATURE_FILE}` is missing (sign them with `jobpoints sign`)"
    )]
    Unsigned,
    #[error("`{SIGNATURE_FILE}` cannot be used: {0}")]
    Unreadable(String),
    #[error(
        "`{SIGNATURE_FILE}` signs the rule set {signed}, not these rules ({actual}): they changed since they were signed"
    )]
    OtherRuleSet { signed: String, actual: String },
    #[error("`{SIGNATURE_FILE}` has no valid signature by a trusted key (signed by: {signers})")]
    Untrusted { signers: String },
    #[error("the signature by {key} does not verify: the file was edited or the signature forged")]
    Invalid { key: String },
    #[error("{0}")]
    Key(String),
}

/// A private signing key: 32 bytes, written as 64 hex digits.
pub struct SigningKeyText(SigningKey);

impl fmt::Debug for SigningKeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "SigningKeyText({})", self.public_hex())
    }
}

impl SigningKeyText {
    /// A key from its 32 secret bytes (e.g. from the operating system's random source).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SigningKeyText(SigningKey::from_bytes(&seed))
    }

    /// Reads a key: 64 hex digits, blank lines and `#` comments around them allowed.
    pub fn parse(text: &str) -> Result<Self, TrustError> {
        let hex_text = meaningful_lines(text).next().unwrap_or("");
        let bytes = hex32(hex_text).map_err(|why| {
            TrustError::Key(format!("a signing key is 64 hex digits (32 bytes); {why}"))
        })?;
        Ok(Self::from_seed(bytes))
    }

    /// The key as its file holds it.
    pub fn to_text(&self) -> String {
        format!(
            "# jobpoints rule-set signing key (secret: keep it out of the rules directory)\n{}\n",
            hex::encode(self.0.to_bytes())
        )
    }

    /// The public key, as 64 hex digits: what a `--trusted-keys` file lists.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    /// Adds (or renews) this key's signature of the rule set `hash` to `existing`, dropping
    /// signatures of another rule set.
    pub fn sign(&self, hash: &str, existing: Option<SignatureFile>) -> SignatureFile {
        let public_key = self.public_hex();
        let mut signatures: Vec<Signed> = existing
            .filter(|e| e.ruleset == hash)
            .map(|e| e.signatures)
            .unwrap_or_default();
        signatures.retain(|s| s.public_key != public_key);
        let signature = self.0.sign(&message(hash));
        signatures.push(Signed {
            public_key,
            signature: hex::encode(signature.to_bytes()),
        });
        SignatureFile {
            format: SIGNATURE_FORMAT.to_string(),
            ruleset: hash.to_string(),
            signatures,
        }
    }
}

/// `ruleset.sig`: the rule set's hash and one signature per signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub format: String,
    pub ruleset: String,
    pub signatures: Vec<Signed>,
}

/// One signer's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// 64 hex digits.
    pub public_key: String,
    /// 128 hex digits.
    pub signature: String,
}

impl SignatureFile {
    pub fn parse(text: &str) -> Result<Self, TrustError> {
        let file: SignatureFile =
            serde_json::from_str(text).map_err(|e| TrustError::Unreadable(e.to_string()))?;
        if file.format != SIGNATURE_FORMAT {
            return Err(TrustError::Unreadable(format!(
                "its format is `{}`, expected `{SIGNATURE_FORMAT}`",
                file.format
            )));
        }
        Ok(file)
    }

    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("strings only");
        text.push('\n');
        text
    }

    /// Reads `ruleset.sig` of a rules directory: a regular file (not a link, a FIFO or a
    /// device) of at most 64 KiB. `Ok(None)` when there is none.
    pub fn read_from(dir: &Path) -> Result<Option<Self>, TrustError> {
        let path = dir.join(SIGNATURE_FILE);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TrustError::Unreadable(e.to_string())),
        };
        if !meta.file_type().is_file() {
            return Err(TrustError::Unreadable(
                "it is not a regular file (a link, a directory or a device)".into(),
            ));
        }
        if meta.len() > MAX_SIGNATURE_FILE_BYTES {
            return Err(TrustError::Unreadable(format!(
                "it has {} bytes; a signature file has at most {MAX_SIGNATURE_FILE_BYTES}",
                meta.len()
            )));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| TrustError::Unreadable(e.to_string()))?;
        Self::parse(&text).map(Some)
    }
}

/// The public keys whose signatures make a rule set trusted (`--trusted-keys FILE`): one key
/// per line, 64 hex digits, optionally followed by a name; `#` starts a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<(VerifyingKey, String)>,
}

impl TrustedKeys {
    pub fn parse(text: &str) -> Result<Self, TrustError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (hex_text, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let key = hex32(hex_text)
                .ok()
                .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                .ok_or_else(|| {
                    TrustError::Key(format!(
                        "line {}: `{hex_text}` is not a public key (64 hex digits, as `jobpoints keygen` prints)",
                        n + 1
                    ))
                })?;
            let name = if name.trim().is_empty() {
                hex_text.to_ascii_lowercase()
            } else {
                format!("{} ({})", name.trim(), hex_text.to_ascii_lowercase())
            };
            keys.push((key, name));
        }
        if keys.is_empty() {
            return Err(TrustError::Key(
                "it lists no public key: no rule set could be trusted".into(),
            ));
        }
        Ok(TrustedKeys { keys })
    }

    /// Checks that `signatures` sign the rule set `hash` with at least one trusted key, and
    /// that no signature by a trusted key is broken. Returns the trusted signer's name.
    pub fn check(&self, hash: &str, file: Option<&SignatureFile>) -> Result<String, TrustError> {
        let file = file.ok_or(TrustError::Unsigned)?;
        if file.ruleset != hash {
            return Err(TrustError::OtherRuleSet {
                signed: file.ruleset.clone(),
                actual: hash.to_string(),
            });
        }
        let message = message(hash);
        let mut trusted_signer = None;
        for s in &file.signatures {
            let Some((key, name)) = (hex32(&s.public_key).ok())
                .and_then(|b| self.keys.iter().find(|(k, _)| k.to_bytes() == b))
            else {
                continue; // an unknown signer proves nothing either way
            };
            let signature = hex::decode(&s.signature)
                .ok()
                .and_then(|b| Signature::from_slice(&b).ok());
            match signature {
                Some(sig) if key.verify(&message, &sig).is_ok() => {
                    trusted_signer.get_or_insert_with(|| name.clone());
                }
                _ => return Err(TrustError::Invalid { key: name.clone() }),
            }
        }
        trusted_signer.ok_or_else(|| TrustError::Untrusted {
            signers: if file.signatures.is_empty() {
                "nobody".into()
            } else {
                (file.signatures.iter())
                    .map(|s| s.public_key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }

    /// Checks the signature file of the rules directory `dir` for the rule set `hash`.
    pub fn check_dir(&self, dir: &Path, hash: &str) -> Result<String, TrustError> {
        let file = SignatureFile::read_from(dir)?;
        self.check(hash, file.as_ref())
    }
}

fn message(hash: &str) -> Vec<u8> {
    [DOMAIN, hash.as_bytes()].concat()
}

fn meaningful_lines(text: &str) -> impl Iterator<Item = &str> {
    (text.lines())
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
}

fn hex32(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("`{}…`: {e}", prefix(text)))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("found {} bytes", b.len()))
}

fn prefix(text: &str) -> &str {
    text.get(..8).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKeyText {
        SigningKeyText::from_seed([n; 32])
    }

    fn trusted(keys: &[&SigningKeyText]) -> TrustedKeys {
        let text: String = keys.iter().map(|k| k.public_hex() + " someone\n").collect();
        TrustedKeys::parse(&text).unwrap()
    }

    #[test]
    fn a_signature_by_a_trusted_key_over_the_same_hash_is_accepted() {
        let k = key(1);
        let file = k.sign("abc", None);
        assert_eq!(
            trusted(&[&k]).check("abc", Some(&file)).unwrap(),
            format!("someone ({})", k.public_hex())
        );
        // Round trip through the file's text.
        let again = SignatureFile::parse(&file.to_text()).unwrap();
        assert!(trusted(&[&k]).check("abc", Some(&again)).is_ok());
    }

    #[test]
    fn unsigned_other_set_untrusted_and_forged_are_each_refused() {
        let (k, other) = (key(1), key(2));
        let t = trusted(&[&k]);
        assert_eq!(t.check("abc", None), Err(TrustError::Unsigned));
        let file = k.sign("abc", None);
        assert!(matches!(
            t.check("abd", Some(&file)),
            Err(TrustError::OtherRuleSet { .. })
        ));
        assert!(matches!(
            t.check("abc", Some(&other.sign("abc", None))),
            Err(TrustError::Untrusted { .. })
        ));
        // A signature of another hash, moved onto this one.
        let mut forged = file.clone();
        forged.signatures[0].signature = k.sign("xyz", None).signatures[0].signature.clone();
        assert!(matches!(
            t.check("abc", Some(&forged)),
            Err(TrustError::Invalid { .. })
        ));
        // One flipped hex digit.
        let mut edited = file;
        let s = &mut edited.signatures[0].signature;
        let flipped = if s.starts_with('0') { "1" } else { "0" };
        s.replace_range(..1, flipped);
        assert!(matches!(
            t.check("abc", Some(&edited)),
            Err(TrustError::Invalid { .. })
        ));
    }

    #[test]
    fn a_second_signer_is_added_and_resigning_replaces_only_ones_own() {
        let (a, b) = (key(1), key(2));
        let file = b.sign("abc", Some(a.sign("abc", None)));
        assert_eq!(file.signatures.len(), 2);
        let file = a.sign("abc", Some(file));
        assert_eq!(file.signatures.len(), 2);
        // Signing another set drops the old set's signatures.
        assert_eq!(a.sign("new", Some(file)).signatures.len(), 1);
        assert!(
            trusted(&[&b])
                .check("abc", Some(&b.sign("abc", None)))
                .is_ok()
        );
    }

    #[test]
    fn key_files_are_read_with_comments_and_bad_ones_are_named() {
        let k = key(7);
        assert_eq!(
            SigningKeyText::parse(&k.to_text()).unwrap().public_hex(),
            k.public_hex()
        );
        assert!(SigningKeyText::parse("abcd").is_err());
        let e = TrustedKeys::parse("# none\n\nzz not-a-key\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        assert!(TrustedKeys::parse("# nothing\n").is_err());
        assert!(!format!("{k:?}").contains(&hex::encode([7u8; 32])));
    }
}
