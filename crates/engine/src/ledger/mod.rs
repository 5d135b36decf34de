//! Job files in, results out: readers for every file shape, the parallel pipeline, output
//! writers and tallies.

pub mod csv_records;
pub mod formats;
pub mod ordered;
pub mod output;
#[cfg(feature = "parquet")]
pub mod parquet_in;
#[cfg(feature = "parquet")]
pub mod parquet_out;
#[cfg(feature = "parquet")]
pub mod parquet_pages;
pub mod pipeline;
pub mod reader;
pub mod rows;
pub mod safe;
pub mod synth;
pub mod tally;
