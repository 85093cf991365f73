//! The operations users ask for — register a flow or a connection, add or switch a
//! schedule, queue a run, a history, a stop, cancel a request — validated once here for
//! every surface that offers them (the CLI, and the HTTP API).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use dwsched_flow::{Flow, FlowFormat, parse_flow};
use dwsched_model::{
    Connection, HistoryPayload, JobFlow, NewRequest, NewSchedule, RequestType, RunParams,
    RunPayload, ScheduleRow, StopPayload, validate_mapref,
};
use dwsched_schedule::{Schedule, ScheduleParser};
use dwsched_store::{Store, StoreError};
use thiserror::Error;

/// Why an operation was refused or failed.
#[derive(Debug, Error)]
pub enum OpError {
    /// The input is wrong (a usage error: exit 2, HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The input names something that does not exist (exit 2, HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The object is not in a state that allows this (exit 1, HTTP 409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type OpResult<T> = Result<T, OpError>;

/// Parses, validates and registers a flow as the job's new current version. Every
/// connection the flow names must be registered.
pub async fn register_flow(
    store: &dyn Store,
    mapref: &str,
    text: &str,
    format: FlowFormat,
    now: DateTime<Utc>,
) -> OpResult<(JobFlow, Flow)> {
    validate_mapref(mapref).map_err(OpError::Invalid)?;
    let flow = parse_flow(text, format)
        .map_err(|e| OpError::Invalid(format!("flow of job '{mapref}': {e}")))?;
    for name in flow.connections() {
        let Some(connection) = store.get_connection(name).await? else {
            return Err(OpError::Invalid(format!(
                "flow of job '{mapref}' uses connection '{name}', which is not registered; add it with `dwsched conn put {name} --url URL`"
            )));
        };
        if let Some(kind) = dwsched_flow::DatabaseType::of_connection(&connection)
            && kind.kind.is_none()
        {
            return Err(OpError::Invalid(format!(
                "flow of job '{mapref}' uses connection '{name}' of type {}, which flow steps cannot run on; they run on PostgreSQL, MySQL/MariaDB and SQLite",
                kind.dbtyp
            )));
        }
    }
    let stored = store.put_job_flow(mapref, &flow.to_json(), now).await?;
    Ok((stored, flow))
}

/// The `DBTYP` of a connection URL.
fn database_type(url: &url::Url) -> OpResult<&'static str> {
    dwsched_flow::DatabaseType::from_scheme(url.scheme())
        .map(|t| t.dbtyp)
        .ok_or_else(|| {
            OpError::Invalid(format!(
                "connection URL scheme '{}' is not postgres, mysql, sqlite or oracle",
                url.scheme()
            ))
        })
}

/// Registers (or replaces) a named connection from a URL. A password in the URL moves
/// to `PASSWD`, so `CONSTR` never holds one; `password` (plain, or `env:NAME`) wins
/// over it. Returns the connection as stored.
pub async fn register_connection(
    store: &dyn Store,
    name: &str,
    url_text: &str,
    password: Option<&str>,
    schema: Option<&str>,
) -> OpResult<Connection> {
    if let Some(schema) = schema
        && !dwsched_model::is_valid_identifier(schema)
    {
        return Err(OpError::Invalid(format!(
            "connection '{name}': schema '{schema}' is not a schema name"
        )));
    }
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_whitespace) {
        return Err(OpError::Invalid(format!(
            "connection name '{name}' must be 1 to 100 characters without spaces"
        )));
    }
    let mut url = url::Url::parse(url_text).map_err(|e| {
        OpError::Invalid(format!(
            "connection '{name}': URL '{}' is not valid: {e}",
            dwsched_store::redact_url(url_text)
        ))
    })?;
    let dbtyp = database_type(&url)?;
    let url_password = url.password().map(|p| {
        url::form_urlencoded::parse(format!("p={p}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    });
    let _ = url.set_password(None);
    let passwd = password.map(str::to_string).or(url_password);
    if let Some(env_name) = passwd.as_deref().and_then(|p| p.strip_prefix("env:"))
        && !dwsched_model::is_valid_identifier(env_name)
    {
        return Err(OpError::Invalid(format!(
            "connection '{name}': password 'env:{env_name}' does not name an environment variable"
        )));
    }
    let database = url.path().trim_start_matches('/');
    let connection = Connection {
        conid: 0,
        connm: name.to_string(),
        dbtyp: Some(dbtyp.to_string()),
        dbhost: url.host_str().map(str::to_string).filter(|h| !h.is_empty()),
        dbport: url.port().map(i64::from),
        dbsrvnm: (!database.is_empty() && dbtyp != "SQLITE").then(|| database.to_string()),
        usrnm: (!url.username().is_empty()).then(|| url.username().to_string()),
        passwd,
        constr: Some(url.to_string()),
        schnm: schema.map(str::to_string),
        current: true,
    };
    let conid = store.put_connection(&connection).await?;
    Ok(Connection {
        conid,
        ..connection
    })
}

/// What a user gives to add a schedule; the CLI flags and the API body map onto it.
#[derive(Debug, Clone, Default)]
pub struct ScheduleInput {
    pub mapref: String,
    pub frqcd: String,
    pub frqdd: Option<String>,
    pub frqhh: Option<i64>,
    pub frqmi: Option<i64>,
    pub cron: Option<String>,
    /// Wall-clock times in the schedule's zone.
    pub start: Option<NaiveDateTime>,
    pub end: Option<NaiveDateTime>,
    pub timezone: Option<String>,
    pub misfire: Option<String>,
    /// The schedule whose successful run starts this one (`DPND_JOBSCHID`).
    pub depends_on: Option<i64>,
    pub maxfail: Option<i64>,
    /// The business calendar (`CALNM`) and what a slot on another day does (`CALRULE`).
    pub calendar: Option<String>,
    pub on_holiday: Option<String>,
    pub enable: bool,
}

impl ScheduleInput {
    fn to_row(&self) -> ScheduleRow {
        ScheduleRow {
            jobschid: 0,
            mapref: self.mapref.clone(),
            frqcd: Some(self.frqcd.trim().to_ascii_uppercase()),
            frqdd: self.frqdd.as_ref().map(|d| d.trim().to_ascii_uppercase()),
            frqhh: self.frqhh,
            frqmi: self.frqmi,
            strtdt: self.start,
            enddt: self.end,
            timezone: self.timezone.clone(),
            cronexpr: self.cron.clone(),
            misfire: self.misfire.as_ref().map(|m| m.trim().to_ascii_uppercase()),
            maxfail: self.maxfail,
            dpnd_jobschid: self.depends_on,
            calnm: self.calendar.as_ref().map(|c| c.trim().to_string()),
            calrule: self
                .on_holiday
                .as_ref()
                .map(|r| r.trim().to_ascii_uppercase()),
            ..ScheduleRow::default()
        }
    }
}

/// The frequency codes that read `FRQDD` (SPEC §6).
const CODES_WITH_DAY: [&str; 7] = ["WK", "FN", "MN", "QT", "HY", "YR", "BD"];

/// A schedule parser that knows the stored business calendars.
pub async fn schedule_parser(store: &dyn Store) -> OpResult<ScheduleParser> {
    Ok(ScheduleParser::with_records(&store.list_calendars().await?))
}

/// Validates a schedule without storing it, against the stored calendars. Beyond
/// what makes a row schedulable, a field the frequency code would ignore is refused,
/// so that a user never believes a schedule does what it does not (`--cron` without
/// `CR`, a day for `DL`, a holiday rule without a calendar).
pub async fn check_schedule(
    store: &dyn Store,
    input: &ScheduleInput,
    default_zone: Tz,
) -> OpResult<Schedule> {
    validate_schedule(input, &mut schedule_parser(store).await?, default_zone)
}

/// [`check_schedule`] with the calendars `parser` knows.
pub fn validate_schedule(
    input: &ScheduleInput,
    parser: &mut ScheduleParser,
    default_zone: Tz,
) -> OpResult<Schedule> {
    let invalid =
        |why: String| OpError::Invalid(format!("schedule of job '{}': {why}", input.mapref));
    let code = input.frqcd.trim().to_ascii_uppercase();
    if input.cron.is_some() && code != "CR" {
        return Err(invalid(format!(
            "--cron is used only with --frqcd CR, not {code}"
        )));
    }
    if input.frqdd.is_some() && !CODES_WITH_DAY.contains(&code.as_str()) {
        return Err(invalid(format!(
            "--frqdd is ignored by --frqcd {code}; a day is read by {} only",
            CODES_WITH_DAY.join(", ")
        )));
    }
    if input.on_holiday.is_some() && input.calendar.is_none() {
        return Err(invalid(
            "--on-holiday says what a slot on a holiday does, so it needs --calendar".into(),
        ));
    }
    parser
        .parse(&input.to_row(), default_zone)
        .map_err(|e| invalid(e.to_string()))
}

/// The fields `schedule edit` may change (the CLI's flags, the API's body); the others
/// keep the current version's.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEdit {
    pub frqcd: Option<String>,
    pub frqdd: Option<String>,
    pub frqhh: Option<i64>,
    pub frqmi: Option<i64>,
    pub cron: Option<String>,
    /// A date, a wall-clock time in the schedule's zone, or RFC 3339.
    pub start: Option<String>,
    pub end: Option<String>,
    pub timezone: Option<String>,
    pub misfire: Option<String>,
    /// `after` is its old name.
    #[serde(alias = "after")]
    pub depends_on: Option<i64>,
    pub maxfail: Option<i64>,
    /// A calendar name; empty: no calendar any more.
    pub calendar: Option<String>,
    pub on_holiday: Option<String>,
}

impl ScheduleEdit {
    /// The current version `row` with these changes. A new frequency code drops the
    /// fields it would ignore (a cron expression, a day), unless they are given too.
    /// Times given are read in the zone the new version has.
    fn apply(&self, row: &ScheduleRow, default_zone: Tz) -> OpResult<ScheduleInput> {
        let zone_name = self.timezone.as_deref().or(row.timezone.as_deref());
        let zone = parse_zone("timezone", zone_name, default_zone)?;
        let time = |field: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| parse_wall_clock(field, t, zone))
                .transpose()
        };
        let (start, end) = (time("start", &self.start)?, time("end", &self.end)?);
        let code_changed = self.frqcd.is_some();
        let frqcd = self
            .frqcd
            .clone()
            .or_else(|| row.frqcd.clone())
            .unwrap_or_default();
        let code = frqcd.trim().to_ascii_uppercase();
        let keep_old = |ignored: bool| !(code_changed && ignored);
        // An empty name drops the calendar.
        let calendar = self
            .calendar
            .clone()
            .or_else(|| row.calnm.clone())
            .filter(|c| !c.trim().is_empty());
        Ok(ScheduleInput {
            mapref: row.mapref.clone(),
            frqdd: self.frqdd.clone().or_else(|| {
                row.frqdd
                    .clone()
                    .filter(|_| keep_old(!CODES_WITH_DAY.contains(&code.as_str())))
            }),
            cron: self
                .cron
                .clone()
                .or_else(|| row.cronexpr.clone().filter(|_| keep_old(code != "CR"))),
            frqcd,
            frqhh: self.frqhh.or(row.frqhh),
            frqmi: self.frqmi.or(row.frqmi),
            start: start.or(row.strtdt),
            end: end.or(row.enddt),
            timezone: self.timezone.clone().or_else(|| row.timezone.clone()),
            misfire: self.misfire.clone().or_else(|| row.misfire.clone()),
            depends_on: self.depends_on.or(row.dpnd_jobschid),
            maxfail: self.maxfail.or(row.maxfail),
            calendar: calendar.clone(),
            // A rule given without a calendar is refused by the validation; the old
            // row's rule goes with its calendar.
            on_holiday: match calendar {
                Some(_) => self.on_holiday.clone().or_else(|| row.calrule.clone()),
                None => self.on_holiday.clone(),
            },
            enable: row.schflg.as_deref() == Some("Y"),
        })
    }
}

/// A current schedule row, or not found.
async fn current_schedule(store: &dyn Store, jobschid: i64) -> OpResult<ScheduleRow> {
    match store.get_schedule(jobschid).await? {
        Some(row) if row.curflg.as_deref() == Some("Y") => Ok(row),
        _ => Err(OpError::NotFound(format!(
            "schedule {jobschid} does not exist or is retired (CURFLG='N'); see `dwsched schedule list`"
        ))),
    }
}

/// Writes a new version of schedule `jobschid` with `edit` applied, as DWTOOL's UI
/// saves an edit: a new `JOBSCHID`, the old row retired. Returns the new id.
pub async fn edit_schedule(
    store: &dyn Store,
    jobschid: i64,
    edit: &ScheduleEdit,
    default_zone: Tz,
    now: DateTime<Utc>,
) -> OpResult<i64> {
    let row = current_schedule(store, jobschid).await?;
    let input = edit.apply(&row, default_zone)?;
    let schedule = check_schedule(store, &input, default_zone).await?;
    if input.depends_on == Some(jobschid) {
        return Err(OpError::Invalid(format!(
            "schedule {jobschid} cannot depend on itself"
        )));
    }
    if let Some(parent) = edit.depends_on {
        current_schedule(store, parent).await?;
    }
    let new = NewSchedule {
        jobflwid: store
            .current_flow(&row.mapref)
            .await?
            .map(|f| f.jobflwid)
            .or(row.jobflwid),
        ..new_schedule(&input)
    };
    let new_id = store
        .replace_schedule(jobschid, &new, now)
        .await?
        .ok_or_else(|| OpError::Conflict(format!("schedule {jobschid} was retired meanwhile")))?;
    let next = input.enable.then(|| schedule.next_fire(now)).flatten();
    store.set_schedule_state(new_id, next, None).await?;
    Ok(new_id)
}

/// Retires schedule `jobschid` (`CURFLG='N'`): it never fires again. Refused while
/// current schedules run after it.
pub async fn delete_schedule(store: &dyn Store, jobschid: i64, now: DateTime<Utc>) -> OpResult<()> {
    let row = current_schedule(store, jobschid).await?;
    let children: Vec<String> = store
        .list_schedules(false)
        .await?
        .iter()
        .filter(|s| s.curflg.as_deref() == Some("Y") && s.dpnd_jobschid == Some(jobschid))
        .map(|s| format!("{} ({})", s.jobschid, s.mapref))
        .collect();
    if !children.is_empty() {
        return Err(OpError::Conflict(format!(
            "schedule {jobschid} of {} cannot be deleted: schedules {} run after it; delete or edit them first",
            row.mapref,
            children.join(", ")
        )));
    }
    store.retire_schedule(jobschid, now).await?;
    store.set_schedule_state(jobschid, None, None).await?;
    Ok(())
}

/// Retires job `mapref`: its flow, its `DMS_JOB` row and its schedules
/// (`CURFLG='N'`). Refused while enabled schedules use it, unless `force`.
/// Returns the schedules retired with it.
pub async fn delete_job(
    store: &dyn Store,
    mapref: &str,
    force: bool,
    now: DateTime<Utc>,
) -> OpResult<Vec<i64>> {
    require_job(store, mapref).await?;
    let schedules: Vec<ScheduleRow> = store
        .list_schedules(false)
        .await?
        .into_iter()
        .filter(|s| s.mapref == mapref && s.curflg.as_deref() == Some("Y"))
        .collect();
    let enabled: Vec<String> = schedules
        .iter()
        .filter(|s| s.is_scheduled())
        .map(|s| s.jobschid.to_string())
        .collect();
    if !enabled.is_empty() && !force {
        return Err(OpError::Conflict(format!(
            "job '{mapref}' has enabled schedules ({}); disable or delete them first, or use --force to retire them with the job",
            enabled.join(", ")
        )));
    }
    store.retire_job(mapref, now).await?;
    for schedule in &schedules {
        store
            .set_schedule_state(schedule.jobschid, None, None)
            .await?;
    }
    Ok(schedules.iter().map(|s| s.jobschid).collect())
}

/// Retires connection `name`. Refused while a current flow or mapping job uses it.
pub async fn delete_connection(store: &dyn Store, name: &str) -> OpResult<()> {
    let connection = store.get_connection(name).await?.ok_or_else(|| {
        OpError::NotFound(format!(
            "connection '{name}' does not exist or is retired; see `dwsched conn list`"
        ))
    })?;
    let mut users = Vec::new();
    let maprefs: Vec<String> = store
        .list_jobs()
        .await?
        .into_iter()
        .map(|job| job.mapref)
        .collect();
    for current in store.flows_to_run(&maprefs).await? {
        let mapref = current.flow.mapref.clone();
        let Ok(flow) = crate::resolve::flow_of(&mapref, &current.flow) else {
            continue;
        };
        let mut uses = flow.connections().contains(name);
        if !uses
            && flow
                .steps
                .iter()
                .any(|s| matches!(s.kind, dwsched_flow::StepKind::Mapping { .. }))
        {
            // A mapping job names its connections by CONID in its metadata.
            uses = crate::dwtool::connection_ids(store, &mapref)
                .await
                .contains(&connection.conid);
        }
        if uses && !users.contains(&mapref) {
            users.push(mapref);
        }
    }
    users.sort();
    if !users.is_empty() {
        return Err(OpError::Conflict(format!(
            "connection '{name}' is used by the current flows of {}; change or delete them first",
            users.join(", ")
        )));
    }
    store.retire_connection(name).await?;
    Ok(())
}

/// Adds a schedule for an existing job and records its next fire. Returns its JOBSCHID.
pub async fn add_schedule(
    store: &dyn Store,
    input: &ScheduleInput,
    default_zone: Tz,
    now: DateTime<Utc>,
) -> OpResult<i64> {
    validate_mapref(&input.mapref).map_err(OpError::Invalid)?;
    let schedule = check_schedule(store, input, default_zone).await?;
    let flow = store.current_flow(&input.mapref).await?.ok_or_else(|| {
        OpError::NotFound(format!(
            "job '{}' has no flow; register one with `dwsched job put {} --flow FILE`",
            input.mapref, input.mapref
        ))
    })?;
    if let Some(parent) = input.depends_on {
        match store.get_schedule(parent).await? {
            Some(row) if row.curflg.as_deref() == Some("Y") => {}
            _ => {
                return Err(OpError::NotFound(format!(
                    "schedule {parent} (named by --depends-on) does not exist or is retired"
                )));
            }
        }
    }
    let new = NewSchedule {
        jobflwid: Some(flow.jobflwid),
        ..new_schedule(input)
    };
    let jobschid = store.insert_schedule(&new, now).await?;
    let next = input.enable.then(|| schedule.next_fire(now)).flatten();
    store.set_schedule_state(jobschid, next, None).await?;
    Ok(jobschid)
}

/// The row to insert for `input` (its `JOBFLWID` left for the caller).
fn new_schedule(input: &ScheduleInput) -> NewSchedule {
    let row = input.to_row();
    NewSchedule {
        mapref: row.mapref,
        jobflwid: None,
        frqcd: row.frqcd.unwrap_or_default(),
        frqdd: row.frqdd,
        frqhh: row.frqhh,
        frqmi: row.frqmi,
        cronexpr: row.cronexpr,
        strtdt: row.strtdt,
        enddt: row.enddt,
        timezone: row.timezone,
        misfire: row.misfire,
        dpnd_jobschid: row.dpnd_jobschid,
        maxfail: row.maxfail,
        calnm: row.calnm,
        calrule: row.calrule,
        enabled: input.enable,
    }
}

/// Enables or disables a current schedule and keeps its `NXT_RUN_DT` true. Returns the
/// next fire (none when disabled). A row that cannot be scheduled is refused
/// enabling, with the reason.
pub async fn set_schedule_enabled(
    store: &dyn Store,
    jobschid: i64,
    enabled: bool,
    default_zone: Tz,
    now: DateTime<Utc>,
) -> OpResult<Option<DateTime<Utc>>> {
    let row = match store.get_schedule(jobschid).await? {
        Some(row) if row.curflg.as_deref() == Some("Y") => row,
        _ => {
            return Err(OpError::NotFound(format!(
                "schedule {jobschid} does not exist or is retired"
            )));
        }
    };
    let next = if enabled {
        let schedule = schedule_parser(store)
            .await?
            .parse(&row, default_zone)
            .map_err(|e| OpError::Invalid(format!("schedule {jobschid} cannot be enabled: {e}")))?;
        schedule.next_fire(now)
    } else {
        None
    };
    store.set_schedule_enabled(jobschid, enabled, now).await?;
    store.set_schedule_state(jobschid, next, None).await?;
    Ok(next)
}

/// The job's current flow row; a job that has none is not found.
async fn require_job(store: &dyn Store, mapref: &str) -> OpResult<JobFlow> {
    validate_mapref(mapref).map_err(OpError::Invalid)?;
    match store.current_flow(mapref).await? {
        Some(flow) => Ok(flow),
        None => Err(OpError::NotFound(format!(
            "job '{mapref}' does not exist (no current flow); see `dwsched job list`"
        ))),
    }
}

/// The zone named by `field` (an IANA name), or `default` when none is given.
pub fn parse_zone(field: &str, name: Option<&str>, default: Tz) -> OpResult<Tz> {
    match name {
        Some(name) => name.trim().parse::<Tz>().map_err(|_| {
            OpError::Invalid(format!(
                "{field}='{name}': not an IANA time zone name (such as Europe/London)"
            ))
        }),
        None => Ok(default),
    }
}

/// A schedule's start or end as a wall-clock time in `zone`: an RFC 3339 instant (seen in
/// `zone`), a wall-clock time, or a date (its midnight). `field` names the input.
pub fn parse_wall_clock(field: &str, text: &str, zone: Tz) -> OpResult<NaiveDateTime> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&zone).naive_local());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(local);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists"));
    }
    Err(OpError::Invalid(format!(
        "{field}='{text}': expected a date (2026-03-01), a wall-clock time (2026-03-01 06:00) or RFC 3339"
    )))
}

/// Checks a run request before it is queued: the job exists, and the step it starts
/// from (`from_step`) is one of its flow's.
pub async fn check_run(store: &dyn Store, mapref: &str, payload: &RunPayload) -> OpResult<()> {
    let flow_row = require_job(store, mapref).await?;
    if let Some(step) = &payload.from_step {
        let flow = crate::resolve::flow_of(mapref, &flow_row).map_err(OpError::Conflict)?;
        dwsched_flow::skipped_before(&flow, step)
            .map_err(|e| OpError::Invalid(format!("--from-step of job '{mapref}': {e}")))?;
    }
    Ok(())
}

/// Queues one run of a job. Returns the request id.
pub async fn enqueue_run(
    store: &dyn Store,
    mapref: &str,
    payload: RunPayload,
    now: DateTime<Utc>,
) -> OpResult<String> {
    let payload = RunPayload {
        trigger: None,
        ..payload
    };
    check_run(store, mapref, &payload).await?;
    let request = NewRequest::new(mapref, RequestType::Immediate, payload.to_json());
    Ok(store.enqueue(&request, now).await?.request_id().to_string())
}

/// Queues a run per business date from `from` to `to`. Returns the request id.
pub async fn enqueue_history(
    store: &dyn Store,
    mapref: &str,
    from: NaiveDate,
    to: NaiveDate,
    params: RunParams,
    continue_on_failure: bool,
    now: DateTime<Utc>,
) -> OpResult<String> {
    if to < from {
        return Err(OpError::Invalid(format!(
            "history of job '{mapref}': the end date {to} is before the start date {from}"
        )));
    }
    require_job(store, mapref).await?;
    let mut payload = HistoryPayload::new(from, to, params)
        .map_err(|e| OpError::Invalid(format!("history of job '{mapref}': {e}")))?;
    payload.continue_on_failure = continue_on_failure;
    let request = NewRequest::new(mapref, RequestType::History, payload.to_json());
    Ok(store.enqueue(&request, now).await?.request_id().to_string())
}

/// Queues a STOP of a job's running run. Returns the request id.
pub async fn enqueue_stop(
    store: &dyn Store,
    mapref: &str,
    force: bool,
    now: DateTime<Utc>,
) -> OpResult<String> {
    // DWTOOL reports and file uploads are stopped by their maprefs too (`REPORT:<id>`,
    // `FLUPLD:<ref>`).
    if let Some(rprtid) = dwsched_model::report_of_mapref(mapref) {
        if store.report_definition(rprtid).await?.is_none() {
            return Err(OpError::NotFound(format!(
                "report {rprtid} does not exist (no DMS_RPRT_DEF row)"
            )));
        }
    } else if let Some(flupldref) = dwsched_model::upload_of_mapref(mapref) {
        if store.upload_definition(flupldref).await?.is_none() {
            return Err(OpError::NotFound(format!(
                "file upload {flupldref} does not exist (no current DMS_FLUPLD row)"
            )));
        }
    } else {
        require_job(store, mapref).await?;
    }
    let request = NewRequest::new(mapref, RequestType::Stop, StopPayload { force }.to_json());
    Ok(store.enqueue(&request, now).await?.request_id().to_string())
}

/// Cancels a request still waiting in the queue.
pub async fn cancel_request(
    store: &dyn Store,
    request_id: &str,
    now: DateTime<Utc>,
) -> OpResult<()> {
    let result = serde_json::json!({
        "status": "CANCELLED",
        "message": "cancelled before it started",
    })
    .to_string();
    if store.cancel_request(request_id, &result, now).await? {
        return Ok(());
    }
    match store.get_request(request_id).await? {
        None => Err(OpError::NotFound(format!(
            "request {request_id} does not exist"
        ))),
        Some(request) => Err(OpError::Conflict(format!(
            "request {request_id} is {} and can no longer be cancelled; only NEW requests can",
            request
                .status
                .map_or("in an unknown status", |s| s.as_str())
        ))),
    }
}
