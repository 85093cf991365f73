//! Runs and their logs (`DMS_PRCLOG`, `DMS_JOBLOG`, `DMS_JOBERR`): opened only while their request is held, closed with their totals and errors in one transaction, and closed by the rescue of a dead node.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use dwsched_model::{
    ErrorType, FinishRun, JobErrorEntry, JobLogEntry, NewRun, RescueReport, Run, RunFilter,
    RunStatus, RunWrite, RunWritten, StepRecord, StepStatus,
};
use sqlx::{Database, Decode, Encode, Executor, Row as _, Type};

use crate::StoreError;
use crate::common::RUN_COLUMNS;
use crate::driver::{Affected, Conn, Driver, decode_all, utc};
use crate::{Context as _, Result};
use dwsched_model::FOREGROUND_KEY_PREFIX;

/// The shared statements of this topic, for every backend.
pub(crate) trait Runs: Driver + crate::queue::Queue
where
    for<'c> &'c mut Conn<Self>: Executor<'c, Database = Self::Db>,
    for<'p> &'p sqlx::Pool<Self::Db>: Executor<'p, Database = Self::Db>,
    usize: sqlx::ColumnIndex<<Self::Db as Database>::Row>,
    <Self::Db as Database>::Arguments: sqlx::IntoArguments<Self::Db>,
    <Self::Db as Database>::QueryResult: Affected,
    for<'q> &'q str: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> String: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<String>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<&'q str>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> i64: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<i64>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> f64: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> NaiveDateTime: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<NaiveDateTime>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<NaiveDate>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'r> String: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<String>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> i64: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<i64>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<NaiveDateTime>: Decode<'r, Self::Db> + Type<Self::Db>,
{
    fn decode_run(row: &<Self::Db as Database>::Row) -> sqlx::Result<Run> {
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
            run_date: row
                .try_get::<Option<String>, _>(23)?
                .and_then(|text| text.get(..10).and_then(|d| d.parse().ok())),
        })
    }

    fn decode_step(row: &<Self::Db as Database>::Row) -> sqlx::Result<StepRecord> {
        let status: Option<String> = row.try_get(3)?;
        Ok(StepRecord {
            prcid: row.try_get(0)?,
            step: row.try_get(1)?,
            attempt: row.try_get(2)?,
            status: status
                .as_deref()
                .and_then(StepStatus::parse)
                .unwrap_or(StepStatus::InProgress),
            started_at: utc(row.try_get(4)?),
            ended_at: utc(row.try_get(5)?),
            srcrows: row.try_get(6)?,
            trgrows: row.try_get(7)?,
            errrows: row.try_get(8)?,
            msg: row.try_get(9)?,
        })
    }

    /// Writes a step attempt's row on `conn`: inserts its first record, updates it with
    /// a later one. (Only rows that exist are touched again: InnoDB takes gap locks for
    /// a delete or update of a key that is not there, and concurrent runs' inserts into
    /// that gap then deadlock.)
    async fn write_step_in(
        &self,
        conn: &mut Conn<Self>,
        step: &StepRecord,
        new: bool,
    ) -> Result<()> {
        let context = || {
            format!(
                "recording step '{}' of run {} (attempt {})",
                step.step, step.prcid, step.attempt
            )
        };
        let sql = if new {
            "INSERT INTO DMS_PRCSTEP (STATUS, STRTDT, ENDDT, SRCROWS, TRGROWS, ERRROWS, MSG, \
             PRCID, STEP, ATTEMPT) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        } else {
            "UPDATE DMS_PRCSTEP SET STATUS = $1, STRTDT = $2, ENDDT = $3, SRCROWS = $4, \
             TRGROWS = $5, ERRROWS = $6, MSG = $7 WHERE PRCID = $8 AND STEP = $9 AND ATTEMPT = $10"
        };
        sqlx::query(self.sql(sql))
            .bind(step.status.as_str())
            .bind(step.started_at.map(|t| t.naive_utc()))
            .bind(step.ended_at.map(|t| t.naive_utc()))
            .bind(step.srcrows)
            .bind(step.trgrows)
            .bind(step.errrows)
            .bind(&step.msg)
            .bind(step.prcid)
            .bind(&step.step)
            .bind(step.attempt)
            .execute(&mut *conn)
            .await
            .context(context)?;
        Ok(())
    }

    /// `Store::run_steps`.
    async fn steps_of_run(&self, prcid: i64) -> Result<Vec<StepRecord>> {
        let context = || format!("reading the steps of run {prcid}");
        let rows = sqlx::query(self.sql(
            "SELECT CAST(PRCID AS BIGINT), STEP, CAST(ATTEMPT AS BIGINT), STATUS, STRTDT, ENDDT, \
             CAST(SRCROWS AS BIGINT), CAST(TRGROWS AS BIGINT), CAST(ERRROWS AS BIGINT), MSG \
             FROM DMS_PRCSTEP WHERE PRCID = $1 ORDER BY STRTDT, ATTEMPT, STEP",
        ))
        .bind(prcid)
        .fetch_all(self.pool())
        .await
        .context(context)?;
        decode_all(rows, Self::decode_step).context(context)
    }

    /// `Store::write_runs` one write after another in one transaction.
    async fn write_runs_each(&self, writes: &[RunWrite]) -> Result<Vec<Result<RunWritten>>> {
        let context = || format!("writing {} run records", writes.len());
        let mut tx = self.begin_write().await.context(context)?;
        let mut outcomes = Vec::with_capacity(writes.len());
        for write in writes {
            let outcome = match write {
                RunWrite::Open(run) => self.open_run_in(&mut tx, run).await.map(RunWritten::Opened),
                RunWrite::Step { record, new } => self
                    .write_step_in(&mut tx, record, *new)
                    .await
                    .map(|()| RunWritten::Step),
                RunWrite::Finish(finish) => self
                    .finish_run_in(&mut tx, finish)
                    .await
                    .map(RunWritten::Finished),
                RunWrite::Complete(completion) => {
                    crate::queue::Queue::complete_in(self, &mut tx, completion)
                        .await
                        .map(RunWritten::Completed)
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
    async fn open_run_in(&self, conn: &mut Conn<Self>, run: &NewRun) -> Result<i64> {
        let context = || format!("opening a run of job '{}'", run.mapref);
        let sql = self.insert_sql(
            "DMS_PRCLOG",
            "PRCID",
            "DMS_PRCLOGSEQ",
            &[
                "JOBID",
                "JOBFLWID",
                "STRTDT",
                "STATUS",
                "PRCLOG",
                "MAPREF",
                "SESSIONID",
                "PARAM1",
                "PARAM2",
                "PARAM3",
                "PARAM4",
                "PARAM5",
                "PARAM6",
                "PARAM7",
                "PARAM8",
                "PARAM9",
                "PARAM10",
                "RECCRDT",
                "RECUPDT",
                "REQUEST_ID",
                "NODE",
                "RUN_DATE",
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
            .bind(run.sessionid);
        for param in &run.params {
            query = query.bind(param);
        }
        let query = query
            .bind(started)
            .bind(started)
            .bind(&run.request_id)
            .bind(&run.node)
            .bind(run.run_date);
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
            .affected()
                > 0;
            if !held {
                return Err(StoreError::ClaimLost {
                    request_id: request_id.clone(),
                    node: node.clone(),
                });
            }
            // A retry after the reply to a commit was lost (the server restarted
            // meanwhile) finds the run the first attempt opened, instead of leaving
            // it in progress with nobody to end it.
            let opened: Option<i64> = sqlx::query_scalar(self.sql(
                "SELECT CAST(PRCID AS BIGINT) FROM DMS_PRCLOG WHERE MAPREF = $1 \
                 AND STATUS = 'IP' AND REQUEST_ID = $2 AND NODE = $3 AND RUN_DATE = $4",
            ))
            .bind(&run.mapref)
            .bind(request_id)
            .bind(node)
            .bind(run.run_date)
            .fetch_optional(&mut *conn)
            .await
            .context(context)?;
            if let Some(prcid) = opened {
                return Ok(prcid);
            }
        }
        Self::insert_returning_id(conn, query)
            .await
            .context(context)
    }

    /// Ends a run on `conn` (see `Store::finish_run`); the caller commits.
    async fn finish_run_in(&self, conn: &mut Conn<Self>, f: &FinishRun) -> Result<bool> {
        let context = || format!("closing run {} as {}", f.prcid, f.status);
        if f.status == RunStatus::InProgress {
            return Err(StoreError::Invalid(format!(
                "run {} cannot be closed as IP",
                f.prcid
            )));
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
        .affected()
            > 0;
        // A retry of an end whose commit went through while its answer was lost finds
        // the run closed by this very end: its log and errors are written already.
        if !closed {
            let applied: Option<i64> = sqlx::query_scalar(self.sql(
                "SELECT CAST(PRCID AS BIGINT) FROM DMS_PRCLOG \
                 WHERE PRCID = $1 AND STATUS = $2 AND ENDDT = $3",
            ))
            .bind(f.prcid)
            .bind(f.status.as_str())
            .bind(ended)
            .fetch_optional(&mut *conn)
            .await
            .context(context)?;
            if applied.is_some() {
                return Ok(false);
            }
        }
        let updated = match f.joblogid {
            Some(id) => self
                .update_job_log(conn, id, &f.log)
                .await
                .context(context)?
                .then_some(id),
            None => None,
        };
        let joblogid = match updated {
            Some(id) => id,
            None => self
                .insert_job_log(conn, &f.log, ended)
                .await
                .context(context)?,
        };
        for error in &f.errors {
            self.insert_job_error(conn, error, Some(joblogid))
                .await
                .context(context)?;
        }
        Ok(closed)
    }

    /// Sets the counts of `DMS_JOBLOG` row `joblogid`; whether it exists.
    async fn update_job_log(
        &self,
        conn: &mut Conn<Self>,
        joblogid: i64,
        e: &JobLogEntry,
    ) -> std::result::Result<bool, sqlx::Error> {
        let done = sqlx::query(self.sql(
            "UPDATE DMS_JOBLOG SET PRCDT = $1, SRCROWS = $2, TRGROWS = $3, ERRROWS = $4 \
             WHERE JOBLOGID = $5",
        ))
        .bind(e.prcdt.naive_utc())
        .bind(e.srcrows)
        .bind(e.trgrows)
        .bind(e.errrows)
        .bind(joblogid)
        .execute(&mut *conn)
        .await?;
        Ok(done.affected() > 0)
    }

    /// `Store::write_job_log_progress`.
    async fn job_log_progress(&self, e: &JobLogEntry, joblogid: Option<i64>) -> Result<i64> {
        let context = || {
            format!(
                "writing the progress of run {:?} of '{}'",
                e.prcid, e.mapref
            )
        };
        let mut conn = self.pool().acquire().await.context(context)?;
        if let Some(id) = joblogid
            && self
                .update_job_log(&mut conn, id, e)
                .await
                .context(context)?
        {
            return Ok(id);
        }
        self.insert_job_log(&mut conn, e, Utc::now().naive_utc())
            .await
            .context(context)
    }

    async fn insert_job_log(
        &self,
        conn: &mut Conn<Self>,
        e: &JobLogEntry,
        created: NaiveDateTime,
    ) -> std::result::Result<i64, sqlx::Error> {
        let sql = self.insert_sql(
            "DMS_JOBLOG",
            "JOBLOGID",
            "DMS_JOBLOGSEQ",
            &[
                "PRCDT",
                "MAPREF",
                "JOBID",
                "SRCROWS",
                "TRGROWS",
                "ERRROWS",
                "PRCID",
                "SESSIONID",
                "RECCRDT",
            ],
        );
        let query = sqlx::query(sql)
            .bind(e.prcdt.naive_utc())
            .bind(&e.mapref)
            .bind(e.jobid)
            .bind(e.srcrows)
            .bind(e.trgrows)
            .bind(e.errrows)
            .bind(e.prcid)
            .bind(e.sessionid)
            .bind(created);
        Self::insert_returning_id(conn, query).await
    }

    async fn insert_job_error(
        &self,
        conn: &mut Conn<Self>,
        e: &JobErrorEntry,
        joblogid: Option<i64>,
    ) -> std::result::Result<i64, sqlx::Error> {
        let sql = self.insert_sql(
            "DMS_JOBERR",
            "ERRID",
            "DMS_JOBERRSEQ",
            &[
                "JOBLOGID",
                "PRCDT",
                "ERRTYP",
                "DBERRMSG",
                "ERRMSG",
                "KEYVALUE",
                "JOBID",
                "SESSIONID",
                "PRCID",
                "MAPREF",
            ],
        );
        let query = sqlx::query(sql)
            .bind(joblogid)
            .bind(e.prcdt.naive_utc())
            .bind(ErrorType::as_str(e.errtyp))
            .bind(&e.dberrmsg)
            .bind(&e.errmsg)
            .bind(&e.keyvalue)
            .bind(e.jobid)
            .bind(e.sessionid)
            .bind(e.prcid)
            .bind(&e.mapref);
        Self::insert_returning_id(conn, query).await
    }

    async fn write_runs(&self, writes: &[RunWrite]) -> Result<Vec<Result<RunWritten>>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        self.write_run_batch(writes).await
    }

    async fn heartbeat_run(&self, prcid: i64, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            self.sql("UPDATE DMS_PRCLOG SET RECUPDT = $1 WHERE PRCID = $2 AND STATUS = 'IP'"),
        )
        .bind(now.naive_utc())
        .bind(prcid)
        .execute(self.pool())
        .await
        .context(|| format!("heartbeat of run {prcid}"))?;
        Ok(done.affected() > 0)
    }

    async fn get_run(&self, prcid: i64) -> Result<Option<Run>> {
        let context = || format!("reading run {prcid}");
        let row = sqlx::query(self.sql(&format!(
            "SELECT {RUN_COLUMNS} FROM DMS_PRCLOG WHERE PRCID = $1"
        )))
        .bind(prcid)
        .fetch_optional(self.pool())
        .await
        .context(context)?;
        row.as_ref()
            .map(Self::decode_run)
            .transpose()
            .context(context)
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {RUN_COLUMNS} FROM DMS_PRCLOG \
             WHERE ($1 IS NULL OR MAPREF = $2) AND ($3 IS NULL OR STATUS = $4) \
             AND ($5 IS NULL OR REQUEST_ID = $6) AND ($7 IS NULL OR STRTDT >= $8) \
             ORDER BY PRCID DESC LIMIT $9"
        )))
        .bind(&filter.mapref)
        .bind(&filter.mapref)
        .bind(filter.status.map(RunStatus::as_str))
        .bind(filter.status.map(RunStatus::as_str))
        .bind(&filter.request_id)
        .bind(&filter.request_id)
        .bind(filter.since.map(|t| t.naive_utc()))
        .bind(filter.since.map(|t| t.naive_utc()))
        .bind(i64::from(filter.limit.max(1)))
        .fetch_all(self.pool())
        .await
        .context(|| "listing runs".to_string())?;
        decode_all(rows, Self::decode_run).context(|| "reading runs".to_string())
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
        let delete = sqlx::query(self.sql(&match stale_after {
            Some(_) => format!(
                "DELETE FROM DMS_SCHNODE WHERE NODE_ID = $1 AND {}",
                crate::common::node_is_stale(2)
            ),
            None => "DELETE FROM DMS_SCHNODE WHERE NODE_ID = $1".to_string(),
        }))
        .bind(node_id);
        let delete = match stale_after {
            Some(lease) => delete.bind(-lease.as_secs_f64()),
            None => delete,
        };
        let removed = delete.execute(&mut *tx).await.context(context)?.affected();
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
        // Their steps in progress end with them.
        sqlx::query(self.sql(
            "UPDATE DMS_PRCSTEP SET STATUS = 'FL', MSG = $1, ENDDT = DB_NOW() \
             WHERE STATUS = 'IP' AND PRCID IN (SELECT PRCID FROM DMS_PRCLOG \
             WHERE STATUS = 'IP' AND NODE = $2)",
        ))
        .bind(msg)
        .bind(node_id)
        .execute(&mut *tx)
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
                mapref: row
                    .try_get::<Option<String>, _>(2)
                    .context(context)?
                    .unwrap_or_default(),
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
            // A run whose counts were kept current already has its row; it gets no second.
            let existing: Option<i64> = sqlx::query_scalar(
                self.sql("SELECT CAST(MAX(JOBLOGID) AS BIGINT) FROM DMS_JOBLOG WHERE PRCID = $1"),
            )
            .bind(prcid)
            .fetch_one(&mut *tx)
            .await
            .context(context)?;
            let joblogid = match existing {
                Some(id) => id,
                None => self
                    .insert_job_log(&mut *tx, &log, now.naive_utc())
                    .await
                    .context(context)?,
            };
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
            self.insert_job_error(&mut *tx, &error, Some(joblogid))
                .await
                .context(context)?;
            report.runs_closed.push(prcid);
        }
        // The requests of a `dwsched job run` that ended are not run again without it:
        // waiting ones are cancelled, and a held one fails below.
        let gone = serde_json::json!({
            "status": "CANCELLED",
            "message": format!("{msg}; the `dwsched job run` that asked for it has ended"),
        })
        .to_string();
        sqlx::query(self.sql(&format!(
            "UPDATE DMS_PRCREQ SET STATUS = 'CANCELLED', RESULT_PAYLOAD = $1, \
             COMPLETED_AT = DB_NOW() WHERE CLAIMED_BY = $2 AND STATUS IN ('NEW', 'QUEUED') \
             AND DEDUPE_KEY LIKE '{FOREGROUND_KEY_PREFIX}%'"
        )))
        .bind(&gone)
        .bind(node_id)
        .execute(&mut *tx)
        .await
        .context(context)?;
        let held = sqlx::query(self.sql(&format!(
            "SELECT REQUEST_ID, CAST(COALESCE(ATTEMPTS, 0) AS BIGINT), \
             CAST(CASE WHEN DEDUPE_KEY LIKE '{FOREGROUND_KEY_PREFIX}%' THEN 1 ELSE 0 END AS BIGINT) \
             FROM DMS_PRCREQ \
             WHERE CLAIMED_BY = $1 AND STATUS IN ('PROCESSING', 'CLAIMED') ORDER BY REQUESTED_AT"
        )))
        .bind(node_id)
        .fetch_all(&mut *tx)
        .await
        .context(context)?;
        for row in held {
            let request_id: String = row.try_get(0).context(context)?;
            let attempts: i64 = row.try_get(1).context(context)?;
            let foreground = row.try_get::<i64, _>(2).context(context)? == 1;
            if foreground || attempts >= max_attempts {
                let error = if foreground {
                    format!("{msg}; the `dwsched job run` that ran it has ended")
                } else {
                    format!("{msg}; the request had {attempts} attempts and is not retried again")
                };
                let result = serde_json::json!({ "status": "FAILED", "error": error }).to_string();
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

    #[cfg(feature = "test-support")]
    async fn open_run(&self, run: &NewRun) -> Result<i64> {
        let context = || format!("opening a run of job '{}'", run.mapref);
        let mut tx = self.begin_write().await.context(context)?;
        let prcid = self.open_run_in(&mut tx, run).await?;
        tx.commit().await.context(context)?;
        Ok(prcid)
    }

    #[cfg(feature = "test-support")]
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
        .execute(self.pool())
        .await
        .context(|| format!("closing run {prcid} as {status}"))?;
        Ok(done.affected() > 0)
    }

    #[cfg(feature = "test-support")]
    async fn finish_run(&self, f: &FinishRun) -> Result<bool> {
        let context = || format!("closing run {} as {}", f.prcid, f.status);
        let mut tx = self.begin_write().await.context(context)?;
        let closed = self.finish_run_in(&mut tx, f).await?;
        tx.commit().await.context(context)?;
        Ok(closed)
    }

    #[cfg(feature = "test-support")]
    async fn write_job_log(&self, e: &JobLogEntry) -> Result<i64> {
        let context = || format!("writing the job log of job '{}'", e.mapref);
        let mut conn = self.pool().acquire().await.context(context)?;
        self.insert_job_log(&mut conn, e, Utc::now().naive_utc())
            .await
            .context(context)
    }

    #[cfg(feature = "test-support")]
    async fn job_log_for_run(&self, prcid: i64) -> Result<Option<JobLogEntry>> {
        let context = || format!("reading the job log of run {prcid}");
        let row = sqlx::query(self.sql(
            "SELECT PRCDT, MAPREF, CAST(JOBID AS BIGINT), CAST(SRCROWS AS BIGINT), \
             CAST(TRGROWS AS BIGINT), CAST(ERRROWS AS BIGINT), CAST(PRCID AS BIGINT), \
             CAST(SESSIONID AS VARCHAR) \
             FROM DMS_JOBLOG WHERE PRCID = $1 ORDER BY JOBLOGID DESC",
        ))
        .bind(prcid)
        .fetch_optional(self.pool())
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

    #[cfg(feature = "test-support")]
    async fn write_job_error(&self, e: &JobErrorEntry) -> Result<i64> {
        let context = || {
            format!(
                "writing a {} error of job '{}'",
                e.errtyp.as_str(),
                e.mapref
            )
        };
        let mut conn = self.pool().acquire().await.context(context)?;
        self.insert_job_error(&mut conn, e, e.joblogid)
            .await
            .context(context)
    }

    #[cfg(feature = "test-support")]
    async fn job_errors_for_run(&self, prcid: i64) -> Result<Vec<dwsched_model::JobError>> {
        let context = || format!("reading the errors of run {prcid}");
        let rows = sqlx::query(self.sql(
            "SELECT CAST(ERRID AS BIGINT), CAST(JOBLOGID AS BIGINT), ERRTYP, DBERRMSG, ERRMSG, \
             KEYVALUE, CAST(PRCID AS BIGINT), MAPREF FROM DMS_JOBERR WHERE PRCID = $1 ORDER BY ERRID",
        ))
        .bind(prcid)
        .fetch_all(self.pool())
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
