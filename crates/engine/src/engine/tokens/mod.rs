//! Token counts of a job's text, for inputs declared with `tokens_of` in kinds.toml.
//!
//! The network's LLM jobs carry their prompt and their answer, not token counts. An input such
//! as `input_tokens` may then be counted from the job's text with a tokenizer that the rule
//! set ships (`rules/tokenizers/`), exactly as the reference implementation counts:
//!
//! - [`Tokenizer`]: a SentencePiece model, built once per rule set from its pinned file (and
//!   shared by rule sets holding the same file, by SHA-256).
//! - [`TokensOf`] ([`count`]): where an input's text is in a job ([`TextPath`]s, the first
//!   that reads wins) and what is counted ([`Counted`]: a chat prompt, or text).
//! - [`template::PromptTemplate`]: a prompt written into one string with a template (the
//!   network's first era), read back into its messages.
//! - [`pyjson`]: tool definitions and calls as the JSON text that is counted.
//!
//! What is counted is decided here once, for every reader; it is documented (with its sources)
//! in rules/README.md, "Counting tokens from text".

pub mod count;
pub mod pyjson;
pub mod template;

use std::sync::{Arc, Mutex, Weak};

pub use count::{CountError, Counted, TextPath, TokensOf, Tolerance, ToolsCount, When};
pub use template::{PromptTemplate, RoleMarks};

/// Largest tokenizer model file a rule set may hold (`tokenizers/*.model`). Other rule files
/// are limited to [`crate::rules::files::MAX_RULE_FILE_BYTES`] (1 MiB); SentencePiece models
/// of 32k–64k pieces are 0.5–1 MiB (the shipped `mistral-v1.model` is 493,443 bytes).
pub const MAX_TOKENIZER_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Most bytes of text counted for one input of one job; a job with more is `invalid`.
/// Mixtral 8x7b's context is 32,768 tokens and no piece of `mistral-v1` is longer than 25
/// bytes, so no prompt or answer the model processed is longer than 800 KiB. Counting 1 MiB
/// takes at most about 0.9 s on one core (the worst case: one character repeated).
pub const MAX_COUNTED_TEXT_BYTES: usize = 1024 * 1024;

/// The file format of a tokenizer model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerFormat {
    /// A SentencePiece `.model` file (protobuf), as `sentencepiece` and `mistral-common` load
    /// it.
    Sentencepiece,
}

/// How a chat prompt (a list of messages) becomes the tokens a model processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
pub enum ChatTemplate {
    /// `mistral-common`'s `encode_chat_completion` for tokenizer v1 (Mistral 7B, Mixtral
    /// 8x7B): `<s>`, then `[INST] … [/INST]` around each user turn (the system prompt joined
    /// into the first), each assistant turn followed by `</s>`; see [`Tokenizer::count_chat`].
    #[serde(rename = "mistral-v1")]
    MistralV1,
}

impl ChatTemplate {
    pub fn name(self) -> &'static str {
        match self {
            ChatTemplate::MistralV1 => "mistral-v1",
        }
    }
}

/// A tokenizer model, ready to count. Shared (`Arc`) by every input that names it.
pub struct Tokenizer {
    kit: kitoken::Kitoken,
    /// SHA-256 of the model file, hex.
    sha256: String,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// Models built in this process, by SHA-256: a reload, a `diff` of two rule sets or a
/// playground request with the same file reuses the model instead of converting it again
/// (about 60 ms for `mistral-v1`).
static BUILT: Mutex<Vec<(String, Weak<Tokenizer>)>> = Mutex::new(Vec::new());

impl Tokenizer {
    /// The SentencePiece model in `bytes`, whose SHA-256 (hex) is `sha256`. A malformed file
    /// is an error, never a panic.
    pub fn sentencepiece(bytes: &[u8], sha256: &str) -> Result<Arc<Tokenizer>, String> {
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        built.retain(|(_, w)| w.strong_count() > 0);
        if let Some(t) = (built.iter())
            .find(|(h, _)| h == sha256)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(t);
        }
        // The converter parses untrusted bytes: a panic in it is a refused file.
        let kit = std::panic::catch_unwind(|| kitoken::Kitoken::from_sentencepiece_slice(bytes))
            .map_err(|_| "the SentencePiece converter failed on this file".to_string())?
            .map_err(|e| format!("not a SentencePiece model this engine can use: {e}"))?;
        let t = Arc::new(Tokenizer {
            kit,
            sha256: sha256.to_string(),
        });
        built.push((sha256.to_string(), Arc::downgrade(&t)));
        Ok(t)
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The number of tokens of `text` as `SentencePieceProcessor.encode(text)` gives them: no
    /// BOS or EOS; the model's dummy-prefix space is added; `<s>` or `[INST]` written in the
    /// text are plain text. `""` is 0 tokens.
    pub fn count(&self, text: &str) -> Result<u64, String> {
        Ok(self.ids(text)?.len() as u64)
    }

    /// The token ids [`count`](Self::count) counts (the parity test compares them with the
    /// reference's).
    pub fn ids(&self, text: &str) -> Result<Vec<u32>, String> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        // Byte fallback covers every input, so encoding cannot fail; should the library panic
        // or fail anyway, the job fails (status `error`) and the process goes on.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.kit.encode(text, false)
        }))
        .map_err(|_| "the tokenizer failed on this text".to_string())?
        .map_err(|e| format!("the tokenizer cannot encode this text: {e}"))
    }

    /// The number of tokens `mistral-common` 1.13.1's `encode_chat_completion` gives for
    /// `messages` with tokenizer v1 (`MistralTokenizer.v1()`; the same code is in 1.0.2),
    /// which is what an OpenAI-compatible server that tokenizes with it reports as
    /// `usage.prompt_tokens`:
    ///
    /// 1. the system prompt is the non-empty system contents joined with `"\n\n"`;
    /// 2. runs of messages of one role are merged with `"\n\n"` (empty contents skipped); a
    ///    system message ends a run, then system messages are dropped;
    /// 3. an empty user turn is put first when the first turn is not a user turn;
    /// 4. tokens = BOS + for each user turn `count("[INST] " + content + " [/INST]")` (the
    ///    system prompt and `"\n\n"` before the first user turn's content) + for each
    ///    assistant turn `count(content)` + EOS. Each segment is encoded on its own, with its
    ///    own dummy-prefix space: this is not the count of the contents joined.
    ///
    /// Conversations `mistral-common` refuses are refused with its reason ([`ChatRefusal`]),
    /// checked in its order: no messages; a single message that is not user or system; a
    /// last message from the assistant; a system message right after an assistant message;
    /// an assistant message without content.
    pub fn count_chat(&self, messages: &[Message]) -> Result<u64, ChatError> {
        check_conversation(messages).map_err(ChatError::Refused)?;
        let mut system = String::new();
        for m in messages.iter().filter(|m| m.role == Role::System) {
            if !m.content.is_empty() {
                if !system.is_empty() {
                    system.push_str("\n\n");
                }
                system.push_str(&m.content);
            }
        }
        // Runs of one role, system messages still in place (they end a run), then dropped.
        let mut turns: Vec<(Role, Vec<&str>)> = Vec::new();
        for m in messages {
            match turns.last_mut() {
                Some((role, parts)) if *role == m.role => parts.push(&m.content),
                _ => turns.push((m.role, vec![&m.content])),
            }
        }
        turns.retain(|(role, _)| *role != Role::System);
        if turns.first().is_none_or(|(role, _)| *role != Role::User) {
            turns.insert(0, (Role::User, Vec::new()));
        }
        let mut total = 1; // BOS
        let mut first_user = true;
        let mut segment = String::new();
        for (role, parts) in turns {
            segment.clear();
            if role == Role::User {
                segment.push_str("[INST] ");
                if first_user && !system.is_empty() {
                    segment.push_str(&system);
                    segment.push_str("\n\n");
                }
                first_user = false;
            }
            let mut first_part = true;
            for part in parts.into_iter().filter(|p| !p.is_empty()) {
                if !first_part {
                    segment.push_str("\n\n");
                }
                segment.push_str(part);
                first_part = false;
            }
            if role == Role::User {
                segment.push_str(" [/INST]");
                total += self.count(&segment).map_err(ChatError::Failed)?;
            } else {
                // Not empty: `check_conversation` refuses an assistant message without content.
                total += self.count(&segment).map_err(ChatError::Failed)? + 1; // EOS
            }
        }
        Ok(total)
    }
}

/// The roles tokenizer v1 knows. (It has no tools: a `tool` message is refused.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message: its role and its text (text chunks already joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// Why a chat prompt has no count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatError {
    /// `mistral-common` refuses the conversation: the job is `invalid`.
    Refused(String),
    /// The tokenizer failed: the job fails with status `error`.
    Failed(String),
}

/// `mistral-common`'s `MistralRequestValidator` (the mode `MistralTokenizer.v1()` uses),
/// for messages of the three roles v1 knows.
fn check_conversation(messages: &[Message]) -> Result<(), String> {
    let Some(last) = messages.last() else {
        return Err("the conversation has no messages".into());
    };
    if messages.len() == 1 && last.role == Role::Assistant {
        return Err("a conversation must start with a user or system message".into());
    }
    if messages.len() > 1 && last.role == Role::Assistant {
        return Err("the conversation ends with an assistant message, not a user message".into());
    }
    for (i, pair) in messages.windows(2).enumerate() {
        if pair[0].role == Role::Assistant && pair[1].role == Role::System {
            return Err(format!(
                "message {} is a system message right after an assistant message",
                i + 1
            ));
        }
    }
    if let Some(i) =
        (messages.iter()).position(|m| m.role == Role::Assistant && m.content.is_empty())
    {
        return Err(format!(
            "message {i} is an assistant message without content"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn conversations_mistral_common_refuses() {
        use Role::*;
        // Each as mistral-common 1.13.1 answers it (tests/fixtures/tokens/README.md).
        assert!(check_conversation(&[]).is_err());
        assert!(check_conversation(&[m(Assistant, "hi")]).is_err());
        assert!(check_conversation(&[m(User, "hi"), m(Assistant, "hi")]).is_err());
        assert!(
            check_conversation(&[
                m(User, "u"),
                m(Assistant, "a"),
                m(System, "s"),
                m(User, "u")
            ])
            .is_err()
        );
        assert!(check_conversation(&[m(Assistant, ""), m(User, "u")]).is_err());
        for ok in [
            vec![m(System, "hi")],
            vec![m(User, "")],
            vec![m(User, "u"), m(System, "s")],
            vec![m(System, "s"), m(Assistant, "a"), m(User, "u")],
            vec![m(Assistant, "a"), m(Assistant, "b"), m(User, "u")],
        ] {
            assert_eq!(check_conversation(&ok), Ok(()), "{ok:?}");
        }
    }
}
