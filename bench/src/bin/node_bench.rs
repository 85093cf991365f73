//! The node's figures on PostgreSQL, against a real `dwsched run` process:
//!
//! 1. latency from a request's insert (by this process) to its run's `IP` row, at a
//!    paced 50 and 500 requests per second;
//! 2. firing precision: 10,000 schedules due in the same minute, the lateness of each
//!    request's insert against its slot, and whether any slot was dropped;
//! 3. footprint: CPU and RSS of the idle node with those 10,000 schedules loaded.
//!
//! Run `bench/run-node-bench.sh`, which builds the release binary first. It needs a
//! PostgreSQL where it may create a schema (`DWSCHED_BENCH_POSTGRES_URL`, default the
//! local server).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use dwsched_bench::machine_report;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

const JOBS: usize = 100;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(mut values: Vec<f64>) -> String {
    values.sort_by(|a, b| a.total_cmp(b));
    format!(
        "n={} p50={:.1} ms p95={:.1} ms p99={:.1} ms max={:.1} ms",
        values.len(),
        percentile(&values, 50.0),
        percentile(&values, 95.0),
        percentile(&values, 99.0),
        values.last().copied().unwrap_or(f64::NAN)
    )
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dwsched() -> String {
    std::env::var("DWSCHED_BIN").unwrap_or_else(|_| "target/release/dwsched".into())
}

fn cli(url: &str, schema: &str, args: &[&str]) {
    let status = Command::new(dwsched())
        .args(args)
        .args(["--database-url", url, "--schema", schema])
        .stdout(Stdio::null())
        .status()
        .expect("run dwsched");
    assert!(status.success(), "dwsched {args:?}");
}

fn start_node(url: &str, schema: &str, workers: &str, refresh: &str, log: &str) -> Node {
    let child = Command::new(dwsched())
        .args([
            "run",
            "--database-url",
            url,
            "--schema",
            schema,
            "--node-id",
            "bench",
            "--max-workers",
            workers,
        ])
        .env("SCHEDULER_REFRESH_INTERVAL", refresh)
        .env("RUST_LOG", "warn")
        .env(
            "DWSCHED_LOG_DIR",
            std::env::temp_dir().join("dwsched-bench-logs"),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start dwsched run");
    Node(child)
}

async fn insert_request(pool: &PgPool, mapref: &str) {
    sqlx::query(
        "INSERT INTO dms_prcreq (request_id, mapref, request_type, payload, status, requested_at) \
         VALUES (gen_random_uuid()::text, $1, 'IMMEDIATE', '{}', 'NEW', (now() at time zone 'utc'))",
    )
    .bind(mapref)
    .execute(pool)
    .await
    .unwrap();
}

/// Inserts requests at `rate` per second for `seconds`; returns the insert→IP delays.
async fn latency(pool: &PgPool, rate: u32, seconds: u32) -> Vec<f64> {
    sqlx::raw_sql("TRUNCATE dms_prcreq, dms_prclog, dms_joblog, dms_joberr")
        .execute(pool)
        .await
        .unwrap();
    let total = rate * seconds;
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    for i in 0..total {
        tokio::time::sleep_until(start + gap * i).await;
        insert_request(pool, &format!("NOOP{}", i as usize % JOBS)).await;
    }
    // Let the last ones finish.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM dms_prcreq WHERE status IN ('NEW', 'PROCESSING')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if left == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sqlx::query_scalar(
        "SELECT CAST(extract(epoch FROM (l.strtdt - r.requested_at)) * 1000 AS float8) FROM dms_prcreq r \
         JOIN dms_prclog l ON l.request_id = r.request_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn proc_stat(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line; here 11 and 12 after the name.
    let cpu_seconds = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu_seconds, rss_kib / 1024.0)
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DWSCHED_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let schema = format!("dwbench_{}", std::process::id());
    println!("{}", machine_report());
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("PostgreSQL");
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&admin)
        .await
        .unwrap();
    println!("PostgreSQL {version}, fsync as configured on the server\n");

    cli(&url, &schema, &["init"]);
    let flow = std::env::temp_dir().join("dwsched-bench-noop.toml");
    std::fs::write(&flow, "steps = []\n").unwrap();
    for i in 0..JOBS {
        cli(
            &url,
            &schema,
            &[
                "job",
                "put",
                &format!("NOOP{i}"),
                "--flow",
                flow.to_str().unwrap(),
            ],
        );
    }
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .after_connect({
            let schema = schema.clone();
            move |conn, _| {
                let schema = schema.clone();
                Box::pin(async move {
                    sqlx::raw_sql(AssertSqlSafe(format!("SET search_path TO {schema}")))
                        .execute(conn)
                        .await
                        .map(drop)
                })
            }
        })
        .connect(&url)
        .await
        .unwrap();

    let log = std::env::temp_dir().join("dwsched-bench-node.log");
    let node = start_node(&url, &schema, "16", "5", log.to_str().unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!("1. insert -> run IP, no-op runs over {JOBS} jobs, 16 workers:");
    for (rate, seconds) in [(50, 20), (500, 10)] {
        let delays = latency(&pool, rate, seconds).await;
        println!(
            "   {rate:>3} requests/s for {seconds} s: {}",
            summary(delays)
        );
    }

    // 2. 10,000 schedules due in the same minute, a minute and more from now.
    sqlx::raw_sql("TRUNCATE dms_prcreq, dms_prclog, dms_joblog, dms_joberr")
        .execute(&pool)
        .await
        .unwrap();
    let now = Utc::now();
    let due = (now + chrono::Duration::seconds(75))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let cron = format!("{} {} * * *", due.minute(), due.hour());
    sqlx::query(
        "INSERT INTO dms_jobsch (jobschid, mapref, frqcd, cronexpr, stflg, schflg, curflg, timezone, misfire, failcnt, recupdt) \
         SELECT nextval('dms_jobschseq'), 'NOOP' || (g % 100), 'CR', $1, 'A', 'Y', 'Y', 'UTC', 'COALESCE', 0, \
         (now() at time zone 'utc') FROM generate_series(1, 10000) g",
    )
    .bind(&cron)
    .execute(&pool)
    .await
    .unwrap();
    println!("\n2. 10,000 schedules due at {due} (cron '{cron}'):");
    while Utc::now() < due + chrono::Duration::seconds(20) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let lateness: Vec<f64> = sqlx::query_scalar(
        "SELECT CAST(extract(epoch FROM (requested_at - $1::timestamp)) * 1000 AS float8) FROM dms_prcreq WHERE dedupe_key LIKE 'sch:%'",
    )
    .bind(due.naive_utc())
    .fetch_all(&pool)
    .await
    .unwrap();
    let fired = lateness.len();
    println!(
        "   slots queued: {fired} of 10000 (dropped: {})",
        10_000 - fired as i64
    );
    let late = lateness.iter().filter(|ms| **ms > 100.0).count();
    println!(
        "   insert time against the slot (negative: queued early, claimable at the slot): {}",
        summary(lateness)
    );
    println!("   inserted more than 100 ms after the slot: {late}");
    let starts: Vec<f64> = sqlx::query_scalar(
        "SELECT CAST(extract(epoch FROM (l.strtdt - $1::timestamp)) * 1000 AS float8) FROM dms_prclog l \
         JOIN dms_prcreq r ON r.request_id = l.request_id WHERE r.dedupe_key LIKE 'sch:%' \
         ORDER BY l.strtdt LIMIT 16",
    )
    .bind(due.naive_utc())
    .fetch_all(&pool)
    .await
    .unwrap();
    println!(
        "   first 16 runs (one per worker) started after the slot: {}",
        summary(starts)
    );

    // 3. Idle: a fresh node with the default settings loads the 10,000 schedules, whose
    // next fire is a day away.
    drop(node);
    let node = start_node(&url, &schema, "4", "60", log.to_str().unwrap());
    let pid = node.0.id();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (cpu0, _) = proc_stat(pid);
    let window = 60.0;
    tokio::time::sleep(Duration::from_secs_f64(window)).await;
    let (cpu1, rss) = proc_stat(pid);
    println!(
        "\n3. idle with 10,000 schedules loaded, over {window:.0} s: CPU {:.2} % of one core, RSS {rss:.1} MiB",
        (cpu1 - cpu0) / window * 100.0
    );

    drop(node);
    pool.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}
