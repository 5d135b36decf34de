//! Parquet ledgers: read row group by row group (the parquet crate's record reader, a page at
//! a time), each row written as a JSON job text for the workers (see [`crate::ledger::rows`]).
//!
//! Types: integers of every width are integers; floats are numbers (NaN, which pandas writes
//! for a missing value, is an absent field; infinities make the row `invalid`); decimals are
//! exact numbers; strings, enums and UTF-8 binary are text; timestamps (milli-, micro- or
//! nanoseconds, with or without a time zone: read as UTC) are RFC 3339 text, dates
//! `YYYY-MM-DD`; structs are objects; lists are arrays. A row's line in the results is its
//! 1-based row number.

use std::fs::File;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

use parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as PhysicalType};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type,
};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, reader::RowIter};
use parquet::schema::types::{ColumnDescriptor, Type};

use crate::engine::job::JobError;
use crate::ledger::parquet_pages::{CappedFile, OversizedList};
use crate::ledger::reader::{BlockSource, Chunk};
use crate::ledger::rows::{CellError, Cells, Plan, write_string};

/// How the record reader shows a column that needs more than its value: a nanosecond
/// timestamp arrives as a plain integer.
#[derive(Debug, Clone)]
enum Hint {
    Plain,
    Nanos,
    Group(Vec<Hint>),
}

/// A Parquet file as a source of jobs: column by column when every column is a plain scalar
/// (see [`ColumnSource`]), else row by row through the parquet crate's record reader.
pub enum ParquetSource {
    Columns(Box<ColumnSource>),
    Rows(Box<RowSource>),
}

impl ParquetSource {
    /// Opens `file`; a file that is not Parquet, or has a column of a type that cannot be
    /// read, is an error before anything is scored.
    pub fn open(file: File) -> io::Result<Self> {
        let reader = SerializedFileReader::new(file.try_clone()?).map_err(invalid_data)?;
        // Every page bounded before it is decompressed (#22: a decompression bomb).
        let reader = CappedFile::new(reader, file);
        match ColumnSource::new(reader) {
            Ok(columns) => Ok(ParquetSource::Columns(Box::new(columns))),
            Err(reader) => Ok(ParquetSource::Rows(Box::new(RowSource::new(reader)?))),
        }
    }

    /// Opens `file` for the record reader, whatever its columns (to test the two readers
    /// against each other).
    #[cfg(test)]
    fn open_rows(file: File) -> io::Result<Self> {
        let reader = SerializedFileReader::new(file.try_clone()?).map_err(invalid_data)?;
        let reader = CappedFile::new(reader, file);
        Ok(ParquetSource::Rows(Box::new(RowSource::new(reader)?)))
    }
}

impl BlockSource for ParquetSource {
    fn next_block(&mut self, out: &mut Vec<u8>, target: usize) -> Option<Chunk> {
        match self {
            ParquetSource::Columns(c) => c.next_block(out, target),
            ParquetSource::Rows(r) => r.next_block(out, target),
        }
    }

    fn take_io_error(&mut self) -> Option<io::Error> {
        match self {
            ParquetSource::Columns(c) => c.error.take(),
            ParquetSource::Rows(r) => r.error.take(),
        }
    }
}

/// A Parquet file read row by row by the parquet crate's record reader: any schema, lists and
/// maps included, at about 2 µs a row.
pub struct RowSource {
    rows: RowIter<'static>,
    plan: Plan,
    names: Vec<String>,
    /// Per leaf column, its top-level field in `names`.
    leaf_field: Vec<usize>,
    oversized: OversizedList,
    hints: Vec<Hint>,
    row: u64,
    error: Option<io::Error>,
    done: bool,
}

impl RowSource {
    fn new(reader: CappedFile) -> io::Result<Self> {
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let root = schema.root_schema();
        for column in schema.columns() {
            if !readable(column.self_type()) {
                return Err(invalid_data(format!(
                    "column `{}` has a type jobpoints cannot read ({}, {})",
                    column.path(),
                    column.physical_type(),
                    column.converted_type()
                )));
            }
        }
        let names: Vec<String> = root
            .get_fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        let hints = root.get_fields().iter().map(|f| hint(f)).collect();
        let plan = Plan::new(&names).map_err(invalid_data)?;
        let leaf_field = schema
            .columns()
            .iter()
            .map(|c| {
                let top = c.path().parts().first().map(String::as_str);
                names
                    .iter()
                    .position(|n| Some(n.as_str()) == top)
                    .unwrap_or(0)
            })
            .collect();
        let oversized = reader.oversized.clone();
        Ok(RowSource {
            rows: RowIter::from_file_into(Box::new(reader)),
            plan,
            names,
            leaf_field,
            oversized,
            hints,
            row: 0,
            error: None,
            done: false,
        })
    }
}

fn invalid_data(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Whether the record reader can convert a leaf of this type (it panics on the others).
fn readable(t: &Type) -> bool {
    if t.is_group() {
        return true;
    }
    use ConvertedType as C;
    let converted = t.get_basic_info().converted_type();
    match t.get_physical_type() {
        PhysicalType::INT32 => matches!(
            converted,
            C::INT_8
                | C::INT_16
                | C::INT_32
                | C::NONE
                | C::UINT_8
                | C::UINT_16
                | C::UINT_32
                | C::DATE
                | C::TIME_MILLIS
                | C::DECIMAL
        ),
        PhysicalType::INT64 => matches!(
            converted,
            C::INT_64
                | C::NONE
                | C::UINT_64
                | C::TIME_MICROS
                | C::TIMESTAMP_MILLIS
                | C::TIMESTAMP_MICROS
                | C::DECIMAL
        ),
        PhysicalType::BYTE_ARRAY => matches!(
            converted,
            C::UTF8 | C::ENUM | C::JSON | C::BSON | C::NONE | C::DECIMAL
        ),
        PhysicalType::FIXED_LEN_BYTE_ARRAY => matches!(converted, C::DECIMAL | C::NONE),
        PhysicalType::BOOLEAN
        | PhysicalType::INT96
        | PhysicalType::FLOAT
        | PhysicalType::DOUBLE => true,
    }
}

fn hint(t: &Type) -> Hint {
    if t.is_group() {
        return Hint::Group(t.get_fields().iter().map(|f| hint(f)).collect());
    }
    match t.get_basic_info().logical_type_ref() {
        Some(LogicalType::Timestamp(ts)) if ts.unit == TimeUnit::NANOS => Hint::Nanos,
        _ => Hint::Plain,
    }
}

impl RowSource {
    fn next_block(&mut self, out: &mut Vec<u8>, _target: usize) -> Option<Chunk> {
        if self.done {
            return None;
        }
        // The parquet crate may panic on a corrupt file: that ends reading with an error.
        let next = catch_unwind(AssertUnwindSafe(|| self.rows.next()));
        let row = match next {
            Ok(None) => {
                self.done = true;
                return None;
            }
            Ok(Some(Ok(row))) => row,
            Ok(Some(Err(e))) => {
                self.fail(format!("after row {}: {e}", self.row));
                return None;
            }
            Err(_) => {
                self.fail(format!("after row {}: the file is corrupt", self.row));
                return None;
            }
        };
        self.row += 1;
        let start = out.len();
        if let Some(e) = oversized_cell(&self.oversized, self.row - 1, |leaf| self.leaf_field[leaf])
        {
            return row_chunk(self.row, &self.names, Err(e), out, start);
        }
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let mut cells = RowCells {
            fields: &fields,
            hints: &self.hints,
        };
        let result = self.plan.write_job(&mut cells, out);
        row_chunk(self.row, &self.names, result, out, start)
    }

    fn fail(&mut self, message: String) {
        self.done = true;
        self.error = Some(invalid_data(message));
    }
}

/// Rows per batch of the column reader.
const COLUMN_BATCH: usize = 4096;

/// How a scalar column's values are written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Leaf {
    Signed,
    Unsigned,
    Millis,
    Micros,
    Nanos,
    Float,
    Text,
    Bool,
}

/// One column's reader and its values for the current batch.
enum Values {
    Bool(ColumnReaderImpl<BoolType>, Vec<bool>),
    Int32(ColumnReaderImpl<Int32Type>, Vec<i32>),
    Int64(ColumnReaderImpl<Int64Type>, Vec<i64>),
    Float(ColumnReaderImpl<FloatType>, Vec<f32>),
    Double(ColumnReaderImpl<DoubleType>, Vec<f64>),
    Bytes(ColumnReaderImpl<ByteArrayType>, Vec<ByteArray>),
}

struct Column {
    leaf: Leaf,
    /// The definition level of a present value (0: required, always present).
    max_def: i16,
    values: Option<Values>,
    defs: Vec<i16>,
    /// The index in `values` of the current row's value.
    at: usize,
}

/// A Parquet file whose columns are all scalars (integers, floats, booleans, UTF-8 strings,
/// timestamps), in structs or not, and none repeated: read a batch of rows at a time column
/// by column with the parquet crate's typed column readers, several times faster than the
/// record reader. A leaf's path (`model_input.SD.width`) is its field, as a dotted name.
pub struct ColumnSource {
    reader: CappedFile,
    oversized: OversizedList,
    plan: Plan,
    names: Vec<String>,
    columns: Vec<Column>,
    /// The next row group to open.
    group: usize,
    /// Rows of the current batch, and the next one to write.
    rows: usize,
    next: usize,
    row: u64,
    error: Option<io::Error>,
    done: bool,
}

/// How the column reader writes a leaf of this type, if it can.
fn leaf_of(column: &ColumnDescriptor) -> Option<Leaf> {
    use ConvertedType as C;
    if column.max_rep_level() > 0 {
        return None;
    }
    let logical = column.logical_type_ref();
    let converted = column.converted_type();
    Some(match column.physical_type() {
        PhysicalType::BOOLEAN => Leaf::Bool,
        PhysicalType::FLOAT | PhysicalType::DOUBLE if logical.is_none() => Leaf::Float,
        PhysicalType::INT32 | PhysicalType::INT64 => match (logical, converted) {
            (Some(LogicalType::Integer(i)), _) if i.is_signed => Leaf::Signed,
            (Some(LogicalType::Integer(_)), _) => Leaf::Unsigned,
            (Some(LogicalType::Timestamp(t)), _)
                if column.physical_type() == PhysicalType::INT64 =>
            {
                match t.unit {
                    TimeUnit::MILLIS => Leaf::Millis,
                    TimeUnit::MICROS => Leaf::Micros,
                    TimeUnit::NANOS => Leaf::Nanos,
                }
            }
            (None, C::NONE | C::INT_8 | C::INT_16 | C::INT_32 | C::INT_64) => Leaf::Signed,
            (None, C::UINT_8 | C::UINT_16 | C::UINT_32 | C::UINT_64) => Leaf::Unsigned,
            (None, C::TIMESTAMP_MILLIS) => Leaf::Millis,
            (None, C::TIMESTAMP_MICROS) => Leaf::Micros,
            _ => return None,
        },
        PhysicalType::BYTE_ARRAY => match (logical, converted) {
            (Some(LogicalType::String | LogicalType::Enum | LogicalType::Json), _) => Leaf::Text,
            (None, C::UTF8 | C::ENUM | C::JSON) => Leaf::Text,
            _ => return None,
        },
        _ => return None,
    })
}

impl ColumnSource {
    /// The column reader for `reader`, or `reader` back when a column needs the record reader.
    fn new(reader: CappedFile) -> Result<Self, CappedFile> {
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let mut columns = Vec::new();
        let mut names = Vec::new();
        for column in schema.columns() {
            let Some(leaf) = leaf_of(column) else {
                return Err(reader);
            };
            names.push(column.path().string());
            columns.push(Column {
                leaf,
                max_def: column.max_def_level(),
                values: None,
                defs: Vec::new(),
                at: 0,
            });
        }
        // Clashing names are the record reader's to report (the same message either way).
        let Ok(plan) = Plan::new(&names) else {
            return Err(reader);
        };
        Ok(ColumnSource {
            oversized: reader.oversized.clone(),
            reader,
            plan,
            names,
            columns,
            group: 0,
            rows: 0,
            next: 0,
            row: 0,
            error: None,
            done: false,
        })
    }

    /// Opens the readers of the next row group; false after the last.
    fn open_group(&mut self) -> parquet::errors::Result<bool> {
        if self.group >= self.reader.num_row_groups() {
            return Ok(false);
        }
        let group = self.reader.get_row_group(self.group)?;
        self.group += 1;
        for (i, column) in self.columns.iter_mut().enumerate() {
            column.values = Some(match group.get_column_reader(i)? {
                ColumnReader::BoolColumnReader(r) => Values::Bool(r, Vec::new()),
                ColumnReader::Int32ColumnReader(r) => Values::Int32(r, Vec::new()),
                ColumnReader::Int64ColumnReader(r) => Values::Int64(r, Vec::new()),
                ColumnReader::FloatColumnReader(r) => Values::Float(r, Vec::new()),
                ColumnReader::DoubleColumnReader(r) => Values::Double(r, Vec::new()),
                ColumnReader::ByteArrayColumnReader(r) => Values::Bytes(r, Vec::new()),
                _ => {
                    return Err(parquet::errors::ParquetError::General(
                        "unexpected column type".into(),
                    ));
                }
            });
        }
        Ok(true)
    }

    /// Reads the next batch of rows of every column; 0 at the end of the row group.
    fn read_batch(&mut self) -> parquet::errors::Result<usize> {
        let mut rows = None;
        for column in &mut self.columns {
            column.defs.clear();
            column.at = 0;
            let defs = Some(&mut column.defs);
            let (read, _, _) = match column.values.as_mut() {
                None => (0, 0, 0),
                Some(Values::Bool(r, v)) => {
                    v.clear();
                    r.read_records(COLUMN_BATCH, defs, None, v)?
                }
                Some(Values::Int32(r, v)) => {
                    v.clear();
                    r.read_records(COLUMN_BATCH, defs, None, v)?
                }
                Some(Values::Int64(r, v)) => {
                    v.clear();
                    r.read_records(COLUMN_BATCH, defs, None, v)?
                }
                Some(Values::Float(r, v)) => {
                    v.clear();
                    r.read_records(COLUMN_BATCH, defs, None, v)?
                }
                Some(Values::Double(r, v)) => {
                    v.clear();
                    r.read_records(COLUMN_BATCH, defs, None, v)?
                }
                Some(Values::Bytes(r, v)) => {
                    v.clear();
                    r.read_records(COLUMN_BATCH, defs, None, v)?
                }
            };
            if column.max_def > 0 && column.defs.len() != read {
                return Err(parquet::errors::ParquetError::General(
                    "definition levels do not match the rows".into(),
                ));
            }
            match rows {
                None => rows = Some(read),
                Some(n) if n == read => {}
                Some(_) => {
                    return Err(parquet::errors::ParquetError::General(
                        "columns of a row group have different numbers of rows".into(),
                    ));
                }
            }
        }
        Ok(rows.unwrap_or(0))
    }

    /// Makes sure a row is buffered: false at the end of the file.
    fn fill(&mut self) -> parquet::errors::Result<bool> {
        while self.next >= self.rows {
            self.next = 0;
            self.rows = self.read_batch()?;
            if self.rows == 0 && !self.open_group()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn next_block(&mut self, out: &mut Vec<u8>, _target: usize) -> Option<Chunk> {
        if self.done || self.columns.is_empty() {
            return None;
        }
        // The parquet crate may panic on a corrupt file: that ends reading with an error.
        match catch_unwind(AssertUnwindSafe(|| self.fill())) {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                self.done = true;
                return None;
            }
            Ok(Err(e)) => {
                self.fail(format!("after row {}: {e}", self.row));
                return None;
            }
            Err(_) => {
                self.fail(format!("after row {}: the file is corrupt", self.row));
                return None;
            }
        }
        self.row += 1;
        let row = self.next;
        self.next += 1;
        let start = out.len();
        let result = match oversized_cell(&self.oversized, self.row - 1, |leaf| leaf) {
            Some(e) => Err(e),
            None => self.plan.write_job(
                &mut BatchCells {
                    columns: &self.columns,
                    row,
                },
                out,
            ),
        };
        // Every column moves past this row's value, whichever cell failed.
        for column in &mut self.columns {
            if column.max_def == 0 || column.defs[row] == column.max_def {
                column.at += 1;
            }
        }
        row_chunk(self.row, &self.names, result, out, start)
    }

    fn fail(&mut self, message: String) {
        self.done = true;
        self.error = Some(invalid_data(message));
    }
}

struct BatchCells<'a> {
    columns: &'a [Column],
    row: usize,
}

impl Cells for BatchCells<'_> {
    fn write(&mut self, col: usize, out: &mut Vec<u8>) -> Result<bool, CellError> {
        let column = &self.columns[col];
        if column.max_def > 0 && column.defs[self.row] != column.max_def {
            return Ok(false);
        }
        let at = column.at;
        let err = |message: String| CellError {
            column: col,
            message,
        };
        let mut buf = itoa::Buffer::new();
        let mut int = |v: i64, out: &mut Vec<u8>| -> Result<bool, CellError> {
            match column.leaf {
                Leaf::Signed => out.extend_from_slice(buf.format(v).as_bytes()),
                Leaf::Unsigned => out.extend_from_slice(buf.format(v as u64).as_bytes()),
                Leaf::Millis | Leaf::Micros | Leaf::Nanos => {
                    let per_second = match column.leaf {
                        Leaf::Millis => 1_000,
                        Leaf::Micros => 1_000_000,
                        _ => 1_000_000_000,
                    };
                    let nanos = v.rem_euclid(per_second) * (1_000_000_000 / per_second);
                    let text = utc_text(v.div_euclid(per_second), nanos as i32)
                        .ok_or_else(|| err(format!("timestamp {v} is out of range")))?;
                    write_string(&text, out);
                }
                _ => unreachable!("an integer column is an integer or a time"),
            }
            Ok(true)
        };
        match column.values.as_ref() {
            Some(Values::Bool(_, v)) => {
                out.extend_from_slice(if v[at] { b"true" } else { b"false" });
                Ok(true)
            }
            // An unsigned 32-bit value arrives as the i32 of its bits.
            Some(Values::Int32(_, v)) if column.leaf == Leaf::Unsigned => {
                int(i64::from(v[at] as u32), out)
            }
            Some(Values::Int32(_, v)) => int(i64::from(v[at]), out),
            Some(Values::Int64(_, v)) => int(v[at], out),
            Some(Values::Float(_, v)) => write_float(f64::from(v[at]), out).map_err(err),
            Some(Values::Double(_, v)) => write_float(v[at], out).map_err(err),
            Some(Values::Bytes(_, v)) => match std::str::from_utf8(v[at].data()) {
                Ok(text) => {
                    write_string(text, out);
                    Ok(true)
                }
                Err(_) => Err(err("is not valid UTF-8 text".into())),
            },
            None => Ok(false),
        }
    }
}

struct RowCells<'a> {
    fields: &'a [&'a Field],
    hints: &'a [Hint],
}

impl Cells for RowCells<'_> {
    fn write(&mut self, col: usize, out: &mut Vec<u8>) -> Result<bool, CellError> {
        let hint = self.hints.get(col).unwrap_or(&Hint::Plain);
        write_field(self.fields[col], hint, out).map_err(|message| CellError {
            column: col,
            message,
        })
    }
}

/// Writes one value as JSON; `false` (nothing written) for a null or NaN.
fn write_field(field: &Field, hint: &Hint, out: &mut Vec<u8>) -> Result<bool, String> {
    let mut buf = itoa::Buffer::new();
    let int = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
    match field {
        Field::Null => return Ok(false),
        Field::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Field::Byte(v) => int(out, buf.format(*v)),
        Field::Short(v) => int(out, buf.format(*v)),
        Field::Int(v) => int(out, buf.format(*v)),
        Field::Long(v) => match hint {
            Hint::Nanos => {
                let text = utc_text(
                    v.div_euclid(1_000_000_000),
                    v.rem_euclid(1_000_000_000) as i32,
                )
                .ok_or_else(|| format!("timestamp {v} ns is out of range"))?;
                write_string(&text, out);
            }
            _ => int(out, buf.format(*v)),
        },
        Field::UByte(v) => int(out, buf.format(*v)),
        Field::UShort(v) => int(out, buf.format(*v)),
        Field::UInt(v) => int(out, buf.format(*v)),
        Field::ULong(v) => int(out, buf.format(*v)),
        Field::Float16(v) => return write_float(f64::from(*v), out),
        Field::Float(v) => return write_float(f64::from(*v), out),
        Field::Double(v) => return write_float(*v, out),
        Field::Decimal(d) => write_decimal(d.data(), d.scale(), out)?,
        Field::Str(s) => write_string(s, out),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => write_string(s, out),
            Err(_) => return Err("is binary, not UTF-8 text".into()),
        },
        Field::Date(days) => {
            let text = utc_text(i64::from(*days) * 86_400, 0)
                .ok_or_else(|| format!("date {days} is out of range"))?;
            write_string(&text[..10], out);
        }
        Field::TimeMillis(ms) => write_string(&time_of_day(i64::from(*ms) * 1_000_000), out),
        Field::TimeMicros(us) => write_string(&time_of_day(us * 1_000), out),
        Field::TimestampMillis(ms) => {
            let text = utc_text(
                ms.div_euclid(1_000),
                (ms.rem_euclid(1_000) * 1_000_000) as i32,
            )
            .ok_or_else(|| format!("timestamp {ms} ms is out of range"))?;
            write_string(&text, out);
        }
        Field::TimestampMicros(us) => {
            let text = utc_text(
                us.div_euclid(1_000_000),
                (us.rem_euclid(1_000_000) * 1_000) as i32,
            )
            .ok_or_else(|| format!("timestamp {us} µs is out of range"))?;
            write_string(&text, out);
        }
        Field::Group(row) => {
            let fields: Vec<(&String, &Field)> = row.get_column_iter().collect();
            let hints: &[Hint] = match hint {
                Hint::Group(h) => h,
                _ => &[],
            };
            return write_group(&fields, hints, out);
        }
        Field::ListInternal(list) => {
            out.push(b'[');
            for (i, element) in list.elements().iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write_field(element, &Hint::Plain, out)? {
                    out.extend_from_slice(b"null");
                }
            }
            out.push(b']');
        }
        Field::MapInternal(map) => {
            out.push(b'{');
            for (i, (key, value)) in map.entries().iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // A JSON key is text: a string key as it is, any other as its display.
                match key {
                    Field::Str(k) => write_string(k, out),
                    other => write_string(&other.to_string(), out),
                }
                out.push(b':');
                if !write_field(value, &Hint::Plain, out)? {
                    out.extend_from_slice(b"null");
                }
            }
            out.push(b'}');
        }
    }
    Ok(true)
}

/// A struct: an object of its present fields, absent when none is.
fn write_group(
    fields: &[(&String, &Field)],
    hints: &[Hint],
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    let start = out.len();
    out.push(b'{');
    let mut any = false;
    for (i, (name, field)) in fields.iter().enumerate() {
        let mark = out.len();
        if any {
            out.push(b',');
        }
        write_string(name, out);
        out.push(b':');
        let hint = hints.get(i).unwrap_or(&Hint::Plain);
        if write_field(field, hint, out).map_err(|e| format!("`{name}` {e}"))? {
            any = true;
        } else {
            out.truncate(mark);
        }
    }
    if any {
        out.push(b'}');
    } else {
        out.truncate(start);
    }
    Ok(any)
}

fn write_float(v: f64, out: &mut Vec<u8>) -> Result<bool, String> {
    if v.is_nan() {
        // pandas' missing value.
        return Ok(false);
    }
    if v.is_infinite() {
        return Err(format!("{v} is not a finite number"));
    }
    serde_json::to_writer(&mut *out, &v).expect("writing to a Vec cannot fail");
    Ok(true)
}

/// A decimal's exact text from its big-endian two's-complement unscaled bytes.
fn write_decimal(bytes: &[u8], scale: i32, out: &mut Vec<u8>) -> Result<(), String> {
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(format!("decimal of {} bytes cannot be read", bytes.len()));
    }
    let mut v: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in bytes {
        v = (v << 8) | i128::from(b);
    }
    let digits = v.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    if v < 0 {
        out.push(b'-');
    }
    if scale == 0 {
        out.extend_from_slice(digits.as_bytes());
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int.as_bytes());
        out.push(b'.');
        out.extend_from_slice(frac.as_bytes());
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits.as_bytes());
    }
    Ok(())
}

/// A time as RFC 3339 UTC text, from seconds and nanoseconds since the epoch.
fn utc_text(seconds: i64, nanos: i32) -> Option<String> {
    let t = jiff::Timestamp::new(seconds, nanos).ok()?;
    Some(t.to_string())
}

fn time_of_day(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let text = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        text
    } else {
        format!("{text}.{}", format!("{frac:09}").trim_end_matches('0'))
    }
}

/// What row `row` became, for both readers: its job text (written to `out` from `start`), or,
/// when a cell failed, an `invalid` record naming the row and the column, its partial text
/// removed from `out`.
/// The cell of the file's 0-based `row` that a page over the limit held, if any, as the
/// error of the field `field(leaf column)`; entries for rows before it are dropped.
fn oversized_cell(
    list: &OversizedList,
    row: u64,
    field: impl Fn(usize) -> usize,
) -> Option<CellError> {
    let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
    if list.is_empty() {
        return None;
    }
    list.retain(|o| o.first + o.rows > row);
    let o = list.iter().find(|o| o.covers(row))?;
    Some(CellError {
        column: field(o.column),
        message: o.message(),
    })
}

fn row_chunk(
    row: u64,
    names: &[String],
    result: Result<(), CellError>,
    out: &mut Vec<u8>,
    start: usize,
) -> Option<Chunk> {
    match result {
        Ok(()) => Some(Chunk::Job(row)),
        Err(e) => {
            out.truncate(start);
            let column = &names[e.column];
            Some(Chunk::Record(Err(JobError {
                line: row,
                id: None,
                model: None,
                field: Some(column.clone()),
                message: format!("row {row}, column `{column}`: {}", e.message),
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> File {
        let path = format!(
            "{}/../../tests/fixtures/ledgers/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        File::open(path).unwrap()
    }

    /// Every chunk of a source: job texts, and invalid records as their messages.
    fn drain(mut source: ParquetSource) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            match source.next_block(&mut buf, 1 << 20) {
                None => break,
                Some(Chunk::Job(row)) => {
                    out.push(format!("{row} {}", String::from_utf8(buf).unwrap()))
                }
                Some(Chunk::Record(r)) => out.push(format!("{:?}", r.err().map(|e| e.message))),
                Some(Chunk::Block(_)) => panic!("a Parquet source gives rows"),
            }
        }
        if let Some(e) = source.take_io_error() {
            panic!("read error: {e}; read {out:?}");
        }
        out
    }

    #[test]
    fn the_column_reader_writes_the_same_jobs_as_the_record_reader() {
        for name in ["mixed.parquet", "mixed_dotted.parquet"] {
            let fast = ParquetSource::open(fixture(name)).unwrap();
            assert!(matches!(fast, ParquetSource::Columns(_)), "{name}");
            let fast = drain(fast);
            let slow = drain(ParquetSource::open_rows(fixture(name)).unwrap());
            assert_eq!(fast.len(), 48, "{name}");
            assert_eq!(fast, slow, "{name}");
        }
        // Decimals, dates and binary need the record reader.
        let bad = ParquetSource::open(fixture("bad.parquet")).unwrap();
        assert!(matches!(bad, ParquetSource::Rows(_)));
    }

    #[test]
    fn the_column_reader_names_row_and_column_of_a_bad_cell() {
        use parquet::data_type::ByteArray;
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use std::sync::Arc;
        let schema = parquet::schema::parser::parse_message_type(
            "message t { REQUIRED BYTE_ARRAY model (STRING); OPTIONAL DOUBLE width; OPTIONAL INT32 n (INTEGER(32,false)); }",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut w = SerializedFileWriter::new(
            File::create(&path).unwrap(),
            Arc::new(schema),
            Arc::new(WriterProperties::builder().build()),
        )
        .unwrap();
        // Two row groups, so the reader goes on past the first.
        for group in 0..2 {
            let mut g = w.next_row_group().unwrap();
            let mut c = g.next_column().unwrap().unwrap();
            let models: Vec<ByteArray> = [&b"A"[..], b"B\xffC", b"D", b"E"]
                .iter()
                .map(|m| ByteArray::from(m.to_vec()))
                .collect();
            c.typed::<ByteArrayType>()
                .write_batch(&models, None, None)
                .unwrap();
            c.close().unwrap();
            let mut c = g.next_column().unwrap().unwrap();
            let widths = [f64::INFINITY, 512.0, f64::NAN];
            c.typed::<DoubleType>()
                .write_batch(&widths, Some(&[1, 1, 0, 1]), None)
                .unwrap();
            c.close().unwrap();
            let mut c = g.next_column().unwrap().unwrap();
            c.typed::<Int32Type>()
                .write_batch(&[-1, group], Some(&[0, 0, 1, 1]), None)
                .unwrap();
            c.close().unwrap();
            g.close().unwrap();
        }
        w.close().unwrap();
        let source = ParquetSource::open(File::open(&path).unwrap()).unwrap();
        assert!(matches!(source, ParquetSource::Columns(_)));
        let got = drain(source);
        let want_group = |first: u64, last: i32| {
            vec![
                format!(
                    "{:?}",
                    Some(format!(
                        "row {first}, column `width`: inf is not a finite number"
                    ))
                ),
                format!(
                    "{:?}",
                    Some(format!(
                        "row {}, column `model`: is not valid UTF-8 text",
                        first + 1
                    ))
                ),
                format!(r#"{} {{"model":"D","n":4294967295}}"#, first + 2),
                format!(r#"{} {{"model":"E","n":{last}}}"#, first + 3),
            ]
        };
        let mut want = want_group(1, 0);
        want.extend(want_group(5, 1));
        // An unsigned 32-bit -1 is 4294967295, a null and NaN are absent, and the rows after
        // a bad cell are intact.
        assert_eq!(got, want);
        // The record reader stops the whole file at a STRING cell that is not UTF-8.
        let mut slow = ParquetSource::open_rows(File::open(&path).unwrap()).unwrap();
        while slow.next_block(&mut Vec::new(), 1 << 20).is_some() {}
        let e = slow.take_io_error().expect("a read error");
        assert!(e.to_string().contains("after row 1"), "{e}");
    }

    #[test]
    fn decimals_are_exact() {
        let text = |bytes: &[u8], scale| {
            let mut out = Vec::new();
            write_decimal(bytes, scale, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(&[0x01, 0xe2, 0x40], 6), "0.123456");
        assert_eq!(text(&[0xff], 2), "-0.01");
        assert_eq!(text(&[0x30, 0x39], 0), "12345");
        assert_eq!(text(&[0x30, 0x39], 2), "123.45");
    }

    #[test]
    fn floats_nan_is_absent_and_infinity_is_refused() {
        let mut out = Vec::new();
        assert_eq!(write_float(f64::NAN, &mut out), Ok(false));
        assert!(write_float(f64::INFINITY, &mut out).is_err());
        assert_eq!(write_float(512.0, &mut out), Ok(true));
        assert_eq!(out, b"512.0");
    }
}
