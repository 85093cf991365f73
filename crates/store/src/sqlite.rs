//! The SQLite store: the embedded default. One file, WAL mode so readers never wait for
//! the writer, and a busy timeout so writers queue instead of failing. A claim is a
//! single `UPDATE … RETURNING`, which SQLite runs atomically.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};

use crate::common::{claim_update_sql, sort_oldest_first, store_impl};
use crate::schema::Table;
use crate::{StoreOptions, redact_url};

pub struct SqliteStore {
    pool: SqlitePool,
    connect: SqliteConnectOptions,
}

impl SqliteStore {
    pub async fn open(options: &StoreOptions) -> crate::Result<Self> {
        if let Some(schema) = options.validated_schema()?
            && !schema.eq_ignore_ascii_case("main")
        {
            tracing::warn!(
                schema,
                "SQLite keeps every table in one file; SCHEMA is ignored on SQLite"
            );
        }
        let connect = SqliteConnectOptions::from_str(&options.url)
            .map_err(|err| {
                crate::StoreError::BadUrl(format!("'{}': {err}", redact_url(&options.url)))
            })?
            .create_if_missing(options.create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|err| {
                let hint = if options.create {
                    String::new()
                } else {
                    "; run `dwsched init` to create it".to_string()
                };
                options.connect_error(crate::Backend::Sqlite, format!("{err}{hint}"))
            })?;
        Ok(Self { pool, connect })
    }

    fn schema_name(&self) -> String {
        "main".to_string()
    }

    async fn lock_for_migration(_: &mut SqliteConnection, _: &str) -> sqlx::Result<()> {
        // SQLite serialises writers itself, and the steps are idempotent.
        Ok(())
    }

    async fn unlock_after_migration(_: &mut SqliteConnection, _: &str) -> sqlx::Result<()> {
        Ok(())
    }

    async fn prepare_table(_: &mut SqliteConnection, _: &Table) -> sqlx::Result<()> {
        Ok(())
    }

    /// The upper-case names of a table's columns, `None` when it does not exist.
    async fn table_columns(
        conn: &mut SqliteConnection,
        table: &str,
    ) -> sqlx::Result<Option<Vec<String>>> {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT upper(name) FROM pragma_table_info($1)")
                .bind(table)
                .fetch_all(conn)
                .await?;
        Ok((!columns.is_empty()).then_some(columns))
    }

    async fn index_exists(conn: &mut SqliteConnection, index: &str) -> sqlx::Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND upper(name) = upper($1)",
        )
        .bind(index)
        .fetch_optional(conn)
        .await?;
        Ok(found.is_some())
    }

    async fn install_notify(_: &mut SqliteConnection) -> sqlx::Result<()> {
        Ok(())
    }

    async fn watch_impl(&self) -> crate::Result<Option<Box<dyn crate::RequestWatcher>>> {
        use sqlx::Connection as _;
        let conn = SqliteConnection::connect_with(&self.connect)
            .await
            .context(|| "opening the change watcher".to_string())?;
        let mut watcher = SqliteWatcher { conn, version: 0 };
        watcher.version = watcher.data_version().await?;
        Ok(Some(Box::new(watcher)))
    }

    /// Ends a queue insert so that a taken dedupe key skips the row.
    const IGNORE_DUPLICATE_DEDUPE_KEY: &str = "ON CONFLICT (DEDUPE_KEY) DO NOTHING";

    /// A transaction that takes the write lock at once. A deferred one that reads
    /// first could not upgrade after another connection's commit (SQLITE_BUSY_SNAPSHOT,
    /// which the busy timeout does not cover).
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn insert_returning_id(
        conn: &mut SqliteConnection,
        query: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::Result<i64> {
        use sqlx::Row as _;
        query.fetch_one(conn).await?.try_get(0)
    }

    async fn claim_impl(&self, claim: &dwsched_model::Claim) -> sqlx::Result<Vec<Request>> {
        let sql = claim_update_sql(claim.class, "");
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

/// Watches `PRAGMA data_version` on a connection of its own: the number changes when
/// another connection commits, and reading it costs microseconds.
struct SqliteWatcher {
    conn: SqliteConnection,
    version: i64,
}

impl SqliteWatcher {
    const CHECK_EVERY: Duration = Duration::from_millis(25);

    async fn data_version(&mut self) -> crate::Result<i64> {
        sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut self.conn)
            .await
            .context(|| "reading PRAGMA data_version".to_string())
    }
}

#[async_trait::async_trait]
impl crate::RequestWatcher for SqliteWatcher {
    async fn changed(&mut self) -> crate::Result<()> {
        loop {
            tokio::time::sleep(Self::CHECK_EVERY).await;
            let version = self.data_version().await?;
            if version != self.version {
                self.version = version;
                return Ok(());
            }
        }
    }
}

store_impl!(SqliteStore, Sqlite, Backend::Sqlite);
