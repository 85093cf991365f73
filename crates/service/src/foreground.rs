//! `dwsched job run`: one run of a job in the foreground, without a service, recorded
//! like any other.
//!
//! The process joins the nodes for the length of the run, under a node id of its own:
//! it registers, heartbeats, answers `STOP` requests for its run and is rescued like
//! any node if it dies. Its request goes through the queue, reserved for it
//! (`NewRequest::reserved_for`), so the per-mapref exclusion holds across every node:
//! while another run of the job is in progress, or an older request for it waits, it
//! waits too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Duration;

use chrono::Utc;
use dwsched_model::{
    Claim, NewRequest, RequestClass, RequestStatus, RequestType, Run, RunFilter, RunPayload,
    RunStatus,
};
use dwsched_store::Store;
use tokio::task::JoinSet;

use crate::membership::NodeError;
use crate::ops::OpError;
use crate::state::{ActiveRun, NodeConfig, Shared, Shutdown};

/// Why a foreground run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ForegroundError {
    #[error(transparent)]
    Op(#[from] OpError),
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Interrupted while it waited for the job to be free; its request is cancelled.
    #[error("interrupted while waiting for job '{0}' to be free; the request was cancelled")]
    Interrupted(String),
}

/// How a foreground run ended.
#[derive(Debug, Clone)]
pub struct ForegroundOutcome {
    pub request_id: String,
    /// The run, as recorded (`None` when none was opened: a flow that could not be
    /// read, say).
    pub run: Option<Run>,
    /// The request's result (`RESULT_PAYLOAD`).
    pub result: Option<String>,
}

impl ForegroundOutcome {
    /// Whether the run completed (`PC`).
    pub fn completed(&self) -> bool {
        self.run
            .as_ref()
            .is_some_and(|r| r.status == Some(RunStatus::Completed))
    }
}

/// Runs job `mapref` once, as `payload` asks, on this process. `interrupts.graceful`
/// stops the run (it ends `ST`), or cancels its request while it waits;
/// `interrupts.immediate` stops it at once (`force`).
pub async fn run_once(
    store: Arc<dyn Store>,
    config: NodeConfig,
    mapref: &str,
    payload: RunPayload,
    interrupts: Shutdown,
) -> Result<ForegroundOutcome, ForegroundError> {
    crate::ops::check_run(&*store, mapref, &payload).await?;
    let (shared, _scheduler) = crate::node::shared_state(store, config, Shutdown::default());
    if !crate::node::register_when_reachable(&shared).await? {
        return Err(ForegroundError::Interrupted(mapref.to_string()));
    }
    let mut tasks = JoinSet::new();
    tasks.spawn(crate::membership::heartbeat_loop(shared.clone()));
    tasks.spawn(crate::node::watch_loop(shared.clone()));
    tasks.spawn(crate::control::control_loop(shared.clone()));
    let outcome = queue_and_run(&shared, mapref, payload, &interrupts).await;
    crate::node::leave(&shared, tasks).await;
    outcome
}

async fn queue_and_run(
    shared: &Arc<Shared>,
    mapref: &str,
    payload: RunPayload,
    interrupts: &Shutdown,
) -> Result<ForegroundOutcome, ForegroundError> {
    let node_id = shared.config.node_id.clone();
    let request_id = foreground_key();
    let request = NewRequest {
        dedupe_key: Some(format!(
            "{}{request_id}",
            dwsched_model::FOREGROUND_KEY_PREFIX
        )),
        reserved_for: Some(node_id.clone()),
        ..NewRequest::new(mapref, RequestType::Immediate, payload.to_json())
    };
    let queued = shared
        .store
        .enqueue(&request, Utc::now())
        .await
        .map_err(OpError::from)?;
    let request_id = queued.request_id().to_string();
    tracing::info!(request = %request_id, "request {request_id} queued for job {mapref}");
    let mut told_waiting = false;
    let claimed = loop {
        let claim = Claim {
            node: node_id.clone(),
            class: RequestClass::Reserved,
            limit: 1,
            now: Utc::now(),
            lease: shared.config.lease,
        };
        match shared.store.claim_requests(&claim).await {
            Ok(mut claimed) if !claimed.is_empty() => break claimed.remove(0),
            Ok(_) => {
                if !told_waiting {
                    told_waiting = true;
                    tracing::warn!(
                        "{}; waiting for it to be free (Ctrl-C cancels)",
                        busy_reason(&*shared.store, mapref).await
                    );
                }
            }
            Err(err) => {
                shared.health.failed("claiming the run request", &err);
                // The claim may have committed though its answer was lost.
                if let Ok(Some(held)) = shared.store.get_request(&request_id).await
                    && held.status == Some(RequestStatus::Processing)
                    && held.claimed_by.as_deref() == Some(node_id.as_str())
                {
                    break held;
                }
            }
        }
        tokio::select! {
            _ = shared.wake_claimer.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = interrupts.graceful.cancelled() => {
                let cancelled = crate::ops::cancel_request(&*shared.store, &request_id, Utc::now()).await;
                if cancelled.is_ok() {
                    return Err(ForegroundError::Interrupted(mapref.to_string()));
                }
                // Claimed meanwhile: it runs, and is stopped at once below.
            }
        }
    };
    let active = ActiveRun {
        request_id: claimed.request_id.clone(),
        prcid: Arc::new(AtomicI64::new(0)),
        stop: dwsched_flow::StopSignal::new(),
        requeue: Arc::new(AtomicBool::new(false)),
    };
    shared
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(mapref.to_string(), active.clone());
    let stop = active.stop.clone();
    let (first, second) = (interrupts.graceful.clone(), interrupts.immediate.clone());
    let stopper = tokio::spawn(async move {
        first.cancelled().await;
        stop.stop("stopped by an interrupt of `dwsched job run`", false);
        second.cancelled().await;
        stop.stop("stopped by an interrupt of `dwsched job run`", true);
    });
    let claimed_id = claimed.request_id.clone();
    crate::runner::process(shared, claimed, active, None).await;
    stopper.abort();
    shared.forget_run(mapref, &claimed_id);
    let filter = RunFilter {
        mapref: Some(mapref.to_string()),
        request_id: Some(request_id.clone()),
        limit: 1,
        ..RunFilter::default()
    };
    let run = shared
        .store
        .list_runs(&filter)
        .await
        .map_err(OpError::from)?
        .into_iter()
        .next();
    let result = shared
        .store
        .get_request(&request_id)
        .await
        .map_err(OpError::from)?
        .and_then(|r| r.result_payload);
    Ok(ForegroundOutcome {
        request_id,
        run,
        result,
    })
}

/// A key unique to this run's request.
fn foreground_key() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

/// Why the job is not free: its run in progress, or an older request.
async fn busy_reason(store: &dyn Store, mapref: &str) -> String {
    let filter = RunFilter {
        mapref: Some(mapref.to_string()),
        status: Some(RunStatus::InProgress),
        limit: 1,
        ..RunFilter::default()
    };
    match store.list_runs(&filter).await {
        Ok(runs) if !runs.is_empty() => format!(
            "run {} of {mapref} is in progress on node {}",
            runs[0].prcid,
            runs[0].node.as_deref().unwrap_or("?")
        ),
        _ => format!("an earlier request for {mapref} is queued or being processed"),
    }
}
