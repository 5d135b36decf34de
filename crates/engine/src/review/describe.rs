//! How rule data reads in a change list and in the fingerprints of the replay windows alike:
//! numbers as people write them, an input counted from a job's text.

use crate::engine::model::InputSpec;

/// A number as people write it: `262144`, `0.3`.
pub fn number(x: f64) -> String {
    format!("{x}")
}

/// How an input is counted from a job's text, when it is: its paths, what is counted, the
/// tokenizer and its model file (by hash), so swapping a tokenizer model is a change of every
/// input that counts with it (in the change list and in the windows' fingerprints alike).
pub fn tokens_of_text(i: &InputSpec) -> Option<String> {
    let t = i.tokens_of.as_ref()?;
    let counted = match t.counted {
        crate::engine::tokens::Counted::Chat(c) => format!("chat ({})", c.name()),
        crate::engine::tokens::Counted::Text => "text".to_string(),
    };
    let paths: Vec<String> = (t.paths.iter())
        .map(|p| match &p.when {
            Some(w) => format!("{} (when {} from {})", p.text, w.input, w.path),
            None => p.text.clone(),
        })
        .collect();
    let sha = t.model.sha256();
    let mut text = format!(
        "tokens of {counted} {} by `{}` (sha256 {})",
        paths.join(", "),
        t.tokenizer,
        &sha[..sha.len().min(12)]
    );
    if !t.tools.is_empty() {
        let tools: Vec<&str> = t.tools.iter().map(|p| p.text.as_str()).collect();
        text.push_str(&format!(", with tools {}", tools.join(", ")));
    }
    // The templates decide what a templated prompt's messages are: a change of their markers
    // re-prices every job counted through them.
    if t.paths.iter().any(|p| p.uses_templates()) {
        let names: Vec<&str> = t.templates.iter().map(|t| t.name.as_str()).collect();
        text.push_str(&format!(
            ", templates {} (markers {})",
            names.join(", "),
            templates_digest(&t.templates)
        ));
    }
    let tol = t.tolerance;
    if tol.tokens != 0 || tol.ratio != 0.0 {
        text.push_str(&format!(
            ", claims disputed beyond {} tokens + {}",
            tol.tokens,
            number(tol.ratio)
        ));
    }
    Some(text)
}

/// A short digest of the templates' markers, in order.
fn templates_digest(templates: &[crate::engine::tokens::PromptTemplate]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for t in templates {
        h.update(t.markers().as_bytes());
    }
    hex::encode(h.finalize())[..12].to_string()
}
