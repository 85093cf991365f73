//! A DWTOOL file upload of 1,000,000 CSV rows into PostgreSQL, run by a real `dwsched
//! run` node from a `FILE_UPLOAD` request, beside `psql -c "\copy t from 'file' csv
//! header"` into the same table shape: the run's time (`DMS_PRCLOG` start to end:
//! the file read twice, checked whole and then loaded with `COPY` in one transaction,
//! and the run recorded), three runs each, medians; and the node's peak memory for
//! 100,000 and 1,000,000 rows, each on a fresh node.
//!
//! Run `bench/run-upload-bench.sh`; it needs `psql` and a release build of `dwsched`.

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use dwsched_bench::{Process, dwsched_cli, machine_report, median, start_dwsched, wait_for_run};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

const ROWS: usize = 1_000_000;
const SMALL: usize = 100_000;
const RUNS: usize = 3;

const COLUMNS: &[(&str, &str, &str)] = &[
    ("cust_id", "String10", "VARCHAR(10)"),
    ("cust_name", "String100", "VARCHAR(100)"),
    ("email", "String200", "VARCHAR(200)"),
    ("signup_date", "Date", "DATE"),
    ("country", "String2", "VARCHAR(2)"),
    ("amount", "Decimal18,2", "NUMERIC(18,2)"),
    ("visits", "Integer", "BIGINT"),
];

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn text(conn: &mut PgConnection, sql: &str) -> String {
    sqlx::query_scalar(AssertSqlSafe(sql.to_string()))
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn write_file(path: &std::path::Path, rows: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut out = std::io::BufWriter::new(file);
    let names: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    writeln!(out, "{}", names.join(",")).unwrap();
    for i in 0..rows {
        writeln!(
            out,
            "{:08},Customer {i},c{i}@example.com,2026-{:02}-{:02},{},{}.{:02},{}",
            i,
            1 + i % 12,
            1 + i % 28,
            ["IN", "GB", "DE", "PT"][i % 4],
            i % 100_000,
            i % 100,
            i % 500
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// Queues a `FILE_UPLOAD` as DWTOOL's API does and waits for it to end `DONE`; the
/// run's own duration.
async fn run_upload(conn: &mut PgConnection, reference: &str, mode: &str, n: u64) -> f64 {
    let id = format!(
        "00000000-0000-4000-9000-{:012x}",
        u64::from(std::process::id()) << 16 | n
    );
    exec(
        conn,
        &format!(
            "INSERT INTO dms_prcreq (request_id, mapref, request_type, payload, status, requested_at) \
             VALUES ('{id}', 'FLUPLD:{reference}', 'FILE_UPLOAD', \
             '{{\"flupldref\": \"{reference}\", \"load_mode\": \"{mode}\"}}', 'NEW', now() AT TIME ZONE 'UTC')"
        ),
    )
    .await;
    wait_for_run(conn, &id, Duration::from_secs(900)).await.0
}

fn psql_copy(url: &str, schema: &str, file: &str) -> f64 {
    let started = Instant::now();
    let status = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "TRUNCATE psql_target",
            "-c",
        ])
        .arg(format!("\\copy psql_target from '{file}' csv header"))
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .status()
        .expect("psql");
    assert!(status.success(), "psql \\copy failed");
    started.elapsed().as_secs_f64()
}

async fn fresh_node(url: &str, schema: &str, name: &str) -> Process {
    let node = start_dwsched(
        url,
        schema,
        name,
        2,
        &[("SCHEDULER_POLL_INTERVAL", "1"), ("RUST_LOG", "info")],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    node
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DWSCHED_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let schema = format!("upload_bench_{}", std::process::id());
    let dir = std::env::temp_dir().join(&schema);
    std::fs::create_dir_all(&dir).unwrap();
    let large = dir.join("customers.csv");
    let small = dir.join("customers-small.csv");
    write_file(&large, ROWS);
    write_file(&small, SMALL);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let version = text(&mut conn, "SELECT version()").await;
    println!(
        "{}\n{}\nfile upload of {ROWS} CSV rows x {} columns ({} MiB) into PostgreSQL\n",
        machine_report(),
        version.split(" on ").next().unwrap_or(&version),
        COLUMNS.len(),
        std::fs::metadata(&large).map(|m| m.len()).unwrap_or(0) / 1_048_576
    );
    exec(&mut conn, &format!("CREATE SCHEMA {schema}")).await;
    exec(&mut conn, &format!("SET search_path TO {schema}")).await;
    let definition: Vec<String> = COLUMNS.iter().map(|(n, _, t)| format!("{n} {t}")).collect();
    exec(
        &mut conn,
        &format!("CREATE TABLE psql_target ({})", definition.join(", ")),
    )
    .await;
    dwsched_cli(&url, &schema, &["init"]);
    dwsched_cli(
        &url,
        &schema,
        &[
            "conn",
            "put",
            "dw",
            "--url",
            &url,
            "--default-schema",
            &schema,
        ],
    );
    let conid = text(
        &mut conn,
        "SELECT CAST(conid AS TEXT) FROM dms_dbcondtls WHERE connm = 'dw'",
    )
    .await;
    for (id, reference, path, table) in [
        (1, "BIG", &large, "upload_target"),
        (2, "SMALL", &small, "upload_small"),
    ] {
        exec(
            &mut conn,
            &format!(
                "INSERT INTO dms_flupld (flupldid, flupldref, flpth, fltyp, trgconid, trgschm, trgtblnm, curflg) \
                 VALUES ({id}, '{reference}', '{}', 'CSV', {conid}, '{schema}', '{table}', 'Y')",
                path.display()
            ),
        )
        .await;
        for (seq, (name, code, _)) in COLUMNS.iter().enumerate() {
            exec(
                &mut conn,
                &format!(
                    "INSERT INTO dms_fluplddtl (flupldref, srcclnm, trgclnm, trgcldtyp, trgkyflg, excseq, curflg) \
                     VALUES ('{reference}', '{name}', '{name}', '{code}', 'N', {}, 'Y')",
                    seq + 1
                ),
            )
            .await;
        }
    }
    let large_path = large.to_str().unwrap();
    let mut psql_times: Vec<f64> = (0..RUNS)
        .map(|_| psql_copy(&url, &schema, large_path))
        .collect();
    let node = fresh_node(&url, &schema, "upload-bench-l").await;
    // INSERT into an emptied table, as psql's \copy appends; then TRUNCATE_LOAD, which
    // reads the whole file once before it empties the table.
    let mut times = Vec::new();
    for run in 0..RUNS {
        if run > 0 {
            exec(&mut conn, "TRUNCATE upload_target").await;
        }
        times.push(run_upload(&mut conn, "BIG", "INSERT", run as u64 + 1).await);
    }
    let mut truncating = Vec::new();
    for run in 0..RUNS {
        truncating.push(run_upload(&mut conn, "BIG", "TRUNCATE_LOAD", run as u64 + 11).await);
    }
    drop(node);
    // Peak memory: one INSERT of each size, each on a fresh node.
    let mut peaks = Vec::new();
    for (reference, table, n) in [
        ("SMALL", "upload_small", 100),
        ("BIG", "upload_target", 200),
    ] {
        if reference == "BIG" {
            exec(&mut conn, &format!("TRUNCATE {table}")).await;
        }
        let node = fresh_node(&url, &schema, &format!("upload-bench-peak-{reference}")).await;
        run_upload(&mut conn, reference, "INSERT", n).await;
        peaks.push(peak_rss_mib(node.0.id()));
        drop(node);
    }
    let (small_peak, large_peak) = (peaks[0], peaks[1]);
    let loaded = text(
        &mut conn,
        "SELECT CAST(COUNT(*) AS TEXT) FROM upload_target",
    )
    .await;
    let psql_time = median(&mut psql_times);
    let time = median(&mut times);
    let truncating = median(&mut truncating);
    let rate = |seconds: f64| ROWS as f64 / seconds;
    println!(
        "{:<38} {:>13} {:>9} {:>12}",
        "variant", "rate", "time", "vs psql"
    );
    println!(
        "{:<38} {:>8.0} rows/s {:>7.2} s {:>8}% of psql",
        "psql: TRUNCATE, \\copy from csv",
        rate(psql_time),
        psql_time,
        100
    );
    println!(
        "{:<38} {:>8.0} rows/s {:>7.2} s {:>8.0}% of psql",
        "dwsched FILE_UPLOAD INSERT",
        rate(time),
        time,
        100.0 * psql_time / time
    );
    println!(
        "{:<38} {:>8.0} rows/s {:>7.2} s {:>8.0}% of psql",
        "dwsched FILE_UPLOAD TRUNCATE_LOAD",
        rate(truncating),
        truncating,
        100.0 * psql_time / truncating
    );
    println!(
        "\nrows in the target: {loaded} (medians of {RUNS} runs)\ndwsched node peak memory, one INSERT on a fresh node: {small_peak:.0} MiB for {SMALL} rows, {large_peak:.0} MiB for {ROWS} rows"
    );
    exec(&mut conn, &format!("DROP SCHEMA {schema} CASCADE")).await;
    let _ = std::fs::remove_dir_all(&dir);
}
