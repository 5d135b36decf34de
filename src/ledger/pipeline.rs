//! Scoring job files at scale: read once, scored on every core, results delivered in input
//! order, in constant memory.
//!
//! A reader thread cuts the input into batches of jobs; worker threads score them; the
//! caller receives each batch's accumulated output in order. Memory is bounded by the
//! batches in flight, whatever the file's size.

use std::collections::BTreeMap;
use std::io::{self, BufRead};

use crate::engine::job::strict::JobRecord;
use crate::engine::score::{ScoreContext, ScoreRef, Scorer};
use crate::ledger::reader::{JobReader, RawItem};

/// Lines per batch handed to a worker.
const BATCH_ITEMS: usize = 4096;
/// Bytes per batch (whichever limit comes first).
const BATCH_BYTES: usize = 1 << 20;

/// Something that turns job lines into results: the rules engine's [`Scorer`], or (in the
/// benchmark) a hand-written scorer. Results are handed to `emit` as borrowed views.
pub trait LineScorer: Sync {
    /// Per-worker state.
    type Ctx: Send;
    fn context(&self) -> Self::Ctx;
    /// Scores one JSONL line (without its line end).
    fn score_line(
        &self,
        ctx: &mut Self::Ctx,
        line: u64,
        bytes: &[u8],
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    );
    /// Scores a record parsed up front (JSON array or document input).
    fn score_record(
        &self,
        ctx: &mut Self::Ctx,
        record: &JobRecord,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    );
}

impl<'rs> LineScorer for Scorer<'rs> {
    type Ctx = ScoreContext<'rs>;

    fn context(&self) -> ScoreContext<'rs> {
        Scorer::context(self)
    }

    fn score_line(
        &self,
        ctx: &mut ScoreContext<'rs>,
        line: u64,
        bytes: &[u8],
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        Scorer::score_line(self, ctx, line, bytes, emit);
    }

    fn score_record(
        &self,
        ctx: &mut ScoreContext<'rs>,
        record: &JobRecord,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        Scorer::score_record(self, ctx, record, emit);
    }
}

/// Scores every job of `reader` on this thread, in order: for a request body or a small file,
/// where threads cost more than they save. Returns the I/O error that stopped reading, if any.
pub fn score_each<R: BufRead, S: LineScorer>(
    reader: &mut JobReader<R>,
    scorer: &S,
    ctx: &mut S::Ctx,
    emit: &mut dyn FnMut(&ScoreRef<'_>),
) -> Option<io::Error> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.next_raw(&mut buf) {
            Some(RawItem::Line(line)) => scorer.score_line(ctx, line, &buf, emit),
            Some(RawItem::Record(r)) => scorer.score_record(ctx, &r, emit),
            None => return reader.io_error.take(),
        }
    }
}

enum Item {
    Line { line: u64, start: usize, end: usize },
    Record(JobRecord),
}

struct Batch {
    seq: u64,
    bytes: Vec<u8>,
    items: Vec<Item>,
}

/// Why a pipeline stopped early.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Reading the input failed; every job read before was scored and consumed.
    #[error("reading stopped after {jobs} jobs: {source}")]
    Read {
        jobs: u64,
        #[source]
        source: io::Error,
    },
    /// The consumer failed (usually writing the output).
    #[error(transparent)]
    Write(io::Error),
}

impl From<LedgerError> for io::Error {
    fn from(e: LedgerError) -> io::Error {
        match e {
            LedgerError::Read { source, .. } => source,
            LedgerError::Write(e) => e,
        }
    }
}

/// Scores every job of `reader` on `threads` workers. For each job `per_job` folds its result
/// into the batch's accumulator; `consume` receives the accumulators in input order. Returns
/// the number of jobs read, or why it stopped: the first error from `consume`, or from
/// reading.
pub fn run_ledger<R, S, A>(
    reader: JobReader<R>,
    scorer: &S,
    threads: usize,
    per_job: impl Fn(&ScoreRef<'_>, &mut A) + Sync,
    mut consume: impl FnMut(A) -> io::Result<()>,
) -> Result<u64, LedgerError>
where
    R: BufRead + Send,
    S: LineScorer,
    A: Default + Send,
{
    let threads = threads.max(1);
    let (batch_tx, batch_rx) = crossbeam_channel::bounded::<Batch>(threads * 2);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<(u64, A)>(threads * 2);
    std::thread::scope(|scope| {
        let reading = scope.spawn(move || read_batches(reader, batch_tx));
        for _ in 0..threads {
            let (rx, tx) = (batch_rx.clone(), done_tx.clone());
            let per_job = &per_job;
            scope.spawn(move || {
                let mut ctx = scorer.context();
                for batch in rx {
                    let mut acc = A::default();
                    let mut emit = |s: &ScoreRef<'_>| per_job(s, &mut acc);
                    for item in batch.items {
                        match item {
                            Item::Line { line, start, end } => {
                                scorer.score_line(
                                    &mut ctx,
                                    line,
                                    &batch.bytes[start..end],
                                    &mut emit,
                                );
                            }
                            Item::Record(r) => scorer.score_record(&mut ctx, &r, &mut emit),
                        }
                    }
                    if tx.send((batch.seq, acc)).is_err() {
                        return; // the consumer stopped
                    }
                }
            });
        }
        drop(done_tx);
        drop(batch_rx);
        // Deliver in order; out-of-order batches wait here (bounded by the channels).
        let mut pending: BTreeMap<u64, A> = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        for (seq, acc) in done_rx.iter() {
            pending.insert(seq, acc);
            while let Some(acc) = pending.remove(&next) {
                next += 1;
                if result.is_ok() {
                    result = consume(acc);
                }
            }
            if result.is_err() {
                // Stop reading: dropping the receiver ends the workers, then the reader.
                break;
            }
        }
        drop(done_rx);
        let (jobs, io_error) = reading.join().expect("reader thread");
        result.map_err(LedgerError::Write)?;
        match io_error {
            Some(source) => Err(LedgerError::Read { jobs, source }),
            None => Ok(jobs),
        }
    })
}

fn read_batches<R: BufRead>(
    mut reader: JobReader<R>,
    tx: crossbeam_channel::Sender<Batch>,
) -> (u64, Option<io::Error>) {
    let mut seq = 0;
    let mut jobs = 0u64;
    loop {
        let mut batch = Batch {
            seq,
            bytes: Vec::with_capacity(BATCH_BYTES + 4096),
            items: Vec::with_capacity(BATCH_ITEMS),
        };
        while batch.items.len() < BATCH_ITEMS && batch.bytes.len() < BATCH_BYTES {
            let start = batch.bytes.len();
            match reader.next_raw(&mut batch.bytes) {
                Some(RawItem::Line(line)) => batch.items.push(Item::Line {
                    line,
                    start,
                    end: batch.bytes.len(),
                }),
                Some(RawItem::Record(r)) => batch.items.push(Item::Record(r)),
                None => break,
            }
        }
        if batch.items.is_empty() {
            break;
        }
        let last = batch.items.len() < BATCH_ITEMS && batch.bytes.len() < BATCH_BYTES;
        jobs += batch.items.len() as u64;
        if tx.send(batch).is_err() {
            break;
        }
        seq += 1;
        if last {
            break;
        }
    }
    (jobs, reader.io_error.take())
}
