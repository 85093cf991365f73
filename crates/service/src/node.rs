//! The scheduler node: `dwsched run`. Its tasks share one [`Shared`]:
//!
//! - the **scheduler**, on the one node that holds the scheduler lease, syncs
//!   `DMS_JOBSCH` and turns due slots into queue rows;
//! - the **claimer** takes run requests as worker slots free up and starts a worker
//!   for each (see `runner`);
//! - the **control** loop takes STOP, CANCEL and REFRESH_SCHEDULE requests at once, on
//!   a path of its own;
//! - the **heartbeat** keeps the node's row, its leases and its runs' `RECUPDT` fresh,
//!   and rescues the work of nodes that stopped heartbeating;
//! - the **watcher** turns database notifications into wake-ups.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use dwsched_flow::StopSignal;
use dwsched_model::{Claim, FlowToRun, Node, Request, RequestClass};
use dwsched_store::{Store, StoreError};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::health::{Backoff, DbHealth, retry};
use crate::schedules::{ScheduleSet, SyncReport};

/// How the node runs; the binary builds it from the configuration (SPEC §5).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub node_id: String,
    pub host: String,
    pub poll_interval: Duration,
    pub refresh_interval: Duration,
    pub max_workers: u32,
    pub default_zone: Tz,
    pub shutdown_timeout: Duration,
    pub lease: Duration,
    /// Claims of one request after which a rescue fails it instead of retrying.
    pub max_attempts: i64,
    /// Where command output is kept, one file per run.
    pub log_dir: PathBuf,
    /// How late a slot may be and still count as on time (not a misfire).
    pub misfire_grace: Duration,
    /// Where the HTTP API and status page listen; off when `None`.
    pub http: Option<std::net::SocketAddr>,
    /// The bearer token mutating HTTP calls need, when set.
    pub api_token: Option<String>,
    /// Where failed runs and disabled schedules are reported.
    pub alerts: crate::alerts::AlertConfig,
}

impl NodeConfig {
    /// The lease as a span of time for timestamps.
    pub(crate) fn lease_span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(30))
    }
}

/// The two stages of a stop: `graceful` (stop claiming, let runs finish) and
/// `immediate` (stop the runs now).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    pub graceful: CancellationToken,
    pub immediate: CancellationToken,
}

/// A run request being worked on by this node.
#[derive(Debug, Clone)]
pub(crate) struct ActiveRun {
    pub request_id: String,
    pub prcid: Arc<AtomicI64>,
    pub stop: StopSignal,
    /// Set when the node stops the run for its own shutdown: the request goes back to
    /// the queue instead of failing.
    pub requeue: Arc<AtomicBool>,
}

/// Counters an operator reads (the metrics endpoint exposes them).
#[derive(Debug, Default)]
pub struct Stats {
    pub slots_fired: AtomicU64,
    pub slots_merged: AtomicU64,
    pub slots_dropped: AtomicU64,
    pub runs_started: AtomicU64,
    pub syncs: AtomicU64,
    /// When the schedules were last synced, in Unix milliseconds (0: never).
    pub last_sync_millis: AtomicI64,
}

pub(crate) enum SchedulerCommand {
    Refresh(oneshot::Sender<Result<SyncReport, String>>),
}

pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub config: NodeConfig,
    pub health: DbHealth,
    pub stats: Stats,
    /// Run requests in progress here, by mapref.
    pub active: Mutex<HashMap<String, ActiveRun>>,
    pub wake_claimer: Notify,
    pub wake_control: Notify,
    pub scheduler: mpsc::Sender<SchedulerCommand>,
    pub shutdown: Shutdown,
    /// Cancelled when the node's last task should end.
    pub finished: CancellationToken,
    /// Connection pools of the flows' named connections.
    pub pools: dwsched_flow::Pools,
    /// Whether this node holds the scheduler lease (fires the schedules).
    pub leading: AtomicBool,
    /// Set while the node has gone too long without a heartbeat: it claims nothing.
    pub fenced: AtomicBool,
    pub alerts: crate::alerts::Alerter,
    /// Where workers write their runs' bookkeeping (shared transactions).
    pub journal: crate::journal::RunJournal,
    /// The `SESSIONID` of this node's runs in `DMS_PRCLOG`, `DMS_JOBLOG` and
    /// `DMS_JOBERR`: a number, as DWTOOL's views join on it, distinct for each start of
    /// the node (its start in microseconds since the Unix epoch).
    pub session: i64,
}

impl Shared {
    /// Stops every run of this node, for `reason`; `requeue` sends their requests back
    /// to the queue.
    pub fn stop_all(&self, reason: &str, requeue: bool) {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        for run in active.values() {
            if requeue {
                run.requeue.store(true, Ordering::SeqCst);
            }
            run.stop.stop(reason, false);
        }
    }
}

/// Errors that stop the node from starting.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
}

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
    let (scheduler_tx, scheduler_rx) = mpsc::channel(16);
    let finished = CancellationToken::new();
    let alerts = crate::alerts::Alerter::start(config.alerts.clone(), finished.clone());
    let journal = crate::journal::RunJournal::start(store.clone());
    let shared = Arc::new(Shared {
        journal,
        store,
        config,
        health: DbHealth::default(),
        stats: Stats::default(),
        active: Mutex::new(HashMap::new()),
        wake_claimer: Notify::new(),
        wake_control: Notify::new(),
        scheduler: scheduler_tx,
        shutdown,
        alerts,
        finished,
        pools: dwsched_flow::Pools::new(),
        leading: AtomicBool::new(false),
        fenced: AtomicBool::new(false),
        session: chrono::Utc::now().timestamp_micros(),
    });
    // A database that is briefly busy or restarting is waited for; anything else
    // (a live node with this id, a broken schema) stops the start.
    let mut backoff = Backoff::default();
    loop {
        match register(&shared).await {
            Ok(()) => break,
            Err(NodeError::Store(err)) if err.is_transient() => {
                shared.health.failed("registering the node", &err);
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = shared.shutdown.graceful.cancelled() => return Ok(()),
                }
            }
            Err(err) => return Err(err),
        }
    }
    shared.health.ok();
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
        tasks.spawn(crate::http::serve(shared.clone(), listener));
    }
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tasks.spawn(watchdog_loop(shared.clone(), interval / 2));
    }
    tasks.spawn(heartbeat_loop(shared.clone()));
    tasks.spawn(watch_loop(shared.clone()));
    tasks.spawn(scheduler_loop(shared.clone(), scheduler_rx));
    tasks.spawn(crate::control::control_loop(shared.clone()));
    // The claimer returns once the node has drained.
    claim_loop(shared.clone()).await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);

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
    Ok(())
}

/// Registers the node. A row left by this node id's previous life (same host, its
/// process gone) is rescued first; a live process using the id is refused.
async fn register(shared: &Shared) -> Result<(), NodeError> {
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

async fn watchdog_loop(shared: Arc<Shared>, every: Duration) {
    loop {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shared.finished.cancelled() => return,
        }
    }
}

/// Heartbeats the node, its leases and its runs; rescues dead nodes; fences this node
/// when it finds its own row gone.
async fn heartbeat_loop(shared: Arc<Shared>) {
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
                shared.stop_all(
                    &format!("stopped: node {} lost its lease", shared.config.node_id),
                    false,
                );
                if let Err(err) = register(&shared).await {
                    tracing::error!(
                        "could not register node {} again: {err}",
                        shared.config.node_id
                    );
                }
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

/// Turns the store's change notifications into wake-ups of the claimer and the
/// control loop.
async fn watch_loop(shared: Arc<Shared>) {
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

/// The lease of the node that fires schedules.
pub const SCHEDULER_LEASE: &str = "scheduler";

/// What the scheduler loop knows of its lease.
#[derive(Debug, Default)]
struct Leadership {
    /// Until when this node holds the lease, on its own monotonic clock: a lease
    /// from the moment the renewal was sent, which is no later than the database's
    /// deadline (the database set that from when it ran the statement). Wall clocks,
    /// which nodes disagree on, play no part.
    until: Option<tokio::time::Instant>,
    next_check: Option<tokio::time::Instant>,
}

impl Leadership {
    /// Whether this node may fire now: it holds the lease, with a margin for the
    /// statement that takes it over.
    fn leading(&self, lease: Duration) -> bool {
        let margin = (lease / 10).min(Duration::from_secs(1));
        self.until
            .is_some_and(|until| tokio::time::Instant::now() + margin < until)
    }
}

/// Takes or renews the scheduler lease when it is time to; returns whether this node
/// leads. A follower tries every second (or third of a lease, if shorter), a leader
/// renews every third of a lease.
async fn check_leadership(shared: &Shared, leadership: &mut Leadership) -> bool {
    let lease = shared.config.lease;
    let now_instant = tokio::time::Instant::now();
    if leadership.next_check.is_some_and(|at| now_instant < at) {
        return leadership.leading(lease);
    }
    let node_id = shared.config.node_id.as_str();
    let was_leading = leadership.until.is_some();
    match shared
        .store
        .acquire_lease(SCHEDULER_LEASE, node_id, lease)
        .await
    {
        Ok(true) => {
            shared.health.ok();
            leadership.until = Some(now_instant + lease);
            if !was_leading {
                tracing::info!(
                    node = node_id,
                    "node {node_id} now fires the schedules (scheduler lease taken)"
                );
                set_role(shared, "leader").await;
            }
        }
        Ok(false) => leadership.until = None,
        // The lease runs out on its own if renewals keep failing.
        Err(err) => shared.health.failed("renewing the scheduler lease", &err),
    }
    if !leadership.leading(lease) {
        leadership.until = None;
        if was_leading {
            tracing::warn!(
                node = node_id,
                "node {node_id} no longer holds the scheduler lease; it stops firing"
            );
            set_role(shared, "worker").await;
        }
    }
    let follow = shared.config.lease.div_f64(3.0).min(Duration::from_secs(1));
    let every = if leadership.until.is_some() {
        shared.config.lease.div_f64(3.0)
    } else {
        follow
    };
    leadership.next_check = Some(now_instant + every.max(Duration::from_millis(100)));
    let leading = leadership.leading(lease);
    shared.leading.store(leading, Ordering::SeqCst);
    leading
}

async fn set_role(shared: &Shared, role: &str) {
    if let Err(err) = shared
        .store
        .set_node_role(&shared.config.node_id, role)
        .await
    {
        shared.health.failed("recording the node's role", &err);
    }
}

/// While this node holds the scheduler lease: syncs the schedules and fires due slots.
/// A node that takes the lease over starts from the `NXT_RUN_DT` its predecessor
/// left, so slots missed in between go through their misfire policy.
async fn scheduler_loop(shared: Arc<Shared>, mut commands: mpsc::Receiver<SchedulerCommand>) {
    let grace = chrono::Duration::from_std(shared.config.misfire_grace)
        .unwrap_or(chrono::Duration::seconds(60));
    let lease = shared.config.lease;
    let mut leadership = Leadership::default();
    let mut set = ScheduleSet::new();
    let mut next_sync = tokio::time::Instant::now();
    let mut backoff = Backoff::default();
    let mut pending_reply: Vec<oneshot::Sender<Result<SyncReport, String>>> = Vec::new();
    let mut cursor = SyncCursor::default();
    let mut next_change_check = tokio::time::Instant::now();
    // Fires queued ahead of their slot; the claimer is woken when each comes.
    let mut early: std::collections::BTreeSet<chrono::DateTime<Utc>> = Default::default();
    loop {
        let was_leading = leadership.until.is_some();
        let leading = check_leadership(&shared, &mut leadership).await;
        if leading && !was_leading {
            // A fresh start from the table: another node may have fired meanwhile.
            set = ScheduleSet::new();
            cursor = SyncCursor::default();
            next_sync = tokio::time::Instant::now();
        }
        if !leading {
            // The leader answers refreshes; the control loop does not ask a follower.
            for reply in pending_reply.drain(..) {
                let _ = reply.send(Err(String::from("this node does not fire schedules")));
            }
        }
        if leading && tokio::time::Instant::now() >= next_change_check {
            next_change_check = tokio::time::Instant::now() + CHANGE_CHECK;
            if cursor.schedules_changed(&shared).await {
                next_sync = tokio::time::Instant::now();
            }
        }
        if leading && (tokio::time::Instant::now() >= next_sync || !pending_reply.is_empty()) {
            // A REFRESH_SCHEDULE asks for a full sync.
            let full = !pending_reply.is_empty();
            let result = sync(&shared, &mut set, &mut cursor, full).await;
            match &result {
                Ok(_) => {
                    backoff.reset();
                    next_sync = tokio::time::Instant::now() + shared.config.refresh_interval;
                }
                Err(_) => next_sync = tokio::time::Instant::now() + backoff.next_delay(),
            }
            for reply in pending_reply.drain(..) {
                let _ = reply.send(result.clone());
            }
        }
        if leadership.leading(lease) {
            early.extend(fire_due(&shared, &mut set, grace).await);
        }
        let now = Utc::now();
        if early.first().is_some_and(|at| *at <= now) {
            early.retain(|at| *at > now);
            shared.wake_claimer.notify_one();
        }
        let instant_of = |at: chrono::DateTime<Utc>| {
            tokio::time::Instant::now() + (at - Utc::now()).to_std().unwrap_or_default()
        };
        let timers = if leading {
            set.next_wake()
                .map(|at| instant_of(at - FIRE_LEAD))
                .into_iter()
                .chain([next_sync, next_change_check])
                .collect::<Vec<_>>()
        } else {
            Vec::new()
        };
        let wake_at = timers
            .into_iter()
            .chain(early.first().map(|at| instant_of(*at)))
            .chain(leadership.next_check)
            .min()
            .unwrap_or_else(|| tokio::time::Instant::now() + shared.config.poll_interval);
        tokio::select! {
            _ = tokio::time::sleep_until(wake_at) => {}
            command = commands.recv() => match command {
                Some(SchedulerCommand::Refresh(reply)) => pending_reply.push(reply),
                None => break,
            },
            _ = shared.shutdown.graceful.cancelled() => break,
        }
    }
    if leadership.until.is_some() {
        // Hand the firing over at once rather than after the lease.
        shared.leading.store(false, Ordering::SeqCst);
        if let Err(err) = shared
            .store
            .release_lease(SCHEDULER_LEASE, &shared.config.node_id)
            .await
        {
            shared.health.failed("releasing the scheduler lease", &err);
        }
    }
}

/// How often the firing node asks whether any schedule changed (one read of a counter),
/// so that an edit from any path takes effect within about a second.
const CHANGE_CHECK: Duration = Duration::from_secs(1);

/// Where the scheduler's view of `DMS_JOBSCH` stands: the count of changes last read,
/// and where incremental syncs start from, the rows stamped (`CHGDT`, on the database's
/// clock) since the newest stamp seen, less a margin for transactions that commit
/// well after they stamp.
#[derive(Debug, Default)]
struct SyncCursor {
    synced: bool,
    watermark: Option<chrono::DateTime<Utc>>,
    since_full: u32,
    version: Option<i64>,
}

impl SyncCursor {
    /// Every this many syncs is a full one, a safety net for changes the triggers did
    /// not count (dropped by hand, say).
    const FULL_EVERY: u32 = 10;

    fn margin() -> chrono::Duration {
        chrono::Duration::minutes(10)
    }

    fn advance(&mut self, rows: &[dwsched_model::ScheduleRow]) {
        let newest = rows.iter().filter_map(|r| r.changed_at).max();
        self.watermark = self.watermark.into_iter().chain(newest).max();
        self.synced = true;
    }

    /// Whether the count of schedule changes moved since it was last read. It is read
    /// before the sync it triggers, so a change committed meanwhile moves it again.
    async fn schedules_changed(&mut self, shared: &Shared) -> bool {
        match shared.store.schedule_version().await {
            Ok(version) => {
                let changed = self.version.is_some_and(|seen| seen != version);
                self.version = Some(version);
                changed
            }
            Err(err) => {
                shared.health.failed("checking for schedule changes", &err);
                false
            }
        }
    }
}

/// One sync of `DMS_JOBSCH` into the set (full, or incremental from the cursor);
/// writes the states that changed.
async fn sync(
    shared: &Shared,
    set: &mut ScheduleSet,
    cursor: &mut SyncCursor,
    full: bool,
) -> Result<SyncReport, String> {
    let started = std::time::Instant::now();
    let now = Utc::now();
    let zone = shared.config.default_zone;
    let incremental = !full && cursor.synced && cursor.since_full + 1 < SyncCursor::FULL_EVERY;
    let loaded = if incremental {
        let since = cursor.watermark.map(|at| at - SyncCursor::margin());
        match shared.store.scheduled_ids().await {
            Ok(ids) => {
                let missing = set.untracked(&ids);
                shared
                    .store
                    .scheduled_changes(since, &missing)
                    .await
                    .map(|rows| (Some(ids), rows))
            }
            Err(err) => Err(err),
        }
    } else {
        shared
            .store
            .list_schedules(true)
            .await
            .map(|rows| (None, rows))
    };
    let (ids, rows) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            shared.health.failed("loading schedules", &err);
            return Err(err.to_string());
        }
    };
    let report = match &ids {
        Some(ids) => set.sync_changes(ids, &rows, zone, now),
        None => set.sync(&rows, zone, now),
    };
    cursor.advance(&rows);
    cursor.since_full = if ids.is_some() {
        cursor.since_full + 1
    } else {
        0
    };
    for (id, mapref, problem) in &report.new_problems {
        tracing::warn!(jobschid = id, mapref = %mapref, "schedule {id} of {mapref} cannot be scheduled: {problem}");
    }
    if let Err(err) = shared.store.set_schedule_states(&report.state_writes).await {
        shared.health.failed("recording next fires", &err);
        return Err(err.to_string());
    }
    shared.health.ok();
    shared.stats.syncs.fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .last_sync_millis
        .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    metrics::histogram!(crate::telemetry::SYNC_DURATION).record(started.elapsed().as_secs_f64());
    let changed = report.added + report.changed + report.removed > 0;
    let message = "Synchronising job schedules...";
    let mode = if ids.is_some() { "incremental" } else { "full" };
    if changed || shared.stats.syncs.load(Ordering::Relaxed) == 1 {
        tracing::info!(
            mode,
            total = report.total,
            added = report.added,
            changed = report.changed,
            removed = report.removed,
            invalid = report.invalid,
            millis = started.elapsed().as_millis() as u64,
            "{message}"
        );
    } else {
        tracing::debug!(
            mode,
            total = report.total,
            invalid = report.invalid,
            "{message}"
        );
    }
    Ok(report)
}

/// How far ahead of its slot a fire is queued (claimable from the slot on), so that a
/// large burst is written before its minute starts.
const FIRE_LEAD: chrono::Duration = chrono::Duration::seconds(2);

/// Queues the requests of every slot due within the lead, then records the new next
/// fires. Returns the slots queued ahead of time.
async fn fire_due(
    shared: &Shared,
    set: &mut ScheduleSet,
    grace: chrono::Duration,
) -> Vec<chrono::DateTime<Utc>> {
    let now = Utc::now();
    let due = set.take_due(now, FIRE_LEAD, grace);
    if due.is_empty() {
        return Vec::new();
    }
    let requests: Vec<_> = due
        .iter()
        .flat_map(|d| d.requests.iter().cloned())
        .collect();
    match shared.store.enqueue_many(&requests).await {
        Ok(inserted) => {
            shared.health.ok();
            shared
                .stats
                .slots_fired
                .fetch_add(inserted as u64, Ordering::Relaxed);
            metrics::counter!(crate::telemetry::SLOTS_FIRED).increment(inserted as u64);
            if inserted > 0 {
                shared.wake_claimer.notify_one();
            }
            for d in &due {
                log_misfires(shared, d);
            }
            tracing::debug!("fired {inserted} slots of {} schedules", due.len());
        }
        Err(err) => {
            shared.health.failed("queueing schedule fires", &err);
            // Plan these slots again shortly; their dedupe keys keep a repeat single.
            // Past the lead, so that the retry waits a second instead of spinning.
            let retry_at = now + FIRE_LEAD + chrono::Duration::seconds(1);
            for d in &due {
                let before = d
                    .plan
                    .run
                    .first()
                    .map(|s| *s - chrono::Duration::nanoseconds(1));
                set.retry_later(d.jobschid, before, retry_at);
            }
            return Vec::new();
        }
    }
    let states = set.states_of(due.iter().map(|d| d.jobschid));
    if let Err(err) = shared.store.set_schedule_states(&states).await {
        shared.health.failed("recording next fires", &err);
    }
    requests.iter().filter_map(|r| r.not_before).collect()
}

fn log_misfires(shared: &Shared, due: &crate::schedules::DueSchedule) {
    let plan = &due.plan;
    let floor = if plan.count_is_floor { "at least " } else { "" };
    for (count, counter, what, outcome) in [
        (
            plan.merged,
            &shared.stats.slots_merged,
            "merged into one run",
            "merged",
        ),
        (
            plan.dropped,
            &shared.stats.slots_dropped,
            "dropped",
            "dropped",
        ),
    ] {
        if count > 0 {
            counter.fetch_add(count, Ordering::Relaxed);
            metrics::counter!(crate::telemetry::SLOTS_MISFIRED, "outcome" => outcome)
                .increment(count);
            tracing::warn!(
                jobschid = due.jobschid,
                mapref = %due.mapref,
                "schedule {} of {}: {floor}{count} missed slots {what} ({})",
                due.jobschid, due.mapref, due.policy
            );
        }
    }
}

/// How many requests a node holds per worker slot: one running, the rest claimed
/// ahead and waiting for a slot.
const CLAIM_AHEAD_FACTOR: usize = 2;

/// Claims run requests while worker slots are free, and as many again ahead of them,
/// so that a worker that finishes starts its next run without waiting for a claim.
/// Claimed-ahead requests wait for a worker slot (the semaphore); on shutdown, drains.
async fn claim_loop(shared: Arc<Shared>) {
    let mut workers: JoinSet<()> = JoinSet::new();
    let mut backoff = Backoff::default();
    let slots = shared.config.max_workers as usize;
    let worker_slots = Arc::new(Semaphore::new(slots));
    loop {
        if shared.shutdown.graceful.is_cancelled() {
            break;
        }
        while workers.try_join_next().is_some() {}
        let free = (slots * CLAIM_AHEAD_FACTOR).saturating_sub(workers.len());
        let mut delay = shared.config.poll_interval;
        if free > 0 && !shared.fenced.load(Ordering::SeqCst) {
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
        let mapref = request.mapref.clone();
        // The semaphore is never closed.
        let slot = worker_slots.acquire_owned().await.ok();
        crate::runner::process(&shared, request, active, flow).await;
        drop(slot);
        shared
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&mapref);
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
