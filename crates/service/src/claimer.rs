//! The claimer: takes run requests as worker slots free up, claims as many again
//! ahead, and starts a worker (`runner`) for each; on shutdown, drains.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use chrono::Utc;
use dwsched_flow::StopSignal;
use dwsched_model::{Claim, FlowToRun, Request, RequestClass};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::health::Backoff;
use crate::state::{ActiveRun, Shared};

/// How many requests a node holds per worker slot: one running, the rest claimed
/// ahead and waiting for a slot.
const CLAIM_AHEAD_FACTOR: usize = 2;

/// Claims run requests while worker slots are free, and as many again ahead of them,
/// so that a worker that finishes starts its next run without waiting for a claim.
/// Claimed-ahead requests wait for a worker slot (the semaphore); on shutdown, drains.
pub(crate) async fn claim_loop(shared: Arc<Shared>) {
    let mut workers: JoinSet<()> = JoinSet::new();
    let mut backoff = Backoff::default();
    let slots = shared.config.max_workers as usize;
    let worker_slots = Arc::new(Semaphore::new(slots));
    // Set when a claim failed without an answer: it may have committed all the same.
    // The requests held are also checked once a lease, whatever left them.
    let mut unanswered = false;
    let mut checked = Instant::now();
    loop {
        if shared.shutdown.graceful.is_cancelled() {
            break;
        }
        while workers.try_join_next().is_some() {}
        let free = (slots * CLAIM_AHEAD_FACTOR).saturating_sub(workers.len());
        let mut delay = shared.config.poll_interval;
        let check_due = unanswered || checked.elapsed() >= shared.config.lease;
        if check_due && !shared.fenced.load(Ordering::SeqCst) {
            match take_up_unknown(&shared, &mut workers, &worker_slots).await {
                Ok(()) => {
                    unanswered = false;
                    checked = Instant::now();
                }
                Err(err) => {
                    shared
                        .health
                        .failed("reading the requests this node holds", &err);
                    delay = backoff.next_delay();
                }
            }
        }
        if free > 0 && !unanswered && !shared.fenced.load(Ordering::SeqCst) {
            let now = Utc::now();
            let claim = Claim {
                node: shared.config.node_id.clone(),
                class: RequestClass::Runs,
                limit: free as u32,
                now,
                lease: shared.config.lease,
            };
            match shared.store.claim_requests(&claim).await {
                Ok(requests) => {
                    shared.health.ok();
                    backoff.reset();
                    if requests.is_empty() {
                        tracing::debug!("Polling queue for pending requests... none");
                    } else {
                        tracing::info!(
                            claimed = requests.len(),
                            "Polling queue for pending requests..."
                        );
                    }
                    let mut flows = read_flows(&shared, &requests).await;
                    for request in requests {
                        let flow = flows.remove(&request.mapref);
                        start_worker(&shared, &mut workers, &worker_slots, request, flow);
                    }
                }
                Err(err) => {
                    shared.health.failed("claiming requests", &err);
                    unanswered = true;
                    delay = backoff.next_delay();
                }
            }
        }
        tokio::select! {
            _ = shared.wake_claimer.notified() => {}
            _ = tokio::time::sleep(delay) => {}
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
            _ = shared.shutdown.graceful.cancelled() => break,
        }
    }
    drain(&shared, &mut workers).await;
}

/// Starts a worker for each run request this node holds but runs nothing for, such as
/// what a claim took whose answer was lost (the connection dropped at its commit).
/// Left alone, such a request would stay `PROCESSING` under this node's heartbeat, and
/// its job would never run again.
async fn take_up_unknown(
    shared: &Arc<Shared>,
    workers: &mut JoinSet<()>,
    worker_slots: &Arc<Semaphore>,
) -> Result<(), dwsched_store::StoreError> {
    // Read before the held requests: only this loop adds to the runs in progress, so a
    // request held then and not known now is no worker's (one known now that ends
    // meanwhile is no longer held).
    let known: HashSet<String> = shared
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|run| run.request_id.clone())
        .collect();
    let held = shared
        .store
        .held_requests(&shared.config.node_id, RequestClass::Runs)
        .await?;
    // A claim's answer comes at once: one claimed within the last lease is left to the
    // next check.
    let settled = Utc::now() - shared.config.lease_span();
    let mut taken: Vec<Request> = Vec::new();
    for request in held {
        if known.contains(&request.request_id) || request.claimed_at.is_none_or(|at| at > settled) {
            continue;
        }
        // A run of it in progress means a worker has it after all: never a second one.
        let filter = dwsched_model::RunFilter {
            request_id: Some(request.request_id.clone()),
            status: Some(dwsched_model::RunStatus::InProgress),
            limit: 1,
            ..dwsched_model::RunFilter::default()
        };
        if !shared.store.list_runs(&filter).await?.is_empty() {
            tracing::error!(
                request = %request.request_id,
                "request {} of {} is held by this node and has a run in progress, but no worker here knows it; leaving it alone",
                request.request_id,
                request.mapref
            );
            continue;
        }
        taken.push(request);
    }
    if taken.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        "this node holds {} run requests it was not running (a claim whose answer was lost); running them: {:?}",
        taken.len(),
        taken.iter().map(|r| &r.request_id).collect::<Vec<_>>()
    );
    let mut flows = read_flows(shared, &taken).await;
    for request in taken {
        let flow = flows.remove(&request.mapref);
        start_worker(shared, workers, worker_slots, request, flow);
    }
    Ok(())
}

/// The current flows of the claimed requests' jobs in one read; a worker whose flow is
/// missing here (or all, when the read failed) reads its own.
async fn read_flows(shared: &Shared, requests: &[Request]) -> HashMap<String, FlowToRun> {
    let maprefs: Vec<String> = requests.iter().map(|r| r.mapref.clone()).collect();
    match shared.store.flows_to_run(&maprefs).await {
        Ok(flows) => flows
            .into_iter()
            .map(|f| (f.flow.mapref.clone(), f))
            .collect(),
        Err(err) => {
            tracing::warn!("{err}; each run reads its own flow");
            HashMap::new()
        }
    }
}

fn start_worker(
    shared: &Arc<Shared>,
    workers: &mut JoinSet<()>,
    worker_slots: &Arc<Semaphore>,
    request: Request,
    flow: Option<FlowToRun>,
) {
    let active = ActiveRun {
        request_id: request.request_id.clone(),
        prcid: Arc::new(AtomicI64::new(0)),
        stop: StopSignal::new(),
        requeue: Arc::new(AtomicBool::new(false)),
    };
    shared
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(request.mapref.clone(), active.clone());
    let shared = shared.clone();
    let worker_slots = worker_slots.clone();
    workers.spawn(async move {
        let (mapref, request_id) = (request.mapref.clone(), request.request_id.clone());
        // The semaphore is never closed.
        let slot = worker_slots.acquire_owned().await.ok();
        crate::runner::process(&shared, request, active, flow).await;
        drop(slot);
        shared.forget_run(&mapref, &request_id);
        // The mapref is free: its next request may be claimable now.
        shared.wake_claimer.notify_one();
    });
}

/// Lets running runs finish up to the shutdown timeout, then stops the rest and sends
/// their requests back to the queue.
async fn drain(shared: &Shared, workers: &mut JoinSet<()>) {
    if !workers.is_empty() {
        tracing::info!(
            "stopping: waiting up to {} s for {} running runs",
            shared.config.shutdown_timeout.as_secs(),
            workers.len()
        );
    }
    let all_done = async { while workers.join_next().await.is_some() {} };
    let timed_out = tokio::select! {
        _ = all_done => false,
        _ = tokio::time::sleep(shared.config.shutdown_timeout) => true,
        _ = shared.shutdown.immediate.cancelled() => true,
    };
    if timed_out && !workers.is_empty() {
        let reason = format!(
            "stopped: node {} shutting down; the request goes back to the queue",
            shared.config.node_id
        );
        tracing::warn!("stopping {} runs that did not finish", workers.len());
        shared.stop_all(&reason, true);
        while workers.join_next().await.is_some() {}
    }
}
