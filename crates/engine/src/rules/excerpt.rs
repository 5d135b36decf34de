//! The few source lines a diagnostic shows, cut out of its file once, for miette to draw.
//!
//! miette's renderer reads spans by scanning its source from the start (quadratic over many
//! diagnostics in one large file) and panics on a column past 65,535 ("Formatting argument
//! out of range", #22). So it never sees a file: only an [`Excerpt`] of the label's lines and
//! one line of context each side, found with the file's [`LineIndex`], with long lines cut
//! around the label and at most [`MAX_LABEL_LINES`] lines of a long label.

use std::ops::Range;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::rules::lines::LineIndex;

/// Lines longer than this (in characters) are cut to [`KEPT_CHARS`] around the label.
pub const MAX_LINE_CHARS: usize = 400;
/// Characters kept of a cut line.
const KEPT_CHARS: usize = 160;
/// Characters kept before the label's start on a cut line.
const KEPT_BEFORE: usize = 40;
/// A label over more lines shows its first lines only.
pub const MAX_LABEL_LINES: usize = 8;
/// Marks where a cut line lost text.
const CUT: &str = "…";

/// A label's lines (and one each side) of a file, as miette reads them.
#[derive(Debug)]
pub struct Excerpt {
    name: String,
    text: String,
    /// 0-based line of the file where `text` starts.
    first_line: usize,
    /// The label, in `text`.
    label: Range<usize>,
    /// 0-based byte column of the label's start in the file (for the header).
    column: usize,
}

impl Excerpt {
    /// The excerpt of `source` (named `name`, indexed by `lines`) around `span`.
    pub fn new(name: &str, source: &str, lines: &LineIndex, span: Range<usize>) -> Excerpt {
        let start = floor_char(source, span.start);
        let end = floor_char(source, span.end).max(start);
        let (start_line, _) = lines.line_col(source, start);
        // A span that ends with its line's newline ends on the next line, as miette sees it.
        let (mut end_line, _) = lines.line_col(source, end);
        end_line = end_line.min(start_line + MAX_LABEL_LINES - 1);
        let first = start_line.saturating_sub(1).max(1);
        let last = end_line + 1;
        let mut text = String::new();
        let mut label = 0..0;
        for n in first..=last {
            let from = lines.line_start(source, n);
            if from >= source.len() && n > start_line {
                break;
            }
            let to = lines.line_start(source, n + 1);
            let line = &source[from..to];
            let body = line.trim_end_matches(['\n', '\r']);
            let eol = &line[body.len()..];
            // The label's part of this line, in bytes of `body`.
            let here = (n >= start_line && n <= end_line).then(|| {
                let a = start.clamp(from, from + body.len()) - from;
                let b = end.clamp(from, from + body.len()) - from;
                a..b
            });
            let at = text.len();
            let kept = if body.chars().count() > MAX_LINE_CHARS {
                cut(
                    body,
                    here.as_ref().map(|h| h.start).filter(|_| n == start_line),
                )
            } else {
                Kept {
                    text: body.to_string(),
                    from: 0,
                    to: body.len(),
                    shift: 0,
                }
            };
            if let Some(h) = here {
                let map = |b: usize| at + kept.shift + b.clamp(kept.from, kept.to) - kept.from;
                if n == start_line {
                    label.start = map(h.start);
                }
                label.end = map(h.end);
            }
            text.push_str(&kept.text);
            text.push_str(eol);
        }
        label.end = label.end.max(label.start);
        Excerpt {
            name: name.to_string(),
            text,
            first_line: first - 1,
            label,
            column: start - lines.line_start(source, start_line),
        }
    }

    /// The label's span in the excerpt.
    pub fn label(&self) -> Range<usize> {
        self.label.clone()
    }
}

/// What is kept of a line: `text` shows `body[from..to]` after `shift` bytes of marker.
struct Kept {
    text: String,
    from: usize,
    to: usize,
    shift: usize,
}

/// [`KEPT_CHARS`] of `body` from a little before `anchor` (or from its start), marked where cut.
fn cut(body: &str, anchor: Option<usize>) -> Kept {
    let chars: Vec<(usize, char)> = body.char_indices().collect();
    let anchor_char = anchor.map_or(0, |a| chars.partition_point(|&(i, _)| i < a));
    let first = anchor_char.saturating_sub(KEPT_BEFORE);
    let last = (first + KEPT_CHARS).min(chars.len());
    let from = chars.get(first).map_or(body.len(), |c| c.0);
    let to = chars.get(last).map_or(body.len(), |c| c.0);
    let mut text = String::with_capacity(to - from + 2 * CUT.len());
    let shift = if from > 0 { CUT.len() } else { 0 };
    if from > 0 {
        text.push_str(CUT);
    }
    text.push_str(&body[from..to]);
    if to < body.len() {
        text.push_str(CUT);
    }
    Kept {
        text,
        from,
        to,
        shift,
    }
}

fn floor_char(s: &str, offset: usize) -> usize {
    let mut offset = offset.min(s.len());
    while !s.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let read = self.text.as_str().read_span(span, before, after)?;
        // The header names the label's start in the file, not in the (maybe cut) excerpt.
        let column = if span.offset() == self.label.start && before == 0 {
            self.column
        } else {
            read.column()
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            read.data(),
            *read.span(),
            read.line() + self.first_line,
            column,
            read.line_count(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excerpt(source: &str, span: Range<usize>) -> Excerpt {
        Excerpt::new("f.toml", source, &LineIndex::new(source), span)
    }

    #[test]
    fn short_lines_are_kept_whole_with_one_line_of_context() {
        let src = "a = 1\nb = 2\nc = 3\nd = 4\n";
        let e = excerpt(src, 6..11);
        assert_eq!(e.text, "a = 1\nb = 2\nc = 3\n");
        assert_eq!(&e.text[e.label()], "b = 2");
        assert_eq!(e.first_line, 0);
        let e = excerpt(src, 12..17);
        assert_eq!(e.text, "b = 2\nc = 3\nd = 4\n");
        assert_eq!(e.first_line, 1);
        assert_eq!(&e.text[e.label()], "c = 3");
    }

    #[test]
    fn a_long_line_is_cut_around_the_label() {
        let long = format!("description = \"{}\" stray", "x".repeat(70_000));
        let src = format!("[rule]\n{long}\nnext = 1\n");
        let at = src.find("stray").unwrap();
        let e = excerpt(&src, at..at + 5);
        assert_eq!(&e.text[e.label()], "stray");
        assert!(e.text.len() < 1_000, "{}", e.text.len());
        assert!(e.text.contains(CUT));
        assert_eq!(e.column, long.find("stray").unwrap());
    }

    #[test]
    fn a_label_over_many_lines_shows_its_first_lines() {
        let src: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let e = excerpt(&src, 0..src.len());
        assert_eq!(e.text.lines().count(), MAX_LABEL_LINES + 1);
        assert!(e.text[e.label()].starts_with("line 0"));
    }

    #[test]
    fn any_span_gives_an_excerpt_whose_label_is_inside_it() {
        let src = "é\r\nab\n\n\u{200b}xyz";
        for a in 0..=src.len() + 2 {
            for b in a..=src.len() + 2 {
                let e = excerpt(src, a..b);
                assert!(e.label.end <= e.text.len(), "{a}..{b}");
                assert!(e.text.is_char_boundary(e.label.start), "{a}..{b}");
                assert!(e.text.is_char_boundary(e.label.end), "{a}..{b}");
            }
        }
    }
}
