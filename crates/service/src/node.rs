//! The scheduler node: `dwsched run`. This module starts its tasks, which share one
//! [`Shared`](crate::state::Shared):
//!
//! - the **scheduler** (`scheduler.rs`), on the one node that holds the scheduler
//!   lease, syncs `DMS_JOBSCH` and turns due slots into queue rows;
//! - the **claimer** (`claimer.rs`) takes run requests as worker slots free up and
//!   starts a worker for each (see `runner`);
//! - the **control** loop (`control.rs`) takes STOP, CANCEL and REFRESH_SCHEDULE
//!   requests at once, on a path of its own;
//! - the **heartbeat** (`membership.rs`) keeps the node's row, its runs' `RECUPDT`
//!   fresh, and rescues the work of nodes that stopped heartbeating;
//! - the **watcher** turns database notifications into wake-ups;
//! - the HTTP server (`http.rs`), when an address is set.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dwsched_store::Store;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::health::{Backoff, DbHealth, retry};
use crate::membership::NodeError;
use crate::state::{NodeConfig, Shared, Shutdown, Stats};

/// Runs the node until `shutdown` completes. Start-up (registration, the rescue of a
/// previous life's runs) fails fast; after that, database trouble is waited out.
pub async fn run_node(
    store: Arc<dyn Store>,
    config: NodeConfig,
    shutdown: Shutdown,
) -> Result<(), NodeError> {
    crate::telemetry::install();
    // Listening first: a taken address stops the start before the node registers.
    let listener = match config.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|err| {
                NodeError::Refused(format!(
                    "--http/DWSCHED_HTTP_ADDR='{addr}': cannot listen there: {err}"
                ))
            })?;
            tracing::info!("HTTP API and status page on http://{addr}/");
            Some(listener)
        }
        None => None,
    };
    let (shared, scheduler_rx) = shared_state(store, config, shutdown);
    if !register_when_reachable(&shared).await? {
        return Ok(());
    }
    tracing::info!(
        node = %shared.config.node_id,
        "node registered; max {} workers, lease {} s",
        shared.config.max_workers,
        shared.config.lease.as_secs()
    );

    // Under systemd (Type=notify): ready now, and a watchdog kept fed while the node's
    // event loop runs.
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("scheduling"),
    ]);
    let mut tasks = JoinSet::new();
    if let Some(listener) = listener {
        tasks.spawn(crate::http::serve(shared.view(), listener));
    }
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tasks.spawn(watchdog_loop(shared.clone(), interval / 2));
    }
    tasks.spawn(crate::membership::heartbeat_loop(shared.clone()));
    tasks.spawn(watch_loop(shared.clone()));
    tasks.spawn(crate::scheduler::scheduler_loop(
        shared.clone(),
        scheduler_rx,
    ));
    tasks.spawn(crate::control::control_loop(shared.clone()));
    // The claimer returns once the node has drained.
    crate::claimer::claim_loop(shared.clone()).await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);

    leave(&shared, tasks).await;
    Ok(())
}

/// What a node's tasks share, and the receiver of the scheduler's commands.
pub(crate) fn shared_state(
    store: Arc<dyn Store>,
    config: NodeConfig,
    shutdown: Shutdown,
) -> (Arc<Shared>, mpsc::Receiver<crate::state::SchedulerCommand>) {
    let (scheduler_tx, scheduler_rx) = mpsc::channel(16);
    let finished = CancellationToken::new();
    let alerts = crate::alerts::Alerter::start(config.alerts.clone(), finished.clone());
    let journal = crate::journal::RunJournal::start(store.clone());
    let shared = Arc::new(Shared {
        journal,
        store,
        config: Arc::new(config),
        health: Arc::new(DbHealth::default()),
        stats: Arc::new(Stats::default()),
        active: Mutex::new(HashMap::new()),
        wake_claimer: Arc::new(Notify::new()),
        wake_control: Arc::new(Notify::new()),
        scheduler: scheduler_tx,
        shutdown,
        alerts,
        finished,
        pools: dwsched_flow::Pools::new(),
        leading: Arc::new(AtomicBool::new(false)),
        fenced: AtomicBool::new(false),
        session: chrono::Utc::now().timestamp_micros(),
    });
    (shared, scheduler_rx)
}

/// Registers the node. A database that is briefly busy or restarting is waited for;
/// anything else (a live node with this id, a broken schema) stops the start.
/// `false` when told to stop first.
pub(crate) async fn register_when_reachable(shared: &Shared) -> Result<bool, NodeError> {
    let mut backoff = Backoff::default();
    loop {
        match crate::membership::register(shared).await {
            Ok(()) => break,
            Err(NodeError::Store(err)) if err.is_transient() => {
                shared.health.failed("registering the node", &err);
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = shared.shutdown.graceful.cancelled() => return Ok(false),
                }
            }
            Err(err) => return Err(err),
        }
    }
    shared.health.ok();
    Ok(true)
}

/// Ends the node's tasks, closes its pools and removes its row.
pub(crate) async fn leave(shared: &Shared, mut tasks: JoinSet<()>) {
    shared.finished.cancel();
    while tasks.join_next().await.is_some() {}
    shared.pools.close().await;
    let node_id = shared.config.node_id.clone();
    let give_up = CancellationToken::new();
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::select! {
        _ = retry(&shared.health, "deregistering the node", &give_up, || shared.store.deregister_node(&node_id)) => {}
        _ = deadline => tracing::warn!("could not deregister node {node_id}; its lease will expire"),
    }
    tracing::info!(node = %node_id, "node stopped");
}

async fn watchdog_loop(shared: Arc<Shared>, every: Duration) {
    loop {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shared.finished.cancelled() => return,
        }
    }
}

/// Turns the store's change notifications into wake-ups of the claimer and the
/// control loop.
pub(crate) async fn watch_loop(shared: Arc<Shared>) {
    let mut backoff = Backoff::default();
    loop {
        let watcher = tokio::select! {
            watcher = shared.store.watch_requests() => watcher,
            _ = shared.finished.cancelled() => return,
        };
        let mut watcher = match watcher {
            Ok(Some(watcher)) => watcher,
            Ok(None) => return,
            Err(err) => {
                shared.health.failed("listening for new requests", &err);
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => continue,
                    _ = shared.finished.cancelled() => return,
                }
            }
        };
        backoff.reset();
        loop {
            tokio::select! {
                changed = watcher.changed() => match changed {
                    Ok(()) => {
                        shared.wake_claimer.notify_one();
                        shared.wake_control.notify_one();
                    }
                    Err(err) => {
                        shared.health.failed("waiting for request notifications", &err);
                        break;
                    }
                },
                _ = shared.finished.cancelled() => return,
            }
        }
    }
}
