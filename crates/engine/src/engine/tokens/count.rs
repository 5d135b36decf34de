//! Where a job's text is ([`TextPath`]) and how one input is counted from it ([`TokensOf`]).
//!
//! A path leads from the job's top to the text, through keys, arrays (`*`), JSON inside a
//! string (`@json`) and prompts written with a template (`@template`). What is found at its end
//! is counted as the input declares: a chat prompt (a list of messages, through the
//! tokenizer's chat template) or text (strings, and answer messages with their tool calls).
//! Tool definitions and tool calls are counted as their JSON text ([`super::pyjson`]).

use std::sync::Arc;

use serde_json::Value as Json;

use super::template::PromptTemplate;
use super::{ChatError, ChatTemplate, MAX_COUNTED_TEXT_BYTES, Message, Role, Tokenizer, pyjson};

/// What `tokens_of` counts at its paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// A list of chat messages (`{"role", "content"}`): the tokens of the prompt as the
    /// tokenizer's chat template builds it.
    Chat(ChatTemplate),
    /// Strings (`null` is no text) and answer messages (`{"content", "tool_calls"}`): the sum
    /// of their tokens, without BOS or EOS.
    Text,
}

impl Counted {
    pub fn name(self) -> &'static str {
        match self {
            Counted::Chat(_) => "chat",
            Counted::Text => "text",
        }
    }
}

/// One step of a [`TextPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// The value under a key of an object.
    Key(String),
    /// `*`: every element of an array.
    Each,
    /// `@json`: the JSON text of a string (the network sends prompts and results as JSON
    /// inside strings).
    Json,
    /// `@template`: the messages of a prompt written with one of the rule set's prompt
    /// templates (the network's first era), as a list of `{"role", "content"}`.
    Template,
}

/// A condition on a path: it is tried only when an earlier input of the job kind was counted
/// from the text at a given path of its own (`when = { input_tokens = "PATH" }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    /// The input, by name and by its index among the job kind's inputs.
    pub input: String,
    pub input_index: usize,
    /// Its path, as written and by its index in that input's `tokens_of` paths.
    pub path: String,
    pub path_index: usize,
}

/// Where a job holds text: dot-separated keys, with `*` for every element of an array,
/// `@json` for the JSON inside a string and `@template` for a templated prompt, e.g.
/// `result.Text.@json.*.message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPath {
    /// As written in kinds.toml.
    pub text: String,
    /// The keys before the first `*`, `@json` or `@template`: the path is present in a job
    /// when these lead to a value that is not `null`.
    pub lead: Vec<String>,
    rest: Vec<Step>,
    /// Tried only when this holds.
    pub when: Option<When>,
}

impl TextPath {
    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<TextPath, String> {
        let mut lead = Vec::new();
        let mut rest = Vec::new();
        for segment in text.split('.') {
            let step = match segment {
                "" => return Err(format!("`{text}` has an empty segment")),
                "*" => Step::Each,
                "@json" => Step::Json,
                "@template" => Step::Template,
                s if s.starts_with('@') => {
                    return Err(format!(
                        "`{text}`: `{s}` is not a step (`@json` reads the JSON inside a string, `@template` a templated prompt)"
                    ));
                }
                s => Step::Key(s.to_string()),
            };
            match step {
                Step::Key(k) if rest.is_empty() => lead.push(k),
                step => rest.push(step),
            }
        }
        if lead.is_empty() {
            return Err(format!("`{text}` must start with a key"));
        }
        Ok(TextPath {
            text: text.to_string(),
            lead,
            rest,
            when: None,
        })
    }

    /// Whether the path decodes a templated prompt (so it needs `[prompt_templates]`).
    pub fn uses_templates(&self) -> bool {
        self.rest.contains(&Step::Template)
    }
}

/// How far a claimed count may be from the count of the text before the result reports it:
/// more than `tokens + ratio × counted` apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub tokens: u64,
    pub ratio: f64,
}

impl Tolerance {
    /// Whether `claimed` disagrees with `counted` beyond this tolerance.
    pub fn disagrees(&self, claimed: f64, counted: u64) -> bool {
        (claimed - counted as f64).abs() > self.tokens as f64 + self.ratio * counted as f64
    }
}

/// An input counted from text: `tokens_of = { tokenizer = "...", chat = [...] }` (or
/// `text = [...]`).
#[derive(Debug, Clone)]
pub struct TokensOf {
    /// The tokenizer's name in kinds.toml.
    pub tokenizer: String,
    pub model: Arc<Tokenizer>,
    pub counted: Counted,
    /// Tried in order; the first one that reads is counted.
    pub paths: Vec<TextPath>,
    /// Where the prompt's tool definitions are (chat only): the first present is counted.
    pub tools: Vec<TextPath>,
    /// The rule set's prompt templates, in order, for `@template`.
    pub templates: Arc<[PromptTemplate]>,
    /// When a claimed count (a `from` value) is reported as disagreeing with the text.
    pub tolerance: Tolerance,
    /// What the count assumes (which text is counted, BOS/EOS), and where that comes from:
    /// shown by `--explain` for every job counted from text.
    pub assumptions: Vec<String>,
    pub source: Option<String>,
}

/// The count of one input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Count {
    pub tokens: u64,
    /// Messages (chat) or strings (text) counted.
    pub texts: u64,
    /// Bytes of text counted (message contents, strings, tool JSON), before any template.
    pub bytes: u64,
    /// Tool calls counted (in answers, or in the prompt's assistant messages).
    pub tool_calls: u64,
    /// The prompt template that read a templated prompt (`@template`).
    pub template: Option<String>,
}

/// Why an input cannot be counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountError {
    /// The string at an `@json` or `@template` step is not in that form: the next path is
    /// tried. `field` is the string's place.
    Unread { field: String, message: String },
    /// The job's text is not what the path declares, too long, or a prompt the chat template
    /// refuses: the job is `invalid`. `field` is where, as a path.
    Invalid { field: String, message: String },
    /// The tokenizer failed: status `error`.
    Failed(String),
}

/// The tool definitions counted with a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolsCount {
    pub tokens: u64,
    pub definitions: u64,
    pub bytes: u64,
}

impl TokensOf {
    /// Counts the text at `path` below `value`, the value at the path's leading keys.
    pub fn count(&self, path: &TextPath, value: &Json) -> Result<Count, CountError> {
        let mut found = Found {
            counted: self.counted,
            templates: &self.templates,
            texts: Vec::new(),
            conversations: Vec::new(),
            bytes: 0,
            tool_calls: 0,
            template: None,
        };
        let mut shown = path.lead.join(".");
        walk(value, &path.rest, &mut shown, &mut found)?;
        let mut count = Count {
            bytes: found.bytes as u64,
            tool_calls: found.tool_calls,
            template: found.template.map(String::from),
            ..Count::default()
        };
        for text in &found.texts {
            count.tokens += self.model.count(text).map_err(CountError::Failed)?;
            count.texts += 1;
        }
        for (field, messages) in &found.conversations {
            count.tokens += match self.model.count_chat(messages) {
                Ok(n) => n,
                Err(ChatError::Failed(e)) => return Err(CountError::Failed(e)),
                Err(ChatError::Refused(why)) => {
                    return Err(CountError::Invalid {
                        field: field.clone(),
                        message: format!(
                            "`{field}`: {why}; mistral-common's encode_chat_completion refuses \
                             such a prompt, so it has no token count"
                        ),
                    });
                }
            };
            count.texts += messages.len() as u64;
        }
        Ok(count)
    }

    /// Counts the tool definitions at `path` below `value` (the value at its leading keys):
    /// a list, counted as its JSON text (`null` or `[]` is no tools). `prompt_bytes` of the
    /// prompt were counted already: the two share the input's size limit.
    pub fn count_tools(
        &self,
        path: &TextPath,
        value: &Json,
        prompt_bytes: u64,
    ) -> Result<ToolsCount, CountError> {
        let mut found = Found {
            counted: Counted::Text,
            templates: &self.templates,
            texts: Vec::new(),
            conversations: Vec::new(),
            bytes: prompt_bytes as usize,
            tool_calls: 0,
            template: None,
        };
        let mut shown = path.lead.join(".");
        let mut definitions = 0;
        collect(
            value,
            &path.rest,
            &mut shown,
            &mut found,
            &mut |v, at, found| {
                let list = match v {
                    Json::Null => return Ok(()),
                    Json::Array(list) => list,
                    other => {
                        return Err(invalid(
                            at,
                            format!(
                                "`{at}` must be a list of tool definitions, got {}",
                                show(other)
                            ),
                        ));
                    }
                };
                if !list.is_empty() {
                    let text = pyjson::dumps(v);
                    found.add_bytes(text.len(), at)?;
                    found.texts.push(text);
                    definitions += list.len() as u64;
                }
                Ok(())
            },
        )?;
        let mut count = ToolsCount {
            tokens: 0,
            definitions,
            bytes: found.bytes as u64 - prompt_bytes,
        };
        for text in &found.texts {
            count.tokens += self.model.count(text).map_err(CountError::Failed)?;
        }
        Ok(count)
    }
}

/// What a walk found, before anything is tokenized (so that the size limit is checked
/// first).
struct Found<'t> {
    counted: Counted,
    templates: &'t [PromptTemplate],
    texts: Vec<String>,
    /// Each list of messages found, with its path.
    conversations: Vec<(String, Vec<Message>)>,
    bytes: usize,
    tool_calls: u64,
    /// The name of the template that read a templated prompt.
    template: Option<&'t str>,
}

impl Found<'_> {
    fn add_bytes(&mut self, n: usize, field: &str) -> Result<(), CountError> {
        self.bytes += n;
        if self.bytes > MAX_COUNTED_TEXT_BYTES {
            return Err(invalid(
                field,
                format!(
                    "the text to count at `{field}` is longer than {MAX_COUNTED_TEXT_BYTES} bytes \
                     (no prompt or answer Mixtral 8x7b can process is that long)"
                ),
            ));
        }
        Ok(())
    }
}

fn invalid(field: &str, message: String) -> CountError {
    CountError::Invalid {
        field: field.to_string(),
        message,
    }
}

/// Short rendering of a JSON value for messages.
fn show(v: &Json) -> String {
    crate::engine::json::show_json(v)
}

fn walk(v: &Json, steps: &[Step], shown: &mut String, found: &mut Found) -> Result<(), CountError> {
    let counted = found.counted;
    collect(
        v,
        steps,
        shown,
        found,
        &mut |end, at, found| match counted {
            Counted::Text => text_at(end, at, found),
            Counted::Chat(_) => chat_at(end, at, found),
        },
    )
}

/// Follows `steps` from `v`, calling `at_end` with each value reached and its place.
fn collect(
    v: &Json,
    steps: &[Step],
    shown: &mut String,
    found: &mut Found,
    at_end: &mut dyn FnMut(&Json, &str, &mut Found) -> Result<(), CountError>,
) -> Result<(), CountError> {
    let Some((step, rest)) = steps.split_first() else {
        return at_end(v, shown, found);
    };
    let len = shown.len();
    match step {
        Step::Key(k) => {
            let Some(obj) = v.as_object() else {
                return Err(invalid(
                    shown,
                    format!("`{shown}` must be an object, got {}", show(v)),
                ));
            };
            let Some(next) = obj.get(k) else {
                return Err(invalid(shown, format!("`{shown}` has no `{k}`")));
            };
            shown.push('.');
            shown.push_str(k);
            collect(next, rest, shown, found, at_end)?;
        }
        Step::Each => {
            let Some(items) = v.as_array() else {
                return Err(invalid(
                    shown,
                    format!("`{shown}` must be an array, got {}", show(v)),
                ));
            };
            for (i, item) in items.iter().enumerate() {
                shown.truncate(len);
                shown.push('.');
                shown.push_str(&i.to_string());
                collect(item, rest, shown, found, at_end)?;
            }
        }
        Step::Json => {
            let Some(text) = v.as_str() else {
                return Err(invalid(
                    shown,
                    format!("`{shown}` must be a string holding JSON, got {}", show(v)),
                ));
            };
            let inner = parse_inner(text, shown)?;
            shown.push_str(".@json");
            collect(&inner, rest, shown, found, at_end)?;
        }
        Step::Template => {
            let Some(text) = v.as_str() else {
                return Err(invalid(
                    shown,
                    format!(
                        "`{shown}` must be a string holding a templated prompt, got {}",
                        show(v)
                    ),
                ));
            };
            let (messages, template) = decode_template(text, shown, found.templates)?;
            found.template = Some(template);
            shown.push_str(".@template");
            collect(&messages, rest, shown, found, at_end)?;
        }
    }
    shown.truncate(len);
    Ok(())
}

/// The messages of the templated prompt `text` (at `field`), as a JSON list of
/// `{"role", "content"}`: read with the first of `templates` that reads it whole.
fn decode_template<'t>(
    text: &str,
    field: &str,
    templates: &'t [PromptTemplate],
) -> Result<(Json, &'t str), CountError> {
    if text.len() > MAX_COUNTED_TEXT_BYTES {
        return Err(invalid(
            field,
            format!(
                "the text to count at `{field}` is longer than {MAX_COUNTED_TEXT_BYTES} bytes \
                 (no prompt or answer Mixtral 8x7b can process is that long)"
            ),
        ));
    }
    let mut why = Vec::with_capacity(templates.len());
    for t in templates {
        match t.decode(text) {
            Ok(messages) => {
                let list = messages
                    .into_iter()
                    .map(|m| serde_json::json!({"role": m.role.name(), "content": m.content}))
                    .collect();
                return Ok((Json::Array(list), &t.name));
            }
            Err(e) => why.push(format!("{}: {e}", t.name)),
        }
    }
    Err(CountError::Unread {
        field: field.to_string(),
        message: format!(
            "no prompt template reads `{field}` ({})",
            if why.is_empty() {
                "the rule set declares none".to_string()
            } else {
                why.join("; ")
            }
        ),
    })
}

/// The JSON inside the string at `field`, read as strictly as a job: a key given twice is
/// refused, not resolved silently. A string that is not JSON at all is [`CountError::Unread`].
fn parse_inner(text: &str, field: &str) -> Result<Json, CountError> {
    if text.len() > crate::engine::json::MAX_LINE_BYTES {
        return Err(invalid(field, format!("`{field}` is too long to read")));
    }
    use crate::engine::json::{Keep, MAX_READ_VALUES, read_value_keeping};
    match read_value_keeping(text.as_bytes(), Keep::READ) {
        Ok(json) => match (json.duplicate, json.truncated.is_empty()) {
            (Some(key), _) => Err(invalid(
                field,
                format!("the JSON in `{field}` gives the key `{key}` twice"),
            )),
            (None, false) => Err(invalid(
                field,
                format!("the JSON in `{field}` holds more than {MAX_READ_VALUES} values"),
            )),
            (None, true) => Ok(json.value),
        },
        Err(e) => Err(CountError::Unread {
            field: field.to_string(),
            message: format!(
                "`{field}` does not hold JSON: {} (at column {})",
                crate::engine::json::strip_position(&e.to_string()),
                e.column()
            ),
        }),
    }
}

/// A text path's end: a string, `null` (no text), or an answer message (its content and its
/// tool calls).
fn text_at(v: &Json, shown: &str, found: &mut Found) -> Result<(), CountError> {
    match v {
        Json::Null => Ok(()),
        Json::String(s) => {
            found.add_bytes(s.len(), shown)?;
            found.texts.push(s.clone());
            Ok(())
        }
        Json::Object(m) => {
            let content = match m.get("content") {
                Some(Json::Null) => None,
                Some(Json::String(s)) => Some(s.clone()),
                Some(Json::Array(chunks)) => Some(text_chunks(chunks, shown)?),
                Some(other) => {
                    return Err(invalid(
                        shown,
                        format!(
                            "`{shown}.content` must be a string, null or a list of text chunks, got {}",
                            show(other)
                        ),
                    ));
                }
                None => {
                    return Err(invalid(
                        shown,
                        format!("`{shown}` is an object without `content`: not a message"),
                    ));
                }
            };
            if let Some(c) = content {
                found.add_bytes(c.len(), &format!("{shown}.content"))?;
                found.texts.push(c);
            }
            if let Some(calls) = tool_calls_text(m, shown, found)? {
                found.texts.push(calls);
            }
            Ok(())
        }
        other => Err(invalid(
            shown,
            format!(
                "`{shown}` must be a string, null or a message ({{\"content\", \"tool_calls\"}}), got {}",
                show(other)
            ),
        )),
    }
}

/// The tool calls of a message as one text: `[{"name": ..., "arguments": ...}, ...]` as
/// mistral-common writes them after its `[TOOL_CALLS]` token (arguments given as a JSON
/// string are read, as it reads them). `None` when the message calls no tool.
fn tool_calls_text(
    m: &serde_json::Map<String, Json>,
    shown: &str,
    found: &mut Found,
) -> Result<Option<String>, CountError> {
    let calls = match m.get("tool_calls") {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Array(calls)) if calls.is_empty() => return Ok(None),
        Some(Json::Array(calls)) => calls,
        Some(other) => {
            return Err(invalid(
                shown,
                format!(
                    "`{shown}.tool_calls` must be a list of tool calls, got {}",
                    show(other)
                ),
            ));
        }
    };
    let mut text = String::from("[");
    for (i, call) in calls.iter().enumerate() {
        let at = format!("{shown}.tool_calls.{i}");
        let function = call.get("function").and_then(Json::as_object);
        let name = function.and_then(|f| f.get("name")).and_then(Json::as_str);
        let (Some(function), Some(name)) = (function, name) else {
            return Err(invalid(
                &at,
                format!(
                    "`{at}` must be a tool call with `function.name` (a string), got {}",
                    show(call)
                ),
            ));
        };
        let arguments = match function.get("arguments") {
            Some(Json::String(s)) => {
                serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone()))
            }
            Some(other) => other.clone(),
            None => {
                return Err(invalid(&at, format!("`{at}.function` has no `arguments`")));
            }
        };
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str("{\"name\": ");
        pyjson::string(name, &mut text);
        text.push_str(", \"arguments\": ");
        pyjson::write(&arguments, &mut text);
        text.push('}');
    }
    text.push(']');
    found.add_bytes(text.len(), &format!("{shown}.tool_calls"))?;
    found.tool_calls += calls.len() as u64;
    Ok(Some(text))
}

fn chat_at(v: &Json, shown: &str, found: &mut Found) -> Result<(), CountError> {
    let Some(items) = v.as_array() else {
        return Err(invalid(
            shown,
            format!(
                "`{shown}` must be a list of chat messages ({{\"role\", \"content\"}}), got {}",
                show(v)
            ),
        ));
    };
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{shown}.{i}");
        let Some(m) = item.as_object() else {
            return Err(invalid(
                &at,
                format!(
                    "`{at}` must be a chat message ({{\"role\", \"content\"}}), got {}",
                    show(item)
                ),
            ));
        };
        // A tool's result is read by the model as the next turn's input: a user turn for
        // tokenizer v1, which has no tool turns (kinds.toml says so in its assumptions).
        let role = match m.get("role") {
            Some(Json::String(r)) => match r.as_str() {
                "system" => Role::System,
                "user" | "tool" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(invalid(
                        &at,
                        format!(
                            "`{at}` has role {}; a prompt has system, user, assistant and tool messages",
                            show(&Json::String(other.to_string()))
                        ),
                    ));
                }
            },
            Some(other) => {
                return Err(invalid(
                    &at,
                    format!("`{at}.role` must be a string, got {}", show(other)),
                ));
            }
            None => return Err(invalid(&at, format!("`{at}` has no `role`"))),
        };
        let calls = if role == Role::Assistant {
            tool_calls_text(m, &at, found)?
        } else if m.get("tool_calls").is_some_and(|t| !is_empty(t)) {
            return Err(invalid(
                &at,
                format!("`{at}` has tool calls, but only an assistant calls tools"),
            ));
        } else {
            None
        };
        let content = match m.get("content") {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Array(chunks)) => text_chunks(chunks, &at)?,
            // An assistant's tool calls are its text (below).
            None | Some(Json::Null) if calls.is_some() => String::new(),
            None | Some(Json::Null) => {
                return Err(invalid(
                    &at,
                    format!(
                        "`{at}` ({}) has no `content`; mistral-common refuses a message without it",
                        role.name()
                    ),
                ));
            }
            Some(other) => {
                return Err(invalid(
                    &at,
                    format!(
                        "`{at}.content` must be a string or a list of text chunks, got {}",
                        show(other)
                    ),
                ));
            }
        };
        found.add_bytes(content.len(), shown)?;
        // The calls follow the content as another part of the turn, joined as mistral-common
        // joins the parts of a turn.
        let content = match calls {
            Some(calls) if content.is_empty() => calls,
            Some(calls) => format!("{content}\n\n{calls}"),
            None => content,
        };
        messages.push(Message { role, content });
    }
    found.conversations.push((shown.to_string(), messages));
    Ok(())
}

fn is_empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A content given as chunks (`[{"type": "text", "text": "..."}]`): the non-empty texts
/// joined with `"\n\n"`, as mistral-common joins them. Other chunks (images) are refused.
fn text_chunks(chunks: &[Json], at: &str) -> Result<String, CountError> {
    let mut out = String::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let text = match (chunk.get("type").and_then(Json::as_str), chunk.get("text")) {
            (Some("text"), Some(Json::String(t))) => t,
            _ => {
                return Err(invalid(
                    at,
                    format!(
                        "`{at}.content.{i}` must be a text chunk ({{\"type\": \"text\", \"text\": \"...\"}}); \
                         tokenizer v1 counts only text, got {}",
                        show(chunk)
                    ),
                ));
            }
        };
        if !text.is_empty() {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(text);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_leading_keys_and_steps() {
        let p = TextPath::parse("result.Text.@json.*.message.content").unwrap();
        assert_eq!(p.lead, ["result", "Text"]);
        assert_eq!(
            p.rest,
            [
                Step::Json,
                Step::Each,
                Step::Key("message".into()),
                Step::Key("content".into())
            ]
        );
        assert_eq!(TextPath::parse("request.messages").unwrap().rest, []);
        let t = TextPath::parse("model_input.LLM.prompt.@template").unwrap();
        assert_eq!(t.rest, [Step::Template]);
        assert!(t.uses_templates());
        for bad in ["", "a..b", "*.a", "@json", "a.@yaml", "a.", "@template"] {
            assert!(TextPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_claim_disagrees_beyond_tokens_plus_a_ratio_of_the_count() {
        let t = Tolerance {
            tokens: 16,
            ratio: 0.25,
        };
        assert!(!t.disagrees(14.0, 14));
        assert!(!t.disagrees(30.0, 14), "16 + 3.5 tokens apart is within");
        assert!(t.disagrees(34.0, 14));
        assert!(!t.disagrees(0.0, 12));
        assert!(t.disagrees(900_000.0, 14));
        assert!(t.disagrees(700.0, 1000), "300 > 16 + 250");
    }
}
