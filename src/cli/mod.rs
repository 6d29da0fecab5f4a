//! Commands of the `lux` binary, one file per command group. `main.rs` parses the arguments
//! and dispatches here.

pub mod args;
pub mod report;
