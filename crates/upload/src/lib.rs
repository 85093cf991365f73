//! The pure parts of DWTOOL's scheduled file uploads (SPEC §7.3).
//!
//! *Architecture Invariant:* no database and no clock; files are read only by
//! `open_file`, the one place that knows the formats.

mod convert;
mod delimited;
mod formats;
mod formula;
mod plan;

pub use convert::{ValueKind, convert};
pub use delimited::{DelimitedFile, InputError, Record, Row, detect_delimiter};
pub use formats::{FileRecords, open_file};
pub use formula::{Formula, FormulaError, FormulaValue};
pub use plan::{AUDIT_COLUMNS, KEPT_ON_UPDATE, UploadPlan, create_table_sql, sql_type};
