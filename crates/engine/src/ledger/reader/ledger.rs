//! The pipeline's side of reading: [`BlockSource`] (JSON, CSV or Parquet jobs in blocks),
//! the boxed [`Ledger`], and cutting a block of JSONL back into its lines.

use super::*;

/// A reader of jobs in any format, for the pipeline: JSON (this module), CSV or Parquet rows
/// (each row's fields written as a JSON job text by [`crate::ledger::rows`]).
pub trait BlockSource: Send {
    /// The next item; see [`JobReader::next_block`].
    fn next_block(&mut self, out: &mut Vec<u8>, target: usize) -> Option<Chunk>;
    /// The I/O error that ended reading, if any (once).
    fn take_io_error(&mut self) -> Option<io::Error>;
}

impl<R: Read + Send> BlockSource for JobReader<R> {
    fn next_block(&mut self, out: &mut Vec<u8>, target: usize) -> Option<Chunk> {
        JobReader::next_block(self, out, target)
    }

    fn take_io_error(&mut self) -> Option<io::Error> {
        self.io_error.take()
    }
}

/// A job file of any format (see [`crate::ledger::formats::open_ledger`]): blocks for the
/// pipeline, or one job at a time.
pub struct Ledger {
    source: Box<dyn BlockSource>,
    raw: RawLines,
}

impl Ledger {
    pub fn new(source: impl BlockSource + 'static) -> Self {
        Ledger {
            source: Box::new(source),
            raw: RawLines::default(),
        }
    }

    /// The next job, one at a time; see [`JobReader::next_raw`].
    pub fn next_raw(&mut self, out: &mut Vec<u8>) -> Option<RawItem> {
        let source = &mut self.source;
        self.raw
            .next_item(|buf, target| source.next_block(buf, target), out)
    }

    pub fn take_io_error(&mut self) -> Option<io::Error> {
        self.source.take_io_error()
    }
}

impl BlockSource for Ledger {
    fn next_block(&mut self, out: &mut Vec<u8>, target: usize) -> Option<Chunk> {
        self.source.next_block(out, target)
    }

    fn take_io_error(&mut self) -> Option<io::Error> {
        self.source.take_io_error()
    }
}

impl Iterator for Ledger {
    type Item = JobRecord;

    fn next(&mut self) -> Option<JobRecord> {
        let mut buf = Vec::new();
        match self.next_raw(&mut buf)? {
            RawItem::Line(line) => Some(parse_line(line, &buf)),
            RawItem::Record(r) => Some(r),
        }
    }
}

impl RawLines {
    /// The next job of `source`, one at a time: the lines of a block are handed out one by
    /// one.
    pub(super) fn next_item(
        &mut self,
        mut next_block: impl FnMut(&mut Vec<u8>, usize) -> Option<Chunk>,
        out: &mut Vec<u8>,
    ) -> Option<RawItem> {
        loop {
            if let Some(line) = self.next_into(out) {
                return Some(RawItem::Line(line));
            }
            self.buf.clear();
            self.at = 0;
            let chunk = next_block(&mut self.buf, RAW_BLOCK);
            match chunk? {
                Chunk::Block(first) => self.line = first,
                Chunk::Job(line) => {
                    out.extend_from_slice(&self.buf);
                    self.buf.clear();
                    return Some(RawItem::Line(line));
                }
                Chunk::Record(r) => {
                    self.buf.clear();
                    return Some(RawItem::Record(r));
                }
            }
        }
    }

    /// The next non-blank line of the block, appended to `out`.
    pub(super) fn next_into(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        while self.at < self.buf.len() {
            let rest = &self.buf[self.at..];
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let n = self.line;
            self.line += 1;
            self.at += (end + 1).min(rest.len());
            if let Some(text) = line_text(&rest[..end]) {
                out.extend_from_slice(text);
                return Some(n);
            }
        }
        None
    }
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
