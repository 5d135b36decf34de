//! `eval --format parquet --out FILE`: results as Parquet, one row per job, in input order.
//!
//! Schema (every text column is a UTF-8 `STRING`; nullable ones are `OPTIONAL`):
//! `file`, `line` (INT64), `id`, `model`, `miner`, `status`, `kind`, `family`, `rule`,
//! `points` (`DECIMAL(20,6)` stored as a 9-byte FIXED_LEN_BYTE_ARRAY: the exact integer
//! micro-points, which pyarrow, DuckDB and Spark read as a decimal), `ruleset`, `engine`,
//! `schema_version` (INT32), `reason`, `error`, `field`, `completed_at` (the RFC 3339 text of
//! the result, as in JSONL), `priced_at`, `priced_by`, `disputed_claim`: the fields of a JSONL
//! result.
//! Workers fill each batch's columns; row groups of [`ROW_GROUP_ROWS`] rows are written as
//! they fill, so memory stays bounded; Snappy compression.

use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;

use parquet::basic::Compression;
use parquet::data_type::{
    ByteArray, ByteArrayType, FixedLenByteArray, FixedLenByteArrayType, Int32Type, Int64Type,
};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::ColumnPath;

use crate::engine::identity::SCHEMA_VERSION;
use crate::engine::score::{PricedBy, ScoreRef};

/// Rows per row group.
pub const ROW_GROUP_ROWS: usize = 1 << 16;

const SCHEMA: &str = "
message jobpoints_result {
  OPTIONAL BYTE_ARRAY file (STRING);
  REQUIRED INT64 line;
  OPTIONAL BYTE_ARRAY id (STRING);
  OPTIONAL BYTE_ARRAY model (STRING);
  OPTIONAL BYTE_ARRAY miner (STRING);
  REQUIRED BYTE_ARRAY status (STRING);
  OPTIONAL BYTE_ARRAY kind (STRING);
  OPTIONAL BYTE_ARRAY family (STRING);
  OPTIONAL BYTE_ARRAY rule (STRING);
  REQUIRED FIXED_LEN_BYTE_ARRAY (9) points (DECIMAL(20,6));
  REQUIRED BYTE_ARRAY ruleset (STRING);
  REQUIRED BYTE_ARRAY engine (STRING);
  REQUIRED INT32 schema_version;
  OPTIONAL BYTE_ARRAY reason (STRING);
  OPTIONAL BYTE_ARRAY error (STRING);
  OPTIONAL BYTE_ARRAY field (STRING);
  OPTIONAL BYTE_ARRAY completed_at (STRING);
  OPTIONAL BYTE_ARRAY priced_at (STRING);
  OPTIONAL BYTE_ARRAY priced_by (STRING);
  OPTIONAL BYTE_ARRAY disputed_claim (STRING);
}
";

/// Text columns: every column of [`SCHEMA`] but `line`, `points` and `schema_version`, in
/// schema order.
const TEXT_COLUMNS: usize = 17;

/// One text column of a batch: its present values back to back, where each ends, and a
/// definition level per row. One buffer per column and batch, not one allocation per value
/// (which, with their frees on the writer's thread, cost more than the encoding).
#[derive(Default)]
struct Text {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    defs: Vec<i16>,
}

impl Text {
    fn push(&mut self, v: Option<&str>) {
        match v {
            Some(v) => {
                self.bytes.extend_from_slice(v.as_bytes());
                self.ends.push(self.bytes.len());
                self.defs.push(1);
            }
            None => self.defs.push(0),
        }
    }
}

/// Cuts a buffer into values that share it.
fn values(bytes: Vec<u8>, ends: &[usize]) -> impl Iterator<Item = ByteArray> + '_ {
    let bytes = Bytes::from(bytes);
    let mut start = 0;
    ends.iter().map(move |&end| {
        let v = ByteArray::from(bytes.slice(start..end));
        start = end;
        v
    })
}

/// Results of a batch as columns, filled by a worker.
#[derive(Default)]
pub struct Columns {
    rows: usize,
    line: Vec<i64>,
    /// The points' 9-byte decimals, back to back.
    points: Vec<u8>,
    /// `file, id, model, miner, status, kind, family, rule, ruleset, engine, reason, error,
    /// field, completed_at, priced_at, priced_by, disputed_claim`.
    text: [Text; TEXT_COLUMNS],
}

impl Columns {
    /// Adds one result.
    pub fn push(&mut self, s: &ScoreRef<'_>) {
        self.rows += 1;
        self.line.push(i64::try_from(s.line).unwrap_or(i64::MAX));
        // The exact micro-points, as the low 9 bytes of their big-endian two's complement.
        let bytes = i128::from(s.points.micros()).to_be_bytes();
        self.points.extend_from_slice(&bytes[16 - POINTS_BYTES..]);
        let text = [
            s.file,
            s.id,
            s.model,
            s.miner,
            Some(s.status.as_str()),
            s.kind,
            s.family,
            s.rule,
            Some(s.ruleset),
            Some(s.engine),
            s.reason,
            s.error,
            s.field,
            s.completed_at,
            s.priced_at,
            s.priced_by.map(|p| match p {
                PricedBy::At => "at",
                PricedBy::Received => "received",
            }),
            s.disputed_claim,
        ];
        for (column, v) in self.text.iter_mut().zip(text) {
            column.push(v);
        }
    }
}

/// Bytes of the points' FIXED_LEN_BYTE_ARRAY.
const POINTS_BYTES: usize = 9;

/// The columns of the rows waiting for the next row group, as the writer takes them.
#[derive(Default)]
struct Pending {
    rows: usize,
    line: Vec<i64>,
    points: Vec<FixedLenByteArray>,
    text: [(Vec<ByteArray>, Vec<i16>); TEXT_COLUMNS],
}

impl Pending {
    fn append(&mut self, batch: Columns) {
        self.rows += batch.rows;
        self.line.extend_from_slice(&batch.line);
        let ends: Vec<usize> = (1..=batch.rows).map(|i| i * POINTS_BYTES).collect();
        self.points
            .extend(values(batch.points, &ends).map(FixedLenByteArray::from));
        for ((values_out, defs), t) in self.text.iter_mut().zip(batch.text) {
            values_out.extend(values(t.bytes, &t.ends));
            defs.extend_from_slice(&t.defs);
        }
    }
}

/// Writes batches of results to a Parquet file.
pub struct ParquetWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    pending: Pending,
}

fn to_io(e: parquet::errors::ParquetError) -> io::Error {
    match e {
        parquet::errors::ParquetError::External(e) => io::Error::other(e),
        e => io::Error::other(e.to_string()),
    }
}

impl<W: Write + Send> ParquetWriter<W> {
    pub fn new(out: W) -> io::Result<Self> {
        let schema = Arc::new(parse_message_type(SCHEMA).map_err(to_io)?);
        // Unique per row: a dictionary would only be built to be dropped.
        let unique = ["line", "id", "completed_at"];
        let props = unique
            .iter()
            .fold(WriterProperties::builder(), |b, c| {
                b.set_column_dictionary_enabled(ColumnPath::from(*c), false)
            })
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("jobpoints {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(out, schema, Arc::new(props)).map_err(to_io)?;
        Ok(ParquetWriter {
            writer,
            pending: Pending::default(),
        })
    }

    /// Adds a batch; writes a row group whenever one is full.
    pub fn write(&mut self, batch: Columns) -> io::Result<()> {
        self.pending.append(batch);
        if self.pending.rows >= ROW_GROUP_ROWS {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> io::Result<()> {
        if self.pending.rows == 0 {
            return Ok(());
        }
        let cols = std::mem::take(&mut self.pending);
        // Each column's name and whether it is nullable (has definition levels).
        let columns: Vec<(String, bool)> = self
            .writer
            .schema_descr()
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.max_def_level() > 0))
            .collect();
        let mut group = self.writer.next_row_group().map_err(to_io)?;
        let mut text = cols.text.into_iter();
        let mut index = 0;
        let schema_version = vec![SCHEMA_VERSION as i32; cols.rows];
        while let Some(mut column) = group.next_column().map_err(to_io)? {
            let (name, nullable) = &columns[index];
            match name.as_str() {
                "line" => {
                    column
                        .typed::<Int64Type>()
                        .write_batch(&cols.line, None, None)
                        .map_err(to_io)?;
                }
                "points" => {
                    column
                        .typed::<FixedLenByteArrayType>()
                        .write_batch(&cols.points, None, None)
                        .map_err(to_io)?;
                }
                "schema_version" => {
                    column
                        .typed::<Int32Type>()
                        .write_batch(&schema_version, None, None)
                        .map_err(to_io)?;
                }
                _ => {
                    let (values, defs) = text.next().expect("a text column per schema entry");
                    // Required columns (`status`, `ruleset`, `engine`) have no definition levels.
                    let defs = nullable.then_some(&defs[..]);
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, defs, None)
                        .map_err(to_io)?;
                }
            }
            column.close().map_err(to_io)?;
            index += 1;
        }
        group.close().map_err(to_io)?;
        Ok(())
    }

    /// Writes the last row group and the footer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_group()?;
        self.writer.into_inner().map_err(to_io)
    }
}
