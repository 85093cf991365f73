//! The databases `sql` and `load` steps work on: named connections of
//! `DMS_DBCONDTLS`, resolved to connect options, pooled per node, and sessions whose
//! running statement can be cancelled on the server.
//!
//! *Architecture Invariant:* a connection's URL and password never leave this module.
//! Messages name a connection by its name and where it points ([`ConnectionSpec::place`]).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dwsched_model::Connection;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlConnection, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, Pool};
use tokio_util::sync::CancellationToken;

/// Connections a node keeps open per named connection.
const POOL_SIZE: u32 = 8;
/// How long the first connection of an empty pool may take.
const CONNECT_CHECK: Duration = Duration::from_secs(10);
/// How long a step waits for a free connection of a busy pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pooled connections unused this long are closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a cancelled statement has to end before its connection is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(3);
/// SQLite checks for cancellation every this many virtual machine instructions.
const SQLITE_PROGRESS_STEPS: i32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbKind {
    Sqlite,
    Postgres,
    MySql,
}

/// A database type of `DMS_DBCONDTLS.DBTYP`: the spellings a row may use, the URL
/// schemes that name it, and the kind flow steps run it as (`None`: it may be
/// registered, but steps refuse it).
#[derive(Debug, Clone, Copy)]
pub struct DatabaseType {
    /// The spelling dwsched writes.
    pub dbtyp: &'static str,
    spellings: &'static [&'static str],
    schemes: &'static [&'static str],
    pub kind: Option<DbKind>,
}

/// Every database type dwsched knows: the one place `DBTYP` values, URL schemes and
/// kinds are matched.
pub const DATABASE_TYPES: [DatabaseType; 4] = [
    DatabaseType {
        dbtyp: "SQLITE",
        spellings: &["SQLITE"],
        schemes: &["sqlite"],
        kind: Some(DbKind::Sqlite),
    },
    DatabaseType {
        dbtyp: "POSTGRESQL",
        spellings: &["POSTGRESQL", "POSTGRES", "PG"],
        schemes: &["postgres", "postgresql"],
        kind: Some(DbKind::Postgres),
    },
    DatabaseType {
        dbtyp: "MYSQL",
        spellings: &["MYSQL", "MARIADB"],
        schemes: &["mysql", "mariadb"],
        kind: Some(DbKind::MySql),
    },
    DatabaseType {
        dbtyp: "ORACLE",
        spellings: &["ORACLE"],
        schemes: &["oracle"],
        kind: None,
    },
];

impl DatabaseType {
    /// The type a URL scheme names.
    pub fn from_scheme(scheme: &str) -> Option<Self> {
        let scheme = scheme.to_ascii_lowercase();
        DATABASE_TYPES
            .into_iter()
            .find(|t| t.schemes.contains(&scheme.as_str()))
    }

    /// The type a `DBTYP` value names, in any case.
    pub fn from_dbtyp(dbtyp: &str) -> Option<Self> {
        let dbtyp = dbtyp.trim().to_ascii_uppercase();
        DATABASE_TYPES
            .into_iter()
            .find(|t| t.spellings.contains(&dbtyp.as_str()))
    }

    /// The type of a `DMS_DBCONDTLS` row: its `DBTYP`, else its `CONSTR`'s scheme.
    pub fn of_connection(row: &Connection) -> Option<Self> {
        match row.dbtyp.as_deref().filter(|t| !t.trim().is_empty()) {
            Some(dbtyp) => Self::from_dbtyp(dbtyp),
            None => {
                let constr = row.constr.as_deref()?;
                Self::from_scheme(constr.split(':').next()?)
            }
        }
    }

    /// The URL scheme dwsched writes for it.
    pub fn scheme(self) -> &'static str {
        self.schemes[0]
    }
}

/// The kinds flow steps run, for messages.
const SUPPORTED: &str = "SQLITE, POSTGRESQL or MYSQL";

impl DbKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::MySql => "MySQL",
        }
    }
}

/// A named connection, resolved and ready to connect.
#[derive(Clone)]
pub struct ConnectionSpec {
    pub name: String,
    pub kind: DbKind,
    /// Where the connection points, without credentials: `PostgreSQL at db1:5432/dw`.
    pub place: String,
    options: Options,
}

#[derive(Clone)]
enum Options {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
    MySql(MySqlConnectOptions),
}

impl fmt::Debug for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection '{}' ({})", self.name, self.place)
    }
}

impl ConnectionSpec {
    /// Resolves a `DMS_DBCONDTLS` row: its URL (`CONSTR`) or its parts, and its password,
    /// read from the environment when it is `env:NAME`.
    pub fn from_row(row: &Connection) -> Result<Self, String> {
        Self::resolve(row, |name| std::env::var(name).ok())
    }

    fn resolve(row: &Connection, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let name = row.connm.clone();
        let fail = |cause: String| format!("connection '{name}': {cause}");
        let mut url = match row.constr.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(text) => {
                url::Url::parse(text).map_err(|e| fail(format!("CONSTR is not a URL: {e}")))?
            }
            None => url_from_parts(row).map_err(fail)?,
        };
        let Some(kind) = DatabaseType::from_scheme(url.scheme()).and_then(|t| t.kind) else {
            return Err(fail(format!(
                "database type '{}' is not supported for flow steps ({SUPPORTED})",
                url.scheme()
            )));
        };
        // SQLite has no passwords; one stored for it is ignored.
        if let Some(stored) = row
            .passwd
            .as_deref()
            .filter(|p| !p.is_empty() && kind != DbKind::Sqlite)
        {
            let password = match stored.strip_prefix("env:") {
                Some(variable) => env(variable).ok_or_else(|| {
                    fail(format!(
                        "its password comes from the environment variable {variable}, which is not set"
                    ))
                })?,
                None => stored.to_string(),
            };
            url.set_password(Some(&password))
                .map_err(|()| fail("the URL cannot carry a password".to_string()))?;
        }
        if kind == DbKind::MySql
            && url.path().trim_matches('/').is_empty()
            && let Some(schema) = row.schnm.as_deref()
        {
            url.set_path(schema);
        }
        let place = describe_place(kind, &url);
        let invalid = |e: sqlx::Error| fail(format!("its settings are not valid: {e}"));
        let options = match kind {
            DbKind::Sqlite => Options::Sqlite(
                quiet(SqliteConnectOptions::from_str(url.as_str()).map_err(invalid)?)
                    .busy_timeout(Duration::from_secs(30)),
            ),
            DbKind::Postgres => {
                let mut options = quiet(PgConnectOptions::from_url(&url).map_err(invalid)?);
                if let Some(schema) = row.schnm.as_deref().filter(|s| !s.is_empty()) {
                    options = options.options([("search_path", schema)]);
                }
                Options::Postgres(options.application_name("dwsched"))
            }
            DbKind::MySql => {
                Options::MySql(quiet(MySqlConnectOptions::from_url(&url).map_err(invalid)?))
            }
        };
        Ok(Self {
            name,
            kind,
            place,
            options,
        })
    }

    /// Names the connection in a message about `cause`.
    pub fn error(&self, cause: impl fmt::Display) -> String {
        format!("connection '{}' ({}): {cause}", self.name, self.place)
    }

    /// Tries a fresh connection and closes it again.
    pub async fn check(&self) -> Result<(), String> {
        let result = match &self.options {
            Options::Sqlite(o) => o.connect().await.map(drop),
            Options::Postgres(o) => o.connect().await.map(drop),
            Options::MySql(o) => o.connect().await.map(drop),
        };
        result.map_err(|e| self.error(crate::db_error(&e)))
    }

    /// The options, with credentials, as one comparable text: a pool is kept while it
    /// matches.
    fn fingerprint(&self) -> String {
        match &self.options {
            Options::Sqlite(o) => format!("{o:?}"),
            Options::Postgres(o) => format!("{o:?}"),
            Options::MySql(o) => format!("{o:?}"),
        }
    }
}

fn url_from_parts(row: &Connection) -> Result<url::Url, String> {
    let dbtyp = row
        .dbtyp
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    if dbtyp.is_empty() {
        return Err("neither CONSTR nor DBTYP is set".to_string());
    }
    let scheme = match DatabaseType::from_dbtyp(&dbtyp).filter(|t| t.kind.is_some()) {
        Some(t) if t.kind == Some(DbKind::Sqlite) => {
            let path = row
                .dbsrvnm
                .as_deref()
                .ok_or("DBTYP is SQLITE but neither CONSTR nor DBSRVNM (the file) is set")?;
            return url::Url::parse(&format!("sqlite://{path}"))
                .map_err(|e| format!("DBSRVNM '{path}' is not a file path: {e}"));
        }
        Some(t) => t.scheme(),
        None => {
            return Err(format!(
                "database type '{dbtyp}' is not supported for flow steps ({SUPPORTED})"
            ));
        }
    };
    let host = row.dbhost.as_deref().unwrap_or("localhost");
    let mut url = url::Url::parse(&format!("{scheme}://{host}"))
        .map_err(|e| format!("DBHOST '{host}' is not a host name: {e}"))?;
    if let Some(port) = row.dbport {
        let port = u16::try_from(port).map_err(|_| format!("DBPORT {port} is not a port"))?;
        let _ = url.set_port(Some(port));
    }
    if let Some(user) = row.usrnm.as_deref() {
        let _ = url.set_username(user);
    }
    if let Some(database) = row.dbsrvnm.as_deref() {
        url.set_path(database);
    }
    Ok(url)
}

/// Options for users' statements, which run as long as they need: sqlx's
/// slow-statement warnings (which name no statement) are off.
fn quiet<O: sqlx::ConnectOptions>(options: O) -> O {
    options.log_slow_statements(log::LevelFilter::Off, Duration::MAX)
}

/// The file a `sqlite://` URL names: `sqlite:///abs/path.db` is `/abs/path.db`,
/// `sqlite://relative.db` is `relative.db` (from the working directory).
pub fn sqlite_path(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    (url.scheme() == "sqlite").then(|| format!("{}{}", url.host_str().unwrap_or(""), url.path()))
}

fn describe_place(kind: DbKind, url: &url::Url) -> String {
    match kind {
        DbKind::Sqlite => format!("SQLite file {}{}", url.host_str().unwrap_or(""), url.path()),
        _ => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{} at {}{port}{}",
                kind.name(),
                url.host_str().unwrap_or("localhost"),
                url.path()
            )
        }
    }
}

#[derive(Clone)]
enum DbPool {
    Sqlite(Pool<Sqlite>),
    Postgres(Pool<Postgres>),
    MySql(Pool<MySql>),
}

impl DbPool {
    /// Connections open, idle or in use.
    fn size(&self) -> u32 {
        match self {
            Self::Sqlite(p) => p.size(),
            Self::Postgres(p) => p.size(),
            Self::MySql(p) => p.size(),
        }
    }
}

/// The node's connection pools, one per named connection, made on first use and
/// replaced when the connection's row changes.
#[derive(Clone, Default)]
pub struct Pools {
    pools: Arc<Mutex<HashMap<String, (String, DbPool)>>>,
}

impl Pools {
    pub fn new() -> Self {
        Self::default()
    }

    fn pool(&self, spec: &ConnectionSpec) -> DbPool {
        let fingerprint = spec.fingerprint();
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, pool)) = pools.get(&spec.name)
            && *known == fingerprint
        {
            return pool.clone();
        }
        let pool = match &spec.options {
            Options::Sqlite(o) => DbPool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .idle_timeout(IDLE_TIMEOUT)
                    .connect_lazy_with(o.clone()),
            ),
            Options::Postgres(o) => DbPool::Postgres(
                PgPoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .idle_timeout(IDLE_TIMEOUT)
                    .connect_lazy_with(o.clone()),
            ),
            Options::MySql(o) => DbPool::MySql(
                MySqlPoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .idle_timeout(IDLE_TIMEOUT)
                    .connect_lazy_with(o.clone()),
            ),
        };
        if let Some((_, old)) = pools.insert(spec.name.clone(), (fingerprint, pool.clone())) {
            // Runs still holding connections of the old pool finish with them.
            tokio::spawn(async move {
                match old {
                    DbPool::Sqlite(p) => p.close().await,
                    DbPool::Postgres(p) => p.close().await,
                    DbPool::MySql(p) => p.close().await,
                }
            });
        }
        pool
    }

    /// Closes every pool.
    pub async fn close(&self) {
        let pools: Vec<DbPool> = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools.drain().map(|(_, (_, pool))| pool).collect()
        };
        for pool in pools {
            match pool {
                DbPool::Sqlite(p) => p.close().await,
                DbPool::Postgres(p) => p.close().await,
                DbPool::MySql(p) => p.close().await,
            }
        }
    }
}

/// The connections one run may use: its flow's named connections, resolved when the run
/// started, over the node's pools.
#[derive(Clone, Default)]
pub struct Connections {
    specs: Arc<HashMap<String, ConnectionSpec>>,
    pools: Pools,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.specs.values()).finish()
    }
}

impl Connections {
    pub fn new(specs: impl IntoIterator<Item = ConnectionSpec>, pools: Pools) -> Self {
        let specs = specs.into_iter().map(|s| (s.name.clone(), s)).collect();
        Self {
            specs: Arc::new(specs),
            pools,
        }
    }

    pub(crate) fn spec(&self, name: &str) -> Result<&ConnectionSpec, String> {
        self.specs
            .get(name)
            .ok_or_else(|| format!("connection '{name}' is not registered (dwsched conn put)"))
    }

    /// A connection of `name`'s pool, with what it takes to cancel its statements.
    pub(crate) async fn session(&self, name: &str) -> Result<Session, String> {
        let spec = self.spec(name)?.clone();
        let pool = self.pools.pool(&spec);
        if pool.size() == 0 {
            // A pool retries a failing connect until its acquire timeout and then reports
            // only the timeout; a first connection made directly fails fast and says why.
            tokio::time::timeout(CONNECT_CHECK, spec.check())
                .await
                .map_err(|_| spec.error(format!("no answer within {CONNECT_CHECK:?}")))??;
        }
        let acquired = match pool {
            DbPool::Sqlite(pool) => acquire_sqlite(&pool).await,
            DbPool::Postgres(pool) => acquire_postgres(&pool).await,
            DbPool::MySql(pool) => acquire_mysql(&pool).await,
        };
        let (conn, canceller) = acquired.map_err(|e| spec.error(crate::db_error(&e)))?;
        Ok(Session {
            conn,
            canceller,
            spec,
        })
    }
}

async fn acquire_sqlite(pool: &Pool<Sqlite>) -> Result<(DbConn, Canceller), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    // Each session installs its own handler, replacing the one of the connection's
    // previous session.
    conn.lock_handle()
        .await?
        .set_progress_handler(SQLITE_PROGRESS_STEPS, move || !flag.load(Ordering::Relaxed));
    Ok((DbConn::Sqlite(conn), Canceller::Sqlite(interrupt)))
}

async fn acquire_postgres(pool: &Pool<Postgres>) -> Result<(DbConn, Canceller), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await?;
    let options = pool.connect_options();
    Ok((DbConn::Postgres(conn), Canceller::Postgres { options, pid }))
}

async fn acquire_mysql(pool: &Pool<MySql>) -> Result<(DbConn, Canceller), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&mut *conn)
        .await?;
    let options = pool.connect_options();
    Ok((DbConn::MySql(conn), Canceller::MySql { options, id }))
}

pub(crate) enum DbConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
    MySql(PoolConnection<MySql>),
}

/// What stops a session's running statement from outside it.
#[derive(Clone)]
pub(crate) enum Canceller {
    Sqlite(Arc<AtomicBool>),
    Postgres {
        options: Arc<PgConnectOptions>,
        pid: i32,
    },
    MySql {
        options: Arc<MySqlConnectOptions>,
        id: u64,
    },
}

impl Canceller {
    /// Asks the server to cancel the session's running statement, over a connection of
    /// its own (the session's is busy).
    async fn cancel(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(interrupt) => {
                interrupt.store(true, Ordering::Relaxed);
                Ok(())
            }
            Self::Postgres { options, pid } => {
                let mut conn = PgConnection::connect_with(options).await?;
                sqlx::query("SELECT pg_cancel_backend($1)")
                    .bind(pid)
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            }
            Self::MySql { options, id } => {
                let mut conn = MySqlConnection::connect_with(options).await?;
                // The id is the server's own number, not user text.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL QUERY {id}")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            }
        }
    }
}

/// A pooled connection checked out for one step.
pub(crate) struct Session {
    pub conn: DbConn,
    pub canceller: Canceller,
    pub spec: ConnectionSpec,
}

impl Session {
    /// Closes the connection instead of returning it to the pool: after a cancelled
    /// statement its state is not to be trusted.
    pub fn discard(&mut self) {
        match &mut self.conn {
            DbConn::Sqlite(c) => c.close_on_drop(),
            DbConn::Postgres(c) => c.close_on_drop(),
            DbConn::MySql(c) => c.close_on_drop(),
        }
    }
}

/// Runs `work` until it ends or `token` is cancelled. On cancellation the statements of
/// `cancellers` are cancelled on their servers, and `work` gets a moment to unwind (its
/// transactions roll back) before it is dropped. `None` means it was stopped.
pub(crate) async fn until_stopped<T>(
    token: &CancellationToken,
    cancellers: &[Canceller],
    work: impl Future<Output = T>,
) -> Option<T> {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        out = &mut work => Some(out),
        () = token.cancelled() => {
            for canceller in cancellers {
                if let Err(err) = canceller.cancel().await {
                    tracing::warn!("cancelling a statement on the server failed: {err}");
                }
            }
            let _ = tokio::time::timeout(CANCEL_GRACE, &mut work).await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(constr: Option<&str>, passwd: Option<&str>) -> Connection {
        Connection {
            conid: 1,
            connm: "dw".into(),
            dbtyp: Some("POSTGRESQL".into()),
            dbhost: Some("db1".into()),
            dbport: Some(5433),
            dbsrvnm: Some("warehouse".into()),
            usrnm: Some("etl".into()),
            passwd: passwd.map(str::to_string),
            constr: constr.map(str::to_string),
            schnm: None,
            current: true,
        }
    }

    #[test]
    fn parts_make_a_url_and_the_place_hides_the_password() {
        let spec = ConnectionSpec::resolve(&row(None, Some("s3cret")), |_| None).unwrap();
        assert_eq!(spec.kind, DbKind::Postgres);
        assert_eq!(spec.place, "PostgreSQL at db1:5433/warehouse");
        assert!(!format!("{spec:?}").contains("s3cret"));
        assert!(!spec.error("refused").contains("s3cret"));
    }

    #[test]
    fn env_passwords_are_read_and_a_missing_variable_is_named() {
        let spec = ConnectionSpec::resolve(&row(None, Some("env:DW_PASS")), |name| {
            (name == "DW_PASS").then(|| "from-env".to_string())
        })
        .unwrap();
        assert!(spec.fingerprint().contains("from-env"));
        let err = ConnectionSpec::resolve(&row(None, Some("env:DW_PASS")), |_| None).unwrap_err();
        assert_eq!(
            err,
            "connection 'dw': its password comes from the environment variable DW_PASS, which is not set"
        );
    }

    #[test]
    fn constr_wins_over_the_parts() {
        let spec =
            ConnectionSpec::resolve(&row(Some("mysql://root@127.0.0.1:3306/test"), None), |_| {
                None
            })
            .unwrap();
        assert_eq!(spec.kind, DbKind::MySql);
        assert_eq!(spec.place, "MySQL at 127.0.0.1:3306/test");
    }

    #[test]
    fn unsupported_types_are_refused_by_name() {
        let mut oracle = row(None, None);
        oracle.dbtyp = Some("ORACLE".into());
        let err = ConnectionSpec::resolve(&oracle, |_| None).unwrap_err();
        assert!(
            err.starts_with("connection 'dw': database type 'ORACLE'"),
            "{err}"
        );
    }
}
