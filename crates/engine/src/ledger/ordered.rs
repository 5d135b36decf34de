//! The ordered worker pool under every parallel pass over jobs (`eval`, `tally`, `diff`'s
//! corpus and `--jobs`, `verify`): one reader thread cuts the input into batches, `threads`
//! workers turn each batch into a result, and the caller receives the results in the order
//! the batches were read, in memory bounded by the batches in flight.

use std::collections::BTreeMap;
use std::io;

/// Where the reader sends its batches; each is numbered in the order sent.
pub struct Feed<T> {
    tx: crossbeam_channel::Sender<(u64, T)>,
    next: u64,
}

impl<T> Feed<T> {
    /// Hands one batch to the workers; `false` once they stopped (the consumer failed), when
    /// the reader should stop too.
    pub fn send(&mut self, batch: T) -> bool {
        let sent = self.tx.send((self.next, batch)).is_ok();
        self.next += 1;
        sent
    }
}

/// Runs `read` on a thread of its own, `work` on each batch it feeds on `threads` workers
/// (each with its own `context()`), and `consume` on the results in the order the batches
/// were fed, until it fails. Returns `consume`'s first error, if any, and what `read`
/// returned (once it stopped: at its end, or when the workers stopped after that error).
pub fn ordered<T, A, C, R>(
    threads: usize,
    read: impl FnOnce(Feed<T>) -> R + Send,
    context: impl Fn() -> C + Sync,
    work: impl Fn(&mut C, T) -> A + Sync,
    mut consume: impl FnMut(A) -> io::Result<()>,
) -> (io::Result<()>, R)
where
    T: Send,
    A: Send,
    R: Send,
{
    let threads = threads.max(1);
    let (batch_tx, batch_rx) = crossbeam_channel::bounded::<(u64, T)>(threads * 2);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<(u64, A)>(threads * 2);
    std::thread::scope(|scope| {
        let reading = scope.spawn(move || {
            read(Feed {
                tx: batch_tx,
                next: 0,
            })
        });
        for _ in 0..threads {
            let (rx, tx) = (batch_rx.clone(), done_tx.clone());
            let (context, work) = (&context, &work);
            scope.spawn(move || {
                let mut ctx = context();
                for (seq, batch) in rx {
                    if tx.send((seq, work(&mut ctx, batch))).is_err() {
                        return; // the consumer stopped
                    }
                }
            });
        }
        drop(done_tx);
        drop(batch_rx);
        // Deliver in order; out-of-order results wait here (bounded by the channels).
        let mut pending: BTreeMap<u64, A> = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        'results: for (seq, done) in done_rx.iter() {
            pending.insert(seq, done);
            while let Some(done) = pending.remove(&next) {
                next += 1;
                result = consume(done);
                if result.is_err() {
                    // Stop reading: dropping the receiver ends the workers, then the reader.
                    break 'results;
                }
            }
        }
        drop(done_rx);
        let read = reading.join().expect("reader thread");
        (result, read)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_the_order_read_whatever_the_workers_take() {
        let mut seen = Vec::new();
        let (result, read) = ordered(
            4,
            |mut feed: Feed<u64>| (0..200).take_while(|i| feed.send(*i)).count(),
            || (),
            |_, i| {
                // Later batches finish first.
                std::thread::sleep(std::time::Duration::from_micros((200 - i) * 20));
                i * 2
            },
            |x| {
                seen.push(x);
                Ok(())
            },
        );
        assert!(result.is_ok());
        assert_eq!(read, 200);
        assert_eq!(seen, (0..200).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_failing_consumer_stops_the_reader() {
        let mut seen = 0;
        let (result, read) = ordered(
            2,
            |mut feed: Feed<u64>| (0..1_000_000).take_while(|i| feed.send(*i)).count(),
            || (),
            |_, i| i,
            |i| {
                seen += 1;
                if i == 10 {
                    Err(io::Error::other("full"))
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(result.unwrap_err().to_string(), "full");
        assert_eq!(seen, 11);
        assert!(read < 1_000_000, "{read}");
    }
}
