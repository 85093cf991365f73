//! The metadata store: the DMS_ tables behind one trait, with an implementation for
//! SQLite (the embedded default), PostgreSQL and MySQL/MariaDB.
//!
//! Each backend has its own SQL where the dialects differ (ids, claims, catalogue
//! look-ups) and shares the rest; one conformance suite (`tests/store.rs`) runs against
//! all three.
//!
//! *Architecture Invariant:* all SQL of dwsched lives in this crate. The store knows the
//! tables, not the scheduling rules: it writes the `NXT_RUN_DT` it is given and never
//! computes one.

mod calendars;
mod common;
mod connections;
mod driver;
mod jobs;
mod migrate;
mod mysql;
mod nodes;
mod postgres;
mod queue;
mod reports;
mod runs;
mod schedules;
pub mod schema;
mod sqlite;
mod uploads;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dwsched_model::{
    Claim, Connection, Enqueued, FlowToRun, Job, JobFlow, Lease, NewRequest, NewSchedule, Node,
    Request, RequestStatus, RescueReport, Run, RunFilter, RunWrite, RunWritten, ScheduleResult,
    ScheduleRow, ScheduleState,
};
#[cfg(feature = "test-support")]
use dwsched_model::{FinishRun, JobError, JobErrorEntry, JobLogEntry, NewRun, RunStatus};
use thiserror::Error;

/// A `JOBSCHID`.
pub type ScheduleId = i64;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A store error. Its text never contains a password.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to the {backend} database at {url}: {cause}")]
    Connect {
        backend: &'static str,
        /// The URL with its password masked.
        url: String,
        cause: String,
    },
    #[error("database URL is not valid: {0}")]
    BadUrl(String),
    /// The node no longer holds the request: another node rescued it.
    #[error("node {node} no longer holds request {request_id}; another node took it over")]
    ClaimLost { request_id: String, node: String },
    /// The database answered with an error (its server's message: sqlx's text of a
    /// PostgreSQL error ends with the line of the server's own source).
    #[error("{context}: {}", server_message(source))]
    Database {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the {schema} schema is not initialised for this build of dwsched ({}, this build needs {needed}); run `dwsched init`",
        found.map_or("no dwsched tables".to_string(), |v| format!("schema version {v}"))
    )]
    NotInitialised {
        schema: String,
        found: Option<i64>,
        needed: i64,
    },
    #[error(
        "the database holds schema version {found}, newer than this build of dwsched knows ({known}); upgrade dwsched"
    )]
    TooNew { found: i64, known: i64 },
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether a retry may work: a lost or refused connection, a server that is
    /// starting or stopping, a lock timeout, a deadlock or a serialisation failure.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Database { source, .. } => match source {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => {
                    let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                    // 08: connection exception; 57P: operator intervention (shutdown,
                    // restart); 53: insufficient resources; 40001/40P01: serialisation
                    // failure and deadlock (MySQL's too); 5/517/6: SQLite busy or locked.
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || code.starts_with("53")
                        || matches!(code.as_str(), "40001" | "40P01" | "5" | "517" | "6")
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// Adds what was being done to a database error.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

/// What the database said, without the place in the server's own source.
pub fn server_message(err: &sqlx::Error) -> String {
    match err.as_database_error() {
        Some(db) => db.message().to_string(),
        None => err.to_string(),
    }
}

impl<T> Context<T> for std::result::Result<T, sqlx::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| StoreError::Database {
            context: what(),
            source,
        })
    }
}

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" | "mariadb" => Ok(Self::MySql),
            _ => Err(StoreError::BadUrl(format!(
                "'{}' has an unknown scheme '{scheme}'; use sqlite://, postgres:// or mysql://",
                redact_url(url)
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::MySql => "MySQL",
        }
    }

    /// The database's current UTC time as an SQL expression. Lease deadlines and expiry
    /// tests are taken from it, never from a node's clock: nodes' clocks disagree.
    /// (SQLite has one node, whose clock is the database's.)
    pub fn now_utc(self) -> &'static str {
        match self {
            Self::Postgres => "(statement_timestamp() AT TIME ZONE 'UTC')",
            Self::MySql => "UTC_TIMESTAMP(6)",
            Self::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
        }
    }

    /// The database's UTC time `seconds` from now (an SQL number, negative for the
    /// past).
    pub fn now_plus(self, seconds: &str) -> String {
        match self {
            Self::Postgres => format!(
                "({} + CAST({seconds} AS DOUBLE PRECISION) * INTERVAL '1 second')",
                self.now_utc()
            ),
            Self::MySql => format!(
                "TIMESTAMPADD(MICROSECOND, CAST(ROUND({seconds} * 1000000) AS SIGNED), UTC_TIMESTAMP(6))"
            ),
            Self::Sqlite => {
                format!("strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', {seconds}))")
            }
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Masks the password of a URL, for logs and messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // An unparsable URL may still hold a password between ':' and '@'.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                let userinfo = &url[start + 3..at];
                match userinfo.find(':') {
                    Some(colon) => format!(
                        "{}{}:***{}",
                        &url[..start + 3],
                        &userinfo[..colon],
                        &url[at..]
                    ),
                    None => url.to_string(),
                }
            }
            _ => url.to_string(),
        },
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// The schema (PostgreSQL) or database (MySQL) holding the DMS_ tables. `None` is
    /// the backend's default: `public`, or the URL's database. SQLite has one schema.
    pub schema: Option<String>,
    /// Create the schema (and, for SQLite, the file) when it is missing. Only
    /// `dwsched init` and the service's first start ask for this.
    pub create: bool,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            create: false,
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
        }
    }

    pub fn schema(mut self, schema: Option<String>) -> Self {
        self.schema = schema;
        self
    }

    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    fn validated_schema(&self) -> Result<Option<&str>> {
        match self.schema.as_deref() {
            Some(name) if !dwsched_model::is_valid_identifier(name) => {
                Err(StoreError::Invalid(format!(
                    "schema name '{name}' is not a plain identifier ([A-Za-z_][A-Za-z0-9_$]{{0,62}})"
                )))
            }
            other => Ok(other),
        }
    }

    fn connect_error(&self, backend: Backend, cause: impl fmt::Display) -> StoreError {
        StoreError::Connect {
            backend: backend.name(),
            url: redact_url(&self.url),
            cause: cause.to_string(),
        }
    }
}

/// Opens the store a URL names.
pub async fn open(options: &StoreOptions) -> Result<Box<dyn Store>> {
    Ok(match Backend::from_url(&options.url)? {
        Backend::Sqlite => Box::new(sqlite::SqliteStore::open(options).await?),
        Backend::Postgres => Box::new(postgres::PgStore::open(options).await?),
        Backend::MySql => Box::new(mysql::MySqlStore::open(options).await?),
    })
}

/// What `migrate` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub tables_created: Vec<String>,
    pub columns_added: Vec<String>,
    pub indexes_created: Vec<String>,
}

impl MigrationReport {
    pub fn changed_anything(&self) -> bool {
        self.from_version != Some(self.to_version)
            || !self.tables_created.is_empty()
            || !self.columns_added.is_empty()
            || !self.indexes_created.is_empty()
    }
}

/// Counts of requests by status and runs by status, for status pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub requests: Vec<(String, i64)>,
}

/// Requests waiting (`NEW`), requests being processed, and runs in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCounts {
    pub waiting: i64,
    pub processing: i64,
    pub runs_in_progress: i64,
}

/// The metadata store. Every method is one short transaction or statement; a method
/// that changes a row only when it is in an expected state (`complete_request`,
/// `close_run`) says with its `bool` whether it did.
#[async_trait]
pub trait Store: Send + Sync {
    fn backend(&self) -> Backend;

    /// Creates or upgrades the tables (idempotent).
    async fn migrate(&self) -> Result<MigrationReport>;
    /// The recorded schema version, `None` before the first `migrate`.
    async fn schema_version(&self) -> Result<Option<i64>>;
    /// Fails unless `migrate` has brought the schema to this build's version.
    async fn check_schema(&self) -> Result<()>;

    // Jobs and flows.
    /// Registers a new current flow version for `mapref`, creating the job when it is
    /// new and retiring (`CURFLG='N'`) the flow it replaces.
    async fn put_job_flow(
        &self,
        mapref: &str,
        dwlogic: &str,
        now: DateTime<Utc>,
    ) -> Result<JobFlow>;
    async fn list_jobs(&self) -> Result<Vec<Job>>;
    async fn current_flow(&self, mapref: &str) -> Result<Option<JobFlow>>;
    /// What DWTOOL's metadata holds about mapping job `mapref` (SPEC §7.1), with its
    /// current flow's `DWLOGIC`.
    async fn dwtool_mapping(&self, mapref: &str) -> Result<dwsched_model::DwtoolMapping>;
    /// The current flows of `maprefs` in one read, with whether schedules follow each
    /// job; a mapref without a current flow is left out.
    async fn flows_to_run(&self, maprefs: &[String]) -> Result<Vec<FlowToRun>>;
    /// Retires a job, its current flow and its current schedules.
    async fn retire_job(&self, mapref: &str, now: DateTime<Utc>) -> Result<bool>;

    // Schedules.
    async fn insert_schedule(&self, schedule: &NewSchedule, now: DateTime<Utc>) -> Result<i64>;
    /// Current schedule versions (`CURFLG='Y'`); with `only_scheduled`, only the rows the
    /// service fires (SPEC §3).
    async fn list_schedules(&self, only_scheduled: bool) -> Result<Vec<ScheduleRow>>;
    /// The ids of the rows the service fires (SPEC §3).
    async fn scheduled_ids(&self) -> Result<Vec<ScheduleId>>;
    /// The scheduled rows changed since `since` (by `CHGDT`; every row that has one
    /// when `None`), and those in `ids`: the rows an incremental sync reads.
    async fn scheduled_changes(
        &self,
        since: Option<DateTime<Utc>>,
        ids: &[ScheduleId],
    ) -> Result<Vec<ScheduleRow>>;
    /// The count of changes to `DMS_JOBSCH` and the business calendars (`DMS_SCHVER`),
    /// which grows with every committed insert, delete or change of a schedule, a
    /// calendar or a holiday, whoever makes it.
    async fn schedule_version(&self) -> Result<i64>;
    async fn get_schedule(&self, jobschid: i64) -> Result<Option<ScheduleRow>>;
    async fn set_schedule_enabled(
        &self,
        jobschid: i64,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    async fn retire_schedule(&self, jobschid: i64, now: DateTime<Utc>) -> Result<bool>;
    /// Saves an edit of current schedule `old` as DWTOOL's UI does: `new` inserted
    /// with a new `JOBSCHID`, `old` retired (`CURFLG='N'`), and schedules that ran
    /// after `old` pointed at the new one, in one transaction. `None` when `old` is not
    /// current.
    async fn replace_schedule(
        &self,
        old: i64,
        new: &NewSchedule,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>>;
    /// Records the next fire and the reason a row cannot be scheduled (or clears it).
    async fn set_schedule_state(
        &self,
        jobschid: i64,
        next_fire: Option<DateTime<Utc>>,
        scherr: Option<&str>,
    ) -> Result<bool>;

    /// Records the next fire and problem of many schedules in one transaction, only
    /// where they changed.
    async fn set_schedule_states(&self, states: &[ScheduleState]) -> Result<()>;
    /// Records the end of a run a schedule fired: `LST_RUN_DT`, and `FAILCNT` reset or
    /// counted up. A schedule that reaches `MAXFAIL` consecutive failures is disabled
    /// (`SCHFLG='N'`) with the reason in `SCHERR`.
    async fn record_schedule_result(
        &self,
        jobschid: i64,
        finished_at: DateTime<Utc>,
        succeeded: bool,
    ) -> Result<ScheduleResult>;
    /// The scheduled rows whose `DPND_JOBSCHID` is a current schedule of `mapref`.
    async fn dependent_schedules(&self, mapref: &str) -> Result<Vec<ScheduleRow>>;

    // The request queue.
    /// Adds a request with a new UUID, or returns the request that already holds its
    /// dedupe key.
    async fn enqueue(&self, request: &NewRequest, now: DateTime<Utc>) -> Result<Enqueued>;
    /// Adds many requests in few statements; a request whose dedupe key is taken is
    /// skipped. `REQUESTED_AT` is the time each part is written. Returns how many were
    /// added. Schedule fires come this way.
    async fn enqueue_many(&self, requests: &[NewRequest]) -> Result<usize>;
    async fn get_request(&self, request_id: &str) -> Result<Option<Request>>;
    /// Atomically claims up to `claim.limit` claimable requests of `claim.class`,
    /// oldest first, setting them `PROCESSING` under `claim.node`'s lease.
    async fn claim_requests(&self, claim: &Claim) -> Result<Vec<Request>>;
    /// The requests of `class` that `node` holds (`PROCESSING`), oldest first. After a
    /// claim failed with no answer (the connection dropped at its commit), these tell
    /// what it took nonetheless.
    async fn held_requests(
        &self,
        node: &str,
        class: dwsched_model::RequestClass,
    ) -> Result<Vec<Request>>;
    /// Ends a `PROCESSING` request `DONE` or `FAILED`; with `claimed_by`, only while
    /// that node still holds it (a rescue may have given it to another).
    async fn complete_request(
        &self,
        request_id: &str,
        claimed_by: Option<&str>,
        status: RequestStatus,
        result_payload: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Cancels a `NEW` request.
    async fn cancel_request(
        &self,
        request_id: &str,
        result_payload: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Puts a `PROCESSING` request back to `NEW`, for another node or a later attempt,
    /// claimable again from `not_before`; with `claimed_by`, only while that node still
    /// holds it.
    async fn release_request(
        &self,
        request_id: &str,
        claimed_by: Option<&str>,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<bool>;
    async fn queue_depth(&self) -> Result<QueueDepth>;
    /// What is waiting and running now, counted over the status indexes only (cheap
    /// enough for every metrics scrape, however long the history).
    async fn live_counts(&self) -> Result<LiveCounts>;

    // Runs and their logs.
    /// Makes `writes` in order in one transaction (one commit for many runs) and
    /// returns each one's outcome. A [`StoreError::ClaimLost`] or
    /// [`StoreError::Invalid`] refuses that write alone; any other error rolls all
    /// back and is returned for the whole.
    async fn write_runs(&self, writes: &[RunWrite]) -> Result<Vec<Result<RunWritten>>>;
    /// Bumps `RECUPDT` of a run still `IP`.
    /// Writes a running run's `DMS_JOBLOG` row with its counts so far: a new row, or
    /// row `joblogid` updated. Gives the row's id, for the next update and for the
    /// run's end (`FinishRun::joblogid`).
    async fn write_job_log_progress(
        &self,
        entry: &dwsched_model::JobLogEntry,
        joblogid: Option<i64>,
    ) -> Result<i64>;
    async fn heartbeat_run(&self, prcid: i64, now: DateTime<Utc>) -> Result<bool>;
    async fn get_run(&self, prcid: i64) -> Result<Option<Run>>;
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>>;
    /// The `DMS_PRCSTEP` rows of a run, in the order they started.
    async fn run_steps(&self, prcid: i64) -> Result<Vec<dwsched_model::StepRecord>>;

    // DWTOOL's reports.
    /// A report as a run needs it: its name, source SQL and connection, and fields.
    /// `None` when there is no `DMS_RPRT_DEF` row of that id.
    async fn report_definition(
        &self,
        rprtid: i64,
    ) -> Result<Option<dwsched_model::ReportDefinition>>;
    /// Records a report run `RUNNING` (`DMS_RPRT_RUN`); its `RUNID`.
    async fn open_report_run(&self, run: &dwsched_model::NewReportRun) -> Result<i64>;
    /// Records the end of a report run: `SUCCESS` with its row count, or `FAILED` with
    /// the message in `parameters` (`PRM_OVRRDS`); whether the run was there.
    async fn finish_report_run(
        &self,
        runid: i64,
        status: &str,
        row_count: Option<i64>,
        parameters: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Closes as `FAILED` (with `parameters` as `PRM_OVRRDS`) the runs of request
    /// `request_id` still `RUNNING`: those of an earlier attempt whose node died; how
    /// many there were.
    async fn fail_running_report_runs(
        &self,
        request_id: &str,
        parameters: &str,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// The `DMS_RPRT_SCHD` rows that are `ACTIVE` and due: `NXT_RUN_DT` NULL or not
    /// after `due_by` (wall-clock in the default zone, as DWTOOL writes it).
    async fn due_report_schedules(
        &self,
        due_by: chrono::NaiveDateTime,
    ) -> Result<Vec<dwsched_model::ReportScheduleRow>>;
    /// Every `DMS_RPRT_SCHD` row, whatever its status, by `SCHDID`.
    async fn report_schedules(&self) -> Result<Vec<dwsched_model::ReportScheduleRow>>;
    /// Fires a report schedule: moves its row on and queues its request in one
    /// transaction, only while the row is still `ACTIVE` with the `NXT_RUN_DT` the fire
    /// was planned from; whether this call fired it.
    async fn fire_report_schedule(
        &self,
        fire: &dwsched_model::DwtoolFire,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    // DWTOOL's file uploads.
    /// A file upload as a run needs it: its current `DMS_FLUPLD` row and current
    /// column mappings; `None` when there is no current configuration of that name.
    async fn upload_definition(
        &self,
        flupldref: &str,
    ) -> Result<Option<dwsched_model::UploadDefinition>>;
    /// Records the SHA-256 of the file an upload last loaded (`DMS_FLUPLD.FLHASH`).
    async fn set_upload_hash(&self, flupldref: &str, hash: &str) -> Result<()>;
    /// Every current file upload's name and file (`FLUPLDREF`, `FLPTH`).
    async fn upload_files(&self) -> Result<Vec<(String, Option<String>)>>;
    /// The `Datatype` rows of `DMS_PARAMS`.
    async fn datatype_params(&self) -> Result<Vec<dwsched_model::DatatypeParam>>;
    /// Records an upload run (`DMS_FLUPLD_RUN`), its rejected rows (`DMS_FLUPLD_ERR`)
    /// and the configuration's `LSTRUNDT`, in one transaction; the run's `RUNID`.
    async fn record_upload_run(
        &self,
        run: &dwsched_model::UploadRunRecord,
        errors: &[dwsched_model::UploadRowError],
    ) -> Result<i64>;
    /// The current `DMS_FLUPLD_SCHD` rows that are `ACTIVE` and due by `due_by`
    /// (wall-clock in the default zone).
    async fn due_upload_schedules(
        &self,
        due_by: chrono::NaiveDateTime,
    ) -> Result<Vec<dwsched_model::UploadScheduleRow>>;
    /// Every current `DMS_FLUPLD_SCHD` row, whatever its status.
    async fn upload_schedules(&self) -> Result<Vec<dwsched_model::UploadScheduleRow>>;
    /// Fires a file-upload schedule as `fire_report_schedule` fires a report's.
    async fn fire_upload_schedule(
        &self,
        fire: &dwsched_model::DwtoolFire,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    // Business calendars.
    /// Every calendar with its holidays, by name.
    async fn list_calendars(&self) -> Result<Vec<dwsched_model::CalendarRecord>>;
    async fn get_calendar(&self, name: &str) -> Result<Option<dwsched_model::CalendarRecord>>;
    /// Creates a calendar, or changes its work days and description; whether it was new.
    async fn put_calendar(
        &self,
        name: &str,
        workdays: &str,
        description: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Adds holidays in one transaction (a date already there takes the new
    /// description); how many dates were new, `None` when there is no such calendar.
    async fn add_holidays(
        &self,
        name: &str,
        holidays: &[dwsched_model::Holiday],
        now: DateTime<Utc>,
    ) -> Result<Option<usize>>;
    /// Removes a holiday; whether the calendar had it.
    async fn remove_holiday(
        &self,
        name: &str,
        date: chrono::NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    // Connections of flow steps.
    /// Registers a connection by name, or replaces the one of that name.
    async fn put_connection(&self, connection: &Connection) -> Result<i64>;
    /// The current connections (retired ones, `CURFLG='N'`, are left out).
    async fn list_connections(&self) -> Result<Vec<Connection>>;
    /// Retires a current connection (`CURFLG='N'`); whether there was one.
    async fn retire_connection(&self, name: &str) -> Result<bool>;
    async fn get_connection(&self, name: &str) -> Result<Option<Connection>>;
    /// The current connection of `CONID` `conid`, as DWTOOL's jobs name theirs.
    async fn get_connection_by_id(&self, conid: i64) -> Result<Option<Connection>>;

    // Scheduler nodes.
    /// Registers a node, replacing an earlier row of the same id. A start or heartbeat
    /// time left `None` is the database's current time.
    async fn register_node(&self, node: &Node) -> Result<()>;
    async fn get_node(&self, node_id: &str) -> Result<Option<Node>>;
    async fn list_nodes(&self) -> Result<Vec<Node>>;
    /// Bumps a node's heartbeat and the lease of the requests it holds to `lease` from
    /// now, both by the database's clock. `false` when the node's row is gone (another
    /// node rescued its work).
    async fn heartbeat_node(&self, node_id: &str, lease: std::time::Duration) -> Result<bool>;
    async fn deregister_node(&self, node_id: &str) -> Result<()>;
    /// Records what a node does (`leader` while it fires schedules, else `worker`).
    async fn set_node_role(&self, node_id: &str, role: &str) -> Result<()>;

    // Leases: a duty that one node at a time performs.
    /// Takes the lease `name` for `holder`, for `lease` from now, when it is free,
    /// expired, or already `holder`'s (a renewal); "now" and "expired" by the
    /// database's clock. `true` when `holder` holds it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        lease: std::time::Duration,
    ) -> Result<bool>;
    /// Gives the lease up, if `holder` holds it, so that another node takes it at once.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
    async fn get_lease(&self, name: &str) -> Result<Option<Lease>>;
    /// The nodes whose heartbeat is older than `lease` by the database's clock.
    async fn stale_nodes(&self, lease: std::time::Duration) -> Result<Vec<Node>>;
    /// Takes over a dead node's work in one transaction: its row is removed, its `IP`
    /// runs close `FL` with `msg`, and its claimed requests go back to `NEW` (or end
    /// `FAILED` once they have had `max_attempts` claims). With `stale_after`, only
    /// while its heartbeat is still older than that by the database's clock (else
    /// nothing happens).
    async fn rescue_node(
        &self,
        node_id: &str,
        msg: &str,
        stale_after: Option<std::time::Duration>,
        max_attempts: i64,
    ) -> Result<RescueReport>;

    /// A feed that wakes when requests may have been added: `LISTEN/NOTIFY` on
    /// PostgreSQL, `PRAGMA data_version` on SQLite. `None` where the backend has no
    /// cheap signal (MySQL), which leaves the poll interval.
    async fn watch_requests(&self) -> Result<Option<Box<dyn RequestWatcher>>>;

    async fn close(&self);
}

/// What the conformance suite and the integration tests read and write besides the
/// service's own calls: single run writes, logs read back, the whole queue, a job row.
/// Built with the `test-support` feature only, so the production contract stays the
/// [`Store`] trait.
#[cfg(feature = "test-support")]
#[async_trait]
pub trait TestSupport: Store {
    async fn get_job(&self, mapref: &str) -> Result<Option<Job>>;
    async fn list_requests(
        &self,
        status: Option<RequestStatus>,
        limit: u32,
    ) -> Result<Vec<Request>>;
    /// Opens a run `IP` and returns its `PRCID`. A run of a request on a node opens only
    /// while that node holds the request: else [`StoreError::ClaimLost`].
    async fn open_run(&self, run: &NewRun) -> Result<i64>;
    /// Closes a run still `IP` with a final status and message.
    async fn close_run(
        &self,
        prcid: i64,
        status: RunStatus,
        msg: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Ends a run in one transaction (see [`FinishRun`]). The `JOBLOG` and `JOBERR` rows
    /// are always written; the status only if the run is still `IP`, which the result
    /// tells.
    async fn finish_run(&self, finish: &FinishRun) -> Result<bool>;
    async fn write_job_log(&self, entry: &JobLogEntry) -> Result<i64>;
    async fn job_log_for_run(&self, prcid: i64) -> Result<Option<JobLogEntry>>;
    async fn write_job_error(&self, entry: &JobErrorEntry) -> Result<i64>;
    async fn job_errors_for_run(&self, prcid: i64) -> Result<Vec<JobError>>;
}

/// Opens a store with its [`TestSupport`] (see [`open`]).
#[cfg(feature = "test-support")]
pub async fn open_for_tests(options: &StoreOptions) -> Result<Box<dyn TestSupport>> {
    Ok(match Backend::from_url(&options.url)? {
        Backend::Sqlite => Box::new(sqlite::SqliteStore::open(options).await?),
        Backend::Postgres => Box::new(postgres::PgStore::open(options).await?),
        Backend::MySql => Box::new(mysql::MySqlStore::open(options).await?),
    })
}

/// See [`Store::watch_requests`].
#[async_trait]
pub trait RequestWatcher: Send {
    /// Resolves when requests may have changed since the last call.
    async fn changed(&mut self) -> Result<()>;
}

impl FromStr for Backend {
    type Err = StoreError;
    fn from_str(url: &str) -> Result<Self> {
        Self::from_url(url)
    }
}

/// The statement a node's run claim sends to PostgreSQL (`$1` now, `$2` the limit, `$3`
/// the node, `$4` the lease in seconds), for tools that replay the node's load on the
/// database (the benchmarks' pgbench ceiling).
pub fn postgres_run_claim_statement() -> String {
    common::with_database_clock(
        Backend::Postgres,
        &postgres::claim_sql(dwsched_model::RequestClass::Runs),
    )
}

/// The statements a node's run journal sends to PostgreSQL for a batch of run opens,
/// of run ends with their `DMS_JOBLOG` rows, and of request completions (each takes
/// arrays, one element per run), for tools that replay the node's load.
pub fn postgres_run_write_statements() -> [&'static str; 3] {
    postgres::RUN_WRITE_STATEMENTS
}

/// The claimer's read of the claimed jobs' flows on PostgreSQL, for the maprefs `among`
/// selects (`= ANY(…)`), for tools that replay the node's load.
pub fn postgres_flows_to_run_statement(among: &str) -> String {
    common::flows_to_run_sql(among)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://etl:s3cret@db:5432/dw"),
            "postgres://etl:***@db:5432/dw"
        );
        assert_eq!(redact_url("sqlite://dwsched.db"), "sqlite://dwsched.db");
        assert_eq!(
            redact_url("mysql://root@localhost/test"),
            "mysql://root@localhost/test"
        );
        assert!(!redact_url("postgres://u:p w@h:bad-port/db").contains("p w"));
    }

    #[test]
    fn backends_from_urls() {
        assert_eq!(
            Backend::from_url("sqlite::memory:").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(Backend::from_url("mariadb://h/db").unwrap(), Backend::MySql);
        let err = Backend::from_url("oracle://u:pw@h/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown scheme 'oracle'"), "{err}");
        assert!(!err.contains("pw@"), "{err}");
    }
}
