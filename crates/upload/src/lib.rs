//! The pure parts of DWTOOL's scheduled file uploads (SPEC §7.3).
//!
//! *Architecture Invariant:* pure. No database, no files, no clock.

mod convert;
mod delimited;
mod formula;
mod plan;

pub use convert::{ValueKind, convert};
pub use delimited::{DelimitedFile, InputError, Record, Row, detect_delimiter};
pub use formula::{Formula, FormulaError, FormulaValue};
pub use plan::{AUDIT_COLUMNS, KEPT_ON_UPDATE, UploadPlan, create_table_sql, sql_type};
