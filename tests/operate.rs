//! An operator's day on every backend, through real `dwsched` processes: one-off runs
//! in the foreground with their step records and logs, reruns from a step, stops and
//! interrupts of a foreground run, waiting and filtering, and the lifecycle commands
//! (edit, delete, retire) with the checks that refuse bad input at registration.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dwsched_model::{RequestStatus, RunStatus, StepStatus};

use crate::service::{NodeProcess, Scratch, cli, eventually, runs_of, wait_run_status};
use crate::util::TestDb;

crate::per_backend!(
    a_job_runs_once_in_the_foreground_with_its_steps_recorded,
    a_foreground_run_is_stopped_by_stop_and_by_an_interrupt,
    a_foreground_run_waits_for_a_running_run_of_its_job,
    lifecycle_commands_retire_and_refuse,
    waiting_and_filtering_runs,
);

const LONG: Duration = Duration::from_secs(30);

fn command(db: &TestDb, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dwsched"));
    command
        .args(args)
        .args(["--database-url", &db.url])
        .current_dir(dir)
        .env("DWSCHED_LOG_DIR", dir.join("logs"))
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL");
    if let Some(schema) = &db.schema {
        command.args(["--schema", schema]);
    }
    command
}

fn run(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    command(db, dir, args).output().expect("run dwsched")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must exit with `code`; returns (stdout, stderr).
fn exits(db: &TestDb, dir: &Path, code: i32, args: &[&str]) -> (String, String) {
    let out = run(db, dir, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

fn spawn(db: &TestDb, dir: &Path, args: &[&str]) -> Child {
    command(db, dir, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dwsched")
}

fn wait_child(child: Child, within: Duration) -> Output {
    let start = Instant::now();
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < within,
            "dwsched did not end within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Registers connection `wh` (the test's own database) and job `mapref` with `flow`.
async fn job_with_flow(db: &TestDb, dir: &Path, mapref: &str, flow: &str) {
    let store = db.open().await;
    if store.get_connection("wh").await.unwrap().is_none() {
        store
            .put_connection(&db.flow_connection("wh"))
            .await
            .unwrap();
    }
    let path = dir.join(format!("{mapref}.toml"));
    std::fs::write(&path, flow).unwrap();
    cli(
        db,
        dir,
        &["job", "put", mapref, "--flow", path.to_str().unwrap()],
    );
}

async fn a_job_runs_once_in_the_foreground_with_its_steps_recorded(db: TestDb) {
    let scratch = Scratch::new();
    let dir = &scratch.dir;
    cli(&db, dir, &["init"]);
    let table = "op_fg_t";
    let flow = format!(
        r#"
[[steps]]
name = "make"
kind = "sql"
connection = "wh"
sql = ["CREATE TABLE IF NOT EXISTS {table} (d VARCHAR(10))", "DELETE FROM {table}"]

[[steps]]
name = "fill"
kind = "sql"
connection = "wh"
sql = ["INSERT INTO {table} VALUES (:run_date)", "INSERT INTO {table} VALUES ('x')"]

[[steps]]
name = "say"
kind = "command"
program = "sh"
args = ["-c", "echo said on $DWSCHED_RUN_DATE"]

[[steps]]
name = "count"
kind = "sql"
connection = "wh"
sql = "SELECT COUNT(*) FROM {table}"
"#
    );
    job_with_flow(&db, dir, "FG", &flow).await;

    // The run: exit 0, step lines on stderr, nothing on stdout.
    let (stdout, stderr) = exits(
        &db,
        dir,
        0,
        &["job", "run", "FG", "--run-date", "2026-03-01"],
    );
    assert!(stdout.is_empty(), "{stdout}");
    for line in [
        "step 'make' attempt 1 started",
        "step 'fill' attempt 1 ended PC",
        "step 'count' attempt 1 ended PC",
        "ended PC",
    ] {
        assert!(stderr.contains(line), "{line} in:\n{stderr}");
    }
    let store = db.open().await;
    let runs = runs_of(&*store, "FG").await;
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.status, Some(RunStatus::Completed));
    assert_eq!(run.run_date, Some("2026-03-01".parse().unwrap()));
    // Recorded like any run: a request, completed, and the node gone again.
    let request = store
        .get_request(run.request_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.status, Some(RequestStatus::Done));
    assert!(store.list_nodes().await.unwrap().is_empty());
    let steps = store.run_steps(run.prcid).await.unwrap();
    let names: Vec<(&str, i64, StepStatus)> = steps
        .iter()
        .map(|s| (s.step.as_str(), s.attempt, s.status))
        .collect();
    assert_eq!(
        names,
        [
            ("make", 1, StepStatus::Completed),
            ("fill", 1, StepStatus::Completed),
            ("say", 1, StepStatus::Completed),
            ("count", 1, StepStatus::Completed),
        ]
    );
    assert!(
        steps
            .iter()
            .all(|s| s.ended_at >= s.started_at && s.ended_at.is_some())
    );

    // runs show: the run and its steps; logs: statements with counts, command output.
    let prcid = run.prcid.to_string();
    let (shown, _) = exits(&db, dir, 0, &["runs", "show", &prcid]);
    for part in [
        "run date   2026-03-01",
        "make",
        "fill",
        "say",
        "count",
        "PC",
    ] {
        assert!(shown.contains(part), "{part} in:\n{shown}");
    }
    let (json, _) = exits(&db, dir, 0, &["runs", "show", &prcid, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["run_date"], "2026-03-01");
    assert_eq!(json["steps"].as_array().unwrap().len(), 4);
    let (log, _) = exits(&db, dir, 0, &["logs", &prcid]);
    for part in [
        "step 'fill': statement 1 affected 1 rows: INSERT INTO op_fg_t VALUES (:run_date)",
        "said on 2026-03-01",
        "step 'count' attempt 1 ended PC",
    ] {
        assert!(log.contains(part), "{part} in:\n{log}");
    }
    // Another host's view: the log is elsewhere, and the command says where.
    let elsewhere = Scratch::new();
    let (_, err) = exits(&db, &elsewhere.dir, 1, &["logs", &prcid]);
    assert!(err.contains("is not on this host"), "{err}");
    assert!(err.contains(&format!("FG/{prcid}.log")), "{err}");
    exits(&db, dir, 2, &["logs", "999999"]);

    // From a step: the steps it depends on are recorded SK, the rest run.
    let (_, stderr) = exits(&db, dir, 0, &["job", "run", "FG", "--from-step", "say"]);
    assert!(stderr.contains("step 'make' skipped"), "{stderr}");
    let runs = runs_of(&*store, "FG").await;
    let steps = store.run_steps(runs[1].prcid).await.unwrap();
    let statuses: Vec<(&str, StepStatus)> =
        steps.iter().map(|s| (s.step.as_str(), s.status)).collect();
    for (step, status) in [
        ("make", StepStatus::Skipped),
        ("fill", StepStatus::Skipped),
        ("say", StepStatus::Completed),
        ("count", StepStatus::Completed),
    ] {
        assert!(
            statuses.contains(&(step, status)),
            "{step} {status}: {statuses:?}"
        );
    }
    let err = exits(&db, dir, 2, &["job", "run", "FG", "--from-step", "nope"]).1;
    assert!(err.contains("no step 'nope'"), "{err}");

    // A failing statement: exit 1, the step FL with the database's own message.
    job_with_flow(
        &db,
        dir,
        "FGBAD",
        "[[steps]]\nname = \"boom\"\nkind = \"sql\"\nconnection = \"wh\"\nsql = \"SELECT * FROM op_no_such_table\"\n",
    )
    .await;
    let (_, stderr) = exits(&db, dir, 1, &["job", "run", "FGBAD"]);
    assert!(stderr.contains("ended FL"), "{stderr}");
    let bad = &runs_of(&*store, "FGBAD").await[0];
    assert_eq!(bad.status, Some(RunStatus::Failed));
    let msg = bad.msg.clone().unwrap();
    assert!(msg.contains("op_no_such_table"), "{msg}");
    assert!(
        !msg.contains(" at line "),
        "sqlx's source line is not the user's: {msg}"
    );
    let step = &store.run_steps(bad.prcid).await.unwrap()[0];
    assert_eq!((step.status, step.attempt), (StepStatus::Failed, 1));
    assert!(step.msg.as_deref().unwrap().contains("op_no_such_table"));
}

async fn a_foreground_run_is_stopped_by_stop_and_by_an_interrupt(db: TestDb) {
    let scratch = Scratch::new();
    let dir = &scratch.dir;
    cli(&db, dir, &["init"]);
    let flow = scratch.command_flow("slow", "echo started; sleep 60");
    cli(
        &db,
        dir,
        &["job", "put", "SLOW", "--flow", flow.to_str().unwrap()],
    );
    let store = db.open().await;

    // `dwsched stop` from elsewhere: the foreground process answers it.
    let child = spawn(&db, dir, &["job", "run", "SLOW"]);
    wait_run_status(&*store, "SLOW", RunStatus::InProgress, LONG).await;
    cli(&db, dir, &["stop", "SLOW"]);
    let out = wait_child(child, LONG);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let run = wait_run_status(&*store, "SLOW", RunStatus::Stopped, LONG).await;
    assert!(run.msg.unwrap().contains("STOP request"));

    // Ctrl-C: the run ends ST, its request FAILED, the exit status 1.
    let child = spawn(&db, dir, &["job", "run", "SLOW"]);
    eventually(LONG, "a second run in progress", || async {
        let runs = runs_of(&*store, "SLOW").await;
        (runs.len() == 2 && runs[1].status == Some(RunStatus::InProgress)).then_some(())
    })
    .await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = wait_child(child, LONG);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let runs = runs_of(&*store, "SLOW").await;
    assert_eq!(runs[1].status, Some(RunStatus::Stopped));
    assert!(runs[1].msg.as_deref().unwrap().contains("interrupt"));
    let steps = store.run_steps(runs[1].prcid).await.unwrap();
    assert_eq!(steps[0].status, StepStatus::Stopped);
    let request = store
        .get_request(runs[1].request_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.status, Some(RequestStatus::Failed));
}

async fn a_foreground_run_waits_for_a_running_run_of_its_job(db: TestDb) {
    let scratch = Scratch::new();
    let dir = &scratch.dir;
    cli(&db, dir, &["init"]);
    let flow = scratch.command_flow("busy", "sleep 3");
    cli(
        &db,
        dir,
        &["job", "put", "BUSY", "--flow", flow.to_str().unwrap()],
    );
    let store = db.open().await;
    let _node = NodeProcess::start(&db, dir, "n1", &[]);
    cli(&db, dir, &["enqueue", "BUSY"]);
    wait_run_status(&*store, "BUSY", RunStatus::InProgress, LONG).await;
    // The node holds the job: the foreground run waits its turn, then runs here.
    let out = wait_child(spawn(&db, dir, &["job", "run", "BUSY"]), LONG);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is in progress on node n1"), "{stderr}");
    let runs = runs_of(&*store, "BUSY").await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].node.as_deref(), Some("n1"));
    assert!(runs[1].node.as_deref().unwrap().contains("-job-run-"));
    assert!(
        runs[1].started_at >= runs[0].ended_at,
        "no overlap: {:?} then {:?}",
        runs[0].ended_at,
        runs[1].started_at
    );
    // The node never takes a request reserved for a foreground run.
    assert!(runs.iter().all(|r| r.status == Some(RunStatus::Completed)));
}

async fn lifecycle_commands_retire_and_refuse(db: TestDb) {
    let scratch = Scratch::new();
    let dir = &scratch.dir;
    cli(&db, dir, &["init"]);
    let flow = "[[steps]]\nname = \"a\"\nkind = \"sql\"\nconnection = \"wh\"\nsql = \"SELECT 1\"\n";
    job_with_flow(&db, dir, "LIFE", flow).await;
    let first = cli(
        &db,
        dir,
        &[
            "schedule", "add", "LIFE", "--frqcd", "DL", "--frqhh", "6", "--enable",
        ],
    );

    // Input a schedule would ignore is refused at once.
    let err = exits(
        &db,
        dir,
        2,
        &[
            "schedule",
            "add",
            "LIFE",
            "--frqcd",
            "DL",
            "--cron",
            "0 6 * * *",
        ],
    )
    .1;
    assert!(err.contains("--cron is used only with --frqcd CR"), "{err}");
    let err = exits(
        &db,
        dir,
        2,
        &["schedule", "add", "LIFE", "--frqcd", "DL", "--frqdd", "MON"],
    )
    .1;
    assert!(err.contains("--frqdd is ignored by --frqcd DL"), "{err}");

    // A job with enabled schedules is not deleted by accident.
    let err = exits(&db, dir, 1, &["job", "delete", "LIFE"]).1;
    assert!(err.contains(&first) && err.contains("--force"), "{err}");

    // An edit writes a new version; the old row is retired, the new one keeps it enabled.
    let second = cli(&db, dir, &["schedule", "edit", &first, "--frqhh", "7"]);
    assert_ne!(second, first);
    let store = db.open().await;
    let old = store
        .get_schedule(first.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let new = store
        .get_schedule(second.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.curflg.as_deref(), Some("N"));
    assert_eq!(new.curflg.as_deref(), Some("Y"));
    assert_eq!((new.frqcd.as_deref(), new.frqhh), (Some("DL"), Some(7)));
    assert_eq!(new.schflg.as_deref(), Some("Y"));
    assert!(new.nxt_run_dt.is_some());
    // A change of code drops what the new code ignores.
    let third = cli(
        &db,
        dir,
        &[
            "schedule",
            "edit",
            &second,
            "--frqcd",
            "CR",
            "--cron",
            "*/5 * * * *",
        ],
    );
    let row = store
        .get_schedule(third.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.cronexpr.as_deref(), Some("*/5 * * * *"));
    exits(&db, dir, 2, &["schedule", "edit", &first, "--frqhh", "8"]);

    // A dependent schedule (by --depends-on, or --after, its old name) holds its parent.
    job_with_flow(&db, dir, "CHILD", flow).await;
    let child = cli(
        &db,
        dir,
        &[
            "schedule", "add", "CHILD", "--frqcd", "DL", "--after", &third,
        ],
    );
    let err = exits(&db, dir, 1, &["schedule", "delete", &third]).1;
    assert!(err.contains(&child), "{err}");
    cli(&db, dir, &["schedule", "delete", &child]);
    cli(&db, dir, &["schedule", "delete", &third]);
    let gone = store
        .get_schedule(third.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.curflg.as_deref(), Some("N"));

    // A connection in use stays; a job goes with --force, and then the connection can.
    let err = exits(&db, dir, 1, &["conn", "delete", "wh"]).1;
    assert!(err.contains("LIFE") && err.contains("CHILD"), "{err}");
    cli(
        &db,
        dir,
        &["schedule", "add", "LIFE", "--frqcd", "DL", "--enable"],
    );
    let (_, said) = exits(&db, dir, 0, &["job", "delete", "LIFE", "--force"]);
    assert!(said.contains("retired"), "{said}");
    exits(&db, dir, 2, &["job", "show", "LIFE"]);
    assert!(
        store
            .list_schedules(true)
            .await
            .unwrap()
            .iter()
            .all(|s| s.mapref != "LIFE")
    );
    cli(&db, dir, &["job", "delete", "CHILD"]);
    cli(&db, dir, &["conn", "delete", "wh"]);
    let listed = cli(&db, dir, &["conn", "list"]);
    assert!(!listed.contains("wh"), "{listed}");
    exits(&db, dir, 2, &["conn", "delete", "wh"]);

    // job put refuses what would only fail at run time.
    job_with_flow(&db, dir, "OK", flow).await;
    let binds = dir.join("binds.toml");
    std::fs::write(
        &binds,
        "[[steps]]\nname = \"two\"\nkind = \"sql\"\nconnection = \"wh\"\nsql = \"DELETE FROM t WHERE d = :run_date; INSERT INTO t VALUES (:run_date)\"\n",
    )
    .unwrap();
    let err = exits(
        &db,
        dir,
        2,
        &["job", "put", "BINDS", "--flow", binds.to_str().unwrap()],
    )
    .1;
    assert!(err.contains("several statements and uses binds"), "{err}");
    cli(
        &db,
        dir,
        &["conn", "put", "ora", "--url", "oracle://scott@db:1521/orcl"],
    );
    let oracle = dir.join("oracle.toml");
    std::fs::write(
        &oracle,
        "[[steps]]\nname = \"o\"\nkind = \"sql\"\nconnection = \"ora\"\nsql = \"SELECT 1 FROM dual\"\n",
    )
    .unwrap();
    let err = exits(
        &db,
        dir,
        2,
        &["job", "put", "ORA", "--flow", oracle.to_str().unwrap()],
    )
    .1;
    assert!(err.contains("'ora' of type ORACLE"), "{err}");
    let (put, _) = exits(
        &db,
        dir,
        0,
        &[
            "job",
            "put",
            "OK2",
            "--flow",
            &dir.join("OK.toml").to_string_lossy(),
        ],
    );
    assert!(put.contains("flow JOBFLWID"), "{put}");
    let (_, warned) = exits(
        &db,
        dir,
        0,
        &["conn", "put", "lite", "--url", "sqlite:///nowhere/x.db"],
    );
    assert!(warned.contains("does not exist"), "{warned}");
    let listed = cli(&db, dir, &["conn", "list"]);
    assert!(listed.contains("/nowhere/x.db"), "{listed}");
}

async fn waiting_and_filtering_runs(db: TestDb) {
    let scratch = Scratch::new();
    let dir = &scratch.dir;
    cli(&db, dir, &["init"]);
    let ok = scratch.command_flow("ok", "true");
    cli(
        &db,
        dir,
        &["job", "put", "OKJOB", "--flow", ok.to_str().unwrap()],
    );
    let odd = scratch.command_flow("odd", "test $DWSCHED_RUN_DATE != 2026-01-02");
    cli(
        &db,
        dir,
        &["job", "put", "ODD", "--flow", odd.to_str().unwrap()],
    );
    let _node = NodeProcess::start(&db, dir, "n1", &[]);

    // enqueue --wait: the id alone on stdout, progress lines on stderr (not a terminal).
    let (stdout, stderr) = exits(&db, dir, 0, &["enqueue", "OKJOB", "--wait"]);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stderr.contains("OKJOB done"), "{stderr}");
    // history --continue-on-failure runs every date and still fails the request.
    let (_, stderr) = exits(
        &db,
        dir,
        1,
        &[
            "history",
            "ODD",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-04",
            "--continue-on-failure",
            "--wait",
        ],
    );
    assert!(stderr.contains("runs ended"), "progress lines: {stderr}");
    assert!(stderr.contains("(2026-01-02) ended FL"), "{stderr}");
    let store = db.open().await;
    let runs = runs_of(&*store, "ODD").await;
    let dates: Vec<String> = runs
        .iter()
        .map(|r| r.run_date.unwrap().to_string())
        .collect();
    assert_eq!(
        dates,
        ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    );
    // Without it, the first failure ends the backfill.
    exits(
        &db,
        dir,
        1,
        &[
            "history",
            "ODD",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-04",
            "--wait",
        ],
    );
    assert_eq!(runs_of(&*store, "ODD").await.len(), 6);
    // Dates after today are run, with a warning.
    let (_, stderr) = exits(
        &db,
        dir,
        0,
        &[
            "history",
            "OKJOB",
            "--from",
            "2099-01-01",
            "--to",
            "2099-01-01",
        ],
    );
    assert!(stderr.contains("is after today"), "{stderr}");

    // Filters.
    let (listed, _) = exits(
        &db,
        dir,
        0,
        &[
            "runs", "--status", "FL", "--mapref", "ODD", "--since", "1h", "--json",
        ],
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|r| r["status"] == "FL" && r["run_date"] == "2026-01-02")
    );
    let err = exits(&db, dir, 2, &["runs", "--limit", "0"]).1;
    assert!(err.contains("--limit 0"), "{err}");
    exits(&db, dir, 2, &["runs", "--status", "XX"]);
    exits(&db, dir, 2, &["runs", "--since", "yesterday"]);
}
