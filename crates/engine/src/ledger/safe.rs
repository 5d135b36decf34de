//! Text from jobs made safe to show: on a terminal, in a spreadsheet. Job strings (ids,
//! models, miners) come from miners, so every writer of people-facing output passes them here.

use std::borrow::Cow;

/// `s` as it may be shown on a terminal: control characters (ANSI escapes, CR, LF, ...) and
/// the Unicode controls that reorder text are shown escaped (`\u{1b}`), so a job's strings
/// (ids, models, miners come from miners) cannot move the cursor, recolour or fake rows.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` as a CSV cell a spreadsheet will not run: a cell starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return gets a leading `'` (OWASP's advice against CSV injection), unless
/// it is a lone `-` (a value a job lacks, in a tally) or a plain negative number (`-1.5`),
/// which no spreadsheet runs (#22: the tally's dash read `'-`).
pub fn csv_safe(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s != "-" && !plain_number(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// `-12`, `-3.25`: a minus, digits, and at most one `.` between digits (a spreadsheet reads
/// it as the number; a leading `+` makes it a formula, so it keeps its quote).
fn plain_number(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('-') else {
        return false;
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && all_digits(frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_that_could_run_are_quoted_and_plain_values_are_not() {
        for (cell, shown) in [
            ("=1+2", "'=1+2"),
            ("-2+3", "'-2+3"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-1.", "'-1."),
            ("-.5", "'-.5"),
            ("--", "'--"),
            ("-", "-"),
            ("-1.5", "-1.5"),
            ("+3", "'+3"),
            ("miner-1", "miner-1"),
        ] {
            assert_eq!(csv_safe(cell), shown, "{cell}");
        }
    }
}
