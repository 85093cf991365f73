//! What a backend provides to the shared store. `common.rs` writes every statement
//! once and builds each backend's `Store` from it (`store_impl!`); what differs between
//! databases is here, one implementation per backend module (`sqlite.rs`,
//! `postgres.rs`, `mysql.rs`). Adding a backend starts with this trait.

use dwsched_model::{Claim, Request, RunWrite, RunWritten, ScheduleRow};
use sqlx::Database;

use crate::schema::Table;
use crate::{Backend, RequestWatcher};

/// A UTC time read from a column without a zone.
pub(crate) fn utc(value: Option<chrono::NaiveDateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    value.map(|t| t.and_utc())
}

/// Decodes every row with `decode`.
pub(crate) fn decode_all<R, T>(
    rows: Vec<R>,
    decode: fn(&R) -> sqlx::Result<T>,
) -> sqlx::Result<Vec<T>> {
    rows.iter().map(decode).collect()
}

/// A connection of a backend's database.
pub(crate) type Conn<D> = <<D as Driver>::Db as Database>::Connection;

pub(crate) trait Driver: Send + Sync + Sized {
    /// The sqlx database.
    type Db: Database;
    /// Which backend this is: the dialect `common.rs` rewrites statements for.
    const BACKEND: Backend;
    /// The clause that ends a queue insert so that a taken `DEDUPE_KEY` skips the row.
    const IGNORE_DUPLICATE_DEDUPE_KEY: &'static str;

    /// The schema (PostgreSQL) or database (MySQL) of the tables, for messages and the
    /// migration lock.
    fn schema_name(&self) -> String;
    fn pool(&self) -> &sqlx::Pool<Self::Db>;

    /// Shared statement text, rewritten for this backend.
    fn sql(&self, text: &str) -> sqlx::SqlStr {
        use sqlx::SqlSafeStr as _;
        // Statement text is built from constants and validated identifiers only; every
        // value is a bind parameter.
        sqlx::AssertSqlSafe(crate::common::rewrite(Self::BACKEND, text)).into_sql_str()
    }

    /// An insert of a row with a new id, rewritten for this backend.
    fn insert_sql(
        &self,
        table: &str,
        id_column: &str,
        sequence: &str,
        columns: &[&str],
    ) -> sqlx::SqlStr {
        self.sql(&crate::common::insert_sql(
            Self::BACKEND,
            table,
            id_column,
            sequence,
            columns,
        ))
    }

    // Migrations.
    /// Keeps two `init`s from migrating at once.
    async fn lock_for_migration(conn: &mut Conn<Self>, schema: &str) -> sqlx::Result<()>;
    async fn unlock_after_migration(conn: &mut Conn<Self>, schema: &str) -> sqlx::Result<()>;
    /// What a table needs before it is created (PostgreSQL: its id sequence, started
    /// above the ids an original install already holds).
    async fn prepare_table(conn: &mut Conn<Self>, table: &Table) -> sqlx::Result<()>;
    /// The upper-case names of a table's columns, `None` when it does not exist.
    async fn table_columns(conn: &mut Conn<Self>, table: &str)
    -> sqlx::Result<Option<Vec<String>>>;
    async fn index_exists(conn: &mut Conn<Self>, index: &str) -> sqlx::Result<bool>;
    /// Installs what wakes nodes when any tool inserts a request (a trigger that
    /// notifies, on PostgreSQL; nothing elsewhere).
    async fn install_notify(conn: &mut Conn<Self>) -> sqlx::Result<()>;

    // Writes.
    /// A transaction for writes (SQLite takes its write lock at once).
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Self::Db>>;
    /// Runs an insert built by `common::insert_sql` and returns the new row's id.
    async fn insert_returning_id(
        conn: &mut Conn<Self>,
        query: sqlx::query::Query<'_, Self::Db, <Self::Db as Database>::Arguments>,
    ) -> sqlx::Result<i64>;
    /// `Store::write_runs`: one by one (`write_runs_each`), or in set statements.
    async fn write_run_batch(
        &self,
        writes: &[RunWrite],
    ) -> crate::Result<Vec<crate::Result<RunWritten>>>;

    // Reads the service makes often, each in the backend's fastest form.
    /// `Store::claim_requests`: the claim as the backend does it atomically.
    async fn claim_batch(&self, claim: &Claim) -> sqlx::Result<Vec<Request>>;
    /// The ids of the rows the service fires.
    async fn read_scheduled_ids(&self) -> crate::Result<Vec<i64>>;
    /// The `DMS_JOBSCH` rows matching `filter` (SQL over the table's columns).
    async fn list_schedules_where(&self, filter: &str) -> crate::Result<Vec<ScheduleRow>>;
    /// `Store::watch_requests`.
    async fn request_watcher(&self) -> crate::Result<Option<Box<dyn RequestWatcher>>>;
}

/// The rows a statement changed, for each backend's result type (sqlx has no trait
/// for it).
pub(crate) trait Affected {
    fn affected(&self) -> u64;
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::mysql::MySqlQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}
