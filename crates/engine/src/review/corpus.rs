//! The reference corpus compiled into the binary: what `jobpoints diff` scores when there is
//! no `./corpus`, and what the playground's impact panel always scores.

use std::io::BufRead;

use include_dir::{Dir, include_dir};

use crate::ledger::reader::{JobReader, Ledger};
use crate::review::report::Corpus;

/// The repository's `corpus/`, compiled in so `diff` works from any directory.
static EMBEDDED_CORPUS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/corpus");

/// Every `.jsonl` file of the built-in corpus, in name order, named `<built-in corpus>/FILE`.
pub fn builtin() -> Corpus {
    builtin_files()
        .into_iter()
        .map(|(name, bytes)| {
            let input: Box<dyn BufRead + Send> = Box::new(bytes);
            (name, Ledger::new(JobReader::new(input)))
        })
        .collect()
}

/// The built-in corpus's files as bytes, named and ordered as [`builtin`] reads them.
pub fn builtin_files() -> Vec<(String, &'static [u8])> {
    let mut files: Vec<_> = EMBEDDED_CORPUS
        .files()
        .filter(|f| f.path().extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort_by_key(|f| f.path());
    files
        .into_iter()
        .map(|f| {
            let name = format!("<built-in corpus>/{}", f.path().display());
            (name, f.contents())
        })
        .collect()
}
