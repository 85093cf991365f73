//! A `load` step's throughput on PostgreSQL → PostgreSQL, beside the `psql \copy` pipe
//! a user would otherwise write:
//!
//! - `psql`: `psql -c "\copy (query) to stdout" | psql -c "\copy table from stdin"`;
//! - `dwsched COPY`: a load whose query has no binds, which travels in COPY text;
//! - `dwsched decoded`: the same query with a bind (`:run_date`), read as typed values
//!   and written back as COPY text, the path loads between different backends take.
//!
//! 1,000,000 rows of 10 mixed columns (integers, numeric, float, text, boolean, date,
//! timestamps with and without zone, bytes), each variant run in turn, A B C A B C, with
//! the target emptied before each run. Run `bench/run-load-bench.sh`; it needs `psql`
//! and a PostgreSQL where it may create a schema (`DWSCHED_BENCH_POSTGRES_URL`, default
//! the local server).

use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::NaiveDate;
use dwsched_bench::{machine_report, median};
use dwsched_flow::{
    ConnectionSpec, Connections, FlowFormat, Pools, RunContext, RunOutcome, StopSignal, parse_flow,
    run_flow,
};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

const ROWS: i64 = 1_000_000;
const ROUNDS: usize = 3;
const COLUMNS: &str = "id, qty, amount, ratio, name, active, sold_on, sold_at, stamped_at, payload";

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn psql_pipe(url: &str, schema: &str) {
    let options = format!("-c search_path={schema}");
    let mut source = Command::new("psql")
        .args([url, "-X", "-q", "-c"])
        .arg(format!("\\copy (SELECT {COLUMNS} FROM src) to stdout"))
        .env("PGOPTIONS", &options)
        .stdout(Stdio::piped())
        .spawn()
        .expect("psql (source)");
    let target = Command::new("psql")
        .args([url, "-X", "-q", "-c", "\\copy dst from stdin"])
        .env("PGOPTIONS", &options)
        .stdin(source.stdout.take().expect("psql stdout"))
        .stdout(Stdio::null())
        .status()
        .expect("psql (target)");
    assert!(target.success(), "the psql pipe failed");
    assert!(
        source.wait().expect("psql (source)").success(),
        "the psql source failed"
    );
}

async fn dwsched_load(connections: &Connections, query: &str) {
    let flow = format!(
        "[[steps]]\nname = \"load\"\nkind = \"load\"\n\
         source = {{ connection = \"pg\", query = \"{query}\" }}\n\
         target = {{ connection = \"pg\", table = \"dst\" }}\n"
    );
    let flow = parse_flow(&flow, FlowFormat::Toml).expect("flow");
    let ctx = RunContext {
        prcid: 1,
        mapref: "LOAD_BENCH".into(),
        run_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        params: Default::default(),
        truncate: false,
        log_dir: std::env::temp_dir(),
        connections: connections.clone(),
        mappings: Default::default(),
        progress: Default::default(),
        steps: Default::default(),
        from_step: None,
        stop: StopSignal::new(),
        // A load step starts no command.
        supervisor: dwsched_flow::supervisor::this_executable(),
    };
    let report = run_flow(&flow, &ctx).await;
    assert_eq!(report.outcome, RunOutcome::Completed, "{report:?}");
    assert_eq!(report.totals.target, ROWS);
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DWSCHED_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let schema = format!("dwload_{}", std::process::id());
    let mut conn = PgConnection::connect(&url).await.expect("PostgreSQL");
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    println!("{}\nPostgreSQL {version}", machine_report());
    println!("{ROWS} rows x 10 columns, PostgreSQL -> PostgreSQL, {ROUNDS} rounds\n");
    exec(&mut conn, &format!("CREATE SCHEMA {schema}")).await;
    exec(&mut conn, &format!("SET search_path TO {schema}")).await;
    let table = "(id bigint, qty integer, amount numeric(14,2), ratio double precision, name text, \
                 active boolean, sold_on date, sold_at timestamp, stamped_at timestamptz, payload bytea)";
    exec(&mut conn, &format!("CREATE TABLE src {table}")).await;
    exec(&mut conn, &format!("CREATE TABLE dst {table}")).await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO src SELECT g, g % 1000, (g * 1.37)::numeric(14,2), g / 7.0, 'customer ' || g || E'\\twith tab', \
             g % 2 = 0, DATE '2026-01-01' + (g % 365), TIMESTAMP '2026-01-01' + g * INTERVAL '1 second', \
             TIMESTAMPTZ '2026-01-01 00:00+00' + g * INTERVAL '1 second', decode(md5(g::text), 'hex') \
             FROM generate_series(1, {ROWS}) g"
        ),
    )
    .await;
    exec(&mut conn, "VACUUM ANALYZE src").await;

    let mut row = dwsched_model_row(&url, &schema);
    row.connm = "pg".into();
    let connections = Connections::new(
        [ConnectionSpec::from_row(&row).expect("connection")],
        Pools::new(),
    );
    let plain = format!("SELECT {COLUMNS} FROM src");
    let with_bind = format!("SELECT {COLUMNS} FROM src WHERE :run_date IS NOT NULL");

    let names = [
        "psql \\copy pipe",
        "dwsched load (COPY through)",
        "dwsched load (decoded)",
    ];
    let mut seconds: [Vec<f64>; 3] = Default::default();
    for _ in 0..ROUNDS {
        for (variant, times) in seconds.iter_mut().enumerate() {
            exec(&mut conn, "TRUNCATE dst").await;
            let clock = Instant::now();
            match variant {
                0 => psql_pipe(&url, &schema),
                1 => dwsched_load(&connections, &plain).await,
                _ => dwsched_load(&connections, &with_bind).await,
            }
            times.push(clock.elapsed().as_secs_f64());
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM dst")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(count, ROWS, "{} loaded {count} rows", names[variant]);
        }
    }
    let baseline = ROWS as f64 / median(&mut seconds[0].clone());
    println!(
        "{:<30} {:>12} {:>18} {:>10}",
        "variant", "rows/s", "seconds (min-max)", "vs psql"
    );
    for (name, times) in names.iter().zip(&seconds) {
        let mut sorted = times.clone();
        let mid = median(&mut sorted);
        let rate = ROWS as f64 / mid;
        println!(
            "{name:<30} {rate:>12.0} {:>8.2} ({:.2}-{:.2}) {:>9.0}%",
            mid,
            sorted[0],
            sorted[sorted.len() - 1],
            100.0 * rate / baseline
        );
    }
    exec(&mut conn, &format!("DROP SCHEMA {schema} CASCADE")).await;
}

/// The bench schema's `DMS_DBCONDTLS` row.
fn dwsched_model_row(url: &str, schema: &str) -> dwsched_model::Connection {
    dwsched_model::Connection {
        constr: Some(url.to_string()),
        schnm: Some(schema.to_string()),
        current: true,
        ..Default::default()
    }
}
