//! The scheduler: on the one node that holds the scheduler lease, it keeps the
//! in-memory schedule set in step with `DMS_JOBSCH` and turns due slots into queue
//! rows.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use dwsched_model::SCHEDULER_LEASE;
use tokio::sync::{mpsc, oneshot};

use crate::health::Backoff;
use crate::schedules::{ScheduleSet, SyncReport};
use crate::state::{SchedulerCommand, Shared};

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
pub(crate) async fn scheduler_loop(
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<SchedulerCommand>,
) {
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
    let mut reports = DwtoolFiring::default();
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
        if leadership.leading(lease) && tokio::time::Instant::now() >= reports.next_check {
            reports.next_check = tokio::time::Instant::now() + CHANGE_CHECK;
            reports.fire_due(&shared).await;
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
                .chain([next_sync, next_change_check, reports.next_check])
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
    // A few rows; read at each sync, so that an edit reaches the schedules using the
    // calendar (the change count moves with calendar edits too). Calendars that cannot
    // be read keep their last reading, and the other schedules go on.
    match shared.store.list_calendars().await {
        Ok(calendars) => set.use_calendars(calendars),
        Err(err) => shared.health.failed("loading business calendars", &err),
    }
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
                    .map(|fire| fire.at - chrono::Duration::nanoseconds(1));
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

/// DWTOOL's report and file-upload schedules (`DMS_RPRT_SCHD`, `DMS_FLUPLD_SCHD`, SPEC
/// §7.2 and §7.3), fired by the node that fires the job schedules. Their rows are few
/// and read every second, so an edit in the UI takes effect as fast as a job
/// schedule's, and a due row fires within a second.
struct DwtoolFiring {
    next_check: tokio::time::Instant,
    /// Rows that cannot be fired (by table and `SCHDID`), with the reason last logged,
    /// so that it is logged once rather than every second.
    problems: std::collections::HashMap<(&'static str, i64), String>,
}

impl Default for DwtoolFiring {
    fn default() -> Self {
        Self {
            next_check: tokio::time::Instant::now(),
            problems: Default::default(),
        }
    }
}

/// A due row of one of DWTOOL's schedule tables, planned.
struct DwtoolDue {
    table: &'static str,
    schdid: i64,
    /// What it runs, for the log: `report 4`, `file upload CUST_IMPORT`.
    what: String,
    fire: Result<dwsched_model::DwtoolFire, dwsched_schedule::ScheduleError>,
}

impl DwtoolFiring {
    async fn fire_due(&mut self, shared: &Shared) {
        let zone = shared.config.default_zone;
        let now = Utc::now();
        let due_by = dwsched_schedule::to_local(zone, now);
        let mut due: Vec<DwtoolDue> = Vec::new();
        match shared.store.due_report_schedules(due_by).await {
            Ok(rows) => due.extend(rows.iter().map(|row| DwtoolDue {
                table: "DMS_RPRT_SCHD",
                schdid: row.schdid,
                what: format!("report {}", row.rprtid),
                fire: crate::dwtool_schedules::plan_report_fire(row, now, zone),
            })),
            Err(err) => shared.health.failed("reading the report schedules", &err),
        }
        // Read on its own: a failure of one table never keeps the other from firing.
        match shared.store.due_upload_schedules(due_by).await {
            Ok(rows) => due.extend(rows.iter().map(|row| DwtoolDue {
                table: "DMS_FLUPLD_SCHD",
                schdid: row.schdid,
                what: format!("file upload {}", row.flupldref),
                fire: crate::dwtool_schedules::plan_upload_fire(row, now, zone),
            })),
            Err(err) => shared
                .health
                .failed("reading the file-upload schedules", &err),
        }
        let keys: std::collections::HashSet<(&str, i64)> =
            due.iter().map(|d| (d.table, d.schdid)).collect();
        self.problems.retain(|key, _| keys.contains(key));
        for DwtoolDue {
            table,
            schdid,
            what,
            fire,
        } in due
        {
            let fire = match fire {
                Ok(fire) => fire,
                Err(err) => {
                    let reason = err.to_string();
                    if self.problems.get(&(table, schdid)) != Some(&reason) {
                        tracing::warn!(
                            schdid,
                            "{table} row {schdid} ({what}) cannot fire: {reason}"
                        );
                        self.problems.insert((table, schdid), reason);
                    }
                    continue;
                }
            };
            let fired = if table == "DMS_RPRT_SCHD" {
                shared.store.fire_report_schedule(&fire, now).await
            } else {
                shared.store.fire_upload_schedule(&fire, now).await
            };
            match fired {
                Ok(true) => {
                    shared.health.ok();
                    self.problems.remove(&(table, schdid));
                    metrics::counter!(crate::telemetry::REPORT_FIRES, "table" => table)
                        .increment(1);
                    let next = fire
                        .next
                        .map_or_else(|| "none (PAUSED)".to_string(), |at| at.to_string());
                    tracing::info!(
                        schdid,
                        "{table} row {schdid} fired a run of {what}; next run {next}"
                    );
                    shared.wake_claimer.notify_one();
                }
                // Another node fired it, or the row was edited since it was read.
                Ok(false) => {}
                Err(err) => shared.health.failed("firing a DWTOOL schedule", &err),
            }
        }
    }
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
