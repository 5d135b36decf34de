//! Reading job files: one JSON job, a JSON array of jobs, or JSONL (one job per line).
//!
//! JSONL is streamed line by line, so a ledger of any size is read in constant memory. A
//! single document or an array is read whole. Every record carries the 1-based line where it
//! starts. A broken line in JSONL is one `invalid` record and reading goes on; broken syntax
//! inside an array or a multi-line document leaves the rest unreadable, which is reported as
//! one final `invalid` record naming the line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;

use crate::engine::job::strict::{
    JobRecord, MAX_LINE_BYTES, StrictJob, StrictJson, invalid, parse_line, read_value,
    strip_position,
};

/// Opens `path` (or stdin for `-`) as a stream of job records.
pub fn open_jobs(path: &Path) -> io::Result<JobReader<Box<dyn BufRead + Send>>> {
    let input: Box<dyn BufRead + Send> = if path.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(1 << 16, io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, File::open(path)?))
    };
    Ok(JobReader::new(input))
}

enum Mode {
    /// Not yet known: the first non-blank line decides.
    Start,
    Lines,
    /// Records parsed up front (array or multi-line document).
    Buffered(std::vec::IntoIter<JobRecord>),
    Done,
}

/// An iterator of job records from a reader.
pub struct JobReader<R> {
    input: R,
    mode: Mode,
    /// Lines consumed so far.
    line: u64,
    buf: Vec<u8>,
    /// The start of a line that the last block cut off, for the next block.
    carry: Vec<u8>,
    /// An I/O error that ended reading, reported once by the caller.
    pub io_error: Option<io::Error>,
}

impl<R: BufRead> JobReader<R> {
    pub fn new(input: R) -> Self {
        JobReader {
            input,
            mode: Mode::Start,
            line: 0,
            buf: Vec::with_capacity(1024),
            carry: Vec::new(),
            io_error: None,
        }
    }

    /// Reads the next line into `self.buf` (without the line end); false at end of input.
    fn read_line(&mut self) -> bool {
        self.buf.clear();
        let mut buf = std::mem::take(&mut self.buf);
        let got = self.read_line_into(&mut buf);
        self.buf = buf;
        got
    }

    /// Appends the next line (without its line end; a first-line BOM removed) to `buf`.
    /// An overlong line is cut to `MAX_LINE_BYTES + 1` bytes (which marks it invalid) and the
    /// rest of it skipped without being stored. False at the end of input or on an I/O error.
    fn read_line_into(&mut self, buf: &mut Vec<u8>) -> bool {
        let start = buf.len();
        let limit = (MAX_LINE_BYTES + 2) as u64;
        match (&mut self.input).take(limit).read_until(b'\n', buf) {
            Ok(0) => false,
            Ok(_) => {
                self.line += 1;
                if (buf.len() - start) as u64 >= limit && buf.last() != Some(&b'\n') {
                    skip_line(&mut self.input);
                    buf.truncate(start + MAX_LINE_BYTES + 1);
                    return true;
                }
                while buf.len() > start && matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                if self.line == 1 && buf[start..].starts_with(b"\xEF\xBB\xBF") {
                    buf.drain(start..start + 3);
                }
                true
            }
            Err(e) => {
                self.io_error = Some(e);
                false
            }
        }
    }

    fn line_record(&self) -> JobRecord {
        parse_line(self.line, &self.buf)
    }

    fn start(&mut self) -> Option<JobRecord> {
        match self.start_mode() {
            Start::Done => None,
            Start::Line => Some(self.line_record()),
            Start::Record(r) => Some(r),
        }
    }

    /// Reads up to the first content and decides the mode: JSONL (the first line is left
    /// in `self.buf`), or a whole document parsed up front.
    fn start_mode(&mut self) -> Start {
        // Skip blank lines to the first content.
        loop {
            if !self.read_line() {
                self.mode = Mode::Done;
                return Start::Done;
            }
            if !is_blank(&self.buf) {
                break;
            }
        }
        let first_line = self.line;
        let trimmed = trim_start(&self.buf);
        if trimmed.first() == Some(&b'[') || is_document_start(&self.buf) {
            // An array or a multi-line document: read it whole.
            let mut all = std::mem::take(&mut self.buf);
            all.push(b'\n');
            if let Err(e) = self.input.read_to_end(&mut all) {
                self.io_error = Some(e);
            }
            let records = if trim_start(&all).first() == Some(&b'[') {
                parse_array(&all, first_line)
            } else {
                parse_documents(&all, first_line)
            };
            let mut it = records.into_iter();
            let first = it.next();
            self.mode = Mode::Buffered(it);
            return first.map_or(Start::Done, Start::Record);
        }
        self.mode = Mode::Lines;
        Start::Line
    }

    /// The next item without parsing JSONL lines: a line's bytes are appended to `out` for
    /// the caller to parse (with [`parse_line`], possibly on another thread), while records of
    /// a JSON array or document come parsed. Used by the parallel ledger scorer.
    pub fn next_raw(&mut self, out: &mut Vec<u8>) -> Option<RawItem> {
        match &mut self.mode {
            Mode::Start => match self.start_mode() {
                Start::Done => None,
                Start::Line => {
                    out.extend_from_slice(&self.buf);
                    Some(RawItem::Line(self.line))
                }
                Start::Record(r) => Some(RawItem::Record(r)),
            },
            Mode::Lines => loop {
                let start = out.len();
                if !self.read_line_into(out) {
                    self.mode = Mode::Done;
                    return None;
                }
                if !is_blank(&out[start..]) {
                    return Some(RawItem::Line(self.line));
                }
                out.truncate(start);
            },
            Mode::Buffered(it) => it.next().map(RawItem::Record),
            Mode::Done => None,
        }
    }

    /// The next item for the parallel pipeline: like [`Self::next_raw`], except that JSONL
    /// after the first line comes as a block of whole raw lines, about `target` bytes,
    /// appended to `out` for a worker to cut with [`block_lines`]. The reader thread copies
    /// no line and parses nothing.
    pub fn next_block(&mut self, out: &mut Vec<u8>, target: usize) -> Option<Chunk> {
        match self.mode {
            Mode::Lines => self.read_block(out, target).map(Chunk::Block),
            _ => self.next_raw(out).map(|item| match item {
                RawItem::Line(line) => Chunk::Line(line),
                RawItem::Record(r) => Chunk::Record(r),
            }),
        }
    }

    /// Appends whole lines (each with its `\n`, the last one at the end of input without) to
    /// `out`, at least `target` bytes unless the input ends; returns the number of the first.
    /// A line longer than [`MAX_LINE_BYTES`] + 1 keeps only its first `MAX_LINE_BYTES + 2`
    /// bytes (enough for [`line_text`] to know it is overlong) and the rest is skipped unread,
    /// so memory stays bounded.
    fn read_block(&mut self, out: &mut Vec<u8>, target: usize) -> Option<u64> {
        let first = self.line + 1;
        let start = out.len();
        out.append(&mut self.carry);
        // Where the line being read starts, and how far it has been searched for its end.
        let mut line_start = start;
        let mut searched = start;
        let mut eof = false;
        let mut failed = None;
        loop {
            // Count and pass the complete lines read so far (memchr counts without stopping
            // at each match; then one search from the end).
            let fresh = &out[searched..];
            let lines = memchr::memchr_iter(b'\n', fresh).count();
            if lines > 0 {
                self.line += lines as u64;
                line_start = searched + memchr::memrchr(b'\n', fresh).map_or(0, |i| i + 1);
            }
            searched = out.len();
            if let Some(e) = failed {
                self.io_error = Some(e);
                // The line being read is incomplete: it is not a job.
                out.truncate(line_start);
                self.mode = Mode::Done;
                return (line_start > start).then_some(first);
            }
            if out.len() - line_start > MAX_LINE_BYTES + 1 {
                // Overlong: keep what marks it overlong, drop the rest of it.
                out.truncate(line_start + MAX_LINE_BYTES + 2);
                skip_line(&mut self.input);
                out.push(b'\n');
                self.line += 1;
                line_start = out.len();
                searched = out.len();
            }
            if eof || (out.len() - start >= target && line_start > start) {
                break;
            }
            // Straight into the block's spare capacity: no zeroing, and a BufReader passes
            // large reads through.
            let want = (target + start).saturating_sub(out.len()).max(1 << 16);
            match (&mut self.input).take(want as u64).read_to_end(out) {
                Ok(0) => eof = true,
                Ok(_) => {}
                // Whatever was read before the error is kept, up to its last whole line.
                Err(e) => failed = Some(e),
            }
        }
        if eof {
            self.mode = Mode::Done;
            if line_start < out.len() {
                // The last line, without a line end.
                self.line += 1;
            }
        } else {
            // Keep the partial last line for the next block.
            self.carry.extend_from_slice(&out[line_start..]);
            out.truncate(line_start);
        }
        (out.len() > start).then_some(first)
    }
}

/// An item from [`JobReader::next_block`].
#[derive(Debug)]
pub enum Chunk {
    /// The first JSONL line (already cut, its bytes appended), with its line number.
    Line(u64),
    /// Whole raw JSONL lines (appended), with the number of the first; see [`block_lines`].
    Block(u64),
    /// A record already parsed (from a JSON array or document).
    Record(JobRecord),
}

/// The text of a raw JSONL line (without its `\n`), as the reader gives it: trailing line
/// ends removed, and a line longer than [`MAX_LINE_BYTES`] + 1 bytes cut to that length
/// (which makes it invalid) without removing anything. Blank lines are not jobs.
pub fn line_text(raw: &[u8]) -> Option<&[u8]> {
    let text = if raw.len() > MAX_LINE_BYTES + 1 {
        &raw[..MAX_LINE_BYTES + 1]
    } else {
        let end = raw
            .iter()
            .rposition(|&c| c != b'\r' && c != b'\n')
            .map_or(0, |i| i + 1);
        &raw[..end]
    };
    (!is_blank(text)).then_some(text)
}

/// The jobs of a block from [`JobReader::next_block`] whose first line is `first`: each
/// job's line number and where its text is in the block (see [`line_text`]), blank lines left
/// out.
pub fn block_lines(block: &[u8], first: u64) -> impl Iterator<Item = (u64, Range<usize>)> {
    let mut start = 0;
    let mut line = first;
    let ends = memchr::memchr_iter(b'\n', block)
        .chain((block.last().is_some_and(|&c| c != b'\n')).then_some(block.len()));
    ends.filter_map(move |end| {
        let from = start;
        let n = line;
        start = end + 1;
        line += 1;
        line_text(&block[from..end]).map(|text| (n, from..from + text.len()))
    })
}

enum Start {
    Done,
    Line,
    Record(JobRecord),
}

/// An item from [`JobReader::next_raw`].
#[derive(Debug)]
pub enum RawItem {
    /// A JSONL line (its bytes were appended to the caller's buffer), with its line number.
    Line(u64),
    /// A record already parsed (from a JSON array or document).
    Record(JobRecord),
}

impl<R: BufRead> Iterator for JobReader<R> {
    type Item = JobRecord;

    fn next(&mut self) -> Option<JobRecord> {
        match &mut self.mode {
            Mode::Start => self.start(),
            Mode::Lines => loop {
                if !self.read_line() {
                    self.mode = Mode::Done;
                    return None;
                }
                if !is_blank(&self.buf) {
                    return Some(self.line_record());
                }
            },
            Mode::Buffered(it) => it.next(),
            Mode::Done => None,
        }
    }
}

/// Consumes input up to and including the next newline, without keeping it.
fn skip_line<R: BufRead>(input: &mut R) {
    loop {
        let (done, used) = match input.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(chunk) => match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, chunk.len()),
            },
        };
        input.consume(used);
        if done {
            return;
        }
    }
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

fn trim_start(b: &[u8]) -> &[u8] {
    let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

// A multi-line (pretty-printed) document starts with `{` alone on its line, as every pretty
// printer writes it. Anything else is JSONL, so a broken or truncated first line costs one
// `invalid` result, never the rest of the ledger.
fn is_document_start(line: &[u8]) -> bool {
    let t = trim_start(line);
    let end = t
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &t[..end] == b"{"
}

fn lines_in(b: &[u8]) -> u64 {
    memchr_count(b'\n', b)
}

fn memchr_count(needle: u8, hay: &[u8]) -> u64 {
    hay.iter().filter(|&&c| c == needle).count() as u64
}

fn skip_ws(buf: &[u8], mut pos: usize) -> usize {
    while pos < buf.len() && buf[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

/// Parses one JSON value at `pos`; returns it and the position after it.
fn value_at(buf: &[u8], pos: usize) -> Result<(StrictJson, usize), serde_json::Error> {
    read_value(&buf[pos..], false).map(|(v, used)| (v, pos + used))
}

/// After a broken job that starts at `start`: where the next job probably starts. That is
/// the first later line whose first non-blank character is `{`, indented no deeper than the
/// broken job (so an object nested inside it is not taken for the next job). `None` when
/// there is no such line.
fn resync(buf: &[u8], start: usize) -> Option<usize> {
    let line_start = buf[..start]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    let indent = start - line_start;
    let mut at = start + buf[start..].iter().position(|&c| c == b'\n')? + 1;
    loop {
        let first = at
            + buf[at..]
                .iter()
                .take_while(|c| matches!(c, b' ' | b'\t'))
                .count();
        if buf.get(first) == Some(&b'{') && first - at <= indent {
            return Some(first);
        }
        at = first + buf[first..].iter().position(|&c| c == b'\n')? + 1;
    }
}

fn parse_array(buf: &[u8], first_line: u64) -> Vec<JobRecord> {
    let mut out = Vec::new();
    // `first_line` is the line of the first non-blank content; count from the buffer start.
    let base = first_line - 1;
    let line_at = |pos: usize| base + lines_in(&buf[..pos]) + 1;
    let mut pos = skip_ws(buf, 0);
    if buf[pos..].starts_with(b"\xEF\xBB\xBF") {
        pos = skip_ws(buf, pos + 3);
    }
    pos += 1; // '['
    let mut counted_to = 0usize;
    let mut line = base + 1;
    let advance = |to: usize, counted_to: &mut usize, line: &mut u64| {
        *line += lines_in(&buf[*counted_to..to]);
        *counted_to = to;
    };
    pos = skip_ws(buf, pos);
    if buf.get(pos) == Some(&b']') {
        return out;
    }
    loop {
        pos = skip_ws(buf, pos);
        advance(pos, &mut counted_to, &mut line);
        match value_at(buf, pos) {
            Ok((v, end)) => {
                out.push(Ok(StrictJob::new(line, v)));
                pos = skip_ws(buf, end);
            }
            Err(e) => {
                let at = line + e.line() as u64 - 1;
                let next = resync(buf, pos);
                out.push(Err(invalid(
                    line,
                    format!(
                        "broken JSON in array element at line {at} column {}: {}{}",
                        e.column(),
                        strip_position(&e.to_string()),
                        if next.is_some() {
                            ""
                        } else {
                            "; the rest of the file could not be read"
                        }
                    ),
                )));
                match next {
                    // Go on with the next element, so one bad element costs one result.
                    Some(next) => {
                        pos = next;
                        continue;
                    }
                    None => return out,
                }
            }
        }
        match buf.get(pos) {
            Some(b',') => pos += 1,
            Some(b']') => {
                let rest = skip_ws(buf, pos + 1);
                if rest < buf.len() {
                    out.push(Err(invalid(
                        line_at(rest),
                        "unexpected data after the closing `]` of the job array".into(),
                    )));
                }
                return out;
            }
            Some(c) => {
                out.push(Err(invalid(
                    line_at(pos),
                    format!("expected `,` or `]` between array elements, found `{}`; the rest of the file could not be read", *c as char),
                )));
                return out;
            }
            None => {
                out.push(Err(invalid(
                    line_at(pos.min(buf.len())),
                    "job array is not closed with `]` (truncated file?)".into(),
                )));
                return out;
            }
        }
    }
}

fn parse_documents(buf: &[u8], first_line: u64) -> Vec<JobRecord> {
    let mut out = Vec::new();
    let base = first_line - 1;
    let mut pos = 0usize;
    loop {
        pos = skip_ws(buf, pos);
        if pos >= buf.len() {
            return out;
        }
        let line = base + lines_in(&buf[..pos]) + 1;
        match value_at(buf, pos) {
            Ok((v, end)) => {
                out.push(Ok(StrictJob::new(line, v)));
                pos = end;
            }
            Err(e) => {
                let at = line + e.line() as u64 - 1;
                let next = resync(buf, pos);
                out.push(Err(invalid(
                    line,
                    format!(
                        "broken JSON at line {at} column {}: {}{}",
                        e.column(),
                        strip_position(&e.to_string()),
                        if next.is_some() {
                            ""
                        } else {
                            "; the rest of the file could not be read"
                        }
                    ),
                )));
                match next {
                    Some(next) => pos = next,
                    None => return out,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Vec<Result<u64, (u64, String)>> {
        JobReader::new(s.as_bytes())
            .map(|r| {
                let r = problem(r);
                r.map_err(|e| (e.line, e.message))
            })
            .collect()
    }

    /// A record's line, or its line and the message that makes it invalid (as scored).
    fn problem(r: JobRecord) -> Result<u64, crate::engine::job::JobError> {
        use crate::engine::job::JobSource;
        let job = r?;
        match (&job).problem() {
            None => Ok(job.line),
            Some((_, message)) => Err(invalid(job.line, message)),
        }
    }

    #[test]
    fn jsonl_keeps_going_after_a_bad_line() {
        let r = read("{\"model\":\"a\"}\n{broken\n\n{\"model\":\"b\"}\r\n");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], Ok(1));
        assert!(matches!(&r[1], Err((2, m)) if m.contains("broken JSON")));
        assert_eq!(r[2], Ok(4));
    }

    #[test]
    fn arrays_carry_element_lines() {
        let r = read("[\n  {\"model\":\"a\"},\n  42,\n  {\"model\":\"b\"}\n]\n");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], Ok(2));
        assert!(matches!(&r[1], Err((3, m)) if m.contains("expected a JSON object")));
        assert_eq!(r[2], Ok(4));
    }

    #[test]
    fn pretty_single_document() {
        let r = read("\n{\n  \"model\": \"a\"\n}\n");
        assert_eq!(r, vec![Ok(2)]);
    }

    #[test]
    fn overlong_lines_are_cut_and_skipped() {
        let mut text = String::from("{\"model\":\"a\"}\n{\"model\":\"");
        text.push_str(&"x".repeat(MAX_LINE_BYTES + 10));
        text.push_str("\"}\n{\"model\":\"b\"}\n");
        let r = read(&text);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], Ok(1));
        assert!(matches!(&r[1], Err((2, m)) if m.contains("longer than")));
        assert_eq!(r[2], Ok(3));
        // The parallel reader sees the same lines.
        let mut reader = JobReader::new(text.as_bytes());
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while let Some(item) = reader.next_raw(&mut buf) {
            if let RawItem::Line(n) = item {
                lines.push(n);
            }
        }
        assert_eq!(lines, [1, 2, 3]);
        assert_eq!(buf.len(), 13 + MAX_LINE_BYTES + 1 + 13);
    }

    /// Every JSONL job as `(line, text)`, read line by line (`next_raw`).
    fn by_lines(input: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut reader = JobReader::new(input);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(item) = reader.next_raw(&mut buf) {
            if let RawItem::Line(n) = item {
                out.push((n, std::mem::take(&mut buf)));
            }
        }
        out
    }

    /// The same, read in blocks of about `target` bytes (`next_block`) and cut the way the
    /// workers cut them; each block also ends where a line does.
    fn by_blocks(input: &[u8], target: usize) -> Vec<(u64, Vec<u8>)> {
        let mut reader = JobReader::new(BufReader::with_capacity(7, input));
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            match reader.next_block(&mut buf, target) {
                Some(Chunk::Line(n)) => out.push((n, buf)),
                Some(Chunk::Block(first)) => {
                    let ends_a_line = reader.carry.is_empty() || buf.last() == Some(&b'\n');
                    assert!(ends_a_line, "a block ends at a line end");
                    for (n, range) in block_lines(&buf, first) {
                        out.push((n, buf[range].to_vec()));
                    }
                }
                Some(Chunk::Record(_)) => panic!("JSONL"),
                None => return out,
            }
        }
    }

    #[test]
    fn blocks_cut_the_same_lines_as_line_by_line_reading() {
        // A job of MAX_LINE_BYTES - 1 bytes.
        let mut long = b"{\"model\":\"".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES - 13));
        long.extend_from_slice(b"\"}");
        assert_eq!(long.len(), MAX_LINE_BYTES - 1);
        // MAX_LINE_BYTES + 1 bytes before its `\n`: not overlong; stripped, it is the job.
        let mut fits = long.clone();
        fits.extend_from_slice(b"\r\r\n");
        // MAX_LINE_BYTES + 2 bytes before its `\n`: overlong, cut to MAX_LINE_BYTES + 1 (ending
        // in `\r\r`), nothing stripped.
        let mut over = long.clone();
        over.extend_from_slice(b"\r\r\r\n");
        let mut blank_over = vec![b' '; MAX_LINE_BYTES + 5];
        blank_over.push(b'\n');
        let inputs: Vec<Vec<u8>> = vec![
            b"\xEF\xBB\xBF{\"a\":1}\r\n{\"b\":2}\r\n\r\n  \t\n{\"c\":3}".to_vec(),
            b"\n\n{\"a\":1}\n\x0c\n\r\r\n{\"b\":\"x\ry\"}\r\r\n{}\n".to_vec(),
            b"{\"a\":1}\n\xEF\xBB\xBF{\"b\":2}\n{\"c\":\"\xff\"}\n{\"d\"".to_vec(),
            [b"{}\n".to_vec(), fits, over.clone(), b"{}\n".to_vec()].concat(),
            [b"{}\n".to_vec(), blank_over, b"{}".to_vec()].concat(),
            [b"{}\n".to_vec(), over[..over.len() - 1].to_vec()].concat(),
            b"{\"a\":1}\n".repeat(1000),
        ];
        for input in &inputs {
            let want = by_lines(input);
            for target in [1, 10, 100, 1 << 20] {
                assert!(by_blocks(input, target) == want, "target {target}");
            }
        }
    }

    #[test]
    fn a_broken_first_line_does_not_hide_the_rest() {
        let r = read("{\"model\":\"a\",\"width\":512,\n{\"model\":\"b\"}\n");
        assert_eq!(r.len(), 2);
        assert!(r[0].is_err());
        assert_eq!(r[1], Ok(2));
    }

    #[test]
    fn truncated_array_is_reported() {
        let r = read("[{\"model\":\"a\"},\n{\"model\":");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], Ok(1));
        assert!(r[1].is_err());
    }

    #[test]
    fn bom_and_crlf() {
        let r = read("\u{feff}{\"model\":\"a\"}\r\n{\"model\":\"b\"}\r\n");
        assert_eq!(r, vec![Ok(1), Ok(2)]);
    }

    #[test]
    fn invalid_utf8_line() {
        let mut bytes = b"{\"model\":\"a\"}\n".to_vec();
        bytes.extend_from_slice(b"{\"model\":\"\xff\"}\n");
        let r: Vec<_> = JobReader::new(&bytes[..]).collect();
        assert_eq!(r.len(), 2);
        assert!(r[1].as_ref().unwrap_err().message.contains("UTF-8"));
    }
}
