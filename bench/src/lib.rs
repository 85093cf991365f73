//! Shared parts of the benchmarks: the machine they ran on, the nodes they start, and
//! the SQL they run on the side.

use std::process::Command;

/// One line per fact about this machine and build, printed before the figures.
pub fn machine_report() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0)
        });
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".into(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        });
    let profile = if cfg!(debug_assertions) {
        "debug (figures are not representative)"
    } else {
        "release"
    };
    format!(
        "machine: {cores} cores, {cpu}, {memory} memory\ndate: {}\ncommit: {commit}\nbuild: {profile}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    )
}

/// The median of some measurements (the mean of the middle two of an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// The value at percentile `p` (0–100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// CPU seconds used so far and resident memory in MiB of process `pid`, from `/proc`.
pub fn proc_stat(pid: u32) -> (f64, f64) {
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
    // utime and stime are fields 14 and 15 of the line; 11 and 12 after the name.
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

/// A child process that is killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `dwsched` binary the benchmarks run (`DWSCHED_BIN`, default the release build).
pub fn dwsched_bin() -> String {
    std::env::var("DWSCHED_BIN").unwrap_or_else(|_| "target/release/dwsched".into())
}

/// Runs a `dwsched` command against `schema` and panics when it fails.
pub fn dwsched_cli(url: &str, schema: &str, args: &[&str]) {
    let status = Command::new(dwsched_bin())
        .args(args)
        .args(["--database-url", url, "--schema", schema])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run dwsched");
    assert!(status.success(), "dwsched {args:?} failed");
}

/// Starts `dwsched run` as node `node_id` with `workers` workers; `env` adds settings.
/// Its log (warnings and errors) goes to a file in the temporary directory.
pub fn start_dwsched(
    url: &str,
    schema: &str,
    node_id: &str,
    workers: usize,
    env: &[(&str, &str)],
) -> Process {
    let log = std::env::temp_dir().join(format!("dwsched-bench-{node_id}.log"));
    let child = Command::new(dwsched_bin())
        .args(["run", "--database-url", url, "--schema", schema])
        .args(["--node-id", node_id, "--max-workers", &workers.to_string()])
        .env("RUST_LOG", "warn")
        .env(
            "DWSCHED_LOG_DIR",
            std::env::temp_dir().join("dwsched-bench-logs"),
        )
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("start dwsched run");
    Process(child)
}

/// Waits for `DMS_PRCREQ` request `id` to end `DONE` (panics, with its result, when it
/// ends `FAILED` or takes longer than `within`), then gives its run's own duration
/// (`DMS_PRCLOG` `ENDDT - STRTDT`, seconds) and its `RESULT_PAYLOAD`.
pub async fn wait_for_run(
    conn: &mut sqlx::PgConnection,
    id: &str,
    within: std::time::Duration,
) -> (f64, serde_json::Value) {
    use sqlx::AssertSqlSafe;
    let started = std::time::Instant::now();
    let result = loop {
        let (status, result): (Option<String>, Option<String>) = sqlx::query_as(AssertSqlSafe(
            format!("SELECT status, result_payload FROM dms_prcreq WHERE request_id = '{id}'"),
        ))
        .fetch_one(&mut *conn)
        .await
        .expect("reading the request");
        match status.as_deref() {
            Some("DONE") => break result.unwrap_or_default(),
            Some("FAILED") => panic!("request {id} failed: {}", result.unwrap_or_default()),
            _ => {}
        }
        assert!(started.elapsed() < within, "request {id} timed out");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let seconds: f64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT CAST(EXTRACT(EPOCH FROM (enddt - strtdt)) AS DOUBLE PRECISION) FROM dms_prclog \
         WHERE request_id = '{id}'"
    )))
    .fetch_one(&mut *conn)
    .await
    .expect("reading the run");
    (seconds, serde_json::from_str(&result).unwrap_or_default())
}

/// Runs `sql` (one or more statements) on the side; a failure ends the benchmark.
pub async fn exec(conn: &mut sqlx::PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The one text value `sql` selects.
pub async fn text(conn: &mut sqlx::PgConnection, sql: &str) -> String {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Process `pid`'s peak resident memory so far, in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}
