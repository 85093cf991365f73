//! Running a flow: steps in dependency order (independent steps at the same time), each
//! with its retries and timeout, all under the run's stop signal.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::connect::Connections;
use crate::model::{Flow, LoadMode, Step, StepKind};

/// How a run is told to stop. Cancelling the token stops every running step; `force`
/// skips the grace a command gets to exit on SIGTERM.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    token: CancellationToken,
    force: Arc<AtomicBool>,
    reason: Arc<std::sync::Mutex<Option<String>>>,
}

impl StopSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run, for `reason` (it becomes the run's message).
    pub fn stop(&self, reason: impl Into<String>, force: bool) {
        if force {
            self.force.store(true, Ordering::SeqCst);
        }
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| reason.into());
        drop(slot);
        self.token.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    pub fn is_forced(&self) -> bool {
        self.force.load(Ordering::SeqCst)
    }

    pub fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "stopped".to_string())
    }

    pub async fn stopped(&self) {
        self.token.cancelled().await;
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// What a run's steps see of it.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub prcid: i64,
    pub mapref: String,
    /// The business date bound as `:run_date`.
    pub run_date: NaiveDate,
    pub params: [Option<String>; dwsched_model::PARAM_COUNT],
    /// Truncate the targets of `append` loads before the run.
    pub truncate: bool,
    /// Where each run's command output is kept: `<log_dir>/<mapref>/<prcid>.log`.
    pub log_dir: PathBuf,
    /// The named connections of the flow's `sql` and `load` steps.
    pub connections: Connections,
    pub stop: StopSignal,
    /// The `dwsched` executable that supervises `command` steps
    /// ([`crate::supervisor::this_executable`] in the node).
    pub supervisor: PathBuf,
}

impl RunContext {
    pub fn log_file(&self) -> PathBuf {
        self.log_dir
            .join(&self.mapref)
            .join(format!("{}.log", self.prcid))
    }

    /// Opens the run's log file for appending (and reading back its tail), making its
    /// directory.
    pub(crate) fn open_log(&self) -> std::io::Result<std::fs::File> {
        let path = self.log_file();
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&path)
            })
    }

    /// Appends to the run's log file; a log that cannot be written does not fail a run.
    pub(crate) fn append_log(&self, text: &[u8]) {
        let written = self
            .open_log()
            .and_then(|mut file| std::io::Write::write_all(&mut file, text));
        if let Err(err) = written {
            tracing::warn!(
                "cannot write the run log {}: {err}",
                self.log_file().display()
            );
        }
    }
}

/// Row counts of a run, summed over its steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowTotals {
    pub source: i64,
    pub target: i64,
    pub errors: i64,
}

/// A row a load rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The step that loaded it.
    pub step: String,
    pub key: String,
    pub db_message: String,
}

/// A failed attempt of a step (later attempts may have succeeded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub step: String,
    pub attempt: u32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Completed,
    /// A step failed after its retries; the steps after it were not started. `step` is
    /// empty when the run failed before its first step.
    Failed {
        step: String,
        message: String,
    },
    /// The run was stopped.
    Stopped {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub outcome: RunOutcome,
    pub totals: RowTotals,
    pub step_failures: Vec<StepFailure>,
    pub row_errors: Vec<RowError>,
}

impl RunReport {
    /// A run that failed before its first step, for `message`.
    pub fn failed_before_start(message: String) -> Self {
        Self {
            outcome: RunOutcome::Failed {
                step: String::new(),
                message,
            },
            totals: RowTotals::default(),
            step_failures: Vec::new(),
            row_errors: Vec::new(),
        }
    }
}

/// What one attempt of a step ended with.
#[derive(Debug)]
pub(crate) enum StepEnd {
    Done(RowTotals, Vec<RowError>),
    /// With the rows the attempt rejected before it failed.
    Failed(String, Vec<RowError>),
    Stopped,
}

/// Runs `flow` to its end, or until it is stopped or a step fails.
pub async fn run_flow(flow: &Flow, ctx: &RunContext) -> RunReport {
    let mut report = RunReport {
        outcome: RunOutcome::Completed,
        totals: RowTotals::default(),
        step_failures: Vec::new(),
        row_errors: Vec::new(),
    };
    // A failed step stops its running siblings too; the run's own stop is the parent.
    let siblings = ctx.stop.token().child_token();
    let mut done: HashSet<&str> = HashSet::new();
    let mut started: HashSet<&str> = HashSet::new();
    let mut running: JoinSet<(String, StepEnd, Vec<StepFailure>)> = JoinSet::new();
    if ctx.truncate
        && !ctx.stop.is_stopped()
        && let Err(message) = truncate_append_targets(flow, ctx).await
    {
        report.outcome = RunOutcome::Failed {
            step: String::new(),
            message,
        };
    }
    loop {
        if matches!(report.outcome, RunOutcome::Completed) && !ctx.stop.is_stopped() {
            for step in &flow.steps {
                let ready = !started.contains(step.name.as_str())
                    && step.depends_on.iter().all(|d| done.contains(d.as_str()));
                if ready {
                    started.insert(step.name.as_str());
                    let (step, ctx, token) = (step.clone(), ctx.clone(), siblings.clone());
                    running.spawn(async move { run_step(&step, &ctx, &token).await });
                }
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (name, end, failures) = match joined {
            Ok(result) => result,
            Err(panic) => (
                "?".to_string(),
                StepEnd::Failed(
                    format!("the step's task ended abnormally: {panic}"),
                    Vec::new(),
                ),
                Vec::new(),
            ),
        };
        report.step_failures.extend(failures);
        match end {
            StepEnd::Done(totals, rows) => {
                report.totals.source += totals.source;
                report.totals.target += totals.target;
                report.totals.errors += totals.errors;
                report.row_errors.extend(rows);
                if let Some(step) = flow.steps.iter().find(|s| s.name == name) {
                    done.insert(step.name.as_str());
                }
            }
            StepEnd::Failed(message, rows) => {
                report.totals.errors += i64::try_from(rows.len()).unwrap_or(i64::MAX);
                report.row_errors.extend(rows);
                if matches!(report.outcome, RunOutcome::Completed) {
                    report.outcome = RunOutcome::Failed {
                        step: name,
                        message,
                    };
                    siblings.cancel();
                }
            }
            StepEnd::Stopped => {}
        }
    }
    if ctx.stop.is_stopped() {
        report.outcome = RunOutcome::Stopped {
            message: ctx.stop.reason(),
        };
    }
    report
}

/// Runs one step with its retries; each attempt under the step's timeout.
async fn run_step(
    step: &Step,
    ctx: &RunContext,
    token: &CancellationToken,
) -> (String, StepEnd, Vec<StepFailure>) {
    let mut failures = Vec::new();
    for attempt in 0..=step.retries {
        if attempt > 0 {
            // 1 s, 2 s, 4 s … up to a minute between attempts.
            let backoff =
                Duration::from_secs(1 << (attempt - 1).min(6)).min(Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = token.cancelled() => return (step.name.clone(), StepEnd::Stopped, failures),
            }
        }
        let attempt_token = token.child_token();
        // A timeout stops the attempt through its token, so a step stops the same way
        // whether it ran out of time or the run was stopped.
        let timed_out = Arc::new(AtomicBool::new(false));
        let timer = step.timeout.map(|limit| {
            let (attempt_token, timed_out) = (attempt_token.clone(), timed_out.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(limit) => {
                        timed_out.store(true, Ordering::SeqCst);
                        attempt_token.cancel();
                    }
                    _ = attempt_token.cancelled() => {}
                }
            })
        });
        let end = execute_step(step, ctx, &attempt_token).await;
        if let Some(timer) = timer {
            timer.abort();
        }
        let end = match (end, step.timeout) {
            (StepEnd::Stopped, Some(limit)) if timed_out.load(Ordering::SeqCst) => StepEnd::Failed(
                format!("timed out after {}", humantime::format_duration(limit)),
                Vec::new(),
            ),
            (end, _) => end,
        };
        match end {
            StepEnd::Failed(message, rows) if !token.is_cancelled() => {
                failures.push(StepFailure {
                    step: step.name.clone(),
                    attempt: attempt + 1,
                    message: message.clone(),
                });
                if attempt == step.retries {
                    let message = if step.retries > 0 {
                        format!("{message} (after {} attempts)", step.retries + 1)
                    } else {
                        message
                    };
                    // Only the last attempt's rejected rows are the step's.
                    return (step.name.clone(), StepEnd::Failed(message, rows), failures);
                }
            }
            StepEnd::Failed(..) => return (step.name.clone(), StepEnd::Stopped, failures),
            other => return (step.name.clone(), other, failures),
        }
    }
    unreachable!("the last attempt returns")
}

async fn execute_step(step: &Step, ctx: &RunContext, token: &CancellationToken) -> StepEnd {
    match &step.kind {
        StepKind::Command {
            program,
            args,
            env,
            workdir,
        } => {
            let command = crate::command::CommandSpec {
                step: &step.name,
                program,
                args,
                env,
                workdir: workdir.as_deref(),
            };
            crate::command::run_command(&command, ctx, token).await
        }
        StepKind::Sql {
            connection,
            sql,
            transaction,
        } => {
            let spec = crate::sql::SqlStep {
                step: &step.name,
                connection,
                statements: sql,
                transaction: *transaction,
            };
            crate::sql::run_sql(&spec, ctx, token).await
        }
        StepKind::Load {
            source,
            target,
            batch_size,
            max_errors,
        } => {
            let load = crate::load::LoadStep {
                step: &step.name,
                source,
                target,
                batch_size: usize::try_from(*batch_size).unwrap_or(usize::MAX),
                max_errors: *max_errors,
            };
            crate::load::run_load(&load, ctx, token).await
        }
    }
}

/// Empties the targets of the flow's `append` loads, each once, for a request with
/// `truncate_flag`.
async fn truncate_append_targets(flow: &Flow, ctx: &RunContext) -> Result<(), String> {
    let mut targets: Vec<(&str, &str)> = Vec::new();
    for step in &flow.steps {
        if let StepKind::Load { target, .. } = &step.kind
            && target.mode == LoadMode::Append
        {
            let pair = (target.connection.as_str(), target.table.as_str());
            if !targets.contains(&pair) {
                targets.push(pair);
            }
        }
    }
    crate::load::truncate_targets(&targets, ctx).await
}
