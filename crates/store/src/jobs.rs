//! Jobs and their flows (`DMS_JOB`, `DMS_JOBFLW`): a flow replaced is a new current row, the old one retired.

use chrono::{DateTime, NaiveDateTime, Utc};
use dwsched_model::{
    DwtoolJob, DwtoolJobColumn, DwtoolMapping, DwtoolSql, FlowToRun, Job, JobFlow,
};
use sqlx::{Database, Decode, Encode, Executor, Row as _, Type};

use crate::common::FLOW_COLUMNS;
use crate::driver::{Affected, Conn, Driver, utc};
use crate::{Context as _, Result};

/// The shared statements of this topic, for every backend.
pub(crate) trait Jobs: Driver
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
    for<'q> f64: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> NaiveDateTime: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'q> Option<NaiveDateTime>: Encode<'q, Self::Db> + Type<Self::Db>,
    for<'r> String: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<String>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> i64: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<i64>: Decode<'r, Self::Db> + Type<Self::Db>,
    for<'r> Option<NaiveDateTime>: Decode<'r, Self::Db> + Type<Self::Db>,
{
    fn decode_flow(row: &<Self::Db as Database>::Row) -> sqlx::Result<JobFlow> {
        let curflg: Option<String> = row.try_get(4)?;
        Ok(JobFlow {
            jobflwid: row.try_get(0)?,
            jobid: row.try_get(1)?,
            mapref: row.try_get(2)?,
            dwlogic: row.try_get(3)?,
            current: curflg.as_deref() == Some("Y"),
            created_at: utc(row.try_get(5)?),
        })
    }

    async fn put_job_flow(
        &self,
        mapref: &str,
        dwlogic: &str,
        now: DateTime<Utc>,
    ) -> Result<JobFlow> {
        let context = || format!("registering the flow of job '{mapref}'");
        let now = now.naive_utc();
        let mut tx = self.begin_write().await.context(context)?;
        let existing: Option<i64> = sqlx::query_scalar(self.sql(
            "SELECT CAST(JOBID AS BIGINT) FROM DMS_JOB WHERE MAPREF = $1 AND CURFLG = 'Y' \
             ORDER BY JOBID DESC",
        ))
        .bind(mapref)
        .fetch_optional(&mut *tx)
        .await
        .context(context)?;
        let jobid = match existing {
            Some(id) => {
                sqlx::query(self.sql("UPDATE DMS_JOB SET RECUPDT = $1 WHERE JOBID = $2"))
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .context(context)?;
                id
            }
            None => {
                let sql = self.insert_sql(
                    "DMS_JOB",
                    "JOBID",
                    "DMS_JOBSEQ",
                    &["MAPREF", "STFLG", "CURFLG", "RECCRDT", "RECUPDT"],
                );
                let query = sqlx::query(sql)
                    .bind(mapref)
                    .bind("A")
                    .bind("Y")
                    .bind(now)
                    .bind(now);
                Self::insert_returning_id(&mut tx, query)
                    .await
                    .context(context)?
            }
        };
        sqlx::query(self.sql(
            "UPDATE DMS_JOBFLW SET CURFLG = 'N', RECUPDT = $1 WHERE MAPREF = $2 AND CURFLG = 'Y'",
        ))
        .bind(now)
        .bind(mapref)
        .execute(&mut *tx)
        .await
        .context(context)?;
        let sql = self.insert_sql(
            "DMS_JOBFLW",
            "JOBFLWID",
            "DMS_JOBFLWSEQ",
            &[
                "JOBID", "MAPREF", "DWLOGIC", "STFLG", "CURFLG", "RECRDT", "RECUPDT",
            ],
        );
        let query = sqlx::query(sql)
            .bind(jobid)
            .bind(mapref)
            .bind(dwlogic)
            .bind("A")
            .bind("Y")
            .bind(now)
            .bind(now);
        let jobflwid = Self::insert_returning_id(&mut tx, query)
            .await
            .context(context)?;
        tx.commit().await.context(context)?;
        Ok(JobFlow {
            jobflwid,
            jobid: Some(jobid),
            mapref: mapref.to_string(),
            dwlogic: Some(dwlogic.to_string()),
            current: true,
            created_at: Some(now.and_utc()),
        })
    }

    async fn list_jobs(&self) -> Result<Vec<Job>> {
        let rows = sqlx::query(self.sql(
            "SELECT CAST(j.JOBID AS BIGINT), j.MAPREF, \
             (SELECT CAST(MAX(f.JOBFLWID) AS BIGINT) FROM DMS_JOBFLW f \
              WHERE f.MAPREF = j.MAPREF AND f.CURFLG = 'Y'), j.RECCRDT, j.RECUPDT \
             FROM DMS_JOB j WHERE j.CURFLG = 'Y' ORDER BY j.MAPREF",
        ))
        .fetch_all(self.pool())
        .await
        .context(|| "listing jobs".to_string())?;
        rows.iter()
            .map(|row| {
                Ok(Job {
                    jobid: row.try_get(0)?,
                    mapref: row.try_get(1)?,
                    current_flow_id: row.try_get(2)?,
                    created_at: utc(row.try_get(3)?),
                    updated_at: utc(row.try_get(4)?),
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .context(|| "reading jobs".to_string())
    }

    async fn flows_to_run(&self, maprefs: &[String]) -> Result<Vec<FlowToRun>> {
        if maprefs.is_empty() {
            return Ok(Vec::new());
        }
        let context = || format!("reading the current flows of {} jobs", maprefs.len());
        let placeholders: Vec<String> = (1..=maprefs.len()).map(|i| format!("${i}")).collect();
        let sql = crate::common::flows_to_run_sql(&format!("IN ({})", placeholders.join(", ")));
        let mut query = sqlx::query(self.sql(&sql));
        for mapref in maprefs {
            query = query.bind(mapref);
        }
        let rows = query.fetch_all(self.pool()).await.context(context)?;
        let mut flows: Vec<FlowToRun> = Vec::with_capacity(maprefs.len());
        for row in &rows {
            let flow = Self::decode_flow(row).context(context)?;
            let followed: i64 = row.try_get(6).context(context)?;
            // Newest first: the first row of a mapref is its current flow.
            if !flows.iter().any(|f| f.flow.mapref == flow.mapref) {
                flows.push(FlowToRun {
                    flow,
                    followed: followed != 0,
                });
            }
        }
        Ok(flows)
    }

    async fn current_flow(&self, mapref: &str) -> Result<Option<JobFlow>> {
        let context = || format!("reading the current flow of job '{mapref}'");
        let row = sqlx::query(self.sql(&format!(
            "SELECT {FLOW_COLUMNS} FROM DMS_JOBFLW WHERE MAPREF = $1 AND CURFLG = 'Y' \
             ORDER BY JOBFLWID DESC"
        )))
        .bind(mapref)
        .fetch_optional(self.pool())
        .await
        .context(context)?;
        row.as_ref()
            .map(Self::decode_flow)
            .transpose()
            .context(context)
    }

    /// The metadata of DWTOOL mapping job `mapref` (SPEC §7.1): its current, active
    /// `DMS_JOB` row, its current `DMS_JOBDTL` rows by `EXCSEQ`, the current
    /// `DMS_MAPRSQL` rows of their codes, the default batch size, and its current flow.
    async fn dwtool_mapping(&self, mapref: &str) -> Result<DwtoolMapping> {
        let context = || format!("reading the mapping metadata of job '{mapref}'");
        let job = sqlx::query(self.sql(
            "SELECT CAST(JOBID AS BIGINT), MAPREF, TRGSCHM, TRGTBNM, TRGTBTYP, \
             CAST(TRGCONID AS BIGINT), CAST(BLKPRCROWS AS BIGINT), CHKPNTSTRTGY, CHKPNTCLNM, \
             CHKPNTENBLD FROM DMS_JOB WHERE MAPREF = $1 AND CURFLG = 'Y' \
             AND COALESCE(STFLG, 'A') = 'A' ORDER BY JOBID DESC",
        ))
        .bind(mapref)
        .fetch_optional(self.pool())
        .await
        .context(context)?
        .map(|row| -> sqlx::Result<DwtoolJob> {
            Ok(DwtoolJob {
                jobid: row.try_get(0)?,
                mapref: row.try_get(1)?,
                trgschm: row.try_get(2)?,
                trgtbnm: row.try_get(3)?,
                trgtbtyp: row.try_get(4)?,
                trgconid: row.try_get(5)?,
                blkprcrows: row.try_get(6)?,
                chkpntstrtgy: row.try_get(7)?,
                chkpntclnm: row.try_get(8)?,
                chkpntenbld: row.try_get(9)?,
            })
        })
        .transpose()
        .context(context)?;
        let rows = sqlx::query(self.sql(
            "SELECT CAST(JOBDTLID AS BIGINT), TRGCLNM, TRGCLDTYP, TRGKEYFLG, \
             CAST(TRGKEYSEQ AS BIGINT), MAPLOGIC, MAPRSQLCD, KEYCLNM, VALCLNM, MAPCMBCD, \
             CAST(EXCSEQ AS BIGINT), CAST(SCDTYP AS BIGINT) FROM DMS_JOBDTL \
             WHERE MAPREF = $1 AND CURFLG = 'Y' ORDER BY EXCSEQ, JOBDTLID",
        ))
        .bind(mapref)
        .fetch_all(self.pool())
        .await
        .context(context)?;
        let columns = rows
            .iter()
            .map(|row| -> sqlx::Result<DwtoolJobColumn> {
                Ok(DwtoolJobColumn {
                    jobdtlid: row.try_get(0)?,
                    trgclnm: row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                    trgcldtyp: row.try_get(2)?,
                    trgkeyflg: row.try_get(3)?,
                    trgkeyseq: row.try_get(4)?,
                    maplogic: row.try_get(5)?,
                    maprsqlcd: row.try_get(6)?,
                    keyclnm: row.try_get(7)?,
                    valclnm: row.try_get(8)?,
                    mapcmbcd: row.try_get(9)?,
                    excseq: row.try_get(10)?,
                    scdtyp: row.try_get(11)?,
                })
            })
            .collect::<sqlx::Result<Vec<_>>>()
            .context(context)?;
        let rows = sqlx::query(self.sql(
            "SELECT MAPRSQLCD, MAPRSQL, CAST(SQLCONID AS BIGINT) FROM DMS_MAPRSQL \
             WHERE CURFLG = 'Y' AND MAPRSQLCD IN (SELECT d.MAPRSQLCD FROM DMS_JOBDTL d \
             WHERE d.MAPREF = $1 AND d.CURFLG = 'Y') ORDER BY MAPRSQLID DESC",
        ))
        .bind(mapref)
        .fetch_all(self.pool())
        .await
        .context(context)?;
        let mut sqls: Vec<DwtoolSql> = Vec::new();
        for row in &rows {
            let sql = DwtoolSql {
                maprsqlcd: row.try_get(0).context(context)?,
                maprsql: row.try_get(1).context(context)?,
                sqlconid: row.try_get(2).context(context)?,
            };
            // Newest first: the first row of a code is its current text.
            if !sqls.iter().any(|s| s.maprsqlcd == sql.maprsqlcd) {
                sqls.push(sql);
            }
        }
        let default_bulk_rows: Option<String> = sqlx::query_scalar(self.sql(
            "SELECT PRVAL FROM DMS_PARAMS WHERE PRTYP = 'BULKPRC' AND PRCD = 'NOOFROWS' \
             ORDER BY PRVAL",
        ))
        .fetch_optional(self.pool())
        .await
        .context(context)?
        .flatten();
        let flow = self.current_flow(mapref).await?;
        Ok(DwtoolMapping {
            job,
            columns,
            sqls,
            default_bulk_rows: default_bulk_rows.and_then(|v| v.trim().parse().ok()),
            dwlogic: flow.as_ref().and_then(|f| f.dwlogic.clone()),
            jobflwid: flow.map(|f| f.jobflwid),
        })
    }

    async fn retire_job(&self, mapref: &str, now: DateTime<Utc>) -> Result<bool> {
        let context = || format!("retiring job '{mapref}'");
        let now = now.naive_utc();
        let mut tx = self.begin_write().await.context(context)?;
        let mut retired = false;
        for table in ["DMS_JOB", "DMS_JOBFLW", "DMS_JOBSCH"] {
            let done = sqlx::query(self.sql(&format!(
                "UPDATE {table} SET CURFLG = 'N', RECUPDT = $1 WHERE MAPREF = $2 AND CURFLG = 'Y'"
            )))
            .bind(now)
            .bind(mapref)
            .execute(&mut *tx)
            .await
            .context(context)?;
            retired |= table == "DMS_JOB" && done.affected() > 0;
        }
        tx.commit().await.context(context)?;
        Ok(retired)
    }
}
