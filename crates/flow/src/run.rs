//! Running a flow: steps in dependency order (independent steps at the same time), each
//! with its retries and timeout, all under the run's stop signal.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::model::{Flow, LoadMode, Step, StepKind};
use crate::step::{RowError, RowTotals, RunContext, StepEnd, StepError, StepFailure};

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
                StepEnd::Failed(StepError::Aborted(panic.to_string()), Vec::new()),
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
            StepEnd::Failed(error, rows) => {
                report.totals.errors += i64::try_from(rows.len()).unwrap_or(i64::MAX);
                report.row_errors.extend(rows);
                if matches!(report.outcome, RunOutcome::Completed) {
                    let attempts = flow
                        .steps
                        .iter()
                        .find(|s| s.name == name)
                        .map_or(1, |s| s.retries + 1);
                    let message = if attempts > 1 {
                        format!("{error} (after {attempts} attempts)")
                    } else {
                        error.to_string()
                    };
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
            (StepEnd::Stopped, Some(limit)) if timed_out.load(Ordering::SeqCst) => {
                StepEnd::Failed(StepError::TimedOut(limit), Vec::new())
            }
            (end, _) => end,
        };
        match end {
            StepEnd::Failed(error, rows) if !token.is_cancelled() => {
                failures.push(StepFailure {
                    step: step.name.clone(),
                    attempt: attempt + 1,
                    message: error.to_string(),
                });
                if attempt == step.retries {
                    // Only the last attempt's rejected rows are the step's.
                    return (step.name.clone(), StepEnd::Failed(error, rows), failures);
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
        StepKind::Mapping { mapref } => {
            crate::mapping::run_mapping(&step.name, mapref, ctx, token).await
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
