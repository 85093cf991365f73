//! The node's membership: registration, the heartbeat of its row and its runs, fencing
//! when it cannot reach the database, and the rescue of nodes that stopped
//! heartbeating.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use dwsched_model::Node;
use dwsched_store::StoreError;

use crate::state::Shared;

/// Errors that stop the node from starting.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
}

/// The address other nodes and browsers reach this node's HTTP API at: the host name
/// in place of an address that listens on every interface.
fn advertised(addr: std::net::SocketAddr, host: &str) -> String {
    if addr.ip().is_unspecified() {
        format!("{host}:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Registers the node. A row left by this node id's previous life (same host, its
/// process gone) is rescued first; a live process using the id is refused.
pub(crate) async fn register(shared: &Shared) -> Result<(), NodeError> {
    let store = &shared.store;
    let config = &shared.config;
    let now = Utc::now();
    if let Some(previous) = store.get_node(&config.node_id).await? {
        // Fresh by the database's clock, which every node shares.
        let fresh = !store
            .stale_nodes(config.lease)
            .await?
            .iter()
            .any(|node| node.node_id == config.node_id);
        let same_host = previous.host.as_deref() == Some(config.host.as_str());
        let alive = same_host
            && previous
                .pid
                .and_then(|p| i32::try_from(p).ok())
                .is_some_and(|pid| pid != std::process::id() as i32 && process_alive(pid));
        if fresh && (alive || !same_host) {
            return Err(NodeError::Refused(format!(
                "node id '{}' is in use by a live scheduler (host {}, pid {}, heartbeat within the last {} s); give this one another --node-id",
                config.node_id,
                previous.host.as_deref().unwrap_or("?"),
                previous.pid.unwrap_or_default(),
                config.lease.as_secs(),
            )));
        }
    }
    // Runs this node id left in progress (a crash, a kill -9) are over.
    let report = store
        .rescue_node(
            &config.node_id,
            &format!(
                "node {} restarted at {}; the run was interrupted",
                config.node_id,
                now.format("%Y-%m-%d %H:%M:%SZ")
            ),
            None,
            config.max_attempts,
        )
        .await?;
    log_rescue(&config.node_id, &report);
    store
        .register_node(&Node {
            node_id: config.node_id.clone(),
            host: Some(config.host.clone()),
            pid: Some(i64::from(std::process::id())),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            // Stamped by the database's clock, which the other nodes judge it by.
            started_at: None,
            heartbeat_at: None,
            role: Some("worker".into()),
            http_addr: config.http.map(|addr| advertised(addr, &config.host)),
            lease_seconds: i64::try_from(config.lease.as_secs()).ok(),
        })
        .await?;
    Ok(())
}

fn process_alive(pid: i32) -> bool {
    // Signal 0 checks that the process exists without touching it.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn log_rescue(node_id: &str, report: &dwsched_model::RescueReport) {
    if !report.runs_closed.is_empty()
        || !report.requests_requeued.is_empty()
        || !report.requests_failed.is_empty()
    {
        tracing::warn!(
            node = node_id,
            "rescued the work of node {node_id}: runs closed FL {:?}, requests requeued {:?}, requests failed {:?}",
            report.runs_closed,
            report.requests_requeued,
            report.requests_failed
        );
    }
}

/// Heartbeats the node, its leases and its runs; rescues dead nodes; fences this node
/// when it finds its own row gone.
pub(crate) async fn heartbeat_loop(shared: Arc<Shared>) {
    let every = (shared.config.lease / 3).max(Duration::from_millis(500));
    // Past this long without a heartbeat, other nodes may soon judge this one dead and
    // rescue its work: stop the runs here first (fencing), so that none runs twice.
    let fence_after = shared.config.lease.mul_f64(0.75);
    let mut last_heartbeat = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shared.finished.cancelled() => return,
        }
        let now = Utc::now();
        let store = &shared.store;
        // The database stamps the heartbeat somewhat after this: counting from here
        // keeps the fencing ahead of any other node's judgement.
        let sent = std::time::Instant::now();
        let beat = store
            .heartbeat_node(&shared.config.node_id, shared.config.lease)
            .await;
        if beat.is_err()
            && last_heartbeat.elapsed() > fence_after
            && !shared.fenced.swap(true, Ordering::SeqCst)
        {
            tracing::error!(
                "node {} has not reached the database for {:.1} s; stopping its runs and claims until it does, so that a node that rescues them does not run them twice",
                shared.config.node_id,
                last_heartbeat.elapsed().as_secs_f64()
            );
            shared.stop_all(
                &format!(
                    "stopped: node {} lost contact with the database (fencing)",
                    shared.config.node_id
                ),
                true,
            );
        }
        if beat.is_ok() {
            last_heartbeat = sent;
            if shared.fenced.swap(false, Ordering::SeqCst) {
                tracing::info!(
                    "node {} reached the database again; claiming again",
                    shared.config.node_id
                );
            }
        }
        match beat {
            Ok(true) => shared.health.ok(),
            Ok(false) => {
                // Another node judged this one dead and took its work: stop the runs
                // here rather than run a mapref twice, then rejoin.
                tracing::error!(
                    "node {} lost its lease (its work was rescued by another node); stopping its runs",
                    shared.config.node_id
                );
                // The rescuer put their requests back in the queue; one this node
                // still holds goes back too (requeue), as the stop is not the job's
                // failure. No claims until the stopped runs have ended, so that no
                // request claimed again under the same id meets the run it stopped.
                shared.fenced.store(true, Ordering::SeqCst);
                shared.stop_all(
                    &format!("stopped: node {} lost its lease", shared.config.node_id),
                    true,
                );
                wait_for_runs_to_end(&shared).await;
                if let Err(err) = register(&shared).await {
                    tracing::error!(
                        "could not register node {} again: {err}",
                        shared.config.node_id
                    );
                }
                shared.fenced.store(false, Ordering::SeqCst);
                continue;
            }
            Err(err) => {
                shared.health.failed("heartbeating the node", &err);
                continue;
            }
        }
        let prcids: Vec<i64> = {
            let active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
            active
                .values()
                .map(|run| run.prcid.load(Ordering::SeqCst))
                .filter(|p| *p > 0)
                .collect()
        };
        for prcid in prcids {
            if let Err(err) = store.heartbeat_run(prcid, now).await {
                shared.health.failed("heartbeating a run", &err);
            }
        }
        rescue_dead_nodes(&shared).await;
    }
}

/// Rescues the work of nodes whose heartbeat is older than the lease, judged by the
/// database's clock (so a node with a fast or slow clock neither rescues early nor is
/// rescued early).
async fn rescue_dead_nodes(shared: &Shared) {
    let lease = shared.config.lease;
    let stale = match shared.store.stale_nodes(lease).await {
        Ok(stale) => stale,
        Err(err) => return shared.health.failed("looking for dead nodes", &err),
    };
    for node in stale {
        if node.node_id == shared.config.node_id {
            continue;
        }
        let msg = format!(
            "node {} stopped heartbeating at {} (lease {} s); the run was abandoned",
            node.node_id,
            node.heartbeat_at.map_or("?".to_string(), |t| t
                .format("%Y-%m-%d %H:%M:%SZ")
                .to_string()),
            lease.as_secs()
        );
        match shared
            .store
            .rescue_node(&node.node_id, &msg, Some(lease), shared.config.max_attempts)
            .await
        {
            Ok(report) => {
                log_rescue(&node.node_id, &report);
                shared.wake_claimer.notify_one();
            }
            Err(err) => shared.health.failed("rescuing a dead node", &err),
        }
    }
}

/// Waits until this node runs nothing (its stopped runs and the requests it had
/// claimed ahead have ended), or the node stops.
async fn wait_for_runs_to_end(shared: &Shared) {
    loop {
        let running = shared
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        if running == 0 {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shared.finished.cancelled() => return,
        }
    }
}
