//! The MySQL / MariaDB store. The configured schema is a database; ids come from
//! `AUTO_INCREMENT`; a claim finds its candidates, locks them by key `FOR UPDATE SKIP
//! LOCKED` and updates them in one transaction, as MariaDB has no `UPDATE … RETURNING`.

use std::str::FromStr;

use sqlx::Connection as _;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};

use dwsched_model::{Request, ScheduleRow};

use crate::Backend;
use crate::common::REQUEST_COLUMNS;
use crate::common::{claim_candidates_sql, sort_oldest_first, store_impl, to_positional};
use crate::driver::Driver;
use crate::driver::decode_all;
use crate::schema::Table;
use crate::{StoreOptions, redact_url};

pub struct MySqlStore {
    pool: MySqlPool,
    schema: String,
}

impl MySqlStore {
    pub async fn open(options: &StoreOptions) -> crate::Result<Self> {
        let connect = MySqlConnectOptions::from_str(&options.url).map_err(|err| {
            crate::StoreError::BadUrl(format!("'{}': {err}", redact_url(&options.url)))
        })?;
        let connect_error = |err: sqlx::Error| options.connect_error(crate::Backend::MySql, err);
        let schema = match options.validated_schema()? {
            Some(schema) => schema.to_string(),
            None => connect.get_database().map(str::to_string).ok_or_else(|| {
                crate::StoreError::BadUrl(format!(
                    "'{}' names no database; add one to the URL or set SCHEMA",
                    redact_url(&options.url)
                ))
            })?,
        };
        // A direct first connection reports the real cause (refused, bad password) where
        // a pool would only report its own timeout; `init` also creates the database.
        let mut bootstrap = tokio::time::timeout(
            options.connect_timeout,
            MySqlConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| options.connect_error(crate::Backend::MySql, "timed out"))?
        .map_err(connect_error)?;
        if !options.create {
            let exists: Option<String> = sqlx::query_scalar(
                "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            )
            .bind(&schema)
            .fetch_optional(&mut bootstrap)
            .await
            .map_err(connect_error)?;
            if exists.is_none() {
                return Err(crate::StoreError::NotInitialised {
                    schema,
                    found: None,
                    needed: crate::schema::latest_version(),
                });
            }
        }
        if options.create {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE IF NOT EXISTS {schema}"
            )))
            .execute(&mut bootstrap)
            .await
            .map_err(|source| crate::StoreError::Database {
                context: format!("creating database {schema}"),
                source,
            })?;
        }
        let _ = bootstrap.close().await;
        let pool = MySqlPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            // Service times are UTC; keep the session from converting them.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql("SET time_zone = '+00:00'")
                        .execute(conn)
                        .await
                        .map(drop)
                })
            })
            .connect_with(connect.database(&schema))
            .await
            .map_err(connect_error)?;
        Ok(Self { pool, schema })
    }
}

impl Driver for MySqlStore {
    type Db = MySql;
    const BACKEND: Backend = Backend::MySql;

    fn pool(&self) -> &sqlx::Pool<Self::Db> {
        &self.pool
    }

    fn schema_name(&self) -> String {
        self.schema.clone()
    }
    async fn lock_for_migration(conn: &mut MySqlConnection, schema: &str) -> sqlx::Result<()> {
        sqlx::query("SELECT GET_LOCK(?, 300)")
            .bind(format!("dwsched migrate {schema}"))
            .execute(conn)
            .await
            .map(drop)
    }
    async fn unlock_after_migration(conn: &mut MySqlConnection, schema: &str) -> sqlx::Result<()> {
        sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(format!("dwsched migrate {schema}"))
            .execute(conn)
            .await
            .map(drop)
    }
    async fn prepare_table(_: &mut MySqlConnection, _: &Table) -> sqlx::Result<()> {
        Ok(())
    }
    /// The upper-case names of a table's columns, `None` when it does not exist.
    async fn table_columns(
        conn: &mut MySqlConnection,
        table: &str,
    ) -> sqlx::Result<Option<Vec<String>>> {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(UPPER(COLUMN_NAME) AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        )
        .bind(table)
        .fetch_all(conn)
        .await?;
        Ok((!columns.is_empty()).then_some(columns))
    }
    async fn index_exists(conn: &mut MySqlConnection, index: &str) -> sqlx::Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND UPPER(INDEX_NAME) = UPPER(?) LIMIT 1",
        )
        .bind(index)
        .fetch_optional(conn)
        .await?;
        Ok(found.is_some())
    }
    async fn install_notify(_: &mut MySqlConnection) -> sqlx::Result<()> {
        Ok(())
    }
    async fn request_watcher(&self) -> crate::Result<Option<Box<dyn crate::RequestWatcher>>> {
        // MySQL has no notification channel; the poll interval applies.
        Ok(None)
    }
    /// Ends a queue insert so that a taken dedupe key skips the row.
    const IGNORE_DUPLICATE_DEDUPE_KEY: &str = "ON DUPLICATE KEY UPDATE REQUEST_ID = REQUEST_ID";
    async fn read_scheduled_ids(&self) -> crate::Result<Vec<i64>> {
        crate::schedules::Schedules::scheduled_id_rows(self).await
    }
    async fn list_schedules_where(&self, filter: &str) -> crate::Result<Vec<ScheduleRow>> {
        crate::schedules::Schedules::list_schedule_rows(self, filter).await
    }
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, MySql>> {
        self.pool.begin().await
    }
    async fn insert_returning_id(
        conn: &mut MySqlConnection,
        query: sqlx::query::Query<'_, MySql, sqlx::mysql::MySqlArguments>,
    ) -> sqlx::Result<i64> {
        let done = query.execute(conn).await?;
        i64::try_from(done.last_insert_id())
            .map_err(|_| sqlx::Error::Protocol("an insert id does not fit in BIGINT".into()))
    }
    async fn write_run_batch(
        &self,
        writes: &[dwsched_model::RunWrite],
    ) -> crate::Result<Vec<crate::Result<dwsched_model::RunWritten>>> {
        crate::runs::Runs::write_runs_each(self, writes).await
    }
    async fn claim_batch(&self, claim: &dwsched_model::Claim) -> sqlx::Result<Vec<Request>> {
        let now = claim.now.naive_utc();
        let mut tx = self.pool.begin().await?;
        // The node's row first, held against a rescue's delete until this claim
        // commits (see `claimer_registered_sql`): a node whose row is gone claims nothing.
        let registered: Option<String> = sqlx::query_scalar(
            "SELECT NODE_ID FROM DMS_SCHNODE WHERE NODE_ID = ? LOCK IN SHARE MODE",
        )
        .bind(&claim.node)
        .fetch_optional(&mut *tx)
        .await?;
        if registered.is_none() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        // InnoDB locks every row a locking read touches, subqueries included, and
        // MariaDB has no `FOR UPDATE OF`: so the candidates are found with a plain read
        // and only they are locked, by key, with their status checked again.
        let (sql, order) = to_positional(&claim_candidates_sql(claim.class, ""));
        let mut select_candidates = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for parameter in order {
            select_candidates = match parameter {
                1 => select_candidates.bind(now),
                3 => select_candidates.bind(claim.node.clone()),
                _ => select_candidates.bind(i64::from(claim.limit)),
            };
        }
        let candidates: Vec<String> = select_candidates.fetch_all(&mut *tx).await?;
        if candidates.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let mut lock = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT REQUEST_ID FROM DMS_PRCREQ WHERE REQUEST_ID IN ({}) \
             AND STATUS IN ('NEW', 'QUEUED') ORDER BY REQUEST_ID FOR UPDATE SKIP LOCKED",
            vec!["?"; candidates.len()].join(", ")
        )));
        for id in &candidates {
            lock = lock.bind(id);
        }
        let picked: Vec<String> = lock.fetch_all(&mut *tx).await?;
        if picked.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; picked.len()].join(", ");
        let mut update = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE DMS_PRCREQ SET STATUS = 'PROCESSING', CLAIMED_AT = ?, CLAIMED_BY = ?, \
             LEASE_UNTIL = {}, ATTEMPTS = COALESCE(ATTEMPTS, 0) + 1 WHERE REQUEST_ID IN ({placeholders})",
            crate::Backend::MySql.now_plus("?")
        )))
        .bind(now)
        .bind(&claim.node)
        .bind(claim.lease.as_secs_f64());
        let mut select = sqlx::query(sqlx::AssertSqlSafe(
            crate::common::rewrite(
                crate::Backend::MySql,
                &format!("SELECT {REQUEST_COLUMNS} FROM DMS_PRCREQ"),
            ) + &format!(" WHERE REQUEST_ID IN ({placeholders})"),
        ));
        for id in &picked {
            update = update.bind(id);
            select = select.bind(id);
        }
        update.execute(&mut *tx).await?;
        let rows = select.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut claimed = decode_all(rows, <Self as crate::queue::Queue>::decode_request)?;
        sort_oldest_first(&mut claimed);
        Ok(claimed)
    }
}

store_impl!(MySqlStore);
