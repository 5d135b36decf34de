//! Reading job files: JSONL (one job per line), JSON arrays of jobs, pretty-printed
//! (multi-line) documents, and any mix of them, streamed in one pass in bounded memory.
//!
//! Lines that look like whole jobs (`{` … `}` on one line, or anything that is not the start of
//! an array or of an object continued on the next lines) are JSONL: the reader passes them on
//! in blocks of about 1 MiB cut at line ends without looking inside them, and the workers cut
//! and parse them. Everything else — an array, or an object that goes on past its first line —
//! is cut into jobs by a small structural scanner (strings, brackets, and the order of keys,
//! colons, values and commas; no values are parsed): each element of an array and each
//! document is one job text, parsed later like a JSONL line. A job text never exceeds
//! [`MAX_LINE_BYTES`] in memory: a longer one is kept cut (which makes it invalid) and the rest
//! of it is scanned without being stored.
//!
//! Every job gives one record, and a broken job costs only itself. The scanner resynchronises:
//! - after an element whose brackets and quotes balance (a bad token, a missing `:` or `,`
//!   inside it, a bad value), at the next element: the broken one is one `invalid` record;
//! - a string cannot run past the end of its line (JSON strings hold no raw line end);
//! - an object or array left open (a truncated job) ends at a line that starts no further
//!   right than the job's own opening bracket with something the job cannot go on with (a
//!   `{`, `[`, string or number where a key, a `,` or a closing bracket was due), or with a
//!   value after a `:` that ended its line: pretty printers put a value on its key's line and
//!   indent nested values, so a valid job is never cut there (keys at the job's own column, as
//!   Python's `indent=0` writes them, are expected and stay in the job);
//! - a missing `,` between two elements makes the second one `invalid`, and reading goes on.
//!
//! What is not a job — an empty element (`,,`), a stray `]`, an array never closed — is one
//! `invalid` record of its own. Line ends may be LF, CRLF or CR alone; a UTF-8 BOM at the start
//! is skipped; blank lines are skipped. Every record carries the 1-based line where its job
//! starts.

use std::io::{self, Read};
use std::ops::Range;

use crate::engine::job::strict::{JobRecord, MAX_LINE_BYTES, invalid, parse_line};
use crate::engine::score::JobInput;

mod ledger;
mod scan;

pub use ledger::{BlockSource, Ledger, block_lines, line_text};
use scan::*;

/// How much is read at a time into the reader's own buffer.
const READ_CHUNK: usize = 1 << 16;
/// Nesting the scanner tracks bracket by bracket; deeper (only in invalid jobs: serde_json
/// stops at 128) it only counts.
const MAX_TRACKED_DEPTH: usize = 4096;
/// Bytes per block that [`JobReader::next_raw`] cuts lines from.
const RAW_BLOCK: usize = 1 << 16;

/// What a line of JSONL mode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Blank,
    /// A job on one line (or something that is no job at all): passed on as a JSONL line.
    Line,
    /// The start of an array, or of an object that goes on past its line: for the scanner.
    Frame,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between values, at the start of a line (or of what is left of one).
    Lines,
    /// Inside a top-level array, or at the start of a multi-line value.
    Framing,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// After `[` (or after an element that was cut short): an element or `]`.
    Open,
    /// After `,`: an element.
    AfterComma,
    /// After an element: `,` or `]`.
    AfterElement,
}

/// The top-level array being read.
#[derive(Debug)]
struct ArrayCtx {
    line: u64,
    state: ArrayState,
    /// Where the `,` should have been before the next element, when it was missing.
    missing_comma: Option<(u64, u64)>,
}

/// An iterator of job records from a reader (and, for the ledger pipeline, of raw job texts
/// and blocks of JSONL lines; see [`JobReader::next_block`]).
pub struct JobReader<R> {
    input: R,
    /// Bytes read and not yet consumed: `pending[pos..]`.
    pending: Vec<u8>,
    pos: usize,
    /// Stream offset of `pending[0]` (for columns).
    base: i64,
    /// Stream offset where the current line starts.
    line_start: i64,
    /// Lines ended before `pending[pos]`.
    line: u64,
    eof: bool,
    /// A CR ended the last read: whether it is a line end of its own depends on the next byte.
    held_cr: bool,
    started: bool,
    /// Whether anything but blank lines has been read (only the first content may be an
    /// array written on one line; later, `[...]` on a line is a JSONL line).
    seen_content: bool,
    state: State,
    array: Option<ArrayCtx>,
    /// Lines of a block being handed out one by one by [`Self::next_raw`].
    raw: RawLines,
    /// An I/O error that ended reading, reported once by the caller.
    pub io_error: Option<io::Error>,
}

#[derive(Default)]
struct RawLines {
    buf: Vec<u8>,
    at: usize,
    line: u64,
}

/// An item from [`JobReader::next_block`].
#[derive(Debug)]
pub enum Chunk {
    /// One job's text (an array element or a multi-line document) appended, with the line
    /// where it starts; it is parsed like a JSONL line. A text longer than
    /// [`MAX_LINE_BYTES`] is cut to `MAX_LINE_BYTES + 1` bytes, which makes it invalid.
    Job(u64),
    /// Whole raw JSONL lines (appended), with the number of the first; see [`block_lines`].
    Block(u64),
    /// A record decided by the reader: a job whose structure is broken, or something that is
    /// not a job (an empty array element, an unclosed array).
    Record(JobRecord),
}

/// An item from [`JobReader::next_raw`].
#[derive(Debug)]
pub enum RawItem {
    /// One job's text (a JSONL line, an array element, a document) was appended to the
    /// caller's buffer, with the line where it starts; parse it with [`parse_line`].
    Line(u64),
    /// A record decided by the reader (see [`Chunk::Record`]).
    Record(JobRecord),
}

impl RawItem {
    /// The job this item stands for, given the buffer [`JobReader::next_raw`] appended to.
    pub fn job<'a>(&'a self, buf: &'a [u8]) -> JobInput<'a> {
        match self {
            RawItem::Line(line) => JobInput::Line {
                line: *line,
                bytes: buf,
            },
            RawItem::Record(record) => JobInput::Record(record),
        }
    }
}

impl<R: Read> JobReader<R> {
    pub fn new(input: R) -> Self {
        JobReader {
            input,
            pending: Vec::new(),
            pos: 0,
            base: 0,
            line_start: 0,
            line: 0,
            eof: false,
            held_cr: false,
            started: false,
            seen_content: false,
            state: State::Lines,
            array: None,
            raw: RawLines::default(),
            io_error: None,
        }
    }

    /// Appends up to `want` bytes of input to `buf`, with every CR that is not followed by LF
    /// turned into LF (a raw CR can only be whitespace in JSON, so no job changes; a file with
    /// CR line ends gets its lines). Returns the bytes appended; 0 at the end of the input.
    fn read_more(&mut self, buf: &mut Vec<u8>, want: usize) -> usize {
        if self.eof {
            return 0;
        }
        let start = buf.len();
        if self.held_cr {
            buf.push(b'\r');
            self.held_cr = false;
        }
        match (&mut self.input).take(want as u64).read_to_end(buf) {
            Ok(0) => self.eof = true,
            Ok(_) => {}
            Err(e) => {
                // What was read before the error is kept; reading stops.
                self.io_error = Some(e);
                self.eof = true;
            }
        }
        let fresh = &mut buf[start..];
        let mut i = 0;
        while let Some(at) = memchr::memchr(b'\r', &fresh[i..]) {
            let at = i + at;
            match fresh.get(at + 1) {
                Some(b'\n') => {}
                Some(_) => fresh[at] = b'\n',
                None if self.eof => fresh[at] = b'\n',
                None => {}
            }
            i = at + 1;
        }
        if !self.eof && buf.len() > start && buf.last() == Some(&b'\r') {
            // Undecided until the next byte is known.
            buf.pop();
            self.held_cr = true;
        }
        buf.len() - start
    }

    /// Reads more into `pending` (dropping what was consumed); false at the end of input.
    fn fill(&mut self) -> bool {
        if self.pos > 0 {
            self.pending.drain(..self.pos);
            self.base += self.pos as i64;
            self.pos = 0;
        }
        let mut buf = std::mem::take(&mut self.pending);
        let got = self.read_more(&mut buf, READ_CHUNK);
        self.pending = buf;
        got > 0
    }

    fn abs(&self, pos: usize) -> i64 {
        self.base + pos as i64
    }

    /// The first read: a UTF-8 BOM at the very start is not content.
    fn start(&mut self) {
        self.started = true;
        while self.pending.len() < 3 && self.fill() {}
        if self.pending.starts_with(b"\xEF\xBB\xBF") {
            self.pos = 3;
            self.line_start = 3;
        }
    }

    /// The next item for the parallel pipeline: JSONL lines come as a block of whole raw
    /// lines, about `target` bytes, appended to `out` for a worker to cut with
    /// [`block_lines`] (the reader copies no line and parses nothing); array elements and
    /// multi-line documents come one job text at a time.
    pub fn next_block(&mut self, out: &mut Vec<u8>, target: usize) -> Option<Chunk> {
        if !self.started {
            self.start();
        }
        loop {
            match self.state {
                State::Done => return None,
                State::Lines => {
                    if let Some(chunk) = self.read_lines(out, target) {
                        return Some(chunk);
                    }
                }
                State::Framing => {
                    if let Some(chunk) = self.frame(out) {
                        return Some(chunk);
                    }
                }
            }
        }
    }

    /// The next job, one at a time, on this thread: its text is appended to `out` for the
    /// caller to parse (with [`parse_line`]), or a record the reader decided is returned.
    pub fn next_raw(&mut self, out: &mut Vec<u8>) -> Option<RawItem> {
        let mut raw = std::mem::take(&mut self.raw);
        let item = raw.next_item(|buf, target| self.next_block(buf, target), out);
        self.raw = raw;
        item
    }

    /// JSONL mode: appends whole lines that are jobs on their own to `out` and returns them
    /// as a block; stops before a line that starts an array or a multi-line object (the state
    /// becomes [`State::Framing`]). `None` when it changed state without a block.
    fn read_lines(&mut self, out: &mut Vec<u8>, target: usize) -> Option<Chunk> {
        let start = out.len();
        let first = self.line + 1;
        // What is already in `pending`: copied line by line (it is at most a read ahead).
        loop {
            let rest = &self.pending[self.pos..];
            let end = match memchr::memchr(b'\n', rest) {
                Some(i) => i,
                None if self.eof && !rest.is_empty() && self.io_error.is_none() => rest.len(),
                None => break,
            };
            match classify(&rest[..end], self.seen_content) {
                Class::Frame => {
                    self.state = State::Framing;
                    return (out.len() > start).then_some(Chunk::Block(first));
                }
                class => {
                    self.seen_content |= class == Class::Line;
                    let with_end = (end + 1).min(rest.len());
                    out.extend_from_slice(&rest[..with_end]);
                    self.pos += with_end;
                    self.line += 1;
                    self.line_start = self.abs(self.pos);
                }
            }
            if out.len() - start >= target {
                return Some(Chunk::Block(first));
            }
        }
        if self.eof {
            self.state = State::Done;
            return (out.len() > start).then_some(Chunk::Block(first));
        }
        // Then straight into the block: the partial line left in `pending` first.
        let region = out.len();
        let region_abs = self.abs(self.pos);
        let first_line_start = self.line_start;
        out.extend_from_slice(&self.pending[self.pos..]);
        self.pending.clear();
        self.pos = 0;
        let mut line_start = region;
        let mut searched = region;
        // While the rest of an overlong line is being skipped: where the kept part ends.
        let mut skipping: Option<usize> = None;
        loop {
            if let Some(keep) = skipping {
                match memchr::memchr(b'\n', &out[keep..]) {
                    Some(i) => {
                        out.drain(keep..=keep + i);
                        skipping = None;
                        searched = keep;
                    }
                    None => out.truncate(keep),
                }
            }
            if skipping.is_none() {
                // One pass over the fresh bytes; most lines are decided by their first and
                // last byte.
                let mut frame_at = None;
                let mut lines = 0;
                let mut seen = self.seen_content;
                for i in memchr::memchr_iter(b'\n', &out[searched..]) {
                    let end = searched + i;
                    let line = &out[line_start..end];
                    if line.first() == Some(&b'{') && line.last() == Some(&b'}') {
                        seen = true;
                    } else {
                        match classify(line, seen) {
                            Class::Frame => {
                                frame_at = Some(line_start);
                                break;
                            }
                            class => seen |= class == Class::Line,
                        }
                    }
                    lines += 1;
                    line_start = end + 1;
                }
                self.line += lines;
                self.seen_content = seen;
                if let Some(at) = frame_at {
                    return self.cut(out, start, first, at, region, region_abs, first_line_start);
                }
                searched = out.len();
                if !self.seen_content
                    && classify_start(&out[line_start..], false) == Some(Class::Frame)
                {
                    // The file starts with an array: for the scanner now, not at its line's
                    // end (an array on one line may be the whole file).
                    return self.cut(
                        out,
                        start,
                        first,
                        line_start,
                        region,
                        region_abs,
                        first_line_start,
                    );
                }
                if out.len() - line_start > MAX_LINE_BYTES + 1 {
                    let line = &out[line_start..];
                    // Overlong: keep what marks it overlong, skip the rest of it unstored.
                    self.seen_content |= !is_blank(&line[..MAX_LINE_BYTES + 1]);
                    out.truncate(line_start + MAX_LINE_BYTES + 2);
                    out.push(b'\n');
                    self.line += 1;
                    line_start = out.len();
                    searched = out.len();
                    skipping = Some(out.len());
                    continue;
                }
            }
            if self.eof {
                break;
            }
            if skipping.is_none() && out.len() - start >= target && line_start > start {
                break;
            }
            let want = (target + start).saturating_sub(out.len()).max(READ_CHUNK);
            self.read_more(out, want);
        }
        if let Some(keep) = skipping {
            // The input ended inside the overlong line.
            out.truncate(keep);
        }
        if self.io_error.is_some() {
            // The line being read is incomplete: it is not a job.
            out.truncate(line_start);
        }
        if self.eof && line_start < out.len() {
            // The last line, without a line end.
            match classify(&out[line_start..], self.seen_content) {
                Class::Frame => {
                    return self.cut(
                        out,
                        start,
                        first,
                        line_start,
                        region,
                        region_abs,
                        first_line_start,
                    );
                }
                class => self.seen_content |= class == Class::Line,
            }
            self.line += 1;
            line_start = out.len();
        }
        if self.eof && line_start == out.len() {
            self.state = State::Done;
        } else {
            // Keep the partial last line for the next block.
            self.pending.extend_from_slice(&out[line_start..]);
            self.base = region_abs + (line_start - region) as i64;
            self.line_start = if line_start == region {
                first_line_start
            } else {
                self.base
            };
            out.truncate(line_start);
        }
        (out.len() > start).then_some(Chunk::Block(first))
    }

    /// Moves the line at `out[line_start..]` (and what follows) back to `pending` for the
    /// scanner, and ends the block before it.
    #[allow(clippy::too_many_arguments)]
    fn cut(
        &mut self,
        out: &mut Vec<u8>,
        start: usize,
        first: u64,
        line_start: usize,
        region: usize,
        region_abs: i64,
        first_line_start: i64,
    ) -> Option<Chunk> {
        self.pending.clear();
        self.pending.extend_from_slice(&out[line_start..]);
        self.pos = 0;
        self.base = region_abs + (line_start - region) as i64;
        self.line_start = if line_start == region {
            first_line_start
        } else {
            self.base
        };
        out.truncate(line_start);
        self.state = State::Framing;
        (out.len() > start).then_some(Chunk::Block(first))
    }

    /// The byte at `pending[pos]`, reading more when needed; `None` at the end of input.
    fn peek(&mut self) -> Option<u8> {
        if self.pos >= self.pending.len() && !self.fill() {
            return None;
        }
        Some(self.pending[self.pos])
    }

    /// Skips whitespace (counting lines); the next byte, if any.
    fn skip_ws(&mut self) -> Option<u8> {
        loop {
            let b = self.peek()?;
            match b {
                b'\n' => self.newline(),
                b' ' | b'\t' | b'\r' | b'\x0c' => self.pos += 1,
                _ => return Some(b),
            }
        }
    }

    /// Consumes the `\n` at `pos`.
    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
        self.line_start = self.abs(self.pos);
    }

    fn column(&self) -> u64 {
        (self.abs(self.pos) - self.line_start).max(0) as u64 + 1
    }

    /// Structural mode: the next job (or record) of a top-level array, or one multi-line
    /// value. `None` when it went back to JSONL mode (or ended) without one.
    fn frame(&mut self, out: &mut Vec<u8>) -> Option<Chunk> {
        loop {
            let Some(b) = self.skip_ws() else {
                self.state = State::Done;
                if self.io_error.is_some() {
                    // Reading failed: the caller reports it; nothing here is a record.
                    return None;
                }
                // An array never closed (its elements, if any, were all read).
                return self.array.take().map(|a| {
                    let message = format!(
                        "the job array that starts at line {} is not closed with `]` (truncated file?)",
                        a.line
                    );
                    Chunk::Record(Err(invalid(a.line, message)))
                });
            };
            let line = self.line + 1;
            let col = self.column();
            let Some(array) = &mut self.array else {
                // One value at the top level.
                self.seen_content = true;
                if b == b'[' {
                    self.array = Some(ArrayCtx {
                        line: self.line + 1,
                        state: ArrayState::Open,
                        missing_comma: None,
                    });
                    self.pos += 1;
                    continue;
                }
                let start = out.len();
                let (chunk, end) = self.job(out, None, false);
                self.state = State::Lines;
                if end == JobEnd::Eof && self.io_error.is_some() {
                    out.truncate(start);
                    return None;
                }
                if end == JobEnd::Closed {
                    // The rest of its last line belongs to the job, as in JSONL: anything but
                    // whitespace there makes it invalid (`trailing characters`).
                    let keep = matches!(chunk, Chunk::Job(_));
                    self.rest_of_line(out, start, keep);
                }
                return Some(chunk);
            };
            match (array.state, b) {
                (ArrayState::AfterElement, b',') => {
                    array.state = ArrayState::AfterComma;
                    self.pos += 1;
                }
                (_, b']') => {
                    let trailing = array.state == ArrayState::AfterComma;
                    self.array = None;
                    self.pos += 1;
                    self.state = State::Lines;
                    if trailing {
                        let message = format!(
                            "broken JSON at line {line} column {col}: `]` after `,` (an empty array element)"
                        );
                        return Some(Chunk::Record(Err(invalid(line, message))));
                    }
                    return None;
                }
                (ArrayState::Open | ArrayState::AfterComma, b',') => {
                    self.pos += 1;
                    let message = format!(
                        "broken JSON at line {line} column {col}: an empty array element (`,` where a job was due)"
                    );
                    return Some(Chunk::Record(Err(invalid(line, message))));
                }
                (_, b'}' | b':') => {
                    self.pos += 1;
                    let message = format!(
                        "broken JSON at line {line} column {col}: unexpected `{}` between array elements",
                        b as char
                    );
                    return Some(Chunk::Record(Err(invalid(line, message))));
                }
                (state, _) => {
                    if state == ArrayState::AfterElement {
                        array.missing_comma = Some((line, col));
                    }
                    let before = array.missing_comma.take().map(|(l, c)| {
                        format!(
                            "broken JSON at line {l} column {c}: missing `,` between array elements"
                        )
                    });
                    let start = out.len();
                    let (mut chunk, end) = self.job(out, before, true);
                    if end == JobEnd::Eof && self.io_error.is_some() {
                        out.truncate(start);
                        self.array = None;
                        self.state = State::Done;
                        return None;
                    }
                    if end == JobEnd::Closed {
                        // A stray `}` or `:` after the element (`{...}}`) is part of it.
                        while let Some(c @ (b'}' | b':')) = self.skip_ws() {
                            let at = (self.line + 1, self.column());
                            self.pos += 1;
                            if let Chunk::Job(job_line) = chunk {
                                out.truncate(start);
                                let message = format!(
                                    "broken JSON at line {} column {}: unexpected `{}` after the job",
                                    at.0, at.1, c as char
                                );
                                chunk = Chunk::Record(Err(invalid(job_line, message)));
                            }
                        }
                    }
                    if let Some(array) = &mut self.array {
                        array.state = match end {
                            JobEnd::Split => ArrayState::Open,
                            _ => ArrayState::AfterElement,
                        };
                    }
                    if end == JobEnd::Eof {
                        // The element already says the input ended inside it.
                        self.array = None;
                        self.state = State::Done;
                    }
                    return Some(chunk);
                }
            }
        }
    }

    /// Consumes the rest of the current line (not its `\n`); with `keep`, appends it to the
    /// job text at `out[start..]` (trailing whitespace is trimmed).
    fn rest_of_line(&mut self, out: &mut Vec<u8>, start: usize, keep: bool) {
        loop {
            if self.pos >= self.pending.len() && !self.fill() {
                break;
            }
            let rest = &self.pending[self.pos..];
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            if keep {
                copy_job(out, start, &rest[..end]);
            }
            self.pos += end;
            if self.pos < self.pending.len() {
                break;
            }
        }
        if keep {
            trim_end(out, start);
        }
    }

    /// Scans one job starting at `pending[pos]` (not whitespace), appending its text to
    /// `out`. `before` is a problem found before it (a missing `,`); `in_array` whether it
    /// is an element of the top-level array (whose `]` may end it).
    fn job(
        &mut self,
        out: &mut Vec<u8>,
        before: Option<String>,
        in_array: bool,
    ) -> (Chunk, JobEnd) {
        let line = self.line + 1;
        let out_start = out.len();
        let mut scan = Scan {
            col: self.column(),
            stack: Vec::new(),
            deep: 0,
            expect: Expect::Value,
            problem: before,
            first_on_line: false,
            colon_ended_line: false,
            last_was_colon: false,
            token: Token::None,
            escaped: false,
        };
        // Copied to `out` up to here; the job's length so far.
        let mut copied = self.pos;
        let end = loop {
            if self.pos >= self.pending.len() {
                copy_job(out, out_start, &self.pending[copied..self.pos]);
                if !self.fill() {
                    break JobEnd::Eof;
                }
                copied = self.pos;
                continue;
            }
            match self.step(&mut scan, in_array) {
                Step::More => {}
                Step::Closed => {
                    copy_job(out, out_start, &self.pending[copied..self.pos]);
                    break JobEnd::Closed;
                }
                end @ (Step::Split | Step::ArrayEnds) => {
                    copy_job(out, out_start, &self.pending[copied..self.pos]);
                    break if end == Step::Split {
                        JobEnd::Split
                    } else {
                        JobEnd::ArrayEnds
                    };
                }
            }
        };
        trim_end(out, out_start);
        // A job cut short (by the next job, the array's `]` or the end of the input) with no
        // problem of its own is left to the strict parser, which says where its text ends
        // (`EOF while parsing ...`, as for a truncated JSONL line): its brackets are open, so
        // it never parses.
        let problem = scan.problem;
        let chunk = match problem {
            Some(message) => {
                out.truncate(out_start);
                Chunk::Record(Err(invalid(line, message)))
            }
            None => Chunk::Job(line),
        };
        (chunk, end)
    }

    /// Advances over one token (or whitespace, or the part of a string or bare token that is
    /// in `pending`) of a job. Never reads: [`Self::job`] refills between calls.
    fn step(&mut self, s: &mut Scan, in_array: bool) -> Step {
        match s.token {
            Token::Str { key } => {
                if std::mem::take(&mut s.escaped) {
                    // The escaped byte, unless it is a line end.
                    if self.pending[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                    return Step::More;
                }
                let rest = &self.pending[self.pos..];
                return match memchr::memchr3(b'"', b'\\', b'\n', rest) {
                    None => {
                        self.pos = self.pending.len();
                        Step::More
                    }
                    Some(i) => {
                        let found = rest[i];
                        self.pos += i + 1;
                        match found {
                            b'"' => {
                                s.token = Token::None;
                                s.after_scalar(key)
                            }
                            b'\\' => {
                                s.escaped = true;
                                Step::More
                            }
                            _ => {
                                // JSON strings hold no raw line end: the line end closes it.
                                self.pos -= 1;
                                let (line, col) = (self.line + 1, self.column());
                                s.fail_with(line, col, "a string is not closed on its line".into());
                                s.token = Token::None;
                                s.after_scalar(key)
                            }
                        }
                    }
                };
            }
            Token::Bare { key } => {
                let rest = &self.pending[self.pos..];
                return match rest.iter().position(|&c| is_delimiter(c)) {
                    None => {
                        self.pos = self.pending.len();
                        Step::More
                    }
                    Some(i) => {
                        self.pos += i;
                        s.token = Token::None;
                        s.after_scalar(key)
                    }
                };
            }
            Token::None => {}
        }
        let b = self.pending[self.pos];
        match b {
            b'\n' => {
                s.first_on_line = true;
                if s.last_was_colon {
                    s.colon_ended_line = true;
                }
                self.newline();
                return Step::More;
            }
            b' ' | b'\t' | b'\r' | b'\x0c' => {
                self.pos += 1;
                return Step::More;
            }
            _ => {}
        }
        let first_on_line = std::mem::take(&mut s.first_on_line);
        let colon_ended_line = std::mem::take(&mut s.colon_ended_line);
        s.last_was_colon = false;
        let line = self.line + 1;
        let col = self.column();
        self.pos += 1;
        match b {
            b'{' | b'[' => {
                let expected = matches!(s.expect, Expect::Value | Expect::ValueOrClose);
                if (!expected || colon_ended_line) && first_on_line && col <= s.col {
                    // A job left open: this bracket starts the next one.
                    self.pos -= 1;
                    return Step::Split;
                }
                if !expected {
                    s.fail(line, col, b);
                }
                s.push(b);
                Step::More
            }
            b'}' | b']' => {
                let opener = if b == b'}' { b'{' } else { b'[' };
                if s.deep > 0 || s.stack.last() == Some(&opener) {
                    let allowed = matches!(
                        (b, s.expect),
                        (_, Expect::CommaOrClose)
                            | (b'}', Expect::KeyOrClose)
                            | (b']', Expect::ValueOrClose)
                    );
                    if !allowed {
                        s.fail(line, col, b);
                    }
                    s.pop();
                } else if let Some(at) = s.stack.iter().rposition(|&o| o == opener) {
                    // Closes an outer bracket: the inner ones were left open.
                    s.fail(line, col, b);
                    s.stack.truncate(at);
                } else if b == b']' && in_array {
                    // The top-level array ends with this job still open.
                    self.pos -= 1;
                    return Step::ArrayEnds;
                } else {
                    s.fail(line, col, b);
                    return Step::More;
                }
                s.after_value()
            }
            b':' => {
                if s.expect == Expect::Colon {
                    s.expect = Expect::Value;
                    s.last_was_colon = true;
                } else {
                    s.fail(line, col, b);
                }
                Step::More
            }
            b',' => {
                if s.expect == Expect::CommaOrClose {
                    s.expect = if s.in_object() {
                        Expect::Key
                    } else {
                        Expect::Value
                    };
                } else {
                    s.fail(line, col, b);
                }
                Step::More
            }
            _ => {
                let expected = match s.expect {
                    Expect::Value | Expect::ValueOrClose => true,
                    Expect::Key | Expect::KeyOrClose => b == b'"',
                    Expect::Colon | Expect::CommaOrClose => false,
                };
                if (!expected || colon_ended_line) && first_on_line && col <= s.col {
                    // A job left open, and a line that cannot go on with it.
                    self.pos -= 1;
                    return Step::Split;
                }
                // A string, or a number, `true`, `false`, `null` or junk (up to the next
                // delimiter).
                let key = s.scalar(line, col, b);
                s.token = if b == b'"' {
                    Token::Str { key }
                } else {
                    Token::Bare { key }
                };
                Step::More
            }
        }
    }
}

/// What a whole line (without its `\n`) is in JSONL mode.
fn classify(line: &[u8], seen_content: bool) -> Class {
    // The usual JSONL line, decided from two bytes.
    if line.first() == Some(&b'{') && line.last() == Some(&b'}') {
        return Class::Line;
    }
    let t = trim(line);
    match t.first() {
        None => Class::Blank,
        Some(b'{') if t.len() > 1 && t.last() == Some(&b'}') => Class::Line,
        Some(b'{') => Class::Frame,
        Some(b'[') if seen_content && t.len() > 1 && t.last() == Some(&b']') => Class::Line,
        Some(b'[') => Class::Frame,
        Some(_) => Class::Line,
    }
}

/// What a line is from its start alone: `Frame` for an array at the start of the input
/// (which may be one long line), else `None` (it is decided by its end).
fn classify_start(line: &[u8], seen_content: bool) -> Option<Class> {
    let first = line.iter().find(|c| !c.is_ascii_whitespace())?;
    (*first == b'[' && !seen_content).then_some(Class::Frame)
}

impl<R: Read> Iterator for JobReader<R> {
    type Item = JobRecord;

    fn next(&mut self) -> Option<JobRecord> {
        let mut buf = Vec::new();
        match self.next_raw(&mut buf)? {
            RawItem::Line(line) => Some(parse_line(line, &buf)),
            RawItem::Record(r) => Some(r),
        }
    }
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests;
