//! Flow steps against the real databases: loads between backends compared value by
//! value, upserts, rejected rows, binds, a failing step in a DAG, and statements
//! cancelled on the server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use dwsched_flow::{
    ConnectionSpec, Connections, FlowFormat, Pools, RunContext, RunOutcome, RunReport, StopSignal,
    parse_flow, run_flow,
};
use dwsched_store::Backend;

use crate::util::TestDb;

crate::per_backend_kind!(upsert_is_idempotent, binds_are_parameters);

/// Databases of the given backends, each a named connection of one run.
struct Fixture {
    dbs: Vec<TestDb>,
    connections: Connections,
    log_dir: PathBuf,
}

impl Fixture {
    /// `None` when a backend is not configured (the test is skipped).
    async fn new(named: &[(&str, Backend)]) -> Option<Self> {
        let mut dbs = Vec::new();
        let mut specs = Vec::new();
        for (name, backend) in named {
            let db = TestDb::new(*backend)?;
            db.exec_raw(&[]).await;
            specs.push(ConnectionSpec::from_row(&db.flow_connection(name)).expect("spec"));
            dbs.push(db);
        }
        let log_dir = std::env::temp_dir().join(format!("dwt_logs_{}", uuid::Uuid::new_v4()));
        Some(Self {
            dbs,
            connections: Connections::new(specs, Pools::new()),
            log_dir,
        })
    }

    fn context(&self, params: &[&str], truncate: bool) -> RunContext {
        let mut values: [Option<String>; 10] = Default::default();
        for (slot, value) in values.iter_mut().zip(params) {
            *slot = Some((*value).to_string());
        }
        RunContext {
            prcid: 4242,
            mapref: "DAILY_SALES".into(),
            run_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            params: values,
            truncate,
            log_dir: self.log_dir.clone(),
            connections: self.connections.clone(),
            mappings: Default::default(),
            progress: Default::default(),
            steps: Default::default(),
            from_step: None,
            stop: StopSignal::new(),
            supervisor: PathBuf::from(env!("CARGO_BIN_EXE_dwsched")),
        }
    }

    async fn run(&self, flow_toml: &str) -> RunReport {
        self.run_with(flow_toml, &self.context(&[], false)).await
    }

    async fn run_with(&self, flow_toml: &str, ctx: &RunContext) -> RunReport {
        let flow = parse_flow(flow_toml, FlowFormat::Toml).expect("valid flow");
        run_flow(&flow, ctx).await
    }

    /// The rows of a query, each value as text (`NULL` for NULL).
    async fn rows(&self, connection: &str, sql: &str) -> Vec<Vec<String>> {
        let rows = self
            .connections
            .query(connection, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.rows
            .iter()
            .map(|row| row.iter().map(ToString::to_string).collect())
            .collect()
    }

    async fn cleanup(self) {
        for db in &self.dbs {
            db.cleanup().await;
        }
        let _ = std::fs::remove_dir_all(&self.log_dir);
    }
}

fn assert_completed(report: &RunReport) {
    assert_eq!(report.outcome, RunOutcome::Completed, "{report:#?}");
}

/// The sales table of the type test, in each backend's own types.
fn sales_table(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "CREATE TABLE sales (id integer PRIMARY KEY, qty bigint, amount numeric(20,6), ratio double precision, \
             name text, active boolean, sold_on date, sold_at timestamp(6), stamped_at timestamptz, payload bytea)"
        }
        Backend::MySql => {
            "CREATE TABLE sales (id int PRIMARY KEY, qty bigint, amount decimal(20,6), ratio double, \
             name text, active boolean, sold_on date, sold_at datetime(6), stamped_at timestamp(6) NULL, payload blob)"
        }
        // SQLite has no exact decimal: amounts that must stay exact live in TEXT.
        Backend::Sqlite => {
            "CREATE TABLE sales (id INTEGER PRIMARY KEY, qty INTEGER, amount TEXT, ratio REAL, \
             name TEXT, active BOOLEAN, sold_on DATE, sold_at DATETIME, stamped_at DATETIME, payload BLOB)"
        }
    }
}

/// Three rows: awkward values, edge values, and NULLs.
fn sales_rows(backend: Backend) -> Vec<&'static str> {
    match backend {
        Backend::Postgres => vec![
            "INSERT INTO sales VALUES (1, 9007199254740993, 12345678901234.123456, 0.1, \
             E'tab\\there \"q\" back\\\\slash\\nline, ünïcode', true, '2026-03-01', '2026-03-01 23:59:58.123456', \
             '2026-03-01 12:00:00.5+00', '\\x00ff10'::bytea)",
            "INSERT INTO sales VALUES (2, -5, -0.000001, -2.5, '', false, '1999-12-31', '2000-01-01 00:00:00', \
             '1970-01-01 00:00:01+00', ''::bytea)",
            "INSERT INTO sales (id) VALUES (3)",
        ],
        Backend::MySql => vec![
            "INSERT INTO sales VALUES (1, 9007199254740993, 12345678901234.123456, 0.1, \
             'tab\\there \"q\" back\\\\slash\\nline, ünïcode', true, '2026-03-01', '2026-03-01 23:59:58.123456', \
             '2026-03-01 12:00:00.5', X'00ff10')",
            "INSERT INTO sales VALUES (2, -5, -0.000001, -2.5, '', false, '1999-12-31', '2000-01-01 00:00:00', \
             '1970-01-01 00:00:01', X'')",
            "INSERT INTO sales (id) VALUES (3)",
        ],
        Backend::Sqlite => vec![
            "INSERT INTO sales VALUES (1, 9007199254740993, '12345678901234.123456', 0.1, \
             'tab' || char(9) || 'here \"q\" back\\slash' || char(10) || 'line, ünïcode', 1, '2026-03-01', \
             '2026-03-01 23:59:58.123456', '2026-03-01 12:00:00.5+00:00', X'00ff10')",
            "INSERT INTO sales VALUES (2, -5, '-0.000001', -2.5, '', 0, '1999-12-31', '2000-01-01 00:00:00', \
             '1970-01-01 00:00:01+00:00', X'')",
            "INSERT INTO sales (id) VALUES (3)",
        ],
    }
}

const SALES_COLUMNS: &str =
    "id, qty, amount, ratio, name, active, sold_on, sold_at, stamped_at, payload";

/// Loads the sales rows from one backend to another and compares every value.
async fn cross_load(from: Backend, to: Backend) {
    let Some(fx) = Fixture::new(&[("src", from), ("dst", to)]).await else {
        return;
    };
    fx.dbs[0].exec_raw(&[sales_table(from)]).await;
    fx.dbs[0].exec_raw(&sales_rows(from)).await;
    fx.dbs[1].exec_raw(&[sales_table(to)]).await;
    let flow = format!(
        r#"
        [[steps]]
        name = "copy_sales"
        kind = "load"
        source = {{ connection = "src", query = "SELECT {SALES_COLUMNS} FROM sales ORDER BY id" }}
        target = {{ connection = "dst", table = "sales" }}
        batch_size = 2
        "#
    );
    let report = fx.run(&flow).await;
    assert_completed(&report);
    assert_eq!(
        (
            report.totals.source,
            report.totals.target,
            report.totals.errors
        ),
        (3, 3, 0)
    );
    let select = format!("SELECT {SALES_COLUMNS} FROM sales ORDER BY id");
    let source = fx.rows("src", &select).await;
    let target = fx.rows("dst", &select).await;
    for (s, t) in source.iter().zip(&target) {
        for ((column, a), b) in SALES_COLUMNS.split(", ").zip(s).zip(t) {
            assert_eq!(a, b, "{from:?} -> {to:?}, row {}, column {column}", s[0]);
        }
    }
    assert_eq!(source.len(), target.len());
    // The values that lossy paths get wrong.
    assert_eq!(target[0][1], "9007199254740993");
    assert_eq!(target[0][2], "12345678901234.123456");
    assert_eq!(target[0][4], "tab\there \"q\" back\\slash\nline, ünïcode");
    assert_eq!(target[0][9], "\\x00ff10");
    assert!(
        target[2][1..].iter().all(|v| v == "NULL"),
        "{:?}",
        target[2]
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_load_keeps_every_value() {
    cross_load(Backend::Sqlite, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_mysql_load_keeps_every_value() {
    cross_load(Backend::Postgres, Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_to_sqlite_load_keeps_every_value() {
    cross_load(Backend::MySql, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_postgres_copies_through_and_keeps_every_value() {
    cross_load(Backend::Postgres, Backend::Postgres).await;
}

/// An upsert twice over, with a changed source in between, leaves one row per key
/// holding the newest values.
async fn upsert_is_idempotent(target: Backend) {
    let Some(fx) = Fixture::new(&[("src", Backend::Sqlite), ("dst", target)]).await else {
        return;
    };
    fx.dbs[0]
        .exec_raw(&[
            "CREATE TABLE prices (sku TEXT, region TEXT, price TEXT)",
            "INSERT INTO prices VALUES ('A', 'EU', '1.50'), ('A', 'US', '1.70'), ('B', 'EU', '9.99')",
        ])
        .await;
    // SQLite keeps exact decimals only as text.
    let price = if target == Backend::Sqlite {
        "TEXT"
    } else {
        "decimal(10,2)"
    };
    fx.dbs[1]
        .exec_raw(&[&format!(
            "CREATE TABLE dim_price (sku varchar(10), region varchar(10), price {price}, PRIMARY KEY (sku, region))"
        )])
        .await;
    let flow = r#"
        [[steps]]
        name = "prices"
        kind = "load"
        source = { connection = "src", query = "SELECT sku, region, price FROM prices" }
        target = { connection = "dst", table = "dim_price", mode = "upsert", key = ["sku", "region"] }
    "#;
    assert_completed(&fx.run(flow).await);
    assert_completed(&fx.run(flow).await);
    fx.dbs[0]
        .exec_raw(&["UPDATE prices SET price = '2.00' WHERE sku = 'A' AND region = 'EU'"])
        .await;
    let report = fx.run(flow).await;
    assert_completed(&report);
    assert_eq!(report.totals.target, 3);
    let rows = fx
        .rows(
            "dst",
            "SELECT sku, region, price FROM dim_price ORDER BY sku, region",
        )
        .await;
    assert_eq!(
        rows,
        [
            ["A", "EU", "2.00"],
            ["A", "US", "1.70"],
            ["B", "EU", "9.99"]
        ]
    );
    fx.cleanup().await;
}

/// Bad rows among good ones: the good rows load, each bad one is reported with its key
/// and the database's message; more bad rows than `max_errors` fail the step and leave
/// the target as it was.
async fn bad_rows(source: Backend, target: Backend) {
    let Some(fx) = Fixture::new(&[("src", source), ("dst", target)]).await else {
        return;
    };
    let mut inserts =
        vec!["CREATE TABLE raw_orders (id int, qty varchar(20), note varchar(20))".to_string()];
    for id in 1..=40 {
        let qty = match id {
            7 => "'seven'".to_string(),
            23 => "NULL".to_string(),
            _ => format!("'{id}'"),
        };
        inserts.push(format!("INSERT INTO raw_orders VALUES ({id}, {qty}, 'ok')"));
    }
    // A duplicate key.
    inserts.push("INSERT INTO raw_orders VALUES (12, '12', 'again')".to_string());
    let inserts: Vec<&str> = inserts.iter().map(String::as_str).collect();
    fx.dbs[0].exec_raw(&inserts).await;
    // SQLite checks types only in STRICT tables.
    let orders = match target {
        Backend::Sqlite => {
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL, note TEXT) STRICT"
        }
        _ => "CREATE TABLE orders (id int PRIMARY KEY, qty int NOT NULL, note varchar(20))",
    };
    fx.dbs[1]
        .exec_raw(&[orders, "INSERT INTO orders VALUES (999, 1, 'kept')"])
        .await;
    let flow = |max_errors: u32| {
        format!(
            r#"
            [[steps]]
            name = "orders"
            kind = "load"
            source = {{ connection = "src", query = "SELECT id, qty, note FROM raw_orders ORDER BY id, note DESC" }}
            target = {{ connection = "dst", table = "orders" }}
            batch_size = 16
            max_errors = {max_errors}
            "#
        )
    };
    // Too many: nothing changes.
    let report = fx.run(&flow(2)).await;
    let RunOutcome::Failed { step, message } = &report.outcome else {
        panic!("expected a failure: {report:#?}");
    };
    assert_eq!(step, "orders");
    assert!(message.contains("more than max_errors = 2"), "{message}");
    assert!(message.contains("connection 'dst'"), "{message}");
    assert_eq!(report.row_errors.len(), 3, "{report:#?}");
    assert_eq!(fx.rows("dst", "SELECT count(*) FROM orders").await, [["1"]]);

    // Within the limit: the good rows load.
    let report = fx.run(&flow(5)).await;
    assert_completed(&report);
    assert_eq!(
        (
            report.totals.source,
            report.totals.target,
            report.totals.errors
        ),
        (41, 38, 3)
    );
    let mut keys: Vec<&str> = report.row_errors.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id=12", "id=23", "id=7"]);
    assert!(
        report
            .row_errors
            .iter()
            .all(|r| r.step == "orders" && !r.db_message.is_empty())
    );
    assert_eq!(
        fx.rows("dst", "SELECT count(*) FROM orders").await,
        [["39"]]
    );
    assert_eq!(
        fx.rows("dst", "SELECT note FROM orders WHERE id = 12")
            .await,
        [["ok"]]
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_isolated_on_postgres_copy() {
    bad_rows(Backend::Postgres, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_isolated_on_mysql() {
    bad_rows(Backend::Postgres, Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_isolated_on_sqlite() {
    bad_rows(Backend::Sqlite, Backend::Sqlite).await;
}

/// Binds are parameters, never text: a parameter full of SQL is stored as it is.
async fn binds_are_parameters(backend: Backend) {
    let Some(fx) = Fixture::new(&[("dw", backend)]).await else {
        return;
    };
    fx.dbs[0]
        .exec_raw(&["CREATE TABLE audit (run_date date, prcid bigint, mapref varchar(40), note varchar(200), empty_param varchar(10))"])
        .await;
    let flow = r#"
        [[steps]]
        name = "audit"
        kind = "sql"
        connection = "dw"
        sql = ["INSERT INTO audit VALUES (:run_date, :prcid, :mapref, :param1, :param2)",
               "DELETE FROM audit WHERE note <> :param1 -- :param3 in a comment is not a bind"]
    "#;
    let evil = "x'); DROP TABLE audit; --";
    let report = fx.run_with(flow, &fx.context(&[evil], false)).await;
    assert_completed(&report);
    assert_eq!(
        fx.rows(
            "dw",
            "SELECT run_date, prcid, mapref, note, empty_param FROM audit"
        )
        .await,
        [["2026-03-01", "4242", "DAILY_SALES", evil, "NULL"]]
    );
    fx.cleanup().await;
}

/// In a DAG whose middle step fails, the steps after it do not run, and a failed
/// transaction leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_middle_step_stops_the_steps_after_it() {
    let Some(fx) = Fixture::new(&[("dw", Backend::Postgres)]).await else {
        return;
    };
    fx.dbs[0]
        .exec_raw(&["CREATE TABLE steps_done (name text)"])
        .await;
    let flow = r#"
        [[steps]]
        name = "first"
        kind = "sql"
        connection = "dw"
        sql = "INSERT INTO steps_done VALUES ('first')"

        [[steps]]
        name = "middle"
        kind = "sql"
        connection = "dw"
        sql = ["INSERT INTO steps_done VALUES ('middle')", "SELECT 1 / 0"]

        [[steps]]
        name = "last"
        kind = "sql"
        connection = "dw"
        sql = "INSERT INTO steps_done VALUES ('last')"
    "#;
    let report = fx.run(flow).await;
    let RunOutcome::Failed { step, message } = &report.outcome else {
        panic!("expected a failure: {report:#?}");
    };
    assert_eq!(step, "middle");
    assert!(message.contains("statement 2"), "{message}");
    assert!(message.contains("division by zero"), "{message}");
    assert!(
        message.contains("connection 'dw' (PostgreSQL at"),
        "{message}"
    );
    assert_eq!(
        fx.rows("dw", "SELECT name FROM steps_done").await,
        [["first"]]
    );
    fx.cleanup().await;
}

/// `truncate_flag` empties the targets of append loads once, before the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_flag_empties_append_targets_once() {
    let Some(fx) = Fixture::new(&[("dw", Backend::Sqlite)]).await else {
        return;
    };
    fx.dbs[0]
        .exec_raw(&[
            "CREATE TABLE src_a (id INTEGER)",
            "CREATE TABLE src_b (id INTEGER)",
            "INSERT INTO src_a VALUES (1), (2)",
            "INSERT INTO src_b VALUES (3)",
            "CREATE TABLE fact (id INTEGER)",
            "INSERT INTO fact VALUES (100)",
        ])
        .await;
    let flow = r#"
        [[steps]]
        name = "a"
        kind = "load"
        source = { connection = "dw", query = "SELECT id FROM src_a" }
        target = { connection = "dw", table = "fact" }

        [[steps]]
        name = "b"
        kind = "load"
        source = { connection = "dw", query = "SELECT id FROM src_b" }
        target = { connection = "dw", table = "fact" }
    "#;
    assert_completed(&fx.run_with(flow, &fx.context(&[], true)).await);
    assert_eq!(
        fx.rows("dw", "SELECT id FROM fact ORDER BY id").await,
        [["1"], ["2"], ["3"]]
    );
    assert_completed(&fx.run(flow).await);
    assert_eq!(fx.rows("dw", "SELECT count(*) FROM fact").await, [["6"]]);
    fx.cleanup().await;
}

/// Starts `flow`, waits until `running` reports the statement on the server, stops the
/// run, and returns how long the stop took.
async fn stop_when_running<F, Fut>(fx: &Fixture, flow: &str, running: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let ctx = fx.context(&[], false);
    let stop = ctx.stop.clone();
    let flow = parse_flow(flow, FlowFormat::Toml).expect("valid flow");
    let run = tokio::spawn(async move { run_flow(&flow, &ctx).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !running().await {
        assert!(Instant::now() < deadline, "the statement never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let clock = Instant::now();
    stop.stop("stopped by the test", false);
    let report = run.await.expect("run task");
    let took = clock.elapsed();
    assert_eq!(
        report.outcome,
        RunOutcome::Stopped {
            message: "stopped by the test".into()
        }
    );
    took
}

async fn postgres_statements_like(fx: &Fixture, marker: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{marker}%' \
         AND pid <> pg_backend_pid()"
    );
    fx.rows("dw", &sql).await[0][0].parse().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postgres_statement_is_cancelled_on_the_server() {
    let Some(fx) = Fixture::new(&[("dw", Backend::Postgres)]).await else {
        return;
    };
    for kind in ["sql", "load"] {
        let marker = format!("m{}", uuid::Uuid::new_v4().simple());
        let step = if kind == "sql" {
            format!(
                r#"kind = "sql"
                connection = "dw"
                sql = "SELECT pg_sleep(600) /* {marker} */""#
            )
        } else {
            format!(
                r#"kind = "load"
                source = {{ connection = "dw", query = "SELECT pg_sleep(600) AS slept /* {marker} */ WHERE :run_date IS NOT NULL" }}
                target = {{ connection = "dw", table = "sink" }}"#
            )
        };
        fx.dbs[0]
            .exec_raw(&["CREATE TABLE IF NOT EXISTS sink (slept text)"])
            .await;
        let flow = format!("[[steps]]\nname = \"sleep\"\n{step}\n");
        let took = stop_when_running(&fx, &flow, || async {
            postgres_statements_like(&fx, &format!("{marker} */")).await > 0
        })
        .await;
        assert!(took < Duration::from_secs(2), "{kind} stop took {took:?}");
        assert_eq!(
            postgres_statements_like(&fx, &format!("{marker} */")).await,
            0
        );
    }
    fx.cleanup().await;
}

/// A step's timeout cancels its statement on the server and fails the step, after its
/// retries; with `transaction = false` the statements before the failing one stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_statement_fails_its_step_and_is_cancelled() {
    let Some(fx) = Fixture::new(&[("dw", Backend::Postgres)]).await else {
        return;
    };
    fx.dbs[0].exec_raw(&["CREATE TABLE attempts (n int)"]).await;
    let marker = format!("m{}", uuid::Uuid::new_v4().simple());
    let flow = format!(
        r#"
        [[steps]]
        name = "slow"
        kind = "sql"
        connection = "dw"
        transaction = false
        sql = ["INSERT INTO attempts VALUES (1)", "SELECT pg_sleep(600) /* {marker} */"]
        timeout = "1s"
        retries = 1
        "#
    );
    let clock = Instant::now();
    let report = fx.run(&flow).await;
    assert!(
        clock.elapsed() < Duration::from_secs(8),
        "{:?}",
        clock.elapsed()
    );
    let RunOutcome::Failed { step, message } = &report.outcome else {
        panic!("expected a failure: {report:#?}");
    };
    assert_eq!(step, "slow");
    assert_eq!(message, "timed out after 1s (after 2 attempts)");
    assert_eq!(report.step_failures.len(), 2);
    assert_eq!(
        postgres_statements_like(&fx, &format!("{marker} */")).await,
        0
    );
    assert_eq!(
        fx.rows("dw", "SELECT count(*) FROM attempts").await,
        [["2"]]
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_mysql_statement_is_killed_on_the_server() {
    let Some(fx) = Fixture::new(&[("dw", Backend::MySql)]).await else {
        return;
    };
    let marker = format!("m{}", uuid::Uuid::new_v4().simple());
    let flow = format!(
        "[[steps]]\nname = \"sleep\"\nkind = \"sql\"\nconnection = \"dw\"\nsql = \"SELECT SLEEP(600) /* {marker} */\"\n"
    );
    let count = || async {
        let sql = format!(
            "SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%{marker} */%' \
             AND ID <> CONNECTION_ID() AND COMMAND = 'Query'"
        );
        fx.rows("dw", &sql).await[0][0]
            .parse::<i64>()
            .expect("a count")
    };
    let took = stop_when_running(&fx, &flow, || async { count().await > 0 }).await;
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    assert_eq!(count().await, 0);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_sqlite_statement_is_interrupted() {
    let Some(fx) = Fixture::new(&[("dw", Backend::Sqlite)]).await else {
        return;
    };
    let flow = r#"
        [[steps]]
        name = "spin"
        kind = "sql"
        connection = "dw"
        sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    "#;
    let started = Instant::now();
    let took = stop_when_running(&fx, flow, || async {
        started.elapsed() > Duration::from_millis(300)
    })
    .await;
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    // The connection is usable again afterwards.
    assert_eq!(fx.rows("dw", "SELECT 1").await, [["1"]]);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_connection_is_named_without_its_password() {
    let mut row = TestDb::new(Backend::Sqlite)
        .unwrap()
        .flow_connection("ghost");
    row.constr = Some("postgres://etl@127.0.0.1:9/dw".into());
    row.passwd = Some("hunter2".into());
    let connections = Connections::new([ConnectionSpec::from_row(&row).unwrap()], Pools::new());
    let err = connections.query("ghost", "SELECT 1").await.unwrap_err();
    assert!(
        err.starts_with("connection 'ghost' (PostgreSQL at 127.0.0.1:9/dw):"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}
