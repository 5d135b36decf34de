//! Job files in, results out: readers for every file shape, the parallel pipeline, output
//! writers and tallies.

pub mod output;
pub mod pipeline;
pub mod reader;
pub mod synth;
pub mod tally;
