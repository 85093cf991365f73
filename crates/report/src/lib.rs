//! The pure parts of DWTOOL's scheduled reports (SPEC §7.2): the SQL a report's fields
//! make of its source, and the values and files written the way the original writes
//! them, so that a site's downstream consumers see the same bytes.
//!
//! *Architecture Invariant:* no database and no clock. Writers take the rows
//! `dwsched_flow` decodes (its `Value`) and stream them, one row at a time, into the
//! file they are given; the only other files they touch are anonymous temporary
//! spools (XML's rows until their count is known, the XLSX writer's sheet).

mod csv_file;
mod format;
mod json_file;
mod parquet_file;
mod pdf_file;
mod sql;
mod text_files;
mod value;
mod xlsx_file;

pub use csv_file::CsvReport;
pub use dwsched_model::python::{python_decimal, python_float};
pub use format::{Format, ReportFile};
pub use json_file::{JsonReport, python_json};
pub use parquet_file::ParquetReport;
pub use pdf_file::PdfReport;
pub use sql::final_sql;
pub use text_files::{TxtReport, XmlReport};
pub use value::python_str;
pub use xlsx_file::{SHEET, XlsxReport};
