//! The commands that follow runs: `runs`, `runs show`, `logs`, the waiting of
//! `enqueue --wait` and `history --wait`, and `job run`.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use dwsched_model::{RequestStatus, RunFilter, RunPayload, RunStatus};
use dwsched_store::Store;

use crate::UsageError;
use crate::cli::RunsFilter;
use crate::config::Settings;
use crate::output;

/// `dwsched runs`: recent runs, filtered.
pub async fn list(store: &dyn Store, filter: RunsFilter) -> Result<ExitCode> {
    if filter.limit == 0 || filter.limit > 10_000 {
        return Err(UsageError(format!(
            "--limit {}: expected 1 to 10000 runs",
            filter.limit
        ))
        .into());
    }
    let status =
        match filter.status.as_deref() {
            None => None,
            Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
                UsageError(format!("--status '{text}': expected IP, PC, FL or ST"))
            })?),
        };
    let since = match filter.since.as_deref() {
        None => None,
        Some(text) => {
            let span = humantime::parse_duration(text).map_err(|e| {
                UsageError(format!(
                    "--since '{text}': {e}; expected a span such as 90s, 15m, 2h or 7d"
                ))
            })?;
            let span = chrono::Duration::from_std(span)
                .map_err(|_| UsageError(format!("--since '{text}': too long a span")))?;
            Some(Utc::now() - span)
        }
    };
    let runs = store
        .list_runs(&RunFilter {
            mapref: filter.mapref,
            status,
            since,
            limit: filter.limit,
            ..RunFilter::default()
        })
        .await?;
    if filter.json {
        println!("{}", output::runs_json(&runs));
    } else {
        println!("{}", output::runs_table(&runs, Utc::now()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `dwsched runs show PRCID`: a run and its steps.
pub async fn show(store: &dyn Store, prcid: i64, json: bool) -> Result<ExitCode> {
    let run = store.get_run(prcid).await?.ok_or_else(|| {
        dwsched_service::ops::OpError::NotFound(format!("run {prcid} does not exist"))
    })?;
    let steps = store.run_steps(prcid).await?;
    if json {
        let mut value = dwsched_service::status::run_json(&run);
        value["steps"] = steps
            .iter()
            .map(dwsched_service::status::step_json)
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON values serialise")
        );
    } else {
        print!("{}", output::run_details(&run, &steps, Utc::now()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `dwsched logs PRCID`: the run's log when this host holds it; otherwise which node
/// does, and where.
pub async fn logs(store: &dyn Store, settings: &Settings, prcid: i64) -> Result<ExitCode> {
    let run = store.get_run(prcid).await?.ok_or_else(|| {
        dwsched_service::ops::OpError::NotFound(format!("run {prcid} does not exist"))
    })?;
    let mapref = run.mapref.clone().unwrap_or_default();
    let path = dwsched_flow::run_log_path(&settings.log_dir, &mapref, prcid);
    match std::fs::read(&path) {
        Ok(bytes) => {
            use std::io::Write as _;
            std::io::stdout().write_all(&bytes)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let node = run.node.as_deref().unwrap_or("an unknown node");
            let live = match run.node.as_deref() {
                Some(id) => store.get_node(id).await?,
                None => None,
            };
            let place = match &live {
                Some(n) => {
                    let host = n.host.as_deref().unwrap_or("?");
                    match &n.http_addr {
                        Some(addr) => {
                            format!(" (host {host}; served at http://{addr}/api/runs/{prcid}/log)")
                        }
                        None => format!(" (host {host})"),
                    }
                }
                None => " (not running now)".to_string(),
            };
            eprintln!(
                "error: the log of run {prcid} is not on this host; node {node}{place} keeps it as {} under its DWSCHED_LOG_DIR (a run that wrote no log lines has none)",
                dwsched_flow::run_log_path(std::path::Path::new(""), &mapref, prcid).display()
            );
            Ok(ExitCode::from(1))
        }
        Err(err) => Err(anyhow::anyhow!(
            "cannot read the log of run {prcid} at {}: {err}",
            path.display()
        )),
    }
}

/// Follows request `request_id` to its end, showing its runs' progress on stderr: a
/// bar on a terminal, a line per change otherwise (so that logs of scripts show it).
/// `dates` is how many runs it makes. Exit 0 when the request ends `DONE`.
pub async fn wait_for_request(
    store: &dyn Store,
    mapref: &str,
    request_id: &str,
    dates: u64,
) -> Result<ExitCode> {
    let progress = Progress::new(mapref, dates);
    let filter = RunFilter {
        mapref: Some(mapref.to_string()),
        request_id: Some(request_id.to_string()),
        limit: 100_000,
        ..RunFilter::default()
    };
    loop {
        let request = store.get_request(request_id).await?;
        let runs = store.list_runs(&filter).await?;
        let ended = runs
            .iter()
            .filter(|r| r.status.is_some_and(|s| s != RunStatus::InProgress))
            .count() as u64;
        let running = runs
            .iter()
            .find(|r| r.status == Some(RunStatus::InProgress));
        progress.update(ended, running);
        match request.as_ref().and_then(|r| r.status) {
            Some(RequestStatus::Done) => {
                progress.finish(&format!("{mapref} done"));
                return Ok(ExitCode::SUCCESS);
            }
            Some(status @ (RequestStatus::Failed | RequestStatus::Cancelled)) => {
                progress.finish(&format!("{mapref} {status}"));
                let failed: Vec<_> = runs
                    .iter()
                    .filter(|r| matches!(r.status, Some(RunStatus::Failed | RunStatus::Stopped)))
                    .collect();
                for run in failed.iter().rev() {
                    eprintln!(
                        "run {} ({}) ended {}: {}",
                        run.prcid,
                        run.run_date.map_or("-".into(), |d| d.to_string()),
                        run.status.map_or("?", |s| s.as_str()),
                        run.msg.as_deref().unwrap_or("no message")
                    );
                }
                if failed.is_empty()
                    && let Some(result) = request.and_then(|r| r.result_payload)
                {
                    eprintln!("request {request_id} ended {status}: {result}");
                }
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Progress of a request's runs on stderr.
enum Progress {
    Bar(indicatif::ProgressBar, String),
    Lines {
        mapref: String,
        dates: u64,
        last: std::sync::Mutex<String>,
    },
}

impl Progress {
    fn new(mapref: &str, dates: u64) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(dates);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:40}] {pos}/{len} runs, {elapsed}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_message(format!("{mapref} waiting"));
            Self::Bar(bar, mapref.to_string())
        } else {
            Self::Lines {
                mapref: mapref.to_string(),
                dates,
                last: std::sync::Mutex::new(String::new()),
            }
        }
    }

    fn update(&self, ended: u64, running: Option<&dwsched_model::Run>) {
        match self {
            Self::Bar(bar, mapref) => {
                bar.set_position(ended);
                if let Some(run) = running {
                    bar.set_message(format!("{mapref} run {}", run.prcid));
                }
                bar.tick();
            }
            Self::Lines {
                mapref,
                dates,
                last,
            } => {
                let line = match running {
                    Some(run) => format!(
                        "{mapref}: {ended}/{dates} runs ended; run {} ({}) in progress",
                        run.prcid,
                        run.run_date.map_or("-".into(), |d| d.to_string())
                    ),
                    None if ended == 0 => format!("{mapref}: waiting to start"),
                    None => format!("{mapref}: {ended}/{dates} runs ended"),
                };
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if *last != line {
                    eprintln!("{line}");
                    *last = line;
                }
            }
        }
    }

    fn finish(&self, message: &str) {
        match self {
            Self::Bar(bar, _) => bar.abandon_with_message(message.to_string()),
            Self::Lines { .. } => eprintln!("{message}"),
        }
    }
}

/// `dwsched job run`: the job run once here, its step lines on stderr.
pub async fn run_in_foreground(
    settings: &Settings,
    store: Box<dyn Store>,
    mapref: &str,
    payload: RunPayload,
) -> Result<ExitCode> {
    let node_id = format!(
        "{}-job-run-{}",
        crate::serve::host_name(),
        std::process::id()
    );
    let config = crate::serve::node_config(settings, Some(node_id));
    let signals = dwsched_service::Shutdown::default();
    crate::serve::listen_for_signals(
        signals.clone(),
        "stopping the run (a second signal stops it at once)",
        "stopping the run at once",
    )?;
    let store: Arc<dyn Store> = Arc::from(store);
    let outcome = dwsched_service::run_once(store.clone(), config, mapref, payload, signals).await;
    store.close().await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        // The operation's own error, so that its exit status is kept.
        Err(dwsched_service::ForegroundError::Op(op)) => return Err(op.into()),
        Err(other) => return Err(other.into()),
    };
    match &outcome.run {
        Some(run) => {
            eprintln!(
                "run {} of {mapref} ({}) ended {}{}; request {}",
                run.prcid,
                run.run_date.map_or("-".into(), |d| d.to_string()),
                run.status.map_or("?", |s| s.as_str()),
                run.msg
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default(),
                outcome.request_id
            );
            eprintln!(
                "steps: dwsched runs show {}; log: dwsched logs {}",
                run.prcid, run.prcid
            );
        }
        None => eprintln!(
            "request {} for {mapref} ran nothing: {}",
            outcome.request_id,
            outcome.result.as_deref().unwrap_or("no result")
        ),
    }
    Ok(if outcome.completed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
