//! `[tokenizers]` of kinds.toml and the `tokens_of` of an input.
//!
//! A tokenizer's model file is part of the rule set (`tokenizers/NAME.model`, hashed like any
//! rule file) and pinned by its SHA-256 in the declaration: a file that does not match is
//! refused (`tokenizer-hash`), so a model can only change in a reviewed change of kinds.toml.
//! Each model is built once per rule set, here; every input that names it shares it.

use std::sync::Arc;

use indexmap::IndexMap;
use toml::Spanned;

use super::{KINDS_FILE, Sink, did_you_mean, span_of};
use crate::engine::model::InputType;
use crate::engine::tokens::{Counted, PromptTemplate, TextPath, Tokenizer, TokensOf, Tolerance};
use crate::rules::diagnostic::Code;
use crate::rules::files::{TOKENIZERS_DIR, is_tokenizer_file};
use crate::rules::schema::{ChatTemplate, PathToml, TokenizerFormat, TokenizerToml, TokensOfToml};

/// The declared tokenizers, by name.
pub(super) type Tokenizers = IndexMap<String, Declared>;

pub(super) struct Declared {
    /// `None` when the file could not be used (reported): inputs naming it are not checked
    /// further, so that one problem is reported once.
    model: Option<Arc<Tokenizer>>,
    chat_template: Option<ChatTemplate>,
}

/// Loads every declared tokenizer, checking its file against its pinned hash. (A model file
/// that no tokenizer declares is unused data: part of the rule set's hash, never loaded.)
pub(super) fn build(
    sink: &mut Sink,
    declared: IndexMap<String, Spanned<TokenizerToml>>,
) -> Tokenizers {
    let mut out = Tokenizers::new();
    for (name, spanned) in declared {
        let t = spanned.into_inner();
        let model = load_one(sink, &name, &t);
        out.insert(
            name,
            Declared {
                model,
                chat_template: t.chat_template.map(Spanned::into_inner),
            },
        );
    }
    out
}

fn load_one(sink: &mut Sink, name: &str, t: &TokenizerToml) -> Option<Arc<Tokenizer>> {
    let file = t.file.get_ref();
    if !is_tokenizer_file(file) {
        let msg = format!(
            "tokenizer `{name}`: `{file}` is not where tokenizer models live (`{TOKENIZERS_DIR}NAME.model`)"
        );
        let help = "put the model in tokenizers/ with the extension .model: only files there are read as tokenizers, with their own size limit";
        sink.error(
            Code::TokenizerFile,
            KINDS_FILE,
            span_of(&t.file),
            msg,
            Some(help),
        );
        return None;
    }
    let pinned = t.sha256.get_ref().to_ascii_lowercase();
    if pinned.len() != 64 || !pinned.bytes().all(|b| b.is_ascii_hexdigit()) {
        let msg = format!(
            "tokenizer `{name}`: `sha256` must be the file's SHA-256 in 64 hex digits, got `{}`",
            t.sha256.get_ref()
        );
        let help = "compute it with `sha256sum` and review the file first";
        sink.error(
            Code::BadType,
            KINDS_FILE,
            span_of(&t.sha256),
            msg,
            Some(help),
        );
        return None;
    }
    let files = sink.files();
    let Some(bytes) = files.files.get(file) else {
        if files.refused.contains_key(file) {
            // Refused unread (too large, a symlink out, ...): reported as such.
            return None;
        }
        let msg = format!("tokenizer `{name}`: its file `{file}` is not in the rule set");
        let help = "add the model file (see tokenizers/PROVENANCE.md for where it comes from) or fix the path";
        sink.error(
            Code::TokenizerFile,
            KINDS_FILE,
            span_of(&t.file),
            msg,
            Some(help),
        );
        return None;
    };
    let actual = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(bytes))
    };
    if actual != pinned {
        let msg = format!(
            "tokenizer `{name}`: `{file}` has SHA-256 {actual}, not the {pinned} its declaration pins"
        );
        let help = "the model file is not the one that was reviewed: restore it, or review the new file and pin its hash here";
        sink.error(
            Code::TokenizerHash,
            KINDS_FILE,
            span_of(&t.sha256),
            msg,
            Some(help),
        );
        return None;
    }
    let built = match t.format.get_ref() {
        TokenizerFormat::Sentencepiece => Tokenizer::sentencepiece(bytes, &actual),
    };
    match built {
        Ok(model) => Some(model),
        Err(e) => {
            let msg = format!("tokenizer `{name}`: `{file}`: {e}");
            sink.error(Code::TokenizerFile, KINDS_FILE, span_of(&t.file), msg, None);
            None
        }
    }
}

/// A path's `when`, before the inputs it names are known: resolved by the job kind.
pub(super) struct PendingWhen {
    /// Which of the input's `tokens_of` paths it conditions.
    pub path_index: usize,
    pub input: String,
    pub path: String,
    pub span: Option<std::ops::Range<usize>>,
}

/// The `tokens_of` of input `input` and its paths' pending `when`s, or `None` (reported) when
/// it cannot be used.
pub(super) fn tokens_of(
    sink: &mut Sink,
    tokenizers: &Tokenizers,
    templates: &Arc<[PromptTemplate]>,
    input: &str,
    ty: InputType,
    t: &Spanned<TokensOfToml>,
) -> Option<(TokensOf, Vec<PendingWhen>)> {
    let span = t.span();
    let t = t.get_ref();
    let mut ok = true;
    if ty != InputType::Int {
        let msg = format!(
            "input `{input}` is counted in tokens (`tokens_of`), so its type must be \"int\""
        );
        sink.error(Code::BadType, KINDS_FILE, Some(span.clone()), msg, None);
        ok = false;
    }
    let name = t.tokenizer.get_ref();
    let declared = tokenizers.get(name);
    if declared.is_none() {
        let msg = format!(
            "input `{input}` counts with tokenizer `{name}`, which `[tokenizers]` does not declare"
        );
        let help = match did_you_mean(name, tokenizers.keys().map(String::as_str)) {
            Some(hint) => format!("{hint} (or declare it under [tokenizers])"),
            None => {
                "declare it under [tokenizers] with its file and sha256, or fix the name".into()
            }
        };
        sink.error(
            Code::UnknownTokenizer,
            KINDS_FILE,
            span_of(&t.tokenizer),
            msg,
            Some(&help),
        );
        ok = false;
    }
    let (paths, chat) = match (&t.chat, &t.text) {
        (Some(p), None) => (p, true),
        (None, Some(p)) => (p, false),
        _ => {
            let msg = format!(
                "`tokens_of` of input `{input}` must give either `chat` (paths to a list of chat messages) or `text` (paths to strings or answer messages)"
            );
            sink.error(Code::BadType, KINDS_FILE, Some(span), msg, None);
            return None;
        }
    };
    if paths.get_ref().is_empty() {
        let msg = format!("`tokens_of` of input `{input}` gives no path");
        sink.error(Code::MissingField, KINDS_FILE, span_of(paths), msg, None);
        ok = false;
    }
    let help = "a path is keys separated by `.`, with `*` for every element of an array, `@json` for the JSON inside a string and `@template` for a templated prompt, e.g. \"result.Text.@json.*.message\"";
    let mut parsed = Vec::new();
    let mut pending = Vec::new();
    for p in paths.get_ref() {
        let entry = p.get_ref();
        let path = match TextPath::parse(entry.path()) {
            Ok(path) => path,
            Err(e) => {
                let msg = format!("input `{input}`: bad text path {e}");
                sink.error(Code::BadType, KINDS_FILE, span_of(p), msg, Some(help));
                ok = false;
                continue;
            }
        };
        ok &= templates_declared(sink, templates, input, &path, p);
        if let PathToml::When(w) = entry {
            let mut conditions = w.when.iter();
            match (conditions.next(), conditions.next()) {
                (Some((on, at)), None) => pending.push(PendingWhen {
                    path_index: parsed.len(),
                    input: on.clone(),
                    path: at.clone(),
                    span: span_of(p),
                }),
                _ => {
                    let msg = format!(
                        "input `{input}`: the `when` of path `{}` must name exactly one input and its path",
                        w.path
                    );
                    let help =
                        "e.g. when = { input_tokens = \"model_input.LLM.prompt.@template\" }";
                    sink.error(Code::BadType, KINDS_FILE, span_of(p), msg, Some(help));
                    ok = false;
                }
            }
        }
        parsed.push(path);
    }
    let mut tools = Vec::new();
    if let Some(tool_paths) = &t.tools {
        if !chat {
            let msg = format!(
                "input `{input}` counts `text`; `tools` (the tool definitions of a prompt) go with `chat`"
            );
            sink.error(Code::BadType, KINDS_FILE, span_of(tool_paths), msg, None);
            ok = false;
        }
        for p in tool_paths.get_ref() {
            match TextPath::parse(p.get_ref()) {
                Ok(path) if path.uses_templates() => {
                    let msg = format!(
                        "input `{input}`: tool definitions are JSON, not a templated prompt: `{}`",
                        p.get_ref()
                    );
                    sink.error(Code::BadType, KINDS_FILE, span_of(p), msg, None);
                    ok = false;
                }
                Ok(path) => tools.push(path),
                Err(e) => {
                    let msg = format!("input `{input}`: bad tools path {e}");
                    sink.error(Code::BadType, KINDS_FILE, span_of(p), msg, Some(help));
                    ok = false;
                }
            }
        }
    }
    let tolerance = match &t.claim_tolerance {
        None => Tolerance {
            tokens: 0,
            ratio: 0.0,
        },
        Some(c) => {
            let ratio = c.get_ref().ratio;
            if !(ratio.is_finite() && ratio >= 0.0) {
                let msg = format!(
                    "input `{input}`: `claim_tolerance.ratio` must be a finite number ≥ 0, got {ratio}"
                );
                sink.error(Code::BadBounds, KINDS_FILE, span_of(c), msg, None);
                ok = false;
            }
            Tolerance {
                tokens: c.get_ref().tokens,
                ratio,
            }
        }
    };
    let declared = declared?;
    let counted = if chat {
        match declared.chat_template {
            Some(template) => Counted::Chat(template),
            None => {
                let msg = format!(
                    "input `{input}` counts a chat prompt with tokenizer `{name}`, which has no `chat_template`"
                );
                let help = "declare the tokenizer's `chat_template`, or count `text` instead";
                sink.error(
                    Code::MissingField,
                    KINDS_FILE,
                    span_of(&t.tokenizer),
                    msg,
                    Some(help),
                );
                return None;
            }
        }
    } else {
        Counted::Text
    };
    let model = declared.model.clone()?;
    ok.then(|| {
        (
            TokensOf {
                tokenizer: name.clone(),
                model,
                counted,
                paths: parsed,
                tools,
                templates: templates.clone(),
                tolerance,
                assumptions: t.assumptions.clone(),
                source: t.source.clone(),
            },
            pending,
        )
    })
}

/// A path with `@template` needs a rule set that declares prompt templates.
fn templates_declared(
    sink: &mut Sink,
    templates: &[PromptTemplate],
    input: &str,
    path: &TextPath,
    at: &Spanned<PathToml>,
) -> bool {
    if !path.uses_templates() || !templates.is_empty() {
        return true;
    }
    let msg = format!(
        "input `{input}`: path `{}` reads a templated prompt, but kinds.toml declares no `[prompt_templates]` (or none that can be used)",
        path.text
    );
    let help = "declare the templates such prompts were written with under [prompt_templates.NAME], with their markers and source";
    sink.error(
        Code::PromptTemplate,
        KINDS_FILE,
        span_of(at),
        msg,
        Some(help),
    );
    false
}
