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
     CAST(MAXFAIL AS BIGINT), CAST(FAILCNT AS BIGINT), SCHERR, RECUPDT, CHGDT";

/// `DMS_PRCREQ` columns in the order `decode_request` reads them.
pub const REQUEST_COLUMNS: &str = "REQUEST_ID, MAPREF, REQUEST_TYPE, PAYLOAD, STATUS, \
     REQUESTED_AT, CLAIMED_AT, CLAIMED_BY, COMPLETED_AT, RESULT_PAYLOAD, DEDUPE_KEY, NOT_BEFORE, \
     CAST(ATTEMPTS AS BIGINT), LEASE_UNTIL";

/// `DMS_PRCLOG` columns in the order `decode_run` reads them.
pub const RUN_COLUMNS: &str = "CAST(PRCID AS BIGINT), CAST(JOBID AS BIGINT), \
     CAST(JOBFLWID AS BIGINT), STRTDT, ENDDT, STATUS, MSG, PRCLOG, MAPREF, CAST(SESSIONID AS VARCHAR), PARAM1, \
     PARAM2, PARAM3, PARAM4, PARAM5, PARAM6, PARAM7, PARAM8, PARAM9, PARAM10, REQUEST_ID, NODE, \
     RECUPDT";

/// `DMS_JOBFLW` columns in the order `decode_flow` reads them.
pub const FLOW_COLUMNS: &str =
    "CAST(JOBFLWID AS BIGINT), CAST(JOBID AS BIGINT), MAPREF, DWLOGIC, CURFLG, RECRDT";

/// `DMS_SCHNODE` columns in the order `decode_node` reads them.
pub const NODE_COLUMNS: &str =
    "NODE_ID, HOST, CAST(PID AS BIGINT), VERSION, STARTED_AT, HEARTBEAT_AT, ROLE";

/// `DMS_DBCONDTLS` columns in the order `decode_connection` reads them.
pub const CONNECTION_COLUMNS: &str = "CAST(CONID AS BIGINT), CONNM, DBTYP, DBHOST, \
     CAST(DBPORT AS BIGINT), DBSRVNM, USRNM, PASSWD, CONSTR, SCHNM, CURFLG";

/// What makes a waiting run request (alias `r`, `$1` now) a run claim's candidate: it
/// is due, is the oldest due run request of its mapref (a `NULL`
/// `REQUESTED_AT` counts as oldest), and its mapref has no request being processed and
/// no run in progress. Each test is a seek on a `(MAPREF, …)` index, so a claim walks
/// the queue in order and stops at its limit instead of reading the whole backlog.
/// This is what keeps two runs of one mapref apart, on one node or many.
const RUN_CANDIDATE: &str = "(r.NOT_BEFORE IS NULL OR r.NOT_BEFORE <= $1) \
     AND NOT EXISTS (SELECT 1 FROM DMS_PRCREQ o WHERE o.MAPREF = r.MAPREF \
         AND o.STATUS IN ('NEW', 'QUEUED') AND o.REQUEST_TYPE IN ('IMMEDIATE', 'HISTORY') \
         AND (o.NOT_BEFORE IS NULL OR o.NOT_BEFORE <= $1) \
         AND ((o.REQUESTED_AT IS NULL AND (r.REQUESTED_AT IS NOT NULL OR o.REQUEST_ID < r.REQUEST_ID)) \
             OR o.REQUESTED_AT < r.REQUESTED_AT \
             OR (o.REQUESTED_AT = r.REQUESTED_AT AND o.REQUEST_ID < r.REQUEST_ID))) \
     AND NOT EXISTS (SELECT 1 FROM DMS_PRCREQ o WHERE o.MAPREF = r.MAPREF \
         AND o.STATUS IN ('PROCESSING', 'CLAIMED') AND o.REQUEST_TYPE IN ('IMMEDIATE', 'HISTORY')) \
     AND NOT EXISTS (SELECT 1 FROM DMS_PRCLOG l WHERE l.MAPREF = r.MAPREF AND l.STATUS = 'IP')";

/// The candidates of a control claim (`$1` now, `$3` the claiming node): every waiting
/// type that does not start runs, written as ranges around `HISTORY` and `IMMEDIATE` so
/// that it is a few seeks on the `(STATUS, REQUEST_TYPE)` index, not a scan of every
/// waiting run request. A `STOP` is left to the node that runs its mapref (or holds its
/// run request), and a `REFRESH_SCHEDULE` to the node that holds a valid scheduler
/// lease; either is anyone's when there is no such node.
fn control_candidates() -> String {
    format!(
        "SELECT r.REQUEST_ID FROM DMS_PRCREQ r \
     WHERE r.STATUS IN ('NEW', 'QUEUED') AND (r.NOT_BEFORE IS NULL OR r.NOT_BEFORE <= $1) \
     AND (r.REQUEST_TYPE < 'HISTORY' \
         OR (r.REQUEST_TYPE > 'HISTORY' AND r.REQUEST_TYPE < 'IMMEDIATE') \
         OR r.REQUEST_TYPE > 'IMMEDIATE') \
     AND NOT (r.REQUEST_TYPE = 'STOP' AND (\
         EXISTS (SELECT 1 FROM DMS_PRCLOG l WHERE l.MAPREF = r.MAPREF AND l.STATUS = 'IP' \
             AND l.NODE <> $3) \
         OR EXISTS (SELECT 1 FROM DMS_PRCREQ o WHERE o.MAPREF = r.MAPREF \
             AND o.STATUS IN ('PROCESSING', 'CLAIMED') AND o.REQUEST_TYPE IN ('IMMEDIATE', 'HISTORY') \
             AND o.CLAIMED_BY <> $3))) \
     AND NOT (r.REQUEST_TYPE = 'REFRESH_SCHEDULE' AND EXISTS (SELECT 1 FROM DMS_SCHLEASE s \
         WHERE s.NAME = '{SCHEDULER_LEASE}' AND s.HOLDER <> $3 AND s.LEASE_UNTIL >= DB_NOW()))"
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
    match class {
        dwsched_model::RequestClass::Runs => {
            let ranges: Vec<String> = ["NEW", "QUEUED"]
                .iter()
                .flat_map(|status| {
                    ["IMMEDIATE", "HISTORY"].iter().map(move |kind| {
                        format!(
                            "SELECT * FROM (SELECT r.REQUEST_ID, r.REQUESTED_AT FROM DMS_PRCREQ r \
                             WHERE r.STATUS = '{status}' AND r.REQUEST_TYPE = '{kind}' \
                             AND {RUN_CANDIDATE} ORDER BY r.REQUESTED_AT LIMIT $2 {lock}) w_{status}_{kind}"
                        )
                    })
                })
                .collect();
            format!(
                "SELECT c.REQUEST_ID FROM ({}) c ORDER BY c.REQUESTED_AT, c.REQUEST_ID LIMIT $2",
                ranges.join(" UNION ALL ")
            )
        }
        dwsched_model::RequestClass::Control => {
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

/// A claim as one `UPDATE … RETURNING` (PostgreSQL, SQLite): `$1` is now, `$2` the
/// limit, `$3` the node and `$4` the lease in seconds (from the database's clock).
/// `lock` locks the candidates (`FOR UPDATE … SKIP LOCKED` where the backend has it).
pub fn claim_update_sql(class: dwsched_model::RequestClass, lock: &str) -> String {
    format!(
        "UPDATE DMS_PRCREQ SET STATUS = 'PROCESSING', CLAIMED_AT = $1, CLAIMED_BY = $3, \
         LEASE_UNTIL = DB_NOW_PLUS($4), ATTEMPTS = COALESCE(ATTEMPTS, 0) + 1 \
         WHERE REQUEST_ID IN ({}) RETURNING {REQUEST_COLUMNS}",
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

/// Implements `Store` for a backend type from the shared statements below and the
/// backend's own `migrate_impl`, `schema_version_impl`, `insert_returning_id`,
/// `claim_batch`, `write_run_batch` and `sql` methods.
macro_rules! store_impl {
    ($store:ty, $db:ty) => {
        impl $crate::nodes::Nodes for $store {}
        impl $crate::queue::Queue for $store {}
        impl $crate::schedules::Schedules for $store {}
        impl $crate::jobs::Jobs for $store {}
        impl $crate::connections::Connections for $store {}

        use chrono::{DateTime, NaiveDateTime, Utc};
        use dwsched_model::{
            Claim, Connection, Enqueued, ErrorType, FinishRun, FlowToRun, Job, JobErrorEntry, JobFlow,
            JobLogEntry, Lease, NewRequest, NewRun, NewSchedule, Node, RescueReport, Request,
            RequestStatus, Run, RunFilter, RunStatus, ScheduleResult, ScheduleRow,
            ScheduleState, RunWrite, RunWritten,
        };
        use sqlx::Row as _;

        use $crate::common::{
            RUN_COLUMNS,
        };
        use $crate::{Backend, Context as _, MigrationReport, QueueDepth, Result, Store, StoreError};

        type DbRow = <$db as sqlx::Database>::Row;

        fn utc(value: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
            value.map(|t| t.and_utc())
        }

        fn decode_run(row: &DbRow) -> std::result::Result<Run, sqlx::Error> {
            let status: Option<String> = row.try_get(5)?;
            let mut params: [Option<String>; dwsched_model::PARAM_COUNT] = Default::default();
            for (i, slot) in params.iter_mut().enumerate() {
                *slot = row.try_get(10 + i)?;
            }
            Ok(Run {
                prcid: row.try_get(0)?,
                jobid: row.try_get(1)?,
                jobflwid: row.try_get(2)?,
                started_at: utc(row.try_get(3)?),
                ended_at: utc(row.try_get(4)?),
                status: status.as_deref().and_then(RunStatus::parse),
                msg: row.try_get(6)?,
                prclog: row.try_get(7)?,
                mapref: row.try_get(8)?,
                sessionid: row.try_get(9)?,
                params,
                request_id: row.try_get(20)?,
                node: row.try_get(21)?,
                updated_at: utc(row.try_get(22)?),
            })
        }

        use $crate::driver::decode_all;

        impl $store {
            /// `Store::write_runs` one write after another in one transaction.
            async fn write_runs_each(&self, writes: &[RunWrite]) -> Result<Vec<Result<RunWritten>>> {
                let context = || format!("writing {} run records", writes.len());
                let mut tx = self.begin_write().await.context(context)?;
                let mut outcomes = Vec::with_capacity(writes.len());
                for write in writes {
                    let outcome = match write {
                        RunWrite::Open(run) => self.open_run_in(&mut tx, run).await.map(RunWritten::Opened),
                        RunWrite::Finish(finish) => {
                            self.finish_run_in(&mut tx, finish).await.map(RunWritten::Finished)
                        }
                        RunWrite::Complete(completion) => {
                            $crate::queue::Queue::complete_in(self, &mut tx, completion).await.map(RunWritten::Completed)
                        }
                    };
                    match outcome {
                        // Refusals of one write leave the others be; a database error
                        // rolls the transaction back.
                        Err(err @ (StoreError::ClaimLost { .. } | StoreError::Invalid(_))) => {
                            outcomes.push(Err(err));
                        }
                        Err(err) => return Err(err),
                        Ok(written) => outcomes.push(Ok(written)),
                    }
                }
                tx.commit().await.context(context)?;
                Ok(outcomes)
            }

            /// Opens a run on `conn` (see `Store::open_run`); the caller commits.
            async fn open_run_in(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                run: &NewRun,
            ) -> Result<i64> {
                let context = || format!("opening a run of job '{}'", run.mapref);
                let sql = self.insert_sql(
                    "DMS_PRCLOG",
                    "PRCID",
                    "DMS_PRCLOGSEQ",
                    &[
                        "JOBID", "JOBFLWID", "STRTDT", "STATUS", "PRCLOG", "MAPREF", "SESSIONID",
                        "PARAM1", "PARAM2", "PARAM3", "PARAM4", "PARAM5", "PARAM6", "PARAM7",
                        "PARAM8", "PARAM9", "PARAM10", "RECCRDT", "RECUPDT", "REQUEST_ID", "NODE",
                    ],
                );
                let started = run.started_at.naive_utc();
                let mut query = sqlx::query(sql)
                    .bind(run.jobid)
                    .bind(run.jobflwid)
                    .bind(started)
                    .bind(RunStatus::InProgress.as_str())
                    .bind(&run.prclog)
                    .bind(&run.mapref)
                    .bind(&run.sessionid);
                for param in &run.params {
                    query = query.bind(param);
                }
                let query = query
                    .bind(started)
                    .bind(started)
                    .bind(&run.request_id)
                    .bind(&run.node);
                // The claim and the run: a rescue between the two must not leave this
                // node running a request another node now holds.
                if let (Some(request_id), Some(node)) = (&run.request_id, &run.node) {
                    let held = sqlx::query(self.sql(
                        "UPDATE DMS_PRCREQ SET CLAIMED_BY = CLAIMED_BY WHERE REQUEST_ID = $1 \
                         AND CLAIMED_BY = $2 AND STATUS IN ('PROCESSING', 'CLAIMED')",
                    ))
                    .bind(request_id)
                    .bind(node)
                    .execute(&mut *conn)
                    .await
                    .context(context)?
                    .rows_affected()
                        > 0;
                    if !held {
                        return Err(StoreError::ClaimLost {
                            request_id: request_id.clone(),
                            node: node.clone(),
                        });
                    }
                }
                Self::insert_returning_id(conn, query).await.context(context)
            }


            /// Ends a run on `conn` (see `Store::finish_run`); the caller commits.
            async fn finish_run_in(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                f: &FinishRun,
            ) -> Result<bool> {
                let context = || format!("closing run {} as {}", f.prcid, f.status);
                if f.status == RunStatus::InProgress {
                    return Err(StoreError::Invalid(format!("run {} cannot be closed as IP", f.prcid)));
                }
                let ended = f.ended_at.naive_utc();
                let closed = sqlx::query(self.sql(
                    "UPDATE DMS_PRCLOG SET STATUS = $1, MSG = $2, ENDDT = $3, RECUPDT = $4 \
                     WHERE PRCID = $5 AND STATUS = 'IP'",
                ))
                .bind(f.status.as_str())
                .bind(&f.msg)
                .bind(ended)
                .bind(ended)
                .bind(f.prcid)
                .execute(&mut *conn)
                .await
                .context(context)?
                .rows_affected()
                    > 0;
                let joblogid = self.insert_job_log(conn, &f.log, ended).await.context(context)?;
                for error in &f.errors {
                    self.insert_job_error(conn, error, Some(joblogid)).await.context(context)?;
                }
                Ok(closed)
            }

            async fn insert_job_log(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                e: &JobLogEntry,
                created: NaiveDateTime,
            ) -> std::result::Result<i64, sqlx::Error> {
                let sql = self.insert_sql(
                    "DMS_JOBLOG",
                    "JOBLOGID",
                    "DMS_JOBLOGSEQ",
                    &["PRCDT", "MAPREF", "JOBID", "SRCROWS", "TRGROWS", "ERRROWS", "PRCID", "SESSIONID", "RECCRDT"],
                );
                let query = sqlx::query(sql)
                    .bind(e.prcdt.naive_utc())
                    .bind(&e.mapref)
                    .bind(e.jobid)
                    .bind(e.srcrows)
                    .bind(e.trgrows)
                    .bind(e.errrows)
                    .bind(e.prcid)
                    .bind(&e.sessionid)
                    .bind(created);
                Self::insert_returning_id(conn, query).await
            }

            async fn insert_job_error(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                e: &JobErrorEntry,
                joblogid: Option<i64>,
            ) -> std::result::Result<i64, sqlx::Error> {
                let sql = self.insert_sql(
                    "DMS_JOBERR",
                    "ERRID",
                    "DMS_JOBERRSEQ",
                    &["JOBLOGID", "PRCDT", "ERRTYP", "DBERRMSG", "ERRMSG", "KEYVALUE", "JOBID", "SESSIONID", "PRCID", "MAPREF"],
                );
                let query = sqlx::query(sql)
                    .bind(joblogid)
                    .bind(e.prcdt.naive_utc())
                    .bind(ErrorType::as_str(e.errtyp))
                    .bind(&e.dberrmsg)
                    .bind(&e.errmsg)
                    .bind(&e.keyvalue)
                    .bind(e.jobid)
                    .bind(&e.sessionid)
                    .bind(e.prcid)
                    .bind(&e.mapref);
                Self::insert_returning_id(conn, query).await
            }

            async fn read_version(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
            ) -> Result<Option<i64>> {
                let context = || format!("reading the schema version of {}", self.schema_name());
                let table = $crate::schema::MIGRATIONS_TABLE.name;
                if Self::table_columns(&mut *conn, table).await.context(context)?.is_none() {
                    return Ok(None);
                }
                sqlx::query_scalar(self.sql(&format!("SELECT CAST(MAX(VERSION) AS BIGINT) FROM {table}")))
                    .fetch_one(&mut *conn)
                    .await
                    .context(context)
            }

            async fn migrate_locked(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
            ) -> Result<MigrationReport> {
                use $crate::schema::{self, Step};
                let mut report = MigrationReport {
                    from_version: self.read_version(&mut *conn).await?,
                    to_version: schema::latest_version(),
                    ..MigrationReport::default()
                };
                if let Some(found) = report.from_version.filter(|v| *v > report.to_version) {
                    return Err(StoreError::TooNew { found, known: report.to_version });
                }
                self.ensure_table(&mut *conn, &schema::MIGRATIONS_TABLE, &mut report).await?;
                let applied = report.from_version.unwrap_or(0);
                for migration in schema::MIGRATIONS.iter().filter(|m| m.version > applied) {
                    for step in schema::steps(migration.version) {
                        match step {
                            Step::EnsureTable(table) => {
                                self.ensure_table(&mut *conn, table, &mut report).await?
                            }
                            Step::Notify => Self::install_notify(&mut *conn)
                                .await
                                .context(|| "installing the request trigger".to_string())?,
                            Step::ScheduleTriggers => {
                                let context = || "installing the schedule change triggers".to_string();
                                for sql in schema::schedule_change_triggers(<$store as $crate::driver::Driver>::BACKEND, &self.schema_name()) {
                                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                                        .execute(&mut *conn)
                                        .await
                                        .context(context)?;
                                }
                            }
                            Step::EnsureIndex(index) => {
                                let context = || format!("creating index {}", index.name);
                                if !Self::index_exists(&mut *conn, index.name).await.context(context)? {
                                    sqlx::raw_sql(sqlx::AssertSqlSafe(index.create_sql(<$store as $crate::driver::Driver>::BACKEND)))
                                        .execute(&mut *conn)
                                        .await
                                        .context(context)?;
                                    report.indexes_created.push(index.name.to_string());
                                }
                            }
                        }
                    }
                    sqlx::query(self.sql(&format!(
                        "INSERT INTO {} (VERSION, DESCRIPTION, APPLIED_AT) VALUES ($1, $2, $3)",
                        schema::MIGRATIONS_TABLE.name
                    )))
                    .bind(migration.version)
                    .bind(migration.description)
                    .bind(Utc::now().naive_utc())
                    .execute(&mut *conn)
                    .await
                    .context(|| format!("recording schema version {}", migration.version))?;
                }
                Ok(report)
            }

            /// Creates a missing table whole, or adds the columns an existing one lacks.
            async fn ensure_table(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                table: &$crate::schema::Table,
                report: &mut MigrationReport,
            ) -> Result<()> {
                let context = || format!("creating or upgrading table {}", table.name);
                Self::prepare_table(&mut *conn, table).await.context(context)?;
                let backend = <$store as $crate::driver::Driver>::BACKEND;
                match Self::table_columns(&mut *conn, table.name).await.context(context)? {
                    None => {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(table.create_sql(backend)))
                            .execute(&mut *conn)
                            .await
                            .context(context)?;
                        report.tables_created.push(table.name.to_string());
                    }
                    Some(existing) => {
                        for column in table.columns {
                            if existing.iter().any(|c| c.eq_ignore_ascii_case(column.name)) {
                                continue;
                            }
                            let ddl = $crate::schema::added_column_sql(table, column, backend);
                            sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                                .execute(&mut *conn)
                                .await
                                .context(context)?;
                            report.columns_added.push(format!("{}.{}", table.name, column.name));
                        }
                    }
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                <$store as $crate::driver::Driver>::BACKEND
            }

            async fn migrate(&self) -> Result<MigrationReport> {
                let context = || format!("migrating the {} schema", self.schema_name());
                let mut conn = self.pool.acquire().await.context(context)?;
                // Several nodes may start at once; one migrates, the others wait and
                // then find nothing to do.
                Self::lock_for_migration(&mut conn, &self.schema_name()).await.context(context)?;
                let result = self.migrate_locked(&mut conn).await;
                let unlocked = Self::unlock_after_migration(&mut conn, &self.schema_name()).await;
                let report = result?;
                unlocked.context(context)?;
                Ok(report)
            }

            async fn schema_version(&self) -> Result<Option<i64>> {
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .context(|| "reading the schema version".to_string())?;
                self.read_version(&mut conn).await
            }

            async fn check_schema(&self) -> Result<()> {
                let needed = $crate::schema::latest_version();
                match self.schema_version().await? {
                    Some(found) if found == needed => Ok(()),
                    Some(found) if found > needed => Err(StoreError::TooNew { found, known: needed }),
                    found => Err(StoreError::NotInitialised {
                        schema: self.schema_name(),
                        found,
                        needed,
                    }),
                }
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

            async fn retire_job(&self, mapref: &str, now: DateTime<Utc>) -> Result<bool> {
                $crate::jobs::Jobs::retire_job(self, mapref, now).await
            }

            async fn insert_schedule(&self, s: &NewSchedule, now: DateTime<Utc>) -> Result<i64> {
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

            async fn scheduled_changes(&self, since: Option<DateTime<Utc>>, ids: &[i64]) -> Result<Vec<ScheduleRow>> {
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
                $crate::schedules::Schedules::set_schedule_enabled(self, jobschid, enabled, now).await
            }

            async fn retire_schedule(&self, jobschid: i64, now: DateTime<Utc>) -> Result<bool> {
                $crate::schedules::Schedules::retire_schedule(self, jobschid, now).await
            }

            async fn set_schedule_state(
                &self,
                jobschid: i64,
                next_fire: Option<DateTime<Utc>>,
                scherr: Option<&str>,
            ) -> Result<bool> {
                $crate::schedules::Schedules::set_schedule_state(self, jobschid, next_fire, scherr).await
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

            async fn complete_request(
                &self,
                request_id: &str,
                claimed_by: Option<&str>,
                status: RequestStatus,
                result_payload: &str,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                $crate::queue::Queue::complete_request(self, request_id, claimed_by, status, result_payload, now).await
            }

            async fn cancel_request(
                &self,
                request_id: &str,
                result_payload: &str,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                $crate::queue::Queue::cancel_request(self, request_id, result_payload, now).await
            }

            async fn queue_depth(&self) -> Result<QueueDepth> {
                $crate::queue::Queue::queue_depth(self).await
            }

            async fn live_counts(&self) -> Result<crate::LiveCounts> {
                $crate::queue::Queue::live_counts(self).await
            }

            async fn write_runs(&self, writes: &[RunWrite]) -> Result<Vec<Result<RunWritten>>> {
                if writes.is_empty() {
                    return Ok(Vec::new());
                }
                self.write_run_batch(writes).await
            }

            async fn heartbeat_run(&self, prcid: i64, now: DateTime<Utc>) -> Result<bool> {
                let done = sqlx::query(self.sql(
                    "UPDATE DMS_PRCLOG SET RECUPDT = $1 WHERE PRCID = $2 AND STATUS = 'IP'",
                ))
                .bind(now.naive_utc())
                .bind(prcid)
                .execute(&self.pool)
                .await
                .context(|| format!("heartbeat of run {prcid}"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn get_run(&self, prcid: i64) -> Result<Option<Run>> {
                let context = || format!("reading run {prcid}");
                let row = sqlx::query(self.sql(&format!(
                    "SELECT {RUN_COLUMNS} FROM DMS_PRCLOG WHERE PRCID = $1"
                )))
                .bind(prcid)
                .fetch_optional(&self.pool)
                .await
                .context(context)?;
                row.as_ref().map(decode_run).transpose().context(context)
            }

            async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
                let rows = sqlx::query(self.sql(&format!(
                    "SELECT {RUN_COLUMNS} FROM DMS_PRCLOG \
                     WHERE ($1 IS NULL OR MAPREF = $2) AND ($3 IS NULL OR STATUS = $4) \
                     AND ($5 IS NULL OR REQUEST_ID = $6) \
                     ORDER BY PRCID DESC LIMIT $7"
                )))
                .bind(&filter.mapref)
                .bind(&filter.mapref)
                .bind(filter.status.map(RunStatus::as_str))
                .bind(filter.status.map(RunStatus::as_str))
                .bind(&filter.request_id)
                .bind(&filter.request_id)
                .bind(i64::from(filter.limit.max(1)))
                .fetch_all(&self.pool)
                .await
                .context(|| "listing runs".to_string())?;
                decode_all(rows, decode_run).context(|| "reading runs".to_string())
            }

            async fn put_connection(&self, c: &Connection) -> Result<i64> {
                $crate::connections::Connections::put_connection(self, c).await
            }

            async fn list_connections(&self) -> Result<Vec<Connection>> {
                $crate::connections::Connections::list_connections(self).await
            }

            async fn get_connection(&self, name: &str) -> Result<Option<Connection>> {
                $crate::connections::Connections::get_connection(self, name).await
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
                $crate::schedules::Schedules::record_schedule_result(self, jobschid, finished_at, succeeded).await
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
                $crate::queue::Queue::release_request(self, request_id, claimed_by, not_before).await
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

            async fn heartbeat_node(&self, node_id: &str, lease: std::time::Duration) -> Result<bool> {
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
                let context = || format!("rescuing the work of node {node_id}");
                let mut tx = self.begin_write().await.context(context)?;
                let mut report = RescueReport::default();
                // The node's row goes first, and only while it is still stale by the
                // database's clock: a node that heartbeated meanwhile keeps its work,
                // and of two rescuers only one finds the row.
                let delete = sqlx::query(self.sql(match stale_after {
                    Some(_) => "DELETE FROM DMS_SCHNODE WHERE NODE_ID = $1 \
                                AND (HEARTBEAT_AT IS NULL OR HEARTBEAT_AT < DB_NOW_PLUS($2))",
                    None => "DELETE FROM DMS_SCHNODE WHERE NODE_ID = $1",
                }))
                .bind(node_id);
                let delete = match stale_after {
                    Some(lease) => delete.bind(-lease.as_secs_f64()),
                    None => delete,
                };
                let removed = delete.execute(&mut *tx).await.context(context)?.rows_affected();
                if removed == 0 && stale_after.is_some() {
                    tx.rollback().await.context(context)?;
                    return Ok(report);
                }
                let open_runs = sqlx::query(self.sql(
                    "SELECT CAST(PRCID AS BIGINT), CAST(JOBID AS BIGINT), MAPREF, CAST(SESSIONID AS VARCHAR) \
                     FROM DMS_PRCLOG WHERE STATUS = 'IP' AND NODE = $1 ORDER BY PRCID",
                ))
                .bind(node_id)
                .fetch_all(&mut *tx)
                .await
                .context(context)?;
                sqlx::query(self.sql(
                    "UPDATE DMS_PRCLOG SET STATUS = 'FL', MSG = $1, ENDDT = DB_NOW(), RECUPDT = DB_NOW() \
                     WHERE STATUS = 'IP' AND NODE = $2",
                ))
                .bind(msg)
                .bind(node_id)
                .execute(&mut *tx)
                .await
                .context(context)?;
                // Each closed run gets its totals row and its cause, as a run that ends
                // on its node does, so that DWTOOL's run log shows it with the reason.
                let now = Utc::now();
                for row in &open_runs {
                    let prcid: i64 = row.try_get(0).context(context)?;
                    let log = JobLogEntry {
                        prcdt: now,
                        mapref: row.try_get::<Option<String>, _>(2).context(context)?.unwrap_or_default(),
                        jobid: row.try_get(1).context(context)?,
                        srcrows: 0,
                        trgrows: 0,
                        errrows: 0,
                        prcid: Some(prcid),
                        sessionid: row
                            .try_get::<Option<String>, _>(3)
                            .context(context)?
                            .and_then(|s| s.parse().ok()),
                    };
                    let joblogid = self.insert_job_log(&mut *tx, &log, now.naive_utc()).await.context(context)?;
                    let error = JobErrorEntry {
                        joblogid: Some(joblogid),
                        prcdt: now,
                        errtyp: ErrorType::Job,
                        dberrmsg: None,
                        errmsg: msg.to_string(),
                        keyvalue: None,
                        jobid: log.jobid,
                        sessionid: log.sessionid,
                        prcid: log.prcid,
                        mapref: log.mapref.clone(),
                    };
                    self.insert_job_error(&mut *tx, &error, Some(joblogid)).await.context(context)?;
                    report.runs_closed.push(prcid);
                }
                let held = sqlx::query(self.sql(
                    "SELECT REQUEST_ID, CAST(COALESCE(ATTEMPTS, 0) AS BIGINT) FROM DMS_PRCREQ \
                     WHERE CLAIMED_BY = $1 AND STATUS IN ('PROCESSING', 'CLAIMED') ORDER BY REQUESTED_AT",
                ))
                .bind(node_id)
                .fetch_all(&mut *tx)
                .await
                .context(context)?;
                for row in held {
                    let request_id: String = row.try_get(0).context(context)?;
                    let attempts: i64 = row.try_get(1).context(context)?;
                    if attempts >= max_attempts {
                        let result = serde_json::json!({
                            "status": "FAILED",
                            "error": format!("{msg}; the request had {attempts} attempts and is not retried again"),
                        })
                        .to_string();
                        sqlx::query(self.sql(
                            "UPDATE DMS_PRCREQ SET STATUS = 'FAILED', RESULT_PAYLOAD = $1, COMPLETED_AT = DB_NOW(), \
                             LEASE_UNTIL = NULL WHERE REQUEST_ID = $2",
                        ))
                        .bind(result)
                        .bind(&request_id)
                        .execute(&mut *tx)
                        .await
                        .context(context)?;
                        report.requests_failed.push(request_id);
                    } else {
                        sqlx::query(self.sql(
                            "UPDATE DMS_PRCREQ SET STATUS = 'NEW', CLAIMED_AT = NULL, CLAIMED_BY = NULL, \
                             LEASE_UNTIL = NULL WHERE REQUEST_ID = $1",
                        ))
                        .bind(&request_id)
                        .execute(&mut *tx)
                        .await
                        .context(context)?;
                        report.requests_requeued.push(request_id);
                    }
                }
                tx.commit().await.context(context)?;
                Ok(report)
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
            async fn get_job(&self, mapref: &str) -> Result<Option<Job>> {
                Ok(self
                    .list_jobs()
                    .await?
                    .into_iter()
                    .find(|job| job.mapref == mapref))
            }

            async fn list_requests(
                &self,
                status: Option<RequestStatus>,
                limit: u32,
            ) -> Result<Vec<Request>> {
                $crate::queue::Queue::list_requests(self, status, limit).await
            }

            async fn open_run(&self, run: &NewRun) -> Result<i64> {
                let context = || format!("opening a run of job '{}'", run.mapref);
                let mut tx = self.begin_write().await.context(context)?;
                let prcid = self.open_run_in(&mut tx, run).await?;
                tx.commit().await.context(context)?;
                Ok(prcid)
            }

            async fn close_run(
                &self,
                prcid: i64,
                status: RunStatus,
                msg: Option<&str>,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                if status == RunStatus::InProgress {
                    return Err(StoreError::Invalid(format!(
                        "run {prcid} cannot be closed as IP"
                    )));
                }
                let done = sqlx::query(self.sql(
                    "UPDATE DMS_PRCLOG SET STATUS = $1, MSG = $2, ENDDT = $3, RECUPDT = $4 \
                     WHERE PRCID = $5 AND STATUS = 'IP'",
                ))
                .bind(status.as_str())
                .bind(msg)
                .bind(now.naive_utc())
                .bind(now.naive_utc())
                .bind(prcid)
                .execute(&self.pool)
                .await
                .context(|| format!("closing run {prcid} as {status}"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn finish_run(&self, f: &FinishRun) -> Result<bool> {
                let context = || format!("closing run {} as {}", f.prcid, f.status);
                let mut tx = self.begin_write().await.context(context)?;
                let closed = self.finish_run_in(&mut tx, f).await?;
                tx.commit().await.context(context)?;
                Ok(closed)
            }

            async fn write_job_log(&self, e: &JobLogEntry) -> Result<i64> {
                let context = || format!("writing the job log of job '{}'", e.mapref);
                let mut conn = self.pool.acquire().await.context(context)?;
                self.insert_job_log(&mut conn, e, Utc::now().naive_utc()).await.context(context)
            }

            async fn job_log_for_run(&self, prcid: i64) -> Result<Option<JobLogEntry>> {
                let context = || format!("reading the job log of run {prcid}");
                let row = sqlx::query(self.sql(
                    "SELECT PRCDT, MAPREF, CAST(JOBID AS BIGINT), CAST(SRCROWS AS BIGINT), \
                     CAST(TRGROWS AS BIGINT), CAST(ERRROWS AS BIGINT), CAST(PRCID AS BIGINT), \
                     CAST(SESSIONID AS VARCHAR) \
                     FROM DMS_JOBLOG WHERE PRCID = $1 ORDER BY JOBLOGID DESC",
                ))
                .bind(prcid)
                .fetch_optional(&self.pool)
                .await
                .context(context)?;
                let Some(row) = row else { return Ok(None) };
                (|| -> std::result::Result<_, sqlx::Error> {
                    Ok(Some(JobLogEntry {
                        prcdt: utc(row.try_get(0)?).unwrap_or_default(),
                        mapref: row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                        jobid: row.try_get(2)?,
                        srcrows: row.try_get::<Option<i64>, _>(3)?.unwrap_or(0),
                        trgrows: row.try_get::<Option<i64>, _>(4)?.unwrap_or(0),
                        errrows: row.try_get::<Option<i64>, _>(5)?.unwrap_or(0),
                        prcid: row.try_get(6)?,
                        // Read as text: rows of older releases hold a node id there.
                        sessionid: row
                            .try_get::<Option<String>, _>(7)?
                            .and_then(|s| s.parse().ok()),
                    }))
                })()
                .context(context)
            }

            async fn write_job_error(&self, e: &JobErrorEntry) -> Result<i64> {
                let context = || format!("writing a {} error of job '{}'", e.errtyp.as_str(), e.mapref);
                let mut conn = self.pool.acquire().await.context(context)?;
                self.insert_job_error(&mut conn, e, e.joblogid).await.context(context)
            }

            async fn job_errors_for_run(&self, prcid: i64) -> Result<Vec<dwsched_model::JobError>> {
                let context = || format!("reading the errors of run {prcid}");
                let rows = sqlx::query(self.sql(
                    "SELECT CAST(ERRID AS BIGINT), CAST(JOBLOGID AS BIGINT), ERRTYP, DBERRMSG, ERRMSG, \
                     KEYVALUE, CAST(PRCID AS BIGINT), MAPREF FROM DMS_JOBERR WHERE PRCID = $1 ORDER BY ERRID",
                ))
                .bind(prcid)
                .fetch_all(&self.pool)
                .await
                .context(context)?;
                rows.iter()
                    .map(|row| {
                        Ok(dwsched_model::JobError {
                            errid: row.try_get(0)?,
                            joblogid: row.try_get(1)?,
                            errtyp: row.try_get(2)?,
                            dberrmsg: row.try_get(3)?,
                            errmsg: row.try_get(4)?,
                            keyvalue: row.try_get(5)?,
                            prcid: row.try_get(6)?,
                            mapref: row.try_get(7)?,
                        })
                    })
                    .collect::<std::result::Result<_, sqlx::Error>>()
                    .context(context)
            }
        }
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
        // Four ranges of the queue, each due at `$1` (twice) and limited by `$2`,
        // then the overall limit.
        let order = to_positional(&runs).1;
        assert_eq!(order.iter().filter(|&&p| p == 1).count(), 8);
        assert_eq!(order.iter().filter(|&&p| p == 2).count(), 5);
        assert_eq!(order.len(), 13);
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
