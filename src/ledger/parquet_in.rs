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
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, reader::RowIter};
use parquet::schema::types::Type;

use crate::engine::job::JobError;
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

/// A Parquet file as a source of jobs.
pub struct ParquetSource {
    rows: RowIter<'static>,
    plan: Plan,
    names: Vec<String>,
    hints: Vec<Hint>,
    row: u64,
    error: Option<io::Error>,
    done: bool,
}

impl ParquetSource {
    /// Opens `file`; a file that is not Parquet, or has a column of a type that cannot be
    /// read, is an error before anything is scored.
    pub fn open(file: File) -> io::Result<Self> {
        let reader = SerializedFileReader::new(file).map_err(invalid_data)?;
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
        Ok(ParquetSource {
            rows: RowIter::from_file_into(Box::new(reader)),
            plan,
            names,
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

impl BlockSource for ParquetSource {
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
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let mut cells = RowCells {
            fields: &fields,
            hints: &self.hints,
        };
        match self.plan.write_job(&mut cells, out) {
            Ok(()) => Some(Chunk::Job(self.row)),
            Err(e) => {
                out.truncate(start);
                let column = &self.names[e.column];
                Some(Chunk::Record(Err(JobError {
                    line: self.row,
                    id: None,
                    model: None,
                    field: Some(column.clone()),
                    message: format!("row {}, column `{column}`: {}", self.row, e.message),
                })))
            }
        }
    }

    fn take_io_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }
}

impl ParquetSource {
    fn fail(&mut self, message: String) {
        self.done = true;
        self.error = Some(invalid_data(message));
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

#[cfg(test)]
mod tests {
    use super::*;

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
