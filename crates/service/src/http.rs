//! The node's HTTP surface (SPEC §9): health, Prometheus metrics, the JSON API, and
//! the status page. Served only when an address is configured.
//!
//! Every answer that is not the page or the metrics is JSON; errors are
//! `{"error": "..."}` with a 4xx status for what the caller can fix. Mutating calls
//! need `Authorization: Bearer <DWSCHED_API_TOKEN>` when a token is set. Bodies are
//! read as the queue's own payloads, so the API accepts and refuses exactly what a
//! request row would.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use dwsched_model::{HistoryPayload, RunFilter, RunPayload, RunStatus, StopPayload};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use crate::ops::{self, OpError, ScheduleEdit, ScheduleInput};
use crate::state::NodeView;
use crate::status::{StatusReport, run_json, schedule_json};

/// Largest request body accepted.
const BODY_LIMIT: usize = 64 * 1024;

/// An answer the caller gets as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<OpError> for ApiError {
    fn from(err: OpError) -> Self {
        let status = match &err {
            OpError::Invalid(_) => StatusCode::BAD_REQUEST,
            OpError::NotFound(_) => StatusCode::NOT_FOUND,
            OpError::Conflict(_) => StatusCode::CONFLICT,
            OpError::Store(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            OpError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, err.to_string())
    }
}

impl From<dwsched_store::StoreError> for ApiError {
    fn from(err: dwsched_store::StoreError) -> Self {
        OpError::Store(err).into()
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn router(shared: NodeView) -> Router {
    let mutating = Router::new()
        .route("/api/jobs/{mapref}/run", post(run_job))
        .route("/api/jobs/{mapref}/history", post(history_job))
        .route("/api/jobs/{mapref}/stop", post(stop_job))
        .route("/api/schedules", post(add_schedule))
        .route("/api/schedules/{id}/enable", post(enable_schedule))
        .route("/api/schedules/{id}/disable", post(disable_schedule))
        .route(
            "/api/schedules/{id}",
            post(edit_schedule).delete(delete_schedule),
        )
        .route("/api/jobs/{mapref}", axum::routing::delete(delete_job))
        .route(
            "/api/connections/{name}",
            axum::routing::delete(delete_connection),
        )
        .route("/api/calendars/{name}/holidays", post(add_holiday))
        .route(
            "/api/calendars/{name}/holidays/{date}",
            axum::routing::delete(remove_holiday),
        )
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ));
    Router::new()
        .route("/", get(crate::page::status_page))
        .route("/runs/{prcid}", get(crate::page::run_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/runs", get(runs))
        .route("/api/runs/{prcid}", get(run_detail))
        .route("/api/runs/{prcid}/log", get(run_log))
        .route("/api/schedules", get(schedules))
        .route("/api/calendars", get(calendars))
        .route("/api/calendars/{name}", get(calendar))
        .route("/api/openapi.json", get(openapi))
        .merge(mutating)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// Serves until the node finishes.
pub(crate) async fn serve(shared: NodeView, listener: tokio::net::TcpListener) {
    let finished = shared.finished.clone();
    let app = router(shared.clone());
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { finished.cancelled().await })
        .await
    {
        tracing::error!("the HTTP server stopped: {err}");
    }
}

async fn require_token(
    State(shared): State<NodeView>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    match check_token(&shared, &headers, None) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused,
    }
}

/// Whether the call carries the API token, when one is set: as
/// `Authorization: Bearer`, or (for links a browser follows, such as a run's log) as
/// the `access_token` query parameter of RFC 6750.
#[allow(clippy::result_large_err)] // the refusal is the response itself
fn check_token(
    shared: &NodeView,
    headers: &HeaderMap,
    access_token: Option<&str>,
) -> Result<(), Response> {
    let Some(token) = shared.config.api_token.as_deref() else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or(access_token)
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        return Ok(());
    }
    Err((
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(json!({ "error": "this call needs Authorization: Bearer <DWSCHED_API_TOKEN>" })),
    )
        .into_response())
}

async fn healthz(State(shared): State<NodeView>) -> Response {
    let reachable = shared.store.schema_version().await.is_ok();
    let body = json!({
        "status": if reachable { "ok" } else { "database unreachable" },
        "node": shared.config.node_id,
        "fires_schedules": shared.leading.load(Ordering::SeqCst),
    });
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(shared): State<NodeView>) -> Response {
    match render_metrics(&shared).await {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the metrics recorder is not installed in this process",
        )
        .into_response(),
    }
}

async fn status(State(shared): State<NodeView>) -> ApiResult<axum::Json<Value>> {
    let report =
        StatusReport::gather(&*shared.store, Utc::now(), shared.config.lease_span(), 20).await?;
    let mut body = report.to_json(20);
    body["node"] = json!(shared.config.node_id);
    Ok(axum::Json(body))
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    mapref: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
}

async fn runs(
    State(shared): State<NodeView>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Value>> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("status '{text}' is not a run status (IP, PC, FL or ST)"),
            )
        })?),
    };
    let limit = match query.limit {
        None => 50,
        Some(limit @ 1..=1000) => limit,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("limit={other}: expected 1 to 1000"),
            ));
        }
    };
    let filter = RunFilter {
        mapref: query.mapref.filter(|m| !m.is_empty()),
        status,
        limit,
        ..RunFilter::default()
    };
    let runs = shared.store.list_runs(&filter).await?;
    Ok(axum::Json(Value::Array(
        runs.iter().map(run_json).collect(),
    )))
}

fn parse_prcid(text: &str) -> ApiResult<i64> {
    text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("'{text}' is not a run id (PRCID)"),
        )
    })
}

/// A run with its steps (`DMS_PRCSTEP`).
async fn run_detail(
    State(shared): State<NodeView>,
    Path(prcid): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let prcid = parse_prcid(&prcid)?;
    let run = shared.store.get_run(prcid).await?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, format!("run {prcid} does not exist"))
    })?;
    let steps = shared.store.run_steps(prcid).await?;
    let mut body = run_json(&run);
    body["steps"] = steps.iter().map(crate::status::step_json).collect();
    Ok(axum::Json(body))
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    access_token: Option<String>,
}

/// A run's log file, from the node that holds it. Logs may hold what commands print,
/// so they need the API token when one is set. A run of another node is answered with
/// where its log is.
async fn run_log(
    State(shared): State<NodeView>,
    Path(prcid): Path<String>,
    headers: HeaderMap,
    Query(query): Query<LogQuery>,
) -> Response {
    if let Err(refused) = check_token(&shared, &headers, query.access_token.as_deref()) {
        return refused;
    }
    let answer = async {
        let prcid = parse_prcid(&prcid)?;
        let run = shared.store.get_run(prcid).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("run {prcid} does not exist"))
        })?;
        let mapref = run.mapref.clone().unwrap_or_default();
        let path = dwsched_flow::run_log_path(&shared.config.log_dir, &mapref, prcid);
        match tokio::fs::read(&path).await {
            Ok(bytes) => {
                Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response())
            }
            Err(_) if run.node.as_deref() != Some(shared.config.node_id.as_str()) => {
                let node = run.node.as_deref().unwrap_or("an unknown node");
                let served = match run.node.as_deref() {
                    Some(id) => shared.store.get_node(id).await?.and_then(|n| n.http_addr),
                    None => None,
                };
                let mut message = format!("the log of run {prcid} is kept by node {node}");
                if let Some(addr) = &served {
                    message.push_str(&format!(", at http://{addr}/api/runs/{prcid}/log"));
                }
                Err(ApiError::new(StatusCode::NOT_FOUND, message))
            }
            Err(_) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("run {prcid} wrote no log lines"),
            )),
        }
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

async fn schedules(State(shared): State<NodeView>) -> ApiResult<axum::Json<Value>> {
    let rows = shared.store.list_schedules(false).await?;
    Ok(axum::Json(Value::Array(
        rows.iter().map(schedule_json).collect(),
    )))
}

/// A body as the text of a payload: an empty body is `{}`.
fn payload_text(body: &Bytes) -> ApiResult<&str> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8 text"))?;
    Ok(if text.trim().is_empty() { "{}" } else { text })
}

/// The answer to a request made through the API; the node is woken to take it at once.
fn queued(shared: &NodeView, request_id: String) -> Response {
    shared.wake_claimer.notify_one();
    shared.wake_control.notify_one();
    (
        StatusCode::CREATED,
        axum::Json(json!({ "request_id": request_id })),
    )
        .into_response()
}

async fn run_job(
    State(shared): State<NodeView>,
    Path(mapref): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body?;
    let payload = RunPayload::parse_strict(Some(payload_text(&body)?)).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("run of job '{mapref}': {e}"),
        )
    })?;
    let id = ops::enqueue_run(&*shared.store, &mapref, payload, Utc::now()).await?;
    Ok(queued(&shared, id))
}

async fn history_job(
    State(shared): State<NodeView>,
    Path(mapref): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body?;
    let payload = HistoryPayload::parse_strict(Some(payload_text(&body)?)).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("history of job '{mapref}': {e}"),
        )
    })?;
    let id = ops::enqueue_history(
        &*shared.store,
        &mapref,
        payload.start_date,
        payload.end_date,
        payload.params,
        payload.continue_on_failure,
        Utc::now(),
    )
    .await?;
    Ok(queued(&shared, id))
}

async fn stop_job(
    State(shared): State<NodeView>,
    Path(mapref): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body?;
    let stop = StopPayload::parse_strict(Some(payload_text(&body)?)).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("stop of job '{mapref}': {e}"),
        )
    })?;
    let id = ops::enqueue_stop(&*shared.store, &mapref, stop.force, Utc::now()).await?;
    Ok(queued(&shared, id))
}

/// The body of `POST /api/schedules`: the flags of `dwsched schedule add`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    mapref: String,
    frqcd: String,
    frqdd: Option<String>,
    frqhh: Option<i64>,
    frqmi: Option<i64>,
    cron: Option<String>,
    start: Option<String>,
    end: Option<String>,
    timezone: Option<String>,
    misfire: Option<String>,
    /// The schedule whose successful run starts this one; `after` is its old name.
    #[serde(alias = "after")]
    depends_on: Option<i64>,
    maxfail: Option<i64>,
    /// The business calendar, and `skip`, `next` or `prev` for a slot on a holiday.
    calendar: Option<String>,
    on_holiday: Option<String>,
    #[serde(default)]
    enable: bool,
}

async fn add_schedule(
    State(shared): State<NodeView>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body?;
    let body: ScheduleBody = serde_json::from_str(payload_text(&body)?)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("schedule: {e}")))?;
    let default_zone = shared.config.default_zone;
    let zone = ops::parse_zone("timezone", body.timezone.as_deref(), default_zone)?;
    let bound = |field: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| ops::parse_wall_clock(field, t, zone))
            .transpose()
    };
    let input = ScheduleInput {
        start: bound("start", &body.start)?,
        end: bound("end", &body.end)?,
        mapref: body.mapref,
        frqcd: body.frqcd,
        frqdd: body.frqdd,
        frqhh: body.frqhh,
        frqmi: body.frqmi,
        cron: body.cron,
        timezone: body.timezone,
        misfire: body.misfire,
        depends_on: body.depends_on,
        maxfail: body.maxfail,
        calendar: body.calendar,
        on_holiday: body.on_holiday,
        enable: body.enable,
    };
    let id = ops::add_schedule(&*shared.store, &input, default_zone, Utc::now()).await?;
    shared.wake_control.notify_one();
    Ok((StatusCode::CREATED, axum::Json(json!({ "jobschid": id }))).into_response())
}

fn parse_jobschid(id: &str) -> ApiResult<i64> {
    id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("'{id}' is not a schedule id (JOBSCHID)"),
        )
    })
}

/// Writes a new version of a schedule; answers with its new JOBSCHID.
async fn edit_schedule(
    State(shared): State<NodeView>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let jobschid = parse_jobschid(&id)?;
    let body = body?;
    let edit: ScheduleEdit = serde_json::from_str(payload_text(&body)?)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("schedule {jobschid}: {e}")))?;
    let default_zone = shared.config.default_zone;
    let id = ops::edit_schedule(&*shared.store, jobschid, &edit, default_zone, Utc::now()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "jobschid": id, "replaces": jobschid })),
    )
        .into_response())
}

async fn delete_schedule(
    State(shared): State<NodeView>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let jobschid = parse_jobschid(&id)?;
    ops::delete_schedule(&*shared.store, jobschid, Utc::now()).await?;
    Ok(axum::Json(json!({ "jobschid": jobschid, "retired": true })))
}

#[derive(Debug, Deserialize)]
struct DeleteJobQuery {
    #[serde(default)]
    force: bool,
}

async fn delete_job(
    State(shared): State<NodeView>,
    Path(mapref): Path<String>,
    query: Result<Query<DeleteJobQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Value>> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let schedules = ops::delete_job(&*shared.store, &mapref, query.force, Utc::now()).await?;
    Ok(axum::Json(
        json!({ "mapref": mapref, "retired": true, "schedules_retired": schedules }),
    ))
}

async fn calendars(State(shared): State<NodeView>) -> ApiResult<axum::Json<Value>> {
    let all = shared.store.list_calendars().await?;
    Ok(axum::Json(serde_json::to_value(all).unwrap_or_default()))
}

async fn calendar(
    State(shared): State<NodeView>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let record = crate::calendars::get_calendar(&*shared.store, &name).await?;
    Ok(axum::Json(serde_json::to_value(record).unwrap_or_default()))
}

/// The body of `POST /api/calendars/{name}/holidays`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayBody {
    date: String,
    description: Option<String>,
}

/// Adds a holiday (a date the calendar has already takes the new description).
async fn add_holiday(
    State(shared): State<NodeView>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body?;
    let body: HolidayBody = serde_json::from_str(payload_text(&body)?).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("holiday of calendar '{name}': {e}"),
        )
    })?;
    let date = crate::calendars::parse_date("date", &body.date)?;
    let holiday = dwsched_model::Holiday {
        date,
        description: body.description,
    };
    let added =
        crate::calendars::add_holidays(&*shared.store, &name, &[holiday], Utc::now()).await?;
    let status = if added == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = json!({ "calendar": name, "date": date.to_string(), "added": added == 1 });
    Ok((status, axum::Json(answer)).into_response())
}

async fn remove_holiday(
    State(shared): State<NodeView>,
    Path((name, date)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let date = crate::calendars::parse_date("date", &date)?;
    crate::calendars::remove_holiday(&*shared.store, &name, date, Utc::now()).await?;
    Ok(axum::Json(
        json!({ "calendar": name, "date": date.to_string(), "removed": true }),
    ))
}

async fn delete_connection(
    State(shared): State<NodeView>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    ops::delete_connection(&*shared.store, &name).await?;
    Ok(axum::Json(json!({ "name": name, "retired": true })))
}

async fn set_enabled(shared: &NodeView, id: &str, enabled: bool) -> ApiResult<axum::Json<Value>> {
    let jobschid = parse_jobschid(id)?;
    let next = ops::set_schedule_enabled(
        &*shared.store,
        jobschid,
        enabled,
        shared.config.default_zone,
        Utc::now(),
    )
    .await?;
    Ok(axum::Json(json!({
        "jobschid": jobschid,
        "enabled": enabled,
        "next_fire": next.map(dwsched_schedule::format_slot),
    })))
}

async fn enable_schedule(
    State(shared): State<NodeView>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    set_enabled(&shared, &id, true).await
}

async fn disable_schedule(
    State(shared): State<NodeView>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    set_enabled(&shared, &id, false).await
}

async fn openapi() -> axum::Json<Value> {
    axum::Json(crate::openapi::document())
}

/// The metrics in Prometheus text, after reading the gauges that come from the tables.
/// A database error leaves those gauges as they were and counts the error.
async fn render_metrics(shared: &NodeView) -> Option<String> {
    use crate::telemetry::{
        FIRES_SCHEDULES, NODES_LIVE, QUEUE_REQUESTS, REPORT_SCHEDULES, RUNS_IN_PROGRESS, SYNC_AGE,
        UPLOAD_SCHEDULES, handle,
    };
    use metrics::gauge;
    let handle = handle()?;
    match shared.store.live_counts().await {
        Ok(counts) => {
            gauge!(QUEUE_REQUESTS, "status" => "NEW").set(counts.waiting as f64);
            gauge!(QUEUE_REQUESTS, "status" => "PROCESSING").set(counts.processing as f64);
            gauge!(RUNS_IN_PROGRESS).set(counts.runs_in_progress as f64);
        }
        Err(err) => shared.health.failed("reading metrics", &err),
    }
    let now = Utc::now();
    let lease = shared.config.lease_span();
    if let Ok(nodes) = shared.store.list_nodes().await {
        let live = nodes
            .iter()
            .filter(|n| n.heartbeat_at.is_some_and(|at| now - at <= lease))
            .count();
        gauge!(NODES_LIVE).set(live as f64);
    }
    match shared.store.report_schedules().await {
        Ok(rows) => set_by_status(REPORT_SCHEDULES, rows.iter().map(|r| r.stts.as_deref())),
        Err(err) => shared.health.failed("reading metrics", &err),
    }
    match shared.store.upload_schedules().await {
        Ok(rows) => set_by_status(UPLOAD_SCHEDULES, rows.iter().map(|r| r.stts.as_deref())),
        Err(err) => shared.health.failed("reading metrics", &err),
    }
    let leading = shared.leading.load(Ordering::SeqCst);
    gauge!(FIRES_SCHEDULES).set(if leading { 1.0 } else { 0.0 });
    let last_sync = shared.stats.last_sync_millis.load(Ordering::Relaxed);
    if leading && last_sync > 0 {
        let age = (now.timestamp_millis() - last_sync).max(0) as f64 / 1000.0;
        gauge!(SYNC_AGE).set(age);
    }
    Some(handle.render())
}

/// Sets gauge `name` by DWTOOL schedule status (`STTS`, upper case), the usual three
/// always present.
fn set_by_status<'a>(name: &'static str, statuses: impl Iterator<Item = Option<&'a str>>) {
    let mut by_status: std::collections::BTreeMap<String, f64> = ["ACTIVE", "PAUSED", "INACTIVE"]
        .iter()
        .map(|s| (s.to_string(), 0.0))
        .collect();
    for status in statuses {
        *by_status
            .entry(status.unwrap_or("").trim().to_ascii_uppercase())
            .or_default() += 1.0;
    }
    for (status, count) in by_status {
        metrics::gauge!(name, "status" => status).set(count);
    }
}
