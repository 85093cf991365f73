//! Control requests (`STOP`, `CANCEL`, `REFRESH_SCHEDULE`, and types dwsched does not
//! know) on a path of their own, so that they never wait behind runs.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use dwsched_model::{
    Claim, Request, RequestClass, RequestStatus, RequestType, RunFilter, RunStatus, StopPayload,
    payload::parse_cancel_payload,
};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::health::{Backoff, retry};
use crate::state::{SchedulerCommand, Shared};

/// How a control request ends.
enum Answer {
    Complete(RequestStatus, Value),
    /// Not for this node (the run is elsewhere): back to the queue for a while.
    Release,
}

fn done(result: Value) -> Answer {
    Answer::Complete(RequestStatus::Done, result)
}

fn failed(result: Value) -> Answer {
    Answer::Complete(RequestStatus::Failed, result)
}

pub(crate) async fn control_loop(shared: std::sync::Arc<Shared>) {
    let mut backoff = Backoff::default();
    // Set when a claim failed without an answer: it may have committed all the same.
    // The requests held are also checked once a lease, whatever left them.
    let mut unanswered = false;
    let mut checked = std::time::Instant::now();
    loop {
        let now = Utc::now();
        let claim = Claim {
            node: shared.config.node_id.clone(),
            class: RequestClass::Control,
            limit: 32,
            now,
            lease: shared.config.lease,
        };
        let mut delay = shared.config.poll_interval;
        // Requests are answered one after another, so any this node holds before its
        // claim were taken by a claim whose answer was lost.
        if unanswered || checked.elapsed() >= shared.config.lease {
            match shared
                .store
                .held_requests(&claim.node, RequestClass::Control)
                .await
            {
                Ok(requests) => {
                    unanswered = false;
                    checked = std::time::Instant::now();
                    if !requests.is_empty() {
                        tracing::warn!(
                            "this node holds {} control requests it was not answering (a claim whose answer was lost); answering them",
                            requests.len()
                        );
                    }
                    for request in requests {
                        handle(&shared, request).await;
                    }
                }
                Err(err) => shared
                    .health
                    .failed("reading the requests this node holds", &err),
            }
        }
        if !unanswered {
            match shared.store.claim_requests(&claim).await {
                Ok(requests) => {
                    shared.health.ok();
                    backoff.reset();
                    for request in requests {
                        handle(&shared, request).await;
                    }
                }
                Err(err) => {
                    shared.health.failed("claiming control requests", &err);
                    unanswered = true;
                }
            }
        }
        if unanswered {
            delay = backoff.next_delay();
        }
        tokio::select! {
            _ = shared.wake_control.notified() => {}
            _ = tokio::time::sleep(delay) => {}
            _ = shared.finished.cancelled() => return,
        }
    }
}

async fn handle(shared: &Shared, request: Request) {
    let id = request.request_id.clone();
    let node_id = shared.config.node_id.as_str();
    let answer = answer(shared, &request).await;
    let give_up = &shared.shutdown.immediate;
    let written = match answer {
        Answer::Complete(status, result) => {
            if status == RequestStatus::Failed {
                tracing::warn!(request = %id, "{} request {id} for {} failed: {result}", request.request_type, request.mapref);
            }
            let text = result.to_string();
            retry(
                &shared.health,
                "completing a control request",
                give_up,
                || {
                    shared
                        .store
                        .complete_request(&id, Some(node_id), status, &text, Utc::now())
                },
            )
            .await
        }
        Answer::Release => {
            let later = Utc::now() + chrono::Duration::milliseconds(500);
            retry(
                &shared.health,
                "returning a control request",
                give_up,
                || {
                    shared
                        .store
                        .release_request(&id, Some(node_id), Some(later))
                },
            )
            .await
        }
    };
    if let Some(Err(err)) = written {
        tracing::error!(request = %id, "could not record the answer to request {id}: {err}");
    }
}

async fn answer(shared: &Shared, request: &Request) -> Answer {
    let mapref = request.mapref.as_str();
    let payload = request.payload.as_deref();
    match &request.request_type {
        RequestType::Stop => {
            let stop = match StopPayload::parse(payload) {
                Ok(stop) => stop,
                Err(err) => {
                    return failed(json!({ "status": "FAILED", "error": err.to_string() }));
                }
            };
            stop_run(shared, request, stop.force).await
        }
        RequestType::Cancel => {
            let target = match parse_cancel_payload(payload) {
                Ok(target) => target,
                Err(err) => {
                    return failed(json!({ "status": "FAILED", "error": err.to_string() }));
                }
            };
            let result = json!({
                "status": "CANCELLED",
                "message": format!("cancelled by CANCEL request {}", request.request_id),
            })
            .to_string();
            match shared
                .store
                .cancel_request(&target, &result, Utc::now())
                .await
            {
                Ok(true) => done(
                    json!({ "status": "DONE", "message": format!("request {target} cancelled") }),
                ),
                Ok(false) => {
                    let state = match shared.store.get_request(&target).await {
                        Ok(Some(r)) => format!(
                            "is {}",
                            r.status.map_or("in an unknown status", |s| s.as_str())
                        ),
                        Ok(None) => "does not exist".to_string(),
                        Err(err) => format!("could not be read: {err}"),
                    };
                    failed(json!({
                        "status": "FAILED",
                        "error": format!("request {target} {state}; only NEW requests can be cancelled"),
                    }))
                }
                Err(err) => failed(json!({ "status": "FAILED", "error": err.to_string() })),
            }
        }
        RequestType::RefreshSchedule => {
            if !shared.leading.load(Ordering::SeqCst) {
                // The node that fires the schedules syncs them; the claim leaves this
                // request to it while its lease is valid.
                return Answer::Release;
            }
            let (reply, answer) = oneshot::channel();
            if shared
                .scheduler
                .send(SchedulerCommand::Refresh(reply))
                .await
                .is_err()
            {
                return Answer::Release;
            }
            match tokio::time::timeout(Duration::from_secs(120), answer).await {
                Ok(Ok(Ok(report))) => done(json!({
                    "status": "DONE",
                    "message": format!(
                        "schedules synchronised: {} total, {} added, {} changed, {} removed, {} invalid",
                        report.total, report.added, report.changed, report.removed, report.invalid
                    ),
                })),
                Ok(Ok(Err(error))) => failed(json!({ "status": "FAILED", "error": error })),
                _ => Answer::Release,
            }
        }
        // Only a type spelled in another case gets here: the run claim matches the
        // upper-case names exactly.
        RequestType::Immediate
        | RequestType::History
        | RequestType::Report
        | RequestType::FileUpload => failed(json!({
            "status": "FAILED",
            "error": format!(
                "request type of '{mapref}' is not written in upper case; dwsched runs only \
                 IMMEDIATE, HISTORY, REPORT and FILE_UPLOAD spelled so"
            ),
        })),
        RequestType::Unknown(kind) => failed(json!({
            "status": "FAILED",
            "error": format!(
                "unknown request type '{kind}' for '{mapref}'; dwsched handles IMMEDIATE, HISTORY, REPORT, FILE_UPLOAD, STOP, CANCEL and REFRESH_SCHEDULE"
            ),
        })),
    }
}

/// Stops the running run of a mapref: here when it runs here; for another node, the
/// request goes back to the queue for that node to take.
async fn stop_run(shared: &Shared, request: &Request, force: bool) -> Answer {
    let mapref = request.mapref.as_str();
    let local = shared
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(mapref)
        .cloned();
    if let Some(run) = local {
        let prcid = run.prcid.load(Ordering::SeqCst);
        run.stop.stop(
            format!("stopped by STOP request {}", request.request_id),
            force,
        );
        tracing::info!(
            mapref,
            prcid,
            "STOP request {}: stopping run {prcid} of {mapref}",
            request.request_id
        );
        let message = if prcid > 0 {
            format!(
                "stopping run {prcid} of {mapref} (request {})",
                run.request_id
            )
        } else {
            format!(
                "stopping request {} of {mapref} before its run starts",
                run.request_id
            )
        };
        return done(json!({ "status": "DONE", "message": message, "prcid": prcid }));
    }
    let filter = RunFilter {
        mapref: Some(mapref.to_string()),
        status: Some(RunStatus::InProgress),
        limit: 10,
        ..RunFilter::default()
    };
    match shared.store.list_runs(&filter).await {
        Ok(runs) => match runs
            .iter()
            .find(|r| r.node.as_deref() != Some(shared.config.node_id.as_str()))
        {
            Some(elsewhere) => {
                tracing::debug!(
                    mapref,
                    "STOP for {mapref}: its run {} is on node {:?}",
                    elsewhere.prcid,
                    elsewhere.node
                );
                Answer::Release
            }
            None => done(json!({
                "status": "DONE",
                "message": format!("no run of {mapref} is in progress; nothing to stop"),
            })),
        },
        Err(err) => {
            shared.health.failed("looking for a run to stop", &err);
            Answer::Release
        }
    }
}
