//! The structural scanner that cuts arrays and pretty-printed documents into job texts:
//! strings, brackets and the order of keys, colons, values and commas; no values are parsed.

use super::*;

/// How a job's scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JobEnd {
    Closed,
    /// A line starting the next job was found while this one was still open.
    Split,
    /// The top-level array's `]` came while this element was still open.
    ArrayEnds,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    More,
    Closed,
    Split,
    ArrayEnds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Value,
    ValueOrClose,
    Key,
    KeyOrClose,
    Colon,
    CommaOrClose,
}

/// The scanner's view of one job: open brackets and what may come next.
pub(super) struct Scan {
    /// Column (1-based) of the job's first byte.
    pub(super) col: u64,
    pub(super) stack: Vec<u8>,
    /// Brackets open beyond [`MAX_TRACKED_DEPTH`], only counted.
    pub(super) deep: u64,
    pub(super) expect: Expect,
    /// The first structural problem, with its place.
    pub(super) problem: Option<String>,
    /// The next token is the first on its line.
    pub(super) first_on_line: bool,
    /// The last token was a `:` and its line ended after it.
    pub(super) colon_ended_line: bool,
    pub(super) last_was_colon: bool,
    /// The string or bare token being read, if any.
    pub(super) token: Token,
    /// The last byte read was the backslash of an escape in a string.
    pub(super) escaped: bool,
}

/// A token that may straddle two reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    None,
    /// A string; `key` when it is an object key.
    Str {
        key: bool,
    },
    /// A number, literal or junk.
    Bare {
        key: bool,
    },
}

impl Scan {
    pub(super) fn in_object(&self) -> bool {
        self.deep == 0 && self.stack.last() == Some(&b'{')
    }

    pub(super) fn push(&mut self, b: u8) {
        if self.stack.len() < MAX_TRACKED_DEPTH && self.deep == 0 {
            self.stack.push(b);
        } else {
            self.deep += 1;
        }
        self.expect = if b == b'{' {
            Expect::KeyOrClose
        } else {
            Expect::ValueOrClose
        };
    }

    pub(super) fn pop(&mut self) {
        if self.deep > 0 {
            self.deep -= 1;
        } else {
            self.stack.pop();
        }
    }

    /// After a value: the job is done when nothing is open.
    pub(super) fn after_value(&mut self) -> Step {
        if self.stack.is_empty() && self.deep == 0 {
            Step::Closed
        } else {
            self.expect = Expect::CommaOrClose;
            Step::More
        }
    }

    /// A string or bare token starts: whether it is a key (else a value). Where neither
    /// fits, the problem is noted and the likeliest reading taken (a missing `,` or `:`).
    pub(super) fn scalar(&mut self, line: u64, col: u64, b: u8) -> bool {
        match self.expect {
            Expect::Key | Expect::KeyOrClose => {
                if b != b'"' {
                    self.fail(line, col, b);
                }
                true
            }
            Expect::Value | Expect::ValueOrClose => false,
            Expect::Colon => {
                self.fail(line, col, b);
                false
            }
            Expect::CommaOrClose => {
                self.fail(line, col, b);
                self.in_object()
            }
        }
    }

    pub(super) fn after_scalar(&mut self, key: bool) -> Step {
        if key {
            self.expect = Expect::Colon;
            Step::More
        } else {
            self.after_value()
        }
    }

    pub(super) fn fail(&mut self, line: u64, col: u64, found: u8) {
        if self.problem.is_some() {
            return;
        }
        let want = match self.expect {
            Expect::Value => "a value",
            Expect::ValueOrClose => "a value or `]`",
            Expect::Key => "a key (a string)",
            Expect::KeyOrClose => "a key (a string) or `}`",
            Expect::Colon => "`:`",
            Expect::CommaOrClose if self.in_object() => "`,` or `}`",
            Expect::CommaOrClose => "`,` or `]`",
        };
        let found = if found.is_ascii_graphic() {
            format!("`{}`", found as char)
        } else {
            format!("byte 0x{found:02x}")
        };
        self.fail_with(line, col, format!("expected {want}, found {found}"));
    }

    pub(super) fn fail_with(&mut self, line: u64, col: u64, what: String) {
        if self.problem.is_none() {
            self.problem = Some(format!("broken JSON at line {line} column {col}: {what}"));
        }
    }
}

/// Appends `bytes` of a job to its text in `out`, keeping at most `MAX_LINE_BYTES + 1`
/// bytes (enough to know it is too long).
pub(super) fn copy_job(out: &mut Vec<u8>, out_start: usize, bytes: &[u8]) {
    let room = (MAX_LINE_BYTES + 1).saturating_sub(out.len() - out_start);
    out.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Removes trailing whitespace from the job text at `out[start..]`.
pub(super) fn trim_end(out: &mut Vec<u8>, start: usize) {
    let keep = out[start..]
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| start + i + 1);
    out.truncate(keep);
}

/// Ends a bare token (a number, literal or junk).
pub(super) fn is_delimiter(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'{' | b'}' | b'[' | b']' | b':' | b',' | b'"'
    )
}
