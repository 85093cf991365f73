//! `command` steps on real processes, under the `dwsched` binary as their supervisor.

use std::time::{Duration, Instant};

use chrono::NaiveDate;

use dwsched_flow::{FlowFormat, RunContext, RunOutcome, StopSignal, parse_flow, run_flow};

fn context(dir: &std::path::Path) -> RunContext {
    let mut params: [Option<String>; 10] = Default::default();
    params[0] = Some("EU".into());
    RunContext {
        prcid: 77,
        mapref: "JOB".into(),
        run_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        params,
        truncate: false,
        log_dir: dir.to_path_buf(),
        connections: dwsched_flow::Connections::default(),
        mappings: Default::default(),
        progress: Default::default(),
        steps: Default::default(),
        from_step: None,
        stop: StopSignal::new(),
        supervisor: env!("CARGO_BIN_EXE_dwsched").into(),
    }
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dwsched-flow-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn flow(text: &str) -> dwsched_flow::Flow {
    parse_flow(text, FlowFormat::Toml).unwrap()
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) && !cmdline.contains("cargo") {
                found.push(cmdline);
            }
        }
    }
    found
}

#[tokio::test]
async fn commands_get_the_run_parameters_and_log_their_output() {
    let dir = temp_dir();
    let ctx = context(&dir);
    let report = run_flow(
        &flow(r#"
            [[steps]]
            name = "hello"
            kind = "command"
            program = "sh"
            args = ["-c", "echo date=$DWSCHED_RUN_DATE p1=$DWSCHED_PARAM1 prcid=$DWSCHED_PRCID t=$TARGET"]
            env = { TARGET = "prod" }
        "#),
        &ctx,
    )
    .await;
    assert_eq!(report.outcome, RunOutcome::Completed);
    let log = std::fs::read_to_string(ctx.log_file()).unwrap();
    assert!(
        log.contains("date=2026-03-01 p1=EU prcid=77 t=prod"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_failed_step_fails_the_run_and_later_steps_do_not_start() {
    let dir = temp_dir();
    let marker = dir.join("after-ran");
    let text = format!(
        r#"
        [[steps]]
        name = "first"
        kind = "command"
        program = "true"

        [[steps]]
        name = "middle"
        kind = "command"
        program = "sh"
        args = ["-c", "echo loading; echo 'ERROR: table missing' >&2; exit 3"]

        [[steps]]
        name = "last"
        kind = "command"
        program = "touch"
        args = ["{}"]
        "#,
        marker.display()
    );
    let report = run_flow(&flow(&text), &context(&dir)).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Failed {
            step: "middle".into(),
            message: "'sh' exited with status 3: loading ERROR: table missing".into()
        }
    );
    assert!(
        !marker.exists(),
        "the step after the failed one must not run"
    );
    let missing = run_flow(
        &flow("[[steps]]\nname = \"x\"\nkind = \"command\"\nprogram = \"/no/such/program\""),
        &context(&dir),
    )
    .await;
    match missing.outcome {
        RunOutcome::Failed { message, .. } => assert!(
            message.starts_with("cannot start '/no/such/program'"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn retries_run_the_step_again() {
    let dir = temp_dir();
    let flag = dir.join("tried");
    let text = format!(
        r#"
        [[steps]]
        name = "flaky"
        kind = "command"
        program = "sh"
        args = ["-c", "if [ -e {0} ]; then exit 0; else touch {0}; exit 1; fi"]
        retries = 2
        "#,
        flag.display()
    );
    let report = run_flow(&flow(&text), &context(&dir)).await;
    assert_eq!(report.outcome, RunOutcome::Completed);
    assert_eq!(report.step_failures.len(), 1, "{:?}", report.step_failures);
    assert_eq!(report.step_failures[0].attempt, 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_timeout_fails_the_step_and_kills_its_processes() {
    let dir = temp_dir();
    let marker = "913.25";
    let text = format!(
        r#"
        [[steps]]
        name = "slow"
        kind = "command"
        program = "sh"
        args = ["-c", "sleep {marker} & sleep {marker}"]
        timeout = "1s"
        "#
    );
    let report = run_flow(&flow(&text), &context(&dir)).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Failed {
            step: "slow".into(),
            message: "timed out after 1s".into()
        }
    );
    assert!(
        processes_with(marker).is_empty(),
        "{:?}",
        processes_with(marker)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_stop_ends_the_run_and_leaves_no_process_behind() {
    let dir = temp_dir();
    let marker = "914.75";
    let text = format!(
        r#"
        [[steps]]
        name = "long"
        kind = "command"
        program = "sh"
        args = ["-c", "(setsid sleep {marker} &); sleep {marker} & sleep {marker}; echo never"]
        "#
    );
    let ctx = context(&dir);
    let stop = ctx.stop.clone();
    let flow = flow(&text);
    let started = Instant::now();
    let run = tokio::spawn(async move { run_flow(&flow, &ctx).await });
    // The supervisor, the shell, its two sleeps and one in a session of its own.
    while processes_with(marker).len() < 5 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        processes_with(marker).len(),
        5,
        "the supervisor, the shell and the three sleeps started"
    );
    stop.stop("stopped by STOP request 1", false);
    let report = run.await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Stopped {
            message: "stopped by STOP request 1".into()
        }
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        processes_with(marker).is_empty(),
        "{:?}",
        processes_with(marker)
    );
    let _ = std::fs::remove_dir_all(dir);
}
