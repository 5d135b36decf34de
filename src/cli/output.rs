//! Where subcommands write: standard output through [`Stdout`], whose errors become
//! [`CliError::Output`], and messages to stderr through [`note!`], which never panics.

use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};

use crate::cli::CliError;

/// Buffered standard output. It remembers the first write error, so writes whose result a
/// long-running loop ignores still end the command through [`Stdout::flush_checked`].
pub struct Stdout {
    inner: BufWriter<StdoutLock<'static>>,
    failed: Option<io::Error>,
}

impl Stdout {
    pub fn new() -> Self {
        Stdout {
            inner: BufWriter::with_capacity(1 << 20, io::stdout().lock()),
            failed: None,
        }
    }

    /// Flushes, and gives the first write error since the start, if any.
    pub fn flush_checked(&mut self) -> Result<(), CliError> {
        let flushed = self.flush();
        match self.failed.take() {
            Some(e) => Err(CliError::Output(e)),
            None => flushed.map_err(CliError::Output),
        }
    }

    /// Writes all of `text` and flushes.
    pub fn write_text(&mut self, text: &str) -> Result<(), CliError> {
        let _ = self.write_all(text.as_bytes());
        self.flush_checked()
    }

    fn record(&mut self, e: io::Error) -> io::Error {
        // io::Error is not Clone: keep the original, hand the caller an equal one.
        let copy = match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(e.kind(), e.to_string()),
        };
        self.failed.get_or_insert(e);
        copy
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Stdout::new()
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.record(e))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf).map_err(|e| self.record(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.record(e))
    }
}

/// Prints one line to stderr. Unlike `eprintln!`, a closed or full stderr is ignored rather
/// than a panic: there is nowhere left to say anything.
pub fn write_note(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// `note!("...", args)`: [`write_note`] with `format!` arguments.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::cli::output::write_note(format_args!($($arg)*))
    };
}
pub(crate) use note;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_os_error_reads_like_the_original() {
        let mut out = Stdout::new();
        let copy = out.record(io::Error::from_raw_os_error(28));
        assert_eq!(copy.kind(), io::ErrorKind::StorageFull);
        let Err(CliError::Output(first)) = out.flush_checked() else {
            panic!("the recorded error is returned");
        };
        assert_eq!(first.to_string(), copy.to_string());
        // Taken once: a later flush of a working stdout succeeds.
        assert!(out.failed.is_none());
    }
}
