//! The SQLite store: the embedded default. One file, WAL mode so readers never wait for
//! the writer, and a busy timeout so writers queue instead of failing. A claim is a
//! single `UPDATE … RETURNING`, which SQLite runs atomically.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};

use dwsched_model::{Request, ScheduleRow};

use crate::common::{claim_update_sql, sort_oldest_first, store_impl};
use crate::driver::Driver;
use crate::driver::decode_all;
use crate::schema::Table;
use crate::{Backend, Context as _};
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
}

impl Driver for SqliteStore {
    type Db = Sqlite;
    const BACKEND: Backend = Backend::Sqlite;

    fn pool(&self) -> &sqlx::Pool<Self::Db> {
        &self.pool
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
    async fn request_watcher(&self) -> crate::Result<Option<Box<dyn crate::RequestWatcher>>> {
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
    /// The ids of the scheduled rows, as one JSON document (see below).
    async fn read_scheduled_ids(&self) -> crate::Result<Vec<i64>> {
        let sql = format!(
            "SELECT COALESCE(json_group_array(JOBSCHID), '[]') FROM DMS_JOBSCH WHERE {}",
            crate::common::SCHEDULED
        );
        let text: String = sqlx::query_scalar(self.sql(&sql))
            .fetch_one(&self.pool)
            .await
            .context(|| "listing scheduled ids".to_string())?;
        serde_json::from_str(&text)
            .map_err(|e| crate::StoreError::Invalid(format!("reading scheduled ids: {e}")))
    }
    /// The schedules matching `filter`, fetched as one JSON document: sqlx decodes
    /// SQLite values one by one across a thread, which costs about 1 µs a value, and a
    /// sync reads 22 columns of every row.
    async fn list_schedules_where(&self, filter: &str) -> crate::Result<Vec<ScheduleRow>> {
        let sql = format!(
            "SELECT COALESCE(json_group_array(json_array(JOBSCHID, JOBFLWID, MAPREF, FRQCD, \
             FRQDD, FRQHH, FRQMI, STRTDT, ENDDT, STFLG, SCHFLG, CURFLG, DPND_JOBSCHID, \
             LST_RUN_DT, NXT_RUN_DT, TIMEZONE, CRONEXPR, MISFIRE, MAXFAIL, FAILCNT, SCHERR, \
             RECUPDT, CHGDT, CALNM, CALRULE)), '[]') FROM (SELECT * FROM DMS_JOBSCH WHERE {filter} ORDER BY JOBSCHID)"
        );
        let text: String = sqlx::query_scalar(self.sql(&sql))
            .fetch_one(&self.pool)
            .await
            .context(|| "listing schedules".to_string())?;
        let rows: Vec<JsonSchedule<'_>> = serde_json::from_str(&text)
            .map_err(|e| crate::StoreError::Invalid(format!("reading schedules: {e}")))?;
        rows.into_iter().map(JsonSchedule::into_row).collect()
    }
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
    async fn write_run_batch(
        &self,
        writes: &[dwsched_model::RunWrite],
    ) -> crate::Result<Vec<crate::Result<dwsched_model::RunWritten>>> {
        crate::runs::Runs::write_runs_each(self, writes).await
    }
    async fn claim_batch(&self, claim: &dwsched_model::Claim) -> sqlx::Result<Vec<Request>> {
        let sql = claim_update_sql(claim.class, "", "");
        let now = claim.now.naive_utc();
        let rows = sqlx::query(self.sql(&sql))
            .bind(now)
            .bind(i64::from(claim.limit))
            .bind(&claim.node)
            .bind(claim.lease.as_secs_f64())
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = decode_all(rows, <Self as crate::queue::Queue>::decode_request)?;
        sort_oldest_first(&mut claimed);
        Ok(claimed)
    }
}

type Text<'a> = Option<std::borrow::Cow<'a, str>>;

/// A `DMS_JOBSCH` row as a JSON array, columns in `list_schedules_where` order.
#[derive(serde::Deserialize)]
struct JsonSchedule<'a>(
    Number,
    Option<Number>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    Option<Number>,
    Option<Number>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    Option<Number>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    Option<Number>,
    Option<Number>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
);

/// A whole number as SQLite may hold it: an integer, a real, or text.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Real(f64),
    Text(String),
}

impl JsonSchedule<'_> {
    fn into_row(self) -> crate::Result<ScheduleRow> {
        let id = self.0.value("JOBSCHID", None)?;
        let int = |n: Option<Number>, column| n.map(|n| n.value(column, Some(id))).transpose();
        let text = |t: Text<'_>| t.map(|t| t.into_owned());
        let time = |t: Text<'_>, column| t.map(|t| parse_time(&t, column, id)).transpose();
        Ok(ScheduleRow {
            jobschid: id,
            jobflwid: int(self.1, "JOBFLWID")?,
            mapref: text(self.2).unwrap_or_default(),
            frqcd: text(self.3),
            frqdd: text(self.4),
            frqhh: int(self.5, "FRQHH")?,
            frqmi: int(self.6, "FRQMI")?,
            strtdt: time(self.7, "STRTDT")?,
            enddt: time(self.8, "ENDDT")?,
            stflg: text(self.9),
            schflg: text(self.10),
            curflg: text(self.11),
            dpnd_jobschid: int(self.12, "DPND_JOBSCHID")?,
            lst_run_dt: time(self.13, "LST_RUN_DT")?.map(|t| t.and_utc()),
            nxt_run_dt: time(self.14, "NXT_RUN_DT")?.map(|t| t.and_utc()),
            timezone: text(self.15),
            cronexpr: text(self.16),
            misfire: text(self.17),
            maxfail: int(self.18, "MAXFAIL")?,
            failcnt: int(self.19, "FAILCNT")?,
            scherr: text(self.20),
            updated_at: time(self.21, "RECUPDT")?.map(|t| t.and_utc()),
            changed_at: time(self.22, "CHGDT")?.map(|t| t.and_utc()),
            calnm: text(self.23),
            calrule: text(self.24),
        })
    }
}

impl Number {
    fn value(self, column: &str, id: Option<i64>) -> crate::Result<i64> {
        match self {
            Self::Int(n) => Some(n),
            Self::Real(f) => (f.fract() == 0.0).then_some(f as i64),
            Self::Text(t) => t.trim().parse().ok(),
        }
        .ok_or_else(|| bad_value(column, id, "is not a whole number"))
    }
}

fn bad_value(column: &str, id: Option<i64>, why: &str) -> crate::StoreError {
    let row = id.map_or_else(|| "?".to_string(), |id| id.to_string());
    crate::StoreError::Invalid(format!("DMS_JOBSCH row {row}: column {column} {why}"))
}

/// Reads a stored time: `YYYY-MM-DD HH:MM:SS[.f]` (as written here) quickly, other
/// spellings through chrono.
fn parse_time(text: &str, column: &str, id: i64) -> crate::Result<chrono::NaiveDateTime> {
    fast_time(text.as_bytes())
        .or_else(|| {
            let text = text.trim().trim_end_matches('Z');
            [
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M",
            ]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
            .or_else(|| {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
        })
        .ok_or_else(|| bad_value(column, Some(id), &format!("'{text}' is not a time")))
}

fn fast_time(b: &[u8]) -> Option<chrono::NaiveDateTime> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0_u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let mut nanos = 0;
    if b.len() > 19 {
        let fraction = &b[20..];
        if b[19] != b'.'
            || fraction.is_empty()
            || fraction.len() > 9
            || !fraction.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        nanos = num(20..b.len())? * 10_u32.pow(9 - fraction.len() as u32);
    }
    chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?
        .and_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)
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

store_impl!(SqliteStore);
