//! Running a flow: steps in dependency order (independent steps at the same time), each
//! with its retries and timeout, all under the run's stop signal.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use dwsched_model::{StepRecord, StepStatus};
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
    if let Some(from) = &ctx.from_step {
        match skipped_before(flow, from) {
            Ok(skipped) => {
                let now = Utc::now();
                for name in skipped {
                    started.insert(name);
                    done.insert(name);
                    report_end(
                        ctx,
                        StepRecord {
                            prcid: ctx.prcid,
                            step: name.to_string(),
                            attempt: 0,
                            status: StepStatus::Skipped,
                            started_at: Some(now),
                            ended_at: Some(now),
                            srcrows: None,
                            trgrows: None,
                            errrows: None,
                            msg: Some(format!("the run starts at step '{from}'")),
                        },
                    );
                }
            }
            Err(message) => {
                report.outcome = RunOutcome::Failed {
                    step: String::new(),
                    message,
                };
            }
        }
    }
    if matches!(report.outcome, RunOutcome::Completed)
        && ctx.truncate
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

/// The steps a run from step `from` skips: every step `from` depends on, directly or
/// through others. The rest (`from`, what follows it, and branches it does not depend
/// on) run as usual.
pub fn skipped_before<'f>(flow: &'f Flow, from: &str) -> Result<Vec<&'f str>, String> {
    if !flow.steps.iter().any(|s| s.name == from) {
        let names: Vec<&str> = flow.steps.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "the flow has no step '{from}' to start from; its steps are: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    let mut needed: HashSet<&str> = HashSet::new();
    let mut pending = vec![from];
    while let Some(name) = pending.pop() {
        if let Some(step) = flow.steps.iter().find(|s| s.name == name) {
            for parent in &step.depends_on {
                if needed.insert(parent.as_str()) {
                    pending.push(parent.as_str());
                }
            }
        }
    }
    Ok(flow
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .filter(|name| needed.contains(name))
        .collect())
}

/// The record of an attempt of `step`, with how it ended.
fn attempt_record(
    ctx: &RunContext,
    step: &Step,
    attempt: u32,
    started: chrono::DateTime<Utc>,
    end: Option<(&StepEnd, Option<String>)>,
) -> StepRecord {
    let mut record = StepRecord {
        prcid: ctx.prcid,
        step: step.name.clone(),
        attempt: i64::from(attempt),
        status: StepStatus::InProgress,
        started_at: Some(started),
        ended_at: None,
        srcrows: None,
        trgrows: None,
        errrows: None,
        msg: None,
    };
    if let Some((end, stopped_because)) = end {
        record.ended_at = Some(Utc::now());
        match end {
            StepEnd::Done(totals, _) => {
                record.status = StepStatus::Completed;
                record.srcrows = Some(totals.source);
                record.trgrows = Some(totals.target);
                record.errrows = Some(totals.errors);
            }
            StepEnd::Failed(error, rows) => {
                record.status = StepStatus::Failed;
                record.errrows = Some(i64::try_from(rows.len()).unwrap_or(i64::MAX));
                record.msg = Some(error.to_string());
            }
            StepEnd::Stopped => {
                record.status = StepStatus::Stopped;
                record.msg = stopped_because;
            }
        }
    }
    record
}

/// Reports an attempt that ended (or a step skipped), to the step log and the run's
/// log file.
fn report_end(ctx: &RunContext, record: StepRecord) {
    ctx.run_log()
        .line(format_args!("==> {}", record.describe()));
    ctx.steps.report(record);
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
        let started = Utc::now();
        let kind = step.kind.name();
        ctx.run_log().line(format_args!(
            "==> step '{}' ({kind}) attempt {} started at {}",
            step.name,
            attempt + 1,
            started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ));
        ctx.steps
            .report(attempt_record(ctx, step, attempt + 1, started, None));
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
        // A step stopped while the run goes on was stopped because a sibling failed.
        let stopped_because = if ctx.stop.is_stopped() {
            ctx.stop.reason()
        } else {
            "stopped: another step of the run failed".to_string()
        };
        // An attempt that fails as the run is being stopped counts as stopped.
        let stopped = StepEnd::Stopped;
        let recorded = match &end {
            StepEnd::Failed(..) if token.is_cancelled() => &stopped,
            other => other,
        };
        report_end(
            ctx,
            attempt_record(
                ctx,
                step,
                attempt + 1,
                started,
                Some((recorded, Some(stopped_because))),
            ),
        );
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
