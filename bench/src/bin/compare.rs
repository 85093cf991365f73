//! dwsched beside the tools its users would otherwise pick, on one PostgreSQL, in one
//! run: see `bench/run-all.sh`, which installs the peers and calls this harness.
//!
//! Each workload runs its systems in turn, round after round (A B A B), each in a
//! database created for it, and the medians with their min–max go to the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use dwsched_bench::{Process, dwsched_cli, machine_report, percentile, proc_stat, start_dwsched};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

/// Requests drained by the throughput workload.
const DRAIN: i64 = 20_000;
/// Jobs the dwsched requests are spread over (runs of one job never overlap).
const JOBS: i64 = 1_000;
/// Schedules of the firing workload.
const SCHEDULES: i64 = 10_000;

struct Bench {
    /// The server's URL without a database name.
    server: String,
    admin: PgPool,
    peers: Option<PathBuf>,
    rounds: usize,
}

impl Bench {
    fn database_url(&self, database: &str) -> String {
        format!("{}/{database}", self.server)
    }

    /// Drops and creates `database`, and returns a pool on it.
    async fn fresh_database(&self, database: &str) -> PgPool {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
        )))
        .execute(&self.admin)
        .await
        .expect("drop database");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&self.admin)
            .await
            .expect("create database");
        PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.database_url(database))
            .await
            .expect("connect to the bench database")
    }
}

/// dwsched's database, schema `dwsched`, with `JOBS` jobs whose flow has no steps.
async fn dwsched_database(bench: &Bench) -> (PgPool, String) {
    let pool = bench.fresh_database("dwbench_dwsched").await;
    let url = bench.database_url("dwbench_dwsched");
    dwsched_cli(&url, "dwsched", &["init"]);
    let flow = std::env::temp_dir().join("dwsched-bench-noop.toml");
    std::fs::write(&flow, "steps = []\n").expect("write flow");
    dwsched_cli(
        &url,
        "dwsched",
        &["job", "put", "NOOP0", "--flow", flow.to_str().unwrap()],
    );
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET search_path TO dwsched; \
         INSERT INTO dms_job (jobid, mapref, stflg, curflg, reccrdt, recupdt) \
         SELECT nextval('dms_jobseq'), 'NOOP' || g, 'A', 'Y', reccrdt, recupdt \
         FROM dms_job, generate_series(1, {last}) g WHERE mapref = 'NOOP0'; \
         INSERT INTO dms_jobflw (jobflwid, jobid, mapref, dwlogic, stflg, curflg, recrdt, recupdt) \
         SELECT nextval('dms_jobflwseq'), j.jobid, j.mapref, f.dwlogic, 'A', 'Y', f.recrdt, f.recupdt \
         FROM dms_job j, dms_jobflw f WHERE f.mapref = 'NOOP0' AND j.mapref <> 'NOOP0'",
        last = JOBS - 1
    )))
    .execute(&pool)
    .await
    .expect("copy the no-op job");
    sqlx::raw_sql("ALTER DATABASE dwbench_dwsched SET search_path TO dwsched")
        .execute(&pool)
        .await
        .expect("search path");
    pool.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("connect");
    (pool, url)
}

/// Waits until `remaining` (a count query) reaches zero; the rate is measured from the
/// first finished request to the last, so process start-up is not counted.
async fn drain_rate(pool: &PgPool, remaining: &str, total: i64) -> f64 {
    let mut first: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let left: i64 = sqlx::query_scalar(AssertSqlSafe(remaining.to_string()))
            .fetch_one(pool)
            .await
            .expect("count remaining");
        let now = Instant::now();
        if left < total && first.is_none() {
            first = Some(now);
        }
        if left == 0 {
            let seconds = first.map_or(0.0, |f| (now - f).as_secs_f64()).max(0.001);
            return total as f64 / seconds;
        }
        assert!(now < deadline, "{left} requests still waiting after 15 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn dwsched_throughput(bench: &Bench, nodes: usize, workers: usize) -> f64 {
    let (pool, url) = dwsched_database(bench).await;
    sqlx::query(
        "INSERT INTO dms_prcreq (request_id, mapref, request_type, payload, status, requested_at) \
         SELECT 'bench-' || g, 'NOOP' || (g % $1), 'IMMEDIATE', '{}', 'NEW', \
         (now() at time zone 'utc') + g * interval '1 microsecond' FROM generate_series(1, $2) g",
    )
    .bind(JOBS)
    .bind(DRAIN)
    .execute(&pool)
    .await
    .expect("queue requests");
    let processes: Vec<Process> = (0..nodes)
        .map(|n| start_dwsched(&url, "dwsched", &format!("bench{n}"), workers, &[]))
        .collect();
    let rate = drain_rate(
        &pool,
        "SELECT count(*) FROM dms_prcreq WHERE status IN ('NEW', 'PROCESSING')",
        DRAIN,
    )
    .await;
    drop(processes);
    let (runs, logs): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM dms_prclog WHERE status = 'PC'), (SELECT count(*) FROM dms_joblog)",
    )
    .fetch_one(&pool)
    .await
    .expect("count runs");
    assert_eq!((runs, logs), (DRAIN, DRAIN), "every request makes one closed run and one job log row");
    pool.close().await;
    rate
}

#[tokio::main]
async fn main() {
    let server = std::env::var("DWSCHED_BENCH_POSTGRES_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL");
    let bench = Bench {
        server,
        admin,
        peers: std::env::args().nth(1).map(PathBuf::from),
        rounds: 2,
    };
    println!("{}", machine_report());
    for workers in [4, 16, 64] {
        let rate = dwsched_throughput(&bench, 1, workers).await;
        println!("dwsched 1 node {workers} workers: {rate:.0} runs/s");
    }
}
