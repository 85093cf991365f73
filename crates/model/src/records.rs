//! Records of the DMS_ tables (SPEC §3), as the store reads and writes them.
//!
//! Times the service writes are `DateTime<Utc>`. `STRTDT`/`ENDDT` of a schedule are
//! wall-clock times in the schedule's zone, so they stay `NaiveDateTime` here and the
//! schedule layer gives them a zone.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::{ErrorType, PARAM_COUNT, RequestStatus, RequestType, RunStatus, StepStatus};

/// A `DMS_JOB` row with the id of its current flow, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub jobid: i64,
    pub mapref: String,
    pub current_flow_id: Option<i64>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A `DMS_JOBFLW` row: one version of a job's flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFlow {
    pub jobflwid: i64,
    pub jobid: Option<i64>,
    pub mapref: String,
    /// The flow as JSON (SPEC §7).
    pub dwlogic: Option<String>,
    pub current: bool,
    pub created_at: Option<DateTime<Utc>>,
}

/// A new schedule version for `DMS_JOBSCH`. Validation belongs to the schedule layer;
/// the store writes what it is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSchedule {
    pub mapref: String,
    pub jobflwid: Option<i64>,
    pub frqcd: String,
    pub frqdd: Option<String>,
    pub frqhh: Option<i64>,
    pub frqmi: Option<i64>,
    pub cronexpr: Option<String>,
    pub strtdt: Option<NaiveDateTime>,
    pub enddt: Option<NaiveDateTime>,
    pub timezone: Option<String>,
    pub misfire: Option<String>,
    pub dpnd_jobschid: Option<i64>,
    pub maxfail: Option<i64>,
    pub calnm: Option<String>,
    pub calrule: Option<String>,
    pub enabled: bool,
}

/// A `DMS_JOBSCH` row as stored. Every column the original tool may leave NULL is an
/// `Option`, because rows written by other tools are read as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleRow {
    pub jobschid: i64,
    pub jobflwid: Option<i64>,
    pub mapref: String,
    pub frqcd: Option<String>,
    pub frqdd: Option<String>,
    pub frqhh: Option<i64>,
    pub frqmi: Option<i64>,
    pub strtdt: Option<NaiveDateTime>,
    pub enddt: Option<NaiveDateTime>,
    pub stflg: Option<String>,
    pub schflg: Option<String>,
    pub curflg: Option<String>,
    pub dpnd_jobschid: Option<i64>,
    pub lst_run_dt: Option<DateTime<Utc>>,
    pub nxt_run_dt: Option<DateTime<Utc>>,
    pub timezone: Option<String>,
    pub cronexpr: Option<String>,
    pub misfire: Option<String>,
    pub maxfail: Option<i64>,
    pub failcnt: Option<i64>,
    pub scherr: Option<String>,
    /// `CALNM`: the business calendar the schedule follows.
    pub calnm: Option<String>,
    /// `CALRULE`: `SKIP`, `NEXT` or `PREV` for a slot on a day that is not a business day.
    pub calrule: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// When the schedule last changed (`CHGDT`, the database's clock), whoever changed it.
    pub changed_at: Option<DateTime<Utc>>,
}

impl ScheduleRow {
    /// SPEC §3: `CURFLG='Y' AND SCHFLG='Y' AND COALESCE(STFLG,'A')='A'`.
    pub fn is_scheduled(&self) -> bool {
        self.curflg.as_deref() == Some("Y")
            && self.schflg.as_deref() == Some("Y")
            && self.stflg.as_deref().unwrap_or("A") == "A"
    }
}

/// A request to add to the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub mapref: String,
    pub request_type: RequestType,
    pub payload: String,
    /// Two requests with one dedupe key are one request (`sch:<JOBSCHID>:<slot>`).
    pub dedupe_key: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    /// A run request only this node may claim (`dwsched job run`): it waits in the
    /// queue like any other, its node's id in `CLAIMED_BY` while it is `NEW`.
    pub reserved_for: Option<String>,
}

impl NewRequest {
    pub fn new(mapref: impl Into<String>, request_type: RequestType, payload: String) -> Self {
        Self {
            mapref: mapref.into(),
            request_type,
            payload,
            dedupe_key: None,
            not_before: None,
            reserved_for: None,
        }
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new row with this id.
    Inserted(String),
    /// A row with the same dedupe key already existed; this is its id.
    Duplicate(String),
}

impl Enqueued {
    pub fn request_id(&self) -> &str {
        match self {
            Self::Inserted(id) | Self::Duplicate(id) => id,
        }
    }
}

/// A `DMS_PRCREQ` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub request_id: String,
    pub mapref: String,
    pub request_type: RequestType,
    pub payload: Option<String>,
    /// `None` when the stored status is not one dwsched knows.
    pub status: Option<RequestStatus>,
    pub requested_at: Option<DateTime<Utc>>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub claimed_by: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub result_payload: Option<String>,
    pub dedupe_key: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub lease_until: Option<DateTime<Utc>>,
}

/// Which requests a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// `IMMEDIATE` and `HISTORY`: requests that start runs. Claimed oldest first, at most
    /// one per mapref, and only for a mapref with no run in progress and no such request
    /// already claimed.
    Runs,
    /// Everything else (`STOP`, `CANCEL`, `REFRESH_SCHEDULE`, and types dwsched does not
    /// know, which are failed at once). Never held back by a running mapref.
    Control,
    /// The run requests reserved for the claiming node ([`NewRequest::reserved_for`]),
    /// under the same rules as `Runs`.
    Reserved,
}

/// A claim of up to `limit` requests by `node`, whose lease on them runs to `lease_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub node: String,
    pub class: RequestClass,
    pub limit: u32,
    pub now: DateTime<Utc>,
    /// How long the claimed requests are held without a heartbeat, from the database's
    /// clock at the claim.
    pub lease: std::time::Duration,
}

/// A new run for `DMS_PRCLOG`, opened `IP`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRun {
    pub mapref: String,
    pub jobid: Option<i64>,
    pub jobflwid: Option<i64>,
    pub params: [Option<String>; PARAM_COUNT],
    pub prclog: String,
    /// The number DWTOOL's views join `DMS_PRCLOG`, `DMS_JOBLOG` and `DMS_JOBERR` on.
    pub sessionid: Option<i64>,
    pub request_id: Option<String>,
    pub node: Option<String>,
    pub started_at: DateTime<Utc>,
    /// The business date bound as `:run_date` (`RUN_DATE`).
    pub run_date: Option<NaiveDate>,
}

/// A `DMS_PRCLOG` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub prcid: i64,
    pub jobid: Option<i64>,
    pub jobflwid: Option<i64>,
    pub mapref: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `None` when the stored status is not one dwsched knows.
    pub status: Option<RunStatus>,
    pub msg: Option<String>,
    pub prclog: Option<String>,
    pub sessionid: Option<String>,
    pub params: [Option<String>; PARAM_COUNT],
    pub request_id: Option<String>,
    pub node: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The business date (`RUN_DATE`); `None` for runs written by other tools.
    pub run_date: Option<NaiveDate>,
}

/// A `DMS_PRCSTEP` row: one attempt of one step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub prcid: i64,
    pub step: String,
    /// 1 for the first attempt; 0 for a step that was skipped.
    pub attempt: i64,
    pub status: StepStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub srcrows: Option<i64>,
    pub trgrows: Option<i64>,
    pub errrows: Option<i64>,
    pub msg: Option<String>,
}

impl StepRecord {
    /// What the record says, for logs: `step 'load' attempt 1 started`, `step 'load'
    /// attempt 1 ended PC in 2.31 s: 10 source rows, 9 target rows, 1 rejected`, `step
    /// 'stage' skipped: the run starts at step 'load'`.
    pub fn describe(&self) -> String {
        let (step, attempt) = (&self.step, self.attempt);
        let msg = self
            .msg
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        match self.status {
            StepStatus::InProgress => format!("step '{step}' attempt {attempt} started"),
            StepStatus::Skipped => format!("step '{step}' skipped{msg}"),
            status => {
                let seconds = match (self.started_at, self.ended_at) {
                    (Some(start), Some(end)) => (end - start).num_milliseconds() as f64 / 1000.0,
                    _ => 0.0,
                };
                let rows = match (self.srcrows, self.trgrows, self.errrows) {
                    (Some(src), Some(trg), Some(err)) if (src, trg, err) != (0, 0, 0) => {
                        format!(": {src} source rows, {trg} target rows, {err} rejected")
                    }
                    _ => String::new(),
                };
                format!(
                    "step '{step}' attempt {attempt} ended {status} in {seconds:.2} s{rows}{msg}"
                )
            }
        }
    }
}

/// Which runs to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub mapref: Option<String>,
    pub status: Option<RunStatus>,
    /// Runs started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// The runs of one request.
    pub request_id: Option<String>,
    pub limit: u32,
}

/// A `DMS_JOBLOG` row: the totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobLogEntry {
    pub prcdt: DateTime<Utc>,
    pub mapref: String,
    pub jobid: Option<i64>,
    pub srcrows: i64,
    pub trgrows: i64,
    pub errrows: i64,
    pub prcid: Option<i64>,
    pub sessionid: Option<i64>,
}

/// A `DMS_JOBERR` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobErrorEntry {
    pub joblogid: Option<i64>,
    pub prcdt: DateTime<Utc>,
    pub errtyp: ErrorType,
    pub dberrmsg: Option<String>,
    pub errmsg: String,
    pub keyvalue: Option<String>,
    pub jobid: Option<i64>,
    pub sessionid: Option<i64>,
    pub prcid: Option<i64>,
    pub mapref: String,
}

/// A stored `DMS_JOBERR` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub errid: i64,
    pub joblogid: Option<i64>,
    pub errtyp: Option<String>,
    pub dberrmsg: Option<String>,
    pub errmsg: Option<String>,
    pub keyvalue: Option<String>,
    pub prcid: Option<i64>,
    pub mapref: Option<String>,
}

/// A named connection in `DMS_DBCONDTLS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    pub conid: i64,
    pub connm: String,
    /// `SQLITE`, `POSTGRESQL`, `MYSQL` or `ORACLE`.
    pub dbtyp: Option<String>,
    pub dbhost: Option<String>,
    pub dbport: Option<i64>,
    pub dbsrvnm: Option<String>,
    pub usrnm: Option<String>,
    /// Plain text, or `env:NAME` to read it from the environment.
    pub passwd: Option<String>,
    /// A full URL; wins over the parts when set.
    pub constr: Option<String>,
    pub schnm: Option<String>,
    pub current: bool,
}

/// A row of `DMS_SCHNODE`: a live scheduler instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub node_id: String,
    pub host: Option<String>,
    pub pid: Option<i64>,
    pub version: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub role: Option<String>,
    /// Where the node serves its HTTP API, as `host:port`, when it does.
    pub http_addr: Option<String>,
    /// The lease it heartbeats for, in seconds.
    pub lease_seconds: Option<i64>,
}

/// A row of `DMS_SCHLEASE`: a duty one node at a time performs (firing schedules), held
/// until `lease_until` unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// When the current holder took it.
    pub acquired_at: Option<DateTime<Utc>>,
}

/// The service's bookkeeping of one schedule: its next fire and why it cannot be
/// scheduled, if it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    pub jobschid: i64,
    pub next_fire: Option<DateTime<Utc>>,
    pub scherr: Option<String>,
}

/// A schedule after one of its runs ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleResult {
    /// Consecutive failed runs, 0 after a success.
    pub failures: i64,
    /// The run reached `MAXFAIL` consecutive failures and the schedule was disabled.
    pub disabled: bool,
}

/// What rescuing a dead node's work did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescueReport {
    /// Runs closed `FL`.
    pub runs_closed: Vec<i64>,
    /// Requests put back to `NEW` for another attempt.
    pub requests_requeued: Vec<String>,
    /// Requests that had used up their attempts and ended `FAILED`.
    pub requests_failed: Vec<String>,
}

/// The end of a run, written in one transaction: the run closed, its `DMS_JOBLOG`
/// totals, and its `DMS_JOBERR` rows (each gets the new `JOBLOGID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishRun {
    pub prcid: i64,
    pub status: RunStatus,
    pub msg: Option<String>,
    pub ended_at: DateTime<Utc>,
    pub log: JobLogEntry,
    /// The run's `DMS_JOBLOG` row when it was written while the run went (a mapping
    /// job's counts kept current): `log` updates it instead of adding a row.
    pub joblogid: Option<i64>,
    pub errors: Vec<JobErrorEntry>,
}

/// The end of a request, written by the node that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub request_id: String,
    /// Only while this node still holds the request (`None`: whoever holds it).
    pub claimed_by: Option<String>,
    /// `DONE` or `FAILED`.
    pub status: RequestStatus,
    pub result_payload: String,
    pub completed_at: DateTime<Utc>,
}

/// One write of a run's bookkeeping. A node's workers hand theirs to one writer, which
/// commits the writes that arrive together in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // short-lived, a few dozen at a time
pub enum RunWrite {
    Open(NewRun),
    /// A step attempt started or ended: its `DMS_PRCSTEP` row inserted (`new`: the
    /// first record of that attempt) or updated.
    Step {
        record: StepRecord,
        new: bool,
    },
    Finish(FinishRun),
    Complete(Completion),
}

/// What one [`RunWrite`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunWritten {
    /// The new run's `PRCID`.
    Opened(i64),
    /// Whether the run was still `IP` (a rescue may have closed it).
    Finished(bool),
    /// Whether the request was still held and is now complete.
    Completed(bool),
    /// A step's row was written.
    Step,
}

/// A job's current flow as a claimer reads it for the runs it claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowToRun {
    pub flow: JobFlow,
    /// Whether an enabled schedule follows the job (`DPND_JOBSCHID`); when none does,
    /// a successful run has no dependent runs to queue.
    pub followed: bool,
}

/// A business calendar as stored: its `DMS_CALENDAR` row and its `DMS_CALDATE` rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CalendarRecord {
    /// `CALNM`.
    pub name: String,
    /// `WORKDAYS` as stored (`MON,TUE,WED,THU,FRI` when NULL).
    pub workdays: Option<String>,
    pub description: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The holidays, oldest first.
    pub holidays: Vec<Holiday>,
}

/// A `DMS_CALDATE` row: a dated holiday.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holiday {
    pub date: NaiveDate,
    pub description: Option<String>,
}

/// A `DMS_RPRT_FLD` row as a report's SQL needs it, in the order `PNL_TYP, ROW_ORDR,
/// FLDID`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportField {
    /// `PNL_TYP`: `DETAIL` (or NULL) takes part; other panels do not.
    pub panel: Option<String>,
    /// `FLD_NM`.
    pub name: Option<String>,
    /// `FLD_ALS`.
    pub alias: Option<String>,
    /// `SRC_CLMN`.
    pub source_column: Option<String>,
    /// `FRMLA_INLN`, pasted as SQL; it wins over the source column.
    pub inline_formula: Option<String>,
    /// The group-by flag (`IS_GROUP_BY`) is `Y`.
    pub group_by: bool,
    /// `ORDER_BY_SEQ`: fields with a sequence above 0 order the result, by sequence.
    pub order_by_seq: Option<i64>,
    /// `ORDER_BY_DIR`: `ASC` or `DESC`; anything else is `ASC`.
    pub order_by_dir: Option<String>,
}

/// A DWTOOL report (`DMS_RPRT_DEF`) as a run needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportDefinition {
    pub rprtid: i64,
    /// `RPRTNM`.
    pub name: String,
    /// `SQLSRCID`: the managed SQL (`DMS_MAPRSQL`) the report reads, if any.
    pub sqlsrcid: Option<i64>,
    /// The source SQL: the current `DMS_MAPRSQL.MAPRSQL` of `SQLSRCID` (or of the
    /// current row with the same `MAPRSQLCD` when that version was retired), else
    /// `ADHCSQL`. `None` when neither is there.
    pub source_sql: Option<String>,
    /// `DBCNID`, else the source's `SQLCONID`; `None`: the metadata database.
    pub conid: Option<i64>,
    pub fields: Vec<ReportField>,
}

/// A `DMS_RPRT_RUN` row at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReportRun {
    pub rprtid: i64,
    /// `RQST_ID`: the request's id.
    pub request_id: String,
    /// `TRGGRD_BY`: the payload's `requestedBy`.
    pub triggered_by: String,
    /// `OTPT_FMT`.
    pub format: String,
    /// `PRM_OVRRDS`: `{"params": …, "message": null}`.
    pub parameters: String,
    pub started_at: DateTime<Utc>,
}

/// A `DMS_RPRT_SCHD` row as the firing node reads it. Its times are wall-clock times in
/// the default zone, as DWTOOL writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportScheduleRow {
    pub schdid: i64,
    pub rprtid: i64,
    pub frqncy: Option<String>,
    pub tm_prm: Option<String>,
    pub nxt_run_dt: Option<NaiveDateTime>,
    pub lst_run_dt: Option<NaiveDateTime>,
    pub stts: Option<String>,
    pub otpt_fmt: Option<String>,
    pub dstn_typ: Option<String>,
    pub emal_to: Option<String>,
    pub fl_pth: Option<String>,
}

/// One fire of a DWTOOL schedule row: the request to queue, and where the row moves.
/// It happens only while the row is still `ACTIVE` with `expected_next`, so that two
/// nodes, or a fire and an edit in the UI, never both win.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DwtoolFire {
    pub schdid: i64,
    /// `NXT_RUN_DT` as read when the fire was planned.
    pub expected_next: Option<NaiveDateTime>,
    /// The new `NXT_RUN_DT` (`None` when the row runs no more).
    pub next: Option<NaiveDateTime>,
    /// The new `STTS`: `ACTIVE`, or `PAUSED` after `IMMEDIATE` or when no next time exists.
    pub status: String,
    /// `LST_RUN_DT`: when the request was queued, wall-clock in the default zone.
    pub fired_at: NaiveDateTime,
    pub request: NewRequest,
}

/// A DWTOOL file upload's configuration (`DMS_FLUPLD`, `CURFLG='Y'`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadConfig {
    pub flupldref: String,
    /// `FLPTH`: the file read.
    pub flpth: Option<String>,
    pub fltyp: Option<String>,
    /// `TRGCONID`: the target connection (`DMS_DBCONDTLS.CONID`).
    pub trgconid: Option<i64>,
    pub trgschm: Option<String>,
    pub trgtblnm: Option<String>,
    /// `TRNCTFLG='Y'`: an `INSERT` is run as `TRUNCATE_LOAD`.
    pub truncate: bool,
    /// `HDRRWCNT`: lines before the header line.
    pub header_rows: i64,
    /// `FTRRWCNT`: records at the end that are not data.
    pub footer_rows: i64,
    /// `FLHASH`: the SHA-256 of the file last loaded, when dwsched recorded one.
    pub last_hash: Option<String>,
}

/// A column mapping of a file upload (`DMS_FLUPLDDTL`, `CURFLG='Y'`), NULL text read as
/// empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadColumn {
    /// `SRCCLNM`: the file's column, matched case-insensitively; empty means the
    /// target column's name.
    pub source: String,
    /// `TRGCLNM`.
    pub target: String,
    /// `TRGCLDTYP`: the generic type code (`String100`, `Integer`, `Date`, ...).
    pub type_code: String,
    /// `TRGKYFLG='Y'`, with `TRGKYSEQ`.
    pub key: bool,
    pub key_seq: Option<i64>,
    /// `DRVLGC` when `DRVLGCFLG='Y'`.
    pub formula: Option<String>,
    /// `DFLTVAL`: used when the value is NULL.
    pub default: Option<String>,
    /// `ISAUDIT='Y'`.
    pub audit: bool,
    /// `ISRQRD='Y'`: `NOT NULL` in a created table.
    pub required: bool,
}

/// A file upload as a run needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadDefinition {
    pub config: UploadConfig,
    /// In `EXCSEQ`, `TRGCLNM` order.
    pub columns: Vec<UploadColumn>,
}

/// A `DMS_PARAMS` `Datatype` row: a generic type code's SQL type for a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatatypeParam {
    pub code: String,
    pub sql_type: String,
    pub dbtyp: Option<String>,
}

/// A rejected row of an upload: its line in the file (1-based), its values, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRowError {
    pub line: i64,
    /// `RWDTJSN`: the row's values by column, as JSON.
    pub data: String,
    /// `RRCD`: the database's error code in the message (`ORA-01400`), if any.
    pub code: Option<String>,
    pub message: String,
}

/// One run of a file upload, as `DMS_FLUPLD_RUN` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRunRecord {
    pub flupldref: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub processed: i64,
    pub loaded: i64,
    pub failed: i64,
    /// `SUCCESS`, `PARTIAL` or `FAILED`.
    pub status: String,
    pub message: Option<String>,
    /// `LDMDE`: the mode after `TRNCTFLG`.
    pub load_mode: String,
    pub file_path: Option<String>,
    pub user: String,
}

/// A `DMS_FLUPLD_SCHD` row as the firing node reads it (times as wall-clock in the
/// default zone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadScheduleRow {
    pub schdid: i64,
    pub flupldref: String,
    pub frqncy: Option<String>,
    pub tm_prm: Option<String>,
    pub nxt_run_dt: Option<NaiveDateTime>,
    pub lst_run_dt: Option<NaiveDateTime>,
    pub stts: Option<String>,
}
