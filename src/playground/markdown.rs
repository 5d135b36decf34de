//! `diff --format markdown` rendered as HTML for the impact panel.
//!
//! The report quotes rule files, and in the playground those are whatever a browser sent, so
//! the HTML must not be able to run anything: raw HTML in the markdown is shown as text except
//! the few bare tags the report itself writes (`<details>`, `<summary>`, `<sub>`), and links
//! and images keep only their text (no `javascript:` URL can reach an `href`).

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd, html};

/// The only raw HTML let through: bare tags without attributes, as the report writes them.
const ALLOWED_TAGS: [&str; 3] = ["details", "summary", "sub"];

/// Renders markdown (GitHub's tables and alerts) to HTML that contains no script, handler,
/// style or URL.
pub fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_GFM | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        Event::Html(raw) => Some(Event::Html(inert_html(&raw).into())),
        Event::InlineHtml(raw) => Some(Event::InlineHtml(inert_html(&raw).into())),
        Event::Start(Tag::Link { .. } | Tag::Image { .. })
        | Event::End(TagEnd::Link | TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// `raw` with everything escaped, then the allowed bare tags restored. HTML comments (the
/// report's marker for CI bots) are dropped.
fn inert_html(raw: &str) -> String {
    let mut text = raw.to_string();
    while let Some(start) = text.find("<!--") {
        let end = text[start..]
            .find("-->")
            .map_or(text.len(), |e| start + e + 3);
        text.replace_range(start..end, "");
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    for tag in ALLOWED_TAGS {
        out = out
            .replace(&format!("&lt;{tag}&gt;"), &format!("<{tag}>"))
            .replace(&format!("&lt;/{tag}&gt;"), &format!("</{tag}>"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_markup_renders() {
        let html = to_html(
            "### Rules diff\n\n| a | b |\n|---|--:|\n| x | 1 |\n\n<details><summary>Rule changes (1)</summary>\n\n- `multiplier 1 → 1.5`\n\n</details>\n\n> [!WARNING]\n> careful\n",
        );
        assert!(html.contains("<h3>Rules diff</h3>"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(
            html.contains("<details><summary>Rule changes (1)</summary>"),
            "{html}"
        );
        assert!(html.contains("<code>multiplier 1 → 1.5</code>"), "{html}");
        assert!(html.contains("markdown-alert-warning"), "{html}");
    }

    #[test]
    fn nothing_in_the_markdown_can_run() {
        let html = to_html(
            "<!-- jobpoints-diff -->\n<script>alert(1)</script>\n\n<details open ontoggle=alert(1)>x</details>\n\n- a <img src=x onerror=alert(1)> b\n- [click](javascript:alert(1)) ![i](javascript:alert(2))\n- <https://example.com>\n",
        );
        for bad in ["<script", "<img", "<details open", "href", "jobpoints-diff"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("click"), "{html}");
    }
}
