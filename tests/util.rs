//! Test databases: a fresh SQLite file, PostgreSQL schema or MySQL database per test, so
//! tests run in parallel. PostgreSQL and MySQL are found through
//! `DWSCHED_TEST_POSTGRES_URL` and `DWSCHED_TEST_MYSQL_URL`; without them their tests
//! are skipped (one line on stderr says so), except under `CI=true`, where a missing
//! backend fails the run.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Once;

use dwsched_store::{Backend, StoreOptions, TestSupport};
use sqlx::Connection as _;

pub const POSTGRES_ENV: &str = "DWSCHED_TEST_POSTGRES_URL";
pub const MYSQL_ENV: &str = "DWSCHED_TEST_MYSQL_URL";

static SKIP_NOTICE: Once = Once::new();

fn server_url(backend: Backend) -> Option<String> {
    let var = match backend {
        Backend::Sqlite => return Some(String::new()),
        Backend::Postgres => POSTGRES_ENV,
        Backend::MySql => MYSQL_ENV,
    };
    let url = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    if url.is_none() {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !in_ci,
            "{var} is not set: under CI every backend must be tested"
        );
        SKIP_NOTICE.call_once(|| {
            let skipped: Vec<&str> = [(POSTGRES_ENV, "PostgreSQL"), (MYSQL_ENV, "MySQL")]
                .iter()
                .filter(|(var, _)| std::env::var(var).map_or(true, |v| v.trim().is_empty()))
                .map(|(_, name)| *name)
                .collect();
            // Written past the test harness's capture, so that it is seen once.
            let _ = writeln!(
                std::io::stderr(),
                "note: skipped the {} tests (set {POSTGRES_ENV} / {MYSQL_ENV} to run them)",
                skipped.join(" and ")
            );
        });
    }
    url
}

/// Runs each statement on a connection, failing the test with the statement that
/// failed. (A macro: the three connection types share no object-safe trait.)
macro_rules! run_each {
    ($conn:expr, $statements:expr) => {
        for sql in $statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut *$conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    };
}

/// One test's own database.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub schema: Option<String>,
    sqlite_dir: Option<PathBuf>,
}

impl TestDb {
    /// A new empty database, or `None` when the backend is not configured.
    pub fn new(backend: Backend) -> Option<Self> {
        let server = server_url(backend)?;
        let name = format!("dwt_{}", uuid::Uuid::new_v4().simple());
        Some(match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).expect("temporary directory");
                TestDb {
                    backend,
                    url: format!("sqlite://{}", dir.join("dwsched.db").display()),
                    schema: None,
                    sqlite_dir: Some(dir),
                }
            }
            Backend::Postgres | Backend::MySql => TestDb {
                backend,
                url: server,
                schema: Some(name),
                sqlite_dir: None,
            },
        })
    }

    pub fn options(&self) -> StoreOptions {
        StoreOptions::new(self.url.clone()).schema(self.schema.clone())
    }

    /// Opens the store, creating the schema, without migrating.
    pub async fn open_unmigrated(&self) -> Box<dyn TestSupport> {
        dwsched_store::open_for_tests(&self.options().create(true))
            .await
            .expect("open the test store")
    }

    /// Opens the store and applies the migrations.
    pub async fn open(&self) -> Box<dyn TestSupport> {
        let store = self.open_unmigrated().await;
        store.migrate().await.expect("migrate the test store");
        store
    }

    /// A `DMS_DBCONDTLS` row that points flow steps at this database.
    pub fn flow_connection(&self, name: &str) -> dwsched_model::Connection {
        let (constr, schnm) = match self.backend {
            Backend::Sqlite => (format!("{}?mode=rwc", self.url), None),
            Backend::Postgres => (self.url.clone(), self.schema.clone()),
            Backend::MySql => {
                let mut url = url::Url::parse(&self.url).expect("MySQL test URL");
                url.set_path(self.schema.as_deref().expect("MySQL test database"));
                (url.to_string(), None)
            }
        };
        dwsched_model::Connection {
            conid: 0,
            connm: name.to_string(),
            dbtyp: None,
            dbhost: None,
            dbport: None,
            dbsrvnm: None,
            usrnm: None,
            passwd: None,
            constr: Some(constr),
            schnm,
            current: true,
        }
    }

    /// Runs statements outside the store, as another tool would.
    pub async fn exec_raw(&self, statements: &[&str]) {
        match self.backend {
            Backend::Sqlite => {
                let url = format!("{}?mode=rwc", self.url);
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                run_each!(&mut conn, statements);
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let schema = self.schema.as_deref().unwrap();
                let setup =
                    format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}");
                run_each!(&mut conn, [setup.as_str()]);
                run_each!(&mut conn, statements);
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                let schema = self.schema.as_deref().unwrap();
                let setup = [
                    format!("CREATE DATABASE IF NOT EXISTS {schema}"),
                    format!("USE {schema}"),
                ];
                run_each!(&mut conn, setup.iter());
                run_each!(&mut conn, statements);
            }
        }
    }

    /// The rows of `sql`, read outside the store as another tool would, every column
    /// as text (cast them in `sql`).
    pub async fn text_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        use sqlx::Row as _;
        macro_rules! read {
            ($conn:expr) => {{
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&mut $conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| row.get::<Option<String>, _>(i))
                            .collect()
                    })
                    .collect()
            }};
        }
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                read!(conn)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let schema = self.schema.as_deref().unwrap();
                run_each!(&mut conn, [format!("SET search_path TO {schema}")]);
                read!(conn)
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                let schema = self.schema.as_deref().unwrap();
                run_each!(&mut conn, [format!("USE {schema}")]);
                read!(conn)
            }
        }
    }

    /// Drops what the test made.
    pub async fn cleanup(&self) {
        match (self.backend, &self.schema) {
            (Backend::Sqlite, _) => {
                if let Some(dir) = &self.sqlite_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            (Backend::Postgres, Some(schema)) => {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&self.url).await {
                    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            }
            (Backend::MySql, Some(schema)) => {
                if let Ok(mut conn) = sqlx::MySqlConnection::connect(&self.url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {schema}");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            }
            _ => {}
        }
    }
}

/// Runs `case` against a fresh database of `backend`, then drops the database, also
/// when the case panics.
pub async fn with_db<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(TestDb) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let cleanup = TestDb {
        backend: db.backend,
        url: db.url.clone(),
        schema: db.schema.clone(),
        sqlite_dir: db.sqlite_dir.clone(),
    };
    let outcome = tokio::spawn(case(db)).await;
    cleanup.cleanup().await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// Generates one `#[tokio::test]` per backend for each named case, a function
/// `async fn case(db: TestDb)`.
#[macro_export]
macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::util::with_db(dwsched_store::Backend::Sqlite, super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::util::with_db(dwsched_store::Backend::Postgres, super::$case).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::util::with_db(dwsched_store::Backend::MySql, super::$case).await;
                }
            )*
        }
    };
}

/// A PostgreSQL server of a test's own, made with `initdb` in a scratch directory and
/// started and stopped with `pg_ctl` as user `postgres`, for tests that need a server
/// that is down. `None` (the test is skipped) where PostgreSQL is not tested.
pub struct PrivatePostgres {
    dir: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    pub fn new() -> Option<Self> {
        server_url(Backend::Postgres)?;
        let bin = Self::bin_dir();
        let dir =
            std::env::temp_dir().join(format!("dwsched-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if running_as_root() {
            run_program(&["chown", "-R", "postgres", dir.to_str().unwrap()], false);
        }
        let port = {
            // A port the kernel just handed out and took back is free for a while.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let data = dir.join("data");
        run_program(
            &[
                bin.join("initdb").to_str().unwrap(),
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            true,
        );
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
            dir.display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        file.write_all(conf.as_bytes()).unwrap();
        Some(Self { dir, port })
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn start(&self) {
        self.pg_ctl(&[
            "start",
            "-w",
            "-l",
            self.dir.join("server.log").to_str().unwrap(),
        ]);
    }

    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-w", "-m", "fast"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = Self::bin_dir().join("pg_ctl");
        let data = self.dir.join("data");
        let mut command = vec![pg_ctl.to_str().unwrap(), "-D", data.to_str().unwrap()];
        command.extend_from_slice(args);
        run_program(&command, true);
    }

    /// The newest installed PostgreSQL's programs.
    fn bin_dir() -> PathBuf {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's programs under /usr/lib/postgresql")
            .flatten()
            .map(|e| e.path().join("bin"))
            .collect();
        versions.sort();
        versions.pop().expect("a PostgreSQL version")
    }
}

/// Runs a program, as user `postgres` when asked and this process is root (PostgreSQL
/// refuses to run as root), failing the test with its output when it fails.
fn run_program(command: &[&str], as_postgres: bool) {
    let mut process = if as_postgres && running_as_root() {
        let mut p = std::process::Command::new("runuser");
        p.args(["-u", "postgres", "--"]).args(command);
        p
    } else {
        let mut p = std::process::Command::new(command[0]);
        p.args(&command[1..]);
        p
    };
    let out = process
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let pg_ctl = Self::bin_dir().join("pg_ctl");
            let mut command = if running_as_root() {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(pg_ctl);
                c
            } else {
                std::process::Command::new(pg_ctl)
            };
            let _ = command
                .args(["-D", data.to_str().unwrap(), "stop", "-m", "immediate"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Like [`per_backend!`], for cases that make their own databases: one
/// `#[tokio::test]` per backend for each `async fn case(backend: Backend)`.
#[macro_export]
macro_rules! per_backend_kind {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(dwsched_store::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(dwsched_store::Backend::Postgres).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(dwsched_store::Backend::MySql).await;
                }
            )*
        }
    };
}
