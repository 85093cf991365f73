//! End-to-end tests of `dwsched run`: real node processes against each backend, driven
//! through the CLI and the tables, killed and restarted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dwsched_model::{NewRequest, RequestStatus, RequestType, RunFilter, RunStatus};
use dwsched_store::{Store, TestSupport};

use crate::util::TestDb;

crate::per_backend!(
    an_immediate_run_completes_with_its_logs,
    a_history_runs_each_date_oldest_first,
    a_stop_ends_a_long_run_and_its_processes,
    poison_requests_fail_and_the_queue_goes_on,
    sigterm_lets_runs_finish_then_stops_the_rest,
    kill_9_and_restart_rescues_the_interrupted_run,
    a_node_rescued_while_alive_runs_the_requeued_work_once,
    schedules_fire_each_slot_once,
    a_running_node_follows_schedule_edits,
    a_load_flow_records_counts_and_rejected_rows,
    a_connection_that_cannot_be_resolved_fails_the_run_by_name,
    a_dead_leaders_schedules_move_to_another_node,
    a_dependent_schedule_runs_after_its_parent_succeeds,
    a_request_claimed_ahead_waits_for_a_worker_and_can_be_stopped,
    requests_a_node_holds_unknowingly_are_run,
    a_running_node_follows_calendar_edits,
);

/// A scratch directory with the flows and logs of one test.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("dwsched-e2e-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// Writes a flow of one command step and returns its path.
    pub fn command_flow(&self, name: &str, script: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.toml"));
        let text = format!(
            "[[steps]]\nname = \"main\"\nkind = \"command\"\nprogram = \"sh\"\nargs = [\"-c\", {}]\n",
            toml_string(script)
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A job `TICK` whose flow does nothing, scheduled every second (with `extra` flags of
/// `schedule add`); returns the new JOBSCHID.
fn tick_every_second(db: &TestDb, scratch: &Scratch, extra: &[&str]) -> String {
    let flow = scratch.command_flow("tick", "true");
    cli(
        db,
        &scratch.dir,
        &["job", "put", "TICK", "--flow", flow.to_str().unwrap()],
    );
    let mut args = vec![
        "schedule",
        "add",
        "TICK",
        "--frqcd",
        "CR",
        "--cron",
        "* * * * * *",
        "--enable",
    ];
    args.extend_from_slice(extra);
    cli(db, &scratch.dir, &args)
}

/// Runs a CLI command against the test database; returns stdout.
pub fn cli(db: &TestDb, dir: &Path, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dwsched"));
    command
        .args(args)
        .arg("--database-url")
        .arg(&db.url)
        .current_dir(dir);
    if let Some(schema) = &db.schema {
        command.arg("--schema").arg(schema);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A `dwsched run` process, killed when dropped.
pub struct NodeProcess {
    pub child: Child,
    pub node_id: String,
    pub log: PathBuf,
}

impl NodeProcess {
    pub fn start(db: &TestDb, dir: &Path, node_id: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::start_on(&db.url, db.schema.as_deref(), dir, node_id, extra_env)
    }

    /// A node on the database at `url` (in `schema`).
    pub fn start_on(
        url: &str,
        schema: Option<&str>,
        dir: &Path,
        node_id: &str,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let log = dir.join(format!("{node_id}-{}.log", uuid::Uuid::new_v4().simple()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_dwsched"));
        command
            .args(["run", "--node-id", node_id, "--database-url", url])
            .current_dir(dir)
            .env("SCHEDULER_POLL_INTERVAL", "1")
            .env("SCHEDULER_LEASE_SECONDS", "3")
            .env("DWSCHED_LOG_DIR", dir.join("logs"))
            .env("RUST_LOG", "info")
            .env_remove("DWSCHED_HTTP_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        if let Some(schema) = schema {
            command.arg("--schema").arg(schema);
        }
        let child = command.spawn().expect("start dwsched run");
        Self {
            child,
            node_id: node_id.to_string(),
            log,
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "node {} did not exit within {within:?}:\n{}",
            self.node_id,
            self.output()
        );
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- log of node {} ---\n{}", self.node_id, self.output());
        }
    }
}

/// Polls `check` until it gives a value, or fails after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn request_status(store: &dyn Store, id: &str) -> Option<RequestStatus> {
    store.get_request(id).await.unwrap().and_then(|r| r.status)
}

pub async fn wait_request(
    store: &dyn Store,
    id: &str,
    status: RequestStatus,
    within: Duration,
) -> dwsched_model::Request {
    eventually(within, &format!("request {id} to be {status}"), || async {
        store
            .get_request(id)
            .await
            .unwrap()
            .filter(|r| r.status == Some(status))
    })
    .await
}

pub async fn runs_of(store: &dyn Store, mapref: &str) -> Vec<dwsched_model::Run> {
    let mut runs = store
        .list_runs(&RunFilter {
            mapref: Some(mapref.into()),
            limit: 1000,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    runs.reverse();
    runs
}

pub async fn wait_run_status(
    store: &dyn Store,
    mapref: &str,
    status: RunStatus,
    within: Duration,
) -> dwsched_model::Run {
    eventually(
        within,
        &format!("a run of {mapref} to be {status}"),
        || async {
            runs_of(store, mapref)
                .await
                .into_iter()
                .find(|r| r.status == Some(status))
        },
    )
    .await
}

/// Processes whose command line contains `marker`, other than test tooling.
fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker) && !c.contains("cargo"))
        .count()
}

const LONG: Duration = Duration::from_secs(20);

async fn an_immediate_run_completes_with_its_logs(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let flow = scratch.command_flow(
        "hello",
        "echo hello from $DWSCHED_MAPREF for $DWSCHED_RUN_DATE p1=$DWSCHED_PARAM1",
    );
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "HELLO", "--flow", flow.to_str().unwrap()],
    );
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let id = cli(
        &db,
        &scratch.dir,
        &[
            "enqueue",
            "HELLO",
            "--param1",
            "EU",
            "--run-date",
            "2026-03-01",
        ],
    );

    let request = wait_request(&*store, &id, RequestStatus::Done, LONG).await;
    let result: serde_json::Value =
        serde_json::from_str(request.result_payload.as_deref().unwrap()).unwrap();
    assert_eq!(result["status"], "DONE");
    assert_eq!(result["runs"][0]["status"], "PC");
    assert_eq!(result["runs"][0]["run_date"], "2026-03-01");
    let prcid = result["runs"][0]["prcid"].as_i64().unwrap();

    let run = store.get_run(prcid).await.unwrap().unwrap();
    assert_eq!(run.status, Some(RunStatus::Completed));
    assert_eq!(run.request_id.as_deref(), Some(id.as_str()));
    assert_eq!(run.node.as_deref(), Some("n1"));
    assert_eq!(run.params[0].as_deref(), Some("EU"));
    assert_eq!(run.prclog.as_deref(), Some("param1=EU"));
    assert!(run.ended_at.is_some());
    let totals = store
        .job_log_for_run(prcid)
        .await
        .unwrap()
        .expect("a DMS_JOBLOG row per run");
    assert_eq!(totals.mapref, "HELLO");
    let output =
        std::fs::read_to_string(scratch.dir.join("logs/HELLO").join(format!("{prcid}.log")))
            .unwrap();
    assert!(
        output.contains("hello from HELLO for 2026-03-01 p1=EU"),
        "{output}"
    );
}

/// With every worker busy, a node holds the next requests claimed ahead: they start
/// as soon as a worker is free, and a STOP for one of them ends it before its run.
async fn a_request_claimed_ahead_waits_for_a_worker_and_can_be_stopped(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let slow = scratch.command_flow("slow", "sleep 3");
    let quick = scratch.command_flow("quick", "true");
    for (job, flow) in [("SLOW", &slow), ("NEXT", &quick), ("DOOMED", &quick)] {
        cli(
            &db,
            &scratch.dir,
            &["job", "put", job, "--flow", flow.to_str().unwrap()],
        );
    }
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[("SCHEDULER_MAX_WORKERS", "1")]);
    let slow_id = cli(&db, &scratch.dir, &["enqueue", "SLOW"]);
    wait_run_status(&*store, "SLOW", RunStatus::InProgress, LONG).await;
    let doomed = cli(&db, &scratch.dir, &["enqueue", "DOOMED"]);
    // Claimed by the node while its only worker is busy.
    eventually(LONG, "DOOMED claimed ahead", || async {
        (request_status(&*store, &doomed).await == Some(RequestStatus::Processing)).then_some(())
    })
    .await;
    assert!(
        runs_of(&*store, "DOOMED").await.is_empty(),
        "no run before a worker is free"
    );
    let stop = cli(&db, &scratch.dir, &["stop", "DOOMED"]);
    let answer = wait_request(&*store, &stop, RequestStatus::Done, LONG).await;
    assert!(
        answer
            .result_payload
            .unwrap()
            .contains("before its run starts"),
        "the STOP is answered at once"
    );
    let next = cli(&db, &scratch.dir, &["enqueue", "NEXT"]);
    let failed = wait_request(&*store, &doomed, RequestStatus::Failed, LONG).await;
    assert!(
        failed
            .result_payload
            .unwrap()
            .contains("before its run started"),
        "the stopped request ends without a run"
    );
    assert!(runs_of(&*store, "DOOMED").await.is_empty());
    wait_request(&*store, &slow_id, RequestStatus::Done, LONG).await;
    wait_request(&*store, &next, RequestStatus::Done, LONG).await;
}

/// A schedule that follows another job runs after each successful run of that job
/// (the claimer reads with the parent's flow whether anything follows it), with the
/// parent's run date; a job nothing follows queues nothing.
async fn a_dependent_schedule_runs_after_its_parent_succeeds(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    for (job, script) in [
        ("PARENT", "true"),
        ("CHILD", "echo child"),
        ("LONER", "true"),
    ] {
        let flow = scratch.command_flow(&job.to_lowercase(), script);
        cli(
            &db,
            &scratch.dir,
            &["job", "put", job, "--flow", flow.to_str().unwrap()],
        );
    }
    // The parent's own schedule fires once a year; the child follows it.
    let parent = cli(
        &db,
        &scratch.dir,
        &[
            "schedule",
            "add",
            "PARENT",
            "--frqcd",
            "CR",
            "--cron",
            "0 0 1 1 *",
            "--enable",
        ],
    );
    cli(
        &db,
        &scratch.dir,
        &[
            "schedule",
            "add",
            "CHILD",
            "--frqcd",
            "CR",
            "--cron",
            "0 0 1 1 *",
            "--after",
            parent.trim(),
            "--enable",
        ],
    );
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let loner = cli(&db, &scratch.dir, &["enqueue", "LONER"]);
    let id = cli(
        &db,
        &scratch.dir,
        &["enqueue", "PARENT", "--run-date", "2026-03-01"],
    );
    wait_request(&*store, &id, RequestStatus::Done, LONG).await;
    wait_request(&*store, &loner, RequestStatus::Done, LONG).await;
    let child = eventually(LONG, "the child's run", || async {
        let runs = runs_of(&*store, "CHILD").await;
        runs.into_iter()
            .find(|r| r.status == Some(RunStatus::Completed))
    })
    .await;
    let request = store
        .get_request(child.request_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    let payload: serde_json::Value =
        serde_json::from_str(request.payload.as_deref().unwrap()).unwrap();
    assert_eq!(payload["run_date"], "2026-03-01", "{payload}");
    let waiting = store.list_requests(None, 100).await.unwrap();
    assert_eq!(
        waiting.len(),
        3,
        "the parent's run queued one request, the loner's none: {waiting:?}"
    );
}

/// A flow of `sql`, `load` and `command` steps over two SQLite databases, run by a node
/// on each metadata backend: the counts reach `DMS_JOBLOG`, the rejected row
/// `DMS_JOBERR`, and the statements see the run's binds.
async fn a_load_flow_records_counts_and_rejected_rows(db: TestDb) {
    use sqlx::Connection as _;
    let scratch = Scratch::new();
    let store = db.open().await;
    let shop = scratch.dir.join("shop.db");
    let warehouse = scratch.dir.join("dw.db");
    for (file, statements) in [
        (
            &shop,
            vec![
                "CREATE TABLE sales (id INTEGER, sold_on TEXT, amount TEXT)",
                "INSERT INTO sales VALUES (1, '2026-03-01', '10.50'), (2, '2026-03-01', '7.25'), \
                 (3, '2026-03-01', 'n/a'), (4, '2026-03-01', '1.00'), (5, '2026-03-01', '2.00'), \
                 (6, '2026-02-28', '99.00')",
            ],
        ),
        (
            &warehouse,
            vec![
                "CREATE TABLE fct_sales (id INTEGER PRIMARY KEY, sold_on TEXT, amount REAL) STRICT",
                "CREATE TABLE load_audit (run_date TEXT, prcid INTEGER, mapref TEXT)",
                "INSERT INTO fct_sales VALUES (1, '2026-03-01', 0.0)",
            ],
        ),
    ] {
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    for (name, file) in [("shop", &shop), ("warehouse", &warehouse)] {
        let url = format!("sqlite://{}", file.display());
        cli(&db, &scratch.dir, &["conn", "put", name, "--url", &url]);
    }
    let flow = scratch.dir.join("daily.toml");
    std::fs::write(
        &flow,
        r#"
        [[steps]]
        name = "audit"
        kind = "sql"
        connection = "warehouse"
        sql = "INSERT INTO load_audit VALUES (:run_date, :prcid, :mapref)"

        [[steps]]
        name = "facts"
        kind = "load"
        source = { connection = "shop", query = "SELECT id, sold_on, amount FROM sales WHERE sold_on = :run_date" }
        target = { connection = "warehouse", table = "fct_sales", mode = "upsert", key = ["id"] }
        max_errors = 3

        [[steps]]
        name = "publish"
        kind = "command"
        program = "sh"
        args = ["-c", "echo published $DWSCHED_RUN_DATE"]
        "#,
    )
    .unwrap();
    cli(
        &db,
        &scratch.dir,
        &[
            "job",
            "put",
            "DAILY_SALES",
            "--flow",
            flow.to_str().unwrap(),
        ],
    );
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let id = cli(
        &db,
        &scratch.dir,
        &["enqueue", "DAILY_SALES", "--run-date", "2026-03-01"],
    );
    let request = wait_request(&*store, &id, RequestStatus::Done, LONG).await;
    let result: serde_json::Value =
        serde_json::from_str(request.result_payload.as_deref().unwrap()).unwrap();
    assert_eq!(result["runs"][0]["status"], "PC", "{result}");
    let prcid = result["runs"][0]["prcid"].as_i64().unwrap();
    let totals = store.job_log_for_run(prcid).await.unwrap().unwrap();
    assert_eq!((totals.srcrows, totals.trgrows, totals.errrows), (5, 4, 1));
    let errors = store.job_errors_for_run(prcid).await.unwrap();
    let rejected: Vec<_> = errors
        .iter()
        .filter(|e| e.errtyp.as_deref() == Some("ROW"))
        .collect();
    assert_eq!(rejected.len(), 1, "{errors:?}");
    assert_eq!(rejected[0].keyvalue.as_deref(), Some("id=3"));
    assert!(
        rejected[0]
            .dberrmsg
            .as_deref()
            .is_some_and(|m| !m.is_empty())
    );

    let url = format!("sqlite://{}", warehouse.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let facts: Vec<(i64, f64)> = sqlx::query_as("SELECT id, amount FROM fct_sales ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(facts, [(1, 10.5), (2, 7.25), (4, 1.0), (5, 2.0)]);
    let audit: (String, i64, String) =
        sqlx::query_as("SELECT run_date, prcid, mapref FROM load_audit")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        audit,
        ("2026-03-01".to_string(), prcid, "DAILY_SALES".to_string())
    );
    // The run's log tells the load's story: its batches and the row it rejected.
    let log = std::fs::read_to_string(
        scratch
            .dir
            .join("logs")
            .join("DAILY_SALES")
            .join(format!("{prcid}.log")),
    )
    .unwrap();
    for part in [
        "step 'facts' (load) attempt 1 started",
        "batch 1 into fct_sales: 4 rows written, 1 rejected (4 written so far)",
        "fct_sales rejected row id=3:",
        "step 'facts' attempt 1 ended PC",
        ": 5 source rows, 4 target rows, 1 rejected",
    ] {
        assert!(log.contains(part), "{part} in:\n{log}");
    }
    // And its steps are recorded, with their counts.
    let steps = store.run_steps(prcid).await.unwrap();
    let load = steps.iter().find(|s| s.step == "facts").unwrap();
    assert_eq!(
        (load.srcrows, load.trgrows, load.errrows),
        (Some(5), Some(4), Some(1))
    );
}

/// A connection whose password variable is not set fails the run, naming the connection
/// and the variable, and the queue goes on.
async fn a_connection_that_cannot_be_resolved_fails_the_run_by_name(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    cli(
        &db,
        &scratch.dir,
        &[
            "conn",
            "put",
            "dw",
            "--url",
            "postgres://etl@127.0.0.1:9/dw",
            "--password",
            "env:DWSCHED_TEST_UNSET_PASSWORD",
        ],
    );
    let flow = scratch.dir.join("needs_dw.toml");
    std::fs::write(
        &flow,
        "[[steps]]\nname = \"s\"\nkind = \"sql\"\nconnection = \"dw\"\nsql = \"SELECT 1\"\n",
    )
    .unwrap();
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "NEEDS_DW", "--flow", flow.to_str().unwrap()],
    );
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let id = cli(&db, &scratch.dir, &["enqueue", "NEEDS_DW"]);
    wait_request(&*store, &id, RequestStatus::Failed, LONG).await;
    let run = wait_run_status(&*store, "NEEDS_DW", RunStatus::Failed, LONG).await;
    assert_eq!(
        run.msg.as_deref(),
        Some(
            "connection 'dw': its password comes from the environment variable DWSCHED_TEST_UNSET_PASSWORD, which is not set"
        )
    );
}

async fn a_history_runs_each_date_oldest_first(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let dates = scratch.dir.join("dates.txt");
    let flow = scratch.command_flow(
        "hist",
        &format!(
            "echo $DWSCHED_RUN_DATE $DWSCHED_TRUNCATE >> {}",
            dates.display()
        ),
    );
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "HIST", "--flow", flow.to_str().unwrap()],
    );
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let id = cli(
        &db,
        &scratch.dir,
        &[
            "history",
            "HIST",
            "--from",
            "2026-02-27",
            "--to",
            "2026-03-01",
            "--truncate",
        ],
    );
    let request = wait_request(&*store, &id, RequestStatus::Done, LONG).await;
    let written = std::fs::read_to_string(&dates).unwrap();
    assert_eq!(
        written, "2026-02-27 Y\n2026-02-28 N\n2026-03-01 N\n",
        "oldest first, truncate once before the first"
    );
    let runs = runs_of(&*store, "HIST").await;
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.status == Some(RunStatus::Completed)));
    let result: serde_json::Value =
        serde_json::from_str(request.result_payload.as_deref().unwrap()).unwrap();
    assert_eq!(result["runs"].as_array().unwrap().len(), 3);

    // A failing date fails the request there, and says which.
    let flow = scratch.command_flow("hist2", "test $DWSCHED_RUN_DATE != 2026-01-02");
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "HIST2", "--flow", flow.to_str().unwrap()],
    );
    let id = cli(
        &db,
        &scratch.dir,
        &[
            "history",
            "HIST2",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-05",
        ],
    );
    let request = wait_request(&*store, &id, RequestStatus::Failed, LONG).await;
    let result: serde_json::Value =
        serde_json::from_str(request.result_payload.as_deref().unwrap()).unwrap();
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("the run for 2026-01-02"),
        "{result}"
    );
    assert_eq!(
        runs_of(&*store, "HIST2").await.len(),
        2,
        "the dates after the failed one do not run"
    );

    // --wait follows the request: stdout keeps the id, stderr shows the progress, and
    // the exit status says how it ended.
    let waited = |mapref: &str, from: &str, to: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dwsched"));
        command
            .args(["history", mapref, "--from", from, "--to", to, "--wait"])
            .args(["--database-url", &db.url])
            .current_dir(&scratch.dir);
        if let Some(schema) = &db.schema {
            command.args(["--schema", schema]);
        }
        command.output().unwrap()
    };
    let out = waited("HIST2", "2026-01-01", "2026-01-03");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed"), "{stderr}");
    let out = waited("HIST", "2026-02-01", "2026-02-03");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "only the request id: {stdout}");
    let id = stdout.trim();
    let request = store.get_request(id).await.unwrap().unwrap();
    assert_eq!(request.status, Some(RequestStatus::Done));
}

async fn a_stop_ends_a_long_run_and_its_processes(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let marker = format!("{}.5", 700 + (uuid::Uuid::new_v4().as_u128() % 200));
    let flow = scratch.command_flow("long", &format!("sleep {marker} & sleep {marker}"));
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "LONG", "--flow", flow.to_str().unwrap()],
    );
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let id = cli(&db, &scratch.dir, &["enqueue", "LONG"]);
    wait_run_status(&*store, "LONG", RunStatus::InProgress, LONG).await;
    eventually(LONG, "the sleeps to start", || async {
        (processes_with(&marker) >= 2).then_some(())
    })
    .await;

    let stopped_at = Instant::now();
    let stop = cli(&db, &scratch.dir, &["stop", "LONG"]);
    let run = wait_run_status(&*store, "LONG", RunStatus::Stopped, LONG).await;
    assert!(
        stopped_at.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopped_at.elapsed()
    );
    assert_eq!(
        run.msg.as_deref(),
        Some(format!("stopped by STOP request {stop}").as_str())
    );
    wait_request(&*store, &stop, RequestStatus::Done, LONG).await;
    let request = wait_request(&*store, &id, RequestStatus::Failed, LONG).await;
    assert!(request.result_payload.unwrap().contains("ended ST"));
    assert_eq!(
        processes_with(&marker),
        0,
        "no process of the stopped run survives"
    );

    // A STOP with nothing running is answered, not left waiting.
    let idle = cli(&db, &scratch.dir, &["stop", "LONG"]);
    let answer = wait_request(&*store, &idle, RequestStatus::Done, LONG).await;
    assert!(
        answer
            .result_payload
            .unwrap()
            .contains("no run of LONG is in progress")
    );
}

async fn poison_requests_fail_and_the_queue_goes_on(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let flow = scratch.command_flow("good", "true");
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "GOOD", "--flow", flow.to_str().unwrap()],
    );
    // The original tool's shapes of bad input.
    let now = chrono::Utc::now();
    let enqueue = |mapref: &str, kind: RequestType, payload: &str| {
        let request = NewRequest::new(mapref, kind, payload.to_string());
        let store = &store;
        async move {
            store
                .enqueue(&request, now)
                .await
                .unwrap()
                .request_id()
                .to_string()
        }
    };
    let unknown_type = enqueue("GOOD", RequestType::parse("EXPORT"), "{}").await;
    let report_of_nothing = enqueue("GOOD", RequestType::Report, "{}").await;
    let bad_report = enqueue("REPORT:999", RequestType::Report, r#"{"parameters": 7}"#).await;
    let missing_report = enqueue("REPORT:999", RequestType::Report, "{}").await;
    let bad_json = enqueue("GOOD", RequestType::Immediate, "{oops").await;
    let unknown_mapref = enqueue("NOSUCHJOB", RequestType::Immediate, "{}").await;
    let bad_history = enqueue(
        "GOOD",
        RequestType::History,
        r#"{"start_date":"2026-13-01","end_date":"2026-01-01"}"#,
    )
    .await;
    let good = enqueue("GOOD", RequestType::Immediate, "{}").await;
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);

    for (id, expected) in [
        (&unknown_type, "unknown request type 'EXPORT'"),
        (&report_of_nothing, "the request names no report"),
        (&bad_report, "payload key 'parameters' has value 7"),
        (&missing_report, "Report 999 not found"),
        (&bad_json, "payload is not valid JSON"),
        (&unknown_mapref, "job 'NOSUCHJOB' does not exist"),
        (&bad_history, "start_date"),
    ] {
        let request = wait_request(&*store, id, RequestStatus::Failed, LONG).await;
        let result = request.result_payload.unwrap();
        assert!(result.contains(expected), "{id}: {result}");
    }
    wait_request(&*store, &good, RequestStatus::Done, LONG).await;
}

async fn sigterm_lets_runs_finish_then_stops_the_rest(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let flow = scratch.command_flow("short", "sleep 1");
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "SHORT", "--flow", flow.to_str().unwrap()],
    );
    let mut node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let id = cli(&db, &scratch.dir, &["enqueue", "SHORT"]);
    wait_run_status(&*store, "SHORT", RunStatus::InProgress, LONG).await;
    node.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(node.wait_exit(LONG), Some(0), "{}", node.output());
    assert_eq!(
        request_status(&*store, &id).await,
        Some(RequestStatus::Done),
        "the run finished first"
    );
    assert_eq!(
        runs_of(&*store, "SHORT").await[0].status,
        Some(RunStatus::Completed)
    );
    assert!(
        store.get_node("n1").await.unwrap().is_none(),
        "the node row is released"
    );
    let log = node.output();
    assert!(log.contains("Starting scheduler service"), "{log}");
    assert!(log.contains("Synchronising job schedules..."), "{log}");

    // Past the shutdown timeout the run is stopped and its request goes back to NEW.
    let flow = scratch.command_flow("long", "sleep 600");
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "LONG", "--flow", flow.to_str().unwrap()],
    );
    let mut node = NodeProcess::start(
        &db,
        &scratch.dir,
        "n1",
        &[("SCHEDULER_SHUTDOWN_TIMEOUT", "1")],
    );
    let id = cli(&db, &scratch.dir, &["enqueue", "LONG"]);
    wait_run_status(&*store, "LONG", RunStatus::InProgress, LONG).await;
    node.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(node.wait_exit(LONG), Some(0), "{}", node.output());
    let run = runs_of(&*store, "LONG").await.remove(0);
    assert_eq!(run.status, Some(RunStatus::Stopped));
    assert!(run.msg.unwrap().contains("shutting down"));
    let request = store.get_request(&id).await.unwrap().unwrap();
    assert_eq!(
        (request.status, request.claimed_by),
        (Some(RequestStatus::New), None)
    );
}

async fn kill_9_and_restart_rescues_the_interrupted_run(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let flag = scratch.dir.join("second-attempt");
    let marker = format!("orphan-{}", uuid::Uuid::new_v4().simple());
    // The first attempt hangs, with a double-forked grandchild in a session of its own;
    // the second attempt finishes.
    let flow = scratch.command_flow(
        "resume",
        &format!(
            "if [ -e {0} ]; then exit 0; fi; touch {0}; \
             (setsid sh -c 'sleep 600; :' {marker}-grandchild &); \
             sh -c 'sleep 600; :' {marker}-child",
            flag.display()
        ),
    );
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "RESUME", "--flow", flow.to_str().unwrap()],
    );
    let mut node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let id = cli(&db, &scratch.dir, &["enqueue", "RESUME"]);
    let first = wait_run_status(&*store, "RESUME", RunStatus::InProgress, LONG).await;
    // The child's and grandchild's command lines (no quotes, unlike the script's).
    let running = format!("sleep 600; : {marker}");
    eventually(LONG, "the command and its grandchild", || async {
        (processes_with(&running) == 2).then_some(())
    })
    .await;
    node.signal(nix::sys::signal::Signal::SIGKILL);
    node.wait_exit(LONG);
    // No process of the command outlives its node, whether or not the node restarts.
    let killed = Instant::now();
    eventually(
        Duration::from_secs(2),
        "the command's processes to end",
        || async { (processes_with(&running) == 0).then_some(()) },
    )
    .await;
    eprintln!(
        "the command's processes were gone {:?} after the node",
        killed.elapsed()
    );

    let _restarted = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let request = wait_request(&*store, &id, RequestStatus::Done, LONG).await;
    assert_eq!(request.attempts, 2);
    let first = store.get_run(first.prcid).await.unwrap().unwrap();
    assert_eq!(first.status, Some(RunStatus::Failed));
    assert!(
        first.msg.as_deref().unwrap().contains("node n1 restarted"),
        "{:?}",
        first.msg
    );
    let runs = runs_of(&*store, "RESUME").await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].status, Some(RunStatus::Completed));
    assert!(
        runs.iter().all(|r| r.status != Some(RunStatus::InProgress)),
        "nothing stays IP"
    );
}

/// Other nodes judged this one dead (a long pause, a partition) and rescued its work
/// while its command still ran. The node must neither claim the requeued request again
/// while that command lives, nor end the request with the run it stopped.
async fn a_node_rescued_while_alive_runs_the_requeued_work_once(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let (flag, pid, overlap) = (
        scratch.dir.join("second-attempt"),
        scratch.dir.join("first-pid"),
        scratch.dir.join("overlap"),
    );
    // The second attempt records whether the first one's shell is still alive.
    let flow = scratch.command_flow(
        "rescued",
        &format!(
            "if [ -e {flag} ]; then kill -0 $(cat {pid}) 2>/dev/null && touch {overlap}; exit 0; fi; \
             touch {flag}; echo $$ > {pid}; sleep 60",
            flag = flag.display(),
            pid = pid.display(),
            overlap = overlap.display()
        ),
    );
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "RESCUED", "--flow", flow.to_str().unwrap()],
    );
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let id = cli(&db, &scratch.dir, &["enqueue", "RESCUED"]);
    let first = wait_run_status(&*store, "RESCUED", RunStatus::InProgress, LONG).await;
    eventually(LONG, "the first attempt's pid", || async {
        pid.exists().then_some(())
    })
    .await;
    let report = store
        .rescue_node("n1", "rescued by the test", None, 3)
        .await
        .unwrap();
    assert_eq!(report.requests_requeued, std::slice::from_ref(&id));

    let request = wait_request(&*store, &id, RequestStatus::Done, LONG).await;
    assert_eq!(request.attempts, 2, "{request:?}");
    assert!(!overlap.exists(), "the second attempt ran beside the first");
    let runs = runs_of(&*store, "RESCUED").await;
    let statuses: Vec<_> = runs.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(RunStatus::Failed), Some(RunStatus::Completed)],
        "{runs:?}"
    );
    assert_eq!(runs[0].prcid, first.prcid);
    assert_eq!(runs[0].msg.as_deref(), Some("rescued by the test"));
    assert!(
        store.get_node("n1").await.unwrap().is_some(),
        "the node registered again"
    );
}

/// A claim whose answer is lost (the connection drops at its commit) leaves requests
/// `PROCESSING` under a live node that does not know it holds them. The node finds
/// them and runs or answers them, instead of keeping them, and their job, stuck
/// forever. The test makes such claims itself, under the node's id, for requests the
/// node's own claims do not take yet (`NOT_BEFORE` an hour ahead).
async fn requests_a_node_holds_unknowingly_are_run(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let flow = scratch.command_flow("held", "echo held");
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "HELD", "--flow", flow.to_str().unwrap()],
    );
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    eventually(LONG, "node n1 registered", || async {
        store.get_node("n1").await.unwrap().map(|_| ())
    })
    .await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let mut ids = Vec::new();
    for (mapref, kind) in [
        ("HELD", RequestType::Immediate),
        ("*", RequestType::RefreshSchedule),
    ] {
        let request = NewRequest {
            not_before: Some(later),
            ..NewRequest::new(mapref, kind, "{}".into())
        };
        let queued = store.enqueue(&request, chrono::Utc::now()).await.unwrap();
        ids.push(queued.request_id().to_string());
    }
    for class in [
        dwsched_model::RequestClass::Runs,
        dwsched_model::RequestClass::Control,
    ] {
        let claimed = store
            .claim_requests(&dwsched_model::Claim {
                node: "n1".into(),
                class,
                limit: 10,
                now: later + chrono::Duration::minutes(1),
                lease: Duration::from_secs(30),
            })
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "{class:?}: {claimed:?}");
    }
    // As a claim long ago would have left them (a node takes up only claims older than
    // a lease, whose answer cannot be on its way still).
    db.exec_raw(&[&format!(
        "UPDATE DMS_PRCREQ SET CLAIMED_AT = '2026-01-01 00:00:00' WHERE REQUEST_ID IN ('{}', '{}')",
        ids[0], ids[1]
    )])
    .await;
    for id in &ids {
        let request = wait_request(&*store, id, RequestStatus::Done, LONG).await;
        assert_eq!(request.claimed_by.as_deref(), Some("n1"), "{request:?}");
    }
    let runs = runs_of(&*store, "HELD").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, Some(RunStatus::Completed));
    assert_eq!(runs[0].request_id.as_deref(), Some(ids[0].as_str()));
}

async fn schedules_fire_each_slot_once(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let id = tick_every_second(&db, &scratch, &[]);
    // Two nodes share the database: each slot still runs once.
    let _a = NodeProcess::start(&db, &scratch.dir, "a", &[]);
    let _b = NodeProcess::start(&db, &scratch.dir, "b", &[]);
    eventually(LONG, "three scheduled runs", || async {
        let done = runs_of(&*store, "TICK")
            .await
            .iter()
            .filter(|r| r.status == Some(RunStatus::Completed))
            .count();
        (done >= 3).then_some(())
    })
    .await;
    let requests = store.list_requests(None, 1000).await.unwrap();
    let keys: Vec<_> = requests
        .iter()
        .filter_map(|r| r.dedupe_key.clone())
        .collect();
    let unique: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "no slot was queued twice");
    assert!(
        keys.iter().all(|k| k.starts_with(&format!("sch:{id}:"))),
        "{keys:?}"
    );
    let row = store
        .get_schedule(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(row.nxt_run_dt.is_some());
    assert!(row.lst_run_dt.is_some(), "LST_RUN_DT is recorded");
}

/// One node fires the schedules; when it is killed, another takes the scheduler lease
/// within the lease and fires on from where the first left off, each slot once.
async fn a_dead_leaders_schedules_move_to_another_node(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    tick_every_second(&db, &scratch, &[]);
    let holder = || async {
        store
            .get_lease(dwsched_service::SCHEDULER_LEASE)
            .await
            .unwrap()
            .and_then(|l| l.holder)
    };
    let mut first = NodeProcess::start(&db, &scratch.dir, "first", &[]);
    eventually(LONG, "the first node to lead", || async {
        (holder().await.as_deref() == Some("first")).then_some(())
    })
    .await;
    let _second = NodeProcess::start(&db, &scratch.dir, "second", &[]);
    eventually(LONG, "the second node to register", || async {
        store.get_node("second").await.unwrap().map(|_| ())
    })
    .await;
    let status: serde_json::Value =
        serde_json::from_str(&cli(&db, &scratch.dir, &["status", "--json"])).unwrap();
    let roles: Vec<(String, bool)> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node_id"].as_str().unwrap().to_string(),
                n["fires_schedules"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("first".to_string(), true), ("second".to_string(), false)]
    );

    first.signal(nix::sys::signal::Signal::SIGKILL);
    let killed = Instant::now();
    first.wait_exit(Duration::from_secs(5));
    eventually(LONG, "the second node to take the lease", || async {
        (holder().await.as_deref() == Some("second")).then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    // The lease is 3 s; the follower tries every second.
    assert!(
        takeover < Duration::from_secs(6),
        "took over after {takeover:?}"
    );
    let fired_before = store.list_requests(None, 10_000).await.unwrap().len();
    eventually(LONG, "fires from the new leader", || async {
        let requests = store.list_requests(None, 10_000).await.unwrap();
        (requests.len() >= fired_before + 3
            && requests.iter().all(|r| {
                r.status == Some(RequestStatus::Done)
                    || r.requested_at > Some(chrono::Utc::now() - chrono::Duration::seconds(3))
            }))
        .then_some(())
    })
    .await;
    let requests = store.list_requests(None, 10_000).await.unwrap();
    let keys: std::collections::HashSet<_> = requests
        .iter()
        .filter_map(|r| r.dedupe_key.clone())
        .collect();
    assert_eq!(
        keys.len(),
        requests.len(),
        "every fire has its own slot key"
    );
    let runs = runs_of(&*store, "TICK").await;
    let mut per_request = std::collections::HashMap::new();
    for run in runs
        .iter()
        .filter(|r| r.status == Some(RunStatus::Completed))
    {
        *per_request.entry(run.request_id.clone()).or_insert(0) += 1;
    }
    assert!(per_request.values().all(|n| *n == 1), "{per_request:?}");
}

/// The slots fired for schedule `jobschid` (by dedupe key), each with when the node
/// queued it.
async fn fires_of(
    store: &dyn TestSupport,
    jobschid: &str,
) -> Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let prefix = format!("sch:{jobschid}:");
    let mut fires: Vec<_> = store
        .list_requests(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| {
            let slot = r.dedupe_key.as_deref()?.strip_prefix(&prefix)?;
            let slot = chrono::DateTime::parse_from_rfc3339(slot).ok()?.to_utc();
            Some((slot, r.requested_at?))
        })
        .collect();
    fires.sort();
    fires
}

/// How long after `edited_at` the node first queued a slot of `jobschid`, waiting for it.
async fn first_fire_after(
    store: &dyn TestSupport,
    jobschid: &str,
    edited_at: chrono::DateTime<chrono::Utc>,
) -> Duration {
    let queued = eventually(LONG, &format!("a fire of schedule {jobschid}"), || async {
        fires_of(store, jobschid)
            .await
            .into_iter()
            .map(|(_, queued)| queued)
            .filter(|queued| *queued >= edited_at)
            .min()
    })
    .await;
    (queued - edited_at).to_std().unwrap_or_default()
}

/// Waits until no more fires can come from before the edit at `edited_at`, and asserts
/// that the node queued no slot later than the edit seen within `SEEN` (and fires
/// queued up to their lead ahead).
async fn assert_no_fire_after(
    store: &dyn TestSupport,
    jobschid: &str,
    edited_at: chrono::DateTime<chrono::Utc>,
    what: &str,
) {
    const SEEN: i64 = 2;
    const LEAD: i64 = 2;
    let bound = edited_at + chrono::Duration::seconds(SEEN + LEAD);
    let settle = (bound + chrono::Duration::seconds(2) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(settle).await;
    let late: Vec<_> = fires_of(store, jobschid)
        .await
        .into_iter()
        .filter(|(slot, _)| *slot > bound)
        .collect();
    assert!(
        late.is_empty(),
        "{what}: schedule {jobschid} still fired {late:?} after the edit at {edited_at}"
    );
}

/// A holiday added to a calendar stops the fires of the schedules that use it within
/// seconds, with no periodic sync to help; holidays deleted by hand bring them back;
/// a schedule that names no existing calendar is invalid, with the reason.
async fn a_running_node_follows_calendar_edits(db: TestDb) {
    const SEEN: Duration = Duration::from_secs(2);
    let scratch = Scratch::new();
    let store = db.open().await;
    let flow = scratch.command_flow("cal", "true");
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "CAL", "--flow", flow.to_str().unwrap()],
    );
    cli(
        &db,
        &scratch.dir,
        &[
            "calendar",
            "put",
            "EVERYDAY",
            "--workdays",
            "mon,tue,wed,thu,fri,sat,sun",
        ],
    );
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let edited = chrono::Utc::now();
    let id = cli(
        &db,
        &scratch.dir,
        &[
            "schedule",
            "add",
            "CAL",
            "--frqcd",
            "CR",
            "--cron",
            "* * * * * *",
            "--timezone",
            "UTC",
            "--calendar",
            "EVERYDAY",
            "--enable",
        ],
    );
    let seen = first_fire_after(&*store, &id, edited).await;
    assert!(seen <= SEEN, "schedule add took {seen:?} to fire");

    // Today and tomorrow become holidays: the fires stop.
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let edited = chrono::Utc::now();
    for day in [today, tomorrow] {
        cli(
            &db,
            &scratch.dir,
            &[
                "calendar",
                "holiday",
                "add",
                "EVERYDAY",
                &day.to_string(),
                "--descr",
                "closed",
            ],
        );
    }
    assert_no_fire_after(&*store, &id, edited, "holidays added").await;
    let jobschid: i64 = id.parse().unwrap();
    let after_holidays = tomorrow
        .succ_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    eventually(LONG, "NXT_RUN_DT after the holidays", || async {
        let row = store.get_schedule(jobschid).await.unwrap()?;
        row.nxt_run_dt.filter(|next| *next >= after_holidays)
    })
    .await;

    // Another tool deletes the holidays: the fires come back.
    let edited = chrono::Utc::now();
    db.exec_raw(&["DELETE FROM DMS_CALDATE WHERE CALNM = 'EVERYDAY'"])
        .await;
    let seen = first_fire_after(&*store, &id, edited).await;
    assert!(
        seen <= SEEN,
        "deleting the holidays took {seen:?} to fire again"
    );

    // A calendar that does not exist makes the schedule invalid, with the reason.
    db.exec_raw(&[&format!(
        "UPDATE DMS_JOBSCH SET CALNM = 'NOPE' WHERE JOBSCHID = {jobschid}"
    )])
    .await;
    let problem = eventually(LONG, "SCHERR of the unknown calendar", || async {
        store.get_schedule(jobschid).await.unwrap()?.scherr
    })
    .await;
    assert_eq!(problem, "CALNM 'NOPE': no such calendar in DMS_CALENDAR");
}

/// Edits from every path reach the node that fires within 2 s, with no periodic sync
/// to help (`SCHEDULER_REFRESH_INTERVAL` stays 60 s): the CLI, the HTTP API of another
/// node, a new row version written the way DWTOOL's UI writes it, and an `UPDATE` by
/// hand that leaves `RECUPDT` alone.
async fn a_running_node_follows_schedule_edits(db: TestDb) {
    const SEEN: Duration = Duration::from_secs(2);
    let scratch = Scratch::new();
    let store = db.open().await;
    let flow = scratch.command_flow("edit", "true");
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "EDIT", "--flow", flow.to_str().unwrap()],
    );
    // The firing node serves no HTTP; the API is another node's (SQLite has one node).
    let _lead = (db.backend != dwsched_store::Backend::Sqlite)
        .then(|| NodeProcess::start(&db, &scratch.dir, "lead", &[]));
    if _lead.is_some() {
        eventually(LONG, "node lead to fire the schedules", || async {
            let lease = store.get_lease("scheduler").await.unwrap()?;
            (lease.holder.as_deref() == Some("lead")).then_some(())
        })
        .await;
    }
    let (_web, base) = crate::http::node_with_http(&db, &scratch, None).await;
    let client = crate::http::http_client();
    let now = chrono::Utc::now;

    // The CLI adds an enabled schedule, then disables it.
    let edited = now();
    let id = cli(
        &db,
        &scratch.dir,
        &[
            "schedule",
            "add",
            "EDIT",
            "--frqcd",
            "CR",
            "--cron",
            "* * * * * *",
            "--enable",
        ],
    );
    let seen = first_fire_after(&*store, &id, edited).await;
    eprintln!("schedule add: first fire queued {seen:?} after the edit");
    assert!(seen <= SEEN, "schedule add took {seen:?} to fire");
    let edited = now();
    cli(&db, &scratch.dir, &["schedule", "disable", &id]);
    assert_no_fire_after(&*store, &id, edited, "schedule disable").await;

    // The API of the other node enables it again.
    let edited = now();
    let answer = client
        .post(format!("{base}/api/schedules/{id}/enable"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let seen = first_fire_after(&*store, &id, edited).await;
    eprintln!("API enable: first fire queued {seen:?} after the edit");
    assert!(seen <= SEEN, "the API's enable took {seen:?} to fire");

    // DWTOOL's UI replaces the schedule: a new row version, the old one retired, in one
    // transaction.
    let new_id = match db.backend {
        dwsched_store::Backend::Postgres => "nextval('dms_jobschseq')",
        _ => "NULL",
    };
    let edited = now();
    db.exec_raw(&[
        "BEGIN",
        &format!(
            "INSERT INTO DMS_JOBSCH (JOBSCHID, JOBFLWID, MAPREF, FRQCD, CRONEXPR, STFLG, \
             RECCRDT, RECUPDT, CURFLG, SCHFLG) SELECT {new_id}, JOBFLWID, MAPREF, 'CR', \
             '*/2 * * * * *', 'A', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'Y', 'Y' \
             FROM DMS_JOBSCH WHERE JOBSCHID = {id}"
        ),
        &format!(
            "UPDATE DMS_JOBSCH SET CURFLG = 'N', RECUPDT = CURRENT_TIMESTAMP WHERE JOBSCHID = {id}"
        ),
        "COMMIT",
    ])
    .await;
    let version = store
        .list_schedules(false)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.mapref == "EDIT" && s.curflg.as_deref() == Some("Y"))
        .expect("the new row version")
        .jobschid
        .to_string();
    let seen = first_fire_after(&*store, &version, edited).await;
    eprintln!("new row version: first fire queued {seen:?} after the edit");
    assert!(seen <= SEEN, "the new row version took {seen:?} to fire");
    assert_no_fire_after(&*store, &id, edited, "the retired row version").await;

    // An UPDATE by hand that changes the rule and leaves RECUPDT alone.
    let edited = now();
    db.exec_raw(&[&format!(
        "UPDATE DMS_JOBSCH SET CRONEXPR = '0 0 0 1 1 *' WHERE JOBSCHID = {version}"
    )])
    .await;
    assert_no_fire_after(&*store, &version, edited, "a rule changed by hand").await;

    // REFRESH_SCHEDULE is answered with the sync's counts.
    let refresh = store
        .enqueue(
            &NewRequest::new("EDIT", RequestType::RefreshSchedule, "{}".into()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let done = wait_request(&*store, refresh.request_id(), RequestStatus::Done, LONG).await;
    assert!(
        done.result_payload
            .unwrap()
            .contains("schedules synchronised")
    );
}

/// Under systemd the node says READY once registered and STOPPING on SIGTERM, and the
/// start and stop scripts manage it by pid file.
#[tokio::test]
async fn systemd_notifications_and_the_operations_scripts() {
    use std::os::unix::net::UnixDatagram;
    let Some(db) = TestDb::new(dwsched_store::Backend::Sqlite) else {
        return;
    };
    let scratch = Scratch::new();
    let socket_path = scratch.dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut node = NodeProcess::start(
        &db,
        &scratch.dir,
        "n1",
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );
    let mut received = Vec::new();
    let mut buffer = [0_u8; 512];
    while !received.iter().any(|m: &String| m.contains("READY=1")) {
        let n = socket
            .recv(&mut buffer)
            .unwrap_or_else(|e| panic!("no READY=1 ({e}): {}", node.output()));
        received.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    // The watchdog is fed about every second.
    let n = socket.recv(&mut buffer).unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).contains("WATCHDOG=1"));
    node.signal(nix::sys::signal::Signal::SIGTERM);
    while !received.iter().any(|m| m.contains("STOPPING=1")) {
        let n = socket.recv(&mut buffer).unwrap();
        received.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    assert_eq!(node.wait_exit(LONG), Some(0));

    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let script = |name: &str| {
        Command::new("bash")
            .arg(scripts.join(name))
            .current_dir(&scratch.dir)
            .env("DWSCHED_BIN", env!("CARGO_BIN_EXE_dwsched"))
            .env("DATABASE_URL", &db.url)
            .env("DWSCHED_NODE_ID", "scripted")
            .output()
            .unwrap()
    };
    let started = script("start_scheduler.sh");
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let pid: i32 = std::fs::read_to_string(scratch.dir.join("dwsched.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
    let stopped = script("stop_scheduler.sh");
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    assert!(
        !scratch.dir.join("dwsched.pid").exists(),
        "the pid file is removed"
    );
    db.cleanup().await;
}

/// The database goes away while runs are in flight: the node waits it out, and
/// afterwards every request is done once, no run is left `IP` and no slot ran twice.
/// It restarts the local PostgreSQL, so it runs alone: `cargo test --test tests --
/// --ignored` (`.ci/run` does).
#[tokio::test]
#[ignore = "restarts the local PostgreSQL server; run it alone with --ignored"]
async fn postgres_restart_while_runs_are_in_flight() {
    let Some(db) = TestDb::new(dwsched_store::Backend::Postgres) else {
        return;
    };
    let scratch = Scratch::new();
    let store = db.open().await;
    let flow = scratch.command_flow("slow", "sleep 3");
    for mapref in ["A", "B", "C"] {
        cli(
            &db,
            &scratch.dir,
            &["job", "put", mapref, "--flow", flow.to_str().unwrap()],
        );
    }
    tick_every_second(&db, &scratch, &["--misfire", "catchup"]);
    let node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);
    let ids: Vec<String> = ["A", "B", "C"]
        .iter()
        .map(|m| cli(&db, &scratch.dir, &["enqueue", m]))
        .collect();
    eventually(LONG, "runs in flight", || async {
        let running = store
            .list_runs(&RunFilter {
                status: Some(RunStatus::InProgress),
                limit: 10,
                ..RunFilter::default()
            })
            .await
            .ok()?;
        (running.len() >= 2).then_some(())
    })
    .await;
    drop(store);

    let version = std::fs::read_dir("/etc/postgresql")
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name();
    // Down for longer than the pool waits for a connection (10 s), so that every loop
    // of the node meets errors; shorter outages only delay its statements.
    let cluster = |action: &str| {
        let status = Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                version.to_str().unwrap(),
                "main",
                action,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctlcluster {action}");
    };
    cluster("stop");
    tokio::time::sleep(Duration::from_secs(12)).await;
    cluster("start");
    let store = db.open().await;
    for id in &ids {
        wait_request(&*store, id, RequestStatus::Done, Duration::from_secs(90)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let runs = store
        .list_runs(&RunFilter {
            limit: 1000,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    for mapref in ["A", "B", "C"] {
        let of: Vec<_> = runs
            .iter()
            .filter(|r| r.mapref.as_deref() == Some(mapref))
            .collect();
        assert_eq!(of.len(), 1, "{mapref} ran once: {of:?}");
        assert_eq!(
            of[0].status,
            Some(RunStatus::Completed),
            "{mapref}: {:?}",
            of[0].msg
        );
    }
    let requests = store.list_requests(None, 10_000).await.unwrap();
    let keys: Vec<_> = requests
        .iter()
        .filter_map(|r| r.dedupe_key.clone())
        .collect();
    let unique: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "no slot was queued twice");
    let per_request: std::collections::HashMap<_, usize> = runs
        .iter()
        .filter_map(|r| r.request_id.clone())
        .fold(std::collections::HashMap::new(), |mut counts, id| {
            *counts.entry(id).or_default() += 1;
            counts
        });
    assert!(
        per_request.values().all(|n| *n == 1),
        "no request ran twice"
    );
    let log = node.output();
    assert!(log.contains("database unreachable"), "{log}");
    assert!(log.contains("database reachable again"), "{log}");
    drop(node);
    db.cleanup().await;
}

/// After a power cut the database may come up after the scheduler: the node waits for
/// it (not ready for systemd meanwhile) instead of exiting as if misconfigured, and
/// one-shot commands exit 1, not 2.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_waits_for_a_database_that_is_down_at_boot() {
    use std::os::unix::net::UnixDatagram;
    let Some(server) = crate::util::PrivatePostgres::new() else {
        return;
    };
    let scratch = Scratch::new();
    let dwsched = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dwsched"))
            .args(args)
            .args(["--database-url", &server.url()])
            .current_dir(&scratch.dir)
            .output()
            .unwrap()
    };
    let out = dwsched(&["runs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("cannot connect to the PostgreSQL database"),
        "{stderr}"
    );

    let socket_path = scratch.dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut node = NodeProcess::start_on(
        &server.url(),
        None,
        &scratch.dir,
        "boot",
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut said = String::new();
    let mut buffer = [0_u8; 512];
    let mut hear = |said: &mut String| {
        while let Ok(n) = socket.recv(&mut buffer) {
            said.push_str(&String::from_utf8_lossy(&buffer[..n]));
            said.push('\n');
        }
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    hear(&mut said);
    assert!(
        node.child.try_wait().unwrap().is_none(),
        "the node exited while the database was down:\n{}",
        node.output()
    );
    assert!(
        !said.contains("READY=1"),
        "ready without a database: {said}"
    );
    assert!(
        node.output()
            .contains("database unreachable while opening the metadata database"),
        "{}",
        node.output()
    );

    server.start();
    let up = Instant::now();
    eventually(Duration::from_secs(40), "the node to become ready", || {
        hear(&mut said);
        let ready = said.contains("READY=1");
        async move { ready.then_some(()) }
    })
    .await;
    eprintln!("ready {:?} after the server started", up.elapsed());
    let flow = scratch.command_flow("boot", "echo booted");
    let put = dwsched(&["job", "put", "BOOT", "--flow", flow.to_str().unwrap()]);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let store = dwsched_store::open(&dwsched_store::StoreOptions::new(server.url()))
        .await
        .unwrap();
    let id = String::from_utf8(dwsched(&["enqueue", "BOOT"]).stdout).unwrap();
    wait_request(&*store, id.trim(), RequestStatus::Done, LONG).await;
    store.close().await;
    node.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(node.wait_exit(LONG), Some(0));
    server.stop();
}
