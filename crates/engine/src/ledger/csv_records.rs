//! CSV records cut by line, so one stray quote costs one record, not the file.
//!
//! A CSV parser reading the whole stream takes a stray `"` at the start of a field as an
//! open quoted field and swallows everything up to the next quote: one bad line turned
//! 200,002 records into 2 (#22). Here each record is the lines from its first up to the one
//! where its quotes balance (a quoted field may span lines); it is parsed alone, and if it
//! is not exactly one record (a quote never closed, fields that do not add up across lines),
//! only its first line is reported and reading resumes at the next line, as JSONL resumes at
//! the next line.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use crate::engine::json::MAX_LINE_BYTES;

/// One record read: its first line, and its fields or why it is not a record.
pub enum CsvRecord {
    Fields(u64),
    Broken(u64, String),
}

/// Reads records of a CSV stream, one at a time, into [`CsvRecords::record`].
pub struct CsvRecords<R> {
    input: R,
    /// Lines read but not yet used (after a broken multi-line record): (line, bytes).
    pending: VecDeque<(u64, Vec<u8>)>,
    next_line: u64,
    eof: bool,
    pub record: csv::ByteRecord,
    candidate: Vec<u8>,
    /// The header's number of fields, once read: a record spanning lines must have it
    /// (else its quotes paired across records by accident).
    pub width: Option<usize>,
}

impl<R: BufRead> CsvRecords<R> {
    pub fn new(input: R) -> Self {
        CsvRecords {
            input,
            pending: VecDeque::new(),
            next_line: 1,
            eof: false,
            record: csv::ByteRecord::new(),
            candidate: Vec::new(),
            width: None,
        }
    }

    /// The next physical line (with its end), or `None` at the end. A line longer than
    /// [`MAX_LINE_BYTES`] is cut to one byte more (which no record accepts); the rest is
    /// skipped unread into memory.
    fn line(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        if let Some(l) = self.pending.pop_front() {
            return Ok(Some(l));
        }
        if self.eof {
            return Ok(None);
        }
        let mut buf = Vec::new();
        let cap = MAX_LINE_BYTES as u64 + 1;
        let n = io::Read::take(&mut self.input, cap).read_until(b'\n', &mut buf)?;
        if n == 0 {
            self.eof = true;
            return Ok(None);
        }
        if buf.len() as u64 >= cap && buf.last() != Some(&b'\n') {
            loop {
                let chunk = self.input.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                match memchr::memchr(b'\n', chunk) {
                    Some(i) => {
                        self.input.consume(i + 1);
                        break;
                    }
                    None => {
                        let all = chunk.len();
                        self.input.consume(all);
                    }
                }
            }
        }
        let at = self.next_line;
        self.next_line += 1;
        Ok(Some((at, buf)))
    }

    /// The next record into `self.record`, or `None` at the end of the input.
    pub fn next_record(&mut self) -> io::Result<Option<CsvRecord>> {
        // Skip blank lines, as CSV readers do.
        let (first, bytes) = loop {
            match self.line()? {
                None => return Ok(None),
                Some((_, b)) if b.trim_ascii().is_empty() => {}
                Some(l) => break l,
            }
        };
        self.candidate.clear();
        self.candidate.extend_from_slice(&bytes);
        let mut taken = vec![];
        let mut open = quotes(&bytes) % 2 == 1;
        while open && self.candidate.len() <= MAX_LINE_BYTES {
            match self.line()? {
                None => break,
                Some((n, b)) => {
                    open ^= quotes(&b) % 2 == 1;
                    self.candidate.extend_from_slice(&b);
                    taken.push((n, b));
                }
            }
        }
        if self.candidate.len() > MAX_LINE_BYTES {
            self.resume(taken);
            return Ok(Some(CsvRecord::Broken(
                first,
                format!("line {first}: the record is longer than {MAX_LINE_BYTES} bytes"),
            )));
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(self.candidate.as_slice());
        let one = matches!(reader.read_byte_record(&mut self.record), Ok(true));
        let more = !matches!(
            reader.read_byte_record(&mut csv::ByteRecord::new()),
            Ok(false)
        );
        let fits = taken.is_empty() || self.width.is_none_or(|w| w == self.record.len());
        if one && !more && !open && fits {
            return Ok(Some(CsvRecord::Fields(first)));
        }
        if taken.is_empty() {
            return Ok(Some(CsvRecord::Broken(
                first,
                format!("line {first} is not one CSV record"),
            )));
        }
        self.resume(taken);
        Ok(Some(CsvRecord::Broken(
            first,
            format!(
                "line {first}: a quoted field opened here is not closed on a line that \
                 completes the record (a stray `\"`?); the next line is read as a new record"
            ),
        )))
    }

    /// Puts lines taken for a broken record back, to be read as records of their own.
    fn resume(&mut self, taken: Vec<(u64, Vec<u8>)>) {
        for l in taken.into_iter().rev() {
            self.pending.push_front(l);
        }
    }
}

fn quotes(line: &[u8]) -> usize {
    memchr::memchr_iter(b'"', line).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<String> {
        let mut r = CsvRecords::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            r.width = Some(2);
            out.push(match rec {
                CsvRecord::Fields(n) => {
                    let fields: Vec<String> = r
                        .record
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect();
                    format!("{n}:{}", fields.join("|"))
                }
                CsvRecord::Broken(n, _) => format!("{n}:broken"),
            });
        }
        out
    }

    #[test]
    fn quoted_fields_span_lines_and_blank_lines_are_skipped() {
        assert_eq!(
            read("a,b\n\"x\ny\",2\n\n\"q\"\"uote\",3\r\n"),
            ["1:a|b", "2:x\ny|2", "5:q\"uote|3"]
        );
    }

    #[test]
    fn a_stray_quote_costs_its_line_only() {
        assert_eq!(
            read("a,b\n1,2\n\"3,4\n5,6\n7,8\n"),
            ["1:a|b", "2:1|2", "3:broken", "4:5|6", "5:7|8"]
        );
        // Closed by a later stray quote: both lines are reported, the lines between kept.
        assert_eq!(
            read("a,b\n\"3,4\n5,6\n7,\"8\n9,10\n"),
            ["1:a|b", "2:broken", "3:5|6", "4:broken", "5:9|10"]
        );
    }
}
