//! The decision log of `serve --decision-log`: one JSON line per scored job, enough to replay
//! the decision offline (`jobpoints verify LOG`).
//!
//! A record is built on the scoring thread and handed to a bounded queue; one writer thread
//! appends records to the file, flushes at least every second and at shutdown, and rotates by
//! size. Nothing on the request path waits for the disk: when the queue is full, the record is
//! dropped and counted; a write error is logged and counted, and the records it lost with it.
//!
//! ```text
//! {"decision_id":"…","schema_version":1,"received_at":"…","engine":"jobpoints 0.1.0 (…)",
//!  "ruleset":"…","input":{…the job as received…},"omitted":["…"],"result":{…},"shadow":{…}}
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::engine::identity::{ENGINE, SCHEMA_VERSION};
use crate::engine::score::ScoreRef;

/// At most this long between a record being queued and being written to the file.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Records buffered in memory before a write, at most.
const WRITE_BUFFER: usize = 1 << 20;

/// Unique decision ids: a random prefix per process, then a counter.
pub struct DecisionIds {
    prefix: String,
    next: AtomicU64,
}

impl Default for DecisionIds {
    fn default() -> Self {
        Self::new()
    }
}

impl DecisionIds {
    pub fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // Seeded from the OS's randomness (ahash's), the time and the process id: two
        // servers, or two runs of one, never share a prefix in practice.
        let mut h = ahash::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        DecisionIds {
            prefix: format!("{:016x}", h.finish()),
            next: AtomicU64::new(0),
        }
    }

    /// `PREFIX-N`, N counting from 1.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}-{n:x}", self.prefix)
    }
}

/// The job as received, for a record.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// JSON text (one value; may span lines).
    Json(&'a str),
    /// Text that is not one JSON value (a broken JSONL line), kept as a string.
    Text(&'a str),
}

impl<'a> Input<'a> {
    /// `text` as JSON if it is one JSON value, else as text.
    pub fn of(text: &'a str) -> Self {
        match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => Input::Json(text),
            Err(_) => Input::Text(text),
        }
    }
}

/// Starts a record: everything up to and including the result. [`finish`] closes it, after an
/// optional `shadow` field.
pub fn begin_record(
    out: &mut Vec<u8>,
    decision_id: &str,
    received_at: &str,
    input: Input<'_>,
    omit: &[String],
    result: &ScoreRef<'_>,
) {
    out.extend_from_slice(b"{\"decision_id\":");
    json_string(out, decision_id);
    out.extend_from_slice(b",\"schema_version\":");
    out.extend_from_slice(itoa::Buffer::new().format(SCHEMA_VERSION).as_bytes());
    out.extend_from_slice(b",\"received_at\":");
    json_string(out, received_at);
    out.extend_from_slice(b",\"engine\":");
    json_string(out, ENGINE);
    out.extend_from_slice(b",\"ruleset\":");
    json_string(out, result.ruleset);
    match input {
        Input::Json(text) => {
            out.extend_from_slice(b",\"input\":");
            let mut omitted = Vec::new();
            let start = out.len();
            let rewritten = !omit.is_empty() && write_without(out, text, omit, "", &mut omitted);
            if !rewritten || omitted.is_empty() {
                // Nothing to leave out: the job exactly as received.
                out.truncate(start);
                one_line(out, text);
            }
            if !omitted.is_empty() {
                out.extend_from_slice(b",\"omitted\":");
                serde_json::to_writer(&mut *out, &omitted).expect("strings");
            }
        }
        Input::Text(text) => {
            out.extend_from_slice(b",\"input_text\":");
            json_string(out, text);
        }
    }
    out.extend_from_slice(b",\"result\":");
    serde_json::to_writer(&mut *out, result).expect("a result serializes");
}

/// Adds the shadow rules' result to a record begun with [`begin_record`].
pub fn add_shadow(out: &mut Vec<u8>, shadow: &ScoreRef<'_>) {
    out.extend_from_slice(b",\"shadow\":");
    serde_json::to_writer(&mut *out, shadow).expect("a result serializes");
}

/// Ends a record: its closing brace and newline.
pub fn finish(out: &mut Vec<u8>) {
    out.extend_from_slice(b"}\n");
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("a string serializes");
}

/// Valid JSON text on one line: a line end can only be whitespace between tokens (a string
/// cannot hold one unescaped), so it becomes a space and the value is unchanged.
fn one_line(out: &mut Vec<u8>, text: &str) {
    let start = out.len();
    out.extend_from_slice(text.trim().as_bytes());
    for b in &mut out[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
}

/// The fields of a JSON object in order, duplicates kept, each value as written.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Writes the object `text` without the fields named by `omit` (dotted paths from the top:
/// `prompt`, `model_input.SD.prompt`); the rest as written, in order. False (nothing written)
/// when `text` is not an object.
fn write_without(
    out: &mut Vec<u8>,
    text: &str,
    omit: &[String],
    prefix: &str,
    omitted: &mut Vec<String>,
) -> bool {
    let Ok(Fields(fields)) = serde_json::from_str::<Fields<'_>>(text) else {
        return false;
    };
    out.push(b'{');
    let mut first = true;
    for (key, raw) in fields {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if omit.contains(&path) {
            omitted.push(path);
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json_string(out, &key);
        out.push(b':');
        let deeper = omit.iter().any(|o| {
            o.len() > path.len() && o.starts_with(&path) && o.as_bytes()[path.len()] == b'.'
        });
        if !(deeper && write_without(out, raw.get(), omit, &path, omitted)) {
            one_line(out, raw.get());
        }
    }
    out.push(b'}');
    true
}

/// A monotonic count the decision log adds to: [`SharedCount`], or a metrics counter of the
/// embedding server (the command line's `/metrics` wraps its Prometheus counters in it).
pub trait Counter: Send + Sync {
    /// Adds `n`.
    fn inc_by(&self, n: u64);
    /// The count so far.
    fn get(&self) -> u64;
}

/// A count shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct SharedCount(std::sync::Arc<AtomicU64>);

impl Counter for SharedCount {
    fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the decision log counts for `/metrics`.
#[derive(Clone)]
pub struct LogCounters {
    /// Records written to the file.
    pub written: std::sync::Arc<dyn Counter>,
    /// Records dropped because the queue was full.
    pub dropped: std::sync::Arc<dyn Counter>,
    /// Records lost to a write error.
    pub failed: std::sync::Arc<dyn Counter>,
    /// Write (or rotation) errors.
    pub errors: std::sync::Arc<dyn Counter>,
}

impl Default for LogCounters {
    fn default() -> Self {
        let count = || std::sync::Arc::new(SharedCount::default()) as std::sync::Arc<dyn Counter>;
        LogCounters {
            written: count(),
            dropped: count(),
            failed: count(),
            errors: count(),
        }
    }
}

/// Where and how the log is written.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub path: PathBuf,
    /// Rotate before a record would take the file past this size (`None`: never).
    pub max_bytes: Option<u64>,
    /// Files kept, the current one included: `PATH`, `PATH.1`, ... `PATH.{files-1}`.
    pub files: usize,
    /// Bytes of records waiting to be written, at most; more are dropped and counted.
    pub queue_bytes: usize,
}

enum Msg {
    /// Whole record lines, and how many.
    Records(Vec<u8>, u64),
    Stop,
}

/// Room held in the log's queue by [`DecisionLog::reserve`]; given back when dropped.
pub struct Reserved {
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    len: usize,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.len, Ordering::AcqRel);
    }
}

/// The decision log: a queue and the thread that writes it.
pub struct DecisionLog {
    tx: crossbeam_channel::Sender<Msg>,
    /// Bytes queued and not yet taken by the writer.
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    max_queued: usize,
    counters: LogCounters,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl DecisionLog {
    /// Opens (appends to) the log file and starts its writer.
    pub fn open(config: LogConfig, counters: LogCounters) -> io::Result<Self> {
        let file = open_append(&config.path)?;
        let size = file.metadata().map_or(0, |m| m.len());
        let (tx, rx) = crossbeam_channel::unbounded();
        let queued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let max_queued = config.queue_bytes.max(1);
        let (c, q) = (counters.clone(), queued.clone());
        let writer = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || {
                Writer {
                    config,
                    file,
                    size,
                    buf: Vec::with_capacity(WRITE_BUFFER),
                    pending: 0,
                    counters: c,
                    torn: None,
                }
                .run(rx, &q)
            })?;
        Ok(DecisionLog {
            tx,
            queued,
            max_queued,
            counters,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Queues `count` whole record lines; never waits. False when they were dropped (the
    /// queue holds `queue_bytes` already, or the log is closed).
    pub fn submit(&self, records: Vec<u8>, count: u64) -> bool {
        if !self.take_room(records.len()) {
            self.counters.dropped.inc_by(count);
            return false;
        }
        self.send(records, count)
    }

    /// Holds room in the queue for `count` records of `len` bytes that are not ready yet
    /// (the shadow rules add their result first): records waiting elsewhere count against
    /// `queue_bytes` too. `None` (and the records counted as dropped) when there is no room.
    pub fn reserve(&self, len: usize, count: u64) -> Option<Reserved> {
        if !self.take_room(len) {
            self.counters.dropped.inc_by(count);
            return None;
        }
        Some(Reserved {
            queued: self.queued.clone(),
            len,
        })
    }

    /// Queues records whose room was reserved; they may have grown since (by the shadow's
    /// result). False when the log is closed.
    pub fn submit_reserved(&self, reserved: Reserved, records: Vec<u8>, count: u64) -> bool {
        self.queued.fetch_add(records.len(), Ordering::AcqRel);
        drop(reserved);
        self.send(records, count)
    }

    /// Adds `len` to the bytes queued, unless that passes the limit (one batch larger than
    /// the limit is let into an empty queue).
    fn take_room(&self, len: usize) -> bool {
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before + len > self.max_queued && before > 0 {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Sends records already counted in `queued`.
    fn send(&self, records: Vec<u8>, count: u64) -> bool {
        let len = records.len();
        match self.tx.send(Msg::Records(records, count)) {
            Ok(()) => true,
            Err(_) => {
                self.queued.fetch_sub(len, Ordering::AcqRel);
                self.counters.dropped.inc_by(count);
                false
            }
        }
    }

    /// Writes every record queued so far, flushes, and stops the writer. Records submitted
    /// later are dropped (and counted).
    pub fn close(&self) {
        let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        // Everything queued before is written first.
        let _ = self.tx.send(Msg::Stop);
        let _ = writer.join();
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens `path` to append to it, creating it if it is missing; an error if it is anything
/// but a regular file (a device, a FIFO, a directory), without waiting on a FIFO.
fn open_append(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO to write waits for a reader: without this, `serve` hung at start.
        opts.custom_flags(crate::rules::files::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| {
        if is_regular_or_missing(path) {
            e
        } else {
            not_regular(path)
        }
    })?;
    if !file.metadata()?.is_file() {
        return Err(not_regular(path));
    }
    Ok(file)
}

fn not_regular(path: &Path) -> io::Error {
    let kind = std::fs::metadata(path).map_or("unknown", |m| file_kind(&m.file_type()));
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file (a {kind}): the decision log must be a regular file"),
    )
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

fn is_regular_or_missing(path: &Path) -> bool {
    std::fs::metadata(path).map_or(true, |m| m.is_file())
}

/// True when `path` itself (not what a link points to) is a regular file: rotation only
/// renames or deletes those, never a device, a FIFO, a directory or a symbolic link.
fn is_regular_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

struct Writer {
    config: LogConfig,
    file: File,
    size: u64,
    buf: Vec<u8>,
    /// Records in `buf`.
    pending: u64,
    counters: LogCounters,
    /// The length the file must be cut back to before anything more is appended: a
    /// partial record is at its end (cutting it off failed once).
    torn: Option<u64>,
}

/// Writes as much of `buf` as the file takes: the bytes written, and the error that
/// stopped it.
fn write_some(file: &mut File, buf: &[u8]) -> (usize, Option<io::Error>) {
    let mut sent = 0;
    while sent < buf.len() {
        match file.write(&buf[sent..]) {
            Ok(0) => return (sent, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (sent, Some(e)),
        }
    }
    (sent, None)
}

impl Writer {
    fn run(
        mut self,
        rx: crossbeam_channel::Receiver<Msg>,
        queued: &std::sync::atomic::AtomicUsize,
    ) {
        let mut oldest: Option<Instant> = None;
        loop {
            let wait = oldest.map_or(FLUSH_EVERY, |t| FLUSH_EVERY.saturating_sub(t.elapsed()));
            match rx.recv_timeout(wait) {
                Ok(Msg::Records(r, n)) => {
                    queued.fetch_sub(r.len(), Ordering::AcqRel);
                    self.add(&r, n);
                    oldest.get_or_insert_with(Instant::now);
                }
                Ok(Msg::Stop) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    // Whatever raced the stop is written too.
                    while let Ok(Msg::Records(r, n)) = rx.try_recv() {
                        queued.fetch_sub(r.len(), Ordering::AcqRel);
                        self.add(&r, n);
                    }
                    self.flush();
                    return;
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            }
            if oldest.is_some_and(|t| t.elapsed() >= FLUSH_EVERY) || self.buf.len() >= WRITE_BUFFER
            {
                self.flush();
                oldest = None;
            }
        }
    }

    fn add(&mut self, records: &[u8], count: u64) {
        let Some(max) = self.config.max_bytes else {
            self.buf.extend_from_slice(records);
            self.pending += count;
            return;
        };
        // Line by line, so that no file grows past the limit (unless one record is larger).
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', records) {
            let record = &records[start..=end];
            start = end + 1;
            let after = self.size + (self.buf.len() + record.len()) as u64;
            if after > max && self.size + self.buf.len() as u64 > 0 {
                self.flush();
                self.rotate();
            }
            self.buf.extend_from_slice(record);
            self.pending += 1;
        }
    }

    /// Appends the buffered records. On a write error (a full disk, a file size limit) the
    /// records written whole stay, the partial one is cut off again, and the rest are counted
    /// as failed: the file only ever holds whole records, and `written` counts exactly those.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        let pending = std::mem::take(&mut self.pending);
        let repaired = match self.torn {
            Some(len) => self.file.set_len(len).map(|()| self.torn = None),
            None => Ok(()),
        };
        let (sent, error) = match repaired {
            Ok(()) => write_some(&mut self.file, &buf),
            Err(e) => (0, Some(e)),
        };
        match error {
            None => {
                self.size += buf.len() as u64;
                self.counters.written.inc_by(pending);
            }
            Some(e) => {
                let whole = memchr::memrchr(b'\n', &buf[..sent]).map_or(0, |i| i + 1);
                let kept = memchr::memchr_iter(b'\n', &buf[..whole]).count() as u64;
                if sent > whole {
                    let len = self.size + whole as u64;
                    if let Err(e) = self.file.set_len(len) {
                        // Tried again before the next write, which waits until it works.
                        tracing::error!(path = %self.config.path.display(), "cannot cut a partial decision record off: {e}");
                        self.torn = Some(len);
                    }
                }
                self.size += whole as u64;
                self.counters.written.inc_by(kept);
                self.counters.errors.inc_by(1);
                self.counters.failed.inc_by(pending - kept);
                tracing::error!(
                    path = %self.config.path.display(),
                    lost = pending - kept,
                    "cannot write the decision log: {e}"
                );
            }
        }
        self.buf = buf;
        self.buf.clear();
    }

    /// `PATH` → `PATH.1` → ... → `PATH.{files-1}` (the oldest goes), and a new `PATH`.
    fn rotate(&mut self) {
        let path = &self.config.path;
        let numbered = |i: usize| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        let keep = self.config.files.max(1);
        // Only regular files move or go: whatever else sits at one of these paths (a device,
        // a FIFO, a link) stops the rotation, and the log goes on in the current file.
        let not_regular = |p: &Path| {
            let is_special = std::fs::symlink_metadata(p).is_ok_and(|m| !m.is_file());
            is_special.then(|| io::Error::other(format!("`{}` is not a regular file", p.display())))
        };
        let numbered_in_the_way = (1..keep).map(numbered).find_map(|p| not_regular(&p));
        let result = match not_regular(path).or(numbered_in_the_way) {
            Some(e) => Err(e),
            None if keep == 1 => std::fs::remove_file(path),
            None => {
                let oldest = numbered(keep - 1);
                if is_regular_file(&oldest) {
                    let _ = std::fs::remove_file(oldest);
                }
                for i in (1..keep - 1).rev() {
                    let from = numbered(i);
                    if is_regular_file(&from) {
                        let _ = std::fs::rename(&from, numbered(i + 1));
                    }
                }
                std::fs::rename(path, numbered(1))
            }
        };
        match result.and_then(|()| open_append(path)) {
            Ok(f) => {
                self.file = f;
                self.size = 0;
                self.torn = None;
            }
            Err(e) => {
                // Keep writing to the file we have; the next record tries again.
                self.counters.errors.inc_by(1);
                tracing::error!(path = %path.display(), "cannot rotate the decision log: {e}");
                self.size = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_fields_go_and_the_rest_stays_as_written() {
        let job = "{\"model\":\"m\",  \"prompt\":\"secret\",\n \"model_input\":{\"SD\":{\"prompt\":\"p\",\"width\":512}},\"w\":1.50}";
        let mut out = Vec::new();
        let mut omitted = Vec::new();
        let omit = vec!["prompt".to_string(), "model_input.SD.prompt".to_string()];
        assert!(write_without(&mut out, job, &omit, "", &mut omitted));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"model\":\"m\",\"model_input\":{\"SD\":{\"width\":512}},\"w\":1.50}"
        );
        assert_eq!(omitted, ["prompt", "model_input.SD.prompt"]);
        // Not an object: written as it is by the caller.
        assert!(!write_without(
            &mut Vec::new(),
            "[1]",
            &omit,
            "",
            &mut Vec::new()
        ));
    }

    #[test]
    fn ids_are_unique_and_a_multi_line_job_is_one_line() {
        let ids = DecisionIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_ne!(DecisionIds::new().next(), a);
        let mut out = Vec::new();
        one_line(&mut out, "{\n  \"a\": \"x y\"\r\n}\n");
        assert_eq!(out, b"{   \"a\": \"x y\"  }");
    }

    #[test]
    fn rotation_keeps_n_files_and_every_record_is_written_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let counters = LogCounters::default();
        let log = DecisionLog::open(
            LogConfig {
                path: path.clone(),
                max_bytes: Some(1000),
                files: 3,
                queue_bytes: 1 << 20,
            },
            counters.clone(),
        )
        .unwrap();
        for i in (0..100).step_by(2) {
            let two = format!("{{\"n\":{i:040}}}\n{{\"n\":{:040}}}\n", i + 1);
            assert!(log.submit(two.into_bytes(), 2));
        }
        log.close();
        assert_eq!(counters.written.get(), 100);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["d.log", "d.log.1", "d.log.2"]);
        for n in &names {
            let len = std::fs::metadata(dir.path().join(n)).unwrap().len();
            assert!(len <= 1000, "{n}: {len}");
        }
        // The newest record is in the current file; the oldest ones were rotated away.
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.ends_with(&format!("{{\"n\":{:040}}}\n", 99)));
        // After close, records are dropped, and counted.
        assert!(!log.submit(b"late\n".to_vec(), 1));
        assert_eq!(counters.dropped.get(), 1);
    }

    fn mkfifo(path: &Path) {
        let st = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn config(path: &Path, max_bytes: Option<u64>) -> LogConfig {
        LogConfig {
            path: path.to_path_buf(),
            max_bytes,
            files: 3,
            queue_bytes: 1 << 20,
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_at_open_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("d.log");
        mkfifo(&fifo);
        // Opening a FIFO to write used to wait for a reader forever: `serve` hung at start.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let opened = DecisionLog::open(config(&path, None), LogCounters::default());
            let _ = tx.send(opened.err().map(|e| e.to_string()));
        });
        let err = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("open returns at once")
            .expect("a FIFO is refused");
        assert!(err.contains("not a regular file (a FIFO)"), "{err}");
        let err = DecisionLog::open(config(Path::new("/dev/null"), None), LogCounters::default())
            .err()
            .expect("a device is refused")
            .to_string();
        assert!(err.contains("not a regular file (a device)"), "{err}");
        let err = DecisionLog::open(config(dir.path(), None), LogCounters::default())
            .err()
            .expect("a directory is refused");
        assert!(!err.to_string().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn rotation_never_renames_or_deletes_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "keep me").unwrap();
        // The oldest kept file's place holds a FIFO, the next one a link to another file.
        let (one, two) = (dir.path().join("d.log.1"), dir.path().join("d.log.2"));
        std::os::unix::fs::symlink(&outside, &one).unwrap();
        mkfifo(&two);
        let counters = LogCounters::default();
        let log = DecisionLog::open(config(&path, Some(200)), counters.clone()).unwrap();
        for i in 0..20 {
            assert!(log.submit(format!("{{\"n\":{i:040}}}\n").into_bytes(), 1));
        }
        log.close();
        use std::os::unix::fs::FileTypeExt;
        let two_meta = std::fs::symlink_metadata(&two).unwrap();
        assert!(two_meta.file_type().is_fifo(), "the FIFO was not deleted");
        let one_meta = std::fs::symlink_metadata(&one).unwrap();
        assert!(
            one_meta.file_type().is_symlink(),
            "the link was not renamed"
        );
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
        // Every record is still written, to the current file, and the refusals are counted.
        assert_eq!(counters.written.get(), 20);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 20);
        assert!(counters.errors.get() >= 1);
    }
}
