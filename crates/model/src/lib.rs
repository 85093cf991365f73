//! The vocabulary every dwsched layer shares: statuses, request types and payloads,
//! identifiers, and the records of the DMS_ tables.
//!
//! *Architecture Invariant:* this crate does no I/O and knows no SQL. Every other crate
//! depends on it; it depends on none of them.

pub mod dwtool;
pub mod payload;
pub mod python;
pub mod records;
pub mod status;

pub use dwtool::{DwtoolJob, DwtoolJobColumn, DwtoolMapping, DwtoolSql};
pub use payload::{
    HistoryPayload, LoadMode, PayloadError, ReportPayload, RunParams, RunPayload, StopPayload,
    Trigger, UploadPayload,
};
pub use records::*;
pub use status::{ErrorType, RequestStatus, RequestType, RunStatus, StepStatus};

/// The name of the lease (`DMS_SCHLEASE.NAME`) held by the node that fires schedules.
pub const SCHEDULER_LEASE: &str = "scheduler";

/// The start of the dedupe key of a run asked for by `dwsched job run`
/// (`job-run:<request id>`): such a request is not run again without its process.
pub const FOREGROUND_KEY_PREFIX: &str = "job-run:";

/// The maximum number of positional run parameters (`param1`..`param10`).
pub const PARAM_COUNT: usize = 10;

/// Checks an identifier that reaches SQL from configuration (a schema name, say):
/// `[A-Za-z_][A-Za-z0-9_$]{0,62}`. Such names are never quoted or escaped, so this
/// check is what keeps them from carrying SQL.
pub fn is_valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// The report a mapref names: `REPORT:<RPRTID>`, as DWTOOL queues report runs.
pub fn report_of_mapref(mapref: &str) -> Option<i64> {
    mapref.strip_prefix("REPORT:")?.trim().parse().ok()
}

/// The file upload a mapref names: `FLUPLD:<FLUPLDREF>`.
pub fn upload_of_mapref(mapref: &str) -> Option<&str> {
    mapref
        .strip_prefix("FLUPLD:")
        .map(str::trim)
        .filter(|r| !r.is_empty())
}

/// Checks a job's MAPREF: the name users give a job. It appears in log lines, file names
/// and URLs, so it is kept to a plain, printable form.
pub fn validate_mapref(mapref: &str) -> Result<(), String> {
    if mapref.is_empty() {
        return Err("a mapref cannot be empty".into());
    }
    if mapref.len() > 100 {
        return Err(format!("mapref '{mapref}' is longer than 100 characters"));
    }
    if let Some(bad) = mapref
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$')))
    {
        return Err(format!(
            "mapref '{mapref}' contains '{bad}'; use letters, digits, '_', '-', '.' or '$'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for good in ["dms", "DWT", "_x", "a$b", &"a".repeat(63)] {
            assert!(is_valid_identifier(good), "{good}");
        }
        for bad in ["", "1abc", "a-b", "a b", "x;drop", "\"q\"", &"a".repeat(64)] {
            assert!(!is_valid_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn maprefs() {
        assert!(validate_mapref("DAILY_SALES").is_ok());
        assert!(validate_mapref("m.v-2").is_ok());
        assert!(validate_mapref("").is_err());
        assert!(validate_mapref("a b").unwrap_err().contains("' '"));
        assert!(validate_mapref(&"x".repeat(101)).is_err());
    }
}
