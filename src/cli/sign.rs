//! `jobpoints keygen` and `jobpoints sign`: signing rule sets (#25), and `--trusted-keys`,
//! which `check`, `serve` and `watch` share.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::{CliError, Exit, RulesArg, Stdout, rules_invalid};
use jobpoints::audit::signing::{SIGNATURE_FILE, SignatureFile, SigningKeyText, TrustedKeys};
use jobpoints::engine::model::RulesOrigin;

/// Key and key-list files are a few lines; anything larger is not one.
const MAX_KEY_FILE_BYTES: u64 = 1 << 20;

/// `--trusted-keys FILE`: require the rules to be signed by one of these keys.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustedKeysArg {
    /// Accept only rules signed by one of the public keys in FILE (one per line, 64 hex
    /// digits as `jobpoints keygen` prints, then an optional name; `#` comments). The
    /// signature is `ruleset.sig` in the rules directory (`jobpoints sign` writes it); an
    /// unsigned or wrongly signed set is refused like an invalid one. FILE must not be inside
    /// the rules directory.
    #[arg(long, value_name = "FILE", env = "JOBPOINTS_TRUSTED_KEYS")]
    pub trusted_keys: Option<PathBuf>,
}

impl TrustedKeysArg {
    /// The trusted keys, if asked for; `rules` is the rules directory in use, which must not
    /// hold the key list (whoever edits the rules would choose whom to trust).
    pub fn load(&self, rules: Option<&Path>) -> Result<Option<TrustedKeys>, CliError> {
        let Some(path) = &self.trusted_keys else {
            return Ok(None);
        };
        refuse_inside(path, rules, "the trusted keys")?;
        let text = read_small(path)?;
        TrustedKeys::parse(&text)
            .map(Some)
            .map_err(|e| CliError::Usage(format!("`{}`: {e}", path.display())))
    }
}

/// Arguments of `jobpoints keygen`.
#[derive(Debug, Clone, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the new secret key (created with mode 0600; never overwritten). Keep it
    /// out of the rules directory and out of the repository.
    #[arg(value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `jobpoints sign`.
#[derive(Debug, Clone, clap::Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// The secret key file (from `jobpoints keygen`); not inside the rules directory.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "key_env",
        conflicts_with = "key_env"
    )]
    pub key: Option<PathBuf>,
    /// Read the secret key (64 hex digits) from this environment variable instead, e.g. a CI
    /// secret.
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
}

pub fn keygen(args: KeygenArgs) -> Result<Exit, CliError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| CliError::Usage(format!("no random source for a key: {e}")))?;
    let key = SigningKeyText::from_seed(seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let create = |source| CliError::Create {
        path: args.out.clone(),
        source,
    };
    let mut file = options.open(&args.out).map_err(create)?;
    file.write_all(key.to_text().as_bytes()).map_err(create)?;
    file.sync_all().map_err(create)?;
    let mut out = Stdout::new();
    out.write_text(&format!(
        "{}  # public key of {}: list it in a --trusted-keys file\n",
        key.public_hex(),
        args.out.display()
    ))?;
    Ok(Exit::Ok)
}

pub fn sign(args: SignArgs) -> Result<Exit, CliError> {
    let loaded = args.rules.load()?;
    let RulesOrigin::Directory(dir) = &loaded.files.origin else {
        return Err(CliError::Usage(format!(
            "only a rules directory can be signed, not {} (give --rules DIR)",
            loaded.files.origin
        )));
    };
    let dir = dir.clone();
    let Some(rules) = &loaded.ruleset else {
        return Err(rules_invalid(
            &loaded,
            format!(
                "the rules in `{}` are invalid; not signing them",
                dir.display()
            ),
        ));
    };
    let key_text = match (&args.key, &args.key_env) {
        (Some(path), _) => {
            refuse_inside(path, Some(&dir), "the signing key")?;
            read_small(path)?
        }
        (None, Some(var)) => std::env::var(var).map_err(|e| {
            CliError::Usage(format!(
                "--key-env {var}: the variable cannot be read ({e})"
            ))
        })?,
        (None, None) => unreachable!("clap requires --key or --key-env"),
    };
    let key = SigningKeyText::parse(&key_text).map_err(|e| CliError::Usage(e.to_string()))?;
    // A file that does not parse is replaced: it signed nothing usable.
    let existing = SignatureFile::read_from(&dir).ok().flatten();
    let signed = key.sign(&rules.hash, existing);
    let path = dir.join(SIGNATURE_FILE);
    // Written beside and renamed, so a watching server never reads half a signature.
    let tmp = dir.join(format!(".{SIGNATURE_FILE}.tmp"));
    let create = |source| CliError::Create {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, signed.to_text()).map_err(create)?;
    std::fs::rename(&tmp, &path).map_err(create)?;
    let mut out = Stdout::new();
    out.write_text(&format!(
        "signed the rule set {} in `{}` with {} ({} signature{} in {SIGNATURE_FILE})\n",
        rules.hash,
        dir.display(),
        key.public_hex(),
        signed.signatures.len(),
        if signed.signatures.len() == 1 {
            ""
        } else {
            "s"
        },
    ))?;
    Ok(Exit::Ok)
}

/// Refuses a key file inside the rules directory.
fn refuse_inside(path: &Path, rules: Option<&Path>, what: &str) -> Result<(), CliError> {
    let (Some(rules), Ok(file)) = (rules, std::fs::canonicalize(path)) else {
        return Ok(());
    };
    if let Ok(rules) = std::fs::canonicalize(rules)
        && file.starts_with(&rules)
    {
        return Err(CliError::Usage(format!(
            "{what} `{}` is inside the rules directory `{}`: whoever can change the rules would \
             also choose the keys; keep it elsewhere",
            path.display(),
            rules.display()
        )));
    }
    Ok(())
}

fn read_small(path: &Path) -> Result<String, CliError> {
    let open = |source| CliError::Open {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(open)?;
    if !meta.is_file() || meta.len() > MAX_KEY_FILE_BYTES {
        return Err(CliError::Usage(format!(
            "`{}` is not a key file (a regular file of at most 1 MiB)",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(open)
}
