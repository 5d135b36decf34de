use super::*;

/// Each record: its line, or its line and the message that makes it invalid.
fn read(s: &str) -> Vec<Result<u64, (u64, String)>> {
    read_bytes(s.as_bytes())
}

fn read_bytes(s: &[u8]) -> Vec<Result<u64, (u64, String)>> {
    JobReader::new(s)
        .map(|r| problem(r).map_err(|e| (e.line, e.message)))
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

fn oks(r: &[Result<u64, (u64, String)>]) -> Vec<u64> {
    r.iter().filter_map(|r| r.as_ref().ok().copied()).collect()
}

fn bad(r: &[Result<u64, (u64, String)>]) -> Vec<u64> {
    r.iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.0))
        .collect()
}

const J: &str = r#"{"model":"a"}"#;

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
    // One at a time, the overlong job's text is kept cut.
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

#[test]
fn an_overlong_element_is_one_invalid_result_in_bounded_memory() {
    let big = "x".repeat(MAX_LINE_BYTES + 10);
    let text = format!("[{J},{{\"model\":\"{big}\"}},{J}]");
    let r = read(&text);
    assert_eq!(r.len(), 3, "{:?}", bad(&r));
    assert!(matches!(&r[1], Err((1, m)) if m.contains("longer than")));
    assert_eq!(oks(&r), [1, 1]);
}

/// Every job as `(line, text)` or `(line, message)`, read one at a time (`next_raw`).
fn by_raw(input: &[u8]) -> Vec<(u64, Result<Vec<u8>, String>)> {
    let mut reader = JobReader::new(input);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(item) = reader.next_raw(&mut buf) {
        match item {
            RawItem::Line(n) => out.push((n, Ok(std::mem::take(&mut buf)))),
            RawItem::Record(r) => {
                let e = r.expect_err("records are invalid");
                out.push((e.line, Err(e.message)));
            }
        }
    }
    out
}

/// The same, read in blocks of about `target` bytes (`next_block`) from an input that
/// gives `chunk` bytes per read, and cut the way the workers cut them.
fn by_blocks(input: &[u8], target: usize, chunk: usize) -> Vec<(u64, Result<Vec<u8>, String>)> {
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut reader = JobReader::new(Trickle(input, chunk));
    let mut out = Vec::new();
    loop {
        let mut buf = Vec::new();
        match reader.next_block(&mut buf, target) {
            Some(Chunk::Job(n)) => out.push((n, Ok(buf))),
            Some(Chunk::Block(first)) => {
                assert!(buf.last() == Some(&b'\n') || reader.state == State::Done);
                for (n, range) in block_lines(&buf, first) {
                    out.push((n, Ok(buf[range].to_vec())));
                }
            }
            Some(Chunk::Record(r)) => {
                let e = r.expect_err("records are invalid");
                out.push((e.line, Err(e.message)));
            }
            None => return out,
        }
    }
}

#[test]
fn every_block_size_and_read_size_cuts_the_same_jobs() {
    // A job of MAX_LINE_BYTES - 1 bytes.
    let mut long = b"{\"model\":\"".to_vec();
    long.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES - 13));
    long.extend_from_slice(b"\"}");
    assert_eq!(long.len(), MAX_LINE_BYTES - 1);
    // MAX_LINE_BYTES + 1 bytes before its `\n`: not overlong; stripped, it is the job.
    let mut fits = long.clone();
    fits.extend_from_slice(b"  \n");
    // MAX_LINE_BYTES + 2 bytes before its `\n`: overlong, cut to MAX_LINE_BYTES + 1.
    let mut over = long.clone();
    over.extend_from_slice(b"   \n");
    let mut blank_over = vec![b' '; MAX_LINE_BYTES + 5];
    blank_over.push(b'\n');
    let small: Vec<Vec<u8>> = vec![
        b"\xEF\xBB\xBF{\"a\":1}\r\n{\"b\":2}\r\n\r\n  \t\n{\"c\":3}".to_vec(),
        b"\n\n{\"a\":1}\n\x0c\n\r\r\n{\"b\":\"x\ry\"}\r\r\n{}\n".to_vec(),
        b"{\"a\":1}\n\xEF\xBB\xBF{\"b\":2}\n{\"c\":\"\xff\"}\n{\"d\"".to_vec(),
        b"{\"a\":1}\r{\"b\":2}\r\r{\"c\":3}\r".to_vec(),
        b"[{\"a\":1},{\"a\":x},{\"a\":3} {\"a\":4},,{\"a\":5}]\n{\"b\":1}\n[\n {\"c\":\n {\"d\":2}\n]".to_vec(),
        b"{\n \"a\": [1,\n 2],\n \"b\": \"x\\\"y\"\n}\n{\"c\":\"\xe2\x82\xac\"}\n{\"d\":1,\n\"e\":2}\n[1]".to_vec(),
        b"{\"a\":1}\n".repeat(1000),
        format!("[\n{}\n]\n", vec![J; 300].join(",\n")).into_bytes(),
    ];
    for input in &small {
        let want = by_raw(input);
        for target in [1, 10, 100, 1 << 20] {
            for chunk in [1, 3, 64, 1 << 20] {
                assert!(
                    by_blocks(input, target, chunk) == want,
                    "target {target}, chunk {chunk}: {}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }
    let large: Vec<Vec<u8>> = vec![
        [b"{}\n".to_vec(), fits, over.clone(), b"{}\n".to_vec()].concat(),
        [b"{}\n".to_vec(), blank_over, b"{}".to_vec()].concat(),
        [b"{}\n".to_vec(), over[..over.len() - 1].to_vec()].concat(),
    ];
    for input in &large {
        let want = by_raw(input);
        for target in [100, 1 << 20] {
            assert!(by_blocks(input, target, 1 << 16) == want, "target {target}");
        }
    }
    let r = read_bytes(&large[0]);
    assert_eq!(r.len(), 4);
    assert!(matches!(&r[2], Err((3, m)) if m.contains("longer than")));
    assert_eq!(read_bytes(&large[1]).len(), 2, "a long blank line is blank");
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
    assert!(
        matches!(&r[1], Err((2, m)) if m.contains("EOF while parsing")),
        "{r:?}"
    );
    // Cut after a whole element: the array itself is reported, once.
    let r = read("[{\"model\":\"a\"},\n{\"model\":\"b\"}\n");
    assert_eq!(oks(&r), [1, 2]);
    assert!(matches!(&r[2], Err((1, m)) if m.contains("not closed with `]`")));
}

#[test]
fn bom_and_crlf() {
    let r = read("\u{feff}{\"model\":\"a\"}\r\n{\"model\":\"b\"}\r\n");
    assert_eq!(r, vec![Ok(1), Ok(2)]);
    let r = read("\u{feff}[\r\n  {\"model\":\"a\"},\r\n  {\"model\":\"b\"}\r\n]\r\n");
    assert_eq!(r, vec![Ok(2), Ok(3)]);
}

#[test]
fn invalid_utf8_line() {
    let mut bytes = b"{\"model\":\"a\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"model\":\"\xff\"}\n");
    let r: Vec<_> = JobReader::new(&bytes[..]).collect();
    assert_eq!(r.len(), 2);
    assert!(r[1].as_ref().unwrap_err().message.contains("UTF-8"));
}

// The defects of #11, one by one.

#[test]
fn one_broken_element_of_a_one_line_array_costs_only_itself() {
    let r = read(&format!("[{J},{{\"model\":x}},{J},{J}]"));
    assert_eq!(r.len(), 4, "{r:?}");
    assert_eq!(oks(&r), [1, 1, 1]);
    assert!(matches!(&r[1], Err((1, m)) if m.contains("broken JSON")));
}

#[test]
fn a_missing_comma_between_elements_costs_one_element() {
    let r = read(&format!("[{J},{J} {J},{J}]"));
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(
        matches!(&r[2], Err((1, m)) if m.contains("missing `,`")),
        "{r:?}"
    );
    let r = read(&format!("[\n  {J},\n  {J}\n  {J},\n  {J}\n]"));
    assert_eq!(r.len(), 4, "{r:?}");
    assert_eq!(bad(&r), [4]);
}

#[test]
fn jsonl_after_an_array_is_read_line_by_line() {
    let r = read(&format!("[{J},{J}]\n{J}\n{{\"model\":x}}\n{J}\n"));
    assert_eq!(r.len(), 5, "{r:?}");
    assert_eq!(oks(&r), [1, 1, 2, 4]);
    assert_eq!(bad(&r), [3]);
    let r = read(&format!("[\n  {J},\n  {J}\n]\n{J}\n"));
    assert_eq!(oks(&r), [2, 3, 5]);
}

#[test]
fn cr_alone_ends_lines() {
    let r = read(&format!("{J}\r{J}\r{J}\r{{\"model\":x}}\r{J}"));
    assert_eq!(r.len(), 5, "{r:?}");
    assert_eq!(oks(&r), [1, 2, 3, 5]);
    let r = read(&format!("{{\r  \"model\": \"a\"\r}}\r{J}\r"));
    assert_eq!(r, [Ok(1), Ok(4)]);
}

#[test]
fn an_object_over_several_lines_is_one_job_whatever_its_first_line() {
    let r = read("{\"model\": \"a\",\n \"width\": 512}\n{\"model\": \"b\"}\n");
    assert_eq!(r, [Ok(1), Ok(3)]);
    let r = read("{ \"model\": \"a\",\n  \"model_input\": {\"SD\": {\n    \"width\": 512}}\n}\n");
    assert_eq!(r, [Ok(1)]);
}

#[test]
fn a_broken_nested_element_indented_like_its_siblings_is_one_result() {
    // The old resync took any `{` at the job's indent for the next job.
    let text = "[\n  {\n    \"model\": \"a\",\n    \"list\": [\n  {\"x\": 1},\n  {\"x\": oops}\n    ]\n  },\n  {\"model\": \"b\"}\n]\n";
    let r = read(text);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        matches!(&r[0], Err((2, m)) if m.contains("line 6")),
        "{r:?}"
    );
    assert_eq!(r[1], Ok(9));
}

#[test]
fn a_job_left_open_ends_where_the_next_one_starts() {
    // Truncated jobs in JSONL, in pretty documents and in a pretty array.
    let r = read(&format!(
        "{{\"model\":\"a\",\"x\":[1\n{J}\n{{\"model\":\"ab\n{J}\n"
    ));
    assert_eq!(oks(&r), [2, 4]);
    assert_eq!(bad(&r), [1, 3]);
    let r = read("{\n  \"model\": \"a\",\n{\n  \"model\": \"b\"\n}\n");
    assert_eq!(oks(&r), [3]);
    assert_eq!(bad(&r), [1]);
    let r = read(&format!("[\n  {{\"model\": \"a\",\n  {J},\n  {J}\n]"));
    assert_eq!(oks(&r), [3, 4]);
    assert!(
        matches!(&r[0], Err((2, m)) if m.contains("EOF while parsing")),
        "{r:?}"
    );
    // A `{` further right than the job's own is nested in it, even in a broken job.
    let r = read(
        "[\n  {\"model\": \"a\", \"m\": {\"b\": 1 \"c\": 2},\n    \"n\": [\n    {\"x\": 1}]},\n  {\"model\": \"b\"}\n]",
    );
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(oks(&r), [5]);
}

#[test]
fn what_is_not_a_job_is_one_record_each() {
    let r = read(&format!("[{J},,{J},]"));
    assert_eq!(oks(&r), [1, 1]);
    assert_eq!(r.len(), 4);
    // A stray closer after an element belongs to it.
    let r = read(&format!("[{J}}},{J}]"));
    assert_eq!(r.len(), 2);
    assert!(matches!(&r[0], Err((1, m)) if m.contains("unexpected `}` after the job")));
    // Text after a job on its line belongs to it, as in JSONL.
    let r = read(&format!(
        "{{\"model\": \"a\",\n \"w\": 1}} trailing\n{J} x\n{J}\n"
    ));
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(
        matches!(&r[0], Err((1, m)) if m.contains("line 2 column 10: trailing characters")),
        "{r:?}"
    );
    assert!(matches!(&r[1], Err((3, m)) if m.contains("trailing characters")));
    assert_eq!(r[2], Ok(4));
    assert!(read("[]\n\n").is_empty());
    assert!(read("").is_empty());
    assert!(read("\u{feff}\n \r\n").is_empty());
}

#[test]
fn a_one_line_array_in_the_middle_of_jsonl_is_one_line() {
    let r = read(&format!("{J}\n[1, 2]\n{J}\n"));
    assert_eq!(r.len(), 3);
    assert!(matches!(&r[1], Err((2, m)) if m.contains("expected a JSON object")));
    // ... but an array over several lines is read element by element.
    let r = read(&format!("{J}\n[\n{J},\n{J}]\n"));
    assert_eq!(oks(&r), [1, 3, 4]);
}

#[test]
fn an_io_error_keeps_what_came_before_and_makes_no_record() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    for (text, jobs) in [
        (format!("{J}\n{J}\n{{\"mod"), 2),
        (format!("[{J},\n{J},\n{{\"mod"), 2),
        (format!("{J}\n{{\n  \"a\": 1,\n{J}\n{{\n \"x\""), 3),
    ] {
        let mut reader = JobReader::new(Failing(text.as_bytes()));
        let got: Vec<_> = reader.by_ref().collect();
        assert_eq!(got.len(), jobs, "{text}: {got:?}");
        assert!(reader.io_error.is_some());
    }
}
