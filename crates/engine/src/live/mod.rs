//! Rules that change while running: the shared handle that keeps the last good set, and the
//! directory watcher that tells it to reload.

pub mod handle;
#[cfg(feature = "watch")]
pub mod watcher;
