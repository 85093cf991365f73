//! SQL and row decoding shared by the three backends.
//!
//! Statements are written once with `$n` placeholders, which PostgreSQL and SQLite both
//! take; the MySQL backend rewrites them to `?` (see `mysql::to_mysql`). Integer columns
//! are read through `CAST(… AS BIGINT)` so that tables created by the original tool,
//! whose integer columns may be `INTEGER` or `NUMERIC`, read the same as ours; binds of
//! `i64`, text and timestamps are ones each backend assigns to any numeric, text or
//! timestamp column, so writes need no cast. `SESSIONID` (the original's
//! `NUMERIC(30,0)`, text in tables of older releases) is read through
//! `CAST(… AS VARCHAR)`.
//!
//! The backend-specific parts (ids, claims, the catalogue) are methods each backend
//! module defines; `store_impl!` builds the `Store` implementation from both.

use dwsched_model::SCHEDULER_LEASE;

use crate::Backend;

/// The rows the service fires (SPEC §3).
pub const SCHEDULED: &str = "CURFLG = 'Y' AND SCHFLG = 'Y' AND COALESCE(STFLG, 'A') = 'A'";

/// `DMS_JOBSCH` columns in the order `decode_schedule` reads them.
pub const SCHEDULE_COLUMNS: &str = "CAST(JOBSCHID AS BIGINT), CAST(JOBFLWID AS BIGINT), MAPREF, \
     FRQCD, FRQDD, CAST(FRQHH AS BIGINT), CAST(FRQMI AS BIGINT), STRTDT, ENDDT, STFLG, SCHFLG, \
     CURFLG, CAST(DPND_JOBSCHID AS BIGINT), LST_RUN_DT, NXT_RUN_DT, TIMEZONE, CRONEXPR, MISFIRE, \
     CAST(MAXFAIL AS BIGINT), CAST(FAILCNT AS BIGINT), SCHERR, RECUPDT, CHGDT, CALNM, CALRULE";

/// `DMS_PRCREQ` columns in the order `decode_request` reads them.
pub const REQUEST_COLUMNS: &str = "REQUEST_ID, MAPREF, REQUEST_TYPE, PAYLOAD, STATUS, \
     REQUESTED_AT, CLAIMED_AT, CLAIMED_BY, COMPLETED_AT, RESULT_PAYLOAD, DEDUPE_KEY, NOT_BEFORE, \
     CAST(ATTEMPTS AS BIGINT), LEASE_UNTIL";

/// `DMS_PRCLOG` columns in the order `decode_run` reads them.
pub const RUN_COLUMNS: &str = "CAST(PRCID AS BIGINT), CAST(JOBID AS BIGINT), \
     CAST(JOBFLWID AS BIGINT), STRTDT, ENDDT, STATUS, MSG, PRCLOG, MAPREF, CAST(SESSIONID AS VARCHAR), PARAM1, \
     PARAM2, PARAM3, PARAM4, PARAM5, PARAM6, PARAM7, PARAM8, PARAM9, PARAM10, REQUEST_ID, NODE, \
     RECUPDT, CAST(RUN_DATE AS VARCHAR)";

/// `DMS_JOBFLW` columns in the order `decode_flow` reads them.
pub const FLOW_COLUMNS: &str =
    "CAST(JOBFLWID AS BIGINT), CAST(JOBID AS BIGINT), MAPREF, DWLOGIC, CURFLG, RECRDT";

/// `DMS_SCHNODE` columns in the order `decode_node` reads them.
pub const NODE_COLUMNS: &str = "NODE_ID, HOST, CAST(PID AS BIGINT), VERSION, STARTED_AT, HEARTBEAT_AT, ROLE, HTTP_ADDR, \
     CAST(LEASE_SECONDS AS BIGINT)";

/// What makes a `DMS_SCHNODE` row stale (`$n` the judging node's lease, negated): its
/// heartbeat is older than that lease and than the lease the node declared, so that a
/// node is never judged by a shorter lease than the one it heartbeats for.
pub fn node_is_stale(n: usize) -> String {
    format!(
        "(HEARTBEAT_AT IS NULL OR (HEARTBEAT_AT < DB_NOW_PLUS(${n}) \
         AND (LEASE_SECONDS IS NULL OR HEARTBEAT_AT < DB_NOW_PLUS(-LEASE_SECONDS))))"
    )
}

/// `DMS_DBCONDTLS` columns in the order `decode_connection` reads them.
pub const CONNECTION_COLUMNS: &str = "CAST(CONID AS BIGINT), CONNM, DBTYP, DBHOST, \
     CAST(DBPORT AS BIGINT), DBSRVNM, USRNM, PASSWD, CONSTR, SCHNM, CURFLG";

/// What makes a waiting run request (alias `r`, `$1` now) a run claim's candidate: it
/// is due, is the oldest due run request of its mapref (a `NULL`
/// `REQUESTED_AT` counts as oldest), and its mapref has no request being processed and
/// no run in progress. Each test is a seek on a `(MAPREF, …)` index, so a claim walks
/// the queue in order and stops at its limit instead of reading the whole backlog.
/// This is what keeps two runs of one mapref apart, on one node or many.
fn run_candidate() -> String {
    let runs = run_types();
    format!(
        "(r.NOT_BEFORE IS NULL OR r.NOT_BEFORE <= $1) \
     AND NOT EXISTS (SELECT 1 FROM DMS_PRCREQ o WHERE o.MAPREF = r.MAPREF \
         AND o.STATUS IN ('NEW', 'QUEUED') AND o.REQUEST_TYPE IN {runs} \
         AND (o.NOT_BEFORE IS NULL OR o.NOT_BEFORE <= $1) \
         AND ((o.REQUESTED_AT IS NULL AND (r.REQUESTED_AT IS NOT NULL OR o.REQUEST_ID < r.REQUEST_ID)) \
             OR o.REQUESTED_AT < r.REQUESTED_AT \
             OR (o.REQUESTED_AT = r.REQUESTED_AT AND o.REQUEST_ID < r.REQUEST_ID))) \
     AND NOT EXISTS (SELECT 1 FROM DMS_PRCREQ o WHERE o.MAPREF = r.MAPREF \
         AND o.STATUS IN ('PROCESSING', 'CLAIMED') AND o.REQUEST_TYPE IN {runs}) \
     AND NOT EXISTS (SELECT 1 FROM DMS_PRCLOG l WHERE l.MAPREF = r.MAPREF AND l.STATUS = 'IP')"
    )
}

/// The request types that start runs, as an SQL list: `('HISTORY', 'IMMEDIATE', …)`.
pub fn run_types() -> String {
    let quoted: Vec<String> = dwsched_model::RequestType::RUN_TYPES
        .iter()
        .map(|kind| format!("'{kind}'"))
        .collect();
    format!("({})", quoted.join(", "))
}

/// Every request type but those that start runs, as ranges of `column` between them
/// (a few seeks on an index that leads with the type, where `NOT IN` would scan).
fn other_types(column: &str) -> String {
    let kinds = dwsched_model::RequestType::RUN_TYPES;
    let mut ranges = vec![format!("{column} < '{}'", kinds[0])];
    for pair in kinds.windows(2) {
        ranges.push(format!(
            "({column} > '{}' AND {column} < '{}')",
            pair[0], pair[1]
        ));
    }
    ranges.push(format!("{column} > '{}'", kinds[kinds.len() - 1]));
    format!("({})", ranges.join(" OR "))
}

/// The candidates of a control claim (`$1` now, `$3` the claiming node): every waiting
/// type that does not start runs, written as ranges between the run types so that it
/// is a few seeks on the `(STATUS, REQUEST_TYPE)` index, not a scan of every waiting
/// run request. A `STOP` is left to the node that runs its mapref (or holds its
/// run request), and a `REFRESH_SCHEDULE` to the node that holds a valid scheduler
/// lease; either is anyone's when there is no such node.
fn control_candidates() -> String {
    format!(
        "SELECT r.REQUEST_ID FROM DMS_PRCREQ r \
     WHERE r.STATUS IN ('NEW', 'QUEUED') AND (r.NOT_BEFORE IS NULL OR r.NOT_BEFORE <= $1) \
     AND {others} \
     AND NOT (r.REQUEST_TYPE = 'STOP' AND (\
         EXISTS (SELECT 1 FROM DMS_PRCLOG l WHERE l.MAPREF = r.MAPREF AND l.STATUS = 'IP' \
             AND l.NODE <> $3) \
         OR EXISTS (SELECT 1 FROM DMS_PRCREQ o WHERE o.MAPREF = r.MAPREF \
             AND o.STATUS IN ('PROCESSING', 'CLAIMED') AND o.REQUEST_TYPE IN {runs} \
             AND o.CLAIMED_BY <> $3))) \
     AND NOT (r.REQUEST_TYPE = 'REFRESH_SCHEDULE' AND EXISTS (SELECT 1 FROM DMS_SCHLEASE s \
         WHERE s.NAME = '{SCHEDULER_LEASE}' AND s.HOLDER <> $3 AND s.LEASE_UNTIL >= DB_NOW()))",
        others = other_types("r.REQUEST_TYPE"),
        runs = run_types(),
    )
}

/// What makes a schedule (alias `s`) one that follows job `parent` (a mapref
/// expression): current, enabled, and depending on one of that job's schedules.
pub fn following(parent: &str) -> String {
    format!(
        "s.CURFLG = 'Y' AND s.SCHFLG = 'Y' AND COALESCE(s.STFLG, 'A') = 'A' \
         AND s.DPND_JOBSCHID IN (SELECT p.JOBSCHID FROM DMS_JOBSCH p \
         WHERE p.MAPREF = {parent} AND p.CURFLG = 'Y')"
    )
}

/// The current flows of the maprefs `among` selects (`IN (…)`, `= ANY(…)`), newest
/// first, each with 1 when a schedule follows its job.
pub fn flows_to_run_sql(among: &str) -> String {
    format!(
        "SELECT {FLOW_COLUMNS}, CAST(CASE WHEN EXISTS (SELECT 1 FROM DMS_JOBSCH s WHERE {}) \
         THEN 1 ELSE 0 END AS BIGINT) FROM DMS_JOBFLW \
         WHERE MAPREF {among} AND CURFLG = 'Y' ORDER BY JOBFLWID DESC",
        following("DMS_JOBFLW.MAPREF")
    )
}

/// The ids a claim takes, oldest first (`$1` now, `$2` the limit, `$3` the node); `lock`
/// locks them (`FOR UPDATE … SKIP LOCKED` where the backend has it). Run requests are
/// read per waiting status (`QUEUED` is the legacy spelling of `NEW`) and type, each an
/// equality range of the `(STATUS, REQUEST_TYPE, REQUESTED_AT)` index already in queue
/// order, so the limit ends the walk even before the planner has statistics.
pub fn claim_candidates_sql(class: dwsched_model::RequestClass, lock: &str) -> String {
    use dwsched_model::RequestClass;
    match class {
        RequestClass::Runs | RequestClass::Reserved => {
            // A request reserved for a node (`dwsched job run`: its node in
            // `CLAIMED_BY`, its dedupe key `job-run:…`) is that node's alone; a
            // `CLAIMED_BY` that another tool left on a waiting row reserves nothing.
            let whose = if class == RequestClass::Reserved {
                "r.CLAIMED_BY = $3".to_string()
            } else {
                format!(
                    "(r.CLAIMED_BY IS NULL OR r.DEDUPE_KEY IS NULL \
                     OR r.DEDUPE_KEY NOT LIKE '{}%')",
                    dwsched_model::FOREGROUND_KEY_PREFIX
                )
            };
            let whose = whose.as_str();
            let candidate = run_candidate();
            let candidate = candidate.as_str();
            let ranges: Vec<String> = ["NEW", "QUEUED"]
                .iter()
                .flat_map(|status| {
                    dwsched_model::RequestType::RUN_TYPES.iter().map(move |kind| {
                        format!(
                            "SELECT * FROM (SELECT r.REQUEST_ID, r.REQUESTED_AT FROM DMS_PRCREQ r \
                             WHERE r.STATUS = '{status}' AND r.REQUEST_TYPE = '{kind}' \
                             AND {whose} AND {candidate} ORDER BY r.REQUESTED_AT LIMIT $2 {lock}) w_{status}_{kind}"
                        )
                    })
                })
                .collect();
            format!(
                "SELECT c.REQUEST_ID FROM ({}) c ORDER BY c.REQUESTED_AT, c.REQUEST_ID LIMIT $2",
                ranges.join(" UNION ALL ")
            )
        }
        RequestClass::Control => {
            format!(
                "{} ORDER BY r.REQUESTED_AT, r.REQUEST_ID LIMIT $2 {lock}",
                control_candidates()
            )
        }
    }
}

/// The update of `n` schedules' `NXT_RUN_DT` and `SCHERR`. PostgreSQL and SQLite join a
/// `VALUES` list (binds: id, next, problem per row); MySQL, whose `VALUES` differs,
/// uses `CASE` (binds: id and next per row, then id and problem, then the ids).
pub fn states_update_sql(backend: Backend, n: usize) -> String {
    let mut counter = 0;
    let mut next = || {
        counter += 1;
        format!("${counter}")
    };
    if backend == Backend::MySql {
        let next_cases: String = (0..n)
            .map(|_| format!(" WHEN {} THEN {}", next(), next()))
            .collect();
        let error_cases: String = (0..n)
            .map(|_| format!(" WHEN {} THEN {}", next(), next()))
            .collect();
        let ids: Vec<String> = (0..n).map(|_| next()).collect();
        format!(
            "UPDATE DMS_JOBSCH SET NXT_RUN_DT = CASE JOBSCHID{next_cases} END, \
             SCHERR = CASE JOBSCHID{error_cases} END WHERE JOBSCHID IN ({})",
            ids.join(", ")
        )
    } else {
        let values: Vec<String> = (0..n)
            .map(|_| format!("({}, {}, {})", next(), next(), next()))
            .collect();
        format!(
            "UPDATE DMS_JOBSCH SET NXT_RUN_DT = v.column2, SCHERR = v.column3 \
             FROM (VALUES {}) AS v WHERE DMS_JOBSCH.JOBSCHID = v.column1",
            values.join(", ")
        )
    }
}

/// Whether node `$3` still has its `DMS_SCHNODE` row. A node claims only while it
/// does: a rescue deletes the row before it requeues the node's requests, so a node
/// judged dead cannot claim its own requeued work under the same id before it notices.
/// `lock` holds the row against that delete until the claim commits (`FOR KEY SHARE`,
/// `LOCK IN SHARE MODE`), so the rescue then sees, and requeues, what was claimed.
pub fn claimer_registered_sql(lock: &str) -> String {
    format!("EXISTS (SELECT 1 FROM DMS_SCHNODE n WHERE n.NODE_ID = $3 {lock})")
}

/// A claim as one `UPDATE … RETURNING` (PostgreSQL, SQLite): `$1` is now, `$2` the
/// limit, `$3` the node and `$4` the lease in seconds (from the database's clock).
/// `lock` locks the candidates (`FOR UPDATE … SKIP LOCKED` where the backend has it),
/// `node_lock` the claiming node's row (see [`claimer_registered_sql`]).
pub fn claim_update_sql(class: dwsched_model::RequestClass, lock: &str, node_lock: &str) -> String {
    format!(
        "UPDATE DMS_PRCREQ SET STATUS = 'PROCESSING', CLAIMED_AT = $1, CLAIMED_BY = $3, \
         LEASE_UNTIL = DB_NOW_PLUS($4), ATTEMPTS = COALESCE(ATTEMPTS, 0) + 1 \
         WHERE {} AND REQUEST_ID IN ({}) RETURNING {REQUEST_COLUMNS}",
        claimer_registered_sql(node_lock),
        claim_candidates_sql(class, lock)
    )
}

/// Claimed requests in queue order.
pub fn sort_oldest_first(requests: &mut [dwsched_model::Request]) {
    requests.sort_by(|a, b| (a.requested_at, &a.request_id).cmp(&(b.requested_at, &b.request_id)));
}

/// The text of an insert that generates the row's id: from the table's sequence on
/// PostgreSQL (the original install's tables may have no column default), from the row
/// id on SQLite, and from `AUTO_INCREMENT` on MySQL, whose caller reads
/// `LAST_INSERT_ID()`.
pub fn insert_sql(
    backend: Backend,
    table: &str,
    id_column: &str,
    sequence: &str,
    columns: &[&str],
) -> String {
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let (columns, placeholders) = (columns.join(", "), placeholders.join(", "));
    match backend {
        Backend::Postgres => format!(
            "INSERT INTO {table} ({id_column}, {columns}) VALUES (nextval('{}'), {placeholders}) \
             RETURNING CAST({id_column} AS BIGINT)",
            sequence.to_ascii_lowercase()
        ),
        Backend::Sqlite => {
            format!("INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING {id_column}")
        }
        Backend::MySql => format!("INSERT INTO {table} ({columns}) VALUES ({placeholders})"),
    }
}

/// Rewrites shared statement text for `backend`: the database clock's [`DB_NOW`] and
/// [`DB_NOW_PLUS`] become the backend's expressions, and MySQL takes `?` for `$n` and
/// `SIGNED`/`CHAR` for `BIGINT`/`VARCHAR` in casts. Shared statements use each `$n` once, in order, so
/// their binds line up with the `?`s; a statement that repeats one goes through
/// `to_positional`.
pub fn rewrite(backend: Backend, text: &str) -> String {
    if backend != Backend::MySql {
        return with_database_clock(backend, text);
    }
    let (sql, order) = to_positional(text);
    debug_assert!(
        order.iter().copied().eq(1..=order.len()),
        "placeholders out of order in: {text}"
    );
    sql
}

/// The database's current UTC time, in shared statement text.
pub const DB_NOW: &str = "DB_NOW()";
/// `DB_NOW_PLUS($n)`: the database's UTC time `$n` seconds (a float bind) from now.
pub const DB_NOW_PLUS: &str = "DB_NOW_PLUS(";

/// `text` with [`DB_NOW`] and [`DB_NOW_PLUS`] written in `backend`.
pub fn with_database_clock(backend: Backend, text: &str) -> String {
    let mut out = text.replace(DB_NOW, backend.now_utc());
    while let Some(start) = out.find(DB_NOW_PLUS) {
        let argument_start = start + DB_NOW_PLUS.len();
        let Some(length) = out[argument_start..].find(')') else {
            break;
        };
        let expression = backend.now_plus(&out[argument_start..argument_start + length]);
        out.replace_range(start..argument_start + length + 1, &expression);
    }
    out
}

/// MySQL text for a statement written with `$n` (and the database clock's tokens, and
/// `SIGNED`/`CHAR` for the `BIGINT`/`VARCHAR` of casts), and
/// the parameter number each `?` stands for, in order.
pub fn to_positional(text: &str) -> (String, Vec<usize>) {
    let text = with_database_clock(Backend::MySql, text);
    let mut out = String::with_capacity(text.len());
    let mut order = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut number = 0;
            while let Some(digit) = chars.peek().and_then(|d| d.to_digit(10)) {
                number = number * 10 + digit as usize;
                chars.next();
            }
            order.push(number);
            out.push('?');
        } else {
            out.push(c);
        }
    }
    let out = out
        .replace(" AS BIGINT)", " AS SIGNED)")
        .replace(" AS VARCHAR)", " AS CHAR)");
    (out, order)
}

pub fn flag(value: bool) -> &'static str {
    if value { "Y" } else { "N" }
}

/// Implements `Store` for a backend type (a [`crate::driver::Driver`]) by forwarding
/// each method to the topic trait that writes its statements once for every backend:
/// `migrate.rs`, `nodes.rs`, `runs.rs`, `queue.rs`, `schedules.rs`, `jobs.rs` and
/// `connections.rs`. It is a macro only because the topics' sqlx bounds must be
/// restated wherever they are used generically; here they are checked once per backend.
macro_rules! store_impl {
    ($store:ty) => {
        // In a block of its own, so that these imports stay out of the backend's module.
        const _: () = {
            impl $crate::migrate::Migrations for $store {}
            impl $crate::nodes::Nodes for $store {}
            impl $crate::runs::Runs for $store {}
            impl $crate::queue::Queue for $store {}
            impl $crate::schedules::Schedules for $store {}
            impl $crate::jobs::Jobs for $store {}
            impl $crate::connections::Connections for $store {}
            impl $crate::calendars::Calendars for $store {}
            impl $crate::reports::Reports for $store {}
            impl $crate::uploads::Uploads for $store {}

            use chrono::{DateTime, Utc};
            use dwsched_model::{
                Claim, Connection, Enqueued, FlowToRun, Job, JobFlow, Lease, NewRequest,
                NewSchedule, Node, Request, RequestStatus, RescueReport, Run, RunFilter, RunWrite,
                RunWritten, ScheduleResult, ScheduleRow, ScheduleState,
            };

            use $crate::{Backend, MigrationReport, QueueDepth, Result, Store};

            #[async_trait::async_trait]
            impl Store for $store {
                fn backend(&self) -> Backend {
                    <$store as $crate::driver::Driver>::BACKEND
                }

                async fn migrate(&self) -> Result<MigrationReport> {
                    $crate::migrate::Migrations::migrate_schema(self).await
                }

                async fn schema_version(&self) -> Result<Option<i64>> {
                    $crate::migrate::Migrations::applied_version(self).await
                }

                async fn check_schema(&self) -> Result<()> {
                    $crate::migrate::Migrations::check_version(self).await
                }

                async fn put_job_flow(
                    &self,
                    mapref: &str,
                    dwlogic: &str,
                    now: DateTime<Utc>,
                ) -> Result<JobFlow> {
                    $crate::jobs::Jobs::put_job_flow(self, mapref, dwlogic, now).await
                }

                async fn list_jobs(&self) -> Result<Vec<Job>> {
                    $crate::jobs::Jobs::list_jobs(self).await
                }

                async fn flows_to_run(&self, maprefs: &[String]) -> Result<Vec<FlowToRun>> {
                    $crate::jobs::Jobs::flows_to_run(self, maprefs).await
                }

                async fn current_flow(&self, mapref: &str) -> Result<Option<JobFlow>> {
                    $crate::jobs::Jobs::current_flow(self, mapref).await
                }

                async fn dwtool_mapping(
                    &self,
                    mapref: &str,
                ) -> Result<dwsched_model::DwtoolMapping> {
                    $crate::jobs::Jobs::dwtool_mapping(self, mapref).await
                }

                async fn retire_job(&self, mapref: &str, now: DateTime<Utc>) -> Result<bool> {
                    $crate::jobs::Jobs::retire_job(self, mapref, now).await
                }

                async fn insert_schedule(
                    &self,
                    s: &NewSchedule,
                    now: DateTime<Utc>,
                ) -> Result<i64> {
                    $crate::schedules::Schedules::insert_schedule(self, s, now).await
                }

                async fn list_schedules(&self, only_scheduled: bool) -> Result<Vec<ScheduleRow>> {
                    $crate::schedules::Schedules::list_schedules(self, only_scheduled).await
                }

                async fn schedule_version(&self) -> Result<i64> {
                    $crate::schedules::Schedules::schedule_version(self).await
                }

                async fn scheduled_ids(&self) -> Result<Vec<i64>> {
                    $crate::schedules::Schedules::scheduled_ids(self).await
                }

                async fn scheduled_changes(
                    &self,
                    since: Option<DateTime<Utc>>,
                    ids: &[i64],
                ) -> Result<Vec<ScheduleRow>> {
                    $crate::schedules::Schedules::scheduled_changes(self, since, ids).await
                }

                async fn get_schedule(&self, jobschid: i64) -> Result<Option<ScheduleRow>> {
                    $crate::schedules::Schedules::get_schedule(self, jobschid).await
                }

                async fn set_schedule_enabled(
                    &self,
                    jobschid: i64,
                    enabled: bool,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    $crate::schedules::Schedules::set_schedule_enabled(self, jobschid, enabled, now)
                        .await
                }

                async fn retire_schedule(&self, jobschid: i64, now: DateTime<Utc>) -> Result<bool> {
                    $crate::schedules::Schedules::retire_schedule(self, jobschid, now).await
                }

                async fn replace_schedule(
                    &self,
                    old: i64,
                    new: &dwsched_model::NewSchedule,
                    now: DateTime<Utc>,
                ) -> Result<Option<i64>> {
                    $crate::schedules::Schedules::replace_schedule_version(self, old, new, now)
                        .await
                }

                async fn set_schedule_state(
                    &self,
                    jobschid: i64,
                    next_fire: Option<DateTime<Utc>>,
                    scherr: Option<&str>,
                ) -> Result<bool> {
                    $crate::schedules::Schedules::set_schedule_state(
                        self, jobschid, next_fire, scherr,
                    )
                    .await
                }

                async fn enqueue(&self, r: &NewRequest, now: DateTime<Utc>) -> Result<Enqueued> {
                    $crate::queue::Queue::enqueue(self, r, now).await
                }

                async fn enqueue_many(&self, requests: &[NewRequest]) -> Result<usize> {
                    $crate::queue::Queue::enqueue_many(self, requests).await
                }

                async fn get_request(&self, request_id: &str) -> Result<Option<Request>> {
                    $crate::queue::Queue::get_request(self, request_id).await
                }

                async fn claim_requests(&self, claim: &Claim) -> Result<Vec<Request>> {
                    $crate::queue::Queue::claim_requests(self, claim).await
                }

                async fn report_definition(
                    &self,
                    rprtid: i64,
                ) -> Result<Option<dwsched_model::ReportDefinition>> {
                    $crate::reports::Reports::read_report(self, rprtid).await
                }

                async fn open_report_run(&self, run: &dwsched_model::NewReportRun) -> Result<i64> {
                    $crate::reports::Reports::insert_report_run(self, run).await
                }

                async fn finish_report_run(
                    &self,
                    runid: i64,
                    status: &str,
                    row_count: Option<i64>,
                    parameters: &str,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    $crate::reports::Reports::update_report_run(
                        self, runid, status, row_count, parameters, now,
                    )
                    .await
                }

                async fn due_report_schedules(
                    &self,
                    due_by: chrono::NaiveDateTime,
                ) -> Result<Vec<dwsched_model::ReportScheduleRow>> {
                    $crate::reports::Reports::read_report_schedules(self, Some(due_by)).await
                }

                async fn fail_running_report_runs(
                    &self,
                    request_id: &str,
                    parameters: &str,
                    now: DateTime<Utc>,
                ) -> Result<u64> {
                    $crate::reports::Reports::fail_running_report_runs(
                        self, request_id, parameters, now,
                    )
                    .await
                }

                async fn report_schedules(&self) -> Result<Vec<dwsched_model::ReportScheduleRow>> {
                    $crate::reports::Reports::read_report_schedules(self, None).await
                }

                async fn fire_report_schedule(
                    &self,
                    fire: &dwsched_model::DwtoolFire,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    $crate::reports::Reports::fire_report_row(self, fire, now).await
                }

                async fn upload_definition(
                    &self,
                    flupldref: &str,
                ) -> Result<Option<dwsched_model::UploadDefinition>> {
                    $crate::uploads::Uploads::read_upload(self, flupldref).await
                }

                async fn set_upload_hash(&self, flupldref: &str, hash: &str) -> Result<()> {
                    $crate::uploads::Uploads::write_upload_hash(self, flupldref, hash).await
                }

                async fn upload_files(&self) -> Result<Vec<(String, Option<String>)>> {
                    $crate::uploads::Uploads::read_upload_files(self).await
                }

                async fn datatype_params(&self) -> Result<Vec<dwsched_model::DatatypeParam>> {
                    $crate::uploads::Uploads::read_datatype_params(self).await
                }

                async fn record_upload_run(
                    &self,
                    run: &dwsched_model::UploadRunRecord,
                    errors: &[dwsched_model::UploadRowError],
                ) -> Result<i64> {
                    $crate::uploads::Uploads::write_upload_run(self, run, errors).await
                }

                async fn due_upload_schedules(
                    &self,
                    due_by: chrono::NaiveDateTime,
                ) -> Result<Vec<dwsched_model::UploadScheduleRow>> {
                    $crate::uploads::Uploads::read_upload_schedules(self, Some(due_by)).await
                }

                async fn upload_schedules(&self) -> Result<Vec<dwsched_model::UploadScheduleRow>> {
                    $crate::uploads::Uploads::read_upload_schedules(self, None).await
                }

                async fn fire_upload_schedule(
                    &self,
                    fire: &dwsched_model::DwtoolFire,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    $crate::uploads::Uploads::fire_upload_row(self, fire, now).await
                }

                async fn list_calendars(&self) -> Result<Vec<dwsched_model::CalendarRecord>> {
                    $crate::calendars::Calendars::read_calendars(self, None).await
                }

                async fn get_calendar(
                    &self,
                    name: &str,
                ) -> Result<Option<dwsched_model::CalendarRecord>> {
                    Ok(
                        $crate::calendars::Calendars::read_calendars(self, Some(name))
                            .await?
                            .into_iter()
                            .next(),
                    )
                }

                async fn put_calendar(
                    &self,
                    name: &str,
                    workdays: &str,
                    description: Option<&str>,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    $crate::calendars::Calendars::put_calendar(
                        self,
                        name,
                        workdays,
                        description,
                        now,
                    )
                    .await
                }

                async fn add_holidays(
                    &self,
                    name: &str,
                    holidays: &[dwsched_model::Holiday],
                    now: DateTime<Utc>,
                ) -> Result<Option<usize>> {
                    $crate::calendars::Calendars::add_holidays(self, name, holidays, now).await
                }

                async fn remove_holiday(
                    &self,
                    name: &str,
                    date: chrono::NaiveDate,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    $crate::calendars::Calendars::remove_holiday(self, name, date, now).await
                }

                async fn held_requests(
                    &self,
                    node: &str,
                    class: dwsched_model::RequestClass,
                ) -> Result<Vec<Request>> {
                    $crate::queue::Queue::held_requests(self, node, class).await
                }

                async fn complete_request(
                    &self,
                    request_id: &str,
                    claimed_by: Option<&str>,
                    status: RequestStatus,
                    result_payload: &str,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    $crate::queue::Queue::complete_request(
                        self,
                        request_id,
                        claimed_by,
                        status,
                        result_payload,
                        now,
                    )
                    .await
                }

                async fn cancel_request(
                    &self,
                    request_id: &str,
                    result_payload: &str,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    $crate::queue::Queue::cancel_request(self, request_id, result_payload, now)
                        .await
                }

                async fn queue_depth(&self) -> Result<QueueDepth> {
                    $crate::queue::Queue::queue_depth(self).await
                }

                async fn live_counts(&self) -> Result<crate::LiveCounts> {
                    $crate::queue::Queue::live_counts(self).await
                }

                async fn write_runs(&self, writes: &[RunWrite]) -> Result<Vec<Result<RunWritten>>> {
                    $crate::runs::Runs::write_runs(self, writes).await
                }

                async fn write_job_log_progress(
                    &self,
                    entry: &dwsched_model::JobLogEntry,
                    joblogid: Option<i64>,
                ) -> Result<i64> {
                    $crate::runs::Runs::job_log_progress(self, entry, joblogid).await
                }

                async fn heartbeat_run(&self, prcid: i64, now: DateTime<Utc>) -> Result<bool> {
                    $crate::runs::Runs::heartbeat_run(self, prcid, now).await
                }

                async fn get_run(&self, prcid: i64) -> Result<Option<Run>> {
                    $crate::runs::Runs::get_run(self, prcid).await
                }

                async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
                    $crate::runs::Runs::list_runs(self, filter).await
                }

                async fn run_steps(&self, prcid: i64) -> Result<Vec<dwsched_model::StepRecord>> {
                    $crate::runs::Runs::steps_of_run(self, prcid).await
                }

                async fn put_connection(&self, c: &Connection) -> Result<i64> {
                    $crate::connections::Connections::put_connection(self, c).await
                }

                async fn retire_connection(&self, name: &str) -> Result<bool> {
                    $crate::connections::Connections::retire_connection(self, name).await
                }

                async fn list_connections(&self) -> Result<Vec<Connection>> {
                    $crate::connections::Connections::list_connections(self).await
                }

                async fn get_connection(&self, name: &str) -> Result<Option<Connection>> {
                    $crate::connections::Connections::get_connection(self, name).await
                }

                async fn get_connection_by_id(&self, conid: i64) -> Result<Option<Connection>> {
                    $crate::connections::Connections::get_connection_by_id(self, conid).await
                }

                async fn set_schedule_states(&self, states: &[ScheduleState]) -> Result<()> {
                    $crate::schedules::Schedules::set_schedule_states(self, states).await
                }

                async fn record_schedule_result(
                    &self,
                    jobschid: i64,
                    finished_at: DateTime<Utc>,
                    succeeded: bool,
                ) -> Result<ScheduleResult> {
                    $crate::schedules::Schedules::record_schedule_result(
                        self,
                        jobschid,
                        finished_at,
                        succeeded,
                    )
                    .await
                }

                async fn dependent_schedules(&self, mapref: &str) -> Result<Vec<ScheduleRow>> {
                    $crate::schedules::Schedules::dependent_schedules(self, mapref).await
                }

                async fn release_request(
                    &self,
                    request_id: &str,
                    claimed_by: Option<&str>,
                    not_before: Option<DateTime<Utc>>,
                ) -> Result<bool> {
                    $crate::queue::Queue::release_request(self, request_id, claimed_by, not_before)
                        .await
                }

                async fn register_node(&self, node: &Node) -> Result<()> {
                    $crate::nodes::Nodes::register_node(self, node).await
                }

                async fn get_node(&self, node_id: &str) -> Result<Option<Node>> {
                    $crate::nodes::Nodes::get_node(self, node_id).await
                }

                async fn list_nodes(&self) -> Result<Vec<Node>> {
                    $crate::nodes::Nodes::list_nodes(self).await
                }

                async fn stale_nodes(&self, lease: std::time::Duration) -> Result<Vec<Node>> {
                    $crate::nodes::Nodes::stale_nodes(self, lease).await
                }

                async fn heartbeat_node(
                    &self,
                    node_id: &str,
                    lease: std::time::Duration,
                ) -> Result<bool> {
                    $crate::nodes::Nodes::heartbeat_node(self, node_id, lease).await
                }

                async fn set_node_role(&self, node_id: &str, role: &str) -> Result<()> {
                    $crate::nodes::Nodes::set_node_role(self, node_id, role).await
                }

                async fn acquire_lease(
                    &self,
                    name: &str,
                    holder: &str,
                    lease: std::time::Duration,
                ) -> Result<bool> {
                    $crate::nodes::Nodes::acquire_lease(self, name, holder, lease).await
                }

                async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
                    $crate::nodes::Nodes::release_lease(self, name, holder).await
                }

                async fn get_lease(&self, name: &str) -> Result<Option<Lease>> {
                    $crate::nodes::Nodes::get_lease(self, name).await
                }

                async fn deregister_node(&self, node_id: &str) -> Result<()> {
                    $crate::nodes::Nodes::deregister_node(self, node_id).await
                }

                async fn rescue_node(
                    &self,
                    node_id: &str,
                    msg: &str,
                    stale_after: Option<std::time::Duration>,
                    max_attempts: i64,
                ) -> Result<RescueReport> {
                    $crate::runs::Runs::rescue_node(self, node_id, msg, stale_after, max_attempts)
                        .await
                }

                async fn watch_requests(&self) -> Result<Option<Box<dyn $crate::RequestWatcher>>> {
                    self.request_watcher().await
                }

                async fn close(&self) {
                    self.pool.close().await;
                }
            }

            #[cfg(feature = "test-support")]
            #[async_trait::async_trait]
            impl $crate::TestSupport for $store {
                async fn get_job(&self, mapref: &str) -> Result<Option<dwsched_model::Job>> {
                    Ok(self
                        .list_jobs()
                        .await?
                        .into_iter()
                        .find(|job| job.mapref == mapref))
                }

                async fn list_requests(
                    &self,
                    status: Option<dwsched_model::RequestStatus>,
                    limit: u32,
                ) -> Result<Vec<dwsched_model::Request>> {
                    $crate::queue::Queue::list_requests(self, status, limit).await
                }

                async fn open_run(&self, run: &dwsched_model::NewRun) -> Result<i64> {
                    $crate::runs::Runs::open_run(self, run).await
                }

                async fn close_run(
                    &self,
                    prcid: i64,
                    status: dwsched_model::RunStatus,
                    msg: Option<&str>,
                    now: DateTime<Utc>,
                ) -> Result<bool> {
                    $crate::runs::Runs::close_run(self, prcid, status, msg, now).await
                }

                async fn finish_run(&self, f: &dwsched_model::FinishRun) -> Result<bool> {
                    $crate::runs::Runs::finish_run(self, f).await
                }

                async fn write_job_log(&self, e: &dwsched_model::JobLogEntry) -> Result<i64> {
                    $crate::runs::Runs::write_job_log(self, e).await
                }

                async fn job_log_for_run(
                    &self,
                    prcid: i64,
                ) -> Result<Option<dwsched_model::JobLogEntry>> {
                    $crate::runs::Runs::job_log_for_run(self, prcid).await
                }

                async fn write_job_error(&self, e: &dwsched_model::JobErrorEntry) -> Result<i64> {
                    $crate::runs::Runs::write_job_error(self, e).await
                }

                async fn job_errors_for_run(
                    &self,
                    prcid: i64,
                ) -> Result<Vec<dwsched_model::JobError>> {
                    $crate::runs::Runs::job_errors_for_run(self, prcid).await
                }
            }
        };
    };
}

pub(crate) use store_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_rewrite() {
        assert_eq!(
            rewrite(
                Backend::MySql,
                "SELECT CAST(A AS BIGINT) FROM T WHERE X = $1 AND Y = $2"
            ),
            "SELECT CAST(A AS SIGNED) FROM T WHERE X = ? AND Y = ?"
        );
        assert_eq!(rewrite(Backend::Postgres, "X = $1"), "X = $1");
        let runs = claim_candidates_sql(dwsched_model::RequestClass::Runs, "");
        // A range of the queue per waiting status and run type, each due at `$1`
        // (twice) and limited by `$2`, then the overall limit.
        let ranges = 2 * dwsched_model::RequestType::RUN_TYPES.len();
        let order = to_positional(&runs).1;
        assert_eq!(order.iter().filter(|&&p| p == 1).count(), 2 * ranges);
        assert_eq!(order.iter().filter(|&&p| p == 2).count(), ranges + 1);
        assert_eq!(order.len(), 3 * ranges + 1);
    }

    #[test]
    fn inserts_per_dialect() {
        assert_eq!(
            insert_sql(
                Backend::Postgres,
                "DMS_JOB",
                "JOBID",
                "DMS_JOBSEQ",
                &["MAPREF", "CURFLG"]
            ),
            "INSERT INTO DMS_JOB (JOBID, MAPREF, CURFLG) VALUES (nextval('dms_jobseq'), $1, $2) \
             RETURNING CAST(JOBID AS BIGINT)"
        );
        assert_eq!(
            insert_sql(
                Backend::Sqlite,
                "DMS_JOB",
                "JOBID",
                "DMS_JOBSEQ",
                &["MAPREF"]
            ),
            "INSERT INTO DMS_JOB (MAPREF) VALUES ($1) RETURNING JOBID"
        );
    }
}
