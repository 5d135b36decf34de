//! `jobpoints schema`: the JSON Schemas of the rule files, for editors with a TOML language
//! server. Generated from the types that parse the files, so they cannot drift from `check`.

use std::path::PathBuf;

use crate::cli::{CliError, Exit, Stdout, note};
use jobpoints::rules::json_schema::schema_files;

/// Which schema to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// kinds.schema.json, for kinds.toml.
    Kinds,
    /// policy.schema.json, for policy.toml.
    Policy,
    /// catalog.schema.json, for catalog.toml.
    Catalog,
    /// rule.schema.json, for family and model rules (families/*.toml, models/*.toml).
    Rule,
}

impl SchemaKind {
    fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Kinds => "kinds.schema.json",
            SchemaKind::Policy => "policy.schema.json",
            SchemaKind::Catalog => "catalog.schema.json",
            SchemaKind::Rule => "rule.schema.json",
        }
    }
}

/// Arguments of `jobpoints schema`.
#[derive(Debug, Clone, clap::Args)]
pub struct SchemaArgs {
    /// Print this file kind's schema to stdout (or, with --out, write only it).
    #[arg(value_enum, required_unless_present = "out")]
    pub kind: Option<SchemaKind>,
    /// Write the schemas into this directory (created if needed) as kinds.schema.json,
    /// policy.schema.json, catalog.schema.json and rule.schema.json, replacing those files.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(args: SchemaArgs) -> Result<Exit, CliError> {
    let files = schema_files()
        .into_iter()
        .filter(|f| args.kind.is_none_or(|k| k.file_name() == f.name));
    let Some(dir) = args.out else {
        let mut out = Stdout::new();
        for f in files {
            out.write_text(&f.text)?;
        }
        out.flush_checked()?;
        return Ok(Exit::Ok);
    };
    let create = |path: &PathBuf, source| CliError::Create {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(|e| create(&dir, e))?;
    for f in files {
        let path = dir.join(f.name);
        std::fs::write(&path, &f.text).map_err(|e| create(&path, e))?;
        note!("wrote {} ({})", path.display(), f.applies_to);
    }
    Ok(Exit::Ok)
}
