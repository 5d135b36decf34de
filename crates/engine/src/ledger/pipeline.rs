//! Scoring job files at scale: read once, scored on every core, results delivered in input
//! order, in constant memory.
//!
//! A reader thread reads the input in blocks of about 1 MiB cut at line ends (it copies no
//! line and parses nothing), and cuts arrays and multi-line documents into job texts; worker
//! threads cut the lines, check UTF-8 once per block, and parse and score every job; the caller receives each batch's accumulated output in order. Memory is bounded
//! by the batches in flight, whatever the file's size.

use std::io::{self, Read};

use crate::engine::job::strict::JobRecord;
use crate::engine::score::{JobInput, ScoreContext, ScoreRef, Scorer};
use crate::ledger::ordered::{Feed, ordered};
use crate::ledger::reader::{BlockSource, Chunk, JobReader, block_lines};

/// Jobs (array elements, documents, records) per batch handed to a worker.
const BATCH_ITEMS: usize = 4096;
/// Bytes of JSONL per batch.
const BATCH_BYTES: usize = 1 << 20;

/// Something that turns jobs into results: the rules engine's [`Scorer`], or (in the
/// benchmark) a hand-written scorer. Results are handed to `emit` as borrowed views.
pub trait JobScorer: Sync {
    /// Per-worker state.
    type Ctx: Send;
    fn context(&self) -> Self::Ctx;
    /// Scores one job; `emit` receives exactly one result.
    fn score_job(
        &self,
        ctx: &mut Self::Ctx,
        job: JobInput<'_>,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    );
}

impl<'rs> JobScorer for Scorer<'rs> {
    type Ctx = ScoreContext<'rs>;

    fn context(&self) -> ScoreContext<'rs> {
        Scorer::context(self)
    }

    fn score_job(
        &self,
        ctx: &mut ScoreContext<'rs>,
        job: JobInput<'_>,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        Scorer::score_job(self, ctx, job, emit);
    }
}

/// Scores every job of `reader` on this thread, in order: for a request body or a small file,
/// where threads cost more than they save. Returns the I/O error that stopped reading, if any.
pub fn score_each<R: Read, S: JobScorer>(
    reader: &mut JobReader<R>,
    scorer: &S,
    ctx: &mut S::Ctx,
    emit: &mut dyn FnMut(&ScoreRef<'_>),
) -> Option<io::Error> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.next_raw(&mut buf) {
            Some(item) => scorer.score_job(ctx, item.job(&buf), emit),
            None => return reader.io_error.take(),
        }
    }
}

enum Item {
    Line {
        line: u64,
        start: usize,
        end: usize,
    },
    /// Whole raw lines from `start` to `end`, the first numbered `first`.
    Block {
        first: u64,
        start: usize,
        end: usize,
    },
    Record(JobRecord),
}

struct Batch {
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
pub fn run_ledger<B, S, A>(
    reader: B,
    scorer: &S,
    threads: usize,
    per_job: impl Fn(&ScoreRef<'_>, &mut A) + Sync,
    mut consume: impl FnMut(A) -> io::Result<()>,
) -> Result<u64, LedgerError>
where
    B: BlockSource,
    S: JobScorer,
    A: Default + Send,
{
    // Emptied input buffers go back to the reader, so blocks are not allocated (and their
    // pages faulted in) again and again.
    let (free_tx, free_rx) = crossbeam_channel::bounded::<Vec<u8>>(threads.max(1) * 3);
    let mut jobs = 0u64;
    let (result, io_error) = ordered(
        threads,
        move |feed| read_batches(reader, feed, free_rx),
        || scorer.context(),
        |ctx, mut batch: Batch| {
            let mut acc = A::default();
            let mut n = 0u64;
            let mut emit = |s: &ScoreRef<'_>| per_job(s, &mut acc);
            for item in batch.items.drain(..) {
                match item {
                    Item::Line { line, start, end } => {
                        n += 1;
                        let bytes = &batch.bytes[start..end];
                        scorer.score_job(ctx, JobInput::Line { line, bytes }, &mut emit);
                    }
                    Item::Block { first, start, end } => {
                        n += score_block(scorer, ctx, &batch.bytes[start..end], first, &mut emit);
                    }
                    Item::Record(r) => {
                        n += 1;
                        scorer.score_job(ctx, JobInput::Record(&r), &mut emit);
                    }
                }
            }
            batch.bytes.clear();
            let _ = free_tx.try_send(batch.bytes);
            (n, acc)
        },
        |(n, acc)| {
            jobs += n;
            consume(acc)
        },
    );
    result.map_err(LedgerError::Write)?;
    match io_error {
        Some(source) => Err(LedgerError::Read { jobs, source }),
        None => Ok(jobs),
    }
}

/// Scores the jobs of a block of raw JSONL lines (see [`block_lines`]); returns how many.
fn score_block<S: JobScorer>(
    scorer: &S,
    ctx: &mut S::Ctx,
    block: &[u8],
    first: u64,
    emit: &mut dyn FnMut(&ScoreRef<'_>),
) -> u64 {
    let mut jobs = 0;
    // UTF-8 is checked once for the whole block; lines are cut at ASCII bytes, so each is
    // then valid too (a line cut for being overlong may not be: it goes the byte way).
    let text = std::str::from_utf8(block).ok();
    for (line, range) in block_lines(block, first) {
        jobs += 1;
        let job = match text.and_then(|t| t.get(range.clone())) {
            Some(text) => JobInput::Text { line, text },
            None => JobInput::Line {
                line,
                bytes: &block[range],
            },
        };
        scorer.score_job(ctx, job, emit);
    }
    jobs
}

fn read_batches<B: BlockSource>(
    mut reader: B,
    mut feed: Feed<Batch>,
    free: crossbeam_channel::Receiver<Vec<u8>>,
) -> Option<io::Error> {
    loop {
        let bytes = free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES + (1 << 17)));
        let mut batch = Batch {
            bytes,
            items: Vec::new(),
        };
        let mut last = false;
        while batch.items.len() < BATCH_ITEMS && batch.bytes.len() < BATCH_BYTES {
            let start = batch.bytes.len();
            let target = BATCH_BYTES - start;
            match reader.next_block(&mut batch.bytes, target) {
                Some(Chunk::Job(line)) => batch.items.push(Item::Line {
                    line,
                    start,
                    end: batch.bytes.len(),
                }),
                Some(Chunk::Block(first)) => batch.items.push(Item::Block {
                    first,
                    start,
                    end: batch.bytes.len(),
                }),
                Some(Chunk::Record(r)) => batch.items.push(Item::Record(r)),
                None => {
                    last = true;
                    break;
                }
            }
        }
        if batch.items.is_empty() {
            break;
        }
        if !feed.send(batch) {
            break;
        }
        if last {
            break;
        }
    }
    reader.take_io_error()
}
