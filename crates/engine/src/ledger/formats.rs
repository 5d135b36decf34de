//! Which reader a job file gets: JSON (JSONL, arrays, pretty documents), CSV with a header row,
//! or Parquet; by `--input-format`, else by the file's extension.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::engine::job::JobError;
use crate::ledger::csv_records::{CsvRecord, CsvRecords};
use crate::ledger::reader::{BlockSource, Chunk, JobReader, Ledger};
use crate::ledger::rows::{CsvCells, Plan, TEXT_FIELDS};

/// Input formats of the ledger commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// By extension: `.parquet` / `.pq` is Parquet, `.csv` is CSV, anything else (and `-`)
    /// is JSON.
    #[default]
    Auto,
    /// JSONL, JSON arrays and pretty-printed documents, in any mix.
    Json,
    /// CSV with a header row naming the job fields (dotted names nest).
    Csv,
    /// Apache Parquet (columns name the job fields; structs and dotted names nest).
    Parquet,
}

impl InputFormat {
    /// The format of `path`: this one, or for `Auto` the one its extension says.
    pub fn of(self, path: &Path) -> InputFormat {
        if self != InputFormat::Auto {
            return self;
        }
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("parquet" | "pq") => InputFormat::Parquet,
            Some("csv") => InputFormat::Csv,
            _ => InputFormat::Json,
        }
    }
}

/// Opens `path` (or stdin for `-`) as a ledger of the given format.
pub fn open_ledger(path: &Path, format: InputFormat) -> io::Result<Ledger> {
    let stdin = path.as_os_str() == "-";
    let input = || -> io::Result<Box<dyn io::BufRead + Send>> {
        Ok(if stdin {
            Box::new(BufReader::with_capacity(1 << 16, io::stdin()))
        } else {
            Box::new(BufReader::with_capacity(1 << 16, File::open(path)?))
        })
    };
    match format.of(path) {
        InputFormat::Auto | InputFormat::Json => Ok(Ledger::new(JobReader::new(input()?))),
        InputFormat::Csv => Ok(Ledger::new(CsvSource::new(input()?)?)),
        InputFormat::Parquet => {
            if stdin {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "Parquet cannot be read from stdin (its index is at the end of the file): give the file's path",
                ));
            }
            open_parquet(File::open(path)?)
        }
    }
}

/// Opens `path` (or stdin for `-`) as a stream of job records, its format from its extension.
pub fn open_jobs(path: &Path) -> io::Result<Ledger> {
    open_ledger(path, InputFormat::Auto)
}

#[cfg(feature = "parquet")]
pub fn open_parquet(file: File) -> io::Result<Ledger> {
    Ok(Ledger::new(crate::ledger::parquet_in::ParquetSource::open(
        file,
    )?))
}

#[cfg(not(feature = "parquet"))]
pub fn open_parquet(_file: File) -> io::Result<Ledger> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this jobpoints was built without Parquet support (cargo feature `parquet`)",
    ))
}

/// A CSV ledger: a header row, then one job per record. A record's line in the results is
/// the line where it starts in the file. Records are cut by line ([`CsvRecords`]): a broken
/// one is reported on its first line and reading resumes at the next.
pub struct CsvSource<R> {
    records: CsvRecords<BufReader<R>>,
    plan: Plan,
    names: Vec<String>,
    text: Vec<bool>,
    error: Option<io::Error>,
    done: bool,
}

impl<R: Read> CsvSource<R> {
    /// Reads the header row; an unreadable or clashing header is an error.
    pub fn new(input: R) -> io::Result<Self> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let mut records = CsvRecords::new(BufReader::new(input));
        let names = match records.next_record()? {
            None => return Err(invalid("the CSV file has no header row".into())),
            Some(CsvRecord::Broken(_, why)) => {
                return Err(invalid(format!("the CSV header: {why}")));
            }
            Some(CsvRecord::Fields(_)) => records
                .record
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    // A UTF-8 byte order mark before the first name is not part of it.
                    let h = if i == 0 {
                        h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h)
                    } else {
                        h
                    };
                    String::from_utf8(h.to_vec())
                        .map_err(|_| invalid("the CSV header is not UTF-8".into()))
                })
                .collect::<io::Result<Vec<String>>>()?,
        };
        let plan = Plan::new(&names).map_err(invalid)?;
        let text = names
            .iter()
            .map(|n| TEXT_FIELDS.contains(&n.as_str()))
            .collect();
        records.width = Some(names.len());
        Ok(CsvSource {
            records,
            plan,
            names,
            text,
            error: None,
            done: false,
        })
    }
}

impl<R: Read + Send> BlockSource for CsvSource<R> {
    fn next_block(&mut self, out: &mut Vec<u8>, _target: usize) -> Option<Chunk> {
        if self.done {
            return None;
        }
        let next = match self.records.next_record() {
            Ok(Some(next)) => next,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                self.error = Some(e);
                return None;
            }
        };
        let invalid = |line: u64, field: Option<String>, message: String| {
            Some(Chunk::Record(Err(JobError {
                line,
                id: None,
                model: None,
                field,
                message,
            })))
        };
        let line = match next {
            CsvRecord::Fields(line) => line,
            CsvRecord::Broken(line, why) => return invalid(line, None, why),
        };
        let record = &self.records.record;
        if record.len() != self.names.len() {
            return invalid(
                line,
                None,
                format!(
                    "line {line} has {} fields, the header has {}",
                    record.len(),
                    self.names.len()
                ),
            );
        }
        let start = out.len();
        let mut cells = CsvCells {
            record,
            text: &self.text,
        };
        match self.plan.write_job(&mut cells, out) {
            Ok(()) => Some(Chunk::Job(line)),
            Err(e) => {
                out.truncate(start);
                let column = self.names[e.column].clone();
                let message = format!("line {line}, column `{column}` {}", e.message);
                invalid(line, Some(column), message)
            }
        }
    }

    fn take_io_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }
}
