//! DWTOOL's file uploads (`DMS_FLUPLD`, `DMS_FLUPLDDTL`, `DMS_FLUPLD_SCHD`,
//! `DMS_FLUPLD_RUN`, `DMS_FLUPLD_ERR`): what an upload run reads, the history its UI
//! shows, and the schedules the firing node fires.

use chrono::{DateTime, NaiveDateTime, Utc};
use dwsched_model::{
    DatatypeParam, DwtoolFire, UploadColumn, UploadConfig, UploadDefinition, UploadRowError,
    UploadRunRecord, UploadScheduleRow,
};
use sqlx::{Database, Decode, Encode, Executor, Row as _, Type};

use crate::driver::{Affected, Conn, Driver, decode_all};
use crate::{Backend, Context as _, Result};

/// The condition on upload schedule rows: only the current version reads and fires.
const CURRENT_ONLY: &str = " AND CURFLG = 'Y'";

/// A `Y`/`N` flag column: `Y` in any case and spacing.
fn flag(value: Option<String>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("Y"))
}

/// A text column with NULL read as empty, trimmed.
fn text(value: Option<String>) -> String {
    value.unwrap_or_default().trim().to_string()
}

/// The shared statements of this topic, for every backend.
pub(crate) trait Uploads: Driver + crate::reports::Reports
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
    /// `Store::upload_definition`.
    async fn read_upload(&self, flupldref: &str) -> Result<Option<UploadDefinition>> {
        let context = || format!("reading file upload {flupldref}");
        let Some(row) = sqlx::query(self.sql(
            "SELECT FLUPLDREF, FLPTH, FLTYP, CAST(TRGCONID AS BIGINT), TRGSCHM, TRGTBLNM, \
             TRNCTFLG, CAST(HDRRWCNT AS BIGINT), CAST(FTRRWCNT AS BIGINT), FLHASH FROM DMS_FLUPLD \
             WHERE FLUPLDREF = $1 AND CURFLG = 'Y'",
        ))
        .bind(flupldref)
        .fetch_optional(self.pool())
        .await
        .context(context)?
        else {
            return Ok(None);
        };
        let config = (|| -> sqlx::Result<UploadConfig> {
            Ok(UploadConfig {
                flupldref: row.try_get(0)?,
                flpth: row.try_get(1)?,
                fltyp: row.try_get(2)?,
                trgconid: row.try_get(3)?,
                trgschm: row.try_get(4)?,
                trgtblnm: row.try_get(5)?,
                truncate: flag(row.try_get(6)?),
                header_rows: row.try_get::<Option<i64>, _>(7)?.unwrap_or(0),
                footer_rows: row.try_get::<Option<i64>, _>(8)?.unwrap_or(0),
                last_hash: row.try_get(9)?,
            })
        })()
        .context(context)?;
        let rows = sqlx::query(self.sql(
            "SELECT SRCCLNM, TRGCLNM, TRGCLDTYP, TRGKYFLG, CAST(TRGKYSEQ AS BIGINT), DRVLGC, \
             DRVLGCFLG, DFLTVAL, ISAUDIT, ISRQRD FROM DMS_FLUPLDDTL \
             WHERE FLUPLDREF = $1 AND CURFLG = 'Y' \
             ORDER BY CASE WHEN EXCSEQ IS NULL THEN 1 ELSE 0 END, EXCSEQ, TRGCLNM",
        ))
        .bind(flupldref)
        .fetch_all(self.pool())
        .await
        .context(context)?;
        let columns = decode_all(rows, |row| {
            let target = text(row.try_get(1)?);
            let source = text(row.try_get(0)?);
            let formula = text(row.try_get(5)?);
            let default: Option<String> = row.try_get(7)?;
            Ok(UploadColumn {
                source: if source.is_empty() {
                    target.clone()
                } else {
                    source
                },
                target,
                type_code: text(row.try_get(2)?),
                key: flag(row.try_get(3)?),
                key_seq: row.try_get(4)?,
                formula: (flag(row.try_get(6)?) && !formula.is_empty()).then_some(formula),
                default: default.filter(|d| !d.is_empty()),
                audit: flag(row.try_get(8)?),
                required: flag(row.try_get(9)?),
            })
        })
        .context(context)?;
        Ok(Some(UploadDefinition { config, columns }))
    }

    /// `Store::datatype_params`.
    async fn read_datatype_params(&self) -> Result<Vec<DatatypeParam>> {
        let rows = sqlx::query(self.sql(
            "SELECT PRCD, PRVAL, DBTYP FROM DMS_PARAMS WHERE PRTYP = 'Datatype' \
             AND COALESCE(CURFLG, 'Y') = 'Y'",
        ))
        .fetch_all(self.pool())
        .await
        .context(|| "reading the Datatype rows of DMS_PARAMS".to_string())?;
        decode_all(rows, |row| {
            Ok(DatatypeParam {
                code: row.try_get::<Option<String>, _>(0)?.unwrap_or_default(),
                sql_type: row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                dbtyp: row.try_get(2)?,
            })
        })
        .context(|| "reading the Datatype rows of DMS_PARAMS".to_string())
    }

    /// `Store::record_upload_run`: the run, its rejected rows and the configuration's
    /// `LSTRUNDT`, in one transaction.
    async fn write_upload_run(
        &self,
        run: &UploadRunRecord,
        errors: &[UploadRowError],
    ) -> Result<i64> {
        let context = || format!("recording a run of file upload {}", run.flupldref);
        let mut tx = self.begin_write().await.context(context)?;
        let (started, ended) = (run.started_at.naive_utc(), run.ended_at.naive_utc());
        let insert = self.insert_sql(
            "DMS_FLUPLD_RUN",
            "RUNID",
            "DMS_FLUPLD_RUNSEQ",
            &[
                "FLUPLDREF",
                "STRTTM",
                "NDTM",
                "RWSPRCSSD",
                "RWSSTCCSSFL",
                "RWSFLD",
                "STTS",
                "MSSG",
                "LDMDE",
                "FLPTH",
                "CRTDBY",
                "CRTDT",
                "CURFLG",
            ],
        );
        let query = sqlx::query(insert)
            .bind(&run.flupldref)
            .bind(started)
            .bind(ended)
            .bind(run.processed)
            .bind(run.loaded)
            .bind(run.failed)
            .bind(&run.status)
            .bind(&run.message)
            .bind(&run.load_mode)
            .bind(&run.file_path)
            .bind(&run.user)
            .bind(ended)
            .bind("Y");
        let runid = Self::insert_returning_id(&mut tx, query)
            .await
            .context(context)?;
        // RWDTJSN is JSONB in the original's PostgreSQL install, text elsewhere.
        let data = if Self::BACKEND == Backend::Postgres {
            "CAST($5 AS JSONB)"
        } else {
            "$5"
        };
        let error_sql = crate::common::insert_sql(
            Self::BACKEND,
            "DMS_FLUPLD_ERR",
            "ERRID",
            "DMS_FLUPLD_ERRSEQ",
            &[
                "FLUPLDREF",
                "RUNID",
                "RWNDX",
                "RRCD",
                "RWDTJSN",
                "RRMSSG",
                "CRTDBY",
                "CRTDT",
            ],
        )
        .replacen("$5", data, 1);
        for error in errors {
            let query = sqlx::query(self.sql(&error_sql))
                .bind(&run.flupldref)
                .bind(runid)
                .bind(error.line)
                .bind(&error.code)
                .bind(&error.data)
                .bind(&error.message)
                .bind(&run.user)
                .bind(ended);
            Self::insert_returning_id(&mut tx, query)
                .await
                .context(context)?;
        }
        sqlx::query(
            self.sql("UPDATE DMS_FLUPLD SET LSTRUNDT = $1 WHERE FLUPLDREF = $2 AND CURFLG = 'Y'"),
        )
        .bind(ended)
        .bind(&run.flupldref)
        .execute(&mut *tx)
        .await
        .context(context)?;
        tx.commit().await.context(context)?;
        Ok(runid)
    }

    /// `Store::set_upload_hash`.
    async fn write_upload_hash(&self, flupldref: &str, hash: &str) -> Result<()> {
        sqlx::query(
            self.sql("UPDATE DMS_FLUPLD SET FLHASH = $1 WHERE FLUPLDREF = $2 AND CURFLG = 'Y'"),
        )
        .bind(hash)
        .bind(flupldref)
        .execute(self.pool())
        .await
        .context(|| format!("recording the file hash of file upload {flupldref}"))?;
        Ok(())
    }

    /// `Store::upload_files`.
    async fn read_upload_files(&self) -> Result<Vec<(String, Option<String>)>> {
        let rows =
            sqlx::query(self.sql(
                "SELECT FLUPLDREF, FLPTH FROM DMS_FLUPLD WHERE CURFLG = 'Y' ORDER BY FLUPLDREF",
            ))
            .fetch_all(self.pool())
            .await
            .context(|| "reading the file uploads".to_string())?;
        decode_all(rows, |row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .context(|| "reading the file uploads".to_string())
    }

    /// `Store::due_upload_schedules` (`due_by` given) and `Store::upload_schedules`:
    /// current rows only, since superseded versions (`CURFLG='N'`) never fire (the
    /// original's did).
    async fn read_upload_schedules(
        &self,
        due_by: Option<NaiveDateTime>,
    ) -> Result<Vec<UploadScheduleRow>> {
        self.read_dwtool_schedules(
            "SELECT CAST(SCHDID AS BIGINT), FLUPLDREF, FRQNCY, TM_PRM, NXT_RUN_DT, \
             LST_RUN_DT, STTS FROM DMS_FLUPLD_SCHD",
            CURRENT_ONLY,
            due_by,
            "file-upload schedules",
            |row| {
                Ok(UploadScheduleRow {
                    schdid: row.try_get(0)?,
                    flupldref: row.try_get(1)?,
                    frqncy: row.try_get(2)?,
                    tm_prm: row.try_get(3)?,
                    nxt_run_dt: row.try_get(4)?,
                    lst_run_dt: row.try_get(5)?,
                    stts: row.try_get(6)?,
                })
            },
        )
        .await
    }

    /// `Store::fire_upload_schedule`.
    async fn fire_upload_row(&self, fire: &DwtoolFire, now: DateTime<Utc>) -> Result<bool> {
        self.fire_dwtool_row("DMS_FLUPLD_SCHD", "UPTDT", CURRENT_ONLY, fire, now)
            .await
            .context(|| format!("firing file-upload schedule {}", fire.schdid))
    }
}
