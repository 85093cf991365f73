//! The pure parts of DWTOOL's scheduled reports (SPEC §7.2): the SQL a report's fields
//! make of its source, and the values and files written the way the original writes
//! them, so that a site's downstream consumers see the same bytes.
//!
//! *Architecture Invariant:* pure. No database, no clock, no file system: writers take
//! the rows `dwsched_flow` decodes (its `Value`) and any `std::io::Write`, and stream,
//! one row at a time.

mod csv_file;
mod json_file;
mod sql;
mod text_files;
mod value;
mod xlsx_file;

pub use csv_file::CsvReport;
pub use dwsched_model::python::{python_decimal, python_float};
pub use json_file::JsonReport;
pub use sql::final_sql;
pub use text_files::{TxtReport, XmlReport};
pub use value::python_str;
pub use xlsx_file::{SHEET, XlsxReport};
