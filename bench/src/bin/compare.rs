//! dwsched beside the tools its users would otherwise pick, on one PostgreSQL, in one
//! run. `bench/run-all.sh` builds dwsched, installs the peers from their registries
//! into a throwaway directory and calls this harness, which writes `bench/RESULTS.md`.
//!
//! Every workload runs its systems in turn, round after round (A B A B), each in a
//! database created for that measurement, and reports the median of the rounds with
//! their min–max and its ratio to dwsched's.
//!
//! Usage: `compare PEERS_DIR RESULTS_FILE` (`DWSCHED_BENCH_ROUNDS`, default 2).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use dwsched_bench::{
    Process, dwsched_cli, machine_report, median, percentile, proc_stat, start_dwsched,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

/// Requests drained by the throughput workload.
const DRAIN: i64 = 20_000;
/// Jobs dwsched's requests and schedules are spread over (runs of one job never
/// overlap, so one job would serialise them).
const JOBS: i64 = 1_000;
/// Schedules of the firing workload.
const SCHEDULES: i64 = 10_000;
/// Paced loads of the latency workload: requests per second and seconds.
const PACES: [(u32, u32); 2] = [(50, 8), (500, 3)];
/// Workers per node where a workload has one setting (the issue's reference).
const WORKERS: usize = 16;
/// pgbench client counts tried for the ceiling.
const CEILING_CLIENTS: [usize; 3] = [1, 2, 4];

/// A system under test.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum System {
    Dwsched,
    Pgqueuer,
    Procrastinate,
    /// graphile-worker with its documented batching (local queue of 500, completions
    /// and failures batched with no delay).
    GraphileBatched,
    /// graphile-worker with its defaults.
    Graphile,
    Apscheduler,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            Self::Dwsched => "dwsched",
            Self::Pgqueuer => "pgqueuer",
            Self::Procrastinate => "procrastinate",
            Self::GraphileBatched => "graphile-worker (batched)",
            Self::Graphile => "graphile-worker (defaults)",
            Self::Apscheduler => "APScheduler",
        }
    }

    fn database(self) -> &'static str {
        match self {
            Self::Dwsched => "dwbench_dwsched",
            Self::Pgqueuer => "dwbench_pgqueuer",
            Self::Procrastinate => "dwbench_procrastinate",
            Self::GraphileBatched | Self::Graphile => "dwbench_graphile",
            Self::Apscheduler => "dwbench_apscheduler",
        }
    }

    /// Counts the jobs not yet done.
    fn remaining_sql(self) -> &'static str {
        match self {
            Self::Dwsched => {
                "SELECT count(*) FROM dms_prcreq WHERE status IN ('NEW', 'PROCESSING')"
            }
            Self::Pgqueuer => "SELECT count(*) FROM pgqueuer",
            Self::Procrastinate => {
                "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
            }
            Self::GraphileBatched | Self::Graphile => {
                "SELECT count(*) FROM graphile_worker._private_jobs"
            }
            Self::Apscheduler => "SELECT 0",
        }
    }
}

struct Bench {
    /// The server's URL without a database name.
    server: String,
    admin: PgPool,
    peers: PathBuf,
    rounds: usize,
    /// The systems to measure (`DWSCHED_BENCH_SYSTEMS`, comma-separated names; all when
    /// unset), for a quick look at one of them.
    systems: Option<Vec<String>>,
    results: Results,
}

/// What one measurement gave, by workload, setting and system.
#[derive(Default)]
struct Results {
    figures: BTreeMap<(String, String), BTreeMap<System, Vec<f64>>>,
    /// Settings in the order they were first measured.
    settings: Vec<String>,
    units: BTreeMap<String, (&'static str, bool)>,
    notes: Vec<String>,
}

impl Results {
    /// Records `value` of `system`; `higher_is_better` tells which way dwsched leads.
    fn add(
        &mut self,
        figure: &str,
        setting: &str,
        system: System,
        value: f64,
        unit: &'static str,
        higher_is_better: bool,
    ) {
        println!(
            "  {figure} | {setting} | {}: {value:.1} {unit}",
            system.name()
        );
        if !self.settings.iter().any(|s| s == setting) {
            self.settings.push(setting.to_string());
        }
        self.units
            .insert(figure.to_string(), (unit, higher_is_better));
        self.figures
            .entry((figure.to_string(), setting.to_string()))
            .or_default()
            .entry(system)
            .or_default()
            .push(value);
    }
}

impl Bench {
    fn wants(&self, system: System) -> bool {
        self.systems
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| system.name().starts_with(n.as_str())))
    }

    fn database_url(&self, database: &str) -> String {
        format!("{}/{database}", self.server)
    }

    /// Drops and creates `database`, and returns a pool on it.
    async fn fresh_database(&self, database: &str) -> PgPool {
        for statement in [
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            format!("CREATE DATABASE {database}"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&self.admin)
                .await
                .expect("recreate the bench database");
        }
        self.pool(database).await
    }

    async fn pool(&self, database: &str) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.database_url(database))
            .await
            .expect("connect to the bench database")
    }

    /// A peer's command for `verb`, against `system`'s database.
    fn peer(&self, system: System, args: &[&str], out: &str) -> Command {
        let bench_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut command = match system {
            System::GraphileBatched | System::Graphile => {
                let mut c = Command::new("node");
                c.arg(self.peers.join("node/graphile_bench.js"));
                c
            }
            _ => {
                let script = match system {
                    System::Pgqueuer => "pgqueuer_bench.py",
                    System::Procrastinate => "procrastinate_bench.py",
                    _ => "apscheduler_bench.py",
                };
                let mut c = Command::new(self.peers.join("venv/bin/python"));
                c.arg(bench_dir.join("peers").join(script));
                c
            }
        };
        let log = std::env::temp_dir().join(format!("dwsched-bench-{out}.log"));
        command
            .args(args)
            .env("DATABASE_URL", self.database_url(system.database()))
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(std::fs::File::create(log.with_extension("err")).expect("log file"));
        command
    }

    /// Runs a peer command to its end.
    fn peer_step(&self, system: System, args: &[&str]) {
        let status = self
            .peer(system, args, &format!("{}-{}", system.database(), args[0]))
            .status()
            .expect("run the peer");
        assert!(status.success(), "{} {args:?} failed", system.name());
    }

    /// A peer's fresh database with its tables installed.
    async fn peer_database(&self, system: System) -> PgPool {
        let pool = self.fresh_database(system.database()).await;
        self.peer_step(system, &["install"]);
        pool
    }

    /// Starts a peer's worker with `workers` concurrent jobs.
    fn peer_worker(
        &self,
        system: System,
        workers: usize,
        index: usize,
        out: Option<&Path>,
    ) -> Process {
        let workers = workers.to_string();
        let mut args = vec!["work", workers.as_str()];
        if matches!(system, System::GraphileBatched | System::Graphile) {
            args.push(if system == System::GraphileBatched {
                "on"
            } else {
                "off"
            });
        }
        let out = out.map(|p| p.to_string_lossy().into_owned());
        if let Some(out) = &out {
            args.push(out);
        }
        let name = format!("{}-worker{index}", system.database());
        Process(
            self.peer(system, &args, &name)
                .spawn()
                .expect("start the peer's worker"),
        )
    }
}

/// dwsched's database, schema `dwsched`, with `JOBS` jobs whose flow has no steps.
async fn dwsched_database(bench: &Bench) -> (PgPool, String) {
    let database = System::Dwsched.database();
    let pool = bench.fresh_database(database).await;
    let url = bench.database_url(database);
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
         FROM dms_job j, dms_jobflw f WHERE f.mapref = 'NOOP0' AND j.mapref <> 'NOOP0'; \
         ALTER DATABASE {database} SET search_path TO dwsched",
        last = JOBS - 1
    )))
    .execute(&pool)
    .await
    .expect("copy the no-op job");
    pool.close().await;
    (bench.pool(database).await, url)
}

/// Queues `count` no-op run requests spread over the jobs.
async fn queue_dwsched_requests(pool: &PgPool, count: i64) {
    sqlx::query(
        "INSERT INTO dms_prcreq (request_id, mapref, request_type, payload, status, requested_at) \
         SELECT 'bench-' || g, 'NOOP' || (g % $1), 'IMMEDIATE', '{}', 'NEW', \
         (now() at time zone 'utc') + g * interval '1 microsecond' FROM generate_series(1, $2) g",
    )
    .bind(JOBS)
    .bind(count)
    .execute(pool)
    .await
    .expect("queue requests");
}

/// Waits until `remaining` (a count query) reaches zero; the rate is measured from
/// the first finished job to the last, so that process start-up is not counted.
async fn drain_rate(pool: &PgPool, remaining: &str, total: i64) -> f64 {
    let mut first: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
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
        assert!(now < deadline, "{left} jobs still waiting after 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 30 s) until nothing of `system` is left to do.
async fn wait_drained(pool: &PgPool, system: System) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let left: i64 = sqlx::query_scalar(AssertSqlSafe(system.remaining_sql().to_string()))
            .fetch_one(pool)
            .await
            .expect("count remaining");
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn throughput(bench: &Bench, system: System, nodes: usize, workers: usize) -> f64 {
    if system == System::Dwsched {
        let (pool, url) = dwsched_database(bench).await;
        queue_dwsched_requests(&pool, DRAIN).await;
        let processes: Vec<Process> = (0..nodes)
            .map(|n| start_dwsched(&url, "dwsched", &format!("bench{n}"), workers, &[]))
            .collect();
        let rate = drain_rate(&pool, system.remaining_sql(), DRAIN).await;
        drop(processes);
        let (runs, logs): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM dms_prclog WHERE status = 'PC'), \
             (SELECT count(*) FROM dms_joblog)",
        )
        .fetch_one(&pool)
        .await
        .expect("count runs");
        assert_eq!(
            (runs, logs),
            (DRAIN, DRAIN),
            "every request makes one closed run and one job log row"
        );
        pool.close().await;
        return rate;
    }
    let pool = bench.peer_database(system).await;
    bench.peer_step(system, &["enqueue", &DRAIN.to_string()]);
    let processes: Vec<Process> = (0..nodes)
        .map(|n| bench.peer_worker(system, workers, n, None))
        .collect();
    let rate = drain_rate(&pool, system.remaining_sql(), DRAIN).await;
    drop(processes);
    pool.close().await;
    rate
}

/// Enqueue→start delays (ms) of requests queued by another process at `rate` per
/// second for `seconds`, with one node of `WORKERS` workers.
async fn latency(bench: &Bench, system: System, rate: u32, seconds: u32) -> Vec<f64> {
    if system == System::Dwsched {
        let (pool, url) = dwsched_database(bench).await;
        let node = start_dwsched(&url, "dwsched", "bench0", WORKERS, &[]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let gap = Duration::from_secs_f64(1.0 / f64::from(rate));
        let start = tokio::time::Instant::now();
        for i in 0..rate * seconds {
            tokio::time::sleep_until(start + gap * i).await;
            sqlx::query(
                "INSERT INTO dms_prcreq (request_id, mapref, request_type, payload, status, requested_at) \
                 VALUES ($1, $2, 'IMMEDIATE', '{}', 'NEW', $3)",
            )
            .bind(format!("bench-{i}"))
            .bind(format!("NOOP{}", i64::from(i) % JOBS))
            .bind(Utc::now().naive_utc())
            .execute(&pool)
            .await
            .expect("queue a request");
        }
        wait_drained(&pool, system).await;
        drop(node);
        let delays = sqlx::query_scalar(
            "SELECT CAST(extract(epoch FROM (l.strtdt - r.requested_at)) * 1000 AS float8) \
             FROM dms_prcreq r JOIN dms_prclog l ON l.request_id = r.request_id",
        )
        .fetch_all(&pool)
        .await
        .expect("read delays");
        pool.close().await;
        return delays;
    }
    let pool = bench.peer_database(system).await;
    let out = std::env::temp_dir().join(format!("dwsched-bench-{}-latency.txt", system.database()));
    let _ = std::fs::remove_file(&out);
    let worker = bench.peer_worker(system, WORKERS, 0, Some(&out));
    tokio::time::sleep(Duration::from_secs(2)).await;
    bench.peer_step(
        system,
        &["produce", &rate.to_string(), &seconds.to_string()],
    );
    wait_drained(&pool, system).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(worker);
    pool.close().await;
    std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The first whole minute at least `ahead` from now.
fn next_minute(ahead: Duration) -> DateTime<Utc> {
    let earliest = Utc::now() + chrono::Duration::from_std(ahead).unwrap();
    let floor = earliest.with_second(0).unwrap().with_nanosecond(0).unwrap();
    if floor < earliest {
        floor + chrono::Duration::minutes(1)
    } else {
        floor
    }
}

/// What a firing round measured of one system.
struct Firing {
    lateness_ms: Vec<f64>,
    dropped: i64,
    idle_cpu_percent: f64,
    idle_rss_mib: f64,
}

/// Firing precision and idle footprint of dwsched and APScheduler, side by side: both
/// start with `SCHEDULES` schedules, idle together for a 60 s footprint window, then
/// fire at slots a minute apart (`dwsched_first` says whose slot comes first).
async fn firing_round(bench: &Bench, dwsched_first: bool) -> (Firing, Firing) {
    let (pool, url) = dwsched_database(bench).await;
    let first = next_minute(Duration::from_secs(75));
    let second = first + chrono::Duration::minutes(1);
    let (dwsched_slot, aps_slot) = if dwsched_first {
        (first, second)
    } else {
        (second, first)
    };
    let cron = format!("{} {} * * *", dwsched_slot.minute(), dwsched_slot.hour());
    sqlx::query(
        "INSERT INTO dms_jobsch (jobschid, mapref, frqcd, cronexpr, stflg, schflg, curflg, timezone, \
         misfire, failcnt, recupdt) SELECT nextval('dms_jobschseq'), 'NOOP' || (g % $2), 'CR', $1, \
         'A', 'Y', 'Y', 'UTC', 'COALESCE', 0, (now() at time zone 'utc') \
         FROM generate_series(1, $3) g",
    )
    .bind(&cron)
    .bind(JOBS)
    .bind(SCHEDULES)
    .execute(&pool)
    .await
    .expect("insert schedules");
    // dwsched with its default settings; APScheduler with its own.
    let node = start_dwsched(&url, "dwsched", "bench0", 4, &[]);
    let aps_out = std::env::temp_dir().join("dwsched-bench-apscheduler.json");
    let _ = std::fs::remove_file(&aps_out);
    let aps = Process(
        bench
            .peer(
                System::Apscheduler,
                &[
                    "fire",
                    &SCHEDULES.to_string(),
                    &aps_slot.timestamp().to_string(),
                    aps_out.to_str().unwrap(),
                ],
                "apscheduler",
            )
            .spawn()
            .expect("start APScheduler"),
    );
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (node_pid, aps_pid) = (node.0.id(), aps.0.id());
    let (node_cpu0, _) = proc_stat(node_pid);
    let (aps_cpu0, _) = proc_stat(aps_pid);
    let window = 60.0;
    tokio::time::sleep(Duration::from_secs_f64(window)).await;
    let (node_cpu1, node_rss) = proc_stat(node_pid);
    let (aps_cpu1, aps_rss) = proc_stat(aps_pid);
    assert!(
        Utc::now() < first,
        "the footprint window must end before the first slot"
    );
    // Both have fired and APScheduler has written its figures 20 s after its slot.
    let last = dwsched_slot.max(aps_slot) + chrono::Duration::seconds(22);
    while Utc::now() < last || !aps_out.exists() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            Utc::now() < last + chrono::Duration::seconds(60),
            "APScheduler wrote no figures"
        );
    }
    drop(node);
    drop(aps);
    // A fire is claimable from its slot on (dwsched queues it ahead with NOT_BEFORE
    // set to the slot), so its lateness is how far after the slot the row was there.
    let lateness: Vec<f64> = sqlx::query_scalar(
        "SELECT greatest(0, CAST(extract(epoch FROM (requested_at - $1::timestamp)) * 1000 AS float8)) \
         FROM dms_prcreq WHERE dedupe_key LIKE 'sch:%'",
    )
    .bind(dwsched_slot.naive_utc())
    .fetch_all(&pool)
    .await
    .expect("read fires");
    pool.close().await;
    let dwsched = Firing {
        dropped: SCHEDULES - lateness.len() as i64,
        lateness_ms: lateness,
        idle_cpu_percent: (node_cpu1 - node_cpu0) / window * 100.0,
        idle_rss_mib: node_rss,
    };
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&aps_out).expect("APScheduler figures"))
            .expect("APScheduler figures are JSON");
    let aps_lateness: Vec<f64> = report["lateness_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default();
    let apscheduler = Firing {
        dropped: SCHEDULES - aps_lateness.len() as i64,
        lateness_ms: aps_lateness,
        idle_cpu_percent: (aps_cpu1 - aps_cpu0) / window * 100.0,
        idle_rss_mib: aps_rss,
    };
    (dwsched, apscheduler)
}

/// The claiming node's name in the pgbench script: one per client.
const NODE: &str = "('pgbench' || CAST(:client_id AS text))";

/// `$n` placeholders of `statement` replaced by pgbench expressions, highest first
/// (so that `$1` does not match inside `$13`).
fn substitute(statement: &str, values: &[(usize, String)]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.0));
    sorted
        .iter()
        .fold(statement.to_string(), |text, (n, value)| {
            text.replace(&format!("${n}"), value)
        })
}

/// The pgbench script of `batch` jobs made with the statements a node sends for a
/// batch of no-op runs: the claim of `batch` requests and the store's own set
/// statements for the batch's opens (one transaction) and its ends with their
/// completions (another), plus the read of the claimed jobs' flows, as the claimer and
/// the run journal send them.
fn pgbench_script(batch: usize) -> String {
    let now = "(now() at time zone 'utc')";
    let claim = substitute(
        &dwsched_store::postgres_run_claim_statement(),
        &[
            (1, now.to_string()),
            (2, batch.to_string()),
            (3, NODE.to_string()),
            (4, "60".to_string()),
        ],
    );
    let ids = "string_to_array(:ids, ',')";
    let maps = "string_to_array(:maps, ',')";
    let prcids = "CAST(string_to_array(:prcids, ',') AS bigint[])";
    let fill = |value: &str, ty: &str, of: &str| {
        format!("array_fill(CAST({value} AS {ty}), ARRAY[COALESCE(cardinality({of}), 0)])")
    };
    let [open, finish, complete] = dwsched_store::postgres_run_write_statements();
    let mut open_values = vec![
        (1, ids.to_string()),
        (2, fill(NODE, "text", ids)),
        (3, maps.to_string()),
        (4, fill("1", "bigint", ids)),
        (5, fill("1", "bigint", ids)),
        (6, fill(now, "timestamp", ids)),
        (7, fill("'{}'", "text", ids)),
        (8, fill(NODE, "text", ids)),
    ];
    open_values.extend((9..=18).map(|n| (n, fill("NULL", "text", ids))));
    // pgbench keeps one row of a result: the new runs' ids come back as one list.
    let open = substitute(open, &open_values)
        .replacen(
            " INSERT INTO DMS_PRCLOG",
            ", ins AS (INSERT INTO DMS_PRCLOG",
            1,
        )
        .replacen(
            "RETURNING CAST(PRCID AS BIGINT), REQUEST_ID",
            "RETURNING CAST(PRCID AS BIGINT) AS prcid, REQUEST_ID) \
             SELECT string_agg(CAST(prcid AS text), ',') AS prcids FROM ins",
            1,
        );
    let finish = substitute(
        finish,
        &[
            (1, prcids.to_string()),
            (2, fill("'PC'", "text", prcids)),
            (3, fill("NULL", "text", prcids)),
            (4, fill(now, "timestamp", prcids)),
            (5, fill(now, "timestamp", prcids)),
            (6, maps.to_string()),
            (7, fill("1", "bigint", prcids)),
            (8, fill("0", "bigint", prcids)),
            (9, fill("0", "bigint", prcids)),
            (10, fill("0", "bigint", prcids)),
            (11, prcids.to_string()),
            (12, fill(NODE, "text", prcids)),
            (13, now.to_string()),
        ],
    );
    let complete = substitute(
        complete,
        &[
            (1, ids.to_string()),
            (2, fill("'DONE'", "text", ids)),
            (3, fill("'{}'", "text", ids)),
            (4, fill(now, "timestamp", ids)),
            (5, fill(NODE, "text", ids)),
        ],
    );
    let flows = dwsched_store::postgres_flows_to_run_statement(&format!("= ANY({maps})"));
    let line = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    format!(
        "WITH c AS ({}) SELECT string_agg(REQUEST_ID, ',') AS ids, string_agg(MAPREF, ',') AS maps FROM c \\gset\n\
         {};\n\
         BEGIN;\n{} \\gset\nCOMMIT;\n\
         BEGIN;\n{};\n{};\nCOMMIT;\n",
        line(&claim),
        line(&flows),
        line(&open),
        line(&finish),
        line(&complete)
    )
}

/// pgbench's best jobs per second over `CEILING_CLIENTS` with the script of `batch`
/// jobs, each for `seconds`, on a queue deep enough not to run dry. Several clients
/// stand for several nodes: each claims on its own, as nodes do (a node has one
/// claimer and a few journal writers), so past a few clients they mostly contend.
async fn pgbench_ceiling(bench: &Bench, batch: usize, seconds: u32) -> (f64, usize) {
    let (pool, url) = dwsched_database(bench).await;
    queue_dwsched_requests(&pool, 400_000).await;
    // A node claims only while it has its row, as a live node does.
    for client in 0..CEILING_CLIENTS.iter().max().copied().unwrap_or(1) {
        sqlx::query("INSERT INTO dms_schnode (node_id, heartbeat_at) VALUES ($1, now()) ON CONFLICT DO NOTHING")
            .bind(format!("pgbench{client}"))
            .execute(&pool)
            .await
            .expect("register the pgbench nodes");
    }
    sqlx::raw_sql("VACUUM ANALYZE dms_prcreq")
        .execute(&pool)
        .await
        .expect("analyze");
    let script = std::env::temp_dir().join(format!("dwsched-bench-pgbench-{batch}.sql"));
    std::fs::write(&script, pgbench_script(batch)).expect("write the pgbench script");
    let mut best = (0.0, 0);
    for clients in CEILING_CLIENTS {
        let output = Command::new("pgbench")
            .args([
                "-n",
                "-M",
                "prepared",
                "-c",
                &clients.to_string(),
                "-j",
                "2",
            ])
            .args([
                "-T",
                &seconds.to_string(),
                "-f",
                script.to_str().unwrap(),
                &url,
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("run pgbench");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "pgbench failed:\n{text}");
        let tps: f64 = text
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no tps in pgbench's output:\n{text}"));
        let jobs = tps * batch as f64;
        println!("    pgbench, {batch} jobs per claim, {clients} clients: {jobs:.0} jobs/s");
        if jobs > best.0 {
            best = (jobs, clients);
        }
    }
    let (done, open): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM dms_prcreq WHERE status = 'DONE'), \
         (SELECT count(*) FROM dms_prclog WHERE status = 'IP')",
    )
    .fetch_one(&pool)
    .await
    .expect("count done");
    assert!(
        done > 0 && open == 0,
        "pgbench's jobs did not complete ({done} done, {open} left IP)"
    );
    pool.close().await;
    best
}

/// Runs the load benchmark (its own rounds, interleaved) and returns its table.
fn load_figure() -> String {
    let binary = std::env::var("DWSCHED_LOAD_BENCH_BIN")
        .unwrap_or_else(|_| "target/release/load-bench".into());
    let output = Command::new(binary)
        .stderr(Stdio::inherit())
        .output()
        .expect("run load-bench");
    assert!(output.status.success(), "load-bench failed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .skip_while(|l| !l.starts_with("variant"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn throughput_setting(nodes: usize, workers: usize) -> String {
    format!(
        "{nodes} node{} × {workers} workers",
        if nodes > 1 { "s" } else { "" }
    )
}

async fn run_throughput(bench: &mut Bench) {
    println!("\n1. throughput: drain {DRAIN} no-op jobs");
    let all = [
        System::Dwsched,
        System::Pgqueuer,
        System::GraphileBatched,
        System::Graphile,
        System::Procrastinate,
    ];
    for round in 0..bench.rounds {
        for nodes in [1, 2] {
            for workers in [4, 16, 64] {
                for system in all {
                    // procrastinate (about 400 jobs/s) and graphile-worker's defaults
                    // are measured at the reference setting only, to keep the whole
                    // run under 30 minutes.
                    if !bench.wants(system)
                        || (matches!(system, System::Procrastinate | System::Graphile)
                            && workers != WORKERS)
                    {
                        continue;
                    }
                    let rate = throughput(bench, system, nodes, workers).await;
                    let setting = throughput_setting(nodes, workers);
                    bench
                        .results
                        .add("throughput", &setting, system, rate, "jobs/s", true);
                }
            }
        }
        println!("  (round {} of {} done)", round + 1, bench.rounds);
    }
}

async fn run_latency(bench: &mut Bench) {
    println!("\n2. latency: enqueue by another process -> start, 1 node × {WORKERS} workers");
    let all = [
        System::Dwsched,
        System::Pgqueuer,
        System::GraphileBatched,
        System::Procrastinate,
    ];
    for _ in 0..bench.rounds {
        for (rate, seconds) in PACES {
            for system in all {
                if !bench.wants(system) {
                    continue;
                }
                let mut delays = latency(bench, system, rate, seconds).await;
                delays.sort_by(f64::total_cmp);
                let expected = (rate * seconds) as usize;
                if delays.len() < expected {
                    bench.results.notes.push(format!(
                        "{} at {rate}/s: {} of {expected} jobs started within the wait",
                        system.name(),
                        delays.len()
                    ));
                }
                let setting = format!("{rate} requests/s");
                for (figure, p) in [
                    ("latency p50", 50.0),
                    ("latency p95", 95.0),
                    ("latency p99", 99.0),
                ] {
                    bench.results.add(
                        figure,
                        &setting,
                        system,
                        percentile(&delays, p),
                        "ms",
                        false,
                    );
                }
            }
        }
    }
}

async fn run_firing(bench: &mut Bench) {
    println!("\n3-4. firing {SCHEDULES} schedules in one minute; idle footprint before it");
    for round in 0..bench.rounds {
        let (dwsched, apscheduler) = firing_round(bench, round % 2 == 0).await;
        for (system, mut firing) in [
            (System::Dwsched, dwsched),
            (System::Apscheduler, apscheduler),
        ] {
            firing.lateness_ms.sort_by(f64::total_cmp);
            let setting = format!("{SCHEDULES} schedules");
            let results = &mut bench.results;
            results.add(
                "fires dropped",
                &setting,
                system,
                firing.dropped as f64,
                "slots",
                false,
            );
            results.add(
                "fire lateness p50",
                &setting,
                system,
                percentile(&firing.lateness_ms, 50.0),
                "ms",
                false,
            );
            results.add(
                "fire lateness p99",
                &setting,
                system,
                percentile(&firing.lateness_ms, 99.0),
                "ms",
                false,
            );
            results.add(
                "idle CPU",
                &setting,
                system,
                firing.idle_cpu_percent,
                "% of a core",
                false,
            );
            results.add(
                "idle RSS",
                &setting,
                system,
                firing.idle_rss_mib,
                "MiB",
                false,
            );
        }
    }
}

async fn run_ceiling(bench: &mut Bench) {
    println!("\n5. the machine's ceiling: pgbench with dwsched's statements");
    for _ in 0..bench.rounds {
        for batch in [WORKERS, 64] {
            let (rate, clients) = pgbench_ceiling(bench, batch, 10).await;
            let note =
                format!("pgbench ceiling with {batch} jobs per claim: best with {clients} clients");
            if !bench.results.notes.contains(&note) {
                bench.results.notes.push(note);
            }
            let setting = ceiling_setting(batch);
            bench.results.add(
                "pgbench ceiling",
                &setting,
                System::Dwsched,
                rate,
                "jobs/s",
                true,
            );
        }
    }
}

fn ceiling_setting(batch: usize) -> String {
    format!("{batch} jobs per claim and transaction, best of 1, 2, 4 clients")
}

/// The median and min–max of `values`, formatted.
fn spread(values: &[f64]) -> (f64, String) {
    let mut sorted = values.to_vec();
    let mid = median(&mut sorted);
    let digits = if mid.abs() >= 100.0 { 0 } else { 1 };
    (
        mid,
        format!(
            "{mid:.digits$} ({:.digits$}–{:.digits$})",
            sorted[0],
            sorted[sorted.len() - 1]
        ),
    )
}

fn report(bench: &Bench, header: &str, postgres: &str, load: &str, started: Instant) -> String {
    let results = &bench.results;
    let mut out = String::new();
    let _ = writeln!(out, "# dwsched benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `bench/run-all.sh` (`bench/src/bin/compare.rs`); do not edit by hand: \
         the analysis lives in `bench/next-steps.md` and is appended below.\n"
    );
    let peers = std::fs::read_to_string(bench.peers.join("versions.txt")).unwrap_or_default();
    let _ = writeln!(
        out,
        "```\n{header}\n{postgres}\npeers: {}\nrounds: {} (systems interleaved A B A B)\nwall time of the workloads: {:.1} min\n```\n",
        peers.trim().replace('\n', ", "),
        bench.rounds,
        started.elapsed().as_secs_f64() / 60.0
    );
    let _ = writeln!(
        out,
        "Each cell is the median of the rounds with their min–max. The ratio is the \
         system's median divided by dwsched's: above 1 is more throughput, or more \
         milliseconds, than dwsched.\n"
    );
    let mut figure_order: Vec<&String> = results.units.keys().collect();
    let order = [
        "throughput",
        "latency p50",
        "latency p95",
        "latency p99",
        "fires dropped",
        "fire lateness p50",
        "fire lateness p99",
        "idle CPU",
        "idle RSS",
        "pgbench ceiling",
    ];
    figure_order.sort_by_key(|f| order.iter().position(|o| o == f).unwrap_or(99));
    let mut behind = Vec::new();
    for figure in figure_order {
        let (unit, higher_is_better) = results.units[figure];
        let _ = writeln!(out, "## {figure} ({unit})\n");
        let _ = writeln!(
            out,
            "| setting | system | median (min–max) | ratio to dwsched |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for setting in &results.settings {
            let Some(systems) = results.figures.get(&(figure.clone(), setting.clone())) else {
                continue;
            };
            let reference = systems.get(&System::Dwsched).map(|v| spread(v).0);
            for (system, values) in systems {
                let (mid, text) = spread(values);
                let ratio = match reference {
                    Some(r) if *system != System::Dwsched && r.abs() > f64::EPSILON => {
                        format!("{:.2}", mid / r)
                    }
                    _ => "—".into(),
                };
                let _ = writeln!(out, "| {setting} | {} | {text} | {ratio} |", system.name());
                if let Some(r) = reference
                    && *system != System::Dwsched
                    && figure != "pgbench ceiling"
                    && ((higher_is_better && mid > r) || (!higher_is_better && mid < r))
                {
                    behind.push(format!(
                        "- {figure}, {setting}: {} {text} {unit} against dwsched's {r:.1}",
                        system.name()
                    ));
                }
            }
        }
        let _ = writeln!(out);
    }
    // dwsched's throughput as a fraction of the ceiling at its own batch size: a node
    // claims up to its number of workers at once.
    let median_of = |figure: &str, setting: &str| {
        results
            .figures
            .get(&(figure.to_string(), setting.to_string()))
            .and_then(|s| s.get(&System::Dwsched))
            .map(|v| spread(v).0)
    };
    for workers in [WORKERS, 64] {
        let setting = ceiling_setting(workers);
        if let (Some(ceiling), Some(ours)) = (
            median_of("pgbench ceiling", &setting),
            median_of("throughput", &throughput_setting(1, workers)),
        ) {
            let _ = writeln!(
                out,
                "dwsched, 1 node × {workers} workers, drains {ours:.0} jobs/s: **{:.0} %** of the \
                 ceiling pgbench reaches with the same statements ({setting}: {ceiling:.0} jobs/s).\n",
                100.0 * ours / ceiling
            );
        }
    }
    let _ = writeln!(
        out,
        "## load: 1,000,000 rows × 10 columns PostgreSQL → PostgreSQL\n\n```\n{load}\n```\n"
    );
    let _ = writeln!(out, "## Where dwsched is behind\n");
    if behind.is_empty() {
        let _ = writeln!(out, "Nowhere in this run.\n");
    } else {
        let _ = writeln!(out, "{}\n", behind.join("\n"));
    }
    if !results.notes.is_empty() {
        let _ = writeln!(
            out,
            "## Notes of this run\n\n- {}\n",
            results.notes.join("\n- ")
        );
    }
    let analysis = Path::new(env!("CARGO_MANIFEST_DIR")).join("next-steps.md");
    if let Ok(text) = std::fs::read_to_string(analysis) {
        out.push_str(&text);
    }
    out
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let peers = PathBuf::from(args.next().expect("usage: compare PEERS_DIR RESULTS_FILE"));
    let results_file = PathBuf::from(args.next().expect("usage: compare PEERS_DIR RESULTS_FILE"));
    let only: Option<String> = args.next();
    let server = std::env::var("DWSCHED_BENCH_POSTGRES_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL");
    let postgres: String = sqlx::query_scalar("SELECT 'PostgreSQL ' || current_setting('server_version') || ', fsync ' || current_setting('fsync') || ', synchronous_commit ' || current_setting('synchronous_commit')")
        .fetch_one(&admin)
        .await
        .expect("server version");
    let rounds = std::env::var("DWSCHED_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let mut bench = Bench {
        server,
        admin,
        peers,
        rounds,
        systems: std::env::var("DWSCHED_BENCH_SYSTEMS")
            .ok()
            .map(|v| v.split(',').map(str::to_string).collect()),
        results: Results::default(),
    };
    let started = Instant::now();
    let header = machine_report();
    println!("{header}\n{postgres}");
    let wants = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wants("throughput") {
        run_throughput(&mut bench).await;
    }
    if wants("latency") {
        run_latency(&mut bench).await;
    }
    if wants("firing") {
        run_firing(&mut bench).await;
    }
    if wants("ceiling") {
        run_ceiling(&mut bench).await;
    }
    let load = if wants("load") {
        println!("\n6. load");
        load_figure()
    } else {
        "(not run)".into()
    };
    for database in [
        System::Dwsched,
        System::Pgqueuer,
        System::Procrastinate,
        System::Graphile,
    ] {
        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            database.database()
        )))
        .execute(&bench.admin)
        .await;
    }
    let text = report(&bench, &header, &postgres, &load, started);
    std::fs::write(&results_file, &text).expect("write the results");
    println!("\nwrote {}", results_file.display());
}
