//! What an operator asks first: is it alive, what runs, what failed, what fires next.
//! `dwsched status` prints it; the same report is the HTTP status.

use chrono::{DateTime, Duration, Utc};
use dwsched_model::{Lease, Node, Run, RunFilter, RunStatus, ScheduleRow};
use dwsched_schedule::format_slot;
use dwsched_store::{Store, StoreError};
use serde_json::{Value, json};

use dwsched_model::SCHEDULER_LEASE;

/// Runs looked at for the error rate.
const RATE_WINDOW_RUNS: u32 = 1000;

/// One scheduler node as the tables show it.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub node: Node,
    /// Seconds since its last heartbeat.
    pub heartbeat_age: Option<i64>,
    /// Heartbeat within the lease.
    pub alive: bool,
    /// It holds a valid scheduler lease: it fires the schedules.
    pub fires_schedules: bool,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Default)]
pub struct StatusReport {
    pub at: DateTime<Utc>,
    /// Requests by status.
    pub queue: Vec<(String, i64)>,
    pub nodes: Vec<NodeStatus>,
    pub scheduler_lease: Option<Lease>,
    pub running: Vec<Run>,
    pub recent: Vec<Run>,
    /// Enabled schedules by next fire, soonest first.
    pub upcoming: Vec<ScheduleRow>,
    pub invalid_schedules: Vec<ScheduleRow>,
    /// Current schedules that are switched off (`SCHFLG='N'` or `STFLG` not `A`).
    pub disabled_schedules: Vec<ScheduleRow>,
    /// DWTOOL's report schedules (`DMS_RPRT_SCHD`), every status, by `SCHDID`.
    pub report_schedules: Vec<dwsched_model::ReportScheduleRow>,
    /// DWTOOL's current file-upload schedules (`DMS_FLUPLD_SCHD`), every status, by
    /// `SCHDID`.
    pub upload_schedules: Vec<dwsched_model::UploadScheduleRow>,
    /// Runs ended in the last 24 hours, and how many of them failed.
    pub ended_last_day: usize,
    pub failed_last_day: usize,
}

impl StatusReport {
    /// Reads the report from the tables. `lease` is how stale a heartbeat may be for
    /// its node to count as alive.
    pub async fn gather(
        store: &dyn Store,
        now: DateTime<Utc>,
        lease: Duration,
        recent: u32,
    ) -> Result<Self, StoreError> {
        let queue = store.queue_depth().await?.requests;
        let scheduler_lease = store.get_lease(SCHEDULER_LEASE).await?;
        let leader = scheduler_lease
            .as_ref()
            .filter(|l| l.lease_until.is_some_and(|until| until >= now))
            .and_then(|l| l.holder.clone());
        let running = store
            .list_runs(&RunFilter {
                mapref: None,
                status: Some(RunStatus::InProgress),
                limit: 1000,
                ..RunFilter::default()
            })
            .await?;
        let nodes = store
            .list_nodes()
            .await?
            .into_iter()
            .map(|node| {
                let heartbeat_age = node.heartbeat_at.map(|at| (now - at).num_seconds());
                NodeStatus {
                    alive: heartbeat_age.is_some_and(|age| age <= lease.num_seconds()),
                    fires_schedules: leader.as_deref() == Some(node.node_id.as_str()),
                    runs: running
                        .iter()
                        .filter(|r| r.node.as_deref() == Some(node.node_id.as_str()))
                        .cloned()
                        .collect(),
                    heartbeat_age,
                    node,
                }
            })
            .collect();
        let window = store
            .list_runs(&RunFilter {
                mapref: None,
                status: None,
                limit: RATE_WINDOW_RUNS.max(recent),
                ..RunFilter::default()
            })
            .await?;
        let day_ago = now - Duration::hours(24);
        let ended: Vec<&Run> = window
            .iter()
            .filter(|r| r.ended_at.is_some_and(|at| at >= day_ago))
            .collect();
        let (schedules, disabled): (Vec<_>, Vec<_>) = store
            .list_schedules(false)
            .await?
            .into_iter()
            .filter(|s| s.curflg.as_deref() == Some("Y"))
            .partition(ScheduleRow::is_scheduled);
        let (mut upcoming, invalid): (Vec<_>, Vec<_>) =
            schedules.into_iter().partition(|s| s.scherr.is_none());
        upcoming.retain(|s| s.nxt_run_dt.is_some());
        upcoming.sort_by_key(|s| s.nxt_run_dt);
        let report_schedules = store.report_schedules().await?;
        let upload_schedules = store.upload_schedules().await?;
        Ok(Self {
            report_schedules,
            upload_schedules,
            at: now,
            queue,
            nodes,
            scheduler_lease,
            running,
            recent: window.iter().take(recent as usize).cloned().collect(),
            upcoming,
            invalid_schedules: invalid,
            disabled_schedules: disabled,
            ended_last_day: ended.len(),
            failed_last_day: ended
                .iter()
                .filter(|r| r.status == Some(RunStatus::Failed))
                .count(),
        })
    }

    /// The share of runs ended in the last day that failed, if any ended.
    pub fn error_rate(&self) -> Option<f64> {
        (self.ended_last_day > 0).then(|| self.failed_last_day as f64 / self.ended_last_day as f64)
    }

    pub fn to_json(&self, upcoming: usize) -> Value {
        json!({
            "at": format_slot(self.at),
            "queue": self.queue.iter().map(|(status, n)| (status.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "nodes": self.nodes.iter().map(|n| json!({
                "node_id": n.node.node_id,
                "host": n.node.host,
                "pid": n.node.pid,
                "version": n.node.version,
                "role": n.node.role,
                "started_at": n.node.started_at.map(format_slot),
                "heartbeat_at": n.node.heartbeat_at.map(format_slot),
                "heartbeat_age_seconds": n.heartbeat_age,
                "alive": n.alive,
                "fires_schedules": n.fires_schedules,
                "runs": n.runs.iter().map(run_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "scheduler_lease": self.scheduler_lease.as_ref().map(|l| json!({
                "holder": l.holder,
                "lease_until": l.lease_until.map(format_slot),
                "acquired_at": l.acquired_at.map(format_slot),
            })),
            "running": self.running.iter().map(run_json).collect::<Vec<_>>(),
            "recent_runs": self.recent.iter().map(run_json).collect::<Vec<_>>(),
            "upcoming": self.upcoming.iter().take(upcoming).map(|s| json!({
                "jobschid": s.jobschid,
                "mapref": s.mapref,
                "next_fire": s.nxt_run_dt.map(format_slot),
                "last_run": s.lst_run_dt.map(format_slot),
                "failcnt": s.failcnt,
                "calendar": calendar_of(s),
            })).collect::<Vec<_>>(),
            "invalid_schedules": self.invalid_schedules.iter().map(|s| json!({
                "jobschid": s.jobschid,
                "mapref": s.mapref,
                "error": s.scherr,
            })).collect::<Vec<_>>(),
            "disabled_schedules": self.disabled_schedules.iter().map(|s| json!({
                "jobschid": s.jobschid,
                "mapref": s.mapref,
                "reason": disabled_reason(s),
            })).collect::<Vec<_>>(),
            "report_schedules": self.report_schedules.iter().map(report_schedule_json).collect::<Vec<_>>(),
            "upload_schedules": self.upload_schedules.iter().map(upload_schedule_json).collect::<Vec<_>>(),
            "last_24h": {
                "runs_ended": self.ended_last_day,
                "runs_failed": self.failed_last_day,
                "error_rate": self.error_rate(),
            },
        })
    }
}

/// Why a current schedule does not fire: its `SCHERR` (say, `MAXFAIL` reached), or
/// the flag that is off.
pub fn disabled_reason(s: &ScheduleRow) -> String {
    if let Some(reason) = &s.scherr {
        return reason.clone();
    }
    if s.stflg.as_deref().unwrap_or("A") != "A" {
        return format!("inactive (STFLG='{}')", s.stflg.as_deref().unwrap_or(""));
    }
    "disabled (SCHFLG='N')".to_string()
}

/// A span of seconds as people read it: `42s`, `3m07s`, `2h05m`.
pub fn human_duration(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl NodeStatus {
    /// Its heartbeat's age, and whether that makes it dead.
    pub fn heartbeat_text(&self) -> String {
        match (self.heartbeat_age, self.alive) {
            (Some(age), true) => format!("{age}s ago"),
            (Some(age), false) => format!("{age}s ago (dead)"),
            (None, _) => "never".to_string(),
        }
    }
}

/// A schedule as JSON, the same shape everywhere it is shown.
pub fn schedule_json(r: &ScheduleRow) -> Value {
    json!({
        "jobschid": r.jobschid,
        "mapref": r.mapref,
        "frqcd": r.frqcd,
        "frqdd": r.frqdd,
        "frqhh": r.frqhh,
        "frqmi": r.frqmi,
        "cronexpr": r.cronexpr,
        "timezone": r.timezone,
        "misfire": r.misfire,
        "depends_on": r.dpnd_jobschid,
        "enabled": r.is_scheduled(),
        "next_fire": r.nxt_run_dt.map(format_slot),
        "last_run": r.lst_run_dt.map(format_slot),
        "failures": r.failcnt,
        "max_failures": r.maxfail,
        "error": r.scherr,
        "calendar": r.calnm,
        "on_holiday": r.calnm.as_ref().map(|_| r.calrule.as_deref().unwrap_or("SKIP")),
    })
}

/// A DWTOOL report schedule as JSON. Its times are as the row holds them: wall-clock
/// time in the default zone (`YYYY-MM-DD HH:MM:SS`).
pub fn report_schedule_json(r: &dwsched_model::ReportScheduleRow) -> Value {
    json!({
        "schdid": r.schdid,
        "report_id": r.rprtid,
        "mapref": format!("REPORT:{}", r.rprtid),
        "frequency": r.frqncy,
        "time": r.tm_prm,
        "status": r.stts,
        "next_run": local_text(r.nxt_run_dt),
        "last_run": local_text(r.lst_run_dt),
        "format": r.otpt_fmt.as_deref().unwrap_or("CSV"),
        "destination": r.dstn_typ.as_deref().unwrap_or("FILE"),
    })
}

/// A DWTOOL schedule row, of reports or of file uploads, as the status tables list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DwtoolScheduleLine {
    pub schdid: i64,
    /// `REPORT:<id>` or `FLUPLD:<ref>`.
    pub mapref: String,
    /// `FRQNCY` and `TM_PRM`.
    pub frequency: String,
    /// Wall-clock times in the default zone, as the rows hold them.
    pub next_run: Option<chrono::NaiveDateTime>,
    pub last_run: Option<chrono::NaiveDateTime>,
    pub status: String,
    /// A report's format and destination; `None` for an upload.
    pub delivery: Option<String>,
}

impl DwtoolScheduleLine {
    fn new(schdid: i64, mapref: String, frequency: &str, time: Option<&str>) -> Self {
        Self {
            schdid,
            mapref,
            frequency: format!("{frequency} {}", time.unwrap_or(""))
                .trim()
                .to_string(),
            next_run: None,
            last_run: None,
            status: String::new(),
            delivery: None,
        }
    }
}

impl From<&dwsched_model::ReportScheduleRow> for DwtoolScheduleLine {
    fn from(r: &dwsched_model::ReportScheduleRow) -> Self {
        let frequency = r.frqncy.as_deref().unwrap_or("DAILY");
        Self {
            next_run: r.nxt_run_dt,
            last_run: r.lst_run_dt,
            status: r.stts.clone().unwrap_or_default(),
            delivery: Some(format!(
                "{} {}",
                r.otpt_fmt.as_deref().unwrap_or("CSV"),
                r.dstn_typ.as_deref().unwrap_or("FILE")
            )),
            ..Self::new(
                r.schdid,
                format!("REPORT:{}", r.rprtid),
                frequency,
                r.tm_prm.as_deref(),
            )
        }
    }
}

impl From<&dwsched_model::UploadScheduleRow> for DwtoolScheduleLine {
    fn from(u: &dwsched_model::UploadScheduleRow) -> Self {
        let frequency = u.frqncy.as_deref().unwrap_or("");
        Self {
            next_run: u.nxt_run_dt,
            last_run: u.lst_run_dt,
            status: u.stts.clone().unwrap_or_default(),
            ..Self::new(
                u.schdid,
                format!("FLUPLD:{}", u.flupldref),
                frequency,
                u.tm_prm.as_deref(),
            )
        }
    }
}

/// A DWTOOL file-upload schedule as JSON, its times as the row holds them (wall-clock
/// time in the default zone).
pub fn upload_schedule_json(u: &dwsched_model::UploadScheduleRow) -> Value {
    json!({
        "schdid": u.schdid,
        "flupldref": u.flupldref,
        "mapref": format!("FLUPLD:{}", u.flupldref),
        "frequency": u.frqncy,
        "time": u.tm_prm,
        "status": u.stts,
        "next_run": local_text(u.nxt_run_dt),
        "last_run": local_text(u.lst_run_dt),
    })
}

/// A wall-clock time as `YYYY-MM-DD HH:MM:SS`.
pub fn local_text(at: Option<chrono::NaiveDateTime>) -> Option<String> {
    at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// A schedule's calendar and rule as people read them: `ENGLAND (skip)`; `None`
/// without a calendar.
pub fn calendar_of(r: &ScheduleRow) -> Option<String> {
    let name = r
        .calnm
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())?;
    let rule = r
        .calrule
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("SKIP");
    Some(format!("{name} ({})", rule.to_ascii_lowercase()))
}

/// A run as JSON, the same shape everywhere it is shown.
pub fn run_json(run: &Run) -> Value {
    json!({
        "prcid": run.prcid,
        "mapref": run.mapref,
        "status": run.status.map(|s| s.as_str()),
        "started_at": run.started_at.map(format_slot),
        "ended_at": run.ended_at.map(format_slot),
        "msg": run.msg,
        "params": run.params,
        "request_id": run.request_id,
        "node": run.node,
        "run_date": run.run_date.map(|d| d.to_string()),
    })
}

/// A `DMS_PRCSTEP` row as the API and `runs show --json` give it.
pub fn step_json(step: &dwsched_model::StepRecord) -> Value {
    json!({
        "step": step.step,
        "attempt": step.attempt,
        "status": step.status.as_str(),
        "started_at": step.started_at.map(format_slot),
        "ended_at": step.ended_at.map(format_slot),
        "srcrows": step.srcrows,
        "trgrows": step.trgrows,
        "errrows": step.errrows,
        "msg": step.msg,
    })
}
