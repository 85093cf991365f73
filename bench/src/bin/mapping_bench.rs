//! A DWTOOL mapping job (SCD type 2 customer dimension) on PostgreSQL, beside the same
//! work written by hand as set-based SQL, as a DBA would:
//!
//! - `psql`: the source piped with `\copy` into a staging table, its row hash computed in
//!   SQL, then one `UPDATE` (expire) and one `INSERT` (new versions) through `psql`;
//! - `dwsched mapping`: the native `mapping` step, planned from DWTOOL's metadata rows.
//!
//! Two runs each: the initial load of 1,000,000 customers into an empty dimension, and a
//! second run after 10% of them changed. Also the peak memory of the dwsched process
//! after a 100,000-row and a 1,000,000-row load (flat in the row count), and the rate of
//! a per-row lookup loop, the original mapper's way of finding each row's current
//! version. Run `bench/run-mapping-bench.sh`; it needs `psql`.

use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::NaiveDate;
use dwsched_bench::{exec, machine_report, peak_rss_mib};
use dwsched_flow::mapping::{MappingRun, build_plan};
use dwsched_flow::{
    ConnectionSpec, Connections, Flow, Pools, RunContext, RunOutcome, StopSignal, run_flow,
};
use dwsched_model::{DwtoolJob, DwtoolJobColumn, DwtoolMapping, DwtoolSql};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

const ROWS: i64 = 1_000_000;
const SMALL: i64 = 100_000;
const LOOKUPS: i64 = 200;

const DIMENSION: &str = "(SKEY BIGINT PRIMARY KEY, RWHKEY VARCHAR(32), CUST_ID NUMERIC(10), \
     CUST_NAME VARCHAR(100), CITY VARCHAR(100), SEGMENT VARCHAR(20), CURFLG VARCHAR(1), \
     FROMDT TIMESTAMP, TODT TIMESTAMP, RECCRDT TIMESTAMP, RECUPDT TIMESTAMP)";

const SOURCE_SQL: &str = "SELECT customer_id AS cust_id, first_name || ' ' || last_name AS cust_name, \
     city, segment FROM customers";

async fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(sql.to_string()))
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn psql(url: &str, schema: &str, command: &str, stdin: Stdio) -> std::process::Child {
    Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command])
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .expect("psql")
}

/// The hand-written load into `table`: the source piped with `\copy` into a staging
/// table, its hash computed on the way out, then one expire and one insert.
fn by_hand(url: &str, schema: &str, table: &str) {
    let mut setup = psql(
        url,
        schema,
        "DROP TABLE IF EXISTS stage; CREATE UNLOGGED TABLE stage (cust_id NUMERIC(10), \
         cust_name VARCHAR(100), city VARCHAR(100), segment VARCHAR(20), h VARCHAR(32))",
        Stdio::null(),
    );
    assert!(setup.wait().unwrap().success());
    let mut source = psql(
        url,
        schema,
        &format!(
            "\\copy (SELECT x.*, md5(concat_ws('|', x.cust_id, x.cust_name, \
             coalesce(x.city, '<NULL>'), x.segment)) FROM ({SOURCE_SQL}) x) to stdout"
        ),
        Stdio::null(),
    );
    let mut target = psql(
        url,
        schema,
        "\\copy stage from stdin",
        Stdio::from(source.stdout.take().expect("psql stdout")),
    );
    assert!(target.wait().unwrap().success(), "the psql pipe failed");
    assert!(source.wait().unwrap().success(), "the psql source failed");
    let apply = format!(
        "BEGIN; \
         CREATE SEQUENCE IF NOT EXISTS {table}_seq; \
         CREATE INDEX ON stage (cust_id); ANALYZE stage; \
         UPDATE {table} t SET curflg = 'N', todt = now()::timestamp(0), recupdt = now()::timestamp(0) \
           FROM stage s WHERE t.curflg = 'Y' AND t.cust_id = s.cust_id AND t.rwhkey <> s.h; \
         INSERT INTO {table} (skey, rwhkey, cust_id, cust_name, city, segment, curflg, fromdt, todt, reccrdt, recupdt) \
           SELECT nextval('{table}_seq'), s.h, s.cust_id, s.cust_name, s.city, s.segment, 'Y', \
           now()::timestamp(0), '9999-12-31', now()::timestamp(0), now()::timestamp(0) FROM stage s \
           WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.curflg = 'Y' AND t.cust_id = s.cust_id); \
         COMMIT"
    );
    let mut apply = psql(url, schema, &apply, Stdio::null());
    assert!(
        apply.wait().unwrap().success(),
        "the hand-written SQL failed"
    );
}

/// The metadata of the dimension job on `table`, as DWTOOL's UI leaves it.
fn metadata(table: &str) -> DwtoolMapping {
    let column = |id: i64, name: &str| DwtoolJobColumn {
        jobdtlid: id,
        trgclnm: name.into(),
        trgkeyflg: Some(if id == 1 { "Y" } else { "N" }.into()),
        trgkeyseq: (id == 1).then_some(1),
        maplogic: Some("CUST_SRC".into()),
        maprsqlcd: Some("CUST_SRC".into()),
        keyclnm: Some("CUST_ID".into()),
        valclnm: Some(name.into()),
        mapcmbcd: Some("A00".into()),
        excseq: Some(id),
        scdtyp: Some(2),
        ..DwtoolJobColumn::default()
    };
    DwtoolMapping {
        job: Some(DwtoolJob {
            jobid: 1,
            mapref: table.to_uppercase(),
            trgtbnm: Some(table.into()),
            trgtbtyp: Some("DIM".into()),
            trgconid: Some(1),
            blkprcrows: Some(10_000),
            ..DwtoolJob::default()
        }),
        columns: ["CUST_ID", "CUST_NAME", "CITY", "SEGMENT"]
            .iter()
            .zip(1..)
            .map(|(name, id)| column(id, name))
            .collect(),
        sqls: vec![DwtoolSql {
            maprsqlcd: "CUST_SRC".into(),
            maprsql: Some(SOURCE_SQL.into()),
            sqlconid: Some(1),
        }],
        ..DwtoolMapping::default()
    }
}

async fn by_dwsched(connections: &Connections, table: &str) -> i64 {
    let mapref = table.to_uppercase();
    let report = build_plan(&mapref, &metadata(table));
    let plan = report.plan.clone().unwrap_or_else(|| panic!("{report}"));
    let run = MappingRun {
        plan,
        source_connection: "pg".into(),
        target_connection: "pg".into(),
    };
    let ctx = RunContext {
        prcid: 1,
        mapref: mapref.clone(),
        run_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        params: Default::default(),
        truncate: false,
        log_dir: std::env::temp_dir(),
        connections: connections.clone(),
        mappings: std::sync::Arc::new([(mapref.clone(), run)].into_iter().collect()),
        progress: Default::default(),
        steps: Default::default(),
        from_step: None,
        stop: StopSignal::new(),
        supervisor: dwsched_flow::supervisor::this_executable(),
    };
    let report = run_flow(&Flow::for_mapping_job(&mapref), &ctx).await;
    assert_eq!(report.outcome, RunOutcome::Completed, "{report:?}");
    report.totals.target
}

async fn fill_source(conn: &mut PgConnection, rows: i64) {
    exec(conn, "DROP TABLE IF EXISTS customers").await;
    exec(
        conn,
        "CREATE TABLE customers (customer_id INTEGER, first_name VARCHAR(50), \
         last_name VARCHAR(50), city VARCHAR(100), segment VARCHAR(20))",
    )
    .await;
    exec(
        conn,
        &format!(
            "INSERT INTO customers SELECT g, 'First' || g, 'Last' || (g % 977), \
             CASE WHEN g % 13 = 0 THEN NULL ELSE 'City ' || (g % 5000) END, \
             (ARRAY['RETAIL', 'SME', 'CORP'])[1 + g % 3] FROM generate_series(1, {rows}) g"
        ),
    )
    .await;
    exec(conn, "VACUUM ANALYZE customers").await;
}

fn line(name: &str, rows: i64, seconds: f64, baseline: f64) {
    println!(
        "{name:<44} {:>10.0} rows/s {seconds:>8.2} s {:>7.0}% of psql",
        rows as f64 / seconds,
        100.0 * baseline / seconds
    );
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DWSCHED_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let schema = format!("dwmap_{}", std::process::id());
    let mut conn = PgConnection::connect(&url).await.expect("PostgreSQL");
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    println!("{}\nPostgreSQL {version}", machine_report());
    println!("customer dimension, SCD type 2, PostgreSQL -> PostgreSQL\n");
    exec(&mut conn, &format!("CREATE SCHEMA {schema}")).await;
    exec(&mut conn, &format!("SET search_path TO {schema}")).await;
    let row = dwsched_model::Connection {
        connm: "pg".into(),
        constr: Some(url.clone()),
        schnm: Some(schema.clone()),
        current: true,
        ..Default::default()
    };
    let connections = Connections::new(
        [ConnectionSpec::from_row(&row).expect("connection")],
        Pools::new(),
    );

    // Memory: a small load, then a large one, into their own tables.
    fill_source(&mut conn, SMALL).await;
    exec(&mut conn, &format!("CREATE TABLE dim_small {DIMENSION}")).await;
    by_dwsched(&connections, "dim_small").await;
    let small_peak = peak_rss_mib(std::process::id());

    fill_source(&mut conn, ROWS).await;
    for table in ["dim_psql", "dim_dwsched"] {
        exec(&mut conn, &format!("CREATE TABLE {table} {DIMENSION}")).await;
    }
    let clock = Instant::now();
    by_hand(&url, &schema, "dim_psql");
    let psql_first = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let written = by_dwsched(&connections, "dim_dwsched").await;
    let dwsched_first = clock.elapsed().as_secs_f64();
    assert_eq!(written, ROWS);
    let large_peak = peak_rss_mib(std::process::id());

    // 10% of the customers move.
    exec(
        &mut conn,
        "UPDATE customers SET city = 'Moved ' || customer_id WHERE customer_id % 10 = 0",
    )
    .await;
    exec(&mut conn, "VACUUM ANALYZE customers").await;
    let clock = Instant::now();
    by_hand(&url, &schema, "dim_psql");
    let psql_second = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let written = by_dwsched(&connections, "dim_dwsched").await;
    let dwsched_second = clock.elapsed().as_secs_f64();
    assert_eq!(written, ROWS / 10);
    for table in ["dim_psql", "dim_dwsched"] {
        let rows = count(&mut conn, &format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(rows, ROWS + ROWS / 10, "{table}");
    }

    println!(
        "{:<44} {:>17} {:>10} {:>12}",
        "variant", "rate", "time", "vs psql"
    );
    line(
        "initial load: psql \\copy + UPDATE/INSERT",
        ROWS,
        psql_first,
        psql_first,
    );
    line(
        "initial load: dwsched mapping",
        ROWS,
        dwsched_first,
        psql_first,
    );
    line(
        "10% changed: psql \\copy + UPDATE/INSERT",
        ROWS,
        psql_second,
        psql_second,
    );
    line(
        "10% changed: dwsched mapping",
        ROWS,
        dwsched_second,
        psql_second,
    );
    println!(
        "\ndwsched peak memory: {small_peak:.0} MiB after {SMALL} rows, {large_peak:.0} MiB after {ROWS} rows"
    );

    // The original's way: one lookup of the current version per source row.
    exec(&mut conn, "ANALYZE dim_dwsched").await;
    let clock = Instant::now();
    for key in 1..=LOOKUPS {
        let _: Option<(i64,)> =
            sqlx::query_as("SELECT skey FROM dim_dwsched WHERE curflg = 'Y' AND cust_id = $1")
                .bind(key * 97 % ROWS + 1)
                .fetch_optional(&mut conn)
                .await
                .expect("lookup");
    }
    let per_row = LOOKUPS as f64 / clock.elapsed().as_secs_f64();
    println!(
        "a per-row lookup loop (the original mapper's way, without an index on the key): {per_row:.0} rows/s"
    );
    exec(&mut conn, &format!("DROP SCHEMA {schema} CASCADE")).await;
}
