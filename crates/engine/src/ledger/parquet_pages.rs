//! Parquet pages bounded before they are decompressed: a decompression bomb costs its rows,
//! not the machine.
//!
//! The parquet crate allocates a page's declared uncompressed size and decompresses it whole
//! (#22: a 49 KB file with one 1.5 GB zstd string cell took 3.1 GB, and its job scored `ok`).
//! Here each page's header is read first (a few bytes, from the file), and a page over [`MAX_PAGE_BYTES`] uncompressed is skipped unread: the column reader gets a
//! placeholder page of as many rows, all null (or empty), and the rows it covered are listed
//! in [`Oversized`] so that each is reported `invalid` with its row and column, while every
//! other row is scored. A page that big only ever holds a cell near the JSONL line limit
//! (writers cut pages at about 1 MiB).

use std::fs::File;
use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use parquet::basic::{Encoding, Type as PhysicalType};
use parquet::bloom_filter::Sbbf;
use parquet::column::page::{Page, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use parquet::file::reader::{ChunkReader, FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::record::reader::RowIter;
use parquet::schema::types::{ColumnDescPtr, Type as SchemaType};

use crate::engine::json::MAX_LINE_BYTES;

/// The largest page decompressed: the JSONL line limit (16 MiB), the most a cell may hold.
pub const MAX_PAGE_BYTES: u64 = MAX_LINE_BYTES as u64;

/// Rows of one column not read, because their page was over [`MAX_PAGE_BYTES`].
#[derive(Debug, Clone)]
pub struct Oversized {
    /// The leaf column's index in the schema.
    pub column: usize,
    /// 0-based rows of the file: `first..first + rows`.
    pub first: u64,
    pub rows: u64,
    /// The page's declared uncompressed size.
    pub bytes: u64,
}

impl Oversized {
    pub fn covers(&self, row: u64) -> bool {
        (self.first..self.first + self.rows).contains(&row)
    }

    /// Why the cell is not read.
    pub fn message(&self) -> String {
        format!(
            "the value is in a page of {} bytes uncompressed, over the {} MiB limit of a cell: \
             not read",
            self.bytes,
            MAX_PAGE_BYTES >> 20
        )
    }
}

/// What the readers found oversized so far, shared with the source that reports the rows.
pub type OversizedList = Arc<Mutex<Vec<Oversized>>>;

/// A page header, as far as bounding the page needs it.
#[derive(Debug, Clone, Copy)]
struct Header {
    page_type: i32,
    uncompressed: i64,
    compressed: i64,
    /// Values of a data page (v1: rows too, for a column that is not repeated).
    num_values: Option<i64>,
    /// Rows of a v2 data page.
    num_rows: Option<i64>,
}

const DATA_PAGE: i32 = 0;
const INDEX_PAGE: i32 = 1;
const DICTIONARY_PAGE: i32 = 2;
const DATA_PAGE_V2: i32 = 3;

/// Reads Thrift's compact protocol, only as far as a page header needs.
struct Compact<R> {
    input: R,
    read: u64,
}

impl<R: Read> Compact<R> {
    fn byte(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.input
            .read_exact(&mut b)
            .map_err(|e| ParquetError::General(format!("a page header: {e}")))?;
        self.read += 1;
        Ok(b[0])
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ParquetError::General(
            "a page header: varint too long".into(),
        ))
    }

    fn zigzag(&mut self) -> Result<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn skip(&mut self, n: u64) -> Result<()> {
        for _ in 0..n {
            self.byte()?;
        }
        Ok(())
    }

    /// Skips a value of compact type `ty`; `depth` bounds nesting (a hostile header).
    fn skip_value(&mut self, ty: u8, depth: u32) -> Result<()> {
        if depth > 16 {
            return Err(ParquetError::General("a page header nests too deep".into()));
        }
        match ty {
            1 | 2 => Ok(()),
            3 => self.skip(1),
            4..=6 => self.zigzag().map(drop),
            7 => self.skip(8),
            8 => {
                let n = self.varint()?;
                if n > 1 << 24 {
                    return Err(ParquetError::General("a page header is too large".into()));
                }
                self.skip(n)
            }
            9 | 10 => {
                let h = self.byte()?;
                let n = match h >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                self.skip_many(n, h & 0x0f, depth)
            }
            11 => {
                let n = self.varint()?;
                if n == 0 {
                    return Ok(());
                }
                let kv = self.byte()?;
                for _ in 0..n {
                    self.skip_value(kv >> 4, depth + 1)?;
                    self.skip_value(kv & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            12 => self.fields(depth + 1, |_, _, _| Ok(false)),
            _ => Err(ParquetError::General(format!(
                "a page header has an unknown field type {ty}"
            ))),
        }
    }

    fn skip_many(&mut self, n: u64, ty: u8, depth: u32) -> Result<()> {
        if n > 1 << 24 {
            return Err(ParquetError::General("a page header is too large".into()));
        }
        for _ in 0..n {
            // A boolean in a list is a byte of its own.
            if matches!(ty, 1 | 2) {
                self.skip(1)?;
            } else {
                self.skip_value(ty, depth + 1)?;
            }
        }
        Ok(())
    }

    /// The fields of a struct, up to its stop: `each(reader, id, type)` reads a field it
    /// wants and returns true, else the field is skipped.
    fn fields(
        &mut self,
        depth: u32,
        mut each: impl FnMut(&mut Self, i16, u8) -> Result<bool>,
    ) -> Result<()> {
        let mut id = 0i16;
        loop {
            let h = self.byte()?;
            let ty = h & 0x0f;
            if ty == 0 {
                return Ok(());
            }
            id = match h >> 4 {
                0 => self.zigzag()? as i16,
                delta => id.wrapping_add(i16::from(delta)),
            };
            if !each(self, id, ty)? {
                self.skip_value(ty, depth)?;
            }
        }
    }

    /// A page header, and how many bytes it took.
    fn header(&mut self) -> Result<Header> {
        let mut h = Header {
            page_type: -1,
            uncompressed: -1,
            compressed: -1,
            num_values: None,
            num_rows: None,
        };
        self.fields(0, |r, id, ty| {
            Ok(match (id, ty) {
                (1, 5) => {
                    h.page_type = r.zigzag()? as i32;
                    true
                }
                (2, 5) => {
                    h.uncompressed = r.zigzag()?;
                    true
                }
                (3, 5) => {
                    h.compressed = r.zigzag()?;
                    true
                }
                // data_page_header, data_page_header_v2: num_values (1), v2's num_rows (3).
                (5 | 8, 12) => {
                    let v2 = id == 8;
                    r.fields(1, |r, id, ty| {
                        Ok(match (id, ty) {
                            (1, 5) => {
                                h.num_values = Some(r.zigzag()?);
                                true
                            }
                            (3, 5) if v2 => {
                                h.num_rows = Some(r.zigzag()?);
                                true
                            }
                            _ => false,
                        })
                    })?;
                    true
                }
                _ => false,
            })
        })?;
        if h.uncompressed < 0 || h.compressed < 0 {
            return Err(ParquetError::General(
                "a page header without its sizes".into(),
            ));
        }
        Ok(h)
    }
}

/// A column chunk's pages, with each page over [`MAX_PAGE_BYTES`] replaced by a placeholder
/// of as many null (or empty) values, its rows listed in `oversized`.
struct CappedPages {
    inner: Box<dyn PageReader>,
    /// The file, and where the next page header is in it, up to the chunk's end: headers
    /// are read one at a time, as their pages are (a list of them could be huge).
    file: File,
    at: u64,
    end: u64,
    column: usize,
    descr: ColumnDescPtr,
    /// The file's 0-based row of the next data page.
    row: u64,
    /// The chunk's dictionary was over the limit: every data page is a placeholder.
    dictionary_oversized: Option<u64>,
    oversized: OversizedList,
}

impl CappedPages {
    fn next(&mut self) -> Result<Option<Page>> {
        loop {
            if self.at >= self.end {
                return self.inner.get_next_page();
            }
            let mut reader = Compact {
                input: self.file.get_read(self.at)?,
                read: 0,
            };
            let h = reader.header()?;
            self.at += reader.read + h.compressed as u64;
            let too_big = (h.uncompressed as u64 > MAX_PAGE_BYTES)
                .then_some(h.uncompressed as u64)
                .or(self.dictionary_oversized);
            match (h.page_type, too_big) {
                (INDEX_PAGE, _) => self.inner.skip_next_page()?,
                (DICTIONARY_PAGE, Some(bytes)) => {
                    self.inner.skip_next_page()?;
                    self.dictionary_oversized = Some(bytes);
                }
                (DATA_PAGE | DATA_PAGE_V2, Some(bytes)) => {
                    self.inner.skip_next_page()?;
                    return self.placeholder(h, bytes).map(Some);
                }
                (DATA_PAGE | DATA_PAGE_V2, None) => {
                    self.row += rows_of(&h);
                    return self.inner.get_next_page();
                }
                _ => return self.inner.get_next_page(),
            }
        }
    }

    /// A page of `h`'s values, all null (or, in a required column, zero or empty), for a
    /// page of `bytes` not read.
    fn placeholder(&mut self, h: Header, bytes: u64) -> Result<Page> {
        if self.descr.max_rep_level() > 0 {
            // Its rows cannot be told from its values without reading it.
            return Err(ParquetError::General(format!(
                "column `{}`: a page of {bytes} bytes uncompressed, over the {} MiB limit, in \
                 a repeated column",
                self.descr.path(),
                MAX_PAGE_BYTES >> 20
            )));
        }
        let n = h.num_values.unwrap_or(0).max(0) as u64;
        let rows = rows_of(&h);
        self.oversized
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Oversized {
                column: self.column,
                first: self.row,
                rows,
                bytes,
            });
        self.row += rows;
        let mut buf = Vec::new();
        let max_def = self.descr.max_def_level();
        if max_def > 0 {
            // Definition levels, all 0 (null): one RLE run, after its 4-byte length.
            let mut run = Vec::new();
            let mut v = n << 1;
            while v >= 0x80 {
                run.push((v as u8) | 0x80);
                v >>= 7;
            }
            run.push(v as u8);
            let bit_width = 16 - (max_def as u16).leading_zeros();
            run.extend(std::iter::repeat_n(0u8, bit_width.div_ceil(8) as usize));
            buf.extend_from_slice(&(run.len() as u32).to_le_bytes());
            buf.extend_from_slice(&run);
        } else {
            let width = match self.descr.physical_type() {
                PhysicalType::BOOLEAN => 0,
                PhysicalType::INT32 | PhysicalType::FLOAT | PhysicalType::BYTE_ARRAY => 4,
                PhysicalType::INT64 | PhysicalType::DOUBLE => 8,
                PhysicalType::INT96 => 12,
                PhysicalType::FIXED_LEN_BYTE_ARRAY => self.descr.type_length().max(0) as u64,
            };
            let len = if width == 0 { n.div_ceil(8) } else { n * width };
            buf.resize(len as usize, 0);
        }
        Ok(Page::DataPage {
            buf: Bytes::from(buf),
            num_values: n as u32,
            encoding: Encoding::PLAIN,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        })
    }
}

/// Rows of a data page of a column that is not repeated.
fn rows_of(h: &Header) -> u64 {
    h.num_rows.or(h.num_values).unwrap_or(0).max(0) as u64
}

impl Iterator for CappedPages {
    type Item = Result<Page>;

    fn next(&mut self) -> Option<Self::Item> {
        CappedPages::next(self).transpose()
    }
}

impl PageReader for CappedPages {
    fn get_next_page(&mut self) -> Result<Option<Page>> {
        CappedPages::next(self)
    }

    fn peek_next_page(&mut self) -> Result<Option<PageMetadata>> {
        self.inner.peek_next_page()
    }

    fn skip_next_page(&mut self) -> Result<()> {
        // Only a reader that skips rows calls it, and ours read every row.
        Err(ParquetError::General(
            "skipping pages of a capped column".into(),
        ))
    }
}

/// A Parquet file whose row groups give capped pages ([`CappedPages`]).
pub struct CappedFile {
    inner: SerializedFileReader<File>,
    /// The same file, for reading page headers.
    file: File,
    pub oversized: OversizedList,
}

impl CappedFile {
    pub fn new(inner: SerializedFileReader<File>, file: File) -> Self {
        CappedFile {
            inner,
            file,
            oversized: OversizedList::default(),
        }
    }

    /// The file's 0-based row where row group `i` starts.
    fn first_row(&self, i: usize) -> u64 {
        self.inner.metadata().row_groups()[..i]
            .iter()
            .map(|g| g.num_rows().max(0) as u64)
            .sum()
    }
}

impl FileReader for CappedFile {
    fn metadata(&self) -> &ParquetMetaData {
        self.inner.metadata()
    }

    fn num_row_groups(&self) -> usize {
        self.inner.num_row_groups()
    }

    fn get_row_group(&self, i: usize) -> Result<Box<dyn RowGroupReader + '_>> {
        Ok(Box::new(CappedGroup {
            inner: self.inner.get_row_group(i)?,
            file: &self.file,
            first_row: self.first_row(i),
            oversized: self.oversized.clone(),
        }))
    }

    fn get_row_iter(&self, projection: Option<SchemaType>) -> Result<RowIter<'_>> {
        RowIter::from_file(projection, self)
    }
}

/// A row group of a [`CappedFile`].
struct CappedGroup<'a> {
    inner: Box<dyn RowGroupReader + 'a>,
    file: &'a File,
    first_row: u64,
    oversized: OversizedList,
}

impl RowGroupReader for CappedGroup<'_> {
    fn metadata(&self) -> &RowGroupMetaData {
        self.inner.metadata()
    }

    fn num_columns(&self) -> usize {
        self.inner.num_columns()
    }

    fn get_column_page_reader(&self, i: usize) -> Result<Box<dyn PageReader>> {
        let (start, len) = self.metadata().column(i).byte_range();
        Ok(Box::new(CappedPages {
            inner: self.inner.get_column_page_reader(i)?,
            file: self.file.try_clone()?,
            at: start,
            end: start + len,
            column: i,
            descr: self.metadata().schema_descr().column(i),
            row: self.first_row,
            dictionary_oversized: None,
            oversized: self.oversized.clone(),
        }))
    }

    fn get_column_bloom_filter(&self, i: usize) -> Option<&Sbbf> {
        self.inner.get_column_bloom_filter(i)
    }

    fn get_row_iter(&self, projection: Option<SchemaType>) -> Result<RowIter<'_>> {
        RowIter::from_row_group(projection, self)
    }
}
