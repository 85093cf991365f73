//! The rows of a DWTOOL mapping job as its UI and generator leave them (`DMS_JOB`,
//! `DMS_JOBDTL`, `DMS_MAPRSQL`, `DMS_PARAMS`), from which a native mapping plan is built.

/// The current, active `DMS_JOB` row of a mapping job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DwtoolJob {
    pub jobid: i64,
    pub mapref: String,
    pub trgschm: Option<String>,
    pub trgtbnm: Option<String>,
    /// `DIM`, `FCT`, `MRT` or `NRM`.
    pub trgtbtyp: Option<String>,
    pub trgconid: Option<i64>,
    pub blkprcrows: Option<i64>,
    pub chkpntstrtgy: Option<String>,
    pub chkpntclnm: Option<String>,
    pub chkpntenbld: Option<String>,
}

/// A current `DMS_JOBDTL` row: one target column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DwtoolJobColumn {
    pub jobdtlid: i64,
    pub trgclnm: String,
    pub trgcldtyp: Option<String>,
    pub trgkeyflg: Option<String>,
    pub trgkeyseq: Option<i64>,
    pub maplogic: Option<String>,
    pub maprsqlcd: Option<String>,
    pub keyclnm: Option<String>,
    pub valclnm: Option<String>,
    pub mapcmbcd: Option<String>,
    pub excseq: Option<i64>,
    pub scdtyp: Option<i64>,
}

/// A current `DMS_MAPRSQL` row: a named source query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DwtoolSql {
    pub maprsqlcd: String,
    pub maprsql: Option<String>,
    pub sqlconid: Option<i64>,
}

/// Everything the metadata holds about one mapping job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DwtoolMapping {
    /// `None` when the job has no current, active `DMS_JOB` row.
    pub job: Option<DwtoolJob>,
    /// In `EXCSEQ` order, then `JOBDTLID`.
    pub columns: Vec<DwtoolJobColumn>,
    /// The current rows of the codes the columns name.
    pub sqls: Vec<DwtoolSql>,
    /// `DMS_PARAMS` `BULKPRC`/`NOOFROWS`.
    pub default_bulk_rows: Option<i64>,
    /// The current flow's `DWLOGIC` and `JOBFLWID`.
    pub dwlogic: Option<String>,
    pub jobflwid: Option<i64>,
}
