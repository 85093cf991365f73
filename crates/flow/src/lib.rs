//! Job flows (SPEC §7): the flow model, read from TOML or JSON and validated before it is
//! stored or run.
//!
//! A flow is a list of named steps of three kinds (`sql`, `load`, `command`) whose
//! `depends_on` lists form a DAG. Validation catches what would otherwise fail in the
//! middle of a night's run: duplicate or unknown step names, cycles, fields that do not
//! belong to a step's kind, and binds that no run provides. Errors name the step and
//! the field.
//!
//! [`run_flow`] runs a flow's steps in dependency order under the run's [`StopSignal`].
//!
//! *Architecture Invariant:* the flow layer knows nothing of the queue or the tables.
//! Whether a named connection exists is the caller's question ([`Flow::connections`]).

mod command;
mod connect;
mod load;
pub mod mapping;
mod model;
mod parse;
mod query;
mod run;
mod sql;
mod step;
pub mod supervisor;
mod table_load;
mod target;
mod value;

pub use command::run_environment;
pub use connect::{
    ConnectionSpec, Connections, DATABASE_TYPES, DatabaseType, DbKind, Pools, sqlite_path,
};
pub use load::QueryRows;
pub use model::{Flow, LoadMode, Source, Step, StepKind, Target};
pub use parse::{FlowError, FlowFormat, parse_flow};
pub use query::{QueryError, ReadOnlyQuery, StreamedRows};
pub use run::{RunOutcome, RunReport, run_flow, skipped_before};
pub use step::{
    RowError, RowTotals, RunContext, RunProgress, StepError, StepFailure, StepLog, StopSignal,
    run_log_path,
};
pub use table_load::{LoadRows, TableLoad, TableLoaded, copy_line};
pub use value::{Value, parse_copy_line};

/// The named binds a statement may use (SPEC §7).
pub const BINDS: [&str; 13] = [
    "run_date", "param1", "param2", "param3", "param4", "param5", "param6", "param7", "param8",
    "param9", "param10", "prcid", "mapref",
];

/// The named binds (`:name`) of a SQL text, in order of appearance, with repeats. Text
/// in quotes or comments and PostgreSQL casts (`::type`) are not binds.
pub fn binds_in(sql: &str) -> Vec<String> {
    bind_spans(sql)
        .into_iter()
        .map(|span| sql[span.start + 1..span.end].to_string())
        .collect()
}

/// Where each named bind of `sql` is, the colon included.
pub(crate) fn bind_spans(sql: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = sql.as_bytes();
    let mut spans = Vec::new();
    scan_code(sql, |i| match bytes[i] {
        // A PostgreSQL cast.
        b':' if bytes.get(i + 1) == Some(&b':') => Some(i + 2),
        b':' if bytes
            .get(i + 1)
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') =>
        {
            let end = bytes[i + 1..]
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                .map_or(bytes.len(), |n| i + 1 + n);
            spans.push(i..end);
            Some(end)
        }
        _ => None,
    });
    spans
}

/// A database error as users read it: the server's message. (sqlx's text of a
/// PostgreSQL error ends with "at line N", the line of the server's own source, which
/// reads like a line of the user's SQL.)
pub(crate) fn db_error(err: &sqlx::Error) -> String {
    match err.as_database_error() {
        Some(db) => db.message().to_string(),
        None => err.to_string(),
    }
}

/// How many statements `sql` holds: the `;`-separated parts with code in them
/// (quotes and comments taken into account).
pub(crate) fn statement_count(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut count = 0;
    let mut has_code = false;
    scan_code(sql, |i| {
        match bytes[i] {
            b';' => {
                count += usize::from(has_code);
                has_code = false;
            }
            b if !b.is_ascii_whitespace() => has_code = true,
            _ => {}
        }
        None
    });
    count + usize::from(has_code)
}

/// Calls `at` at each byte of `sql` outside quotes (`'`, `"`, `` ` ``) and comments
/// (`--`, `/* */`); where it gives `Some(end)`, the scan goes on from `end`.
pub(crate) fn scan_code(sql: &str, mut at: impl FnMut(usize) -> Option<usize>) {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            _ => i = at(i).unwrap_or(i + 1),
        }
    }
}

#[cfg(test)]
mod tests;
