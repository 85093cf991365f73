//! A DWTOOL report of 1,000,000 rows on PostgreSQL, run by a real `dwsched run` node
//! from a `REPORT` request, beside `psql -c "\copy (query) to 'file' csv header"`:
//!
//! - CSV: the run's time (`DMS_PRCLOG` start to end) against psql's wall time, three
//!   runs each, medians;
//! - XLSX, JSON, Parquet: the run's time, and the node's peak memory (`VmHWM`) for
//!   100,000 and 1,000,000 rows, each on a fresh node, to show memory flat in the row
//!   count.
//!
//! Run `bench/run-report-bench.sh`; it needs `psql` and a release build of `dwsched`.

use std::process::Command;
use std::time::{Duration, Instant};

use dwsched_bench::{
    Process, dwsched_cli, exec, machine_report, median, peak_rss_mib, start_dwsched, text,
    wait_for_run,
};
use sqlx::{Connection as _, PgConnection};

const ROWS: i64 = 1_000_000;
const SMALL: i64 = 100_000;
const RUNS: usize = 3;

/// Queues a `REPORT` request as DWTOOL's API does, waits for it to end `DONE`, and gives
/// the run's own duration (`DMS_PRCLOG` `ENDDT - STRTDT`) and the file it wrote.
async fn run_report(
    conn: &mut PgConnection,
    report: i64,
    format: &str,
    dir: &str,
) -> (f64, String) {
    let id = uuid_like();
    let payload = format!(
        r#"{{"outputFormat": "{format}", "destination": "FILE", "filePath": "{dir}", "reportId": {report}}}"#
    );
    exec(
        conn,
        &format!(
            "INSERT INTO dms_prcreq (request_id, mapref, request_type, payload, status, requested_at) \
             VALUES ('{id}', 'REPORT:{report}', 'REPORT', '{payload}', 'NEW', now() AT TIME ZONE 'UTC')"
        ),
    )
    .await;
    let (seconds, result) = wait_for_run(conn, &id, Duration::from_secs(600)).await;
    (seconds, result["filePath"].as_str().unwrap().to_string())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        u64::from(std::process::id()) << 20 | n
    )
}

fn psql_copy(url: &str, schema: &str, query: &str, file: &str) -> f64 {
    let started = Instant::now();
    let status = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("\\copy ({query}) to '{file}' csv header"))
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .status()
        .expect("psql");
    assert!(status.success(), "psql \\copy failed");
    started.elapsed().as_secs_f64()
}

/// Starts a node and waits until it has claimed nothing for a moment (it is up).
async fn fresh_node(url: &str, schema: &str, name: &str, out: &str) -> Process {
    let node = start_dwsched(
        url,
        schema,
        name,
        2,
        &[("REPORT_OUTPUT_DIR", out), ("SCHEDULER_POLL_INTERVAL", "1")],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    node
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DWSCHED_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let schema = format!("report_bench_{}", std::process::id());
    let out_dir = std::env::temp_dir().join(&schema);
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.to_str().unwrap().to_string();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let version = text(&mut conn, "SELECT version()").await;
    println!(
        "{}\n{}\nreport of {ROWS} rows x 7 columns, PostgreSQL -> file\n",
        machine_report(),
        version.split(" on ").next().unwrap_or(&version)
    );
    exec(&mut conn, &format!("CREATE SCHEMA {schema}")).await;
    exec(&mut conn, &format!("SET search_path TO {schema}")).await;
    exec(
        &mut conn,
        &format!(
            "CREATE TABLE sales AS SELECT g AS id, 'REGION ' || (g % 17) AS region, \
             'Product, \"' || (g % 1013) || '\"' AS product, (g % 50) AS qty, \
             CAST((g % 100000) / 100.0 AS NUMERIC(12,2)) AS amount, \
             TIMESTAMP '2026-01-01 00:00:00' + (g % 86400) * INTERVAL '1 second' AS sold_at, \
             CASE WHEN g % 7 = 0 THEN NULL ELSE 'note ' || g END AS note \
             FROM generate_series(1, {ROWS}) g"
        ),
    )
    .await;
    exec(&mut conn, "ANALYZE sales").await;
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
    let query = "SELECT id, region, product, qty, amount, sold_at, note FROM sales ORDER BY id";
    let small = format!(
        "SELECT id, region, product, qty, amount, sold_at, note FROM sales WHERE id <= {SMALL} ORDER BY id"
    );
    exec(
        &mut conn,
        &format!(
            "INSERT INTO dms_rprt_def (rprtid, rprtnm, adhcsql, dbcnid) VALUES \
             (1, 'Sales', '{query}', {conid}), (2, 'Sales small', '{small}', {conid})"
        ),
    )
    .await;

    // CSV against psql's \copy, on one node.
    let psql_file = out_dir.join("psql.csv");
    let psql_file = psql_file.to_str().unwrap();
    let mut psql_times: Vec<f64> = (0..RUNS)
        .map(|_| psql_copy(&url, &schema, query, psql_file))
        .collect();
    let node = fresh_node(&url, &schema, "report-bench-csv", &out).await;
    let mut csv_times = Vec::new();
    let mut csv_file = String::new();
    for _ in 0..RUNS {
        let (seconds, file) = run_report(&mut conn, 1, "CSV", &out).await;
        csv_times.push(seconds);
        if !csv_file.is_empty() {
            let _ = std::fs::remove_file(&csv_file);
        }
        csv_file = file;
    }
    let csv_peak = peak_rss_mib(node.0.id());
    drop(node);
    let same = std::fs::read(psql_file).ok() == std::fs::read(&csv_file).ok();
    let psql_time = median(&mut psql_times);
    let csv_time = median(&mut csv_times);
    let rate = |seconds: f64| ROWS as f64 / seconds;
    println!(
        "{:<34} {:>13} {:>9} {:>12}",
        "variant", "rate", "time", "vs psql"
    );
    println!(
        "{:<34} {:>8.0} rows/s {:>7.2} s {:>8}% of psql",
        "psql \\copy (query) to csv",
        rate(psql_time),
        psql_time,
        100
    );
    println!(
        "{:<34} {:>8.0} rows/s {:>7.2} s {:>8.0}% of psql",
        "dwsched REPORT CSV",
        rate(csv_time),
        csv_time,
        100.0 * psql_time / csv_time
    );
    println!(
        "\nCSV file {} bytes, psql's {} bytes, identical: {same} (medians of {RUNS} runs; dwsched node peak memory {csv_peak:.0} MiB)",
        std::fs::metadata(&csv_file).map(|m| m.len()).unwrap_or(0),
        std::fs::metadata(psql_file).map(|m| m.len()).unwrap_or(0),
    );

    // Other formats: time for the large report, and each size's peak on a fresh node.
    println!(
        "\n{:<10} {:>12} {:>11} {:>16} {:>16}",
        "format", "1M rows", "file", "peak @100k rows", "peak @1M rows"
    );
    for format in ["XLSX", "JSON", "PARQUET", "CSV"] {
        let node = fresh_node(&url, &schema, &format!("report-bench-{format}-s"), &out).await;
        let (_, file) = run_report(&mut conn, 2, format, &out).await;
        let _ = std::fs::remove_file(file);
        let small_peak = peak_rss_mib(node.0.id());
        drop(node);
        let node = fresh_node(&url, &schema, &format!("report-bench-{format}-l"), &out).await;
        let (seconds, file) = run_report(&mut conn, 1, format, &out).await;
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(file);
        let large_peak = peak_rss_mib(node.0.id());
        drop(node);
        println!(
            "{:<10} {:>10.2} s {:>7.0} MiB {:>12.0} MiB {:>12.0} MiB",
            format,
            seconds,
            size as f64 / 1_048_576.0,
            small_peak,
            large_peak
        );
    }
    exec(&mut conn, &format!("DROP SCHEMA {schema} CASCADE")).await;
    let _ = std::fs::remove_dir_all(&out_dir);
}
