//! The PostgreSQL store. Tables live unquoted (lower-case) in the configured schema,
//! which is put first on each connection's `search_path`; ids come from the original
//! install's sequences (`DMS_JOBSCHSEQ`, …); claims use `FOR UPDATE SKIP LOCKED`.

use std::str::FromStr;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, Postgres};

use crate::common::{claim_update_sql, sort_oldest_first, store_impl};
use crate::schema::Table;
use crate::{StoreOptions, redact_url};

pub struct PgStore {
    pool: PgPool,
    schema: String,
}

impl PgStore {
    pub async fn open(options: &StoreOptions) -> crate::Result<Self> {
        let schema = options
            .validated_schema()?
            .unwrap_or("public")
            .to_ascii_lowercase();
        let connect = PgConnectOptions::from_str(&options.url).map_err(|err| {
            crate::StoreError::BadUrl(format!("'{}': {err}", redact_url(&options.url)))
        })?;
        let connect = connect
            .options([("search_path", schema.as_str())])
            .application_name("dwsched");
        // A direct first connection reports the real cause (refused, bad password, no
        // such database) where a pool would only report its own timeout.
        let probe = tokio::time::timeout(
            options.connect_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| options.connect_error(crate::Backend::Postgres, "timed out"))?
        .map_err(|err| options.connect_error(crate::Backend::Postgres, err))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(|err| options.connect_error(crate::Backend::Postgres, err))?;
        if options.create {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&pool)
            .await
            .map_err(|source| crate::StoreError::Database {
                context: format!("creating schema {schema}"),
                source,
            })?;
        }
        Ok(Self { pool, schema })
    }

    fn schema_name(&self) -> String {
        self.schema.clone()
    }

    async fn lock_for_migration(conn: &mut PgConnection, schema: &str) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(format!("dwsched migrate {schema}"))
            .execute(conn)
            .await
            .map(drop)
    }

    async fn unlock_after_migration(conn: &mut PgConnection, schema: &str) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(format!("dwsched migrate {schema}"))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Creates the table's sequence when missing. A table the original tool filled
    /// already has ids, so a new sequence starts above the largest.
    async fn prepare_table(conn: &mut PgConnection, table: &Table) -> sqlx::Result<()> {
        for sequence in table.sequences() {
            let sequence = sequence.to_ascii_lowercase();
            let exists: Option<String> = sqlx::query_scalar("SELECT CAST(to_regclass($1) AS TEXT)")
                .bind(&sequence)
                .fetch_one(&mut *conn)
                .await?;
            if exists.is_some() {
                continue;
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SEQUENCE IF NOT EXISTS {sequence}"
            )))
            .execute(&mut *conn)
            .await?;
            if Self::table_columns(&mut *conn, table.name).await?.is_some() {
                let id = table.columns[0].name;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SELECT setval('{sequence}', CAST(MAX({id}) AS BIGINT)) FROM {} HAVING MAX({id}) IS NOT NULL",
                    table.name
                )))
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }

    /// The upper-case names of a table's columns, `None` when it does not exist.
    async fn table_columns(
        conn: &mut PgConnection,
        table: &str,
    ) -> sqlx::Result<Option<Vec<String>>> {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT upper(CAST(column_name AS TEXT)) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = lower($1)",
        )
        .bind(table)
        .fetch_all(conn)
        .await?;
        Ok((!columns.is_empty()).then_some(columns))
    }

    async fn index_exists(conn: &mut PgConnection, index: &str) -> sqlx::Result<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = lower($1)",
        )
        .bind(index)
        .fetch_optional(conn)
        .await?;
        Ok(found.is_some())
    }

    /// A trigger that notifies the schema's channel after each insert into the queue,
    /// whichever tool inserts.
    async fn install_notify(conn: &mut PgConnection) -> sqlx::Result<()> {
        sqlx::raw_sql(
            "CREATE OR REPLACE FUNCTION dwsched_notify_request() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_notify('dwsched_' || left(TG_TABLE_SCHEMA, 55), ''); RETURN NULL; END $$; \
             DROP TRIGGER IF EXISTS dwsched_request_inserted ON dms_prcreq; \
             CREATE TRIGGER dwsched_request_inserted AFTER INSERT ON dms_prcreq \
             FOR EACH STATEMENT EXECUTE FUNCTION dwsched_notify_request()",
        )
        .execute(conn)
        .await
        .map(drop)
    }

    async fn watch_impl(&self) -> crate::Result<Option<Box<dyn crate::RequestWatcher>>> {
        let context = || "listening for new requests".to_string();
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .context(context)?;
        let channel: String = format!(
            "dwsched_{}",
            self.schema.chars().take(55).collect::<String>()
        );
        listener.listen(&channel).await.context(context)?;
        Ok(Some(Box::new(PgWatcher { listener })))
    }

    /// Ends a queue insert so that a taken dedupe key skips the row.
    const IGNORE_DUPLICATE_DEDUPE_KEY: &str = "ON CONFLICT (DEDUPE_KEY) DO NOTHING";

    async fn scheduled_ids_impl(&self) -> crate::Result<Vec<i64>> {
        self.scheduled_id_rows().await
    }

    async fn list_schedules_where(&self, filter: &str) -> crate::Result<Vec<ScheduleRow>> {
        self.list_schedule_rows(filter).await
    }

    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Postgres>> {
        self.pool.begin().await
    }

    async fn insert_returning_id(
        conn: &mut PgConnection,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::Result<i64> {
        use sqlx::Row as _;
        query.fetch_one(conn).await?.try_get(0)
    }

    async fn claim_impl(&self, claim: &dwsched_model::Claim) -> sqlx::Result<Vec<Request>> {
        let sql = claim_update_sql(claim.class, "FOR UPDATE OF r SKIP LOCKED");
        let now = claim.now.naive_utc();
        let rows = sqlx::query(self.sql(&sql))
            .bind(now)
            .bind(i64::from(claim.limit))
            .bind(&claim.node)
            .bind(claim.lease_until.naive_utc())
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = decode_all(rows, decode_request)?;
        sort_oldest_first(&mut claimed);
        Ok(claimed)
    }
}

struct PgWatcher {
    listener: PgListener,
}

#[async_trait::async_trait]
impl crate::RequestWatcher for PgWatcher {
    async fn changed(&mut self) -> crate::Result<()> {
        // After a lost connection the listener reconnects on its own; what was notified
        // meanwhile is caught by the poll fallback.
        self.listener
            .recv()
            .await
            .map(drop)
            .context(|| "waiting for request notifications".to_string())
    }
}

store_impl!(PgStore, Postgres, Backend::Postgres);
