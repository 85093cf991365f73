//! What a node's tasks share: its configuration, its counters, the runs in progress
//! here, and the wake-ups and commands that pass between the tasks. A leaf module: it
//! imports none of the tasks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono_tz::Tz;
use dwsched_flow::StopSignal;
use dwsched_store::Store;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::health::DbHealth;
use crate::schedules::SyncReport;

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
    /// Where DWTOOL reports go and how their queries run (SPEC §7.2).
    pub reports: crate::report_delivery::ReportConfig,
    /// What happens to an upload's file around its run (`UPLOAD_FILE_LIFECYCLE`).
    pub upload_files: crate::uploads::FileLifecycle,
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
    pub config: Arc<NodeConfig>,
    pub health: Arc<DbHealth>,
    pub stats: Arc<Stats>,
    /// Run requests in progress here, by mapref.
    pub active: Mutex<HashMap<String, ActiveRun>>,
    pub wake_claimer: Arc<Notify>,
    pub wake_control: Arc<Notify>,
    pub scheduler: mpsc::Sender<SchedulerCommand>,
    pub shutdown: Shutdown,
    /// Cancelled when the node's last task should end.
    pub finished: CancellationToken,
    /// Connection pools of the flows' named connections.
    pub pools: dwsched_flow::Pools,
    /// Whether this node holds the scheduler lease (fires the schedules).
    pub leading: Arc<AtomicBool>,
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
    /// What the HTTP API and status page may reach of this node.
    pub fn view(&self) -> NodeView {
        NodeView {
            store: self.store.clone(),
            config: self.config.clone(),
            health: self.health.clone(),
            stats: self.stats.clone(),
            leading: self.leading.clone(),
            wake_claimer: self.wake_claimer.clone(),
            wake_control: self.wake_control.clone(),
            finished: self.finished.clone(),
        }
    }

    /// Forgets the run of `mapref` when it is `request_id`'s. A worker that ends must not
    /// take away the entry of the next request of its job, which the claimer may have
    /// put in its place meanwhile.
    pub fn forget_run(&self, mapref: &str, request_id: &str) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if active
            .get(mapref)
            .is_some_and(|run| run.request_id == request_id)
        {
            active.remove(mapref);
        }
    }

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

/// What the HTTP API and status page may reach of a node (axum's state): its store,
/// configuration, counters and health, whether it fires the schedules, and the
/// wake-ups of its claimer and control loop. Not its runs, leases or scheduler.
#[derive(Clone)]
pub(crate) struct NodeView {
    pub store: Arc<dyn Store>,
    pub config: Arc<NodeConfig>,
    pub health: Arc<DbHealth>,
    pub stats: Arc<Stats>,
    pub leading: Arc<AtomicBool>,
    pub wake_claimer: Arc<Notify>,
    pub wake_control: Arc<Notify>,
    /// Cancelled when the node's last task should end.
    pub finished: CancellationToken,
}
