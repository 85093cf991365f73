//! DWTOOL's reports (`DMS_RPRT_DEF`, `DMS_RPRT_FLD`, `DMS_RPRT_RUN`): what a report run
//! reads, and the run history its UI shows.

use chrono::{DateTime, NaiveDateTime, Utc};
use dwsched_model::{DwtoolFire, NewReportRun, ReportDefinition, ReportField, ReportScheduleRow};
use sqlx::{Database, Decode, Encode, Executor, Row as _, Type};

use crate::driver::{Affected, Conn, Driver, decode_all};
use crate::{Context as _, Result};

/// The shared statements of this topic, for every backend.
pub(crate) trait Reports: Driver + crate::queue::Queue
where
    for<'c> &'c mut Conn<Self>: Executor<'c, Database = Self::Db>,
    for<'p> &'p sqlx::Pool<Self::Db>: Executor<'p, Database = Self::Db>,
    usize: sqlx::ColumnIndex<<Self::Db as Database>::Row>,
    <Self::Db as Database>::Arguments: sqlx::IntoArguments<Self::Db>,
    <Self::Db as Database>::QueryResult: Affected,
    for<'q> &'q str: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> String: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<String>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> i64: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<i64>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> NaiveDateTime: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<NaiveDateTime>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<&'q str>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> f64: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'r> Option<NaiveDateTime>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> String: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<String>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> i64: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<i64>: Decode<'r, Self::Db> + Type<Self::Db>,
{
    fn decode_field(row: &<Self::Db as Database>::Row) -> sqlx::Result<ReportField> {
        let group_by: Option<String> = row.try_get(5)?;
        Ok(ReportField {
            panel: row.try_get(0)?,
            name: row.try_get(1)?,
            alias: row.try_get(2)?,
            source_column: row.try_get(3)?,
            inline_formula: row.try_get(4)?,
            group_by: group_by.is_some_and(|flag| flag.trim().eq_ignore_ascii_case("Y")),
            order_by_seq: row.try_get(6)?,
            order_by_dir: row
                .try_get::<Option<String>, _>(7)?
                .filter(|d| !d.is_empty())
                .map(|d| d.to_ascii_uppercase()),
        })
    }

    /// `Store::report_definition`.
    async fn read_report(&self, rprtid: i64) -> Result<Option<ReportDefinition>> {
        let context = || format!("reading report {rprtid}");
        // By id alone, as the original reads it (no CURFLG or IS_ACTV test).
        let Some(row) = sqlx::query(self.sql(
            "SELECT RPRTNM, CAST(SQLSRCID AS BIGINT), ADHCSQL, CAST(DBCNID AS BIGINT) \
             FROM DMS_RPRT_DEF WHERE RPRTID = $1",
        ))
        .bind(rprtid)
        .fetch_optional(self.pool())
        .await
        .context(context)?
        else {
            return Ok(None);
        };
        let name: Option<String> = row.try_get(0).context(context)?;
        let sqlsrcid: Option<i64> = row.try_get(1).context(context)?;
        let adhcsql: Option<String> = row.try_get(2).context(context)?;
        let dbcnid: Option<i64> = row.try_get(3).context(context)?;
        let (source_sql, source_conid) = match sqlsrcid {
            Some(id) => self.managed_sql(id).await.context(context)?,
            None => (adhcsql, None),
        };
        // The original's order, NULLs last as PostgreSQL sorts them.
        let rows = sqlx::query(self.sql(
            "SELECT PNL_TYP, FLD_NM, FLD_ALS, SRC_CLMN, FRMLA_INLN, IS_GROUP_BY, \
             CAST(ORDER_BY_SEQ AS BIGINT), ORDER_BY_DIR FROM DMS_RPRT_FLD WHERE RPRTID = $1 \
             ORDER BY CASE WHEN PNL_TYP IS NULL THEN 1 ELSE 0 END, PNL_TYP, \
             CASE WHEN ROW_ORDR IS NULL THEN 1 ELSE 0 END, ROW_ORDR, FLDID",
        ))
        .bind(rprtid)
        .fetch_all(self.pool())
        .await
        .context(context)?;
        let fields = decode_all(rows, Self::decode_field).context(context)?;
        Ok(Some(ReportDefinition {
            rprtid,
            name: name.unwrap_or_default(),
            sqlsrcid,
            source_sql,
            conid: dbcnid.or(source_conid),
            fields,
        }))
    }

    /// The current SQL and connection of managed SQL `maprsqlid`; when that version was
    /// retired, those of the current version with the same code.
    async fn managed_sql(
        &self,
        maprsqlid: i64,
    ) -> std::result::Result<(Option<String>, Option<i64>), sqlx::Error> {
        let current = sqlx::query(self.sql(
            "SELECT MAPRSQL, CAST(SQLCONID AS BIGINT) FROM DMS_MAPRSQL \
             WHERE MAPRSQLID = $1 AND CURFLG = 'Y'",
        ))
        .bind(maprsqlid)
        .fetch_optional(self.pool())
        .await?;
        let row = match current {
            Some(row) => Some(row),
            None => {
                sqlx::query(self.sql(
                    "SELECT MAPRSQL, CAST(SQLCONID AS BIGINT) FROM DMS_MAPRSQL \
                     WHERE CURFLG = 'Y' AND MAPRSQLCD = (SELECT MAPRSQLCD FROM DMS_MAPRSQL \
                     WHERE MAPRSQLID = $1) ORDER BY MAPRSQLID DESC",
                ))
                .bind(maprsqlid)
                .fetch_optional(self.pool())
                .await?
            }
        };
        match row {
            Some(row) => Ok((row.try_get(0)?, row.try_get(1)?)),
            None => Ok((None, None)),
        }
    }

    /// `Store::open_report_run`.
    async fn insert_report_run(&self, run: &NewReportRun) -> Result<i64> {
        let context = || format!("recording the start of a run of report {}", run.rprtid);
        let started = run.started_at.naive_utc();
        let sql = self.insert_sql(
            "DMS_RPRT_RUN",
            "RUNID",
            "DMS_RPRT_RUN_SEQ",
            &[
                "RPRTID",
                "RQST_ID",
                "STRT_DT",
                "STTS",
                "TRGGRD_BY",
                "OTPT_FMT",
                "PRM_OVRRDS",
                "UPDTDT",
            ],
        );
        let query = sqlx::query(sql)
            .bind(run.rprtid)
            .bind(&run.request_id)
            .bind(started)
            .bind("RUNNING")
            .bind(&run.triggered_by)
            .bind(&run.format)
            .bind(&run.parameters)
            .bind(started);
        let mut conn = self.pool().acquire().await.context(context)?;
        Self::insert_returning_id(&mut conn, query)
            .await
            .context(context)
    }

    /// `Store::finish_report_run`.
    async fn update_report_run(
        &self,
        runid: i64,
        status: &str,
        row_count: Option<i64>,
        parameters: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let ended = now.naive_utc();
        let done = sqlx::query(self.sql(
            "UPDATE DMS_RPRT_RUN SET STTS = $1, END_DT = $2, UPDTDT = $3, ROW_CNT = $4, \
             PRM_OVRRDS = $5 WHERE RUNID = $6",
        ))
        .bind(status)
        .bind(ended)
        .bind(ended)
        .bind(row_count)
        .bind(parameters)
        .bind(runid)
        .execute(self.pool())
        .await
        .context(|| format!("recording the end of report run {runid}"))?;
        Ok(done.affected() > 0)
    }

    /// `Store::fail_running_report_runs`.
    async fn fail_running_report_runs(
        &self,
        request_id: &str,
        parameters: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let ended = now.naive_utc();
        let done = sqlx::query(self.sql(
            "UPDATE DMS_RPRT_RUN SET STTS = 'FAILED', END_DT = $1, UPDTDT = $2, PRM_OVRRDS = $3 \
             WHERE RQST_ID = $4 AND STTS = 'RUNNING'",
        ))
        .bind(ended)
        .bind(ended)
        .bind(parameters)
        .bind(request_id)
        .execute(self.pool())
        .await
        .context(|| format!("closing the report runs left RUNNING by request {request_id}"))?;
        Ok(done.affected())
    }

    /// `Store::due_report_schedules` (`due_by` given) and `Store::report_schedules`.
    async fn read_report_schedules(
        &self,
        due_by: Option<NaiveDateTime>,
    ) -> Result<Vec<ReportScheduleRow>> {
        self.read_dwtool_schedules(
            "SELECT CAST(SCHDID AS BIGINT), CAST(RPRTID AS BIGINT), FRQNCY, TM_PRM, \
             NXT_RUN_DT, LST_RUN_DT, STTS, OTPT_FMT, DSTN_TYP, EMAL_TO, FL_PTH FROM DMS_RPRT_SCHD",
            "",
            due_by,
            "report schedules",
            |row| {
                Ok(ReportScheduleRow {
                    schdid: row.try_get(0)?,
                    rprtid: row.try_get(1)?,
                    frqncy: row.try_get(2)?,
                    tm_prm: row.try_get(3)?,
                    nxt_run_dt: row.try_get(4)?,
                    lst_run_dt: row.try_get(5)?,
                    stts: row.try_get(6)?,
                    otpt_fmt: row.try_get(7)?,
                    dstn_typ: row.try_get(8)?,
                    emal_to: row.try_get(9)?,
                    fl_pth: row.try_get(10)?,
                })
            },
        )
        .await
    }

    /// Rows of one of DWTOOL's schedule tables (`select`: the columns and `FROM`; `only`:
    /// more conditions on the row, as `fire_dwtool_row` takes them): those due by
    /// `due_by` (`ACTIVE`, with `NXT_RUN_DT` empty or passed, soonest first), or every
    /// row by `SCHDID`. `what` names the rows in errors.
    async fn read_dwtool_schedules<T>(
        &self,
        select: &str,
        only: &str,
        due_by: Option<NaiveDateTime>,
        what: &str,
        decode: fn(&<Self::Db as Database>::Row) -> sqlx::Result<T>,
    ) -> Result<Vec<T>> {
        let (sql, what) = match due_by {
            Some(_) => (
                format!(
                    "{select} WHERE UPPER(COALESCE(STTS, '')) = 'ACTIVE'{only} \
                     AND (NXT_RUN_DT IS NULL OR NXT_RUN_DT <= $1) ORDER BY NXT_RUN_DT, SCHDID"
                ),
                format!("reading the {what} that are due"),
            ),
            None => (
                format!("{select} WHERE 1 = 1{only} ORDER BY SCHDID"),
                format!("reading the {what}"),
            ),
        };
        let mut query = sqlx::query(self.sql(&sql));
        if let Some(due_by) = due_by {
            query = query.bind(due_by);
        }
        let rows = query
            .fetch_all(self.pool())
            .await
            .context(|| what.clone())?;
        decode_all(rows, decode).context(|| what.clone())
    }

    /// `Store::fire_report_schedule`: the row moves on and the request is queued in one
    /// transaction, only while the row still holds what the fire was planned from.
    async fn fire_report_row(&self, fire: &DwtoolFire, now: DateTime<Utc>) -> Result<bool> {
        self.fire_dwtool_row("DMS_RPRT_SCHD", "UPDTDT", "", fire, now)
            .await
            .context(|| format!("firing report schedule {}", fire.schdid))
    }

    /// Fires a row of one of DWTOOL's schedule tables (`table`, its update stamp
    /// `stamp`, and `only` more conditions on the row): moves it on and queues its
    /// request in one transaction, only while it is `ACTIVE` with the `NXT_RUN_DT` the
    /// fire was planned from; whether this call fired it.
    async fn fire_dwtool_row(
        &self,
        table: &str,
        stamp: &str,
        only: &str,
        fire: &DwtoolFire,
        now: DateTime<Utc>,
    ) -> std::result::Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(self.sql(&format!(
            "UPDATE {table} SET NXT_RUN_DT = $1, LST_RUN_DT = $2, STTS = $3, {stamp} = $4 \
             WHERE SCHDID = $5 AND UPPER(COALESCE(STTS, '')) = 'ACTIVE'{only} \
             AND (NXT_RUN_DT = $6 OR (NXT_RUN_DT IS NULL AND $7 IS NULL))"
        )))
        .bind(fire.next)
        .bind(fire.fired_at)
        .bind(fire.status.as_str())
        .bind(now.naive_utc())
        .bind(fire.schdid)
        .bind(fire.expected_next)
        .bind(fire.expected_next)
        .execute(&mut *tx)
        .await?
        .affected();
        if moved != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        self.request_insert(&request_id, &fire.request, now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
