//! A worker: one claimed `IMMEDIATE` or `HISTORY` request, from its payload to its
//! runs in `DMS_PRCLOG` and the request's result.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use dwsched_flow::{Flow, RunContext, RunOutcome, RunReport, run_flow};
use dwsched_model::{
    Completion, ErrorType, FinishRun, FlowToRun, HistoryPayload, JobErrorEntry, JobFlow,
    JobLogEntry, NewRequest, NewRun, Request, RequestStatus, RequestType, RunFilter, RunParams,
    RunPayload, RunStatus, RunWrite, RunWritten, Trigger,
};
use serde_json::{Value, json};

use crate::health::retry;
use crate::resolve::{flow_of, resolve_connections};
use crate::state::{ActiveRun, Shared};

/// One run to make: a business date and its parameters.
struct RunSpec {
    run_date: NaiveDate,
    params: RunParams,
    trigger: Option<Trigger>,
    /// Run the flow from this step (`enqueue --from-step`).
    from_step: Option<String>,
}

/// How a request ends.
pub(crate) enum Disposition {
    Complete(RequestStatus, Value),
    /// The node stopped the run for its own shutdown: back to the queue.
    Requeue,
    /// The database stayed unreachable through an immediate shutdown; the request stays
    /// claimed and is rescued by the next start or another node.
    Abandon,
}

/// What one run ended with.
#[derive(Clone)]
pub(crate) struct RunResult {
    pub prcid: i64,
    pub run_date: NaiveDate,
    pub status: RunStatus,
    pub msg: Option<String>,
}

impl RunResult {
    fn json(&self) -> Value {
        json!({
            "prcid": self.prcid,
            "run_date": self.run_date.to_string(),
            "status": self.status.as_str(),
            "msg": self.msg,
        })
    }
}

fn failed(mapref: &str, error: impl Into<String>) -> Disposition {
    Disposition::Complete(
        RequestStatus::Failed,
        json!({ "status": "FAILED", "mapref": mapref, "error": error.into() }),
    )
}

/// Runs a claimed request. `prefetched` is its job's flow when the claimer read it
/// with the claim (`None`: read it here).
pub(crate) async fn process(
    shared: &Shared,
    request: Request,
    active: ActiveRun,
    prefetched: Option<FlowToRun>,
) {
    let (disposition, last_run) = work(shared, &request, &active, prefetched).await;
    let id = request.request_id.as_str();
    let node_id = shared.config.node_id.as_str();
    // These writes wait out an outage; only an immediate shutdown gives up on them.
    let give_up = &shared.shutdown.immediate;
    match disposition {
        Disposition::Complete(status, result) => {
            let completion = Completion {
                request_id: id.to_string(),
                claimed_by: Some(node_id.to_string()),
                status,
                result_payload: result.to_string(),
                completed_at: Utc::now(),
            };
            // The last run's end and the request's end commit together.
            let mut writes = Vec::new();
            if let Some(ended) = &last_run {
                writes.push(RunWrite::Finish(ended.finish.clone()));
            }
            writes.push(RunWrite::Complete(completion));
            let done = retry(&shared.health, "completing a request", give_up, || {
                shared.journal.write_all(writes.clone())
            })
            .await;
            match (done, last_run) {
                (None, Some(ended)) => ended.unrecorded(),
                (None, None) => {}
                (Some(Err(err)), last_run) => {
                    tracing::error!(request = id, "could not complete request {id}: {err}");
                    if let Some(ended) = last_run {
                        ended.after_close(shared, false).await;
                    }
                }
                (Some(Ok(written)), last_run) => {
                    if let Some(ended) = last_run {
                        let closed = written.first() == Some(&RunWritten::Finished(true));
                        ended.after_close(shared, closed).await;
                    }
                }
            }
        }
        Disposition::Requeue => {
            if let Some(ended) = last_run
                && close(shared, ended).await.is_none()
            {
                return;
            }
            let released = retry(
                &shared.health,
                "returning a request to the queue",
                give_up,
                || shared.store.release_request(id, Some(node_id), None),
            )
            .await;
            if let Some(Err(err)) = released {
                tracing::error!(
                    request = id,
                    "could not return request {id} to the queue: {err}"
                );
            }
        }
        Disposition::Abandon => {
            if let Some(ended) = last_run {
                ended.unrecorded();
            }
        }
    }
}

/// Makes the request's runs. The end of the last run is returned unwritten, to be
/// written with the request's own end.
async fn work(
    shared: &Shared,
    request: &Request,
    active: &ActiveRun,
    prefetched: Option<FlowToRun>,
) -> (Disposition, Option<Ended>) {
    let mapref = request.mapref.as_str();
    // A request claimed ahead waited for a worker slot: meanwhile the node may have
    // begun to stop, or the request been stopped.
    if shared.shutdown.graceful.is_cancelled() || active.requeue.load(Ordering::SeqCst) {
        return (Disposition::Requeue, None);
    }
    if active.stop.is_stopped() {
        let error = format!("{} before its run started", active.stop.reason());
        return (failed(mapref, error), None);
    }
    match request.request_type {
        RequestType::Report => return crate::reports::work(shared, request, active).await,
        RequestType::FileUpload => return crate::uploads::work(shared, request, active).await,
        _ => {}
    }
    let today = Utc::now()
        .with_timezone(&shared.config.default_zone)
        .date_naive();
    let RunPlan {
        specs,
        continue_on_failure,
    } = match plan_runs(request, today) {
        Ok(plan) => plan,
        Err(error) => return (failed(mapref, error), None),
    };
    let give_up = &shared.shutdown.immediate;
    let (flow_row, followed) = match prefetched {
        Some(found) => (found.flow, found.followed),
        None => match retry(&shared.health, "reading a job's flow", give_up, || {
            shared.store.current_flow(mapref)
        })
        .await
        {
            None => return (Disposition::Abandon, None),
            Some(Err(err)) => {
                let error = format!("cannot read the flow of job '{mapref}': {err}");
                return (failed(mapref, error), None);
            }
            Some(Ok(None)) => {
                let error = format!(
                    "job '{mapref}' does not exist or has no current flow (DMS_JOBFLW CURFLG='Y')"
                );
                return (failed(mapref, error), None);
            }
            // Not known: the schedules that follow it are read when a run succeeds.
            Some(Ok(Some(flow))) => (flow, true),
        },
    };
    let flow = match flow_of(mapref, &flow_row) {
        Ok(flow) => flow,
        Err(error) => return (failed(mapref, error), None),
    };
    // A request claimed before (its node died or stopped) keeps the runs that
    // completed then: they are not run again.
    let earlier = match completed_earlier(shared, request).await {
        Some(done) => done,
        None => return (Disposition::Abandon, None),
    };
    let count = specs.len();
    let mut results: Vec<RunResult> = Vec::with_capacity(count);
    let mut last_run = None;
    for (index, spec) in specs.into_iter().enumerate() {
        if active.stop.is_stopped() {
            break;
        }
        if let Some(done) = earlier.done_before(index, spec.run_date) {
            results.push(RunResult {
                run_date: spec.run_date,
                ..done
            });
            continue;
        }
        let params = RunParams {
            // A HISTORY truncates once, before its first date.
            truncate: spec.params.truncate && index == 0,
            ..spec.params.clone()
        };
        let spec = RunSpec { params, ..spec };
        let ended =
            match execute_run(shared, request, active, &flow_row, &flow, &spec, followed).await {
                None => return (Disposition::Abandon, None),
                Some(Err(not_opened)) => {
                    results.push(not_opened);
                    break;
                }
                Some(Ok(ended)) => ended,
            };
        let status = ended.result.status;
        results.push(ended.result.clone());
        let go_on =
            status == RunStatus::Completed || (continue_on_failure && status == RunStatus::Failed);
        if go_on && index + 1 < count && !active.stop.is_stopped() {
            // More dates follow: this run's end is written before the next starts.
            if close(shared, ended).await.is_none() {
                return (Disposition::Abandon, None);
            }
        } else {
            last_run = Some(ended);
            break;
        }
    }
    (conclude(request, active, &results), last_run)
}

/// How the request ends, from its runs' results.
fn conclude(request: &Request, active: &ActiveRun, results: &[RunResult]) -> Disposition {
    let mapref = request.mapref.as_str();
    let runs: Vec<Value> = results.iter().map(RunResult::json).collect();
    let last = results.last();
    if active.requeue.load(Ordering::SeqCst) && last.is_some_and(|r| r.status == RunStatus::Stopped)
    {
        return Disposition::Requeue;
    }
    // The last run that did not complete (with --continue-on-failure, later runs may
    // have completed after it).
    match results
        .iter()
        .rev()
        .find(|r| r.status != RunStatus::Completed)
    {
        Some(last) => {
            let what = match request.request_type {
                RequestType::History => format!("the run for {} ", last.run_date),
                _ => "the run ".to_string(),
            };
            let error = format!(
                "{what}(PRCID {}) ended {}: {}",
                last.prcid,
                last.status,
                last.msg.as_deref().unwrap_or("no message")
            );
            Disposition::Complete(
                RequestStatus::Failed,
                json!({ "status": "FAILED", "mapref": mapref, "error": error, "runs": runs }),
            )
        }
        _ => Disposition::Complete(
            RequestStatus::Done,
            json!({ "status": "DONE", "mapref": mapref, "runs": runs }),
        ),
    }
}

/// The runs of a request that completed in its earlier attempts.
struct Earlier(Vec<RunResult>);

impl Earlier {
    /// The completed run of the `index`-th date, `date`. Runs record their business
    /// date (`RUN_DATE`); a run from before that column, which has none, is matched
    /// by position, as dates run oldest first.
    fn done_before(&self, index: usize, date: NaiveDate) -> Option<RunResult> {
        if self.0.iter().all(|r| r.run_date != NaiveDate::MIN) {
            self.0.iter().find(|r| r.run_date == date).cloned()
        } else {
            self.0.get(index).cloned()
        }
    }
}

/// The runs of `request` that completed (`PC`) in earlier attempts, oldest first;
/// `None` when the database stayed unreachable through an immediate shutdown.
async fn completed_earlier(shared: &Shared, request: &Request) -> Option<Earlier> {
    if request.attempts <= 1 {
        return Some(Earlier(Vec::new()));
    }
    let filter = RunFilter {
        mapref: Some(request.mapref.clone()),
        status: Some(RunStatus::Completed),
        request_id: Some(request.request_id.clone()),
        limit: 100_000,
        since: None,
    };
    let give_up = &shared.shutdown.immediate;
    let runs = match retry(
        &shared.health,
        "reading a request's earlier runs",
        give_up,
        || shared.store.list_runs(&filter),
    )
    .await?
    {
        Ok(runs) => runs,
        Err(err) => {
            tracing::error!(request = %request.request_id, "could not read the earlier runs of request {}: {err}; running it from its start", request.request_id);
            Vec::new()
        }
    };
    if !runs.is_empty() {
        tracing::info!(
            request = %request.request_id,
            "request {} resumes after {} runs completed in an earlier attempt",
            request.request_id,
            runs.len()
        );
    }
    Some(Earlier(
        runs.iter()
            .rev()
            .map(|run| RunResult {
                prcid: run.prcid,
                run_date: run.run_date.unwrap_or(NaiveDate::MIN),
                status: RunStatus::Completed,
                msg: run.msg.clone(),
            })
            .collect(),
    ))
}

/// The runs a request asks for, and whether a failed one ends the request
/// (`HISTORY`'s `continue_on_failure`).
struct RunPlan {
    specs: Vec<RunSpec>,
    continue_on_failure: bool,
}

fn plan_runs(request: &Request, today: NaiveDate) -> Result<RunPlan, String> {
    let payload = request.payload.as_deref();
    match &request.request_type {
        RequestType::Immediate => {
            let p = RunPayload::parse(payload).map_err(|e| e.to_string())?;
            Ok(RunPlan {
                specs: vec![RunSpec {
                    run_date: p.params.run_date.unwrap_or(today),
                    params: p.params,
                    trigger: p.trigger,
                    from_step: p.from_step,
                }],
                continue_on_failure: false,
            })
        }
        RequestType::History => {
            let h = HistoryPayload::parse(payload).map_err(|e| e.to_string())?;
            Ok(RunPlan {
                specs: h
                    .dates()
                    .map(|date| RunSpec {
                        run_date: date,
                        params: RunParams {
                            run_date: Some(date),
                            ..h.params.clone()
                        },
                        trigger: None,
                        from_step: None,
                    })
                    .collect(),
                continue_on_failure: h.continue_on_failure,
            })
        }
        other => Err(format!("request type {other} does not start runs")),
    }
}

/// A run that has ended, its end not yet written.
pub(crate) struct Ended {
    result: RunResult,
    finish: FinishRun,
    request_id: String,
    trigger: Option<Trigger>,
    /// Whether enabled schedules may follow the job (`false` only when known not to).
    followed: bool,
    seconds: f64,
}

impl Ended {
    /// What follows the end of a run once it is written (`closed`: it was still
    /// `IP`): its log line, metrics, alert, schedule result and dependent runs.
    async fn after_close(self, shared: &Shared, closed: bool) {
        let Ended {
            result,
            finish,
            request_id,
            trigger,
            followed,
            seconds,
        } = self;
        let (prcid, status, mapref) = (result.prcid, result.status, finish.log.mapref.as_str());
        if !closed {
            tracing::warn!(
                prcid,
                "run {prcid} of {mapref} was already closed (rescued as abandoned); its logs were added"
            );
        }
        metrics::counter!(crate::telemetry::RUNS_FINISHED, "status" => status.as_str())
            .increment(1);
        metrics::histogram!(crate::telemetry::RUN_DURATION, "status" => status.as_str())
            .record(seconds);
        if status == RunStatus::Failed {
            shared.alerts.send(json!({
                "event": "run_failed",
                "mapref": mapref,
                "prcid": prcid,
                "request_id": request_id,
                "run_date": result.run_date.to_string(),
                "message": result.msg,
                "node": shared.config.node_id,
                "at": dwsched_schedule::format_slot(finish.ended_at),
            }));
        }
        match &result.msg {
            None => tracing::info!(
                prcid,
                mapref,
                "run {prcid} of {mapref} ended {status} in {seconds:.2} s"
            ),
            Some(m) => tracing::warn!(
                prcid,
                mapref,
                "run {prcid} of {mapref} ended {status} in {seconds:.2} s: {m}"
            ),
        }
        if let Some(trigger) = &trigger {
            record_schedule_result(
                shared,
                mapref,
                trigger.jobschid(),
                finish.ended_at,
                status == RunStatus::Completed,
            )
            .await;
        }
        if status == RunStatus::Completed && followed {
            fire_dependents(shared, mapref, prcid, result.run_date).await;
        }
    }

    /// The database stayed unreachable through an immediate shutdown.
    fn unrecorded(&self) {
        let (prcid, mapref, status) = (
            self.result.prcid,
            &self.finish.log.mapref,
            self.result.status,
        );
        tracing::error!(
            prcid,
            "run {prcid} of {mapref} ended {status} but the database stayed unreachable; it will be closed as FL by the next rescue"
        );
    }
}

/// Writes a run's end on its own and does what follows it. `None` when the database
/// could not be reached before an immediate shutdown.
async fn close(shared: &Shared, ended: Ended) -> Option<RunResult> {
    let give_up = &shared.shutdown.immediate;
    // The run's end must reach the table: wait out an outage, unless told to stop now.
    let closed = match retry(&shared.health, "closing a run", give_up, || {
        shared.journal.finish(&ended.finish)
    })
    .await
    {
        None => {
            ended.unrecorded();
            return None;
        }
        Some(Err(err)) => {
            let prcid = ended.result.prcid;
            tracing::error!(prcid, "could not record the end of run {prcid}: {err}");
            false
        }
        Some(Ok(closed)) => closed,
    };
    let result = ended.result.clone();
    ended.after_close(shared, closed).await;
    Some(result)
}

/// Makes one run: opens it `IP` and runs the flow. Its end is returned, not written;
/// `Err` is a run that could not be opened, `None` that the database could not be
/// reached before an immediate shutdown.
async fn execute_run(
    shared: &Shared,
    request: &Request,
    active: &ActiveRun,
    flow_row: &JobFlow,
    flow: &Flow,
    spec: &RunSpec,
    followed: bool,
) -> Option<Result<Ended, RunResult>> {
    let config = &shared.config;
    let mapref = request.mapref.as_str();
    let started_at = Utc::now();
    let new_run = NewRun {
        mapref: mapref.to_string(),
        jobid: flow_row.jobid,
        jobflwid: Some(flow_row.jobflwid),
        params: spec.params.params.clone(),
        prclog: spec.params.prclog_text(),
        sessionid: Some(shared.session),
        request_id: Some(request.request_id.clone()),
        node: Some(config.node_id.clone()),
        started_at,
        run_date: Some(spec.run_date),
    };
    let prcid = match open_run(shared, request, active, &new_run).await? {
        Ok(prcid) => prcid,
        Err(not_opened) => return Some(Err(not_opened)),
    };
    let clock = Instant::now();
    // Lateness counts from the fire, which a calendar may have moved off the slot.
    if let Some(Trigger::Schedule { slot, fire, .. }) = &spec.trigger
        && let Ok(due) = DateTime::parse_from_rfc3339(fire.as_deref().unwrap_or(slot))
    {
        let late = (started_at - due.with_timezone(&Utc))
            .num_milliseconds()
            .max(0);
        metrics::histogram!(crate::telemetry::FIRE_LATENESS).record(late as f64 / 1000.0);
    }
    let log_entry = |totals: dwsched_flow::RowTotals, at: DateTime<Utc>| JobLogEntry {
        prcdt: at,
        mapref: mapref.to_string(),
        jobid: flow_row.jobid,
        srcrows: totals.source,
        trgrows: totals.target,
        errrows: totals.errors,
        prcid: Some(prcid),
        sessionid: Some(shared.session),
    };
    let mut joblogid = None;
    let report = match resolve_connections(shared, flow).await {
        Ok((connections, mappings)) => {
            let progress = Arc::new(dwsched_flow::RunProgress::default());
            let keep_log_current = !mappings.is_empty();
            let (steps, step_records) = dwsched_flow::StepLog::channel();
            let ctx = RunContext {
                prcid,
                mapref: mapref.to_string(),
                run_date: spec.run_date,
                params: spec.params.params.clone(),
                truncate: spec.params.truncate,
                log_dir: config.log_dir.clone(),
                connections,
                mappings,
                progress: progress.clone(),
                steps,
                from_step: spec.from_step.clone(),
                stop: active.stop.clone(),
                supervisor: dwsched_flow::supervisor::this_executable(),
            };
            // The context goes with the flow, so the step records end when it does.
            let running = async move { run_flow(flow, &ctx).await };
            let running = async {
                if keep_log_current {
                    let write = |totals, row| {
                        let entry = log_entry(totals, Utc::now());
                        async move { shared.store.write_job_log_progress(&entry, row).await }
                    };
                    keep_current(running, &progress, write, &mut joblogid).await
                } else {
                    running.await
                }
            };
            let (report, ()) = tokio::join!(
                running,
                crate::steps::record_steps(shared, mapref, step_records)
            );
            report
        }
        Err(message) => RunReport::failed_before_start(message),
    };
    let ended_at = Utc::now();
    let (status, msg) = match &report.outcome {
        RunOutcome::Completed => (RunStatus::Completed, None),
        RunOutcome::Failed { step, message } if step.is_empty() => {
            (RunStatus::Failed, Some(message.clone()))
        }
        RunOutcome::Failed { step, message } => (
            RunStatus::Failed,
            Some(format!("step '{step}' failed: {message}")),
        ),
        RunOutcome::Stopped { message } => (RunStatus::Stopped, Some(message.clone())),
    };
    let log = log_entry(report.totals, ended_at);
    let finish = FinishRun {
        joblogid,
        prcid,
        status,
        msg: msg.clone(),
        ended_at,
        errors: error_rows(&report, status, msg.as_deref(), &log),
        log,
    };
    Some(Ok(Ended {
        result: RunResult {
            prcid,
            run_date: spec.run_date,
            status,
            msg,
        },
        finish,
        request_id: request.request_id.clone(),
        trigger: spec.trigger.clone(),
        followed,
        seconds: clock.elapsed().as_secs_f64(),
    }))
}

/// Opens a run `IP` in `DMS_PRCLOG` for `active`; its `PRCID`, or how it ended
/// unopened. `None`: not to be run here (another node holds the request now), or the
/// database could not be reached before an immediate shutdown.
pub(crate) async fn open_run(
    shared: &Shared,
    request: &Request,
    active: &ActiveRun,
    new_run: &NewRun,
) -> Option<Result<i64, RunResult>> {
    let give_up = &shared.shutdown.immediate;
    let run_date = new_run.run_date.unwrap_or(NaiveDate::MIN);
    let prcid = match retry(&shared.health, "opening a run", give_up, || {
        shared.journal.open(new_run)
    })
    .await?
    {
        Ok(prcid) => prcid,
        Err(err @ dwsched_store::StoreError::ClaimLost { .. }) => {
            // Rescued while this node could not heartbeat: the request is another
            // node's now, and this node must not run it too.
            tracing::warn!(request = %request.request_id, "{err}; not running it here");
            return None;
        }
        Err(err) => {
            return Some(Err(RunResult {
                prcid: 0,
                run_date,
                status: RunStatus::Failed,
                msg: Some(format!("could not open the run: {err}")),
            }));
        }
    };
    active.prcid.store(prcid, Ordering::SeqCst);
    shared.stats.runs_started.fetch_add(1, Ordering::Relaxed);
    let mapref = new_run.mapref.as_str();
    tracing::info!(
        prcid,
        mapref,
        request = %request.request_id,
        run_date = %run_date,
        "run {prcid} of {mapref} started"
    );
    Some(Ok(prcid))
}

/// The `DMS_PRCLOG` run of a request that runs no flow (a DWTOOL report or file
/// upload): a run of its mapref, with no job, and `prclog` as its parameters' text.
pub(crate) fn flowless_run(
    shared: &Shared,
    request: &Request,
    prclog: String,
    started_at: DateTime<Utc>,
    run_date: NaiveDate,
) -> NewRun {
    NewRun {
        mapref: request.mapref.clone(),
        jobid: None,
        jobflwid: None,
        params: Default::default(),
        prclog,
        sessionid: Some(shared.session),
        request_id: Some(request.request_id.clone()),
        node: Some(shared.config.node_id.clone()),
        started_at,
        run_date: Some(run_date),
    }
}

/// How a run made by [`flowless_run`] ended, unwritten: its `DMS_JOBLOG` totals, a
/// `ROW` error for each of `rejected` (message, database message, key) and a `JOB`
/// error when it failed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn flowless_end(
    shared: &Shared,
    request: &Request,
    prcid: i64,
    run_date: NaiveDate,
    status: RunStatus,
    msg: Option<String>,
    totals: dwsched_flow::RowTotals,
    rejected: Vec<(String, String, String)>,
    seconds: f64,
) -> Ended {
    let ended_at = Utc::now();
    let log = JobLogEntry {
        prcdt: ended_at,
        mapref: request.mapref.clone(),
        jobid: None,
        srcrows: totals.source,
        trgrows: totals.target,
        errrows: totals.errors,
        prcid: Some(prcid),
        sessionid: Some(shared.session),
    };
    let mut errors: Vec<JobErrorEntry> = rejected
        .into_iter()
        .map(|(errmsg, db, key)| job_error_row(&log, ErrorType::Row, errmsg, Some(db), Some(key)))
        .collect();
    if status == RunStatus::Failed {
        let message = msg.clone().unwrap_or_else(|| "the run failed".into());
        errors.push(job_error_row(&log, ErrorType::Job, message, None, None));
    }
    Ended {
        result: RunResult {
            prcid,
            run_date,
            status,
            msg: msg.clone(),
        },
        finish: FinishRun {
            joblogid: None,
            prcid,
            status,
            msg,
            ended_at,
            errors,
            log,
        },
        request_id: request.request_id.clone(),
        trigger: None,
        followed: false,
        seconds,
    }
}

/// The `DMS_JOBERR` row of a failed run (`JOB`), with the keys of its `DMS_JOBLOG` row
/// `log`, which DWTOOL's views join them on.
fn job_error_row(
    log: &JobLogEntry,
    errtyp: ErrorType,
    errmsg: String,
    dberrmsg: Option<String>,
    keyvalue: Option<String>,
) -> JobErrorEntry {
    JobErrorEntry {
        joblogid: None,
        prcdt: log.prcdt,
        errtyp,
        dberrmsg,
        errmsg,
        keyvalue,
        jobid: log.jobid,
        sessionid: log.sessionid,
        prcid: log.prcid,
        mapref: log.mapref.clone(),
    }
}

/// How often a mapping run's `DMS_JOBLOG` row is brought up to date while it runs.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `running` to its end, writing the counts `progress` holds (`write`) whenever
/// they changed, every [`PROGRESS_EVERY`]: the run's `DMS_JOBLOG` row is current while
/// it goes (SPEC §7.1), and its id ends in `joblogid` for the run's end to update. A
/// failed write is logged and retried at the next tick; the run goes on.
async fn keep_current<W, F>(
    running: impl std::future::Future<Output = RunReport>,
    progress: &dwsched_flow::RunProgress,
    write: W,
    joblogid: &mut Option<i64>,
) -> RunReport
where
    W: Fn(dwsched_flow::RowTotals, Option<i64>) -> F,
    F: std::future::Future<Output = dwsched_store::Result<i64>>,
{
    let mut running = std::pin::pin!(running);
    let mut written = dwsched_flow::RowTotals::default();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            report = &mut running => return report,
            _ = tick.tick() => {
                let now = progress.get();
                if now == written && joblogid.is_some() {
                    continue;
                }
                match write(now, *joblogid).await {
                    Ok(id) => {
                        *joblogid = Some(id);
                        written = now;
                    }
                    Err(err) => tracing::warn!("could not write a run's progress to DMS_JOBLOG: {err}"),
                }
            }
        }
    }
}

/// The `DMS_JOBERR` rows of a run: each failed step attempt (`STEP`), each rejected row
/// (`ROW`), and the run's own failure (`JOB`), with the job, session, run and mapref of
/// its `DMS_JOBLOG` row `log`, which DWTOOL's views join them on.
fn error_rows(
    report: &RunReport,
    status: RunStatus,
    msg: Option<&str>,
    log: &JobLogEntry,
) -> Vec<JobErrorEntry> {
    let row = |errtyp, errmsg: String, dberrmsg: Option<String>, keyvalue: Option<String>| {
        job_error_row(log, errtyp, errmsg, dberrmsg, keyvalue)
    };
    let mut rows: Vec<JobErrorEntry> = report
        .step_failures
        .iter()
        .map(|f| {
            row(
                ErrorType::Step,
                format!("step '{}' attempt {}: {}", f.step, f.attempt, f.message),
                None,
                None,
            )
        })
        .collect();
    rows.extend(report.row_errors.iter().map(|r| {
        row(
            ErrorType::Row,
            format!("step '{}' rejected a row", r.step),
            Some(r.db_message.clone()),
            Some(r.key.clone()),
        )
    }));
    if status == RunStatus::Failed {
        rows.push(row(
            ErrorType::Job,
            msg.unwrap_or("the run failed").to_string(),
            None,
            None,
        ));
    }
    rows
}

async fn record_schedule_result(
    shared: &Shared,
    mapref: &str,
    jobschid: i64,
    at: DateTime<Utc>,
    succeeded: bool,
) {
    let give_up = &shared.shutdown.immediate;
    let recorded = retry(
        &shared.health,
        "recording a schedule's last run",
        give_up,
        || shared.store.record_schedule_result(jobschid, at, succeeded),
    )
    .await;
    if let Some(Ok(result)) = recorded
        && result.disabled
    {
        let reason = format!(
            "schedule {jobschid} of {mapref} disabled after {} consecutive failed runs (MAXFAIL)",
            result.failures
        );
        tracing::warn!(jobschid, mapref, "{reason}");
        shared.alerts.send(json!({
            "event": "schedule_disabled",
            "jobschid": jobschid,
            "mapref": mapref,
            "failures": result.failures,
            "reason": reason,
            "node": shared.config.node_id,
            "at": dwsched_schedule::format_slot(at),
        }));
    }
}

/// Queues one run of each enabled schedule that follows `mapref`.
async fn fire_dependents(shared: &Shared, mapref: &str, prcid: i64, run_date: NaiveDate) {
    let children = match shared.store.dependent_schedules(mapref).await {
        Ok(children) => children,
        Err(err) => {
            shared.health.failed("reading dependent schedules", &err);
            return;
        }
    };
    let requests: Vec<NewRequest> = children
        .iter()
        // A schedule on a dependency cycle is never fired (its SCHERR says why).
        .filter(|child| child.scherr.is_none())
        .map(|child| {
            let payload = RunPayload {
                params: RunParams {
                    run_date: Some(run_date),
                    ..RunParams::default()
                },
                trigger: Some(Trigger::Dependency {
                    jobschid: child.jobschid,
                    parent_prcid: prcid,
                }),
                from_step: None,
            };
            NewRequest {
                dedupe_key: Some(format!("dep:{}:{prcid}", child.jobschid)),
                ..NewRequest::new(
                    child.mapref.clone(),
                    RequestType::Immediate,
                    payload.to_json(),
                )
            }
        })
        .collect();
    if requests.is_empty() {
        return;
    }
    let give_up = &shared.shutdown.immediate;
    match retry(&shared.health, "queueing dependent runs", give_up, || {
        shared.store.enqueue_many(&requests)
    })
    .await
    {
        Some(Ok(count)) => {
            tracing::info!(
                prcid,
                "run {prcid} of {mapref} succeeded: queued {count} dependent runs"
            );
            shared.wake_claimer.notify_one();
        }
        Some(Err(err)) => tracing::error!("could not queue the runs that follow {mapref}: {err}"),
        None => {}
    }
}
