//! Cooperative cancellation of the work running on one thread. A server that gives up on a
//! request (its deadline passed, its client went away) sets the request's flag; the long
//! loops of loading, checking, comparing and scoring rules look at it and stop early, so the
//! thread (and the working slot it holds) is free again within moments, not minutes. What
//! cancelled work returns is incomplete: whoever set the flag throws it away.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set to stop the work it was given to.
pub type CancelFlag = Arc<AtomicBool>;

thread_local! {
    static CURRENT: RefCell<Option<CancelFlag>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread with `flag` as its cancellation flag (see [`cancelled`]); the
/// previous flag is restored after it, even if `f` panics.
pub fn run_cancellable<R>(flag: &CancelFlag, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<CancelFlag>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(flag.clone())));
    f()
}

/// True when the work on this thread was cancelled: stop, the result is not wanted.
pub fn cancelled() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_work_run_with_a_set_flag_is_cancelled() {
        assert!(!cancelled());
        let flag = CancelFlag::default();
        run_cancellable(&flag, || {
            assert!(!cancelled());
            flag.store(true, Ordering::Relaxed);
            assert!(cancelled());
            let other = CancelFlag::default();
            run_cancellable(&other, || assert!(!cancelled()));
            assert!(cancelled());
        });
        assert!(!cancelled());
        std::thread::spawn(|| assert!(!cancelled())).join().unwrap();
    }
}
