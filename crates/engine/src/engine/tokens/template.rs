//! Prompt templates: how a conversation was written into one string, read back.
//!
//! Before LLM miner v1.2.0 the network's jobs carried their prompt as one pre-templated string
//! (ChatML, Llama-2 or Mistral `[INST]`; shared/data/heurist_job_schema.md §2a). A
//! [`PromptTemplate`] is declared in kinds.toml (`[prompt_templates.NAME]`) as the markers its
//! writer put around each message; [`PromptTemplate::decode`] splits a string at them back into
//! the messages, so that the prompt is counted exactly as the same conversation given as JSON
//! messages. Nothing about a particular template is written here.

use memchr::memmem;

use super::{Message, Role};

/// How one role's messages are written: `before` + content + one of `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMarks {
    pub role: Role,
    /// Written before the content; may be empty for at most one role (the role of a message
    /// that starts where no other role's `before` does).
    pub before: String,
    /// Written after the content, one of these (none empty); the content ends at the first
    /// place one of them starts (the longest, where several start there).
    pub after: Vec<String>,
}

/// A prompt template, as kinds.toml declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    pub name: String,
    /// Where the markers come from (the code that wrote such prompts).
    pub source: String,
    roles: Vec<RoleMarks>,
    /// Markers written between messages that belong to none (a BOS before the first, an EOS
    /// after a round): skipped wherever a message could start, and at the end.
    between: Vec<String>,
}

impl PromptTemplate {
    /// A template; the error says what is wrong with its markers (a role given twice, an empty
    /// `after` or `between` marker, or more than one role without `before`), which would make
    /// decoding ambiguous or endless.
    pub fn new(
        name: &str,
        source: &str,
        roles: Vec<RoleMarks>,
        between: Vec<String>,
    ) -> Result<PromptTemplate, String> {
        if roles.is_empty() {
            return Err(format!("template `{name}` declares no role"));
        }
        for (i, r) in roles.iter().enumerate() {
            if roles[..i].iter().any(|o| o.role == r.role) {
                return Err(format!(
                    "template `{name}` declares role `{}` twice",
                    r.role.name()
                ));
            }
            if r.after.is_empty() || r.after.iter().any(String::is_empty) {
                return Err(format!(
                    "template `{name}`: role `{}` needs a non-empty `after` marker (where its content ends)",
                    r.role.name()
                ));
            }
        }
        if roles.iter().filter(|r| r.before.is_empty()).count() > 1 {
            return Err(format!(
                "template `{name}`: at most one role may have an empty `before` (it is the role of a message that starts where no other role's marker does)"
            ));
        }
        if between.iter().any(String::is_empty) {
            return Err(format!(
                "template `{name}`: a `between` marker cannot be empty"
            ));
        }
        Ok(PromptTemplate {
            name: name.to_string(),
            source: source.to_string(),
            roles,
            between,
        })
    }

    /// The messages `text` holds, read from its start to its end: at each place, skip any
    /// `between` markers, then a message of the role whose `before` starts there (the longest;
    /// else the role without `before`), its content up to the nearest of its `after` markers.
    /// The error says where reading stopped and why.
    ///
    /// Linear in the text's length: where each `after` marker next occurs is remembered, so
    /// that no part of the text is searched twice for the same marker (a marker that occurs
    /// far away, or never, would otherwise be searched for again at every message).
    pub fn decode(&self, text: &str) -> Result<Vec<Message>, String> {
        let mut messages = Vec::new();
        // Per role, per `after` marker: its next occurrence at or after the place last
        // searched from (`None`: none up to the end).
        let mut next: Vec<Vec<Option<Option<usize>>>> = self
            .roles
            .iter()
            .map(|r| vec![None; r.after.len()])
            .collect();
        let mut pos = 0;
        loop {
            pos = self.skip_between(text, pos);
            let Some(rest) = text.get(pos..).filter(|r| !r.is_empty()) else {
                return Ok(messages);
            };
            let role = (self.roles.iter().enumerate())
                .filter(|(_, r)| !r.before.is_empty() && rest.starts_with(&r.before))
                .max_by_key(|(_, r)| r.before.len())
                .or_else(|| {
                    self.roles
                        .iter()
                        .enumerate()
                        .find(|(_, r)| r.before.is_empty())
                });
            let Some((index, marks)) = role else {
                return Err(format!(
                    "at byte {pos} no message starts (a message starts with {})",
                    self.starts()
                ));
            };
            let start = pos + marks.before.len();
            let mut end: Option<(usize, usize)> = None; // (where, marker length)
            for (a, after) in marks.after.iter().enumerate() {
                let found = match next[index][a] {
                    Some(Some(at)) if at >= start => Some(at),
                    Some(None) => None,
                    _ => {
                        let at = memmem::find(&text.as_bytes()[start..], after.as_bytes())
                            .map(|i| start + i);
                        next[index][a] = Some(at);
                        at
                    }
                };
                if let Some(at) = found
                    && end.is_none_or(|(e, len)| at < e || (at == e && after.len() > len))
                {
                    end = Some((at, after.len()));
                }
            }
            let Some((at, len)) = end else {
                return Err(format!(
                    "the {} message at byte {pos} never ends (no {} after it)",
                    marks.role.name(),
                    quoted(&marks.after)
                ));
            };
            // Markers are whole UTF-8 strings, so they start and end at character boundaries.
            messages.push(Message {
                role: marks.role,
                content: text[start..at].to_string(),
            });
            pos = at + len;
        }
    }

    /// The template's name and markers, written out (what decides how it reads a prompt; not
    /// its source).
    pub fn markers(&self) -> String {
        let roles: Vec<String> = (self.roles.iter())
            .map(|r| format!("{} {:?} … {}", r.role.name(), r.before, quoted(&r.after)))
            .collect();
        format!(
            "{}: {}; between {}",
            self.name,
            roles.join("; "),
            quoted(&self.between)
        )
    }

    fn skip_between(&self, text: &str, mut pos: usize) -> usize {
        'skip: loop {
            for m in &self.between {
                if text.get(pos..).is_some_and(|r| r.starts_with(m.as_str())) {
                    pos += m.len();
                    continue 'skip;
                }
            }
            return pos;
        }
    }

    /// The markers a message may start with, for messages.
    fn starts(&self) -> String {
        let befores: Vec<String> = (self.roles.iter())
            .filter(|r| !r.before.is_empty())
            .map(|r| format!("{:?}", r.before))
            .collect();
        befores.join(" or ")
    }
}

fn quoted(markers: &[String]) -> String {
    let q: Vec<String> = markers.iter().map(|m| format!("{m:?}")).collect();
    q.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(role: Role, before: &str, after: &[&str]) -> RoleMarks {
        RoleMarks {
            role,
            before: before.into(),
            after: after.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn chat(pairs: &[(Role, &str)]) -> Vec<Message> {
        pairs
            .iter()
            .map(|(role, content)| Message {
                role: *role,
                content: content.to_string(),
            })
            .collect()
    }

    #[test]
    fn splits_at_markers_longest_before_first_and_skips_between() {
        use Role::*;
        let t = PromptTemplate::new(
            "t",
            "test",
            vec![
                marks(System, "[A] \n", &[" [/A]\n"]),
                marks(User, "[A] ", &[" [/A]\n", " [/A]"]),
                marks(Assistant, " ", &["</e>"]),
            ],
            vec!["<b>".into(), "</e>".into()],
        )
        .unwrap();
        assert_eq!(
            t.decode("<b>[A] \nsys [/A]\n</e>[A] hi [/A]\n x</e></e>[A] last [/A]"),
            Ok(chat(&[
                (System, "sys"),
                (User, "hi"),
                (Assistant, "x"),
                (User, "last")
            ]))
        );
        assert_eq!(t.decode(""), Ok(vec![]));
        assert_eq!(t.decode("[A]  [/A]"), Ok(chat(&[(User, "")])));
        let e = t.decode("[A] hi [/A]\nnope").unwrap_err();
        assert!(e.contains("at byte 12 no message starts"), "{e}");
        let e = t.decode("[A] never closed").unwrap_err();
        assert!(e.contains("the user message at byte 0 never ends"), "{e}");
    }

    #[test]
    fn a_role_without_before_takes_what_no_other_role_starts() {
        use Role::*;
        let t = PromptTemplate::new(
            "t",
            "test",
            vec![
                marks(User, "[U] ", &[" [/U]\n"]),
                marks(Assistant, "", &["\n</s>"]),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(
            t.decode("[U] q [/U]\nanswer\n</s>[U] r [/U]\n"),
            Ok(chat(&[(User, "q"), (Assistant, "answer"), (User, "r")]))
        );
        // Multi-byte text around markers.
        assert_eq!(
            t.decode("[U] é日本 [/U]\n🙂\n</s>"),
            Ok(chat(&[(User, "é日本"), (Assistant, "🙂")]))
        );
    }

    #[test]
    fn a_marker_that_never_occurs_is_searched_for_once() {
        use Role::*;
        // Every message ends at the short marker; the long one never occurs. Searching for it
        // from every message would take quadratic time (minutes for a megabyte).
        let t = PromptTemplate::new(
            "t",
            "test",
            vec![marks(User, "[A] ", &[" [/A]\n", " [/A]"])],
            vec![],
        )
        .unwrap();
        let text = "[A] x [/A]".repeat(100_000);
        let started = std::time::Instant::now();
        let messages = t.decode(&text).unwrap();
        assert_eq!(messages.len(), 100_000);
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }

    #[test]
    fn markers_that_would_make_decoding_ambiguous_or_endless_are_refused() {
        use Role::*;
        for (roles, between) in [
            (vec![], vec![]),
            (
                vec![marks(User, "a", &["b"]), marks(User, "c", &["d"])],
                vec![],
            ),
            (vec![marks(User, "a", &[""])], vec![]),
            (vec![marks(User, "a", &[])], vec![]),
            (
                vec![marks(User, "", &["b"]), marks(Assistant, "", &["d"])],
                vec![],
            ),
            (vec![marks(User, "a", &["b"])], vec![String::new()]),
        ] {
            assert!(PromptTemplate::new("t", "s", roles, between).is_err());
        }
    }
}
