//! The usual scoring path allocates nothing per job. A counting global allocator (for the
//! whole test binary; counting costs a thread-local increment) shows that scoring a typical
//! ledger line through `Scorer::score_job` (a line, as bytes or as checked text) and writing its JSONL result makes
//! no allocation once the per-thread buffers and caches are warm, and that the pipeline
//! allocates per batch (a block of about 1 MiB), not per job.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::BufReader;
use std::sync::atomic::{AtomicU64, Ordering};

use jobpoints::Status;
use jobpoints::internals::{JobInput, JobReader, Scorer, run_ledger, synth, write_jsonl};

use crate::util::shipped_rules;

struct Counting;

thread_local! {
    /// Allocations made by this thread.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Whether this thread's allocations also count in `TRACKED`.
    static TRACK: Cell<bool> = const { Cell::new(false) };
}

/// Allocations made by the threads that set `TRACK` (a pipeline's workers and consumer).
static TRACKED: AtomicU64 = AtomicU64::new(0);

fn count() {
    // `try_with`: a thread being torn down has no thread-locals left, and is not counted.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    if TRACK.try_with(Cell::get).unwrap_or(false) {
        TRACKED.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; counting touches only
// a const-initialised thread-local `Cell` and an atomic, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn ledger(jobs: u64) -> String {
    let mut bytes = Vec::new();
    synth::write_ledger(&mut bytes, jobs, 11).unwrap();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn the_counter_sees_allocations() {
    // Without this, a broken counter would make the tests below pass.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 100]);
    assert_eq!(allocations(), before + 1);
    drop(v);
}

#[test]
fn scoring_a_typical_job_allocates_nothing() {
    let rules = shipped_rules();
    let scorer = Scorer::new(&rules);
    let mut ctx = scorer.context();
    let text = ledger(20_000);
    let lines: Vec<&str> = text.lines().collect();
    // The result of one job, written as `eval` writes it; the buffer is kept from job to job.
    let mut out = Vec::with_capacity(4096);
    let mut status = Status::Ok;
    let mut score = |line: u64, text: &str, by_bytes: bool, ctx: &mut _, out: &mut Vec<u8>| {
        let mut emit = |s: &jobpoints::internals::ScoreRef<'_>| {
            out.clear();
            write_jsonl(out, s);
            status = s.status;
        };
        let job = if by_bytes {
            JobInput::Line {
                line,
                bytes: text.as_bytes(),
            }
        } else {
            JobInput::Text { line, text }
        };
        scorer.score_job(ctx, job, &mut emit);
        status
    };
    // Warm-up: the per-thread buffers grow, the resolution cache fills.
    for (i, line) in lines.iter().enumerate() {
        score(i as u64 + 1, line, false, &mut ctx, &mut out);
    }
    let mut checked = [0u64; Status::ALL.len()];
    let mut allocating = Vec::new();
    for by_bytes in [false, true] {
        for (i, line) in lines.iter().enumerate() {
            let before = allocations();
            let status = score(i as u64 + 1, line, by_bytes, &mut ctx, &mut out);
            let made = allocations() - before;
            if status == Status::Invalid || status == Status::Error {
                // A message is built for a broken job: the unusual path.
                continue;
            }
            checked[status as usize] += 1;
            if made > 0 {
                allocating.push((
                    made,
                    line.to_string(),
                    String::from_utf8_lossy(&out).into_owned(),
                ));
            }
        }
    }
    assert!(
        allocating.is_empty(),
        "{} of the valid jobs allocated, e.g. {:?}",
        allocating.len(),
        allocating.first()
    );
    // Every outcome of a valid job was seen, on most of the ledger.
    eprintln!("jobs scored without allocating, by status: {checked:?}");
    let at = |s: Status| checked[s as usize];
    let (ok, below, no_rule, disabled) = (
        at(Status::Ok),
        at(Status::BelowThreshold),
        at(Status::NoRule),
        at(Status::Disabled),
    );
    assert!(
        ok > 20_000 && below > 500 && no_rule > 5_000 && disabled > 100,
        "{checked:?}"
    );
}

/// Jobs that report their latencies, under versions with timeout ceilings: within the limit,
/// over it (`over_limit`, its reason written into a reused buffer), `null` (absent), and a
/// catalog window (`no_rule` naming it) also allocate nothing once the buffers have grown.
#[test]
fn latencies_ceilings_and_catalog_windows_allocate_nothing() {
    let rules = shipped_rules();
    let scorer = Scorer::new(&rules);
    let mut ctx = scorer.context();
    let lines = [
        r#"{"id":"a","model":"BrainDance","width":512,"height":512,"steps":20,"inference_latency":6.5,"request_latency":0.2,"completed_at":"2024-11-01T00:00:00Z"}"#,
        r#"{"id":"b","model":"BrainDance","width":512,"height":512,"steps":20,"inference_latency":25.5,"completed_at":"2024-11-01T00:00:00Z"}"#,
        r#"{"id":"c","model":"BrainDance","width":512,"height":512,"steps":20,"inference_latency":null,"completed_at":"2024-11-01T00:00:00Z"}"#,
        r#"{"id":"d","model":"mistralai/mixtral-8x7b-instruct-v0.1","input_tokens":500,"output_tokens":500,"inference_latency":200.0,"completed_at":"2024-10-01T00:00:00Z"}"#,
        r#"{"id":"e","model":"ChilloutMix","width":512,"height":512,"steps":20,"completed_at":"2024-05-01T00:00:00Z"}"#,
    ];
    let want = [
        Status::Ok,
        Status::OverLimit,
        Status::Ok,
        Status::OverLimit,
        Status::NoRule,
    ];
    let mut out = Vec::with_capacity(4096);
    let mut run = |ctx: &mut _| -> (Vec<Status>, u64) {
        let mut statuses = Vec::with_capacity(lines.len());
        let mut made = 0;
        for (i, line) in lines.iter().enumerate() {
            let before = allocations();
            let mut status = Status::Error;
            let job = JobInput::Text {
                line: i as u64 + 1,
                text: line,
            };
            scorer.score_job(ctx, job, &mut |s| {
                out.clear();
                write_jsonl(&mut out, s);
                status = s.status;
            });
            made += allocations() - before;
            statuses.push(status);
        }
        (statuses, made)
    };
    run(&mut ctx);
    let (statuses, made) = run(&mut ctx);
    assert_eq!(statuses, want);
    assert_eq!(made, 0, "allocations after warm-up");
}

/// Allocations made on the tracked threads (this one, the consumer, and the workers from their
/// first job on) while `run_ledger` scores `text` on two workers; and the number of jobs.
fn pipeline_allocations(scorer: &Scorer<'_>, text: &str) -> (u64, u64) {
    let mut written = 0u64;
    TRACK.set(true);
    let before = TRACKED.load(Ordering::Relaxed);
    let jobs = run_ledger(
        JobReader::new(BufReader::new(text.as_bytes())),
        scorer,
        2,
        |s, out: &mut Vec<u8>| {
            TRACK.set(true);
            if out.capacity() == 0 {
                out.reserve(4 << 20);
            }
            write_jsonl(out, s);
        },
        |out| {
            written += out.len() as u64;
            Ok(())
        },
    )
    .unwrap();
    let made = TRACKED.load(Ordering::Relaxed) - before;
    TRACK.set(false);
    assert!(written > jobs * 200);
    (made, jobs)
}

#[test]
fn the_pipeline_allocates_per_batch_not_per_job() {
    let rules = shipped_rules();
    let scorer = Scorer::new(&rules);
    // The generator's broken lines (about 1%, none with a time) are left out: their messages
    // are built on purpose.
    let text: String = ledger(50_000)
        .lines()
        .filter(|l| l.contains("completed_at"))
        .flat_map(|l| [l, "\n"])
        .collect();
    // Each worker's caches fill once (a resolution per model and rule segment, or per day
    // before a rule's first version); after that, only batches allocate: scoring the same
    // jobs four times over makes a few allocations per extra 1 MiB block, none per job.
    let (once, jobs) = pipeline_allocations(&scorer, &text);
    let (four_times, more_jobs) = pipeline_allocations(&scorer, &text.repeat(4));
    assert!(jobs > 49_000 && more_jobs == 4 * jobs);
    let extra = four_times.saturating_sub(once);
    eprintln!("{once} allocations for {jobs} jobs, {four_times} for {more_jobs}");
    assert!(
        extra < (more_jobs - jobs) / 200,
        "{once} allocations for {jobs} jobs, {four_times} for {more_jobs}"
    );
}
