//! Schedules (`DMS_JOBSCH`): versions, what the service fires, the next fires and results it records, and the change count it watches.

use chrono::{DateTime, NaiveDateTime, Utc};
use dwsched_model::{NewSchedule, ScheduleResult, ScheduleRow, ScheduleState};
use sqlx::{Database, Decode, Encode, Executor, Row as _, Type};

use crate::common::{SCHEDULE_COLUMNS, SCHEDULED, flag, states_update_sql};
use crate::driver::{Affected, Conn, Driver, decode_all, utc};
use crate::{Context as _, Result};

/// The shared statements of this topic, for every backend.
pub(crate) trait Schedules: Driver
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
    for<'r> String: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<String>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> i64: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<i64>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<NaiveDateTime>: Decode<'r, Self::Db> + Type<Self::Db>,
{
    fn decode_schedule(row: &<Self::Db as Database>::Row) -> sqlx::Result<ScheduleRow> {
        Ok(ScheduleRow {
            jobschid: row.try_get(0)?,
            jobflwid: row.try_get(1)?,
            mapref: row.try_get(2)?,
            frqcd: row.try_get(3)?,
            frqdd: row.try_get(4)?,
            frqhh: row.try_get(5)?,
            frqmi: row.try_get(6)?,
            strtdt: row.try_get(7)?,
            enddt: row.try_get(8)?,
            stflg: row.try_get(9)?,
            schflg: row.try_get(10)?,
            curflg: row.try_get(11)?,
            dpnd_jobschid: row.try_get(12)?,
            lst_run_dt: utc(row.try_get(13)?),
            nxt_run_dt: utc(row.try_get(14)?),
            timezone: row.try_get(15)?,
            cronexpr: row.try_get(16)?,
            misfire: row.try_get(17)?,
            maxfail: row.try_get(18)?,
            failcnt: row.try_get(19)?,
            scherr: row.try_get(20)?,
            updated_at: utc(row.try_get(21)?),
            changed_at: utc(row.try_get(22)?),
            calnm: row.try_get(23)?,
            calrule: row.try_get(24)?,
        })
    }

    /// The ids of the scheduled rows, a row at a time.
    async fn scheduled_id_rows(&self) -> Result<Vec<i64>> {
        sqlx::query_scalar(self.sql(&format!(
            "SELECT CAST(JOBSCHID AS BIGINT) FROM DMS_JOBSCH WHERE {SCHEDULED} ORDER BY JOBSCHID"
        )))
        .fetch_all(self.pool())
        .await
        .context(|| "listing scheduled ids".to_string())
    }

    /// The schedules matching `filter`, a row at a time.
    async fn list_schedule_rows(&self, filter: &str) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM DMS_JOBSCH WHERE {filter} ORDER BY JOBSCHID"
        )))
        .fetch_all(self.pool())
        .await
        .context(|| "listing schedules".to_string())?;
        decode_all(rows, Self::decode_schedule).context(|| "reading schedules".to_string())
    }

    async fn insert_schedule(&self, s: &NewSchedule, now: DateTime<Utc>) -> Result<i64> {
        let context = || format!("adding a schedule for job '{}'", s.mapref);
        let mut conn = self.pool().acquire().await.context(context)?;
        self.insert_schedule_in(&mut conn, s, now)
            .await
            .context(context)
    }

    /// `Store::replace_schedule`: the new version inserted, the old one retired, and
    /// the schedules that ran after the old one made to run after the new one, in one
    /// transaction, as DWTOOL's UI saves an edit.
    async fn replace_schedule_version(
        &self,
        old: i64,
        s: &NewSchedule,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        let context = || format!("writing a new version of schedule {old}");
        let mut tx = self.begin_write().await.context(context)?;
        let retired = sqlx::query(self.sql(
            "UPDATE DMS_JOBSCH SET CURFLG = 'N', RECUPDT = $1 WHERE JOBSCHID = $2 AND CURFLG = 'Y'",
        ))
        .bind(now.naive_utc())
        .bind(old)
        .execute(&mut *tx)
        .await
        .context(context)?
        .affected();
        if retired == 0 {
            tx.rollback().await.context(context)?;
            return Ok(None);
        }
        let new_id = self
            .insert_schedule_in(&mut tx, s, now)
            .await
            .context(context)?;
        sqlx::query(self.sql(
            "UPDATE DMS_JOBSCH SET DPND_JOBSCHID = $1, RECUPDT = $2 \
             WHERE DPND_JOBSCHID = $3 AND CURFLG = 'Y'",
        ))
        .bind(new_id)
        .bind(now.naive_utc())
        .bind(old)
        .execute(&mut *tx)
        .await
        .context(context)?;
        tx.commit().await.context(context)?;
        Ok(Some(new_id))
    }

    async fn insert_schedule_in(
        &self,
        conn: &mut Conn<Self>,
        s: &NewSchedule,
        now: DateTime<Utc>,
    ) -> std::result::Result<i64, sqlx::Error> {
        let now = now.naive_utc();
        let sql = self.insert_sql(
            "DMS_JOBSCH",
            "JOBSCHID",
            "DMS_JOBSCHSEQ",
            &[
                "JOBFLWID",
                "MAPREF",
                "FRQCD",
                "FRQDD",
                "FRQHH",
                "FRQMI",
                "STRTDT",
                "ENDDT",
                "STFLG",
                "SCHFLG",
                "CURFLG",
                "DPND_JOBSCHID",
                "TIMEZONE",
                "CRONEXPR",
                "MISFIRE",
                "MAXFAIL",
                "FAILCNT",
                "RECCRDT",
                "RECUPDT",
                "CALNM",
                "CALRULE",
            ],
        );
        let query = sqlx::query(sql)
            .bind(s.jobflwid)
            .bind(&s.mapref)
            .bind(&s.frqcd)
            .bind(&s.frqdd)
            .bind(s.frqhh)
            .bind(s.frqmi)
            .bind(s.strtdt)
            .bind(s.enddt)
            .bind("A")
            .bind(flag(s.enabled))
            .bind("Y")
            .bind(s.dpnd_jobschid)
            .bind(&s.timezone)
            .bind(&s.cronexpr)
            .bind(&s.misfire)
            .bind(s.maxfail)
            .bind(0_i64)
            .bind(now)
            .bind(now)
            .bind(&s.calnm)
            .bind(&s.calrule);
        Self::insert_returning_id(conn, query).await
    }

    async fn list_schedules(&self, only_scheduled: bool) -> Result<Vec<ScheduleRow>> {
        let filter = if only_scheduled {
            SCHEDULED
        } else {
            "CURFLG = 'Y'"
        };
        self.list_schedules_where(filter).await
    }

    async fn schedule_version(&self) -> Result<i64> {
        // A calendar's change is one to the schedules that use it.
        let version: Option<i64> = sqlx::query_scalar(self.sql(&format!(
            "SELECT CAST(SUM(VERSION) AS BIGINT) FROM DMS_SCHVER WHERE NAME IN ('{}', '{}')",
            crate::schema::JOB_SCHEDULES_VERSION,
            crate::schema::CALENDARS_VERSION
        )))
        .fetch_optional(self.pool())
        .await
        .context(|| "reading the count of schedule changes".to_string())?;
        Ok(version.unwrap_or(0))
    }

    async fn scheduled_ids(&self) -> Result<Vec<i64>> {
        self.read_scheduled_ids().await
    }

    async fn scheduled_changes(
        &self,
        since: Option<DateTime<Utc>>,
        ids: &[i64],
    ) -> Result<Vec<ScheduleRow>> {
        // The literals are a formatted time and integers, never input text.
        let changed = match since {
            Some(since) => format!(
                "CHGDT >= '{}'",
                since.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f")
            ),
            None => "CHGDT IS NOT NULL".to_string(),
        };
        let mut rows = self
            .list_schedules_where(&format!("{SCHEDULED} AND {changed}"))
            .await?;
        let seen: std::collections::HashSet<i64> = rows.iter().map(|r| r.jobschid).collect();
        let wanted: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !seen.contains(id))
            .collect();
        for chunk in wanted.chunks(1000) {
            let list = chunk
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            rows.extend(
                self.list_schedules_where(&format!("{SCHEDULED} AND JOBSCHID IN ({list})"))
                    .await?,
            );
        }
        Ok(rows)
    }

    async fn get_schedule(&self, jobschid: i64) -> Result<Option<ScheduleRow>> {
        let context = || format!("reading schedule {jobschid}");
        let row = sqlx::query(self.sql(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM DMS_JOBSCH WHERE JOBSCHID = $1"
        )))
        .bind(jobschid)
        .fetch_optional(self.pool())
        .await
        .context(context)?;
        row.as_ref()
            .map(Self::decode_schedule)
            .transpose()
            .context(context)
    }

    async fn set_schedule_enabled(
        &self,
        jobschid: i64,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(self.sql(
            "UPDATE DMS_JOBSCH SET SCHFLG = $1, RECUPDT = $2 WHERE JOBSCHID = $3 AND CURFLG = 'Y'",
        ))
        .bind(flag(enabled))
        .bind(now.naive_utc())
        .bind(jobschid)
        .execute(self.pool())
        .await
        .context(|| format!("setting SCHFLG of schedule {jobschid}"))?;
        Ok(done.affected() > 0)
    }

    async fn retire_schedule(&self, jobschid: i64, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(self.sql(
            "UPDATE DMS_JOBSCH SET CURFLG = 'N', RECUPDT = $1 WHERE JOBSCHID = $2 AND CURFLG = 'Y'",
        ))
        .bind(now.naive_utc())
        .bind(jobschid)
        .execute(self.pool())
        .await
        .context(|| format!("retiring schedule {jobschid}"))?;
        Ok(done.affected() > 0)
    }

    async fn set_schedule_state(
        &self,
        jobschid: i64,
        next_fire: Option<DateTime<Utc>>,
        scherr: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            self.sql("UPDATE DMS_JOBSCH SET NXT_RUN_DT = $1, SCHERR = $2 WHERE JOBSCHID = $3"),
        )
        .bind(next_fire.map(|t| t.naive_utc()))
        .bind(scherr)
        .bind(jobschid)
        .execute(self.pool())
        .await
        .context(|| format!("recording the next fire of schedule {jobschid}"))?;
        Ok(done.affected() > 0)
    }

    async fn set_schedule_states(&self, states: &[ScheduleState]) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        let context = || format!("recording the next fires of {} schedules", states.len());
        let mut tx = self.begin_write().await.context(context)?;
        // One statement per few hundred rows: a first sync writes them all.
        for chunk in states.chunks(400) {
            let sql = states_update_sql(Self::BACKEND, chunk.len());
            let mut query = sqlx::query(self.sql(&sql));
            if Self::BACKEND == crate::Backend::MySql {
                for state in chunk {
                    query = query
                        .bind(state.jobschid)
                        .bind(state.next_fire.map(|t| t.naive_utc()));
                }
                for state in chunk {
                    query = query.bind(state.jobschid).bind(state.scherr.clone());
                }
                for state in chunk {
                    query = query.bind(state.jobschid);
                }
            } else {
                for state in chunk {
                    query = query
                        .bind(state.jobschid)
                        .bind(state.next_fire.map(|t| t.naive_utc()))
                        .bind(state.scherr.clone());
                }
            }
            query.execute(&mut *tx).await.context(context)?;
        }
        tx.commit().await.context(context)
    }

    async fn record_schedule_result(
        &self,
        jobschid: i64,
        finished_at: DateTime<Utc>,
        succeeded: bool,
    ) -> Result<ScheduleResult> {
        let context = || format!("recording the last run of schedule {jobschid}");
        let mut tx = self.begin_write().await.context(context)?;
        sqlx::query(self.sql(
            "UPDATE DMS_JOBSCH SET LST_RUN_DT = $1, \
             FAILCNT = CASE WHEN $2 = 1 THEN 0 ELSE COALESCE(FAILCNT, 0) + 1 END \
             WHERE JOBSCHID = $3",
        ))
        .bind(finished_at.naive_utc())
        .bind(i64::from(succeeded))
        .bind(jobschid)
        .execute(&mut *tx)
        .await
        .context(context)?;
        let row = sqlx::query(self.sql(
            "SELECT CAST(FAILCNT AS BIGINT), CAST(MAXFAIL AS BIGINT), SCHFLG FROM DMS_JOBSCH \
             WHERE JOBSCHID = $1",
        ))
        .bind(jobschid)
        .fetch_optional(&mut *tx)
        .await
        .context(context)?;
        let mut result = ScheduleResult {
            failures: 0,
            disabled: false,
        };
        if let Some(row) = row {
            let failures: Option<i64> = row.try_get(0).context(context)?;
            let maxfail: Option<i64> = row.try_get(1).context(context)?;
            let enabled: Option<String> = row.try_get(2).context(context)?;
            result.failures = failures.unwrap_or(0);
            if let Some(limit) = maxfail.filter(|m| *m > 0 && result.failures >= *m)
                && enabled.as_deref() == Some("Y")
            {
                sqlx::query(self.sql(
                    "UPDATE DMS_JOBSCH SET SCHFLG = 'N', NXT_RUN_DT = NULL, SCHERR = $1, \
                     RECUPDT = $2 WHERE JOBSCHID = $3",
                ))
                .bind(format!(
                    "disabled at {} after {limit} consecutive failed runs (MAXFAIL {limit})",
                    finished_at.format("%Y-%m-%d %H:%M:%SZ")
                ))
                .bind(finished_at.naive_utc())
                .bind(jobschid)
                .execute(&mut *tx)
                .await
                .context(context)?;
                result.disabled = true;
            }
        }
        tx.commit().await.context(context)?;
        Ok(result)
    }

    async fn dependent_schedules(&self, mapref: &str) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM DMS_JOBSCH s WHERE {} ORDER BY JOBSCHID",
            crate::common::following("$1")
        )))
        .bind(mapref)
        .fetch_all(self.pool())
        .await
        .context(|| format!("reading the schedules that follow job '{mapref}'"))?;
        decode_all(rows, Self::decode_schedule)
            .context(|| format!("reading the schedules that follow job '{mapref}'"))
    }
}
